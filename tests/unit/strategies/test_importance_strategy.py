"""importance_weighting on real finished runs: it replays the source run's rows and drops or weights the
right ones, refuses a source run of another split with a sentence, and its random control is seeded.

The source runs are logistic regressions on the bundled yeast_me2 table (2 epochs, under a second each),
trained once per module into a workspace of their own. The strategy opens no run store: each test resolves
the source run from that store (``recexp.jobs.source_run``) and hands it over, as ``execute`` does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.importance import run_importance
from recexp.spec import RunSpec, prepare_data
from recexp.jobs import execute, source_run
from recexp.runs import RUNNING, SQLiteRunStore
from recexp.strategies import STRATEGIES, get_strategy

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A workspace with finished runs: ``plain`` (no strategy), ``over`` (random over-sampling), ``other_split``."""
    store = SQLiteRunStore(tmp_path_factory.mktemp("importance_strategy_workspace"))
    experiment = store.create_experiment("sources")
    ids = {}
    for key, spec in {"plain": BASE, "over": replace(BASE, strategy="random_over"),
                      "other_split": replace(BASE, split={"method": "stratified", "seed": 1})}.items():
        run = store.create_run(experiment.id, spec.to_dict(), name=key, status=RUNNING)
        execute(spec, store, run.id)
        ids[key] = run.id
    dataset, split = prepare_data(BASE)
    return {"store": store, "ids": ids, "train": dataset.subset(split.train)}


@pytest.fixture
def workspace(source, monkeypatch):
    """The source runs' workspace; the global one (``SQLiteRunStore.open()``) refuses to open, so a strategy
    that still reached for it would fail."""
    def refuse(*args, **kwargs):
        raise AssertionError("importance_weighting opened the global run store")

    monkeypatch.setattr(SQLiteRunStore, "open", refuse)
    return source


def _bound(store, **params):
    """importance_weighting with ``params``, handed its source run and values from ``store``."""
    strategy = get_strategy("importance_weighting", **params)
    return strategy.with_source(source_run(store, strategy.run_id, strategy.method))


def _features(frame: pd.DataFrame, train) -> pd.DataFrame:
    return frame[[*train.schema.feature_columns, LABEL]].reset_index(drop=True)


def test_drop_the_lowest_fifth_of_the_synthetic_rows(workspace):
    store, run_id, train = workspace["store"], workspace["ids"]["over"], workspace["train"]
    replayed = store.read_table(run_id, "train_rows")
    values = run_importance(store, run_id, "mean_loss").values
    synthetic = values[values["is_synthetic"]]
    k = int(np.round(0.2 * len(synthetic)))
    lowest = synthetic.sort_values(["value", "row"], kind="stable")["row"].to_numpy()[:k]

    result = _bound(store, run_id=run_id, method="mean_loss", scope="synthetic", fraction=0.2).apply(train, seed=0)
    out = result.dataset.frame
    assert len(out) == len(replayed) - k
    assert int(out[IS_SYNTHETIC].sum()) == len(synthetic) - k
    assert not any(result.report.removed.values())                    # every real row stays
    expected = replayed.drop(index=lowest)
    pd.testing.assert_frame_equal(_features(out, train), _features(expected, train), check_dtype=False)
    # the rows dropped are exactly the lowest-valued synthetic ones
    kept_values = synthetic.set_index("row")["value"].drop(index=lowest)
    assert synthetic.set_index("row").loc[lowest, "value"].max() <= kept_values.min()
    by_class = synthetic.set_index("row").loc[lowest, "class"].value_counts()
    note = next(n for n in result.report.notes if n.startswith("Dropped"))
    assert f"Dropped {k:,} of {len(synthetic):,} rows in scope (synthetic), the lowest-valued" in note
    assert f"{k:,} of them synthetic" in note
    assert all(f"{name} {n:,}" in note for name, n in by_class.items())
    # real rows come back from the input exactly; new rows trace back to their seed row in the input
    real = ~out[IS_SYNTHETIC].to_numpy()
    pd.testing.assert_frame_equal(out.loc[real, list(train.frame.columns)].reset_index(drop=True),
                                  train.frame.iloc[result.source_rows[real]].reset_index(drop=True))
    assert (out[LABEL].to_numpy() == train.y[result.source_rows]).all()


def test_weight_mode_keeps_every_row_and_ranks_weights_by_value(workspace):
    store, run_id, train = workspace["store"], workspace["ids"]["over"], workspace["train"]
    values = run_importance(store, run_id, "mean_loss").values.sort_values("row")
    result = _bound(store, run_id=run_id, action="weight", scope="synthetic", fraction=0.5).apply(train, seed=0)
    out = result.dataset.frame
    weights = out[SAMPLE_WEIGHT].to_numpy()
    assert len(out) == len(values) and np.isclose(weights.mean(), 1.0) and (weights > 0).all()
    synthetic = values["is_synthetic"].to_numpy()
    real_weights = weights[~synthetic]
    assert np.allclose(real_weights, real_weights[0])                 # out of scope: untouched (up to the scale)
    order = np.argsort(values["value"].to_numpy()[synthetic], kind="stable")
    ranked = weights[synthetic][order]
    assert (np.diff(ranked) > 0).all()                                 # more valuable, more weight
    assert np.isclose(ranked[-1], real_weights[0])                     # the best synthetic row keeps full weight
    assert np.isclose(ranked[0] / ranked[-1], 0.5 + 0.5 / synthetic.sum())
    assert result.report.class_weights is not None


