"""What the importance summary's share counts: each method's own threshold for a harmful row, not 'below 0'."""

import math

import numpy as np
import pytest

from recexp.importance import METHODS, TrainedRun, get_method, run_importance
from recexp.importance.representations import last_layer_outputs


@pytest.fixture(scope="module")
def plain(run_store, plain_run):
    return TrainedRun.load(run_store, plain_run)


def share_of_all_rows(result) -> float:
    summary = result.summary()
    return float(summary.loc[summary["group"] == "all", "share_harmful"].iloc[0])


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_states_its_sign_convention(name):
    harmful = METHODS[name].harmful
    assert harmful is not None and harmful.label.startswith(("share", "no threshold")) and len(harmful.meaning) > 60
    assert harmful.label != "share below 0"


def test_mean_loss_counts_rows_fitted_worse_than_even_odds(run_store, plain_run, plain):
    result = run_importance(run_store, plain_run, "mean_loss")
    values = result.values["value"].to_numpy()
    assert (values < 0).mean() == 1.0                  # "share below 0" counted every row: it said nothing
    stats = plain.sample_stats
    mean_loss = stats.groupby("row")["loss"].mean().sort_index().to_numpy()
    share = share_of_all_rows(result)
    assert share == pytest.approx((mean_loss > math.log(2)).mean())
    assert 0.05 < share < 0.95                            # on real data, some rows and not others
    per_class = result.summary().query("group == 'class'").set_index("name")["share_harmful"]
    assert per_class["buy"] > per_class["view"]           # the rare class is the one fitted badly
    again = run_importance(run_store, plain_run, "mean_loss")           # read back from the run's cache
    assert again.harmful == result.harmful and share_of_all_rows(again) == share


def test_el2n_counts_only_rows_whose_label_got_under_half(plain):
    result = get_method("el2n").compute(plain)
    counted = result.values["value"].to_numpy() < METHODS["el2n"].harmful.below
    _, module = plain.model_at(plain.kept_epochs[0])
    proba, _ = last_layer_outputs(module, plain.train)
    own = proba[np.arange(len(proba)), plain.labels]
    assert counted.any() and (own[counted] < 0.5).all()
    assert share_of_all_rows(result) == pytest.approx(counted.mean())


def test_tracin_counts_rows_that_raise_the_validation_loss_and_grand_has_no_threshold(plain):
    tracin = get_method("tracin").compute(plain)
    values = tracin.values["value"].to_numpy()
    assert share_of_all_rows(tracin) == pytest.approx((values < 0).mean())
    assert 0 < share_of_all_rows(tracin) < 1
    assert tracin.harmful.label == "share that raise the validation loss"
    assert math.isnan(share_of_all_rows(get_method("grand").compute(plain)))


def test_data_oob_counts_rows_most_unseen_trees_get_wrong(plain):
    result = get_method("data_oob", n_estimators=20).compute(plain, seed=0)
    values = result.values["value"].to_numpy()
    assert values.min() >= 0                              # below 0 would never count a row
    assert share_of_all_rows(result) == pytest.approx((values < 0.5).mean()) and share_of_all_rows(result) > 0
