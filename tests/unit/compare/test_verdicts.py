"""Verdicts on real runs: a declared primary score, the A/A arm, adding seeds, and the comparisons that must be
flagged instead of scored (too few seeds, duplicate seeds, a broken run, one-class predictions, a missing class).

The experiment is made once with the CLI, as an analyst would: yeast_me2 (a 1-in-29 imbalanced benchmark), a
logistic regression, ``none`` against ``class_weights`` (a real, large effect on balanced accuracy), 3 seeds and
an A/A arm.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recexp.cli import main
from recexp.compare import RunPredictions, compare
from recexp.compare.comparison import _degenerate_notes
from recexp.runs import CANCELLED, FAILED, RUNNING, Run, SQLiteRunStore
from recexp.spec import AA_SEED_OFFSET

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENT = "class weights vs none, with A/A"
GRID = ["run", "yeast_me2", "--task", "table", "--model", "logreg", "--strategy", "none", "--strategy", "class_weights",
        "--epochs", "4", "--batch-size", "64", "--learning-rate", "0.02", "--device", "cpu"]


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace with the experiment above, run through the CLI in this process."""
    folder = tmp_path_factory.mktemp("verdicts")
    previous = os.environ.get("RECEXP_HOME")
    os.environ["RECEXP_HOME"] = str(folder)
    try:
        assert main([*GRID, "--seeds", "3", "--aa", "--primary", "balanced_accuracy", "--experiment", EXPERIMENT,
                     "--json"]) == 0
    finally:
        if previous is None:
            os.environ.pop("RECEXP_HOME")
        else:
            os.environ["RECEXP_HOME"] = previous
    return folder


@pytest.fixture
def workspace(home, tmp_path, monkeypatch):
    """A private copy of the experiment's workspace, set as RECEXP_HOME."""
    copy = tmp_path / "workspace"
    shutil.copytree(home, copy)
    monkeypatch.setenv("RECEXP_HOME", str(copy))
    return copy


def test_cli_declares_the_primary_and_compare_json_gives_the_seed_level_verdict(workspace, capsys):
    store = SQLiteRunStore(workspace)
    experiment = store.list_experiments()[0]
    assert experiment.settings == {"primary": "balanced_accuracy", "aa": True}
    seeds = sorted((r.spec["strategy"], r.spec.get("aa", False), r.spec["seed"]) for r in store.list_runs())
    assert [s for s in seeds if s[1]] == [("none", True, AA_SEED_OFFSET + k) for k in range(3)]

    code, out, _ = cli(capsys, "compare", "--experiment", EXPERIMENT, "--json", "--bootstrap", "50", "--detect", "0.05")
    assert code == 0
    payload = json.loads(out)
    assert payload["primary"] == "balanced_accuracy" and payload["primary_declared"]
    assert "per-seed differences" in payload["inference"] and "never decides" in payload["rows_bootstrap"]
    groups = {g["group"]: g for g in payload["groups"]}
    assert list(groups) == ["none", "class_weights", "none (A/A)"]
    assert [g["is_aa"] for g in groups.values()] == [False, False, True]
    weighted = groups["class_weights"]["metrics"]["balanced_accuracy"]
    assert weighted["adjustment"] == "holm" and weighted["n_pairs"] == 3
    assert weighted["significant"] and weighted["p_adjusted"] < 0.05 and weighted["delta"] > 0.1
    assert weighted["prob_improvement"] == 1.0 and weighted["effect_size"] > 1
    assert groups["class_weights"]["verdict"].startswith("class_weights raises balanced accuracy by +0.")
    assert "Holm-adjusted p = " in groups["class_weights"]["verdict"] and "3 seeds" in groups["class_weights"]["verdict"]
    replica = groups["none (A/A)"]["metrics"]["balanced_accuracy"]
    assert replica["adjustment"] == "none" and replica["n_pairs"] == 3
    assert groups["none (A/A)"]["verdict"] == payload["verdicts"]["none (A/A)"]
    # an exploratory score is adjusted across the table, never by Holm
    assert weighted is not groups["class_weights"]["metrics"]["f1_macro"]
    assert groups["class_weights"]["metrics"]["f1_macro"]["adjustment"] == "bh"
    power = payload["power"]
    assert power["seeds"] == 3 and power["compared"] == 1 and power["detectable_difference"] > 0
    assert power["seeds_needed"]["0.05"] is None or power["seeds_needed"]["0.05"] >= 3


def test_add_seeds_extends_every_arm_with_the_same_new_seeds(workspace, capsys):
    code, out, err = cli(capsys, "run", "yeast_me2", "--task", "table", "--add-seeds", "2", "--experiment", EXPERIMENT,
                         "--json")
    assert code == 0, err
    added = json.loads(out)["runs"]
    assert sorted((r["strategy"], r["aa"], r["seed"]) for r in added) == sorted(
        [("none", False, 3), ("none", False, 4), ("class_weights", False, 3), ("class_weights", False, 4),
         ("none", True, AA_SEED_OFFSET + 3), ("none", True, AA_SEED_OFFSET + 4)])
    result = compare(SQLiteRunStore(workspace), experiment=EXPERIMENT, n_bootstrap=0)
    pairs = result.summary[result.summary["is_primary"]].set_index("group")["n_pairs"]
    assert pairs["class_weights"] == 5 and pairs["none (A/A)"] == 5
    assert "5 seeds" in result.verdicts["class_weights"]
    code, _, err = cli(capsys, "run", "yeast_me2", "--task", "table", "--add-seeds", "1", "--experiment", "nope")
    assert code == 2 and err.startswith("error: There is no experiment 'nope'") and "Traceback" not in err