def test_random_order_is_seeded_and_drops_as_many_rows(workspace):
    store, run_id, train = workspace["store"], workspace["ids"]["over"], workspace["train"]

    def dropped(seed, order="random"):
        strategy = _bound(store, run_id=run_id, scope="all", fraction=0.3, order=order)
        return strategy.apply(train, seed=seed).dataset.frame

    first, again, other, lowest = dropped(1), dropped(1), dropped(2), dropped(1, "lowest")
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert len(first) == len(other) == len(lowest)
    assert not first.equals(lowest)
    assert dropped(5, "lowest").equals(lowest)                        # the values do not depend on the seed


def test_source_runs_that_do_not_fit_are_refused_with_a_sentence(workspace):
    store, ids, train = workspace["store"], workspace["ids"], workspace["train"]
    with pytest.raises(InvalidParameterError, match="parameter 'run_id' is not set") as caught:
        get_strategy("importance_weighting").apply(train, seed=0)
    assert str(caught.value).endswith(".")
    cases = [
        ({"run_id": ids["other_split"]}, "was trained on another training split"),
        ({"run_id": ids["plain"], "scope": "synthetic"}, "trained on no synthetic rows"),
        ({"run_id": ids["plain"], "fraction": 1.0}, "would drop all"),
    ]
    for params, sentence in cases:
        with pytest.raises(InvalidParameterError, match=sentence) as caught:
            _bound(store, **params).apply(train, seed=0)
        assert str(caught.value).endswith("."), params
    with pytest.raises(InvalidParameterError, match="names no run of the workspace") as caught:
        source_run(store, "0123456789ab", "mean_loss")
    assert str(caught.value).endswith(".")
    with pytest.raises(InvalidParameterError, match="not a preview sample"):
        _bound(store, run_id=ids["plain"]).apply(train.subset(np.arange(200)), seed=0)
    with pytest.raises(InvalidParameterError, match="'run_id' must be None or a string matching"):
        get_strategy("importance_weighting", run_id="not a run").apply(train, seed=0)


def test_without_its_source_run_handed_over_the_strategy_says_how_to_get_it(workspace):
    """The strategy never opens a run store itself (the global one refuses here): unbound, or bound to another
    run or method, it asks for the source run with a sentence."""
    store, ids, train = workspace["store"], workspace["ids"], workspace["train"]
    with pytest.raises(InvalidParameterError, match="were not handed over.*with_source") as caught:
        get_strategy("importance_weighting", run_id=ids["plain"]).apply(train, seed=0)
    assert str(caught.value).endswith(".")
    other_method = get_strategy("importance_weighting", run_id=ids["plain"], method="forgetting")
    with pytest.raises(InvalidParameterError, match="forgetting values were not handed over"):
        other_method.with_source(source_run(store, ids["plain"], "mean_loss")).apply(train, seed=0)


def test_unfinished_source_run_is_refused(workspace):
    store = workspace["store"]
    queued = store.create_run(store.create_experiment("waiting").id, BASE.to_dict(), name="queued")
    with pytest.raises(InvalidParameterError, match=f"run {queued.id}, which is queued, not finished"):
        source_run(store, queued.id, "mean_loss")


def test_changed_data_is_refused(workspace):
    store = workspace["store"]
    spec = replace(BASE, fingerprint="0" * 16)              # as if the file changed after the run
    run = store.create_run(store.create_experiment("stale").id, spec.to_dict(), name="stale", status=RUNNING)
    store.finish(run.id, "finished")
    with pytest.raises(InvalidDataError, match="The data changed since the run was specified"):
        source_run(store, run.id, "mean_loss")


def test_a_run_of_the_strategy_trains_end_to_end(workspace):
    store, run_id = workspace["store"], workspace["ids"]["over"]
    spec = replace(BASE, strategy="importance_weighting",
                   strategy_params={"run_id": run_id, "scope": "synthetic", "fraction": 0.5})
    run = store.create_run(store.create_experiment("pruned").id, spec.to_dict(), name="pruned", status=RUNNING)
    final = execute(spec, store, run.id)
    info = store.get_run(run.id).info
    source_rows = store.get_run(run_id).info["rows"]["train_after_strategy"]
    synthetic = store.get_run(run_id).metrics["synthetic_rows"]
    assert info["rows"]["train_after_strategy"] == source_rows - int(np.round(0.5 * synthetic))
    assert final["synthetic_rows"] == synthetic - int(np.round(0.5 * synthetic))
    assert any(note.startswith("Replayed the") for note in info["strategy_report"]["notes"])
    assert store.read_table(run.id, "train_rows")["source_row"].isin(store.read_table(run_id, "train_rows")
                                                                     ["source_row"]).all()


def test_the_registry_marks_it_as_needing_a_source_run():
    cls = STRATEGIES["importance_weighting"]
    assert cls.needs_source_run and cls.family == "importance"
    assert set(cls.params["method"].options) >= {"mean_loss", "forgetting"}
