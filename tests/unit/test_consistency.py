"""The consistency check of new rows: it flags rows from another distribution and passes rows from the same one."""

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recexp import cli
from recexp.compare import consistency_table, load_predictions
from recexp.consistency import WARN_AUC, check_consistency, consistency_of, mmd_test
from recexp.data.samples import load_sample
from recexp.dataset import IS_SYNTHETIC
from recexp.errors import InvalidParameterError
from recexp.jobs import execute
from recexp.runs import SQLiteRunStore
from recexp.spec import RunSpec, prepare_data
from recexp.strategies import get_strategy, stratified_sample
from recexp.tasks import build_dataset, split_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def taobao_train():
    """A stratified sample of the Taobao behaviour task's training split (every class kept)."""
    dataset = build_dataset(load_sample("taobao"), "behavior", sequence_length=5)
    split = split_dataset(dataset)
    return stratified_sample(dataset.subset(split.train), 2500, seed=0, min_per_class=300)


def _halves(dataset, shift: float = 0.0):
    """Half of every class's real rows flagged as new; with ``shift``, their numeric features moved by that many
    standard deviations (rows from another distribution)."""
    rng = np.random.default_rng(0)
    flagged = rng.random(len(dataset)) < 0.5
    frame = dataset.frame.assign(**{IS_SYNTHETIC: flagged})
    if shift:
        for column in dataset.schema.numeric:
            values = frame[column].to_numpy(np.float64)
            spread = np.nanstd(values) or 1.0
            frame[column] = np.where(flagged, values + shift * spread, values)
    return replace(dataset, frame=frame)


def test_rows_from_the_same_distribution_pass(taobao_train):
    report = consistency_of(_halves(taobao_train))
    assert report.verdict == "pass" and report.detection_auc < WARN_AUC
    assert {c.name for c in report.classes} == set(taobao_train.schema.classes)
    for item in report.classes:
        assert 0.35 < item.detection_auc < 0.65
        assert item.mmd_p_value > 0.01
        numeric = item.features[item.features["statistic"] == "ks"]
        assert numeric["value"].mean() < 0.1          # (TV of sparse item / category ids is large even so)
        assert "hard to tell from real ones" in item.line


def test_rows_from_another_distribution_are_flagged(taobao_train):
    report = consistency_of(_halves(taobao_train, shift=1.0))
    assert report.verdict == "warn" and report.detection_auc > 0.9
    for item in report.classes:
        assert item.detection_auc > 0.9 and item.mmd_p_value < 0.05
        numeric = item.features[item.features["statistic"] == "ks"]
        assert numeric["value"].mean() > 0.25
        assert item.line == f"new {item.name} rows are distinguishable from real ones: AUC {item.detection_auc:.2f}"


def test_mmd_permutation_test_on_simulated_samples():
    rng = np.random.default_rng(1)
    same = mmd_test(pd.DataFrame({"a": rng.normal(size=200)}), pd.DataFrame({"a": rng.normal(size=200)}), ["a"], [])
    moved = mmd_test(pd.DataFrame({"a": rng.normal(size=200)}), pd.DataFrame({"a": rng.normal(0.8, size=200)}),
                     ["a"], [])
    assert same[1] > 0.05 and moved[1] < 0.01 and moved[0] > same[0]
    assert all(math.isnan(v) for v in mmd_test(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [2.0]}), ["a"], []))


def test_smote_rows_on_real_data_are_told_apart_unlike_duplicates(taobao_train):
    smote = check_consistency(get_strategy("smote").apply(taobao_train, seed=0))
    duplicates = check_consistency(get_strategy("random_over").apply(taobao_train, seed=0))
    minority = {"cart", "fav", "buy"}
    assert {c.name for c in smote.classes} == minority == {c.name for c in duplicates.classes}
    assert smote.detection_auc > duplicates.detection_auc
    assert duplicates.verdict == "pass"
    payload = json.loads(json.dumps(smote.to_dict(), allow_nan=False))
    assert payload["detection_auc"] == pytest.approx(smote.detection_auc)
    assert payload["strategy"] == "SMOTE" and len(payload["classes"]) == 3
    assert list(smote.table().columns)[:4] == ["class", "new rows", "real rows", "detection AUC"]
    sequence = check_consistency(get_strategy("sequence_crop", factor={"buy": 1.0}).apply(taobao_train, seed=0))
    crop = sequence.classes[0].features.set_index("column")["value"]
    assert crop["hist_item length"] > 0.3                  # crop shortens histories; the check sees it


def test_strategies_that_add_no_rows_have_no_check(taobao_train):
    for name in ("none", "class_weights", "random_under"):
        assert check_consistency(get_strategy(name).apply(taobao_train, seed=0)) is None
    with pytest.raises(InvalidParameterError, match="is_synthetic"):
        consistency_of(replace(taobao_train, frame=taobao_train.frame.drop(columns=[IS_SYNTHETIC], errors="ignore")))


def test_every_run_that_adds_rows_stores_its_check_and_compare_summarises_it(tmp_path, monkeypatch, capsys):
    spec = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                   model="logreg", train={"epochs": 1, "batch_size": 256, "device": "cpu"})
    data = prepare_data(spec)
    store = SQLiteRunStore(tmp_path / "home")
    experiment = store.create_experiment("consistency")
    for strategy in ("none", "smote"):
        for seed in (0, 1):
            run_spec = replace(spec, strategy=strategy, seed=seed, fingerprint=data[0].fingerprint)
            run = store.create_run(experiment.id, run_spec.to_dict(), name=run_spec.label(), status="running")
            execute(run_spec, store, run.id, data=data)
    runs = store.list_runs(experiment.id)
    for run in runs:
        stored = store.artifact_dir(run.id) / "consistency.json"
        if run.spec["strategy"] == "none":
            assert not stored.exists() and "consistency" not in run.info
        else:
            report = json.loads(stored.read_text())
            assert report["detection_auc"] == run.info["consistency"]["detection_auc"]
            assert [c["class"] for c in report["classes"]] == ["1"]        # SMOTE fills the minority class
    table = consistency_table(load_predictions(store, runs))
    assert list(table["group"]) == ["smote"] and table["runs"].iloc[0] == 2
    expected = np.mean([r.info["consistency"]["detection_auc"] for r in runs if r.spec["strategy"] == "smote"])
    assert table["detection_auc"].iloc[0] == pytest.approx(expected)
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path / "home"))
    assert cli.main(["compare", "--experiment", "consistency", "--bootstrap", "0", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["consistency"]
    assert row["group"] == "smote" and row["runs"] == 2 and row["detection_auc"] == pytest.approx(expected)


def test_cli_apply_json_has_a_consistency_object(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(tmp_path / "h")}
    base = [sys.executable, "-m", "recexp", "apply", "yeast_me2", "--task", "table",
            "--out", str(tmp_path / "o.parquet"), "--json"]
    completed = subprocess.run([*base, "--strategy", "smote"], capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    consistency = json.loads(completed.stdout)["consistency"]
    assert 0.0 <= consistency["detection_auc"] <= 1.0 and consistency["verdict"] in ("pass", "warn")
    assert consistency["lines"] and consistency["classes"][0]["features"]
    completed = subprocess.run([*base, "--strategy", "class_weights"], capture_output=True, text=True, timeout=300,
                               env=env)
    assert completed.returncode == 0 and "consistency" not in json.loads(completed.stdout)
