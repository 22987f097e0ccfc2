"""Out-of-core dataset building: logs larger than memory become task datasets on disk, through DuckDB.

The in-memory path (:func:`recexp.tasks.build_dataset`) holds the log and every feature column as
numpy arrays: about 620 bytes per event for the behaviour task at its peak. This module builds the
same datasets (same columns, same values, same row order, same vocabularies chosen before the test
cut) with DuckDB, whose operators spill to disk, so memory is bounded by a setting
(``RECEXP_MEMORY_LIMIT``, :func:`memory_limit`), not by the log's size:

1. **reading**: the file is streamed in blocks with pyarrow (rows read are reported as progress);
   each block is mapped to ``user / item / category / behaviour / time`` as :func:`recexp.data.load`
   maps it (mapping and timestamp unit come from loading the file's first lines) and appended to a
   Parquet file with its row number, so events with the same timestamp keep the file's order;
2. **features**: SQL window functions compute what :class:`recexp.tasks.BehaviorTask` and
   :class:`recexp.tasks.PurchaseTask` compute (history strictly earlier in time; the purchase task's
   feature and label windows); vocabularies come from the events before the split's test cut;
3. **writing**: rows stream out of DuckDB in batches into partitioned Parquet,
   ``<workspace>/datasets/<key>/part=train|valid|test/*.parquet``, with ``schema.json``.

Only a temporal split is built this way (its parts are time ranges, so each row's part is known when
it is written); a stratified split needs the whole dataset in memory.

At build time the analyst may also sample (both paths, :class:`Sampling`): keep a share of users by
a stable hash of their id (whole histories), and keep a share of the rows of the majority class,
each kept one carrying ``sample_weight = 1 / rate`` so that weighted scores estimate the full
population's.

>>> from recexp.data.samples import SAMPLES
>>> from recexp.tasks import SplitSpec
>>> disk = build_on_disk(SAMPLES["taobao"].path, "behavior", SplitSpec(), sequence_length=2)  # doctest: +SKIP
>>> disk.class_counts()                                                                          # doctest: +SKIP
{'view': 71898, 'cart': 4307, 'fav': 2228, 'buy': 1673}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from recexp.data import load
from recexp.data.log import BEHAVIOR_SYNONYMS, BehaviorLog
from recexp.data.source import workspace
from recexp.dataset import IS_SYNTHETIC, ITEM, LABEL, SAMPLE_WEIGHT, TIME, USER, Dataset, FeatureSchema, Split, code_dtype
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _, format_decimal, format_integer
from recexp.memory import MEMORY_LIMIT_ENV, memory_limit
from recexp.tasks import (
    NS_PER_DAY, NS_PER_HOUR, BehaviorTask, PurchaseTask, SplitSpec, _behavior_classes, _cut_time,
    _sequence_columns, _slug, get_task,
)

#: Bytes the in-memory path holds per event at its peak (measured on synthetic Taobao logs: the behaviour
#: task 6.2 GB at 10M events, the purchase task 2.0 GB at 10M events), for choosing the path.
IN_MEMORY_BYTES_PER_EVENT = {"behavior": 620, "purchase": 200}
#: Bytes per event of a CSV log like Taobao's (user, item, category, behaviour, epoch seconds): about 38.
CSV_BYTES_PER_EVENT = 38
#: Share of the memory limit given to DuckDB; the rest holds the Python process and the batches in flight.
DUCKDB_SHARE = 0.6
#: Seconds between two readings of DuckDB's progress estimate during a build.
PROGRESS_EVERY = 0.5
BATCH_ROWS = 262_144
FILE_ROWS = 2_000_000
HEAD_BYTES = 4 << 20
_SALT = "recexp-sample"

#: ``progress(phase, rows, fraction)``: a phase name, rows read or written so far, share of the work done.
BuildProgress = Callable[[str, int, float], None]


def peak_rss() -> int:
    """The peak resident memory of this process so far, in bytes.

    On Linux it is ``VmHWM`` of ``/proc/self/status``, this program's own high-water mark: ``ru_maxrss`` also
    counts the memory of the process that started it (a build or worker started by a 2 GB dashboard or test
    process read 2.7 GB before it had done anything). Elsewhere, ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def progress_message(phase: str, rows: int, fraction: float) -> str:
    """A build's progress as one line: phase, rows, share done and this process's peak memory."""
    return _("{phase}: {rows} rows, {percent}% done, peak memory {memory} GB").format(
        phase=phase, rows=format_integer(rows), percent=int(100 * fraction),
        memory=format_decimal(peak_rss() / 2**30, 1))


def throttled(show: Callable[[str], None], seconds: float = 1.0) -> BuildProgress:
    """A build progress callback that hands :func:`progress_message` to ``show`` at most every ``seconds``
    within a phase (and at the start and end of each)."""
    last = {"time": -float("inf"), "phase": None}

    def report(phase: str, rows: int, fraction: float) -> None:
        now = time.monotonic()
        if now - last["time"] < seconds and fraction < 1 and phase == last["phase"]:
            return
        last.update(time=now, phase=phase)
        show(progress_message(phase, rows, fraction))

    return report


