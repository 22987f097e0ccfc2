"""The Importance page under AppTest, on finished runs made with the real pipeline.

The workspace holds logistic regressions on the bundled yeast_me2 table (no strategy; random
over-sampling with seeds 0 and 1), a finished point-removal curve of the over-sampled run (executed
in-process), and a DIN run on the head of the Taobao sample for the attention section. Tests that click
buttons work on a copy of it, so the runs they queue never reach the other tests.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from recexp.data.source import DataSource
from recexp.importance.removal import curve_settings, launch_removal_curve
from recexp.spec import RunSpec, prepare_data
from recexp.jobs import JobRunner, execute
from recexp.runs import FINISHED, RUNNING, SQLiteRunStore

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


def _execute(store, experiment_id, spec, name, data=None) -> str:
    run = store.create_run(experiment_id, spec.to_dict(), name=name, status=RUNNING)
    execute(spec, store, run.id, data=data)
    return run.id


@pytest.fixture(scope="session")
def importance_home(tmp_path_factory, taobao_head_file):
    """A workspace with finished runs (ids by role in ``runs.json`` beside it)."""
    home = tmp_path_factory.mktemp("importance_page_workspace")
    store = SQLiteRunStore(home)
    data = prepare_data(BASE)
    base = replace(BASE, fingerprint=data[0].fingerprint)
    experiment = store.create_experiment("yeast: none and random_over")
    ids = {"plain": _execute(store, experiment.id, base, "none / logreg / seed 0", data),
           "over": _execute(store, experiment.id, replace(base, strategy="random_over"),
                            "random_over / logreg / seed 0", data),
           "over_1": _execute(store, experiment.id, replace(base, strategy="random_over", seed=1),
                              "random_over / logreg / seed 1", data)}
    # a finished removal curve of the over-sampled run (runs executed here rather than by workers)
    import os
    before = os.environ.get("RECEXP_HOME")
    os.environ["RECEXP_HOME"] = str(home)
    try:
        curve, queued = launch_removal_curve(JobRunner(store, max_concurrent=0), ids["over"], "mean_loss",
                                             fractions=(0, 0.2), seeds=(0, 1))
        for run in queued:
            assert store.claim(run.id)
            execute(RunSpec.from_dict(run.spec), store, run.id)
    finally:
        if before is None:
            os.environ.pop("RECEXP_HOME", None)
        else:
            os.environ["RECEXP_HOME"] = before
    ids["curve"] = curve.id
    din = RunSpec(source=DataSource(str(taobao_head_file(6000))).to_dict(), task="behavior",
                  task_params={"sequence_length": 5}, model="din", model_params={"embedding_dim": 8},
                  train={"epochs": 2, "batch_size": 256, "learning_rate": 3e-3, "device": "cpu"})
    ids["din"] = _execute(store, store.create_experiment("taobao: din").id, din, "none / din / seed 0")
    return home, ids


@pytest.fixture
def workspace(importance_home, monkeypatch):
    home, ids = importance_home
    monkeypatch.setenv("RECEXP_HOME", str(home))
    return SQLiteRunStore(home), ids


@pytest.fixture
def scratch(importance_home, monkeypatch, tmp_path):
    """A copy of the workspace for tests that queue runs."""
    home, ids = importance_home
    copy = tmp_path / "workspace_copy"
    shutil.copytree(home, copy)
    monkeypatch.setenv("RECEXP_HOME", str(copy))
    return SQLiteRunStore(copy), ids


def _open(app, open_page, runs: list[str], method: str = "mean_loss"):
    at = open_page(app, "importance")
    at.multiselect(key="importance_runs").set_value(runs)
    at.selectbox(key="importance_method").set_value(method)
    at.run()
    assert not at.exception, at.exception
    return at


def _table(at, *columns):
    """The value of the first dataframe on the page that has all these columns."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def test_importance_page_without_runs_points_to_train(app, open_page):
    at = open_page(app, "importance")
    assert at.title[0].value == "Importance"
    assert any("No finished runs yet" in i.value for i in at.info)


def test_one_finished_run_shows_distributions_rows_and_its_curve(app, open_page, workspace):
    store, ids = workspace
    at = _open(app, open_page, [ids["over"]])
    assert not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    # by class, by origin, histogram, value vs loss, the removal curve (no rank agreement: one result)
    assert len(charts) == 5
    summary = _table(at, "run", "group", "name")
    assert {"run", "group", "name", "rows", "mean", "median"} <= set(summary.columns)
    assert set(summary.loc[summary["group"] == "origin", "name"]) == {"real", "synthetic"}
    # the share is of rows the mean loss marks as fitted badly (loss > ln 2), headed so, its sign convention stated
    frame = next(f for f in at.dataframe if "share_harmful" in f.value.columns)
    assert json.loads(frame.proto.columns)["share_harmful"]["label"] == "share the model fits badly (loss > ln 2)"
    assert 0 < summary["share_harmful"].iloc[-1] < 1
    assert any("minus the mean cross-entropy loss" in c.value for c in at.caption)
    extremes = _table(at, "rank", "mean_loss")
    assert list(extremes["rank"][:2]) == ["top 1", "top 2"] and "bottom 1" in set(extremes["rank"])
    assert len(extremes) == 20 and {"value", "class", "origin", "mean_loss", "source_row", "0"} <= set(extremes)
    assert (extremes["value"].iloc[:10].min() >= extremes["value"].iloc[10:].max())
    harmful = _table(at, "mean_rank")
    assert {"source_row", "class", "cleanlab_flagged"} <= set(harmful.columns)
    assert _table(at, "overlap", "lift")["rows"].iloc[0] == \
        store.get_run(ids["over"]).info["rows"]["train_after_strategy"]
    assert any("Choose two or more runs" in i.value for i in at.info)
    # the finished curve: 2 seeds per point, both orders, and the gap table
    gap = _table(at, "lowest_minus_random")
    assert list(gap["fraction"]) == [0.0, 0.2] and gap["lowest_minus_random"].iloc[0] == 0
    assert any("6 of 6 runs finished" in str(p.proto) for p in at.get("progress")), [p.proto for p in at.get("progress")]

    at.slider(key="importance_n_rows").set_value(5).run()
    assert not at.exception and len(_table(at, "rank", "mean_loss")) == 10


