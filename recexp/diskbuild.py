"""An out-of-core dataset build in a background process, for the dashboard: its request, progress and result.

The Data page cannot build a log larger than memory on its own thread (it would hold the page for
minutes) nor in its own process (it would hold the memory). It describes the build as a
:class:`BuildRequest` (:func:`prepare_build`) and hands :func:`command_line` to the workspace's
:class:`~recexp.jobs.JobRunner` as a :class:`~recexp.jobs.Command` (:mod:`recexp.ui.builds`; this
module does not import the job runner, so the build process does not load torch):
``python -m recexp.diskbuild FOLDER`` runs
:func:`recexp.outofcore.build_on_disk` and writes its progress (phase, rows, share done, peak memory)
to ``FOLDER/state.json`` as it goes, where the page reads it (:func:`build_state`). The folder is
``<workspace>/builds/<key>``, the key a hash of the request (file identity, task, its parameters, split,
sampling), so a reload or a link finds the same build, running or done, without reading the log.

A cancelled build (:func:`mark_cancelled`, once its process was stopped) leaves no dataset behind: the process is stopped, the staging
folder of :func:`~recexp.outofcore.build_on_disk` is removed (by the process itself, or after it by the
runner's callback :func:`process_ended` when it had to be killed), and the dataset folder appears only once complete.

>>> request = BuildRequest(path="events.csv", task="purchase")                 # doctest: +SKIP
>>> folder = prepare_build(request)                                            # doctest: +SKIP
>>> build_state(folder).status                                                 # doctest: +SKIP
'queued'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recexp.data.source import workspace
from recexp.dataset import LABEL, SAMPLE_WEIGHT
from recexp.errors import RecexpError, sentence
from recexp.i18n import _, dumps_text, format_decimal, loads_text, use_language
from recexp.outofcore import DiskDataset, Sampling, build_on_disk, peak_rss
from recexp.process import exit_process
from recexp.runs import pid_alive
from recexp.tasks import SplitSpec

#: The states of a build: waiting for a slot of the job runner, running, then one of the last three.
STATUSES = ("queued", "running", "finished", "failed", "cancelled")
ENDED = ("finished", "failed", "cancelled")
#: Seconds between two writes of the progress file (a phase change is always written).
WRITE_EVERY = 0.5
_STATE = "state.json"
_REQUEST = "request.json"


@dataclass(frozen=True)
class BuildRequest:
    """What one out-of-core build makes: the log file and how to read it, the task, the split, the sampling.

    ``split`` and ``sampling`` are a :class:`~recexp.tasks.SplitSpec`'s and a
    :class:`~recexp.outofcore.Sampling`'s fields as dicts; ``mapping`` and ``header`` as
    :class:`~recexp.data.source.DataSource` holds them.
    """

    path: str
    task: str
    task_params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, float] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    header: bool | None = None

    def key(self) -> str:
        """16 hex digits naming this request for this very file (its size and modification time included)."""
        stat = Path(self.path).stat()
        text = json.dumps({**asdict(self), "path": str(Path(self.path).resolve()), "size": stat.st_size,
                           "mtime": stat.st_mtime_ns}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, progress) -> DiskDataset:
        """Build the dataset (as a run with the same settings builds it, so it reuses this build)."""
        return build_on_disk(self.path, self.task, SplitSpec(**self.split), sampling=Sampling(**self.sampling),
                             header=self.header, mapping=self.mapping or None, progress=progress, **self.task_params)


@dataclass(frozen=True)
class BuildState:
    """How far a build got, as its process last wrote it (:func:`build_state`)."""

    status: str                          # one of STATUSES
    phase: str = ""                      # reading, features, writing
    rows: int = 0                        # rows read (reading) or written (writing) so far
    fraction: float = 0.0                # share of the phase done
    peak_memory: int = 0                 # the build process's peak resident memory, bytes
    started: float | None = None         # Unix time the process started
    ended: float | None = None
    pid: int | None = None
    error: str | None = None             # a sentence, in the reader's language
    dataset: str | None = None           # the finished dataset's folder

    @property
    def elapsed(self) -> float:
        """Seconds the build has run (until it ended)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started

    @property
    def active(self) -> bool:
        return self.status not in ENDED