# --- sampling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """Sampling at build time: ``users`` is the share of users kept (whole histories, by a stable hash of the
    user id); ``negative_rate`` the share of the majority class's rows kept (``view`` for the behaviour task,
    ``no_buy`` for the purchase task), each kept one weighted ``1 / negative_rate``."""

    users: float = 1.0
    negative_rate: float = 1.0

    def validate(self) -> None:
        for name in ("users", "negative_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise InvalidParameterError(_(
                    "Sampling '{name}' must be a share in (0, 1], but got {value!r}. Give e.g. 0.1 to keep "
                    "10%.").format(name=name, value=value))

    @property
    def active(self) -> bool:
        return self.users < 1 or self.negative_rate < 1

    def to_dict(self) -> dict[str, float]:
        return {"users": self.users, "negative_rate": self.negative_rate}


def _hash_fraction(keys: list[str], salt: str) -> np.ndarray:
    """A stable number in [0, 1) per key: the first 32 bits of md5(salt + key) (DuckDB computes the same)."""
    return np.array([int(hashlib.md5((salt + key).encode()).hexdigest()[:8], 16) for key in keys],
                    dtype=np.float64) / 2**32


def _sql_hash_fraction(expression: str, salt: str) -> str:
    return f"(('0x' || substr(md5('{salt}' || CAST({expression} AS VARCHAR)), 1, 8))::BIGINT / 4294967296.0)"


def sample_log(log: BehaviorLog, users: float) -> BehaviorLog:
    """``log`` with the whole histories of a stable ``users`` share of its users (the in-memory path's user
    sampling; :func:`build_on_disk` keeps the same users)."""
    if users >= 1:
        return log
    ids = log.frame["user_id"]
    categories = ids.cat.categories if isinstance(ids.dtype, pd.CategoricalDtype) else pd.Index(pd.unique(ids))
    kept = categories[_hash_fraction([str(v) for v in categories], _SALT + "users") < users]
    frame = log.frame[ids.isin(kept).to_numpy()].reset_index(drop=True)
    if len(frame) == 0:
        raise InvalidParameterError(_(
            "Keeping {share} of the users leaves no events. Keep a larger share of users.").format(share=users))
    fingerprint = hashlib.sha256(f"{log.fingerprint}|users={users!r}".encode()).hexdigest()[:16]
    return BehaviorLog(frame=frame, mapping=log.mapping, report=log.report, source=log.source,
                       fingerprint=fingerprint)


def down_sample(dataset: Dataset, split: Split, negative_rate: float) -> tuple[Dataset, Split]:
    """``dataset`` with a stable ``negative_rate`` share of its majority class's rows kept, weighted
    ``1 / negative_rate`` in ``sample_weight`` (the other rows weigh 1), and ``split`` on the rows kept (each
    part keeps its rows: the split was made on all of them, as :func:`build_on_disk` makes it). The fingerprint
    stays the source's: the rate is part of the run spec."""
    if negative_rate >= 1:
        return dataset, split
    labels = dataset.y
    majority = int(np.argmax(np.bincount(labels, minlength=dataset.schema.n_classes)))
    fraction = _hash_fraction(_row_keys(dataset), _SALT + "rows")
    keep = (labels != majority) | (fraction < negative_rate)
    frame = dataset.frame[keep].reset_index(drop=True)
    frame[SAMPLE_WEIGHT] = np.where(frame[LABEL].to_numpy() == majority, 1.0 / negative_rate, 1.0)
    new_position = np.cumsum(keep) - 1
    kept = Split(*(new_position[part[keep[part]]] for part in (split.train, split.valid, split.test)))
    return Dataset(frame=frame, schema=dataset.schema, task=dataset.task, fingerprint=dataset.fingerprint), kept


def _row_keys(dataset: Dataset) -> list[str]:
    """What identifies a row for down-sampling: user, item and time (both paths hash the same text)."""
    users = dataset.frame[USER].astype(str).to_numpy()
    items = dataset.frame[ITEM].astype(str).to_numpy()
    times = dataset.frame[TIME].dt.as_unit("ns").array.asi8
    return [f"{u}|{i}|{t}" for u, i, t in zip(users, items, times)]


def sampled_class_mix(dataset: Dataset) -> dict[str, dict[str, float]]:
    """``{"sampled": rows per class, "population": weighted rows per class}`` (equal without down-sampling)."""
    sampled = dataset.class_counts()
    if SAMPLE_WEIGHT not in dataset.frame:
        return {"sampled": sampled, "population": dict(sampled)}
    weights = np.bincount(dataset.y, weights=dataset.frame[SAMPLE_WEIGHT].to_numpy(np.float64),
                          minlength=dataset.schema.n_classes)
    return {"sampled": sampled, "population": {c: float(w) for c, w in zip(dataset.schema.classes, weights)}}


# --- choosing the path ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathChoice:
    """Which path builds a dataset, and why (:func:`choose_path`)."""

    on_disk: bool
    events: int              # events estimated from the file's size
    in_memory_bytes: int     # what the in-memory path would hold at its peak
    limit: int               # the memory limit in force
    reason: str


def choose_path(path: str | Path, task: str) -> PathChoice:
    """Whether ``task`` on the log at ``path`` is built on disk: when the in-memory path's estimated peak
    (events estimated from the file size, times :data:`IN_MEMORY_BYTES_PER_EVENT`) passes the memory limit.
    Small logs keep the in-memory path, which is faster."""
    path = Path(path)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else path.stat().st_size
    per_byte = 4.0 if path.suffix.lower() in (".parquet", ".gz", ".zip") else 1.0     # compressed: ~4x more events
    events = int(size * per_byte / CSV_BYTES_PER_EVENT)
    need = events * IN_MEMORY_BYTES_PER_EVENT.get(task, 620)
    limit = memory_limit()
    on_disk = task in IN_MEMORY_BYTES_PER_EVENT and need > limit
    reason = (_("about {events} events: in memory the {task} task would need about {need} GB, over the {limit} GB "
                "limit, so it is built on disk") if on_disk else
              _("about {events} events: in memory the {task} task needs about {need} GB, within the {limit} GB "
                "limit")).format(events=format_integer(events), task=task, need=f"{need / 2**30:.1f}",
                                 limit=f"{limit / 2**30:.1f}")
    return PathChoice(on_disk=on_disk, events=events, in_memory_bytes=need, limit=limit, reason=reason)


# --- the dataset on disk --------------------------------------------------------------------------


PARTS = ("train", "valid", "test")


@dataclass
class DiskDataset:
    """A task dataset written as partitioned Parquet: ``folder/part=<train|valid|test>/*.parquet``.

    ``rows`` and ``counts`` hold each part's rows and rows per class; the frame columns are a
    :class:`~recexp.dataset.Dataset`'s (plus ``sample_weight`` when the majority class was down-sampled).
    """

    folder: Path
    schema: FeatureSchema
    task: str
    fingerprint: str
    rows: dict[str, int]
    counts: dict[str, dict[str, int]]
    sampling: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def __len__(self) -> int:
        return sum(self.rows.values())

    def files(self, part: str) -> list[Path]:
        """The Parquet files of ``part`` in row order."""
        return sorted((self.folder / f"part={part}").glob("*.parquet"))

    def class_counts(self, part: str | None = None) -> dict[str, int]:
        """Rows per class of one part, or of the whole dataset."""
        parts = PARTS if part is None else (part,)
        return {c: sum(self.counts[p][c] for p in parts) for c in self.schema.classes}

    def read(self, part: str | None = None) -> pd.DataFrame:
        """One part (or all, in row order) as the frame :class:`~recexp.dataset.Dataset` holds."""
        parts = PARTS if part is None else (part,)
        files = [f for p in parts for f in self.files(p)]
        table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
        return _frame(table, self.schema)

    def to_dataset(self) -> Dataset:
        """The whole dataset in memory (small datasets and tests)."""
        return Dataset(frame=self.read(), schema=self.schema, task=self.task, fingerprint=self.fingerprint)

    def split(self) -> Split:
        """Row positions of the parts in :meth:`to_dataset`'s frame (the parts are consecutive time ranges)."""
        train, valid = self.rows["train"], self.rows["valid"]
        return Split(train=np.arange(train), valid=np.arange(train, train + valid),
                     test=np.arange(train + valid, len(self)))

    def write_part(self, part: str, out: Path) -> None:
        """Copy one part into the single Parquet file ``out``, batch by batch, with the columns a strategy's
        training rows have: ``is_synthetic`` (False) and ``sample_weight`` (1.0) added where missing, in the
        order :func:`recexp.strategies.base.prepare_train` adds them."""
        files = self.files(part)
        tmp = out.with_name(out.name + ".part")
        writer = None
        try:
            for file in files:
                for batch in pq.ParquetFile(file).iter_batches(BATCH_ROWS):
                    batch = _with_flags(batch)
                    writer = writer or pq.ParquetWriter(tmp, batch.schema)
                    writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()
        tmp.replace(out)


