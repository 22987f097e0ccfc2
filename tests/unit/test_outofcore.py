"""Out-of-core dataset building (recexp.outofcore): the same datasets as the in-memory path, sampling with
weights, the path chosen by size, and refusals in sentences. Leakage tests of both paths: tests/unit/test_tasks.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recexp.data.samples import SAMPLES, load_sample
from recexp.dataset import LABEL, SAMPLE_WEIGHT, TIME
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.metrics import classification_metrics, expected_calibration_error
from recexp.memory import memory_limit
from recexp import outofcore
from recexp.outofcore import (Sampling, build_on_disk, choose_path, down_sample, sample_log,
                              sampled_class_mix)
from recexp.spec import RunSpec, prepare_data
from recexp.tasks import SplitSpec, build_dataset, split_dataset

ROOT = Path(__file__).resolve().parents[2]
TAOBAO = SAMPLES["taobao"].path
SPEC = SplitSpec()
PARAMS = {"behavior": {"sequence_length": 3}, "purchase": {"sequence_length": 2, "n_windows": 3}}


def assert_same(memory, disk) -> None:
    assert disk.schema == memory.schema
    assert list(disk.frame.columns) == list(memory.frame.columns)
    for column in memory.frame.columns:
        left, right = memory.frame[column], disk.frame[column]
        if isinstance(left.dtype, pd.CategoricalDtype):          # ids: the same values (category sets may differ)
            np.testing.assert_array_equal(left.astype(str).to_numpy(), right.astype(str).to_numpy())
        else:
            assert right.dtype == left.dtype, column
            np.testing.assert_array_equal(right.to_numpy(), left.to_numpy(), err_msg=column)


@pytest.fixture(scope="module")
def taobao():
    return load_sample("taobao")


def test_a_build_reports_duckdbs_progress_while_its_statements_run(monkeypatch, tmp_path):
    """Features and the wait for the first written batch (DuckDB computing every window) show DuckDB's own
    estimate, not a bar stuck at 0 until rows come out; the writing share never goes back."""
    monkeypatch.setattr(outofcore, "PROGRESS_EVERY", 0.005)
    seen = []
    disk = build_on_disk(TAOBAO, "behavior", SPEC, folder=tmp_path / "d",
                         progress=lambda phase, rows, fraction: seen.append((phase, rows, fraction)))
    phases = [phase for phase, _rows, _fraction in seen]
    assert list(dict.fromkeys(phases)) == ["reading", "features", "writing"]
    writing = [(rows, fraction) for phase, rows, fraction in seen if phase == "writing"]
    assert any(rows == 0 and 0 < fraction < 1 for rows, fraction in writing), writing[:10]
    shares = [fraction for _rows, fraction in writing]
    assert shares == sorted(shares) and all(0 <= share <= 1 for share in shares)
    assert writing[-1] == (len(disk), 1.0)
    assert all(0 <= fraction <= 1 for phase, _rows, fraction in seen if phase == "features")


@pytest.mark.parametrize("task", ["behavior", "purchase"])
def test_disk_build_equals_the_in_memory_build_and_split(taobao, task, tmp_path):
    disk = build_on_disk(TAOBAO, task, SPEC, folder=tmp_path / "d", **PARAMS[task])
    memory = build_dataset(taobao, task, split=SPEC, **PARAMS[task])
    assert_same(memory, disk.to_dataset())
    split = split_dataset(memory, SPEC)
    got = disk.split()
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(got, part), getattr(split, part))
    assert disk.class_counts("test") == memory.class_counts(split.test)
    assert sorted(p.name for p in disk.folder.iterdir()) == ["part=test", "part=train", "part=valid", "schema.json"]
    again = build_on_disk(TAOBAO, task, SPEC, folder=tmp_path / "d", **PARAMS[task])   # the same file: same print
    assert again.fingerprint == disk.fingerprint and len(again) == len(disk)


def test_sampling_keeps_the_same_users_and_rows_on_both_paths(taobao, tmp_path):
    sampling = Sampling(users=0.5, negative_rate=0.2)
    disk = build_on_disk(TAOBAO, "behavior", SPEC, sampling=sampling, folder=tmp_path / "d", sequence_length=2)
    log = sample_log(taobao, 0.5)
    assert 0.35 < log.frame["user_id"].nunique() / taobao.frame["user_id"].nunique() < 0.65
    full = build_dataset(log, "behavior", split=SPEC, sequence_length=2)
    memory, split = down_sample(full, split_dataset(full, SPEC), 0.2)
    got = disk.to_dataset()
    assert_same(memory, got)
    np.testing.assert_array_equal(disk.split().test, split.test)
    # views (the majority) kept at about 20%, weighted 5; the other classes whole, weighted 1
    before, after = full.class_counts(), memory.class_counts()
    assert 0.15 < after["view"] / before["view"] < 0.25
    assert {c: after[c] for c in ("cart", "fav", "buy")} == {c: before[c] for c in ("cart", "fav", "buy")}
    weights = memory.frame.groupby(LABEL)[SAMPLE_WEIGHT].unique()
    assert list(weights[0]) == [5.0] and all(list(weights[k]) == [1.0] for k in (1, 2, 3))
    mix = sampled_class_mix(memory)
    assert mix["sampled"]["view"] == after["view"] and mix["population"]["view"] == pytest.approx(5 * after["view"])
    assert abs(mix["population"]["view"] / before["view"] - 1) < 0.1      # the weights restore the population


def test_the_path_is_chosen_by_estimated_size(monkeypatch):
    monkeypatch.delenv("RECEXP_MEMORY_LIMIT", raising=False)
    assert not choose_path(TAOBAO, "behavior").on_disk                      # a small log stays in memory
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "16MB")
    choice = choose_path(TAOBAO, "behavior")
    assert choice.on_disk and choice.limit == 16 << 20 and "built on disk" in choice.reason


@pytest.mark.parametrize("value", ["lots", "0", "-2GB", "12kb"])
def test_a_bad_memory_limit_is_a_sentence(monkeypatch, value):
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", value)
    with pytest.raises(InvalidParameterError, match="RECEXP_MEMORY_LIMIT must be a memory size"):
        memory_limit()


def test_requests_that_cannot_be_built_are_refused_in_sentences(monkeypatch, tmp_path):
    with pytest.raises(InvalidParameterError, match="split by time only"):
        build_on_disk(TAOBAO, "behavior", SplitSpec(method="stratified"), folder=tmp_path / "a")
    with pytest.raises(InvalidParameterError, match="must be a share"):
        build_on_disk(TAOBAO, "behavior", SPEC, sampling=Sampling(negative_rate=0), folder=tmp_path / "b")
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "2MB")                        # DuckDB gets about 1 MB
    with pytest.raises(InvalidDataError, match="needs more memory than the .* limit .*--sample-users"):
        build_on_disk(TAOBAO, "purchase", SPEC, folder=tmp_path / "c")


def test_apply_contract_writes_the_training_split_out_of_core(tmp_path, taobao):
    out = tmp_path / "train.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "recexp", "apply", str(TAOBAO), "--task", "purchase", "--strategy", "none", "--seed",
         "0", "--out", str(out), "--json", "--out-of-core", "yes", "--task-param", "n_windows=3"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "RECEXP_HOME": str(tmp_path / "ws"),
                                                        "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    memory = build_dataset(taobao, "purchase", split=SPEC, n_windows=3)
    split = split_dataset(memory, SPEC)
    assert payload["class_counts_before"] == memory.class_counts(split.train)
    assert payload["locked"]["test"] == memory.class_counts(split.test)
    written = pd.read_parquet(out)
    assert len(written) == len(split.train)
    np.testing.assert_array_equal(written[LABEL].to_numpy(), memory.y[split.train])
    assert "writing:" in result.stderr and "peak memory" in result.stderr          # progress on stderr
    assert written[TIME].max() < memory.frame[TIME].iloc[split.test].min()


def test_weighted_scores_equal_the_scores_of_the_rows_the_weights_stand_for():
    """A down-sampled test split weighted 1/rate scores as the population it stands for: weight 5 on a row
    gives the scores of that row present five times."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    proba = rng.dirichlet(np.ones(3), 400)
    weights = np.where(y == 0, 5.0, 1.0)
    repeat = weights.astype(int)
    weighted = classification_metrics(y, proba, weights)
    expanded = classification_metrics(np.repeat(y, repeat), np.repeat(proba, repeat, axis=0))
    assert weighted == pytest.approx(expanded)
    assert weighted["accuracy"] != pytest.approx(classification_metrics(y, proba)["accuracy"])
    assert expected_calibration_error(y, proba, sample_weight=weights) == pytest.approx(
        expected_calibration_error(np.repeat(y, repeat), np.repeat(proba, repeat, axis=0)))


def test_a_run_spec_with_sampling_prepares_the_sampled_dataset():
    spec = RunSpec(source={"sample": "taobao"}, task="behavior", task_params={"sequence_length": 2},
                   sampling={"users": 0.5, "negative_rate": 0.2})
    dataset, split = prepare_data(spec)
    assert SAMPLE_WEIGHT in dataset.frame and set(dataset.frame[SAMPLE_WEIGHT].unique()) == {1.0, 5.0}
    assert len(split.train) + len(split.valid) + len(split.test) == len(dataset)
    assert dataset.frame[TIME].iloc[split.train].max() < dataset.frame[TIME].iloc[split.test].min()
    with pytest.raises(InvalidParameterError, match="must be a share"):
        prepare_data(RunSpec(source={"sample": "taobao"}, sampling={"negative_rate": 2.0}))