def test_fewer_than_three_seeds_give_no_verdict_but_say_what_to_add(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    assert main([*GRID, "--seeds", "2", "--experiment", "two seeds"]) == 0
    capsys.readouterr()
    result = compare(SQLiteRunStore(tmp_path), experiment="two seeds", n_bootstrap=0)
    assert result.primary == "pr_auc[1]"                       # the default for two classes, stored at launch
    assert not result.summary["significant"].any()
    assert result.summary["p_value"].isna().all()
    verdict = result.verdicts["class_weights"]
    assert "2 paired seeds with none; a verdict needs at least 3: add 1 more seed" in verdict
    code, out, _ = cli(capsys, "compare", "--experiment", "two seeds", "--bootstrap", "0")
    assert code == 0 and "(2 seeds: no test; P(better) " in out and " * " not in out


def test_duplicate_seeds_keep_the_newest_with_a_note(workspace, capsys):
    store = SQLiteRunStore(workspace)
    experiment = store.list_experiments()[0]
    first = next(r for r in store.list_runs() if r.spec["strategy"] == "class_weights" and r.spec["seed"] == 0)
    copy = store.create_run(experiment.id, first.spec, name="again", status="running")
    shutil.copytree(store.artifact_dir(first.id), store.artifact_dir(copy.id), dirs_exist_ok=True)
    store.set_final_metrics(copy.id, first.metrics)
    store.finish(copy.id, "finished")
    result = compare(store, experiment=EXPERIMENT, n_bootstrap=0)
    assert any(f"Runs {first.id} and {copy.id} both trained class_weights with seed 0" in n for n in result.notes)
    assert (result.per_run["group"] == "class_weights").sum() == 3
    # chosen runs with the same seed twice: the same, no broadcast error
    ids = [r.id for r in store.list_runs() if r.spec["strategy"] in ("none", "class_weights") and not r.spec.get("aa")]
    chosen = compare(store, run_ids=ids, n_bootstrap=0)
    assert chosen.summary.set_index(["group", "metric"]).loc[("class_weights", "balanced_accuracy"), "n_pairs"] == 3


def test_a_broken_run_is_listed_and_left_out(workspace):
    store = SQLiteRunStore(workspace)
    broken = next(r for r in store.list_runs() if r.spec["strategy"] == "class_weights" and r.spec["seed"] == 1)
    (store.artifact_dir(broken.id) / "predictions.parquet").write_bytes(b"not parquet at all")
    result = compare(store, experiment=EXPERIMENT, n_bootstrap=0)
    assert any(f"Run {broken.id}" in n and "is left out" in n for n in result.notes)
    assert (result.per_run["group"] == "class_weights").sum() == 2
    assert "2 paired seeds" in result.verdicts["class_weights"]


def _predictions(classes, y, predicted, group="none", seed=0, info=None):
    proba = np.full((len(y), len(classes)), 0.1)
    proba[np.arange(len(y)), predicted] = 0.9
    spec = {"strategy": group, "seed": seed, "model": "logreg"}
    run = Run(f"{group}{seed}", "e", group, spec, "finished", "", info=info or {})
    return RunPredictions(run, group, tuple(classes), np.arange(len(y)), np.asarray(y), proba)


def test_one_class_predictions_and_classes_missing_from_a_split_are_flagged():
    classes = ("view", "cart", "buy")
    y = np.array([0, 0, 2, 0, 2, 0])                              # no 'cart' in the test split
    info = {"class_counts": {"valid": {"view": 10, "cart": 0, "buy": 3}}}
    flat = [_predictions(classes, y, np.zeros(6, dtype=int), seed=s, info=info) for s in range(3)]
    mixed = [_predictions(classes, y, np.array([0, 0, 2, 0, 0, 0]), group="smote", seed=s, info=info)
             for s in range(3)]
    notes = _degenerate_notes(flat + mixed)
    assert any(n.startswith("none: 3 of 3 runs predict 'view' for every test row") for n in notes)
    assert not any(n.startswith("smote:") for n in notes)
    assert any("Class 'cart' has no rows in the test split" in n and "Use another split" in n for n in notes)
    assert any("Class 'cart' has no rows in the validation split" in n for n in notes)


def test_sigterm_fails_the_run_in_progress_and_cancels_the_rest(tmp_path):
    env = {**os.environ, "RECEXP_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "recexp", *GRID[:-2], "--epochs", "400", "--patience", "400", "--batch-size", "8",
            "--seeds", "2"]                                 # no early stopping: the first run is still training
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (tmp_path / "runs.sqlite").exists():
            store = SQLiteRunStore(tmp_path)
            if any(r.status == RUNNING and r.epochs_done >= 1 for r in store.list_runs()):
                break
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err and "error: stopped (SIGTERM)" in err
    statuses = [r.status for r in SQLiteRunStore(tmp_path).list_runs()]
    assert len(statuses) == 4                                   # the whole grid was recorded up front
    assert statuses[0] == FAILED and set(statuses[1:]) == {CANCELLED}
