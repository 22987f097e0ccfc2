"""Planted label noise: flip_labels plants it, and the methods rank the flipped rows lowest."""

import numpy as np
import pytest

from recexp.dataset import LABEL
from recexp.errors import InvalidParameterError
from recexp.importance import TrainedRun, get_method
from recexp.importance.evaluation import detection_auc, flip_labels
from recexp.jobs import prepare_data


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