def test_several_runs_side_by_side_with_their_agreement(app, open_page, workspace):
    _, ids = workspace
    at = _open(app, open_page, [ids["plain"], ids["over"], ids["over_1"]])
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart")[0].key == "importance_by_class"
    figure = at.get("plotly_chart")[0].proto.spec
    assert figure.count('"xaxis3"') >= 1                                   # one panel per run
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert "importance_agreement" in keys
    assert len(_table(at, "run", "group", "name")["run"].unique()) == 3
    at.multiselect(key="importance_other_methods").set_value(["forgetting"]).run()
    assert not at.exception, at.exception
    assert any("of every one of the 6 results" in m.value for m in at.markdown)


def test_another_method_and_the_attention_of_a_din_run(app, open_page, workspace):
    store, ids = workspace
    at = _open(app, open_page, [ids["din"]], method="forgetting")
    assert not at.error, [e.value for e in at.error]
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert "importance_attention" in keys and "importance_by_class" in keys
    profile = _table(at, "by", "key", "share")
    assert set(profile["by"]) == {"position", "behavior", "category"}
    log = DataSource.from_dict(store.get_run(ids["din"]).spec["source"]).load().frame
    known = {"item": set(log["item_id"].astype(str)), "category": set(log["category_id"].astype(str))}
    assert set(profile.loc[profile["by"] == "category", "key"]) - {"other"} <= known["category"]
    extremes = _table(at, "rank", "mean_loss")                             # source ids, not internal codes
    for column in ("item", "category", "hist_item_0", "hist_category_0"):
        base = column.removeprefix("hist_").removesuffix("_0")
        assert set(extremes[column]) - {"rare/missing"} <= known[base] and len(set(extremes[column])) > 1
    assert any("no synthetic rows to prune" in i.value for i in at.info)
    assert any("No removal curve" in i.value for i in at.info)


def test_a_run_whose_data_changed_gives_a_sentence(app, open_page, scratch):
    store, ids = scratch
    stale = store.create_run(store.create_experiment("stale").id,
                             {**store.get_run(ids["plain"]).spec, "fingerprint": "0" * 16}, name="stale",
                             status=RUNNING)
    store.finish(stale.id, FINISHED)
    folder = store.artifact_dir(stale.id, create=True)
    for name in ("train_rows.parquet", "sample_stats.parquet"):
        shutil.copy(store.artifact_dir(ids["plain"]) / name, folder / name)
    at = _open(app, open_page, [stale.id])
    assert any("The data changed since the run was specified" in e.value and e.value.endswith(".")
               for e in at.error)
    at = _open(app, open_page, [stale.id, ids["plain"]])                  # the other run is still shown
    assert len(at.error) == 1 and _table(at, "rank", "mean_loss") is not None


def test_prune_and_curve_buttons_queue_runs(app, open_page, scratch, monkeypatch):
    store, ids = scratch
    at = _open(app, open_page, [ids["over"]])
    before = {r.id for r in store.list_runs()}
    at.slider(key="importance_prune_share").set_value(0.3)
    at.button(key="importance_prune").click().run()
    assert not at.exception, at.exception
    new = [r for r in store.list_runs() if r.id not in before]
    assert len(new) == 1
    spec = new[0].spec
    assert spec["strategy"] == "importance_weighting" and spec["model"] == "logreg"
    assert spec["strategy_params"] == {"run_id": ids["over"], "method": "mean_loss", "action": "drop",
                                       "scope": "synthetic", "fraction": 0.3, "order": "lowest"}
    assert any(f"Run {new[0].id}" in i.value for i in at.info)

    at.multiselect(key="importance_curve_fractions").set_value([0, 20])
    at.number_input(key="importance_curve_seeds").set_value(1)
    at.button(key="importance_curve_launch").click().run()
    assert not at.exception, at.exception
    curves = [e for e in store.list_experiments() if curve_settings(e) and e.id != ids["curve"]]
    assert len(curves) == 1
    queued = store.list_runs(curves[0].id)
    assert len(queued) == 3 and {r.spec["strategy_params"]["order"] for r in queued} == {"lowest", "random"}
    assert at.session_state["importance_curve"] == curves[0].id
    runner = JobRunner(store)                       # no worker outlives the test
    for run in store.list_runs(statuses=["queued", "running"]):
        runner.cancel(run.id)
