"""A study's worker processes as jobs of the job runner (yeast_me2, logistic regression): one limit shared with a
training grid, a killed worker and a cancel failing only their running trials, the study continued afterwards; and
``RECEXP_OPTUNA_STORAGE`` naming another database two processes share (a second SQLite file, and a live PostgreSQL
server where one can be started here)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from recexp.jobs import JobRunner
from recexp.runs import SQLiteRunStore
from recexp.spec import RunSpec
from recexp.tune import STOPPED, TuneSpec, cancel, launch, open_study, run_study, run_workers, study_names, trial_rows

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 128, "device": "cpu"})
SMOTE = TuneSpec(BASE, ("smote",), fixed={"smote.sampling_strategy": "auto"}, ranges={"smote.k_neighbors": (1, 6)},
                 pruner="none")
#: Trials of about two seconds, so that a test can catch one running.
SLOW = replace(SMOTE, base=replace(BASE, train={**BASE.train, "epochs": 25}))
RUNNING = optuna.trial.TrialState.RUNNING


@pytest.fixture
def new_runner():
    """``new_runner(limit, **settings)``: a job runner on the test's workspace; its workers are cancelled at the end."""
    runners = []

    def make(limit: int, **settings) -> JobRunner:
        runners.append(JobRunner(SQLiteRunStore.open(), max_concurrent=limit, **settings))
        return runners[-1]

    yield make
    for runner in runners:
        runner.stop(cancel_running=True)


def _poll_until(runner: JobRunner, predicate, timeout: float = 240.0, what: str = "condition", seen=None):
    """Poll ``runner`` until ``predicate()``; ``seen`` collects the number of its worker processes at every poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll()
        if seen is not None:
            seen.append(len(runner._children))
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one time."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


def _timestamp(value) -> float:
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).timestamp()


def test_a_study_and_a_training_grid_never_exceed_the_runners_limit(new_runner):
    runner = new_runner(2)
    jobs = launch(SMOTE, "shared", n_trials=4, workers=2, runner=runner)       # first: it takes both slots
    _, runs = runner.launch_grid(BASE, [("none", {})], seeds=[0, 1])          # then: it waits for a slot
    assert runner.commands(jobs) == (2, 0) and [runner.store.get_run(r.id).status for r in runs] == ["queued"] * 2
    seen: list[int] = []
    _poll_until(runner, lambda: runner.commands(jobs) == (0, 0) and not any(
        runner.store.get_run(r.id).is_active for r in runs), what="the study and the grid", seen=seen)
    assert max(seen) == 2                                                      # never more, and both slots used
    runs = [runner.store.get_run(r.id) for r in runs]
    assert [r.status for r in runs] == ["finished"] * 2
    study = open_study("shared")
    assert [r["state"] for r in trial_rows(study)] == ["complete"] * 4
    workers = {}
    for trial in study.trials:                                                 # each worker: first start to last end
        start, end = workers.get(trial.user_attrs["pid"], (float("inf"), 0.0))
        workers[trial.user_attrs["pid"]] = (min(start, _timestamp(trial.datetime_start)),
                                            max(end, _timestamp(trial.datetime_complete)))
    assert len(workers) == 2                                                   # the trials ran in two processes
    intervals = list(workers.values()) + [(_timestamp(r.started_at), _timestamp(r.finished_at)) for r in runs]
    assert _max_overlap(intervals) <= 2
    assert min(_timestamp(r.started_at) for r in runs) >= min(end for _, end in workers.values())


def test_a_killed_worker_and_a_cancel_fail_only_their_running_trials_and_the_study_continues(new_runner):
    runner = new_runner(1, cancel_grace=10.0)
    jobs = launch(SLOW, "stopped", n_trials=40, workers=3, runner=runner)
    assert runner.commands(jobs) == (1, 2)                                     # one slot: two workers wait

    def running_after_a_complete_one():
        trials = open_study("stopped").get_trials(deepcopy=False)
        done = any(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        return done and next((t for t in trials if t.state == RUNNING and "pid" in t.user_attrs), None)

    killed = _poll_until(runner, running_after_a_complete_one, what="a running trial of the first worker")
    os.killpg(killed.user_attrs["pid"], signal.SIGKILL)                        # e.g. the out-of-memory killer
    _poll_until(runner, lambda: runner.commands(jobs) == (1, 1), what="the second worker to take the slot")
    killed_row = trial_rows(open_study("stopped"))[killed.number]
    assert killed_row["state"] == "fail"
    assert killed_row["error"].startswith("The worker process was killed by SIGKILL.")
    cancelled = _poll_until(runner, running_after_a_complete_one, what="a running trial of the second worker")
    assert cancelled.user_attrs["pid"] != killed.user_attrs["pid"]
    assert cancel(runner, "stopped") == 2                                     # the running worker and the waiting one
    _poll_until(runner, lambda: runner.commands(jobs) == (0, 0), timeout=30, what="the cancelled worker to end")
    rows = trial_rows(open_study("stopped"))
    assert not [r for r in rows if r["state"] == "running"]
    failed = [r for r in rows if r["state"] == "fail"]
    assert [r["number"] for r in failed] == [killed.number, cancelled.number]
    # the worker fails its trial on SIGTERM; where the signal came between two trials, the runner does
    assert failed[1]["error"] == STOPPED or failed[1]["error"].startswith("Cancelled by the user."), failed[1]
    complete = [r for r in rows if r["state"] == "complete"]
    assert len(complete) == len(rows) - 2 >= 1                                 # the finished trials are kept
    again = run_study(SLOW, "stopped", n_trials=1)                             # and the study continues
    assert [r["state"] for r in trial_rows(again)][len(rows):] == ["complete"]


# --- another storage -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgresql_url():
    """A PostgreSQL server of this test module's own (Debian's binaries, on 127.0.0.1), as a SQLAlchemy URL."""
    binaries = Path("/usr/lib/postgresql")
    initdb = shutil.which("initdb") or next(iter(sorted(binaries.glob("*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed")
    bin_dir = Path(initdb).resolve().parent
    folder = Path(tempfile.mkdtemp(prefix="recexp-pg-"))
    as_user = []
    if os.geteuid() == 0:                                   # the server refuses to run as root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, bin_dir / "initdb", "-D", folder / "data", "-A", "trust", "-U", "postgres", "--no-sync",
                    "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", folder / "data", "-l", folder / "server.log", "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", folder / "data", "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_storage_named_by_the_environment_is_shared_by_two_worker_processes(database, workspace, tmp_path_factory,
                                                                             monkeypatch, request):
    if database == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'studies.db'}"
    else:
        url = request.getfixturevalue("postgresql_url")
    monkeypatch.setenv("RECEXP_OPTUNA_STORAGE", url)
    study = run_workers(SMOTE, f"elsewhere-{database}", n_trials=2, workers=2)        # the CLI's --workers 2
    rows = trial_rows(study)
    assert [r["state"] for r in rows] == ["complete"] * 2
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert f"elsewhere-{database}" in study_names(url)
    assert not (workspace / "optuna.db").exists()                               # nothing went to the workspace
    again = run_study(SMOTE, f"elsewhere-{database}", n_trials=1)              # this process continues it there
    assert [t.number for t in again.trials] == [0, 1, 2]
