"""Point-removal curves: the grid of specs, one experiment queued through the job runner, and the curve
assembled from its finished runs (mean and interval per point, fraction 0 shared by both orders).

Source and curve runs are logistic regressions on the bundled yeast_me2 table (2 epochs). Most runs are
executed in-process (a runner with no free worker slot only queues); one small curve goes through real
worker processes.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.importance.removal import (
    ORDERS, curve_settings, launch_removal_curve, removal_curve, removal_experiments, removal_specs,
)
from recexp.spec import RunSpec
from recexp.jobs import JobRunner, execute
from recexp.runs import FINISHED, QUEUED, RUNNING, SQLiteRunStore

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace with one finished over-sampled source run."""
    return tmp_path_factory.mktemp("removal_workspace")


@pytest.fixture
def store(home, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(home))          # the strategy opens the workspace store
    return SQLiteRunStore.open()


@pytest.fixture(scope="module")
def source_id(home):
    store = SQLiteRunStore(home)
    spec = replace(BASE, strategy="random_over")
    run = store.create_run(store.create_experiment("source").id, spec.to_dict(), name="source", status=RUNNING)
    execute(spec, store, run.id)
    return run.id


def _run_queued_in_process(store, runs) -> None:
    for run in runs:
        assert store.claim(run.id)
        execute(RunSpec.from_dict(store.get_run(run.id).spec), store, run.id)


def test_specs_keep_the_source_settings_and_share_fraction_zero():
    source = replace(BASE, strategy="random_over", seed=4)
    specs = removal_specs(source, "0123456789ab", "mean_loss", fractions=[0.2, 0, 0.1], seeds=[0, 1])
    # fraction 0 once per seed, then 2 fractions x 2 orders x 2 seeds
    assert len(specs) == 2 + 2 * 2 * 2
    assert all(s.strategy == "importance_weighting" for s in specs)
    assert all((s.source, s.split, s.model, s.model_params, s.train, s.task) ==
               (source.source, source.split, source.model, source.model_params, source.train, source.task)
               for s in specs)
    cells = [(s.strategy_params["fraction"], s.strategy_params["order"], s.seed) for s in specs]
    assert cells[:2] == [(0.0, "lowest", 0), (0.0, "lowest", 1)]
    assert set(cells[2:]) == {(f, o, s) for f in (0.1, 0.2) for o in ORDERS for s in (0, 1)}
    assert {s.strategy_params["action"] for s in specs} == {"drop"}
    assert {s.strategy_params["run_id"] for s in specs} == {"0123456789ab"}
    for bad, sentence in [({"fractions": [0.1, 1.0]}, "at least 0 and below 1"), ({"orders": ["highest"]}, "among"),
                          ({"seeds": []}, "at least one seed"), ({"method": "shapley?"}, "Unknown importance method")]:
        kwargs = {"method": "mean_loss", **bad}
        method = kwargs.pop("method")
        with pytest.raises(InvalidParameterError, match=sentence):
            removal_specs(source, "0123456789ab", method, **kwargs)


def test_one_experiment_is_queued_and_assembled_into_a_curve(store, source_id):
    runner = JobRunner(store, max_concurrent=0)          # queue only; the runs are executed in-process below
    calls = []
    experiment, runs = launch_removal_curve(runner, source_id, "mean_loss", fractions=(0, 0.2, 0.5), seeds=(0, 1),
                                            progress=lambda done, message: calls.append(done))
    assert len(runs) == 2 + 2 * 2 * 2 and {r.status for r in runs} == {QUEUED}
    assert {r.experiment_id for r in runs} == {experiment.id}
    settings = curve_settings(experiment)
    assert settings["source_run"] == source_id and settings["method"] == "mean_loss"
    assert removal_experiments(store, source_id)[0].id == experiment.id
    assert removal_experiments(store, "ffffffffffff") == []

    pending = removal_curve(store, experiment.id)
    assert not pending.done and pending.points.empty and pending.runs == {QUEUED: 10}

    _run_queued_in_process(store, runs)
    curve = removal_curve(store, experiment.id, "balanced_accuracy")
    assert curve.done and curve.runs == {FINISHED: 10}
    # fraction 0 counts for both orders; every other point has its two seeds
    assert len(curve.points) == 2 * 2 + 2 * 2 * 2
    summary = curve.summary.set_index(["fraction", "order"])
    assert set(summary.index) == {(f, o) for f in (0.0, 0.2, 0.5) for o in ORDERS}
    assert (summary["runs"] == 2).all()
    for (fraction, order), row in summary.iterrows():
        scores = curve.points.query("fraction == @fraction and order == @order")["value"]
        assert np.isclose(row["mean"], scores.mean())
        assert row["low"] <= row["mean"] <= row["high"] or np.isclose(row["low"], row["high"])
    assert summary.loc[(0.0, "lowest"), "mean"] == summary.loc[(0.0, "random"), "mean"]
    gap = curve.gap()
    assert list(gap["fraction"]) == [0.0, 0.2, 0.5] and gap["lowest_minus_random"].iloc[0] == 0.0
    # the runs really dropped what they say: 20% and 50% of the source run's rows
    rows = store.get_run(source_id).info["rows"]["train_after_strategy"]
    for run in runs:
        fraction = run.spec["strategy_params"]["fraction"]
        assert store.get_run(run.id).info["rows"]["train_after_strategy"] == rows - int(np.round(fraction * rows))
    with pytest.raises(InvalidParameterError, match="recorded the score"):
        removal_curve(store, experiment.id, "no_such_score")


def test_a_curve_is_refused_for_runs_that_cannot_source_it(store, source_id):
    runner = JobRunner(store, max_concurrent=0)
    queued = store.create_run(store.create_experiment("waiting").id, BASE.to_dict(), name="queued")
    with pytest.raises(InvalidDataError, match="not finished"):
        launch_removal_curve(runner, queued.id, "mean_loss")
    with pytest.raises(InvalidParameterError, match="not a point-removal curve"):
        removal_curve(store, queued.experiment_id)
    before = len(store.list_runs())
    with pytest.raises(InvalidParameterError, match="'fraction'|below 1"):
        launch_removal_curve(runner, source_id, "mean_loss", fractions=(0, 1.0))
    assert len(store.list_runs()) == before                 # nothing was queued


def test_the_job_runner_trains_a_small_curve_in_worker_processes(store, source_id):
    runner = JobRunner(store, max_concurrent=1, threads_per_job=1)
    experiment, runs = launch_removal_curve(runner, source_id, "mean_loss", fractions=(0, 0.3), seeds=(3,))
    try:
        ended = runner.wait([r.id for r in runs], timeout=300)
    finally:
        runner.stop(cancel_running=True)
    assert [r.status for r in ended] == [FINISHED] * 3, [r.error for r in ended]
    curve = removal_curve(store, experiment.id)
    assert curve.done and len(curve.summary) == 4 and (curve.summary["runs"] == 1).all()
    assert json.loads(experiment.description)["seeds"] == [3]
