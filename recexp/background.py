"""Work on a thread beside the dashboard: progress, a cancel, and the result or the error it raised.

A preview in the Strategy Lab can take minutes (a generator's epochs); run on the script's own thread
it would freeze the page until it ends. A :class:`BackgroundTask` runs a function on a daemon thread
and hands it a ``progress(fraction, message)`` callback that records how far it got, and raises
:class:`~recexp.errors.CancelledError` once :meth:`~BackgroundTask.cancel` was called: work that reports
progress (a generator after every epoch) stops at its next report. Work that never reports runs to its
end, but a cancelled task drops what it returns. The work runs in the language of the code that started
it (a Chinese session's preview writes its notes and errors in Chinese).

>>> task = BackgroundTask(lambda progress: sum(range(10))).start()
>>> task.wait(5).outcome()
45
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recexp.errors import CancelledError
from recexp.i18n import _, in_current_language

#: ``progress(fraction_done, message)``, as strategies and generators call it.
Progress = Callable[[float, str], None]

#: The states a task goes through: running, then exactly one of the other three.
STATUSES = ("running", "finished", "failed", "cancelled")


@dataclass
class BackgroundTask:
    """``work(progress)`` on a daemon thread, with the last progress it reported.

    Parameters
    ----------
    work : callable
        Called once with a ``progress(fraction, message)`` callback; what it returns is the result.
    label : str
        What the task does, in words (shown beside its progress bar).
    key : object
        What the caller needs to tell this task from another (e.g. the settings it ran with).
    """

    work: Callable[[Progress], Any]
    label: str = ""
    key: Any = None
    fraction: float = field(default=0.0, init=False)
    message: str = field(default="", init=False)
    started_at: float | None = field(default=None, init=False)
    ended_at: float | None = field(default=None, init=False)
    _result: Any = field(default=None, init=False, repr=False)
    _error: BaseException | None = field(default=None, init=False, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def start(self) -> BackgroundTask:
        """Start the work on its own thread; returns the task."""
        self.started_at = time.monotonic()
        threading.Thread(target=in_current_language(self._run), name=f"recexp-task {self.label}"[:60], daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            self._result = self.work(self._progress)
        except BaseException as error:              # kept for the caller: outcome() raises it there
            self._error = error
        finally:
            self.ended_at = time.monotonic()
            self._done.set()

    def _progress(self, fraction: float, message: str) -> None:
        if self._cancelled.is_set():
            raise self._cancelled_error()
        self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), message

    def _cancelled_error(self) -> CancelledError:
        return CancelledError(_("{task} was cancelled.").format(task=self.label) if self.label
                              else _("The task was cancelled."))

    def cancel(self) -> None:
        """Ask the work to stop at its next progress report; from now on the task counts as cancelled."""
        self._cancelled.set()

    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
        if self._cancelled.is_set():
            return "cancelled"
        if not self._done.is_set():
            return "running"
        return "failed" if self._error is not None else "finished"

    @property
    def elapsed(self) -> float:
        """Seconds since the start (until the end, once it ended)."""
        if self.started_at is None:
            return 0.0
        return (self.ended_at if self.ended_at is not None else time.monotonic()) - self.started_at

    def remaining(self) -> float | None:
        """Seconds left if the work keeps its pace so far; ``None`` before its first progress report."""
        if self.fraction <= 0.0 or self.status != "running":
            return None
        return self.elapsed * (1.0 - self.fraction) / self.fraction

    def wait(self, timeout: float | None = None) -> BackgroundTask:
        """Block until the work ends or ``timeout`` seconds passed; returns the task."""
        self._done.wait(timeout)
        return self

    def outcome(self) -> Any:
        """The work's result; raises the error it raised, or :class:`~recexp.errors.CancelledError`.

        Raises
        ------
        CancelledError
            :meth:`cancel` was called (whatever the work returned is dropped).
        RuntimeError
            The work is still running.
        """
        if self._cancelled.is_set():
            raise self._cancelled_error()
        if not self._done.is_set():
            raise RuntimeError("The task is still running; wait() for it or check status first.")   # a bug
        if self._error is not None:
            raise self._error
        return self._result
