"""Grids on a Ray cluster: one local Ray instance (2 CPUs) for the module; runs as Ray tasks, their store writes
relayed to the runner, cancel, a lost task failing its run while the others go on, and artifacts carried through an
object store (moto's S3 server, a file:// URI) instead of a shared folder."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recexp.data.source import DataSource
from recexp.errors import InvalidParameterError
from recexp.executors import LocalExecutor, RayExecutor, executor_from_env
from recexp.jobs import JobRunner, default_runner
from recexp.runs import CANCELLED, FAILED, FINISHED, RUNNING, SQLiteRunStore
from recexp.spec import RunSpec

ray = pytest.importorskip("ray")

#: Credentials for moto's S3 server; set before Ray starts, so the nodes (Ray's workers) have them too.
DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance on this machine with 2 CPUs, shared by the module's tests (starting one takes seconds)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")          # no token written under the home folder
    previous = {name: os.environ.get(name) for name in DUMMY_AWS}
    os.environ.update(DUMMY_AWS)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def s3_server(local_ray):
    """moto's S3 server on a free port with the bucket ``recexp``; yields ``(endpoint host:port, boto3 client)``."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", **_boto_credentials())
    client.create_bucket(Bucket="recexp")
    yield f"127.0.0.1:{port}", client
    server.stop()


def _boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": DUMMY_AWS["AWS_ACCESS_KEY_ID"], "region_name": DUMMY_AWS["AWS_DEFAULT_REGION"],
            "aws_secret_access_key": DUMMY_AWS["AWS_SECRET_ACCESS_KEY"]}


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


# --- artifacts through an object store ---------------------------------------------------------------------

def _node_workspace(store: SQLiteRunStore, run_id: str) -> Path:
    """The workspace the run's worker executed in, as its first log line says."""
    return Path(re.search(r"in the workspace (\S+?)(,|$)", (store.artifact_dir(run_id) / "worker.log").read_text(),
                          re.M).group(1))


def test_with_an_s3_uri_a_node_works_in_its_own_workspace_and_the_runner_gets_the_artifacts(s3_server, taobao_head,
                                                                                            monkeypatch):
    endpoint, client = s3_server
    monkeypatch.setenv("RECEXP_EXECUTOR", "ray")
    monkeypatch.setenv("RECEXP_RAY_STORAGE", f"s3://recexp/ws?endpoint_override={endpoint}&scheme=http")
    runner = default_runner(max_concurrent=2)
    assert runner.executor.storage is not None
    finish, predictions_at_finish = runner.store.finish, []

    def finish_seeing_predictions(run_id, status, error=None):     # what a page reading the store then would see
        predictions_at_finish.append((status, (runner.store.artifact_dir(run_id) / "predictions.parquet").exists()))
        return finish(run_id, status, error)

    monkeypatch.setattr(runner.store, "finish", finish_seeing_predictions)
    _, runs = runner.launch_grid(_spec(taobao_head, epochs=1), [("none", {}), ("class_weights", {})], seeds=[0])
    done = runner.wait([r.id for r in runs], timeout=180)
    assert [r.status for r in done] == [FINISHED, FINISHED], [r.error for r in done]
    assert predictions_at_finish == [(FINISHED, True), (FINISHED, True)]
    store = runner.store
    keys = {item["Key"] for item in client.list_objects_v2(Bucket="recexp", Prefix="ws/")["Contents"]}
    for run in done:
        node_home = _node_workspace(store, run.id)
        assert node_home != store.home and not node_home.exists()       # a temporary workspace, gone afterwards
        log = (store.artifact_dir(run.id) / "worker.log").read_text()
        assert f"reading its data from {node_home}/data/" in log and "epoch 1" in log
        assert len(store.read_table(run.id, "predictions")) > 0 and (store.artifact_dir(run.id) / "model.pt").exists()
        assert {f"ws/artifacts/{run.id}/predictions.parquet", f"ws/artifacts/{run.id}/worker.log",
                f"ws/artifacts/{run.id}/model.pt", f"ws/artifacts/{run.id}/spec.json"} <= keys
    assert sum(key.startswith("ws/data/") and key.endswith(taobao_head.name) for key in keys) == 1   # uploaded once


def test_a_failed_and_a_cancelled_run_bring_their_logs_back_through_a_file_uri(local_ray, taobao_head, tmp_path,
                                                                               monkeypatch):
    bucket = tmp_path / "bucket"
    monkeypatch.setenv("RECEXP_EXECUTOR", "ray")
    monkeypatch.setenv("RECEXP_RAY_STORAGE", bucket.as_uri() + "/ws")
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a\nbehaviour,log\n")
    runner = default_runner(max_concurrent=2)
    runner.cancel_grace = 10.0                                  # time for the cancelled task to upload its log
    run, long = runner.submit(_spec(broken, epochs=1)), runner.submit(_spec(taobao_head, epochs=400))
    _wait(lambda: runner.store.get_run(long.id).epochs_done >= 1, runner, what="the long run training")
    assert runner.cancel(long.id)
    failed, cancelled = runner.wait([run.id, long.id], timeout=120)
    assert failed.status == FAILED and failed.error.startswith("No column was found"), failed.error
    log = (runner.store.artifact_dir(run.id) / "worker.log").read_text()
    assert "run failed: No column was found" in log and _node_workspace(runner.store, run.id) != runner.store.home
    assert (bucket / "ws" / "artifacts" / run.id / "worker.log").exists()
    assert cancelled.status == CANCELLED
    _wait(lambda: not runner.running(), runner, timeout=30, what="the cancelled task to end")
    assert "epoch 1" in (runner.store.artifact_dir(long.id) / "worker.log").read_text()


