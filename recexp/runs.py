"""The run store: every experiment, run, metric and artifact, in one workspace folder.

Layout of the workspace (``$RECEXP_HOME``, default ``./workspace``)::

    runs.sqlite                     experiments, runs (spec, status, times, error), metrics
    artifacts/<run_id>/predictions.parquet   test rows: position, label, predicted class, probabilities
    artifacts/<run_id>/valid_predictions.parquet  the same for the validation rows
    artifacts/<run_id>/tta_predictions.parquet    with test-time augmentation: the test rows' mean over copies
    artifacts/<run_id>/tta_valid_predictions.parquet  the same for the validation rows
    artifacts/<run_id>/consistency.json      a strategy's new rows against real rows of their class
    artifacts/<run_id>/model.pt              state_dict + config (loads with ``weights_only=True``)
    artifacts/<run_id>/sample_stats.parquet  per-epoch loss / correctness of every training row
    artifacts/<run_id>/worker.log            the worker process's output

SQLite runs in WAL mode with a busy timeout, so the dashboard reads while workers write. Specs and
reports are JSON, tables are Parquet, weights are tensors: nothing is ever unpickled. Non-finite
metric values (NaN, +/-inf) are stored as NULL plus a marker and come back unchanged.

The store tells damage from a new start: a new ``runs.sqlite`` is built beside its final name and
moved into place whole, so an empty, unreadable or missing database next to existing artifact
folders is reported (:class:`~recexp.errors.JobError`), never silently replaced by a fresh one.
Every SQLite or file-system failure (full disk, read-only folder, damage, a lock held too long)
becomes a ``JobError`` whose message says what happened and what to do. Opening and reading never
write, so a store on a full disk or in a read-only workspace can still be listed and compared.

A run belongs to the process that executes it, whose pid the store records (a job runner's worker,
or a foreground process such as ``python -m recexp run``); :meth:`RunStore.fail_orphans` fails the
runs whose process is gone, and is called wherever the store is opened for people to look at.

Example
-------
>>> store = SQLiteRunStore.open()                                  # doctest: +SKIP
>>> exp = store.create_experiment("smote vs none")
>>> run = store.create_run(exp.id, {"model": "mlp"})
>>> store.log_epoch(run.id, 1, {"train_loss": 0.7})
>>> store.finish(run.id, "finished")
"""

from __future__ import annotations

import abc
import contextlib
import copy
import json
import math
import os
import shutil
import sqlite3
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recexp.data.source import workspace
from recexp.errors import JobError, os_error_sentence
from recexp.i18n import _, dumps_text, loads_text

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED = "queued", "running", "finished", "failed", "cancelled"
#: Statuses of a run that has not ended yet.
ACTIVE = (QUEUED, RUNNING)
#: Statuses a run ends in.
FINAL = (FINISHED, FAILED, CANCELLED)

#: Artifact of a run whose strategy is a generator: its training history and quality report (JSON).
SYNTHESIS_REPORT = "synthesis_report.json"
#: Artifact of a run whose strategy added rows: those rows against real ones of their class (JSON,
#: :mod:`recexp.consistency`).
CONSISTENCY_REPORT = "consistency.json"
#: Artifact sub-folder of a run holding the model states kept during training (``epoch_001.pt``, ...).
STATES_FOLDER = "states"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}',
    owner       TEXT,
    shared      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL REFERENCES experiments(id),
    name          TEXT NOT NULL DEFAULT '',
    spec          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    error         TEXT,
    device        TEXT,
    pid           INTEGER,
    message       TEXT NOT NULL DEFAULT '',
    epochs_done   INTEGER NOT NULL DEFAULT 0,
    epochs_total  INTEGER,
    info          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status);
