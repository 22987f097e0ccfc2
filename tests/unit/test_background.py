"""A background task: the result or the error of its work, its progress, and a cancel that stops work which
reports progress at its next report."""

from __future__ import annotations

import threading

import pytest

from recexp.background import BackgroundTask
from recexp.errors import CancelledError, InvalidParameterError

WAIT = 60                     # seconds a test waits for a thread at most (a guard, not a measurement)


def test_the_result_and_the_last_progress_come_back():
    def work(progress):
        for step in range(1, 5):
            progress(step / 4, f"step {step} of 4")
        return "done"

    task = BackgroundTask(work, label="Counting", key=("a", 1)).start()
    assert task.wait(WAIT).status == "finished"
    assert task.outcome() == "done"
    assert (task.fraction, task.message) == (1.0, "step 4 of 4")
    assert task.key == ("a", 1) and task.elapsed >= 0 and task.remaining() is None


def test_the_error_of_the_work_is_raised_by_outcome():
    def work(progress):
        raise InvalidParameterError("k_neighbors=400 needs at least 401 rows.")

    task = BackgroundTask(work).start()
    assert task.wait(WAIT).status == "failed"
    with pytest.raises(InvalidParameterError, match="k_neighbors=400"):
        task.outcome()


def test_cancel_stops_work_at_its_next_progress_report():
    reported, release = threading.Event(), threading.Event()
    steps = []

    def work(progress):
        for step in range(1, 1001):
            progress(step / 1000, f"step {step}")
            steps.append(step)
            if step == 3:
                reported.set()
                release.wait(WAIT)
        return "all steps"

    task = BackgroundTask(work, label="Counting").start()
    assert reported.wait(WAIT)
    assert task.status == "running" and task.fraction == pytest.approx(0.003)
    assert task.remaining() is not None
    task.cancel()
    release.set()
    task.wait(WAIT)
    assert task.status == "cancelled" and steps == [1, 2, 3]      # stopped at step 4's report
    with pytest.raises(CancelledError, match="Counting was cancelled"):
        task.outcome()


def test_outcome_of_a_running_task_says_so():
    release = threading.Event()
    task = BackgroundTask(lambda progress: release.wait(WAIT)).start()
    with pytest.raises(RuntimeError, match="still running"):
        task.outcome()
    release.set()
    assert task.wait(WAIT).outcome() is True