def test_an_object_store_uri_that_cannot_be_used_is_refused_in_a_sentence(s3_server, tmp_path, monkeypatch):
    endpoint, _client = s3_server
    monkeypatch.setenv("RECEXP_EXECUTOR", "ray")
    for uri in ("nosuch://bucket/ws", f"s3://missing-bucket/ws?endpoint_override={endpoint}&scheme=http"):
        monkeypatch.setenv("RECEXP_RAY_STORAGE", uri)
        with pytest.raises(InvalidParameterError, match=r"^RECEXP_RAY_STORAGE='.+' cannot be used as the Ray "
                                                        r"cluster's workspace: [^\n]+unset RECEXP_RAY_STORAGE"):
            default_runner()
    child = _cli_on_ray(tmp_path, "taobao", "--task", "behavior", "--seeds", 1, "--epochs", 1,
                        storage="nosuch://bucket/ws")
    _, err = child.communicate(timeout=120)
    assert child.returncode == 2 and err.startswith("error: RECEXP_RAY_STORAGE='nosuch://bucket/ws' cannot be used")
    assert len(err.strip().splitlines()) == 1, err                         # a sentence, not a traceback


# --- python -m recexp run on Ray ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _cli_on_ray(home: Path, *args, storage: str | None = None) -> subprocess.Popen:
    """``python -m recexp run ARGS`` with RECEXP_EXECUTOR=ray, connected to the module's Ray instance."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(home), "RECEXP_EXECUTOR": "ray",
           "RECEXP_RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    env.pop("RECEXP_RAY_STORAGE", None)
    if storage:
        env["RECEXP_RAY_STORAGE"] = storage
    return subprocess.Popen([sys.executable, "-m", "recexp", "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_cli_run_executes_its_grid_on_ray_with_progress_and_the_usual_result(local_ray, tmp_path):
    home, bucket = tmp_path / "ws", tmp_path / "bucket"
    child = _cli_on_ray(home, "taobao", "--task", "behavior", "--task-param", "sequence_length=5", "--model",
                        "logreg", "--strategy", "none", "--strategy", "class_weights", "--seeds", 1, "--epochs", 2,
                        "--batch-size", 1024, "--device", "cpu", "--json", storage=bucket.as_uri())
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    result = json.loads(out)
    assert [(r["strategy"], r["status"]) for r in result["runs"]] == [("none", "finished"), ("class_weights", "finished")]
    assert all(0 <= r["metrics"]["f1_macro"] <= 1 and r["device"].startswith("cpu") for r in result["runs"])
    assert "2 of 2 runs ended (2 finished, 0 failed, 0 cancelled); 0 running, 0 queued" in err
    store = SQLiteRunStore(home)
    for run in result["runs"]:
        assert store.get_run(run["id"]).pid == child.pid                    # this process's runner drove them
        assert len(store.read_table(run["id"], "predictions")) > 0
        assert (bucket / "artifacts" / run["id"] / "predictions.parquet").exists()
    assert not (bucket / "data").exists()                                   # a bundled sample is not uploaded


def test_ctrl_c_stops_a_cli_run_on_ray_and_cancels_its_runs(local_ray, taobao_head, tmp_path):
    home = tmp_path / "ws"
    child = _cli_on_ray(home, taobao_head, "--task", "behavior", "--task-param", "sequence_length=5", "--model",
                        "logreg", "--seeds", 3, "--epochs", 400, "--patience", 400, "--batch-size", 128,
                        "--device", "cpu")
    try:
        deadline = time.monotonic() + 180
        while not ((home / "runs.sqlite").exists() and any(
                run.epochs_done >= 1 for run in SQLiteRunStore(home).list_runs(statuses=[RUNNING]))):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1] if child.poll() else ""
            time.sleep(0.2)
        ids = [run.id for run in SQLiteRunStore(home).list_runs()]
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "on ray are cancelled in the run store" in err
    # The CLI's own runner applied the epoch the test saw in the store, and printed progress right after.
    assert re.search(r"; none / logreg / seed \d: epoch [1-9]\d*/400", err), err
    runs = [SQLiteRunStore(home).get_run(run_id) for run_id in ids]
    assert [run.status for run in runs] == [CANCELLED] * 3
    assert sorted(run.error for run in runs) == [
        "The command-line run was stopped (SIGINT) before this run started.",
        "The command-line run was stopped (SIGINT) during this run.",
        "The command-line run was stopped (SIGINT) during this run."]
    deadline = time.monotonic() + 30
    while any(_worker_pid(run_id) for run_id in ids):                       # the Ray tasks' workers went too
        assert time.monotonic() < deadline, "a worker of the stopped CLI run is still alive"
        time.sleep(0.2)
