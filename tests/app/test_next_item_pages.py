"""The next-item task from outside: the CLI contract (run --json, compare --by-slice --json) and the Train and
Compare pages under AppTest, on the first 8,000 events of the bundled Taobao sample (about 80 users)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP

ROOT = Path(__file__).resolve().parents[2]


def _cli(home: Path, *args: str) -> dict:
    env = dict(os.environ, RECEXP_HOME=str(home), PYTHONPATH=str(ROOT))
    completed = subprocess.run([sys.executable, "-m", "recexp", *args], capture_output=True, text=True, env=env,
                               cwd=ROOT, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def next_item_home(tmp_path_factory, taobao_head_file):
    """A workspace with a finished next-item experiment run from the CLI: none and long_tail_weighting x 3 seeds,
    the two-tower model, one epoch; returns (home, the run command's JSON)."""
    home = tmp_path_factory.mktemp("next_item_workspace")
    result = _cli(home, "run", str(taobao_head_file(8000)), "--task", "next_item", "--model", "two_tower",
                  "--json", "--epochs", "1", "--seeds", "3", "--strategy", "none", "--strategy", "long_tail_weighting",
                  "--task-param", "sequence_length=5", "--model-param", "embedding_dim=16",
                  "--experiment", "next item")
    return home, result


def test_cli_run_reports_full_catalogue_ranking_scores(next_item_home):
    _, result = next_item_home
    assert len(result["runs"]) == 6 and all(r["status"] == "finished" for r in result["runs"])
    for run in result["runs"]:
        metrics = run["metrics"]
        assert {"hr@10", "ndcg@10", "mrr"} <= set(metrics)
        assert 0 <= metrics["ndcg@10"] <= metrics["hr@10"] <= metrics["hr@20"] <= 1
        assert 0 <= metrics["mrr"] <= 1
    assert "not a sample of negatives" in result["protocol"]
    assert result["experiment"]["settings"]["primary"] == "ndcg@10"


def test_cli_compare_by_slice_gives_the_slices_list(next_item_home):
    home, _ = next_item_home
    report = _cli(home, "compare", "--experiment", "next item", "--by-slice", "--json", "--bootstrap", "20")
    assert report["primary"] == "ndcg@10" and "protocol" in report
    groups = {g["group"]: g for g in report["groups"]}
    assert set(groups) == {"none", "long_tail_weighting"}
    assert {"hr@10", "ndcg@10", "mrr", "coverage@10", "popularity@10"} <= set(groups["none"]["metrics"])
    cell = groups["long_tail_weighting"]["metrics"]["ndcg@10"]
    assert cell["n_pairs"] == 3 and cell["ci_low"] is not None
    slices = report["slices"]
    assert slices and all({"slice", "group", "metric", "mean", "ci_low", "ci_high", "n_test_rows"} <= set(s)
                          for s in slices)
    assert {s["metric"] for s in slices} == {"ndcg@10"}
    per_dimension = {}
    for s in slices:
        if s["group"] == "none":
            per_dimension.setdefault(s["slice"].split(":")[0], 0)
            per_dimension[s["slice"].split(":")[0]] += s["n_test_rows"]
    assert len(set(per_dimension.values())) == 1                  # every dimension covers every test row


def test_train_page_offers_the_tasks_models_strategies_and_scores():
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    at.selectbox(key="train_task").set_value("next_item")
    at.run()
    assert not at.exception, at.exception
    assert [o.split(":")[0] for o in at.selectbox(key="train_model").options] == ["two_tower", "sasrec"]
    strategies = {o.rsplit(" · ", 1)[0].rsplit("(", 1)[1].rstrip(")")
                  for o in at.multiselect(key="train_strategies").options}
    assert strategies == {"none", "sequence_crop", "sequence_mask", "sequence_reorder", "popularity_negatives",
                          "long_tail_weighting"}
    assert at.selectbox(key="train_primary").value == "ndcg@10"
    assert any("Sampled softmax" in o for o in at.selectbox(key="train_loss").options)
    assert any("full item set" in c.value for c in at.caption)
    at.selectbox(key="train_task").set_value("behavior")
    at.run()
    assert not at.exception, at.exception
    assert "smote" in str(at.multiselect(key="train_strategies").options)
    assert at.selectbox(key="train_model").value == "mlp"


def test_compare_page_shows_the_ranking_scores(next_item_home, monkeypatch):
    home, _ = next_item_home
    monkeypatch.setenv("RECEXP_HOME", str(home))
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.multiselect(key="compare_metrics").value[:3] == ["ndcg@10", "hr@5", "ndcg@5"]
    per_run = next(frame.value for frame in at.dataframe if "run_id" in frame.value.columns)
    assert len(per_run) == 6 and per_run["ndcg@10"].between(0, 1).all() and per_run["mrr"].between(0, 1).all()
    assert any("ndcg@10" in " ".join(map(str, [*frame.value.columns, *frame.value.index])) for frame in at.dataframe
               if "run_id" not in frame.value.columns)                  # the strategy x score table
    assert any("full item set" in c.value for c in at.caption)
    assert not any(s.value == "Per class" for s in at.subheader)           # items are ranked, not classes
    assert at.selectbox(key="compare_importance_method").options == ["Mean training loss", "Forgetting events"]


def test_cli_refuses_a_class_mix_strategy_for_next_item_with_a_sentence(tmp_path):
    env = dict(os.environ, RECEXP_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    completed = subprocess.run([sys.executable, "-m", "recexp", "apply", "taobao", "--task", "next_item", "--strategy",
                                "smote", "--out", str(tmp_path / "x.parquet")], capture_output=True, text=True,
                               env=env, cwd=ROOT, timeout=300)
    assert completed.returncode != 0 and "Traceback" not in completed.stderr
    assert "does not apply to the 'next_item' task" in completed.stderr and "long_tail_weighting" in completed.stderr


def test_importance_of_a_next_item_run_is_its_per_sequence_loss_dynamics(next_item_home):
    from recexp.errors import InvalidParameterError
    from recexp.importance import run_importance
    from recexp.runs import SQLiteRunStore

    home, result = next_item_home
    store = SQLiteRunStore(home)
    run_id = result["runs"][0]["id"]
    values = run_importance(store, run_id, "mean_loss").values
    stats = store.read_table(run_id, "sample_stats")
    assert len(values) == stats["row"].nunique() > 0 and values["value"].notna().all()
    with pytest.raises(InvalidParameterError, match="not defined for the 'next_item' task.*mean_loss, forgetting"):
        run_importance(store, run_id, "knn_shapley")


def test_imbalance_page_of_a_next_item_dataset_shows_target_popularity_not_thousands_of_classes():
    """The next-item task's classes are the catalogue's items: the page shows how concentrated the targets are,
    and leaves out the per-class charts (thousands of bars, violins and table rows took minutes to draw)."""
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params = {"dataset": "taobao", "task": "next_item", "split": "leave_last_out"}
    at.run()
    at.switch_page("pages/imbalance.py")
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Target items"].replace(",", "")) > 100 and 0 < float(metrics["Gini of target popularity"]) < 1
    assert "Classes" not in metrics and "Imbalance ratio" not in metrics
    assert sum("Not shown for a ranking task" in i.value for i in at.info) == 2


def test_data_page_switching_task_selects_that_tasks_own_split(app):
    """Behaviour task (temporal split) -> next_item selects leave_last_out, the next-item task's default; back to
    behaviour, leave_last_out (which behaviour cannot use) is not kept: the split is temporal again."""
    split = app.selectbox(key="data_split_method")
    assert app.selectbox(key="data_task").value == "behavior" and split.value == "temporal"
    app.selectbox(key="data_task").set_value("next_item").run()
    assert not app.exception
    split = app.selectbox(key="data_split_method")
    assert list(split.options) == ["leave_last_out", "temporal"] and split.value == "leave_last_out"
    app.selectbox(key="data_task").set_value("behavior").run()
    assert not app.exception
    split = app.selectbox(key="data_split_method")
    assert "leave_last_out" not in split.options and split.value == "temporal"
