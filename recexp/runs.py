"""The run store: every experiment, run, metric and artifact, in one workspace folder.

Layout of the workspace (``$RECEXP_HOME``, default ``./workspace``)::

    runs.sqlite                     experiments, runs (spec, status, times, error), metrics
    artifacts/<run_id>/predictions.parquet   test rows: position, label, predicted class, probabilities
    artifacts/<run_id>/valid_predictions.parquet  the same for the validation rows
    artifacts/<run_id>/model.pt              state_dict + config (loads with ``weights_only=True``)
    artifacts/<run_id>/sample_stats.parquet  per-epoch loss / correctness of every training row
    artifacts/<run_id>/worker.log            the worker process's output

SQLite runs in WAL mode with a busy timeout, so the dashboard reads while workers write. Specs and
reports are JSON, tables are Parquet, weights are tensors: nothing is ever unpickled. Non-finite
metric values (NaN, +/-inf) are stored as NULL plus a marker and come back unchanged.

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
import json
import math
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recexp.errors import JobError

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED = "queued", "running", "finished", "failed", "cancelled"
#: Statuses of a run that has not ended yet.
ACTIVE = (QUEUED, RUNNING)
#: Statuses a run ends in.
FINAL = (FINISHED, FAILED, CANCELLED)

#: Artifact of a run whose strategy is a generator: its training history and quality report (JSON).
SYNTHESIS_REPORT = "synthesis_report.json"
#: Artifact sub-folder of a run holding the model states kept during training (``epoch_001.pt``, ...).
STATES_FOLDER = "states"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}'
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
_SCHEMA_VERSION = 2
#: What each schema version adds to the one before it (applied in order to an older store).
_MIGRATIONS = {2: "ALTER TABLE experiments ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'"}


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


@dataclass(frozen=True)
class Experiment:
    """A group of runs launched together (e.g. a grid of strategies x seeds).

    ``settings`` holds what was declared before training, e.g. ``{"primary": "balanced_accuracy"}``:
    the score whose verdict counts (see :mod:`recexp.compare`).
    """

    id: str
    name: str
    description: str
    created_at: str
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Experiment:
        values = dict(row)
        return cls(**{**values, "settings": json.loads(values.get("settings") or "{}")})


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

    # experiments
    @abc.abstractmethod
    def create_experiment(self, name: str, description: str = "", settings: dict[str, Any] | None = None
                          ) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def list_experiments(self) -> list[Experiment]: ...

    # runs
    @abc.abstractmethod
    def create_run(self, experiment_id: str, spec: dict[str, Any], name: str = "", status: str = QUEUED) -> Run: ...

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
        """End an active run; False (and nothing changed) if it had already ended."""

    @abc.abstractmethod
    def epoch_metrics(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Long frame ``run_id, epoch, key, value`` for the given runs."""

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Store one epoch's metrics and advance the run's progress."""
        self.log_epochs(run_id, [(epoch, metrics)])

    # artifacts
    def artifact_dir(self, run_id: str, create: bool = False) -> Path:
        """``home/artifacts/<run_id>``."""
        if not run_id or any(ch in run_id for ch in "/\\."):
            raise JobError(f"'{run_id}' is not a run id.")
        path = self.home / "artifacts" / run_id
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def write_table(self, run_id: str, name: str, frame: pd.DataFrame) -> Path:
        """Save a frame as ``<name>.parquet`` among the run's artifacts (atomically)."""
        path = self.artifact_dir(run_id, create=True) / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.part")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
        return path

    def read_table(self, run_id: str, name: str) -> pd.DataFrame:
        """Read back a frame written by :meth:`write_table`."""
        path = self.artifact_dir(run_id) / f"{name}.parquet"
        if not path.exists():
            raise JobError(f"Run {run_id} has no '{name}' artifact (it may not have finished).")
        return pd.read_parquet(path)