def _with_flags(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with ``is_synthetic`` (False) and ``sample_weight`` (1.0) appended where it lacks them."""
    n = batch.num_rows
    for name, column in ((IS_SYNTHETIC, pa.array(np.zeros(n, dtype=bool))),
                         (SAMPLE_WEIGHT, pa.array(np.ones(n, dtype=np.float64)))):
        if name not in batch.schema.names:
            batch = batch.append_column(name, column)
    return batch


def _frame(table: pa.Table, schema: FeatureSchema) -> pd.DataFrame:
    frame = table.to_pandas()
    for column in (USER, ITEM):
        frame[column] = frame[column].astype(pd.CategoricalDtype(pd.Index(pd.unique(frame[column])).sort_values()))
    frame[TIME] = frame[TIME].dt.as_unit("ns")
    return frame


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    kind: str                          # "csv" or "parquet"
    mapping: dict[str, str]            # role -> source column
    names: list[str]                   # column names of a delimited file
    header: bool
    delimiter: str
    time_unit: str | None              # epoch unit, None: date-time text


def _layout(path: Path, header: bool | None, mapping: dict[str, str] | None) -> _Layout:
    """How to read ``path``: its first lines loaded by :func:`recexp.data.load` give the column mapping and
    the timestamp unit, as the in-memory path reads them."""
    if path.suffix.lower() == ".parquet":
        head = pq.ParquetFile(path).read_row_group(0).slice(0, 50_000)
        sample = load((path.name, _parquet_bytes(head)), mapping=mapping)
        return _Layout("parquet", sample.mapping, head.column_names, True, ",", _time_unit(sample))
    with open(path, "rb") as file:
        data = file.read(HEAD_BYTES)
    complete = len(data) < HEAD_BYTES
    if not complete:
        data = data[:data.rfind(b"\n") + 1]
    sample = load((path.name, data), header=header, mapping=mapping)
    first = data.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n", 1)[0]
    has_header = "no header" not in sample.report.read_as
    delimiter = max((",", "\t", ";", "|"), key=first.count)
    names = [n.strip().strip('"') for n in first.split(delimiter)] if has_header else \
        [f"c{i}" for i in range(first.count(delimiter) + 1)]
    return _Layout("csv", sample.mapping, names, has_header, delimiter, _time_unit(sample))


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _time_unit(sample: BehaviorLog) -> str | None:
    read_as = sample.report.read_as
    for unit in ("ms", "us", "ns", "s"):
        if read_as.endswith(f"epoch {unit}"):
            return unit
    return None


def _batches(path: Path, layout: _Layout):
    if layout.kind == "parquet":
        yield from pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=list(dict.fromkeys(layout.mapping.values())))
        return
    reader = pa_csv.open_csv(
        path, read_options=pa_csv.ReadOptions(column_names=None if layout.header else layout.names,
                                              block_size=16 << 20),
        parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=lambda row: "skip"),
        convert_options=pa_csv.ConvertOptions(include_columns=list(dict.fromkeys(layout.mapping.values())),
                                              column_types={layout.mapping["behavior"]: pa.string()}))
    yield from reader


_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _normalised(batch: pa.RecordBatch, layout: _Layout, first_row: int) -> pa.Table:
    """One block mapped to ``rn, u, i, c, b, t``; rows missing a role are dropped (as :func:`load` drops them)."""
    columns = {}
    for role, name in (("u", "user"), ("i", "item"), ("c", "category")):
        if name in layout.mapping:
            values = batch.column(layout.mapping[name])
            if pa.types.is_floating(values.type):
                values = values.cast(pa.int64(), safe=False)
            elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                values = pc.utf8_trim_whitespace(values)
            columns[role] = values
    raw = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column(layout.mapping["behavior"]).cast(pa.string())))
    synonyms = pa.array(list(BEHAVIOR_SYNONYMS))
    canonical = pa.array(list(BEHAVIOR_SYNONYMS.values()))
    index = pc.index_in(raw, value_set=synonyms)
    columns["b"] = pc.if_else(pc.is_null(index), pc.utf8_trim_whitespace(
        batch.column(layout.mapping["behavior"]).cast(pa.string())), pc.take(canonical, index))
    stamp = batch.column(layout.mapping["timestamp"])
    if layout.time_unit is not None:
        if pa.types.is_floating(stamp.type):
            stamp = pc.multiply(stamp, float(_NS[layout.time_unit])).cast(pa.int64(), safe=False)
        else:
            stamp = pc.multiply(stamp.cast(pa.int64()), _NS[layout.time_unit])
    else:
        text = stamp if pa.types.is_timestamp(stamp.type) else pc.utf8_trim_whitespace(stamp.cast(pa.string()))
        stamp = pc.cast(text, pa.timestamp("ns", tz="UTC"), safe=False).cast(pa.int64())
    columns["t"] = stamp
    columns["rn"] = pa.array(np.arange(first_row, first_row + batch.num_rows, dtype=np.int64))
    table = pa.table(columns)
    keep = pc.and_(pc.and_(pc.is_valid(table["u"]), pc.is_valid(table["i"])),
                   pc.and_(pc.is_valid(table["t"]), pc.not_equal(pc.fill_null(table["b"], ""), "")))
    if "c" not in table.column_names:
        table = table.append_column("c", pa.nulls(table.num_rows, pa.int64()))
    return table.filter(keep).select(["rn", "u", "i", "c", "b", "t"])


def _file_digest(path: Path):
    """The running 16-byte BLAKE2b hash of the file's content (a build's key starts from it)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=16))


