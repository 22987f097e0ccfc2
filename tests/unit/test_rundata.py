"""Runs on a log larger than memory (recexp.rundata, recexp.jobs.execute, ``run --out-of-core``): built out of
core, trained in memory or from shards, scored part file by part file; build-time weights kept in the stored
predictions and in every score computed from them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recexp.cli import main
from recexp.compare.comparison import _run_metrics
from recexp.compare.loading import load_predictions
from recexp import outofcore
from recexp.compare.slices import segment_scores
from recexp.data.samples import SAMPLES
from recexp.data.synthetic import generate_log
from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.importance import TrainedRun
from recexp.jobs import execute, validate_spec
from recexp.metrics import classification_metrics, evaluation_metrics
from recexp.models import TrainConfig
from recexp.models.shards import ParquetRows
from recexp.runs import FAILED, FINISHED, SQLiteRunStore
from recexp.rundata import build_for, from_disk, run_data, wants_out_of_core
from recexp.spec import RunSpec, prepare_data
from recexp.strategies import get_strategy

TAOBAO = str(SAMPLES["taobao"].path)
PURCHASE = {"sequence_length": 2, "n_windows": 3}
#: On the synthetic log: about 9,000 training rows, whose tensors (about 1.5 MB) pass a 1 MB memory setting.
SYNTHETIC = {"sequence_length": 2, "n_windows": 8}
TRAIN = {"epochs": 1, "batch_size": 256, "device": "cpu", "patience": None}
TIMINGS = {"train_seconds", "total_seconds", "samples_per_second"}


def spec_of(path, **changes) -> RunSpec:
    base = RunSpec(source={"path": str(path)}, task="purchase", task_params=PURCHASE if path == TAOBAO else SYNTHETIC,
                   split={"method": "temporal"}, train=TRAIN)
    return RunSpec(**{**base.to_dict(), **changes})


def run(spec: RunSpec, messages: list | None = None):
    """Execute ``spec`` as a new run; returns the store and the run as it ended (``messages`` collects the run's
    messages as they were set)."""
    store = SQLiteRunStore.open()
    run_id = store.create_run(store.create_experiment("big").id, spec.to_dict(), status="running").id
    if messages is not None:
        update = store.update
        store.update = lambda key, **fields: (messages.append(fields.get("message")), update(key, **fields))[1]
    try:
        execute(spec, store, run_id)
    except InvalidParameterError:
        pass
    return store, store.get_run(run_id)


@pytest.fixture(scope="module")
def synthetic_log(tmp_path_factory):
    """A Taobao-like log of 30,000 events as a CSV file (recexp's generator)."""
    path = tmp_path_factory.mktemp("log") / "log.csv"
    generate_log(30_000, seed=0).to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_memory(synthetic_log, monkeypatch):
    """The log's purchase dataset built out of core (DuckDB needs some memory), then a memory setting of 1 MB: the
    build is reused from its cache and the training split is far past the setting."""
    for sampling in ({}, {"negative_rate": 0.3}):
        build_for(spec_of(synthetic_log, sampling=sampling))
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")


def test_a_run_built_out_of_core_stores_the_same_predictions_and_metrics_as_one_in_memory():
    stored, messages = {}, []
    for choice in ("no", "yes"):
        store, finished = run(spec_of(TAOBAO, out_of_core=choice), messages)
        assert finished.status == FINISHED, finished.error
        stored[choice] = (finished, store.read_table(finished.id, "predictions"),
                          store.read_table(finished.id, "valid_predictions"))
    memory, disk = stored["no"], stored["yes"]
    assert "out_of_core" in disk[0].info and "out_of_core" not in memory[0].info
    assert disk[0].info["trained_from"] == "memory"             # the training part fits: read into memory
    assert {k: v for k, v in disk[0].metrics.items() if k not in TIMINGS} == \
        pytest.approx({k: v for k, v in memory[0].metrics.items() if k not in TIMINGS}, nan_ok=True)
    pd.testing.assert_frame_equal(disk[1], memory[1])
    pd.testing.assert_frame_equal(disk[2], memory[2])
    assert disk[0].info["class_counts"] == memory[0].info["class_counts"]
    progress = [m for m in messages if m and "peak memory" in m]                # the build, live, as the message
    assert [m.split(":")[0] for m in progress][:1] == ["reading"] and progress[-1].startswith("writing:")
    assert "100% done" in progress[-1]


def test_a_training_split_past_the_memory_setting_trains_from_shards_and_is_scored_part_by_part(
        synthetic_log, tiny_memory):
    spec = spec_of(synthetic_log)                               # out_of_core "auto": the log passes 1 MB
    assert wants_out_of_core(spec)
    data = run_data(spec)
    assert isinstance(data.train, ParquetRows) and isinstance(data.valid, ParquetRows)
    forced = from_disk(data.disk, TrainConfig(train_from="memory"))           # the settings may insist
    assert isinstance(forced.train, Dataset) and len(forced.train) == len(data.train)
    np.testing.assert_array_equal(forced.rows("train"), np.arange(len(data.train)))
    with pytest.raises(InvalidParameterError, match="out_of_core"):
        validate_spec(RunSpec(**{**spec.to_dict(), "out_of_core": "maybe"}))
    store, finished = run(spec)
    assert finished.status == FINISHED, finished.error
    assert finished.info["trained_from"] == "disk"
    assert finished.info["rows"]["test"] == len(data.test) > 0
    predictions = store.read_table(finished.id, "predictions")
    np.testing.assert_array_equal(predictions["row"], data.test.positions())
    np.testing.assert_array_equal(predictions[LABEL], data.test.y)
    assert 0.5 < finished.metrics["roc_auc"] <= 1
    folder = store.artifact_dir(finished.id)
    assert not (folder / "shards").exists() and not (folder / "train_rows.parquet").exists()
    with pytest.raises(InvalidDataError, match="trained from a dataset on disk.*--sample-users"):   # not "older"
        TrainedRun.load(store, finished.id)


def test_whole_data_strategies_refuse_a_split_on_disk_in_one_sentence_naming_the_sampling_options(
        synthetic_log, tiny_memory):
    for strategy in ("smote", "gaussian_noise"):
        store, failed = run(spec_of(synthetic_log, strategy=strategy))
        assert failed.status == FAILED
        assert "--sample-users" in failed.error and "--negative-rate" in failed.error
        assert failed.error.count(". ") == 0 and failed.error.endswith(".")          # one sentence
        assert store.epoch_metrics([failed.id]).empty                                # before any training
    store, focal = run(spec_of(synthetic_log, strategy="focal_loss"))                # keeps the rows: trains
    assert focal.status == FINISHED and focal.info["train_config"]["loss"] == "focal"


def test_class_weights_on_a_split_on_disk_weigh_its_classes_as_in_memory(synthetic_log, tiny_memory):
    store, weighted = run(spec_of(synthetic_log, strategy="class_weights"))
    assert weighted.status == FINISHED, weighted.error
    assert weighted.info["trained_from"] == "disk"
    in_memory = get_strategy("class_weights").apply(run_data(spec_of(synthetic_log)).loaded("train"), seed=0)
    assert weighted.info["strategy_report"]["class_multipliers"] == pytest.approx(in_memory.report.class_weights)
    assert weighted.info["strategy_report"]["class_multipliers"]["buy"] > 10


def test_cli_run_out_of_core_shows_the_build_and_refuses_before_any_run(synthetic_log, capsys, monkeypatch):
    argv = ["run", str(synthetic_log), "--task", "purchase", "--task-param", "n_windows=8", "--task-param",
            "sequence_length=2", "--epochs", "1",
            "--seeds", "1", "--out-of-core", "yes", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "peak memory" in captured.err and "writing" in captured.err
    result = json.loads(captured.out)
    assert result["runs"][0]["status"] == "finished"
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "1MB")                 # the build above is reused
    assert main(argv + ["--strategy", "smote"]) == 2
    captured = capsys.readouterr()
    assert "--sample-users" in captured.err and "runs" not in captured.out
    assert main(["run", "yeast_me2", "--task", "table", "--out-of-core", "yes", "--epochs", "1"]) == 2
    assert "log file" in capsys.readouterr().err


# --- weights kept to the end ------------------------------------------------------------------------


def _scores(dataset, rows) -> np.ndarray:
    """A fixed scorer (no training): the probability of each class rises with the row's own history of it."""
    frame = dataset.frame.iloc[rows]
    columns = [f"user_item_{c}_count" for c in dataset.schema.classes]
    logits = np.log1p(frame[columns].to_numpy(np.float64)) + np.log([0.9, 0.05, 0.03, 0.02])
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def test_weighted_scores_of_a_down_sampled_test_split_estimate_the_full_splits():
    spec = RunSpec(source={"sample": "taobao"}, task="behavior", task_params={"sequence_length": 2},
                   split={"method": "temporal"})
    full, full_split = prepare_data(spec)
    sampled, sampled_split = prepare_data(RunSpec(**{**spec.to_dict(), "sampling": {"negative_rate": 0.2}}))
    assert len(sampled_split.test) < 0.4 * len(full_split.test)
    weights = sampled.frame[SAMPLE_WEIGHT].to_numpy()[sampled_split.test]
    truth = evaluation_metrics(full.y[full_split.test], _scores(full, full_split.test), full.schema.classes)
    proba = _scores(sampled, sampled_split.test)
    weighted = evaluation_metrics(sampled.y[sampled_split.test], proba, sampled.schema.classes, sample_weight=weights)
    plain = evaluation_metrics(sampled.y[sampled_split.test], proba, sampled.schema.classes)
    for metric, tolerance in (("accuracy", 0.02), ("log_loss", 0.05), ("ece", 0.02), ("precision[view]", 0.01)):
        assert weighted[metric] == pytest.approx(truth[metric], abs=tolerance), metric
        assert abs(plain[metric] - truth[metric]) > 3 * tolerance, metric
    unchanged = evaluation_metrics(full.y[full_split.test], _scores(full, full_split.test), full.schema.classes,
                                   sample_weight=np.ones(len(full_split.test)))
    assert unchanged == pytest.approx(truth, nan_ok=True)


def test_stored_predictions_carry_the_weights_and_compare_scores_with_them(synthetic_log):
    store, weighted = run(spec_of(synthetic_log, out_of_core="yes", sampling={"negative_rate": 0.3}))
    _store, plain = run(spec_of(synthetic_log, out_of_core="yes"))
    assert weighted.status == plain.status == FINISHED
    frame = store.read_table(weighted.id, "predictions")
    assert set(frame[SAMPLE_WEIGHT]) == {1.0, 1 / 0.3}
    assert SAMPLE_WEIGHT in store.read_table(weighted.id, "valid_predictions")
    assert SAMPLE_WEIGHT not in store.read_table(plain.id, "predictions")
    proba = frame[["proba_no_buy", "proba_buy"]].to_numpy()
    assert weighted.metrics["log_loss"] == pytest.approx(
        classification_metrics(frame[LABEL].to_numpy(), proba, frame[SAMPLE_WEIGHT].to_numpy())["log_loss"])
    by_id = {run.id: load_predictions(store, [run])[0] for run in (weighted, plain)}
    assert by_id[plain.id].weight is None
    np.testing.assert_array_equal(by_id[weighted.id].weight, frame[SAMPLE_WEIGHT])
    scored = _run_metrics(by_id[weighted.id])
    assert scored["log_loss"] == pytest.approx(weighted.metrics["log_loss"], rel=1e-5)
    assert scored["log_loss"] != pytest.approx(evaluation_metrics(frame[LABEL], proba)["log_loss"], rel=1e-3)


def test_apply_none_out_of_core_writes_the_columns_of_the_in_memory_path(synthetic_log, tmp_path, capsys):
    for rate in ("0.5", "1"):
        tables = {}
        for choice in ("yes", "no"):
            out = tmp_path / f"{choice}{rate}.parquet"
            assert main(["apply", str(synthetic_log), "--task", "purchase", "--task-param", "n_windows=8",
                         "--strategy", "none", "--out", str(out), "--out-of-core", choice,
                         "--negative-rate", rate, "--json"]) == 0
            tables[choice] = pq.read_table(out)
        capsys.readouterr()
        assert tables["yes"].column_names == tables["no"].column_names
        assert tables["yes"].column_names[-2:] in ([IS_SYNTHETIC, SAMPLE_WEIGHT], [SAMPLE_WEIGHT, IS_SYNTHETIC])
        for name in (LABEL, SAMPLE_WEIGHT, IS_SYNTHETIC):
            np.testing.assert_array_equal(tables["yes"].column(name).to_numpy(), tables["no"].column(name).to_numpy())


def test_slice_scores_count_rows_by_their_weights():
    spec = RunSpec(source={"sample": "taobao"}, task="behavior", task_params={"sequence_length": 2},
                   split={"method": "temporal"}, sampling={"negative_rate": 0.2})
    dataset, split = prepare_data(spec)
    y, proba = dataset.y[split.test], _scores(dataset, split.test)
    weights = dataset.frame[SAMPLE_WEIGHT].to_numpy()[split.test]
    codes = (dataset.frame["hour"].to_numpy()[split.test] >= 12).astype(np.int64)       # two segments
    for metric in ("accuracy", "log_loss"):                     # from confusions, from probabilities
        sliced = segment_scores(y, proba, dataset.schema.classes, codes, 2, metric, weights)
        expected = [evaluation_metrics(y[codes == s], proba[codes == s], dataset.schema.classes,
                                       sample_weight=weights[codes == s])[metric] for s in (0, 1)]
        np.testing.assert_allclose(sliced, expected, rtol=1e-9)
        assert not np.allclose(sliced, segment_scores(y, proba, dataset.schema.classes, codes, 2, metric))


def test_every_run_of_a_grid_after_the_first_opens_the_build_without_reading_the_log(synthetic_log, tmp_path,
                                                                                    monkeypatch):
    log = tmp_path / "log.csv"
    log.write_bytes(synthetic_log.read_bytes())
    first = build_for(spec_of(log))
    monkeypatch.setattr(outofcore, "_ingest", lambda *args: pytest.fail("the log was read again"))
    again = build_for(spec_of(log, seed=3, strategy="focal_loss"))          # another seed and arm
    assert again.folder == first.folder and again.rows == first.rows
    log.write_bytes(synthetic_log.read_bytes() + b"\n")                      # changed: read and built again
    with pytest.raises(pytest.fail.Exception, match="read again"):
        build_for(spec_of(log))


def test_boosted_trees_on_a_dataset_built_out_of_core_score_as_in_memory():
    metrics = {}
    for choice in ("no", "yes"):
        _store, finished = run(spec_of(TAOBAO, model="lightgbm", train={"epochs": 5, "device": "cpu"},
                                       out_of_core=choice))
        assert finished.status == FINISHED, finished.error
        metrics[choice] = {k: v for k, v in finished.metrics.items() if k not in TIMINGS}
    assert metrics["yes"] == pytest.approx(metrics["no"], nan_ok=True)
