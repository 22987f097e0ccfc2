"""The Compare page under AppTest, on an experiment of 3 strategies x 3 seeds made with the real pipeline."""

import time
from dataclasses import replace

import pytest

from recexp.spec import prepare_data
from recexp.jobs import execute
from recexp.runs import SQLiteRunStore

EXPERIMENT = "page: 3 strategies x 3 seeds"


@pytest.fixture(scope="session")
def compare_home(tmp_path_factory, yeast_grid):
    """A workspace holding one finished experiment of 3 strategies x 3 seeds."""
    home = tmp_path_factory.mktemp("compare_page_workspace")
    yeast_grid.build(home, EXPERIMENT)
    return home


def test_compare_page_without_runs_points_to_train(app, open_page):
    at = open_page(app, "compare")
    assert at.title[0].value == "Compare"
    assert any("No finished runs yet" in i.value for i in at.info)


def test_compare_page_shows_the_experiment(app, open_page, compare_home, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(compare_home))
    at = open_page(app, "compare")
    assert not at.error, [e.value for e in at.error]
    assert any(EXPERIMENT in m.value and "9 runs" in m.value and "3 strategies" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table.columns) == ["none", "random_over", "Δ random_over", "class_weights", "Δ class_weights"]
    assert table.index[0] == "pr_auc[1] (primary)" and "p Holm" in table.iloc[0]["Δ random_over"]
    assert "balanced_accuracy" in table.index and table.loc["balanced_accuracy", "Δ random_over"].count("p BH")
    # the verdict on the primary score: one sentence per strategy, from the seed-level test
    assert any(s.value == "Verdict on PR-AUC of 1" for s in at.subheader)
    verdicts = [box.value for box in [*at.info, *at.success, *at.error] if "(Holm-adjusted p = " in box.value]
    assert len(verdicts) == 2 and all("3 seeds" in v for v in verdicts)
    assert any("smallest difference in PR-AUC of 1 detected with 80% power" in c.value for c in at.caption)
    charts = at.get("plotly_chart")
    # bars, heat map, ROC, PR, confusion, confusion difference, recall@precision, capture, training, importance
    assert len(charts) == 10
    statements = [m.value for m in at.markdown if "per 1,000 rows scored" in m.value]
    assert len(statements) == 3 and "top 10%" in statements[0]
    # the shared grid trains 2 epochs of 256-row batches: every strategy is flagged as too short
    notes = [line for w in at.warning for line in w.value.splitlines()]
    assert [n[2:].split(":")[0] for n in notes if "optimiser steps" in n] == ["none", "random_over", "class_weights"]

    at.slider(key="compare_top_percent").set_value(30).run()
    assert not at.exception, at.exception
    assert any("top 30%" in m.value for m in at.markdown)
    at.radio(key="compare_rule").set_value("threshold").run()
    at.slider(key="compare_threshold").set_value(0.3).run()
    assert not at.exception, at.exception
    assert sum("scoring at least 0.30" in m.value for m in at.markdown) == 3
    at.multiselect(key="compare_metrics").set_value(["recall[1]", "f1[1]_tuned"]).run()
    assert list(at.dataframe[0].value.index) == ["pr_auc[1] (primary)", "recall[1]", "f1[1]_tuned"]

    at.button(key="compare_build_report").click().run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 2                      # CSV and HTML


def test_compare_page_refuses_runs_of_different_splits(app, open_page, monkeypatch, tmp_path, yeast_grid):
    home = tmp_path / "mixed"
    store = SQLiteRunStore(home)
    experiment = store.create_experiment("two splits")
    for split_seed in (0, 1):
        data = prepare_data(replace(yeast_grid.base, split={"method": "stratified", "seed": split_seed}))
        spec = replace(yeast_grid.base, split={"method": "stratified", "seed": split_seed}, fingerprint=data[0].fingerprint)
        run = store.create_run(experiment.id, spec.to_dict(), name=f"split {split_seed}", status="running")
        execute(spec, store, run.id, data=data)
    monkeypatch.setenv("RECEXP_HOME", str(home))
    at = open_page(app, "compare")
    assert any("different test splits" in e.value for e in at.error)


def test_compare_page_shows_importance_distributions_of_the_runs(app, open_page, compare_home, monkeypatch,
                                                                  yeast_grid):
    import json

    monkeypatch.setenv("RECEXP_HOME", str(compare_home))
    at = open_page(app, "compare")
    assert at.selectbox(key="compare_importance_method").value == "mean_loss"

    def drawn() -> dict:
        chart = next(c for c in at.get("plotly_chart") if c.key == "compare_importance")
        return json.loads(chart.proto.spec)

    figure = drawn()
    assert {trace["name"] for trace in figure["data"]} == {"real rows", "synthetic rows"}
    assert {x for trace in figure["data"] for x in trace["x"]} == set(yeast_grid.strategies)
    synthetic = next(trace for trace in figure["data"] if trace["name"] == "synthetic rows")
    assert set(synthetic["x"]) == {"random_over"}                    # the only strategy here that adds rows
    assert "Mean training loss" in figure["layout"]["title"]["text"]

    at.selectbox(key="compare_importance_method").set_value("forgetting").run()
    assert not at.exception, at.exception
    assert "Forgetting" in drawn()["layout"]["title"]["text"]
    assert len(at.get("plotly_chart")) == 10


def test_too_few_seeds_are_said_and_add_seeds_queues_the_next_ones(app, open_page, monkeypatch, tmp_path):
    from recexp.cli import main

    monkeypatch.setenv("RECEXP_HOME", str(tmp_path / "two_seeds"))
    assert main(["run", "yeast_me2", "--task", "table", "--model", "logreg", "--strategy", "none", "--strategy",
                 "class_weights", "--seeds", "2", "--aa", "--epochs", "2", "--batch-size", "64",
                 "--experiment", "two seeds"]) == 0
    at = open_page(app, "compare")
    assert not at.exception, at.exception
    verdicts = [box.value for box in at.info if "a verdict needs at least 3" in box.value]
    assert len(verdicts) == 2 and any(v.startswith("A/A check: none (A/A): 2 paired seeds") for v in verdicts)
    assert "(2 seeds: no test; P(better) " in at.dataframe[0].value.iloc[0]["Δ class_weights"]
    assert at.number_input(key="compare_more_seeds").value == 1
    at.button(key="compare_add_seeds").click().run()
    assert not at.exception, at.exception
    store = SQLiteRunStore(tmp_path / "two_seeds")
    added = sorted((r.spec["strategy"], r.spec.get("aa", False), r.spec["seed"]) for r in store.list_runs()
                   if r.spec["seed"] % 10_000 == 2)
    assert added == [("class_weights", False, 2), ("none", False, 2), ("none", True, 10002)]
    assert len(store.list_experiments()) == 1                  # into the same experiment
    deadline = time.monotonic() + 300                        # let the queued seeds train: no worker outlives the test
    while any(r.is_active for r in store.list_runs()) and time.monotonic() < deadline:
        at.run()
        time.sleep(1)
    assert not any(r.is_active for r in store.list_runs())