def _ingest(path: Path, layout: _Layout, out: Path, progress: BuildProgress) -> tuple[int, str]:
    """Stream ``path`` into the Parquet file ``out``; returns the rows kept and a content hash of the file."""
    digest = _file_digest(path)
    digest.update(json.dumps(layout.mapping, sort_keys=True).encode())
    total = max(path.stat().st_size, 1)
    writer = None
    read = kept = 0
    try:
        for batch in _batches(path, layout):
            table = _normalised(batch, layout, read)
            read += batch.num_rows
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table.cast(writer.schema))
            kept += table.num_rows
            progress("reading", read, min(read * CSV_BYTES_PER_EVENT / total, 1.0))
    except (pa.ArrowInvalid, ValueError) as error:
        raise InvalidDataError(_(
            "Reading '{name}' for an out-of-core build failed after {rows} rows: {error}. Check that the file has "
            "the layout of its first lines throughout.").format(name=path.name, rows=format_integer(read),
                                                                 error=str(error).splitlines()[0])) from None
    finally:
        if writer is not None:
            writer.close()
    if kept == 0:
        raise InvalidDataError(_("No usable rows are left in '{name}'. Check the column mapping.").format(
            name=path.name))
    return kept, digest.hexdigest()


# --- building -------------------------------------------------------------------------------------


def _connect(folder: Path, limit: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(folder / "build.duckdb"))
    con.sql(f"SET memory_limit = '{max(int(limit * DUCKDB_SHARE) >> 20, 16)}MB'")
    con.sql(f"SET temp_directory = '{folder / 'spill'}'")
    con.sql("SET preserve_insertion_order = false")
    con.sql(f"SET threads = {max(1, min(os.cpu_count() or 1, 4))}")
    return con