def build_folder(key: str) -> Path:
    """Where build ``key`` keeps its request, progress and log: ``<workspace>/builds/<key>``."""
    return workspace() / "builds" / key


def _stored(folder: Path) -> dict[str, Any] | None:
    """The folder's state file as written (None: none)."""
    path = folder / _STATE
    return json.loads(path.read_text()) if path.exists() else None


def write_state(folder: Path, **values: Any) -> None:
    """Merge ``values`` into the folder's state file (written whole and renamed, so a reader never sees half)."""
    path = folder / _STATE
    state = _stored(folder) or {}
    state.update(values)
    tmp = path.with_name(f"{_STATE}.{os.getpid()}")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def build_state(folder: Path) -> BuildState | None:
    """The state of the build in ``folder`` (None: never launched). A build whose process is gone without a
    word (the machine restarted, it was killed outside the dashboard) counts as failed, with a sentence."""
    state = _stored(folder)
    if state is None:
        return None
    state["error"] = loads_text(state.get("error"))
    known = {name: state[name] for name in BuildState.__dataclass_fields__ if name in state}
    result = BuildState(**known)
    if result.status == "running" and result.pid is not None and not pid_alive(result.pid):
        return BuildState(**{**known, "status": "failed", "error": _(
            "The build process (pid {pid}) ended without finishing; nothing was kept. Build again.").format(
                pid=result.pid)})
    if result.status == "finished" and not (result.dataset and (Path(result.dataset) / "schema.json").exists()):
        return None                                   # the dataset was deleted since: as if never built
    return result


def prepare_build(request: BuildRequest) -> Path:
    """Record ``request`` as a build waiting for its process (any earlier state of it dropped); returns its
    folder."""
    folder = build_folder(request.key())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _REQUEST).write_text(json.dumps(asdict(request), sort_keys=True, default=str))
    (folder / _STATE).unlink(missing_ok=True)
    write_state(folder, status="queued")
    return folder


def command_line(folder: Path, language: str) -> tuple[str, ...]:
    """The build process of ``folder`` (writing its log's sentences in ``language``), for the job runner."""
    return (sys.executable, "-m", "recexp.diskbuild", str(folder), "--home", str(workspace()), "--language",
            language)


def mark_cancelled(folder: Path) -> None:
    """Record the build in ``folder`` as cancelled by the user (its process is being stopped)."""
    state = build_state(folder)
    if state is not None and state.active:
        write_state(folder, status="cancelled", ended=time.time(), error=dumps_text(_("Cancelled by the user.")))


def process_ended(folder: Path, pid: int, reason: str | None) -> None:
    """How the build process ``pid`` ended (``reason`` None: exit code 0), from the job runner: a process
    killed before it could say so leaves its state failed with ``reason``, and its staging folder removed."""
    for staging in (workspace() / "datasets").glob(f"staging-{pid}-*"):   # build_on_disk's own, named by its pid
        shutil.rmtree(staging, ignore_errors=True)
    if (_stored(folder) or {}).get("status") in ("queued", "running"):       # it never said how it ended
        write_state(folder, status="failed", ended=time.time(), error=dumps_text(
            reason or _("The build process ended without a result.")))


# --- what the pages show of a dataset on disk, without reading it ------------------------------------


def preview(dataset: DiskDataset, rows: int = 200) -> pa.Table:
    """The first ``rows`` rows of the dataset's first Parquet file (one batch of one file is read)."""
    for part in ("train", "valid", "test"):
        for file in dataset.files(part):
            for batch in pq.ParquetFile(file).iter_batches(rows):
                return pa.Table.from_batches([batch])
    return pa.table({})


def class_mix(dataset: DiskDataset) -> dict[str, dict[str, float]]:
    """``{"sampled": rows per class, "population": weighted rows per class}`` of a dataset on disk, as
    :func:`recexp.outofcore.sampled_class_mix` gives them for one in memory.

    Every row of the down-sampled class weighs ``1 / negative_rate``, every other row 1, so the weighted
    counts follow from the metadata's counts once that class is known: it is read from the label of the
    first row weighing more than 1 (two columns of the first batches, never all rows).
    """
    sampled = {c: float(n) for c, n in dataset.class_counts().items()}
    rate = dataset.sampling.get("negative_rate", 1.0)
    majority = _down_sampled_class(dataset) if rate < 1 else None
    population = {c: n / rate if k == majority else n for k, (c, n) in enumerate(sampled.items())}
    return {"sampled": sampled, "population": population}


