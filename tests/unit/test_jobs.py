"""Runs in worker processes: execute, concurrency, queue, cancel, SIGKILL, restart, grids."""

import os
from pathlib import Path
import signal
import time

import numpy as np
import pandas as pd
import pytest
import torch

from recexp.data.source import DataSource
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.spec import RunSpec
from recexp.jobs import JobRunner, execute
from recexp.models import load_checkpoint
from recexp.runs import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SQLiteRunStore

N_EVENTS = 5000


@pytest.fixture(scope="module")
def taobao_head(taobao_head_file):
    """The first 5,000 events of the bundled Taobao sample as a file a worker can load."""
    return taobao_head_file(N_EVENTS)


@pytest.fixture
def store():
    return SQLiteRunStore.open()                    # in the test's own RECEXP_HOME


def _spec(path, **changes) -> RunSpec:
    base = RunSpec(source=DataSource(str(path)).to_dict(), task="behavior", task_params={"sequence_length": 5},
                   model="logreg", train={"epochs": 2, "batch_size": 256, "learning_rate": 5e-3, "device": "cpu"})
    return RunSpec(**{**base.to_dict(), **changes})


def _wait(predicate, runner: JobRunner | None, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner is not None:
            runner.poll()
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_execute_stores_metrics_predictions_model_and_sample_stats(taobao_head, store):
    spec = _spec(taobao_head, strategy="class_weights", train={"epochs": 2, "batch_size": 256, "device": "cpu"})
    run = store.create_run(store.create_experiment("one").id, spec.to_dict(), status=RUNNING)
    metrics = execute(spec, store, run.id)
    run = store.get_run(run.id)
    assert run.status == FINISHED and run.error is None and run.device.startswith("cpu")
    assert run.epochs_done == run.epochs_total == 2
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "balanced_accuracy", "roc_auc", "log_loss"):
        assert key in run.metrics and run.metrics[key] == pytest.approx(metrics[key])
    assert run.info["rows"]["test"] > 0 and run.info["strategy_report"]["strategy"]
    curves = store.epoch_metrics([run.id])
    assert set(curves["epoch"]) == {1, 2} and {"train_loss", "valid_loss"} <= set(curves["key"])

    assert len(store.read_table(run.id, "valid_predictions")) == run.info["rows"]["valid"]
    predictions = store.read_table(run.id, "predictions")
    assert len(predictions) == run.info["rows"]["test"]
    proba = predictions.filter(like="proba_").to_numpy()
    assert proba.shape[1] == 4
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (predictions["predicted"].to_numpy() == proba.argmax(axis=1)).all()
    assert run.metrics["accuracy"] == pytest.approx((predictions["predicted"] == predictions["label"]).mean())

    stats = store.read_table(run.id, "sample_stats")
    assert len(stats) == 2 * run.info["rows"]["train_after_strategy"]
    assert {"row", "epoch", "loss", "correct", "is_synthetic", "sample_weight"} <= set(stats.columns)
    assert stats["sample_weight"].nunique() > 1                          # class weights reached the trainer

    path = store.artifact_dir(run.id) / "model.pt"
    assert torch.load(path, weights_only=True)["model"] == "logreg"
    model, module, extra = load_checkpoint(path)
    assert extra["run_id"] == run.id and extra["classes"] == ["view", "cart", "fav", "buy"]


def test_a_mixed_precision_run_predicts_in_float32(taobao_head, store, simulated_cuda_autocast, forward_passes):
    """Autocast (bf16 on CUDA, simulated here on the CPU) is for training steps only: the stored test and
    validation predictions come from float32 forward passes."""
    spec = _spec(taobao_head, model="mlp", train={"epochs": 1, "batch_size": 256, "device": "cpu",
                                                  "mixed_precision": True})
    run = store.create_run(store.create_experiment("amp").id, spec.to_dict(), status=RUNNING)
    execute(spec, store, run.id)
    seen = forward_passes
    assert {autocast for training, autocast in seen if training} == {True}
    assert {autocast for training, autocast in seen if not training} == {False}
    predictions = store.read_table(run.id, "predictions")
    assert predictions["proba_view"].nunique() > 0.9 * len(predictions)


def test_changed_data_fails_the_run_with_a_sentence(taobao_head, store):
    spec = _spec(taobao_head, fingerprint="0000000000000000")
    run = store.create_run(store.create_experiment("stale").id, spec.to_dict(), status=RUNNING)
    with pytest.raises(InvalidDataError, match="data changed"):
        execute(spec, store, run.id)
    run = store.get_run(run.id)
    assert run.status == FAILED and "data changed" in run.error


