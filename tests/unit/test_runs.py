"""The SQLite run store: round trips, non-finite values, status rules, concurrency, artifacts, restart."""

import math
import os
import sqlite3
import threading

import pandas as pd
import pytest

from recexp.errors import JobError
from recexp.runs import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, Run, SQLiteRunStore


@pytest.fixture
def store(tmp_path):
    return SQLiteRunStore(tmp_path / "ws")


def test_store_opens_in_wal_mode_in_recexp_home(tmp_path):
    store = SQLiteRunStore.open()
    assert store.home == (tmp_path / "workspace").resolve()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


def test_run_round_trip_with_spec_and_metrics(store):
    experiment = store.create_experiment("grid", "smote vs none")
    spec = {"model": "mlp", "model_params": {"hidden_dim": 32}, "seed": 3}
    run = store.create_run(experiment.id, spec, name="none / mlp / seed 3")
    assert isinstance(run, Run) and run.status == QUEUED and run.spec == spec
    assert store.claim(run.id) and not store.claim(run.id)          # claiming is atomic
    store.update(run.id, device="cpu (2 threads)", epochs_total=3, info={"rows": {"train": 10}})
    store.log_epochs(run.id, [(1, {"train_loss": 0.9, "valid_loss": 1.0}), (2, {"train_loss": 0.7, "valid_loss": 0.8})])
    store.set_final_metrics(run.id, {"accuracy": 0.75, "f1_macro": 0.5})
    assert store.finish(run.id, FINISHED)
    got = store.get_run(run.id)
    assert (got.status, got.device, got.epochs_done, got.epochs_total) == (FINISHED, "cpu (2 threads)", 2, 3)
    assert got.info == {"rows": {"train": 10}} and got.metrics == {"accuracy": 0.75, "f1_macro": 0.5}
    assert got.started_at <= got.finished_at and got.seconds >= 0
    curves = store.epoch_metrics([run.id])
    assert len(curves) == 4
    assert curves.query("epoch == 2 and key == 'train_loss'")["value"].item() == pytest.approx(0.7)
    assert [r.id for r in store.list_runs(experiment.id)] == [run.id]
    assert store.list_runs(statuses=[QUEUED, RUNNING]) == []


def test_non_finite_metrics_come_back_unchanged(store):
    run = store.create_run(store.create_experiment("x").id, {})
    store.log_epoch(run.id, 1, {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "zero": 0.0})
    store.set_final_metrics(run.id, {"roc_auc": math.nan, "log_loss": math.inf})
    values = dict(zip(store.epoch_metrics([run.id])["key"], store.epoch_metrics([run.id])["value"]))
    assert math.isnan(values["nan"]) and values["inf"] == math.inf and values["ninf"] == -math.inf
    assert values["zero"] == 0.0
    metrics = store.get_run(run.id).metrics
    assert math.isnan(metrics["roc_auc"]) and metrics["log_loss"] == math.inf
    assert store.get_run(run.id).to_dict()["metrics"] == {"roc_auc": "nan", "log_loss": "inf"}


def test_a_final_status_is_final(store):
    run = store.create_run(store.create_experiment("x").id, {})
    assert store.finish(run.id, CANCELLED, error="Cancelled by the user.")
    assert not store.finish(run.id, FAILED, error="late worker report")   # cancel wins over a late failure
    assert not store.claim(run.id)
    got = store.get_run(run.id)
    assert (got.status, got.error) == (CANCELLED, "Cancelled by the user.")
    with pytest.raises(JobError):
        store.finish(run.id, "done")


def test_unknown_ids_and_fields_raise_sentences(store):
    with pytest.raises(JobError, match="no run 'nope'"):
        store.get_run("nope")
    run = store.create_run(store.create_experiment("x").id, {})
    with pytest.raises(JobError, match="cannot be updated"):
        store.update(run.id, status="finished")
    with pytest.raises(JobError):
        store.artifact_dir("../etc")


def test_artifacts_are_parquet_beside_the_database(store):
    run = store.create_run(store.create_experiment("x").id, {})
    frame = pd.DataFrame({"row": [3, 1], "proba_buy": [0.25, 0.5]})
    path = store.write_table(run.id, "predictions", frame)
    assert path == store.home / "artifacts" / run.id / "predictions.parquet"
    pd.testing.assert_frame_equal(store.read_table(run.id, "predictions"), frame)
    with pytest.raises(JobError, match="no 'sample_stats' artifact"):
        store.read_table(run.id, "sample_stats")


def test_concurrent_writers_from_threads_keep_every_epoch(store):
    runs = [store.create_run(store.create_experiment("x").id, {}) for _ in range(4)]

    def write(run_id):
        for epoch in range(1, 26):
            store.log_epoch(run_id, epoch, {"train_loss": 1.0 / epoch, "valid_loss": 2.0 / epoch})

    threads = [threading.Thread(target=write, args=(r.id,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frame = store.epoch_metrics([r.id for r in runs])
    assert len(frame) == 4 * 25 * 2
    assert all(store.get_run(r.id).epochs_done == 25 for r in runs)
    assert store.integrity_check() == "ok"


def test_reopening_the_workspace_lists_earlier_runs(tmp_path):
    first = SQLiteRunStore(tmp_path / "ws")
    experiment = first.create_experiment("before restart")
    ids = [first.create_run(experiment.id, {"seed": s}).id for s in range(3)]
    first.finish(ids[0], FINISHED)
    del first
    again = SQLiteRunStore(tmp_path / "ws")
    assert [r.id for r in again.list_runs()] == ids
    assert [e.name for e in again.list_experiments()] == ["before restart"]
    assert again.get_run(ids[0]).status == FINISHED


def test_database_holds_no_pickles(store):
    run = store.create_run(store.create_experiment("x").id, {"strategy": "none"})
    store.update(run.id, info={"report": {"added": 0}})
    raw = store.path.read_bytes() + (store.path.with_name("runs.sqlite-wal").read_bytes()
                                     if os.path.exists(str(store.path) + "-wal") else b"")
    assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw   # pickle protocol 4/5 headers