class _Progress:
    """A build's progress callback fed from two sides, its calls never overlapping: the build's own steps
    (reading: rows read; writing: rows written) and, while :meth:`watching`, DuckDB's estimate of the statement it
    runs now, read every :data:`PROGRESS_EVERY` seconds from a thread. The features are computed in statements that
    report nothing until they end, and the writing phase's first batch comes only once DuckDB has computed every
    window (most of a behaviour build); DuckDB's estimate is what moves meanwhile. In the features phase the share
    is that of the statement running now; in the writing phase it never goes back (the larger of DuckDB's estimate
    and the rows written)."""

    def __init__(self, progress: BuildProgress | None):
        self.progress = progress
        self.phase, self.rows, self.fraction = "", 0, 0.0
        self._lock = threading.Lock()

    def __call__(self, phase: str, rows: int, fraction: float) -> None:
        with self._lock:
            self._report(phase, rows, fraction)

    def _estimated(self, share: float) -> None:
        """DuckDB's estimate ``share`` of the running statement, in the phase and at the rows reported last."""
        with self._lock:
            if self.phase in ("features", "writing"):
                self._report(self.phase, self.rows, share)

    def _report(self, phase: str, rows: int, fraction: float) -> None:       # with the lock held
        if phase == self.phase == "writing":
            fraction = max(fraction, self.fraction)
        self.phase, self.rows, self.fraction = phase, rows, fraction
        if self.progress is not None:
            self.progress(phase, rows, fraction)

    @contextmanager
    def watching(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Report DuckDB's estimate of ``con``'s running statement until the block ends (nothing without a
        callback: DuckDB then keeps no estimate)."""
        if self.progress is None:
            yield
            return
        con.sql("SET enable_progress_bar = true")       # DuckDB's own estimate, never printed
        con.sql("SET enable_progress_bar_print = false")
        done = threading.Event()

        def watch() -> None:
            while not done.wait(PROGRESS_EVERY):
                try:
                    estimate = con.query_progress()
                except duckdb.Error:                      # the build is failing: it reports that itself
                    return
                if estimate >= 0:                         # < 0: between statements
                    self._estimated(min(estimate / 100, 1.0))

        thread = threading.Thread(target=watch, name="recexp-build-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def build_on_disk(path: str | Path, task: str, split: SplitSpec | None = None, *,
                  sampling: Sampling | None = None, header: bool | None = None,
                  mapping: dict[str, str] | None = None, folder: str | Path | None = None,
                  progress: BuildProgress | None = None, **params: Any) -> DiskDataset:
    """Build ``task``'s dataset from the log file at ``path`` out of core, split by time, as Parquet.

    Parameters
    ----------
    path : str or Path
        A CSV/TSV file (a header row or not, as :func:`recexp.data.load` detects) or a Parquet file.
    task : {"behavior", "purchase"}
    split : SplitSpec, optional
        Must be temporal; its test and validation cuts decide each row's part. Without it (statistics that
        train nothing), every row goes to ``train`` and vocabularies come from the whole log.
    sampling : Sampling, optional
        Users kept and the majority class's rate (see :class:`Sampling`).
    folder : str or Path, optional
        Where the dataset goes; default ``<workspace>/datasets/<key>``, the key a hash of the file's
        content, the task, its parameters, the split and the sampling (an existing complete build is reused;
        while the file keeps its path, size and modification time, without reading it again).
    progress : callable, optional
        ``progress(phase, rows, fraction)``.
    **params
        The task's parameters.

    Returns
    -------
    DiskDataset

    Raises
    ------
    InvalidParameterError
        Unknown task or parameter, a stratified split, or a bad sampling share.
    InvalidDataError
        The data cannot make this task, or the build needs more memory or disk than there is (a sentence
        naming ``RECEXP_MEMORY_LIMIT`` and the sampling options).
    """
    started = time.perf_counter()
    if split is not None:
        split.validate()
    sampling = sampling or Sampling()
    sampling.validate()
    if split is not None and split.method != "temporal":
        raise InvalidParameterError(_(
            "An out-of-core dataset is split by time only (method='temporal'); a stratified split needs every row in "
            "memory. Use method='temporal', or sample users (--sample-users) so the log fits in memory."))
    if task not in (BehaviorTask.name, PurchaseTask.name):
        raise InvalidParameterError(_(
            "Only the behavior and purchase tasks can be built out of core, not {task!r}.").format(task=task))
    builder = get_task(task)
    unknown = sorted(set(params) - set(builder.param_names()))
    if unknown:
        raise InvalidParameterError(_("The '{task}' task has no parameter {names}; its parameters are: {known}.").format(
            task=task, names=", ".join(map(repr, unknown)), known=", ".join(builder.param_names())))
    instance = builder(**params)
    instance.validate_params()
    path = Path(path)
    limit = memory_limit()
    layout = _layout(path, header, mapping)
    root = Path(folder) if folder is not None else workspace() / "datasets"
    pointer = None if folder is not None else _pointer(root, path, layout, instance, split, sampling)
    if pointer is not None and pointer.exists() and (root / pointer.read_text() / "schema.json").exists():
        return _open(root / pointer.read_text())          # the same file unchanged: not even read again
    own = f"staging-{os.getpid()}-{time.time_ns()}"       # builds running side by side never share one
    staging = root.parent / f"{root.name}.{own}" if folder is not None else root / own
    staging.mkdir(parents=True)
    try:
        built = _build(path, layout, instance, split, sampling, root, staging, folder is not None, limit, progress,
                       started)
        if pointer is not None:
            pointer.parent.mkdir(exist_ok=True)
            pointer.write_text(built.folder.name)
        return built
    except (duckdb.OutOfMemoryException, MemoryError):
        raise InvalidDataError(_(
            "Building the {task} dataset of '{name}' needs more memory than the {limit} GB limit ({variable}). Raise "
            "{variable}, or sample: keep a share of users (--sample-users) or of the majority class "
            "(--negative-rate).").format(task=task, name=path.name, limit=f"{limit / 2**30:.1f}",
                                         variable=MEMORY_LIMIT_ENV)) from None
    except (duckdb.IOException, OSError) as error:
        free = shutil.disk_usage(staging.parent if staging.parent.exists() else root).free
        raise InvalidDataError(_(
            "Building the {task} dataset of '{name}' could not write to the workspace ({free} GB free): {error}. "
            "Free disk space or point RECEXP_HOME at a larger disk.").format(
                task=task, name=path.name, free=f"{free / 2**30:.1f}", error=str(error).splitlines()[0])) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pointer(root: Path, path: Path, layout: _Layout, task: BehaviorTask | PurchaseTask, split: SplitSpec | None,
             sampling: Sampling) -> Path:
    """Where the workspace notes which build a file makes while the file is unchanged (path, size and modification
    time), so every run of a grid after the first opens that build without reading the file again."""
    stat = path.stat()
    quick = hashlib.sha256(json.dumps({"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                                       "mapping": layout.mapping, "task": task.name, "params": task.get_params(),
                                       "split": vars(split) if split else None, "sampling": sampling.to_dict()},
                                      sort_keys=True, default=str).encode()).hexdigest()[:16]
    return root / "by-file" / quick


def _build(path: Path, layout: _Layout, task: BehaviorTask | PurchaseTask, split: SplitSpec, sampling: Sampling,
           root: Path, staging: Path, fixed_folder: bool, limit: int, progress: BuildProgress | None,
           started: float) -> DiskDataset:
    events = staging / "events.parquet"
    progress = _Progress(progress)
    kept, content = _ingest(path, layout, events, progress)
    key = hashlib.sha256(json.dumps({"content": content, "task": task.name, "params": task.get_params(),
                                     "split": vars(split) if split else None, "sampling": sampling.to_dict()},
                                    sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = root if fixed_folder else root / key
    if (folder / "schema.json").exists():
        return _open(folder)
    con = _connect(staging, limit)
    try:
        with progress.watching(con):
            progress("features", kept, 0.0)
            classes = _load_events(con, events, sampling)
            if task.name == BehaviorTask.name:
                schema, cuts, majority, total = _behavior_sql(con, task, classes, split)
            else:
                schema, cuts, majority, total = _purchase_sql(con, task, classes, split)
            progress("writing", 0, 0.0)
            rows, counts = _write(con, schema, cuts, staging / "dataset", sampling, majority, total, progress)
    finally:
        con.close()
    fingerprint = content if not sampling.active else hashlib.sha256(
        f"{content}|{json.dumps(sampling.to_dict(), sort_keys=True)}".encode()).hexdigest()[:32]
    meta = {"task": task.name, "fingerprint": fingerprint, "rows": rows, "counts": counts,
            "sampling": sampling.to_dict(), "seconds": time.perf_counter() - started,
            "schema": {"numeric": schema.numeric, "categorical": schema.categorical, "classes": schema.classes,
                       "sequences": schema.sequences, "cardinality": schema.cardinality,
                       "vocabulary": schema.vocabulary}}
    (staging / "dataset" / "schema.json").write_text(json.dumps(meta))
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    (staging / "dataset").rename(folder)
    return _open(folder)


def open_on_disk(folder: str | Path) -> DiskDataset:
    """The dataset :func:`build_on_disk` wrote in ``folder``, from its metadata (no row is read)."""
    return _open(Path(folder))


def _open(folder: Path) -> DiskDataset:
    meta = json.loads((folder / "schema.json").read_text())
    s = meta["schema"]
    schema = FeatureSchema(numeric=tuple(s["numeric"]), categorical=tuple(s["categorical"]),
                           classes=tuple(s["classes"]), sequences={k: tuple(v) for k, v in s["sequences"].items()},
                           cardinality=s["cardinality"], vocabulary={k: tuple(v) for k, v in s["vocabulary"].items()})
    return DiskDataset(folder=folder, schema=schema, task=meta["task"], fingerprint=meta["fingerprint"],
                       rows=meta["rows"], counts=meta["counts"], sampling=meta["sampling"], seconds=meta["seconds"])


def _load_events(con: duckdb.DuckDBPyConnection, events: Path, sampling: Sampling) -> tuple[str, ...]:
    """Table ``ev``: the events in time order (``pos``), behaviour codes ``b`` into the returned classes."""
    keep = "" if sampling.users >= 1 else \
        f"WHERE {_sql_hash_fraction('u', _SALT + 'users')} < {float(sampling.users)!r}"
    present = [r[0] for r in con.sql(f"SELECT DISTINCT b FROM read_parquet('{events}') {keep}").fetchall()]
    if not present:
        raise InvalidParameterError(_(
            "Keeping {share} of the users leaves no events. Keep a larger share of users.").format(share=sampling.users))
    classes = _behavior_classes(set(present))
    codes = " ".join(f"WHEN {_quote(name)} THEN {k}" for k, name in enumerate(classes))
    con.sql(f"""CREATE TABLE ev AS SELECT (row_number() OVER (ORDER BY t, rn) - 1)::BIGINT AS pos, u, i, c,
                    (CASE b {codes} END)::TINYINT AS b, t FROM read_parquet('{events}') {keep} ORDER BY pos""")
    return classes


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


#: Classes whose counts share one 128-bit window sum (32 bits each).
_PACKED = 4
#: A time after every event (ns): the cuts of a build without a split.
_NEVER = 2**62


def _time_cuts(con: duckdb.DuckDBPyConnection, query: str, split: SplitSpec | None) -> tuple[int, int]:
    """(validation start, test start) of a temporal split of rows whose times ``query`` counts (``t, n``)."""
    if split is None:
        return _NEVER, _NEVER
    counted = con.sql(f"SELECT t, n FROM ({query}) ORDER BY t").fetchnumpy()
    times, counts = counted["t"].astype(np.int64), counted["n"].astype(np.int64)
    test_start = _cut_time(times, counts, split.test_size, "test")
    before = times < test_start
    valid_start = test_start if split.valid_size == 0 else _cut_time(times[before], counts[before], split.valid_size,
                                                                     "validation")
    return valid_start, test_start


def _vocabulary_sql(con: duckdb.DuckDBPyConnection, name: str, column: str, where: str, max_vocab: int,
                    ids: str) -> tuple[int, tuple[str, ...]]:
    """Table ``name`` (``id, code``): the ``max_vocab`` most frequent values of ``column`` among the events
    ``where`` selects (ties: earlier first appearance), numbered by first appearance, as
    :func:`recexp.tasks._vocabulary` numbers them."""
    con.sql(f"""CREATE OR REPLACE TABLE {name} AS
        SELECT id, row_number() OVER (ORDER BY first_pos)::INTEGER AS code FROM (
            SELECT {column} AS id, count(*) AS n, min(pos) AS first_pos FROM {ids}
            WHERE {column} IS NOT NULL AND {where} GROUP BY {column} ORDER BY n DESC, first_pos LIMIT {max_vocab})""")
    names = tuple(str(r[0]) for r in con.sql(f"SELECT id FROM {name} ORDER BY code").fetchall())
    return len(names), names


def _schema(classes, label_classes, numeric, categorical, sequences, n_item, items, n_cat, cats) -> FeatureSchema:
    cardinality = {"item": n_item, "category": n_cat, "hist_item": n_item, "hist_category": n_cat,
                   "hist_behavior": len(classes)}
    vocabulary = {"item": items, "category": cats, "hist_item": items, "hist_category": cats,
                  "hist_behavior": tuple(classes)}
    used = set(categorical) | set(sequences)
    return FeatureSchema(numeric=tuple(numeric), categorical=tuple(categorical), classes=tuple(label_classes),
                         sequences=sequences, cardinality={k: v for k, v in cardinality.items() if k in used},
                         vocabulary={k: v for k, v in vocabulary.items() if k in used})


def _sql_type(dtype: np.dtype) -> str:
    return {1: "TINYINT", 2: "SMALLINT", 4: "INTEGER", 8: "BIGINT"}[np.dtype(dtype).itemsize]


def _behavior_sql(con, task: BehaviorTask, classes: tuple[str, ...], split: SplitSpec | None):
    """View ``rows`` of the behaviour task's features (as :meth:`BehaviorTask._build` computes them)."""
    task._check_classes(classes)
    has_category = con.sql("SELECT count(*) FROM ev WHERE c IS NOT NULL").fetchall()[0][0] > 0
    valid_start, test_start = _time_cuts(con, "SELECT t, count(*) AS n FROM ev GROUP BY t", split)
    n_item, items = _vocabulary_sql(con, "vocab_item", "i", f"t < {test_start}", task.max_vocab, "ev")
    n_cat, cats = _vocabulary_sql(con, "vocab_cat", "c", f"t < {test_start}", task.max_vocab, "ev") \
        if has_category else (0, ())
    code = _sql_type(code_dtype(task.max_vocab))
    names = [_slug(c) for c in classes]
    scopes = {"user": "u", "item": "i"}
    if has_category:
        scopes.update(category="c", user_category="u, c")
    scopes["user_item"] = "u, i"
    earlier = "ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    windows = ", ".join(f"w_{scope} AS (PARTITION BY {key} {earlier})" for scope, key in scopes.items())
    # One window sum per scope: each event adds 1 << (32 * class) to a 128-bit integer (four classes a number),
    # which is unpacked into the per-class counts outside; a sum per class costs four times as much.
    groups = range(math.ceil(len(classes) / _PACKED))
    inner = []
    for scope in scopes:
        for g in groups:
            only = "" if len(groups) == 1 else f" FILTER (WHERE b // {_PACKED} = {g})"
            inner.append(f"sum(CAST(1 AS HUGEINT) << (32 * (b - {g * _PACKED}))){only} OVER w_{scope} AS p_{scope}_{g}")
    inner += ["max(t) OVER w_user AS user_prev", "max(t) OVER w_user_item AS user_item_prev"]
    numeric, select = [], []

    def unpacked(scope: str, k: int) -> str:
        return f"coalesce((p_{scope}_{k // _PACKED} >> {32 * (k % _PACKED)}) & 4294967295, 0)"

    for scope in scopes:
        for k, name in enumerate(names):
            column = f"{scope}_{name}_count"
            value = unpacked(scope, k)
            if scope in ("category", "user_category"):
                value = f"CASE WHEN c IS NULL THEN 0 ELSE {value} END"
            select.append(f"({value})::FLOAT AS {column}")
            numeric.append(column)
    item_total = " + ".join(unpacked("item", k) for k in range(len(classes)))
    since_start = "(t - (SELECT min(t) FROM ev))"
    select += [f"((t - coalesce(user_prev, t - {since_start}))::DOUBLE / {NS_PER_HOUR})::FLOAT "
               "AS user_hours_since_prev",
               f"((t - coalesce(user_item_prev, t - {since_start}))::DOUBLE / {NS_PER_HOUR})::FLOAT "
               "AS user_item_hours_since_prev",
               f"(({item_total})::DOUBLE / greatest(earlier, 1))::FLOAT AS item_popularity",
               f"(((t - (t // {NS_PER_DAY}) * {NS_PER_DAY}) // {NS_PER_HOUR}))::FLOAT AS hour",
               f"(((t // {NS_PER_DAY}) + 3) % 7)::FLOAT AS weekday"]
    numeric += ["user_hours_since_prev", "user_item_hours_since_prev", "item_popularity", "hour", "weekday"]
    categorical = ["item", "category"] if has_category else ["item"]
    length = task.sequence_length
    sequences = _sequence_columns(length, has_category)
    # The sequences: one lag per step of a 128-bit number holding item code, category code and behaviour + 1.
    shifts = {"hist_item": (0, code), "hist_category": (32, code),
              "hist_behavior": (64, _sql_type(code_dtype(len(classes))))}
    for j in range(length):
        inner.append(f"lag(packed, (upos - block_start + {j + 1})::BIGINT, 0) OVER w_seq AS s{j}")
    select += [f"((s{j} >> {shifts[group][0]}) & 4294967295)::{shifts[group][1]} AS {column}"
               for group, columns in sequences.items() for j, column in enumerate(columns)]
    category_code = f"coalesce(vc.code, 0)::{code}" if has_category else "0"
    con.sql(f"""CREATE OR REPLACE TABLE coded AS
        SELECT ev.*, coalesce(vi.code, 0)::{code} AS item_code, {category_code} AS cat_code
        FROM ev LEFT JOIN vocab_item vi ON ev.i = vi.id
        {'LEFT JOIN vocab_cat vc ON ev.c = vc.id' if has_category else ''}""")
    con.sql("""CREATE OR REPLACE TABLE earlier_events AS
        SELECT t, (sum(count(*)) OVER (ORDER BY t) - count(*))::BIGINT AS earlier FROM ev GROUP BY t""")
    con.sql(f"""CREATE OR REPLACE VIEW rows AS
        SELECT pos AS ord, {', '.join(select)}, item_code AS item {', cat_code AS category' if has_category else ''},
               b::BIGINT AS label, u AS {USER}, i AS {ITEM}, t AS {TIME}
        FROM (SELECT *, {', '.join(inner)}
              FROM (SELECT *, min(upos) OVER (PARTITION BY u, t) AS block_start,
                           item_code::HUGEINT + (cat_code::HUGEINT << 32) + ((b + 1)::HUGEINT << 64) AS packed FROM
                      (SELECT coded.*, e.earlier, row_number() OVER (PARTITION BY u ORDER BY pos) AS upos
                       FROM coded JOIN earlier_events e USING (t)))
              WINDOW {windows}, w_seq AS (PARTITION BY u ORDER BY pos))""")
    schema = _schema(classes, classes, numeric, categorical, sequences, n_item, items, n_cat, cats)
    majority = con.sql("SELECT b FROM ev GROUP BY b ORDER BY count(*) DESC, b LIMIT 1").fetchall()[0][0]
    return schema, (valid_start, test_start), int(majority), con.sql("SELECT count(*) FROM ev").fetchall()[0][0]


