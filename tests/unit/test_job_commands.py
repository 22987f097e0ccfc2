"""Commands of the job runner (work besides the store's runs, e.g. a study's workers), with sleeping processes: one
limit, oldest first, and how each ended told to its ``on_exit`` (finished, killed, cancelled)."""

import os
import signal
import sys
import time

from recexp.jobs import Command, JobRunner
from recexp.runs import SQLiteRunStore

SLEEP = (sys.executable, "-c", "import sys, time; time.sleep(float(sys.argv[1]))")


def _until(runner: JobRunner, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        runner.poll()
        time.sleep(0.05)


def test_commands_share_the_limit_start_oldest_first_and_report_how_they_ended(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    runner = JobRunner(SQLiteRunStore.open(), max_concurrent=1, cancel_grace=2.0)
    ended = []

    def command(group: str, seconds: float) -> Command:
        return Command(group, (*SLEEP, str(seconds)), tmp_path / f"{group}.log",
                       on_exit=lambda pid, reason: ended.append((group, reason)))

    for group, seconds in (("a", 0.5), ("b", 60), ("c", 60)):
        runner.submit_command(command(group, seconds))
    assert [runner.commands(g) for g in "abc"] == [(1, 0), (0, 1), (0, 1)]
    _until(runner, lambda: runner.commands("b") == (1, 0))                    # a ended: b took the only slot
    assert ended == [("a", None)] and runner.commands("c") == (0, 1) and runner.running() == []
    os.killpg(next(iter(runner._children.values())).handle.pid, signal.SIGKILL)
    _until(runner, lambda: runner.commands("c") == (1, 0))
    assert ended[1] == ("b", "The worker process was killed by SIGKILL.")
    assert runner.cancel_group("c") == 1 and runner.cancel_group("c") == 0     # stopping already
    _until(runner, lambda: runner.commands("c") == (0, 0))
    assert ended[2] == ("c", "Cancelled by the user.")
    assert (tmp_path / "a.log").exists()
