"""The run recexp opens for importance, the contract, the training-dynamics methods and the cache."""

import numpy as np
import pandas as pd
import pytest

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.importance import CACHE_FOLDER, METHODS, TrainedRun, get_method, run_importance
from recexp.importance.dynamics import forgetting_events
from recexp.runs import FAILED

EPOCHS = 5          # what the fixture runs train for (the run_epochs fixture)


def test_a_finished_run_opens_with_its_training_rows_stats_and_kept_states(run_store, oversampled_run):
    run = TrainedRun.load(run_store, oversampled_run)
    assert len(run.train) == len(run.source_rows) == run.sample_stats["row"].nunique()
    assert run.is_synthetic.any() and not run.is_synthetic.all()
    # Over-sampled rows copy their seed row: same label, and the seed row is a real row of the dataset.
    real_sources = set(run.source_rows[~run.is_synthetic])
    assert set(run.source_rows[run.is_synthetic]) <= real_sources
    assert run.kept_epochs[0] == 1 and len(run.kept_epochs) <= 6 and max(run.kept_epochs) <= EPOCHS
    model, module = run.model_at(run.kept_epochs[-1])
    assert model.name == "mlp" and not module.training
    with pytest.raises(InvalidDataError, match="kept no model state for epoch 99"):
        run.model_at(99)
    loss = run.matrix("loss")
    assert loss.shape == (len(run.train), EPOCHS) and np.isfinite(loss).all()


def test_an_unfinished_run_is_refused_with_a_sentence(run_store, make_spec):
    run = run_store.create_run(run_store.create_experiment("x").id, make_spec().to_dict())
    run_store.finish(run.id, FAILED, error="boom")
    with pytest.raises(InvalidDataError, match="is failed, not finished"):
        TrainedRun.load(run_store, run.id)


def test_forgetting_events_are_counted_on_a_scripted_sequence():
    correct = np.array([
        [1, 0, 1, 0, 1, 0],     # learned, forgotten three times
        [0, 0, 0, 0, 0, 0],     # never learned
        [0, 1, 1, 1, 1, 1],     # learned once, kept: unforgettable
        [1, 1, 0, 0, 1, 1],     # one forgetting event
    ], dtype=bool)
    events, learned = forgetting_events(correct)
    assert events.tolist() == [3, 0, 0, 1]
    assert learned.tolist() == [True, False, True, True]


def test_forgetting_values_rank_never_learned_rows_lowest(run_store, plain_run):
    result = get_method("forgetting").compute(TrainedRun.load(run_store, plain_run))
    run = TrainedRun.load(run_store, plain_run)
    correct = run.matrix("correct") > 0.5
    events, learned = forgetting_events(correct)
    values = result.values["value"].to_numpy()
    assert np.array_equal(values[learned], -events[learned])
    assert (values[~learned] == -(EPOCHS // 2 + 1)).all()
    assert values[~learned].max(initial=-np.inf) < values[learned].min()


def test_mean_loss_is_minus_the_average_loss_and_checks_its_epochs(run_store, plain_run):
    run = TrainedRun.load(run_store, plain_run)
    stats = run.sample_stats
    expected = -stats[stats["epoch"] <= 2].groupby("row")["loss"].mean().sort_index().to_numpy()
    result = get_method("mean_loss", epochs=2).compute(run)
    assert np.allclose(result.values["value"].to_numpy(), expected)
    # Misclassified rows have a higher loss, so a lower value, on average.
    final_correct = stats[stats["epoch"] == EPOCHS].set_index("row")["correct"].sort_index().to_numpy()
    assert expected[final_correct].mean() > expected[~final_correct].mean()
    with pytest.raises(InvalidParameterError, match="trained for 5 epoch"):
        get_method("mean_loss", epochs=50).compute(run)


def test_result_rows_carry_class_origin_and_source_row_and_summarise(run_store, oversampled_run):
    result = run_importance(run_store, oversampled_run, "mean_loss")
    values = result.values
    assert list(values.columns) == ["row", "value", "label", "class", "is_synthetic", "source_row"]
    assert values["is_synthetic"].any()
    summary = result.summary()
    origin = summary[summary["group"] == "origin"].set_index("name")
    assert origin.loc["real", "rows"] + origin.loc["synthetic", "rows"] == len(values)
    assert np.isclose(origin.loc["synthetic", "mean"], values.loc[values["is_synthetic"], "value"].mean())
    assert set(summary[summary["group"] == "class"]["name"]) == set(values["class"])


def test_values_are_cached_among_the_run_artifacts(run_store, plain_run):
    first = run_importance(run_store, plain_run, get_method("mean_loss", epochs=3), seed=0)
    cached = list((run_store.artifact_dir(plain_run) / CACHE_FOLDER).glob("mean_loss-*-s0.parquet"))
    assert cached
    again = run_importance(run_store, plain_run, get_method("mean_loss", epochs=3), seed=0)
    pd.testing.assert_frame_equal(first.values, again.values)
    assert again.seconds == pytest.approx(first.seconds)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_spec_matches_its_constructor_and_rejects_bad_values(name):
    cls = METHODS[name]
    assert set(cls.params) == set(cls.param_names())
    assert cls.title and cls.summary and cls.needs in ("stats", "states", "features")
    with pytest.raises(InvalidParameterError):
        cls(**{next(iter(cls.params)): "not a valid value"}).validate_params()