def _purchase_sql(con, task: PurchaseTask, classes: tuple[str, ...], split: SplitSpec | None):
    """View ``rows`` of the purchase task's features (as :meth:`PurchaseTask._build` computes them)."""
    if "buy" not in classes:
        raise InvalidDataError(_(
            "The log has no 'buy' events (its behaviours: {classes}); the purchase task needs purchases to label. Map "
            "the behaviour role to the right column, or use the 'behavior' task.").format(classes=", ".join(classes)))
    buy = classes.index("buy")
    t_first, t_last = con.sql("SELECT min(t), max(t) FROM ev").fetchall()[0]
    anchors, window, history = task._anchors(np.array([t_first, t_last], dtype=np.int64))
    starts = [t_first if history is None else int(a) - history for a in anchors]
    values = ", ".join(f"({k}, {int(a)}, {int(s)}, {int(a) + window})" for k, (a, s) in enumerate(zip(anchors, starts)))
    con.sql(f"CREATE OR REPLACE TABLE anchors AS SELECT * FROM (VALUES {values}) x(k, anchor, s, h)")
    first, last = min(starts), int(anchors[-1]) + window
    label_buys = con.sql(f"SELECT count(*) FROM ev WHERE b = {buy} AND t >= {int(anchors[0])} "
                             f"AND t < {last}").fetchall()[0][0]
    if label_buys == 0:
        raise InvalidDataError(_(
            "The label windows leave no buy events: the {n} window(s) of {days} days before the log's last event hold "
            "no purchase. Lengthen label_window_days or n_windows, or use a log with purchases in its last "
            "days.").format(n=task.n_windows, days=f"{task.label_window_days:g}"))
    has_category = con.sql("SELECT count(*) FROM ev WHERE c IS NOT NULL").fetchall()[0][0] > 0
    con.sql("""CREATE OR REPLACE TABLE fw AS SELECT a.k, a.anchor, ev.* FROM ev JOIN anchors a
                    ON ev.t >= a.s AND ev.t < a.anchor""")
    con.sql(f"""CREATE OR REPLACE TABLE pair_first AS SELECT u, i, min(pos) AS pf FROM ev
                    WHERE t >= {first} AND t < {last} GROUP BY u, i""")
    n_classes = len(classes)
    counts = ", ".join(f"count(*) FILTER (WHERE b = {k})::FLOAT AS n{k}" for k in range(n_classes))
    con.sql(f"""CREATE OR REPLACE TABLE cand AS SELECT k, any_value(anchor) AS anchor, u, i, {counts},
                    max(pos) AS last_pos, arg_max(t, pos) AS last_t, arg_max(c, pos) AS cand_c
                    FROM fw GROUP BY k, u, i""")
    valid_start, test_start = _time_cuts(con, "SELECT anchor AS t, count(*) AS n FROM cand GROUP BY anchor", split)
    in_range = f"t >= {first} AND t < least({last}, {test_start})"
    n_item, items = _vocabulary_sql(con, "vocab_item", "i", in_range, task.max_vocab, "ev")
    n_cat, cats = _vocabulary_sql(con, "vocab_cat", "c", in_range, task.max_vocab, "ev") if has_category else (0, ())
    code = _sql_type(np.result_type(code_dtype(task.max_vocab), code_dtype(n_classes)))
    names = [_slug(c) for c in classes]
    scopes = [("user", "u"), ("item", "i")] + ([("category", "c"), ("user_category", "u, c")] if has_category else [])
    numeric, select, joins = [], [], []
    for scope, key in scopes:
        con.sql(f"""CREATE OR REPLACE TABLE n_{scope} AS SELECT k, {key}, {counts}, max(t) AS last_t,
                        count(*) AS events FROM fw {'WHERE c IS NOT NULL' if 'c' in key else ''} GROUP BY k, {key}""")
        on = " AND ".join(f"n_{scope}.{part.strip()} = cand.{'cand_c' if part.strip() == 'c' else part.strip()}"
                          for part in key.split(","))
        joins.append(f"LEFT JOIN n_{scope} ON n_{scope}.k = cand.k AND {on}")
    for scope, _key in scopes + [("user_item", "")]:
        table = "cand" if scope == "user_item" else f"n_{scope}"
        for j, name in enumerate(names):
            select.append(f"coalesce({table}.n{j}, 0)::FLOAT AS {scope}_{name}_count")
            numeric.append(f"{scope}_{name}_count")
    select += [f"((cand.anchor - n_user.last_t)::DOUBLE / {NS_PER_HOUR})::FLOAT AS user_hours_since_prev",
               f"((cand.anchor - cand.last_t)::DOUBLE / {NS_PER_HOUR})::FLOAT AS user_item_hours_since_prev",
               "(n_item.events::DOUBLE / window_events.n)::FLOAT AS item_popularity",
               f"(((cand.last_t - (cand.last_t // {NS_PER_DAY}) * {NS_PER_DAY}) // {NS_PER_HOUR}))::FLOAT AS hour",
               f"(((cand.anchor // {NS_PER_DAY}) + 3) % 7)::FLOAT AS weekday"]
    numeric += ["user_hours_since_prev", "user_item_hours_since_prev", "item_popularity", "hour", "weekday"]
    categorical = ["item", "category"] if has_category else ["item"]
    select.append(f"coalesce(vi.code, 0)::{code} AS item")
    if has_category:
        select.append(f"coalesce(vc.code, 0)::{code} AS category")
    length = task.sequence_length
    sequences = _sequence_columns(length, has_category)
    seq_join = ""
    if length:
        values = {"hist_item": "coalesce(vi.code, 0)", "hist_category": "coalesce(vc.code, 0)",
                  "hist_behavior": "fw.b + 1"}
        pivots = [f"coalesce(max({values[group]}) FILTER (WHERE r = {j + 1}), 0)::{code} AS {column}"
                  for group, columns in sequences.items() for j, column in enumerate(columns)]
        # One anchor's window at a time: DuckDB's window operator does not spill all of its input; at 100M events
        # the feature windows' rows together ran out of a 2.4 GB budget (the default limit's share), one at a time fit.
        for k in range(len(anchors)):
            con.sql(f"""{'INSERT INTO seq' if k else 'CREATE OR REPLACE TABLE seq AS'}
                SELECT k, u, {', '.join(pivots)} FROM (
                SELECT fw.*, row_number() OVER (PARTITION BY u ORDER BY pos DESC) AS r FROM fw WHERE k = {k}
                QUALIFY r <= {length}) fw LEFT JOIN vocab_item vi ON fw.i = vi.id
                {'LEFT JOIN vocab_cat vc ON fw.c = vc.id' if has_category else ''} GROUP BY k, u""")
        seq_join = "LEFT JOIN seq ON seq.k = cand.k AND seq.u = cand.u"
        select += [f"coalesce(seq.{c}, 0)::{code} AS {c}" for cols in sequences.values() for c in cols]
    con.sql(f"""CREATE OR REPLACE TABLE bought AS SELECT DISTINCT a.k, ev.u, ev.i FROM ev JOIN anchors a
                    ON ev.t >= a.anchor AND ev.t < a.h WHERE ev.b = {buy}""")
    con.sql("CREATE OR REPLACE TABLE window_events AS SELECT k, count(*) AS n FROM fw GROUP BY k")
    con.sql(f"""CREATE OR REPLACE VIEW rows AS
        SELECT cand.k::BIGINT * 1099511627776 + pair_first.pf AS ord, {', '.join(select)}, (bought.k IS NOT NULL)::BIGINT AS label, cand.u AS {USER}, cand.i AS {ITEM},
               cand.anchor AS {TIME}
        FROM cand {' '.join(joins)}
        JOIN window_events ON window_events.k = cand.k
        JOIN pair_first ON pair_first.u = cand.u AND pair_first.i = cand.i
        LEFT JOIN vocab_item vi ON cand.i = vi.id
        {'LEFT JOIN vocab_cat vc ON cand.cand_c = vc.id' if has_category else ''}
        {seq_join}
        LEFT JOIN bought ON bought.k = cand.k AND bought.u = cand.u AND bought.i = cand.i""")
    if not con.sql("SELECT count(*) FROM cand JOIN bought USING (k, u, i)").fetchall()[0][0]:
        raise InvalidDataError(_(
            "No candidate pair converts: the label windows hold {buys} buy event(s), but none is by a user-item pair "
            "active in the feature window before its anchor. Lengthen feature_window_days (or set it to None) or "
            "label_window_days.").format(buys=format_integer(label_buys)))
    schema = _schema(classes, ("no_buy", "buy"), numeric, categorical, sequences, n_item, items, n_cat, cats)
    return schema, (valid_start, test_start), 0, con.sql("SELECT count(*) FROM cand").fetchall()[0][0]


