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


# --- damage, full disks and read-only workspaces -----------------------------------------------------------

def _store_with_runs(home, runs: int = 2) -> tuple[SQLiteRunStore, list[str]]:
    store = SQLiteRunStore(home)
    experiment = store.create_experiment("earlier")
    ids = [store.create_run(experiment.id, {"seed": seed}).id for seed in range(runs)]
    store.write_table(ids[0], "predictions", pd.DataFrame({"row": [0, 1]}))
    store.finish(ids[0], FINISHED)
    return store, ids


def test_a_new_store_is_moved_into_place_whole(tmp_path):
    store = SQLiteRunStore(tmp_path / "ws")
    assert sorted(p.name for p in store.home.iterdir()) == ["runs.sqlite"]      # no partial file left behind
    assert store.path.stat().st_size > 0 and store.list_runs() == []


def test_an_empty_database_is_reported_never_treated_as_a_fresh_store(tmp_path):
    store, _ = _store_with_runs(tmp_path / "ws")
    store.path.write_bytes(b"")
    with pytest.raises(JobError, match=r"is empty \(0 bytes\); 1 artifact folders exist.*restore|Restore") as caught:
        SQLiteRunStore(tmp_path / "ws")
    assert str(store.path) in str(caught.value) and "\n" not in str(caught.value)
    assert store.path.stat().st_size == 0                                   # left as it was, for a restore


def test_a_database_that_is_not_sqlite_is_reported_as_damaged(tmp_path):
    store, _ = _store_with_runs(tmp_path / "ws")
    store.path.write_bytes(b"this is not a database " * 100)
    with pytest.raises(JobError, match="is damaged .*file is not a database.*; 1 artifact folders exist"):
        SQLiteRunStore(tmp_path / "ws")


def test_a_database_damaged_inside_is_reported_when_read(tmp_path):
    store, _ = _store_with_runs(tmp_path / "ws", runs=40)
    data = bytearray(store.path.read_bytes())
    assert len(data) > 3 * 4096
    data[4096:] = b"\xa5" * (len(data) - 4096)                          # every page after the header page
    store.path.write_bytes(bytes(data))
    with pytest.raises(JobError, match="is damaged .*malformed.*move it away"):
        SQLiteRunStore(tmp_path / "ws").list_runs()


def test_a_missing_database_beside_artifacts_is_reported(tmp_path):
    store, _ = _store_with_runs(tmp_path / "ws")
    store.path.unlink()
    with pytest.raises(JobError, match="is missing, but 1 artifact folders exist"):
        SQLiteRunStore(tmp_path / "ws")
    assert not store.path.exists()


def test_a_schema_2_store_gains_owner_and_shared_in_place(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    with sqlite3.connect(home / "runs.sqlite") as conn:
        conn.executescript("""
            CREATE TABLE experiments (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                                      created_at TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '{}');
            INSERT INTO experiments VALUES ('e1', 'old', '', '2026-01-01T00:00:00+00:00', '{}');
            PRAGMA user_version = 2;""")
    store = SQLiteRunStore(home)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    (old,) = store.list_experiments()
    assert (old.id, old.owner, old.shared) == ("e1", None, False)


def test_a_full_disk_fails_writes_with_a_sentence_and_leaves_the_store_readable(small_disk):
    disk = small_disk("2m")
    store, ids = _store_with_runs(disk.path / "ws")
    ballast = disk.fill()
    reopened = SQLiteRunStore(disk.path / "ws")                             # opening writes nothing
    assert [r.id for r in reopened.list_runs()] == ids
    assert reopened.get_run(ids[0]).status == FINISHED
    with pytest.raises(JobError, match="is full") as caught:
        for seed in range(200):                                             # the WAL may hold a page or two
            reopened.create_run(reopened.list_experiments()[0].id, {"seed": seed, "pad": "x" * 4000})
    assert "\n" not in str(caught.value)
    with pytest.raises(JobError, match="The disk is full: could not write .*predictions.parquet"):
        reopened.write_table(ids[1], "predictions", pd.DataFrame({"row": range(100_000)}))
    assert not list(reopened.artifact_dir(ids[1]).glob("*.part"))           # no partial file keeps the space
    ballast.unlink()
    assert reopened.finish(ids[1], FAILED, error="disk full")
    assert reopened.integrity_check() == "ok"


def test_a_failed_table_write_raises_a_sentence_and_removes_the_partial_file(store, monkeypatch):
    import errno

    run = store.create_run(store.create_experiment("x").id, {})

    def disk_full(self, path, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(JobError, match=f"Run {run.id}: The disk is full: could not write"):
        store.write_table(run.id, "predictions", pd.DataFrame({"row": [1]}))
    assert list(store.artifact_dir(run.id).iterdir()) == []


def test_a_read_only_workspace_is_readable_and_refuses_writes_in_a_sentence(small_disk):
    disk = small_disk("2m")
    _, ids = _store_with_runs(disk.path / "ws")
    disk.remount("ro")
    store = SQLiteRunStore(disk.path / "ws")
    assert store.read_only
    assert [r.id for r in store.list_runs()] == ids and store.list_experiments()[0].name == "earlier"
    assert store.read_table(ids[0], "predictions")["row"].tolist() == [0, 1]
    assert store.fail_orphans() == []
    with pytest.raises(JobError, match="workspace .* is read-only: its runs can be listed and compared"):
        store.create_experiment("new")
    with pytest.raises(JobError, match="read-only"):
        store.finish(ids[1], FAILED)


def test_an_owner_sees_their_own_shared_and_unowned_experiments(store):
    unowned = store.create_experiment("before login")
    ana, bob = store.for_owner("ana@example.com"), store.for_owner("bob@example.com")
    mine = ana.create_experiment("ana's grid")
    ana.create_run(mine.id, {"seed": 0})
    assert mine.owner == "ana@example.com" and not mine.shared
    assert [e.name for e in ana.list_experiments()] == ["before login", "ana's grid"]
    assert [e.name for e in bob.list_experiments()] == ["before login"]
    assert bob.list_runs() == [] and len(ana.list_runs()) == 1
    with pytest.raises(JobError, match="no experiment"):
        bob.get_experiment(mine.id)
    with pytest.raises(JobError, match="no experiment .* of yours"):
        bob.set_shared(mine.id, True)
    ana.set_shared(mine.id, True)
    assert [e.name for e in bob.list_experiments()] == ["before login", "ana's grid"]
    assert bob.get_run(ana.list_runs()[0].id).experiment_id == mine.id
    assert len(store.list_experiments()) == 2 and unowned.owner is None     # without login: everything