def _down_sampled_class(dataset: DiskDataset) -> int | None:
    for part in ("train", "valid", "test"):
        for file in dataset.files(part):
            for batch in pq.ParquetFile(file).iter_batches(65_536, columns=[LABEL, SAMPLE_WEIGHT]):
                heavy = np.flatnonzero(batch.column(SAMPLE_WEIGHT).to_numpy() > 1)
                if len(heavy):
                    return int(batch.column(LABEL).to_numpy()[heavy[0]])
    return None                                   # no row of that class was kept: its weighted count is 0 anyway


def memory_text(size: int) -> str:
    """A memory size for a sentence: GB from 1 GB on, MB below."""
    return f"{format_decimal(size / 2**30)} GB" if size >= 2**30 else f"{format_decimal(size / 2**20, 1)} MB"


# --- the build process -----------------------------------------------------------------------------


def _stop(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def work(folder: Path) -> int:
    """Build the request in ``folder``, writing progress to its state; returns the exit code (0 finished,
    1 failed with a sentence, 130 stopped)."""
    request = BuildRequest(**json.loads((folder / _REQUEST).read_text()))
    write_state(folder, status="running", pid=os.getpid(), started=time.time(), phase="", rows=0, fraction=0.0)
    last = {"phase": "", "at": 0.0}

    def progress(phase: str, rows: int, fraction: float) -> None:
        now = time.monotonic()
        if phase == last["phase"] and now - last["at"] < WRITE_EVERY:
            return
        last.update(phase=phase, at=now)
        write_state(folder, phase=phase, rows=int(rows), fraction=float(fraction), peak_memory=peak_rss())

    try:
        dataset = request.run(progress)
    except KeyboardInterrupt:                       # build_on_disk removed its staging folder on the way out
        write_state(folder, status="cancelled", ended=time.time(), error=dumps_text(_("Cancelled by the user.")))
        return 130
    except Exception as error:       # noqa: BLE001 (build_on_disk's sentences: memory, disk, bad file; else its type)
        if (_stored(folder) or {}).get("status") == "cancelled":   # DuckDB turns the stop into "Query interrupted"
            return 130
        reason = sentence(error) if isinstance(error, (RecexpError, OSError)) else f"{type(error).__name__}: {error}"
        write_state(folder, status="failed", ended=time.time(), peak_memory=peak_rss(), error=dumps_text(reason))
        traceback.print_exc()                        # into the build's log
        return 1
    write_state(folder, status="finished", ended=time.time(), fraction=1.0, peak_memory=peak_rss(),
                 dataset=str(dataset.folder), rows=len(dataset))
    print(f"built {dataset.folder}: {len(dataset):,} rows", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m recexp.diskbuild FOLDER``: the build process :func:`recexp.ui.builds.launch_build` starts."""
    parser = argparse.ArgumentParser(prog="python -m recexp.diskbuild", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the build's folder (request.json in it)")
    parser.add_argument("--home", default=None, help="workspace folder (default: $RECEXP_HOME or ./workspace)")
    parser.add_argument("--language", default="en", help="language of the log's sentences")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for reading (the job runner's rule)")
    args = parser.parse_args(argv)
    if args.home:
        os.environ["RECEXP_HOME"] = args.home
    if args.threads:
        pa.set_cpu_count(args.threads)
    signal.signal(signal.SIGTERM, _stop)
    with use_language(args.language):
        return work(Path(args.folder))


__all__ = ["BuildRequest", "BuildState", "ENDED", "STATUSES", "build_folder", "build_state", "class_mix",
           "command_line", "main", "mark_cancelled", "memory_text", "prepare_build", "preview", "process_ended",
           "work", "write_state"]


if __name__ == "__main__":
    exit_process(main())