def _write(con, schema: FeatureSchema, cuts: tuple[int, int], out: Path, sampling: Sampling, majority: int,
           total: int, progress: BuildProgress) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Stream view ``rows`` (in row order, so in time order) into ``out/part=*/part-*.parquet``, each row to the
    part its time falls in; returns rows and rows per class of each part."""
    weight = keep = ""
    if sampling.negative_rate < 1:
        rate = float(sampling.negative_rate)
        fraction = _sql_hash_fraction(f"CAST({USER} AS VARCHAR) || '|' || CAST({ITEM} AS VARCHAR) || '|' || "
                                      f"CAST({TIME} AS VARCHAR)", _SALT + "rows")
        keep = f"WHERE label <> {majority} OR {fraction} < {rate!r}"
        weight = f", (CASE WHEN label = {majority} THEN {1.0 / rate!r} ELSE 1.0 END)::DOUBLE AS {SAMPLE_WEIGHT}"
    columns = list(schema.feature_columns) + [LABEL, USER, ITEM, TIME]
    reader = con.sql(f"SELECT {', '.join(columns)}{weight} FROM rows {keep} ORDER BY ord").to_arrow_reader(
        BATCH_ROWS)
    writers = {part: _PartWriter(out / f"part={part}", schema.n_classes) for part in PARTS}
    written = 0
    for batch in reader:
        times = batch.column(TIME).to_numpy()
        valid_at, test_at = np.searchsorted(times, cuts, side="left")     # rows come in time order
        at = batch.schema.get_field_index(TIME)
        batch = batch.set_column(at, TIME, batch.column(at).cast(pa.timestamp("ns", tz="UTC")))
        for part, (start, stop) in zip(PARTS, ((0, valid_at), (valid_at, test_at), (test_at, len(times)))):
            if stop > start:
                writers[part].write(batch.slice(start, stop - start))
        written += batch.num_rows
        progress("writing", written, written / max(total, 1))
    for writer in writers.values():
        writer.close()
    return ({part: w.rows for part, w in writers.items()},
            {part: {c: int(n) for c, n in zip(schema.classes, w.per_class)} for part, w in writers.items()})


class _PartWriter:
    """Parquet files of one part, a new file every :data:`FILE_ROWS` rows; counts rows per class."""

    def __init__(self, folder: Path, n_classes: int):
        folder.mkdir(parents=True)
        self.folder = folder
        self.writer: pq.ParquetWriter | None = None
        self.files = 0
        self.rows = 0
        self.per_class = np.zeros(n_classes, dtype=np.int64)

    def write(self, batch: pa.RecordBatch) -> None:
        if self.writer is None or self.rows >= FILE_ROWS * self.files:
            self.close()
            self.writer = pq.ParquetWriter(self.folder / f"part-{self.files:05d}.parquet", batch.schema)
            self.files += 1
        self.writer.write_batch(batch)
        self.rows += batch.num_rows
        self.per_class += np.bincount(batch.column(LABEL).to_numpy(), minlength=len(self.per_class))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


__all__ = ["BuildProgress", "DiskDataset", "PathChoice", "Sampling", "build_on_disk", "choose_path", "down_sample",
           "open_on_disk", "peak_rss", "progress_message", "sample_log", "sampled_class_mix", "throttled"]