class SQLiteRunStore(RunStore):
    """The run store in ``home/runs.sqlite`` (WAL mode) plus ``home/artifacts``.

    Every call opens a short-lived connection, so one store object can be shared by threads
    (Streamlit sessions) and processes can open the same folder concurrently.

    Parameters
    ----------
    home : path
        The workspace folder; created if missing.
    busy_timeout_ms : int
        How long a writer waits for another writer's lock before failing.
    """

    def __init__(self, home: str | Path, busy_timeout_ms: int = 30_000):
        self.home = Path(home).resolve()
        self.busy_timeout_ms = busy_timeout_ms
        self.home.mkdir(parents=True, exist_ok=True)
        self.path = self.home / "runs.sqlite"
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise JobError(f"The run store {self.path} was written by a newer recexp (schema {version}); "
                               "upgrade recexp or use another RECEXP_HOME.")
            if version:
                for step in range(version + 1, _SCHEMA_VERSION + 1):
                    conn.execute(_MIGRATIONS[step])
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @classmethod
    def open(cls, home: str | Path | None = None) -> SQLiteRunStore:
        """The store in ``home``, else ``$RECEXP_HOME``, else ``./workspace``."""
        from recexp.data.source import workspace

        return cls(home or workspace())

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one immediate (write-locked) transaction, committed on success."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- experiments --------------------------------------------------------------------------

    def create_experiment(self, name: str, description: str = "", settings: dict[str, Any] | None = None
                          ) -> Experiment:
        experiment = Experiment(uuid.uuid4().hex[:12], name or "experiment", description, _now(), dict(settings or {}))
        with self._write() as conn:
            conn.execute("INSERT INTO experiments (id, name, description, created_at, settings) VALUES (?, ?, ?, ?, ?)",
                         (experiment.id, experiment.name, experiment.description, experiment.created_at,
                          json.dumps(_json_safe(experiment.settings))))
        return experiment

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise JobError(f"There is no experiment '{experiment_id}' in {self.path}.")
        return Experiment.from_row(row)

    def list_experiments(self) -> list[Experiment]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM experiments ORDER BY created_at, rowid").fetchall()
        return [Experiment.from_row(r) for r in rows]

    # --- runs ---------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, spec: dict[str, Any], name: str = "", status: str = QUEUED) -> Run:
        if status not in ACTIVE:
            raise JobError(f"A new run starts as 'queued' or 'running', not {status!r}.")
        run_id = uuid.uuid4().hex[:12]
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, experiment_id, name, spec, status, created_at, started_at, pid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, experiment_id, name, json.dumps(_json_safe(spec), allow_nan=False), status, now,
                 now if status == RUNNING else None, os.getpid() if status == RUNNING else None))
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
            runs.append(Run(**values, metrics=metrics[r["id"]]))
        return runs

    def get_run(self, run_id: str) -> Run:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchall()
            if not rows:
                raise JobError(f"There is no run '{run_id}' in {self.path}. List runs with `python -m recexp runs`.")
            return self._runs(conn, rows)[0]

    def list_runs(self, experiment_id: str | None = None, statuses: Sequence[str] | None = None) -> list[Run]:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if experiment_id is not None:
            query += " AND experiment_id = ?"
            args.append(experiment_id)
        if statuses:
            query += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        with self._connect() as conn:
            return self._runs(conn, conn.execute(query + " ORDER BY created_at, rowid", args).fetchall())

    def claim(self, run_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("UPDATE runs SET status = ?, started_at = ? WHERE id = ? AND status = ?",
                                  (RUNNING, _now(), run_id, QUEUED))
        return cursor.rowcount == 1

    _UPDATABLE = {"pid", "device", "message", "epochs_total", "info"}

    def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - self._UPDATABLE
        if unknown:
            raise JobError(f"Run fields {sorted(unknown)} cannot be updated; allowed: {sorted(self._UPDATABLE)}.")
        if not values:
            return
        if "info" in values:
            values["info"] = json.dumps(_json_safe(values["info"]), allow_nan=False)
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
            raise JobError(f"A run ends as one of {', '.join(FINAL)}, not {status!r}.")
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN (?, ?)",
                (status, error, _now(), run_id, *ACTIVE))
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