def test_grid_is_one_experiment_and_a_bad_parameter_queues_nothing(taobao_head, store):
    runner = JobRunner(store, max_concurrent=0)                           # queue only, start nothing
    experiment, runs = runner.launch_grid(_spec(taobao_head), [("none", {}), ("random_over", {})], seeds=[0, 1, 2],
                                          models=[("logreg", {}), ("mlp", {"hidden_dim": 16})])
    assert len(runs) == 2 * 3 * 2 and {r.experiment_id for r in runs} == {experiment.id}
    combos = {(r.spec["strategy"], r.spec["model"], r.spec["seed"]) for r in runs}
    assert len(combos) == 12 and all(r.status == QUEUED for r in store.list_runs(experiment.id))
    with pytest.raises(InvalidParameterError, match="k_neighbors"):
        runner.launch_grid(_spec(taobao_head), [("smote", {"k_neighbors": -1})], seeds=[0])
    with pytest.raises(InvalidParameterError, match="Unknown model"):
        runner.launch_grid(_spec(taobao_head), [("none", {})], seeds=[0], models=[("xgboost", {})])
    assert len(store.list_experiments()) == 1


def test_two_jobs_run_concurrently_in_worker_processes(taobao_head, store):
    runner = JobRunner(store, max_concurrent=2, threads_per_job=1)
    # 40 short epochs: long enough that both workers are seen mid-training even when one starts a little late.
    _, runs = runner.launch_grid(_spec(taobao_head, train={"epochs": 40, "batch_size": 128, "patience": None,
                                                            "device": "cpu"}), [("none", {})], seeds=[0, 1])
    ids = [r.id for r in runs]
    overlap = _wait(lambda: all(store.get_run(i).epochs_done >= 1 and store.get_run(i).status == RUNNING
                                for i in ids), runner, what="both runs training at once")
    assert overlap
    pids = {store.get_run(i).pid for i in ids}
    assert len(pids) == 2 and os.getpid() not in pids
    done = runner.wait(ids, timeout=180)
    assert [r.status for r in done] == [FINISHED, FINISHED], [r.error for r in done]
    assert done[0].metrics["accuracy"] != done[1].metrics["accuracy"] or \
        store.epoch_metrics([ids[0]])["value"].tolist() != store.epoch_metrics([ids[1]])["value"].tolist()
    started = max(pd.Timestamp(r.started_at) for r in done)
    first_end = min(pd.Timestamp(r.finished_at) for r in done)
    assert started < first_end                                            # the two runs overlapped in time


def test_concurrency_limit_keeps_the_rest_queued_and_cancel_works(taobao_head, store):
    runner = JobRunner(store, max_concurrent=1, threads_per_job=1, cancel_grace=2.0)
    long = _spec(taobao_head, train={"epochs": 500, "batch_size": 64, "patience": None, "device": "cpu"})
    _, runs = runner.launch_grid(long, [("none", {})], seeds=[0, 1])
    first, second = (r.id for r in runs)
    _wait(lambda: store.get_run(first).epochs_done >= 1, runner, what="the first run to train")
    assert store.get_run(second).status == QUEUED                      # limit 1: the second waits
    assert runner.cancel(second) and store.get_run(second).status == CANCELLED
    pid = store.get_run(first).pid
    assert runner.cancel(first)
    assert not runner.cancel(first)                                      # already ended
    _wait(lambda: not runner.running(), runner, timeout=30, what="the worker to stop")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    run = store.get_run(first)
    assert run.status == CANCELLED and run.error == "Cancelled by the user." and run.epochs_done < 500
    assert store.get_run(second).started_at is None                      # never started


def test_a_worker_killed_with_sigkill_leaves_a_failed_run_and_a_sound_store(taobao_head, store):
    runner = JobRunner(store, max_concurrent=1, threads_per_job=1)
    run = runner.submit(_spec(taobao_head, train={"epochs": 500, "batch_size": 64, "patience": None,
                                                  "device": "cpu"}))
    _wait(lambda: store.get_run(run.id).epochs_done >= 2, runner, what="the worker to write epochs")
    os.kill(store.get_run(run.id).pid, signal.SIGKILL)
    ended = _wait(lambda: (r := store.get_run(run.id)) and not r.is_active and r, runner, timeout=30,
                  what="the killed run to be marked")
    assert ended.status == FAILED and "SIGKILL" in ended.error
    assert store.integrity_check() == "ok"
    curves = store.epoch_metrics([run.id])
    assert curves["epoch"].max() >= 2 and curves["value"].notna().any()
    # the store keeps working after the crash
    assert store.create_run(ended.experiment_id, {}).status == QUEUED