CREATE TABLE IF NOT EXISTS epoch_metrics (
    run_id  TEXT NOT NULL REFERENCES runs(id),
    epoch   INTEGER NOT NULL,
    key     TEXT NOT NULL,
    value   REAL,
    special TEXT,
    PRIMARY KEY (run_id, epoch, key)
);
CREATE TABLE IF NOT EXISTS final_metrics (
    run_id  TEXT NOT NULL REFERENCES runs(id),
    key     TEXT NOT NULL,
    value   REAL,
    special TEXT,
    PRIMARY KEY (run_id, key)
);
"""
_SCHEMA_VERSION = 3
#: What each schema version adds to the one before it (applied in order to an older store, in one transaction).
_MIGRATIONS = {
    2: ("ALTER TABLE experiments ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'",),
    3: ("ALTER TABLE experiments ADD COLUMN owner TEXT",
        "ALTER TABLE experiments ADD COLUMN shared INTEGER NOT NULL DEFAULT 0"),
}

#: Seconds a run's process may appear to have started after its run did (clock granularity and drift).
START_SLACK_SECONDS = 30.0
#: Seconds a claimed run may go without a recorded process id before it counts as never started.
NO_PID_GRACE_SECONDS = 60.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _encode(value: Any) -> tuple[float | None, str | None]:
    """A metric value as ``(REAL or NULL, marker)``; markers keep NaN and infinities distinguishable."""
    number = float(value)
    if math.isnan(number):
        return None, "nan"
    if math.isinf(number):
        return None, "inf" if number > 0 else "-inf"
    return number, None


def _decode(value: float | None, special: str | None) -> float:
    if special is not None:
        return float(special)
    return math.nan if value is None else float(value)


def _json_safe(value: Any) -> Any:
    """Non-finite floats become strings ('nan', 'inf') so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _process_info(pid: int) -> tuple[str, str, float] | None:
    """``(state, command line, start time in Unix seconds)`` of ``pid`` from /proc, or None where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()          # after "pid (name) ": state is field 3, starttime 22
    return fields[0], cmdline, boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int | None, since: str | None = None, worker_only: bool = False) -> bool:
    """Whether ``pid`` is a live (non-zombie) process carrying the run that it took on at ``since``.

    A recexp process (its command line names recexp: a worker, the CLI) counts; unless ``worker_only``,
    so does any process that started before ``since`` (an ISO time): a notebook or a test session
    executing a run in the foreground. A pid since reused by a process started later does not count.
    Without /proc (macOS), a process that exists counts.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():
        return True
    info = _process_info(pid)
    if info is None:
        return False
    state, cmdline, process_start = info
    if state == "Z":
        return False
    if "recexp" in cmdline:
        return True
    if worker_only or not since:
        return False
    return process_start <= datetime.fromisoformat(since).timestamp() + START_SLACK_SECONDS


@dataclass(frozen=True)
class Experiment:
    """A group of runs launched together (e.g. a grid of strategies x seeds).

    ``settings`` holds what was declared before training, e.g. ``{"primary": "balanced_accuracy"}``:
    the score whose verdict counts (see :mod:`recexp.compare`). ``owner`` is the signed-in user who
    launched it from the dashboard (None when nobody was signed in: CLI, Python, a dashboard without
    login); ``shared`` makes an owned experiment visible to every signed-in user.
    """

    id: str
    name: str
    description: str
    created_at: str
    settings: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    shared: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Experiment:
        values = dict(row)
        return cls(**{**values, "settings": json.loads(values.get("settings") or "{}"),
                      "shared": bool(values.get("shared") or 0)})


