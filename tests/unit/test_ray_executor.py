"""Grids on a Ray cluster: one local Ray instance (2 CPUs) for the module; runs as Ray tasks, their store writes
relayed to the runner, cancel, and a lost task failing its run while the others go on."""

import os
import signal
import time
from pathlib import Path

import pytest

from recexp.data.source import DataSource
from recexp.errors import InvalidParameterError
from recexp.executors import LocalExecutor, RayExecutor, executor_from_env
from recexp.jobs import JobRunner, default_runner
from recexp.runs import CANCELLED, FAILED, FINISHED, SQLiteRunStore
from recexp.spec import RunSpec

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine with 2 CPUs, shared by the module's tests (starting one takes seconds)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")          # no token written under the home folder
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def runner(local_ray):
    return JobRunner(SQLiteRunStore.open(), max_concurrent=2, poll_interval=0.2, cancel_grace=3.0,
                     executor=RayExecutor(cpus=1))


@pytest.fixture(scope="module")
def taobao_head(taobao_head_file):
    return taobao_head_file(3000)


def _spec(path, epochs: int) -> RunSpec:
    return RunSpec(source=DataSource(str(path)).to_dict(), task="behavior", task_params={"sequence_length": 5},
                   model="logreg", train={"epochs": epochs, "batch_size": 128, "patience": None, "device": "cpu"})


def _wait(predicate, runner: JobRunner, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll()
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_pid(run_id: str) -> int | None:
    """The recexp worker process executing ``run_id`` on this (the only) node."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"recexp.worker" in command and run_id.encode() in command:
                return int(entry.name)
    return None


def test_a_grid_runs_as_ray_tasks_and_only_the_runner_writes_the_store(runner, taobao_head):
    _, runs = runner.launch_grid(_spec(taobao_head, epochs=2), [("none", {}), ("class_weights", {})], seeds=[0])
    done = runner.wait([r.id for r in runs], timeout=180)
    assert [r.status for r in done] == [FINISHED, FINISHED], [r.error for r in done]
    store = runner.store
    for run in done:
        assert run.pid == os.getpid()                        # the runner's process owns the run and its store writes
        assert run.epochs_done == run.epochs_total == 2 and "accuracy" in run.metrics
        assert len(store.read_table(run.id, "predictions")) > 0
        assert (store.artifact_dir(run.id) / "model.pt").exists()
        assert "epoch 2" in (store.artifact_dir(run.id) / "worker.log").read_text()
    assert store.epoch_metrics([done[0].id])["epoch"].max() == 2


def test_cancel_stops_a_ray_run_and_a_lost_task_fails_its_run_while_the_others_go_on(runner, taobao_head):
    long = _spec(taobao_head, epochs=400)
    _, (cancelled, killed) = runner.launch_grid(long, [("none", {})], seeds=[0, 1])
    _wait(lambda: all(runner.store.get_run(r.id).epochs_done >= 1 for r in (cancelled, killed)), runner,
          what="both runs training on Ray")
    assert runner.cancel(cancelled.id)
    pid = _wait(lambda: _worker_pid(killed.id), runner, what="the worker process of the second run")
    os.kill(_parent(pid), signal.SIGKILL)                  # the Ray worker executing it dies, as with a lost node
    short = runner.submit(_spec(taobao_head, epochs=1))                         # the cluster goes on
    ended = runner.wait([cancelled.id, killed.id, short.id], timeout=180)
    assert [r.status for r in ended] == [CANCELLED, FAILED, FINISHED], [r.error for r in ended]
    assert ended[0].error == "Cancelled by the user." and ended[0].epochs_done < 400
    assert "Ray task was lost" in ended[1].error
    _wait(lambda: _worker_pid(cancelled.id) is None and _worker_pid(killed.id) is None, runner, timeout=30,
          what="the workers of the stopped runs to end")


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def test_the_executor_setting_is_read_from_the_environment_with_sentences(monkeypatch):
    monkeypatch.delenv("RECEXP_EXECUTOR", raising=False)
    assert isinstance(executor_from_env(), LocalExecutor)
    assert isinstance(default_runner().executor, LocalExecutor)
    monkeypatch.setenv("RECEXP_EXECUTOR", "ray")
    monkeypatch.setenv("RECEXP_RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setenv("RECEXP_RAY_CPUS", "4")
    executor = executor_from_env()
    assert isinstance(executor, RayExecutor) and (executor.address, executor.cpus, executor.gpus) == \
        ("ray://head:10001", 4, None)
    for variable, value, message in (("RECEXP_RAY_CPUS", "0", "RECEXP_RAY_CPUS must be a positive integer"),
                                     ("RECEXP_RAY_GPUS", "-1", "RECEXP_RAY_GPUS must be a number of at least 0"),
                                     ("RECEXP_EXECUTOR", "slurm", "RECEXP_EXECUTOR must be 'local' or 'ray'")):
        with monkeypatch.context() as patch:
            patch.setenv(variable, value)
            with pytest.raises(InvalidParameterError, match=message):
                executor_from_env()