def test_restart_keeps_runs_and_fails_runs_whose_worker_is_gone(taobao_head, store):
    runner = JobRunner(store, max_concurrent=1, threads_per_job=1)
    finished = runner.submit(_spec(taobao_head, train={"epochs": 1, "device": "cpu"}))
    metrics_before = runner.wait([finished.id], timeout=180)[0].metrics
    assert metrics_before["accuracy"] > 0
    # a run whose worker died while no runner was watching (e.g. the app was restarted)
    orphan = store.create_run(finished.experiment_id, _spec(taobao_head).to_dict(), status=RUNNING)
    store.update(orphan.id, pid=2**22 + 12345)                           # no such process
    del runner, store

    reopened = SQLiteRunStore.open()
    restarted = JobRunner(reopened, max_concurrent=1)
    assert [r.id for r in reopened.list_runs()] == [finished.id, orphan.id]
    assert reopened.get_run(finished.id).status == FINISHED
    restarted.poll()
    gone = reopened.get_run(orphan.id)
    assert gone.status == FAILED and "is gone" in gone.error
    assert reopened.get_run(finished.id).metrics == metrics_before
    assert (reopened.artifact_dir(finished.id) / "model.pt").exists()


def test_a_foreground_run_stays_running_while_a_runner_watches_and_is_never_signalled(taobao_head, store):
    import sqlite3
    import subprocess

    # This test process executes the run itself (like the CLI or a notebook): its pid is recorded, and a
    # dashboard's runner polling the same store must neither fail the run nor signal this process.
    experiment = store.create_experiment("foreground")
    foreground = store.create_run(experiment.id, _spec(taobao_head).to_dict(), status=RUNNING)
    assert foreground.pid == os.getpid()
    runner = JobRunner(store, max_concurrent=1)
    runner.poll()
    assert store.get_run(foreground.id).status == RUNNING
    assert runner.cancel(foreground.id)                      # marks it cancelled; this process lives on
    assert store.get_run(foreground.id).status == CANCELLED
    # A pid taken over by a process that started long after the run did is not the run's process.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        reused = store.create_run(experiment.id, _spec(taobao_head).to_dict(), status=RUNNING)
        store.update(reused.id, pid=stranger.pid)
        with sqlite3.connect(store.home / "runs.sqlite") as conn:
            conn.execute("UPDATE runs SET started_at = ? WHERE id = ?", ("2026-01-01T00:00:00+00:00", reused.id))
        runner.poll()
        gone = store.get_run(reused.id)
        assert gone.status == FAILED and "is gone" in gone.error
        assert stranger.poll() is None                       # and it was not signalled either
    finally:
        stranger.kill()
        stranger.wait()


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "recexp", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def test_cli_run_prints_each_runs_id_device_and_test_metrics_then_runs_lists_them(taobao_head):
    import json

    done = _cli("run", taobao_head, "--task", "behavior", "--task-param", "sequence_length=5",
                "--strategy", "none", "--strategy", "random_under", "--param", "sampling_strategy=not minority",
                "--model", "logreg", "--seeds", 2, "--epochs", 1, "--device", "cpu", "--json")
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1" in done.stderr                                    # the progress bar
    result = json.loads(done.stdout)
    runs = result["runs"]
    assert [(r["strategy"], r["seed"]) for r in runs] == [("none", 0), ("none", 1), ("random_under", 0),
                                                          ("random_under", 1)]
    for run in runs:
        assert run["status"] == "finished" and run["device"].startswith("cpu")
        assert {"accuracy", "precision_macro", "recall_macro", "f1_macro"} <= set(run["metrics"])
        assert 0 <= run["metrics"]["f1_macro"] <= 1
    listed = json.loads(_cli("runs", "--json").stdout)
    assert [r["id"] for r in listed["runs"]] == [r["id"] for r in runs]
    assert {r["experiment_id"] for r in listed["runs"]} == {result["experiment"]["id"]}
    assert listed["runs"][2]["spec"]["strategy_params"]["sampling_strategy"] == "not minority"