@dataclass(frozen=True)
class Run:
    """One training run as stored: its spec, where it stands, and its final metrics."""

    id: str
    experiment_id: str
    name: str
    spec: dict[str, Any]
    status: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    device: str | None = None
    pid: int | None = None
    message: str = ""
    epochs_done: int = 0
    epochs_total: int | None = None
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def seconds(self) -> float | None:
        """Wall time from start to end (or to now while running)."""
        if not self.started_at:
            return None
        end = datetime.fromisoformat(self.finished_at) if self.finished_at else datetime.now(UTC)
        return (end - datetime.fromisoformat(self.started_at)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (non-finite metrics as strings)."""
        return _json_safe({
            "id": self.id, "experiment_id": self.experiment_id, "name": self.name, "status": self.status,
            "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
            "error": self.error, "device": self.device, "pid": self.pid, "message": self.message,
            "epochs_done": self.epochs_done, "epochs_total": self.epochs_total, "spec": self.spec,
            "info": self.info, "metrics": self.metrics,
        })


class RunStore(abc.ABC):
    """What the rest of recexp needs from a run store; :class:`SQLiteRunStore` implements it.

    Artifacts are files under ``home/artifacts/<run_id>/``, shared by every implementation.
    """

    home: Path
    #: True where the workspace cannot be written: everything can be read, nothing written.
    read_only: bool = False

    # experiments
    @abc.abstractmethod
    def create_experiment(self, name: str, description: str = "", settings: dict[str, Any] | None = None
                          ) -> Experiment: ...

    @abc.abstractmethod
    def set_shared(self, experiment_id: str, shared: bool) -> None:
        """Show an owned experiment to every signed-in user (or to its owner only again)."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def list_experiments(self) -> list[Experiment]: ...

    # runs
    @abc.abstractmethod
    def create_run(self, experiment_id: str, spec: dict[str, Any], name: str = "", status: str = QUEUED,
                   pid: int | None = None) -> Run:
        """Record a new run, ``queued`` (for a job runner, or reserved for a process) or ``running``.

        ``pid`` is the process that will execute the run; it defaults to this process for a
        ``running`` run and to none for a ``queued`` one, which a job runner then claims. A queued
        run with a pid (e.g. the rest of a grid ``python -m recexp run`` executes itself, one run after
        the other: it claims each with :meth:`claim` before executing it) is reserved for that process:
        runners never claim it, and :meth:`fail_orphans` fails it once that process is gone.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abc.abstractmethod
    def list_runs(self, experiment_id: str | None = None, statuses: Sequence[str] | None = None) -> list[Run]: ...

    @abc.abstractmethod
    def claim(self, run_id: str) -> bool:
        """Move a queued run to running; False if someone else already did (or it was cancelled)."""

    @abc.abstractmethod
    def update(self, run_id: str, **values: Any) -> None:
        """Set progress fields: ``pid``, ``device``, ``message``, ``epochs_total``, ``info``."""

    @abc.abstractmethod
    def log_epochs(self, run_id: str, rows: Iterable[tuple[int, dict[str, float]]]) -> None:
        """Store per-epoch metrics ``[(epoch, {key: value}), ...]`` in one transaction."""

    @abc.abstractmethod
    def set_final_metrics(self, run_id: str, metrics: dict[str, float]) -> None: ...

    @abc.abstractmethod
    def finish(self, run_id: str, status: str, error: str | None = None) -> bool:
        """End an active run; False (and nothing changed) if it had already ended.

        Failing a run first deletes its partial artifact files (``*.part``, left by a write that broke
        off, e.g. on a full disk), so the space they hold is free to record the failure.
        """

    @abc.abstractmethod
    def epoch_metrics(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Long frame ``run_id, epoch, key, value`` for the given runs."""

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Store one epoch's metrics and advance the run's progress."""
        self.log_epochs(run_id, [(epoch, metrics)])

    def fail_orphans(self, exclude: Collection[str] = ()) -> list[str]:
        """Fail the active runs whose process is gone; returns their ids.

        Call it wherever the store is opened to be looked at (the CLI's ``runs``, ``compare`` and
        ``importance``, the dashboard's pages, a job runner's poll), so that no run is left
        ``running`` or ``queued`` for a process that was killed (even with SIGKILL), crashed or
        vanished in a reboot. The runs it fails:

        - ``running`` with a recorded process id that is no longer alive (:func:`pid_alive`);
        - ``running`` without a process id for more than a minute (its worker never started);
        - ``queued`` with a recorded process id, i.e. reserved for a foreground process (see
          :meth:`create_run`), once that process is gone.

        Runs queued without a process id wait for a job runner and are left alone, and so are the runs
        in ``exclude`` (a runner's own children, which it reaps itself). A failure to write (a full disk,
        a read-only workspace) leaves a run as it is for the next check.

        Examples
        --------
        >>> store = SQLiteRunStore.open()                              # doctest: +SKIP
        >>> store.fail_orphans()                                       # doctest: +SKIP
        ['3f2a9c0d1e4b']
        """
        if self.read_only:
            return []
        failed = []
        for run in self.list_runs(statuses=ACTIVE):
            reason = None if run.id in exclude else _orphan_reason(run)
            if reason is None:
                continue
            tail = log_tail(self.home / "artifacts" / run.id / "worker.log")
            with contextlib.suppress(JobError):
                if self.finish(run.id, FAILED, error=with_output(reason, tail)):
                    failed.append(run.id)
        return failed

    # artifacts
    def artifact_dir(self, run_id: str, create: bool = False) -> Path:
        """``home/artifacts/<run_id>``."""
        if not run_id or any(ch in run_id for ch in "/\\."):
            raise JobError(_("'{run_id}' is not a run id.").format(run_id=run_id))
        path = self.home / "artifacts" / run_id
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise JobError(os_error_sentence(error, "create")) from error
        return path

    def _discard_partial_files(self, run_id: str) -> None:
        """Delete the ``*.part`` files of a run that is being failed (nothing writes them any more).

        Each is emptied first: the failed writer may still hold it open (e.g. from the traceback being
        handled), and only truncating frees the space of an open file.
        """
        with contextlib.suppress(OSError):
            for partial in self.artifact_dir(run_id).rglob("*.part"):
                os.truncate(partial, 0)
                partial.unlink(missing_ok=True)

    def write_table(self, run_id: str, name: str, frame: pd.DataFrame) -> Path:
        """Save a frame as ``<name>.parquet`` among the run's artifacts (atomically).

        A failed write (e.g. a full disk) leaves no partial file and raises :class:`JobError`.
        """
        path = self.artifact_dir(run_id, create=True) / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.part")
        try:
            frame.to_parquet(tmp, index=False)
            tmp.replace(path)
        except OSError as error:
            with contextlib.suppress(OSError):               # a partial file only takes the space others need
                tmp.unlink(missing_ok=True)
            raise JobError(_("Run {run_id}: {error}").format(
                             run_id=run_id, error=os_error_sentence(error, 'write', path))) from error
        return path

    def read_table(self, run_id: str, name: str) -> pd.DataFrame:
        """Read back a frame written by :meth:`write_table`."""
        path = self.artifact_dir(run_id) / f"{name}.parquet"
        if not path.exists():
            raise JobError(_("Run {run_id} has no '{name}' artifact (it may not "
                             "have finished).").format(run_id=run_id, name=name))
        return pd.read_parquet(path)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a text file such as a worker's log ('' where it cannot be read)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def with_output(reason: str, tail: str) -> str:
    """A failed run's reason followed by the last lines its worker wrote (if any), as one stored text."""
    return _("{reason}\nLast output:\n{output}").format(reason=reason, output=tail) if tail else reason


def _orphan_reason(run: Run) -> str | None:
    """Why an active run's process is gone (see :meth:`RunStore.fail_orphans`), or None while it may live."""
    if run.status == QUEUED:
        if run.pid is None or pid_alive(run.pid, run.created_at):
            return None
        return _("The process that queued this run (pid {pid}) is gone: it was killed or crashed before the run "
                 "started.").format(pid=run.pid)
    if run.pid is None:
        if (run.seconds or 0.0) <= NO_PID_GRACE_SECONDS:
            return None
        return _("The worker process never started (no process id recorded within a minute).")
    if pid_alive(run.pid, run.started_at):
        return None
    return _("The process running this run (pid {pid}) is gone: it was killed or crashed, or the machine "
             "restarted, before the run ended.").format(pid=run.pid)


def _initialise(path: Path) -> None:
    """Write the schema into the SQLite database at ``path`` (WAL mode, current version)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
    finally:
        conn.close()


class SQLiteRunStore(RunStore):
    """The run store in ``home/runs.sqlite`` (WAL mode) plus ``home/artifacts``.

    Every call opens a short-lived connection, so one store object can be shared by threads
    (Streamlit sessions) and processes can open the same folder concurrently. Opening checks that
    the database is sound (see the module docstring) and brings an older schema up to date; it
    writes nothing otherwise, so it works on a full disk and in a read-only workspace.

    Parameters
    ----------
    home : path
        The workspace folder; created if missing.
    busy_timeout_ms : int
        How long a writer waits for another writer's lock before failing.
    owner : str, optional
        The signed-in user this store object acts for (see :meth:`for_owner`); None: everyone.

    Raises
    ------
    JobError
        The database is empty, damaged, missing beside existing artifacts, from a newer recexp, or the
        workspace cannot be created or read.
    """

    def __init__(self, home: str | Path, busy_timeout_ms: int = 30_000, owner: str | None = None):
        self.home = Path(home).resolve()
        self.busy_timeout_ms = busy_timeout_ms
        self.owner = owner
        self.path = self.home / "runs.sqlite"
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise JobError(os_error_sentence(error, "create")) from error
        self.read_only = not os.access(self.home, os.W_OK)
        if not self.path.exists():
            self._create()
        self._prepare()

    def for_owner(self, owner: str | None) -> SQLiteRunStore:
        """The same store acting for one signed-in user (None: for everyone, as without login).

        It lists and gets only the experiments (and their runs) that ``owner`` launched, that their
        owner shared, or that have no owner (launched with nobody signed in); experiments it creates
        belong to ``owner``.
        """
        view = copy.copy(self)
        view.owner = owner
        return view

    # --- opening ------------------------------------------------------------------------------

    def _artifact_folders(self) -> int:
        try:
            return sum(1 for entry in (self.home / "artifacts").iterdir() if entry.is_dir())
        except OSError:
            return 0

    def _damaged(self, what: str) -> JobError:
        return JobError(_("The run store at {path} {what}; {folders} artifact folders exist in {home}. Restore "
                          "runs.sqlite from a backup, or move it away to start a new, empty store.").format(
                          path=self.path, what=what, folders=self._artifact_folders(), home=self.home / 'artifacts'))

    def _read_only_error(self) -> JobError:
        return JobError(_("The workspace {home} is read-only: its runs can be listed and compared, but nothing "
                          "can be written there. Point RECEXP_HOME at a writable folder "
                          "to train or value runs.").format(home=self.home))

    def _create(self) -> None:
        """Build a new database beside its final name and move it into place whole.

        So a zero-byte ``runs.sqlite`` is never one being created, and two processes creating the
        store at once end up with the same one.
        """
        folders = self._artifact_folders()
        if folders:
            raise JobError(_("The run store at {path} is missing, but {folders} artifact folders exist in "
                             "{home}. Restore runs.sqlite from a backup, or move the artifacts folder away to "
                             "start a new, empty store.").format(
                             path=self.path, folders=folders, home=self.home / 'artifacts'))
        if self.read_only:
            raise JobError(_("The workspace {home} is read-only and holds no run store yet. Point RECEXP_HOME at "
                             "a writable folder.").format(home=self.home))
        partial = self.home / f".runs.sqlite.{uuid.uuid4().hex}.new"
        try:
            _initialise(partial)
            with contextlib.suppress(FileExistsError):        # another process created it first: use that one
                os.link(partial, self.path)
        except sqlite3.Error as error:
            raise self._error(error) from error
        except OSError as error:
            raise JobError(os_error_sentence(error, "create")) from error
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{partial}{suffix}").unlink(missing_ok=True)

    def _prepare(self) -> None:
        """Refuse an empty or damaged database; bring an older schema up to date (where writable)."""
        try:
            empty = self.path.stat().st_size == 0
        except OSError as error:
            raise JobError(os_error_sentence(error, "read")) from error
        if empty:
            raise self._damaged(_("is empty (0 bytes)"))
        with self._connect() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if version > _SCHEMA_VERSION:
            raise JobError(_("The run store {path} was written by a newer recexp (schema {version}); upgrade "
                             "recexp or use another RECEXP_HOME.").format(path=self.path, version=version))
        if version == _SCHEMA_VERSION or self.read_only:   # an older schema is read as it is, fields defaulted
            return
        if version == 0:                                    # an empty SQLite file: make it a store
            try:
                _initialise(self.path)
            except sqlite3.Error as error:
                raise self._error(error) from error
            return
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]     # another process may have done it
            for step in range(version + 1, _SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def _disk_full(self) -> bool:
        try:
            return shutil.disk_usage(self.home).free < 1 << 20
        except OSError:
            return False

    def _error(self, error: sqlite3.Error) -> JobError:
        """A SQLite failure as a sentence: what happened to the store, and what to do."""
        name = getattr(error, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return self._damaged(_("is damaged ({error})").format(error=error))
        if name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and self._disk_full()):
            return JobError(_("The disk holding the run store {path} is full, so it could not be written. Free "
                              "some space (or point RECEXP_HOME at a roomier folder) and "
                              "try again.").format(path=self.path))
        if name.startswith("SQLITE_READONLY") or self.read_only:
            return self._read_only_error()
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return JobError(_("The run store {path} stayed locked by another process for {seconds:.0f} "
                              "s. Try again; if it keeps happening, look for a stuck recexp process.").format(
                              path=self.path, seconds=self.busy_timeout_ms / 1000))
        return JobError(_("The run store {path} could not be used ({error}). Check that {home} can be read and "
                          "written, or point RECEXP_HOME at another folder.").format(
                          path=self.path, error=error, home=self.home))

    def _open(self, immutable: bool = False) -> sqlite3.Connection:
        if immutable:
            conn = sqlite3.connect(f"{self.path.as_uri()}?immutable=1", uri=True, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.row_factory = sqlite3.Row
        return conn

    @classmethod
    def open(cls, home: str | Path | None = None) -> SQLiteRunStore:
        """The store in ``home``, else ``$RECEXP_HOME``, else ``./workspace``."""
        return cls(home or workspace())

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading; SQLite failures become :class:`JobError` sentences.

        Where SQLite cannot set up its shared-memory index next to the database (a read-only workspace,
        or a disk too full for it), the database file is read as immutable instead: what was
        checkpointed into it, without writes still in the WAL file.
        """
        try:
            conn = self._readable()
            try:
                yield conn
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise self._error(error) from error

    def _readable(self) -> sqlite3.Connection:
        conn = None
        try:
            conn = self._open()
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.Error as error:
            if conn is not None:
                conn.close()
            if not (isinstance(error, sqlite3.OperationalError) and getattr(error, "sqlite_errorname", "")
                    .startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY"))):
                raise
        return self._open(immutable=True)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one immediate (write-locked) transaction, committed on success."""
        if self.read_only:
            raise self._read_only_error()
        try:
            conn = self._open()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise self._error(error) from error

    # --- experiments --------------------------------------------------------------------------

    def create_experiment(self, name: str, description: str = "", settings: dict[str, Any] | None = None
                          ) -> Experiment:
        experiment = Experiment(uuid.uuid4().hex[:12], name or "experiment", description, _now(), dict(settings or {}),
                                owner=self.owner)
        with self._write() as conn:
            conn.execute("INSERT INTO experiments (id, name, description, created_at, settings, owner) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (experiment.id, experiment.name, experiment.description, experiment.created_at,
                          json.dumps(_json_safe(experiment.settings)), experiment.owner))
        return experiment

    def _visible(self) -> tuple[str, list[str]]:
        """SQL condition on ``experiments AS e`` (and its arguments) for what :attr:`owner` may see."""
        if self.owner is None:
            return "1=1", []
        return "(e.owner IS NULL OR e.owner = ? OR e.shared = 1)", [self.owner]

    def get_experiment(self, experiment_id: str) -> Experiment:
        visible, args = self._visible()
        with self._connect() as conn:
            row = conn.execute(f"SELECT * FROM experiments e WHERE e.id = ? AND {visible}",
                               (experiment_id, *args)).fetchone()
        if row is None:
            raise JobError(_("There is no experiment '{experiment_id}' in {path}.").format(
                             experiment_id=experiment_id, path=self.path))
        return Experiment.from_row(row)

    def list_experiments(self) -> list[Experiment]:
        visible, args = self._visible()
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM experiments e WHERE {visible} ORDER BY e.created_at, e.rowid",
                                args).fetchall()
        return [Experiment.from_row(r) for r in rows]

    def set_shared(self, experiment_id: str, shared: bool) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT owner FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
            if row is None or (self.owner is not None and row["owner"] not in (None, self.owner)):
                raise JobError(_("There is no experiment '{experiment_id}' of yours in {path}.").format(
                                 experiment_id=experiment_id, path=self.path))
            conn.execute("UPDATE experiments SET shared = ? WHERE id = ?", (int(bool(shared)), experiment_id))

    # --- runs ---------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, spec: dict[str, Any], name: str = "", status: str = QUEUED,
                   pid: int | None = None) -> Run:
        if status not in ACTIVE:
            raise JobError(_("A new run starts as 'queued' or 'running', not {status!r}.").format(status=status))
        run_id = uuid.uuid4().hex[:12]
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, experiment_id, name, spec, status, created_at, started_at, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, experiment_id, name, json.dumps(_json_safe(spec), allow_nan=False), status, now,
                 now if status == RUNNING else None, os.getpid() if pid is None and status == RUNNING else pid))
        return self.get_run(run_id)

    def _runs(self, conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Run]:
        ids = [r["id"] for r in rows]
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for m in conn.execute(f"SELECT * FROM final_metrics WHERE run_id IN ({','.join('?' * len(part))})", part):
                metrics[m["run_id"]][m["key"]] = _decode(m["value"], m["special"])
        runs = []
        for r in rows:
            values = dict(r)
            values["spec"] = json.loads(values["spec"])
            values["info"] = json.loads(values["info"])
            values["error"], values["message"] = loads_text(values["error"]), loads_text(values["message"])
            runs.append(Run(**values, metrics=metrics[r["id"]]))
        return runs

    def get_run(self, run_id: str) -> Run:
        visible, args = self._visible()
        with self._connect() as conn:
            rows = conn.execute("SELECT r.* FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                                f"WHERE r.id = ? AND {visible}", (run_id, *args)).fetchall()
            if not rows:
                raise JobError(_("There is no run '{run_id}' in {path}. "
                                 "List runs with `python -m recexp runs`.").format(run_id=run_id, path=self.path))
            return self._runs(conn, rows)[0]

    def list_runs(self, experiment_id: str | None = None, statuses: Sequence[str] | None = None) -> list[Run]:
        visible, args = self._visible()
        query = f"SELECT r.* FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE {visible}"
        if experiment_id is not None:
            query += " AND r.experiment_id = ?"
            args.append(experiment_id)
        if statuses:
            query += f" AND r.status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        with self._connect() as conn:
            return self._runs(conn, conn.execute(query + " ORDER BY r.created_at, r.rowid", args).fetchall())

    def claim(self, run_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("UPDATE runs SET status = ?, started_at = ? WHERE id = ? AND status = ?",
                                  (RUNNING, _now(), run_id, QUEUED))
        return cursor.rowcount == 1

    _UPDATABLE = {"pid", "device", "message", "epochs_total", "info"}

    def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - self._UPDATABLE
        if unknown:
            raise JobError(_("Run fields {unknown} cannot be updated; allowed: {updatable}.").format(
                             unknown=sorted(unknown), updatable=sorted(self._UPDATABLE)))
        if not values:
            return
        if "info" in values:
            values["info"] = json.dumps(_json_safe(values["info"]), allow_nan=False)
        if "message" in values:                            # read back in the reader's language
            values["message"] = dumps_text(values["message"])
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._write() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), run_id])

    def log_epochs(self, run_id: str, rows: Iterable[tuple[int, dict[str, float]]]) -> None:
        records, last = [], None
        for epoch, metrics in rows:
            last = max(last or 0, int(epoch))
            records += [(run_id, int(epoch), str(k), *_encode(v)) for k, v in metrics.items()]
        if last is None:
            return
        with self._write() as conn:
            conn.executemany("INSERT OR REPLACE INTO epoch_metrics VALUES (?, ?, ?, ?, ?)", records)
            conn.execute("UPDATE runs SET epochs_done = MAX(epochs_done, ?) WHERE id = ?", (last, run_id))

    def set_final_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        with self._write() as conn:
            conn.executemany("INSERT OR REPLACE INTO final_metrics VALUES (?, ?, ?, ?)",
                             [(run_id, str(k), *_encode(v)) for k, v in metrics.items()])

    def finish(self, run_id: str, status: str, error: str | None = None) -> bool:
        if status not in FINAL:
            raise JobError(_("A run ends as one of {final}, not "
                             "{status!r}.").format(final=', '.join(FINAL), status=status))
        if status == FAILED and not self.read_only:
            self._discard_partial_files(run_id)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN (?, ?)",
                (status, dumps_text(error), _now(), run_id, *ACTIVE))
        return cursor.rowcount == 1

    def epoch_metrics(self, run_ids: Sequence[str]) -> pd.DataFrame:
        ids = list(run_ids)
        records = []
        with self._connect() as conn:
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                records += [(r["run_id"], r["epoch"], r["key"], _decode(r["value"], r["special"]))
                            for r in conn.execute(
                                f"SELECT * FROM epoch_metrics WHERE run_id IN ({','.join('?' * len(part))}) "
                                "ORDER BY run_id, epoch, key", part)]
        return pd.DataFrame(records, columns=["run_id", "epoch", "key", "value"]).astype(
            {"run_id": "string", "epoch": "int64", "key": "string", "value": "float64"})

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the file is sound)."""
        with self._connect() as conn:
            return "\n".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())
