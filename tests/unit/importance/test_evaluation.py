"""Planted label noise: flip_labels plants it, and the methods rank the flipped rows lowest."""

import numpy as np
import pytest

from recexp.dataset import LABEL
from recexp.errors import InvalidParameterError
from recexp.importance import ImportanceResult, TrainedRun, get_method
from recexp.importance.evaluation import detection_auc, flip_labels
from recexp.spec import prepare_data


def test_flip_labels_changes_the_class_of_a_seeded_share_of_the_given_rows(make_spec):
    dataset, split = prepare_data(make_spec())
    noisy, flipped = flip_labels(dataset, split.train, 0.1, seed=3)
    before, after = dataset.frame[LABEL].to_numpy(), noisy.frame[LABEL].to_numpy()
    changed = np.flatnonzero(before != after)
    assert np.array_equal(changed, flipped) and len(flipped) == round(0.1 * len(split.train))
    assert set(flipped) <= set(split.train)
    assert np.array_equal(flip_labels(dataset, split.train, 0.1, seed=3)[1], flipped)
    assert np.array_equal(dataset.frame[LABEL], before)                  # the original is untouched
    with pytest.raises(InvalidParameterError, match="'fraction' must be"):
        flip_labels(dataset, split.train, 1.0)


@pytest.mark.parametrize("name,params", [("mean_loss", {}), ("el2n", {}), ("knn_shapley", {}),
                                         ("data_oob", {"n_estimators": 30})])
def test_methods_rank_flipped_rows_as_least_valuable(run_store, noisy_run, name, params):
    run_id, flipped = noisy_run
    result = get_method(name, **params).compute(TrainedRun.load(run_store, run_id))
    assert detection_auc(result, flipped) > 0.8


def test_within_class_detection_leaves_out_what_the_label_alone_tells(run_store, noisy_run):
    run_id, flipped = noisy_run
    run = TrainedRun.load(run_store, run_id)
    # Flipping fills the small classes with noise, so ranking rows by how rare their label is finds most of it...
    rarity = ImportanceResult.for_run(run, np.bincount(run.labels)[run.labels] / len(run.labels), "label_frequency")
    assert detection_auc(rarity, flipped) > 0.85
    # ...but says nothing among the rows of one label.
    assert detection_auc(rarity, flipped, by_class=True) == pytest.approx(0.5)
    oob = get_method("data_oob", n_estimators=30).compute(run)
    assert detection_auc(oob, flipped, by_class=True) > 0.6