def test_cli_run_reports_a_bad_model_as_a_sentence(taobao_head):
    done = _cli("run", taobao_head, "--task", "behavior", "--model", "xgboost", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: Unknown model 'xgboost'") and "Traceback" not in done.stderr


def test_cli_run_trains_lightgbm_with_its_parameters(taobao_head):
    import json

    done = _cli("run", taobao_head, "--task", "behavior", "--task-param", "sequence_length=5", "--model", "lightgbm",
                "--model-param", "num_leaves=7", "--model-param", "class_weight=balanced", "--seeds", 1, "--epochs", 2,
                "--json")
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["status"] == "finished" and run["model"] == "lightgbm" and run["device"].startswith("cpu")
    assert run["metrics"]["balanced_accuracy"] > 0.3
    (listed,) = json.loads(_cli("runs", "--json").stdout)["runs"]
    params = listed["spec"]["model_params"]
    assert params["num_leaves"] == 7 and params["class_weight"] == "balanced"


# --- orphans, reserved queues, threads ------------------------------------------------------------------------

def _dead_pid() -> int:
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_fail_orphans_fails_runs_and_reserved_queued_runs_of_dead_processes_only(taobao_head, store):
    experiment = store.create_experiment("orphans")
    spec = _spec(taobao_head).to_dict()
    dead = _dead_pid()
    running_dead = store.create_run(experiment.id, spec, status=RUNNING, pid=dead)
    queued_dead = store.create_run(experiment.id, spec, status=QUEUED, pid=dead)     # the rest of a killed CLI grid
    queued_mine = store.create_run(experiment.id, spec, status=QUEUED, pid=os.getpid())
    running_mine = store.create_run(experiment.id, spec, status=RUNNING)
    for_a_runner = store.create_run(experiment.id, spec)                              # no pid: waits for a runner
    assert running_mine.pid == os.getpid() and for_a_runner.pid is None and queued_dead.pid == dead

    assert sorted(store.fail_orphans()) == sorted([running_dead.id, queued_dead.id])
    assert "pid" in store.get_run(running_dead.id).error and "is gone" in store.get_run(running_dead.id).error
    assert "queued this run" in store.get_run(queued_dead.id).error
    assert [store.get_run(r.id).status for r in (queued_mine, running_mine, for_a_runner)] == [QUEUED, RUNNING, QUEUED]
    assert store.fail_orphans(exclude=[running_mine.id]) == []


def test_a_runner_never_claims_a_run_reserved_for_a_foreground_process(taobao_head, store):
    experiment = store.create_experiment("reserved")
    reserved = store.create_run(experiment.id, _spec(taobao_head).to_dict(), status=QUEUED, pid=os.getpid())
    runner = JobRunner(store, max_concurrent=1, threads_per_job=1)
    runner.poll()
    assert runner.running() == [] and store.get_run(reserved.id).status == QUEUED
    assert store.claim(reserved.id)                                     # the process it is reserved for claims it
    assert store.get_run(reserved.id).pid == os.getpid()


def test_threads_per_run_leaves_a_core_free_and_splits_the_rest(monkeypatch):
    from recexp import jobs

    monkeypatch.setattr(jobs, "usable_cores", lambda: 8)
    assert [jobs.threads_per_run(n) for n in (1, 2, 3, 7, 8, 20)] == [7, 3, 2, 1, 1, 1]
    monkeypatch.setattr(jobs, "usable_cores", lambda: 2)
    assert jobs.threads_per_run(1) == jobs.threads_per_run(3) == 1      # three CLI runs on 2 cores: 1 thread each


def test_recexp_max_jobs_is_capped_at_the_core_count_with_a_sentence(monkeypatch, store):
    from recexp import jobs
    from recexp.jobs import default_runner

    monkeypatch.setattr(jobs, "usable_cores", lambda: 2)
    monkeypatch.setenv("RECEXP_MAX_JOBS", "16")
    with pytest.warns(RuntimeWarning, match="RECEXP_MAX_JOBS=16 is more than the 2 CPU cores here; at most 2 runs"):
        assert default_runner(store).max_concurrent == 2
    monkeypatch.setenv("RECEXP_MAX_JOBS", "1")
    assert default_runner(store).max_concurrent == 1
    monkeypatch.setenv("RECEXP_MAX_JOBS", "lots")
    with pytest.raises(InvalidParameterError, match="RECEXP_MAX_JOBS must be a positive integer"):
        default_runner(store)


def test_a_full_disk_while_writing_artifacts_fails_the_run_with_a_sentence(taobao_head, store, monkeypatch):
    import errno

    from recexp.errors import JobError

    earlier = store.create_run(store.create_experiment("earlier").id, {"seed": 0})
    spec = _spec(taobao_head)
    run = store.create_run(store.create_experiment("full").id, spec.to_dict(), status=RUNNING)

    def disk_full(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(JobError, match="The disk is full: could not write .*predictions.parquet"):
        execute(spec, store, run.id)
    failed = store.get_run(run.id)
    assert failed.status == FAILED and failed.error.startswith(f"Run {run.id}: The disk is full")
    assert "\n" not in failed.error and "Traceback" not in failed.error
    assert [r.id for r in store.list_runs()] == [earlier.id, run.id]


def test_an_unknown_or_absent_device_is_refused_before_anything_is_queued(tmp_path, monkeypatch, capsys):
    from recexp.cli import main

    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    assert main(["run", "yeast_me2", "--task", "table", "--model", "logreg", "--device", "quantum", "--seeds", "1"]) == 2
    assert "device" in capsys.readouterr().err
    assert SQLiteRunStore(tmp_path).list_runs() == []
