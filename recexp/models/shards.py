"""Training rows on disk: memory-mapped Arrow shards and the batches the trainer draws from them.

A training split whose tensors do not fit the memory setting (:func:`recexp.memory.memory_limit`) is
written once as Arrow IPC files of :data:`SHARD_ROWS` rows each, in the trainer's own encoding (the
codes :func:`~recexp.models.base.to_tensors` makes, stored in the narrowest integer type), and read back
memory-mapped: the operating system pages rows in as they are used, so the process holds one shuffle
buffer of rows, not the split.

Every epoch visits the shards in a new random order; rows are shuffled within a buffer of
:data:`BUFFER_SHARDS` shards (the whole split when it has no more shards than that, i.e. a full
shuffle). Batches are gathered on a background thread, a few ahead of the training step, in pinned
memory when they go to a CUDA device, so copying them overlaps with the step before.

Example
-------
>>> shards = write_shards(train_set, "scratch/shards")               # doctest: +SKIP
>>> for batch in ShardBatches(shards, batch_size=512, seed=0).epoch(1):   # doctest: +SKIP
...     logits = module(*batch.inputs)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset, FeatureSchema, code_dtype
from recexp.models.base import Inputs, input_spec, to_tensors

#: Rows per shard file.
SHARD_ROWS = 65_536
#: Shards whose rows are shuffled together.
BUFFER_SHARDS = 4
#: Batches assembled ahead of the training step.
PREFETCH = 4
#: Real rows the numeric imputation and standardisation statistics are fitted on (all of them up to this).
NORMALIZER_ROWS = 250_000


def tensor_bytes(dataset: Dataset, epochs_of_stats: int = 0) -> int:
    """Bytes :func:`~recexp.models.base.to_tensors` would hold for ``dataset`` (plus per-row statistics of
    ``epochs_of_stats`` epochs, as the trainer records them): what training it in memory takes."""
    schema = dataset.schema
    per_row = 4 * len(schema.numeric) + 8 * len(schema.categorical) + 8 * len(schema.sequence_columns) + 8 + 4 + 1
    return len(dataset) * (per_row + 5 * epochs_of_stats)


@dataclass(frozen=True)
class ShardSet:
    """Training rows written by :func:`write_shards`: the files, their row counts and what the trainer needs."""

    schema: FeatureSchema
    paths: tuple[Path, ...]
    rows: tuple[int, ...]                 # rows of each shard
    class_counts: tuple[int, ...]         # rows per label code
    weighted: bool                        # some row's sample_weight is not 1

    def __len__(self) -> int:
        return sum(self.rows)

    def read(self, index: int) -> ShardArrays:
        """Shard ``index`` as numpy arrays over the memory-mapped file (nothing is copied)."""
        table = pa.ipc.open_file(pa.memory_map(str(self.paths[index]), "r")).read_all()
        spec = input_spec(self.schema)
        n = table.num_rows

        def matrix(name: str, width: int, dtype) -> np.ndarray:
            if width == 0:
                return np.zeros((n, 0), dtype=dtype)
            return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=True).reshape(n, width)

        column = {name: table.column(name).combine_chunks().to_numpy(zero_copy_only=True)
                  for name in ("row", "label", "weight", "synthetic")}
        return ShardArrays(
            numeric=matrix("numeric", spec.n_numeric, np.float32),
            categorical=matrix("categorical", len(spec.categorical_sizes), np.int8),
            sequence=matrix("sequence", spec.n_groups * spec.sequence_length, np.int8),
            labels=column["label"], weights=column["weight"], synthetic=column["synthetic"], rows=column["row"])

    def real_numeric(self, limit: int = NORMALIZER_ROWS, seed: int = 0) -> torch.Tensor:
        """Numeric features of the real (non-synthetic) rows, in row order: all of them, or an even random
        ``limit`` of them when there are more (what the numeric normaliser is fitted on). Reads one shard at a
        time, so what it holds is the rows it returns."""
        real = sum(int((self.read(i).synthetic == 0).sum()) for i in range(len(self.paths)))
        keep = min(1.0, limit / max(real, 1))
        rng = np.random.default_rng(seed)
        chosen = [np.zeros((0, len(self.schema.numeric)), dtype=np.float32)]
        for index in range(len(self.paths)):
            arrays = self.read(index)
            mask = arrays.synthetic == 0
            if keep < 1:
                mask &= rng.random(len(mask)) < keep
            chosen.append(arrays.numeric[mask])                  # a copy: the shard's map is let go
        return torch.from_numpy(np.concatenate(chosen))


class ShardArrays(NamedTuple):
    """One shard's (or one shuffle buffer's) rows as numpy arrays in the stored, narrow types."""

    numeric: np.ndarray      # float32 (m, P)
    categorical: np.ndarray  # narrow int (m, C)
    sequence: np.ndarray     # narrow int (m, G * L)
    labels: np.ndarray       # int64 (m,)
    weights: np.ndarray      # float32 (m,)
    synthetic: np.ndarray    # uint8 (m,)
    rows: np.ndarray         # int64 (m,): positions in the training set written

    @classmethod
    def concatenate(cls, parts: list[ShardArrays]) -> ShardArrays:
        return parts[0] if len(parts) == 1 else cls(*(np.concatenate(arrays) for arrays in zip(*parts)))


class Batch(NamedTuple):
    """One training batch as tensors: its rows' positions, inputs, label codes and weights."""

    rows: torch.Tensor
    inputs: Inputs
    labels: torch.Tensor
    weights: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        move = {"device": device, "non_blocking": True}
        return Batch(self.rows.to(**move), self.inputs.to(device), self.labels.to(**move), self.weights.to(**move))


def write_shards(dataset: Dataset, folder: str | Path, rows_per_shard: int = SHARD_ROWS) -> ShardSet:
    """Write ``dataset``'s rows as Arrow shards in ``folder`` (created) in the trainer's encoding.

    Converts one shard's rows at a time, so the memory it takes is a shard's, whatever the dataset's size.
    """
    chunks = (dataset.subset(np.arange(start, min(start + rows_per_shard, len(dataset))))
              for start in range(0, len(dataset), rows_per_shard))
    return _write(chunks, dataset.schema, folder)


class ParquetRows:
    """Rows of a dataset part stored as Parquet files (a part built out of core), read a chunk at a time.

    What scoring and validation need without the part in memory: its length, its schema, its label codes
    and row weights (narrow columns), and its rows as :class:`~recexp.dataset.Dataset` chunks in file order.
    ``offset`` is the position of its first row in the whole dataset (rows are numbered part after part).

    Parameters
    ----------
    files : sequence of path
        The part's Parquet files in row order.
    schema : FeatureSchema
    rows : int
        Rows in all the files.
    offset : int
        Position of the first row in the whole dataset.
    """

    def __init__(self, files, schema: FeatureSchema, rows: int, offset: int = 0):
        self.files = tuple(Path(f) for f in files)
        self.schema = schema
        self.rows = rows
        self.offset = offset

    def __len__(self) -> int:
        return self.rows

    def chunks(self, rows: int = SHARD_ROWS, columns: set[str] | None = None) -> Iterator[Dataset]:
        """The rows as Datasets of at most ``rows`` rows, in order (only ``columns`` where given, as far as the
        files have them)."""
        for path in self.files:
            parquet = pq.ParquetFile(path)
            names = [n for n in parquet.schema_arrow.names if columns is None or n in columns]
            for batch in parquet.iter_batches(batch_size=rows, columns=names):
                if batch.num_rows:
                    yield Dataset(batch.to_pandas(), self.schema, task="", fingerprint="")

    def column(self, name: str) -> np.ndarray | None:
        """One column of every row (``None`` when the files do not have it), read column by column."""
        if not self.files or name not in pq.read_schema(self.files[0]).names:
            return None
        return np.concatenate([pq.read_table(f, columns=[name]).column(name).to_numpy() for f in self.files])

    @property
    def y(self) -> np.ndarray:
        """Label codes of every row."""
        labels = self.column(LABEL)
        return np.zeros(0, dtype=np.int64) if labels is None else labels.astype(np.int64)

    def positions(self) -> np.ndarray:
        """The rows' positions in the whole dataset."""
        return np.arange(self.offset, self.offset + self.rows, dtype=np.int64)


def shards_from_parquet(source: str | Path | ParquetRows, schema: FeatureSchema, folder: str | Path,
                        rows_per_shard: int = SHARD_ROWS, class_weight: np.ndarray | None = None) -> ShardSet:
    """Write the rows of a Parquet file, of every ``*.parquet`` file under a folder, or of a
    :class:`ParquetRows` (a training split built out of core, with the columns ``schema`` names and ``label``),
    as Arrow shards in ``folder``.

    Reads one batch at a time, only the columns training uses (features, label, and ``sample_weight`` and
    ``is_synthetic`` where the files have them); rows are numbered in the order of the files' sorted paths.
    ``class_weight`` (one factor per label code) multiplies each row's weight, as a class-weighting strategy
    applied in memory does.
    """
    if not isinstance(source, ParquetRows):
        source = Path(source)
        files = sorted(source.rglob("*.parquet")) if source.is_dir() else [source]
        source = ParquetRows(files, schema, rows=0)
    wanted = {*schema.feature_columns, LABEL, SAMPLE_WEIGHT, IS_SYNTHETIC}
    return _write(source.chunks(rows_per_shard, wanted), schema, folder, class_weight)


def _write(chunks: Iterator[Dataset], schema: FeatureSchema, folder: str | Path,
           class_weight: np.ndarray | None = None) -> ShardSet:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = input_spec(schema)
    cat_type = code_dtype(max(spec.categorical_sizes, default=1))
    seq_type = code_dtype(max(spec.sequence_sizes, default=1))
    paths, rows = [], []
    counts = np.zeros(schema.n_classes, dtype=np.int64)
    weighted = False
    start = 0
    for number, chunk in enumerate(chunks):
        data = to_tensors(chunk)
        n = len(chunk)
        stop = start + n
        numeric = data.inputs.numeric.numpy()
        categorical = data.inputs.categorical.numpy().astype(cat_type)
        sequence = data.inputs.sequence.numpy().reshape(n, -1).astype(seq_type)
        columns = {"row": pa.array(np.arange(start, stop, dtype=np.int64)),
                   "label": pa.array(data.labels.numpy()),
                   "weight": pa.array(data.weights.numpy() if class_weight is None else
                                      (data.weights.numpy() * class_weight[data.labels.numpy()]).astype(np.float32)),
                   "synthetic": pa.array(data.synthetic.numpy().astype(np.uint8))}
        for name, matrix in (("numeric", numeric), ("categorical", categorical), ("sequence", sequence)):
            if matrix.shape[1]:
                columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
        path = folder / f"shard_{number:05d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, pa.table(columns).schema) as writer:
            writer.write_table(pa.table(columns))
        paths.append(path)
        rows.append(n)
        counts += np.bincount(data.labels.numpy(), minlength=schema.n_classes)
        weighted = weighted or bool((columns["weight"].to_numpy() != 1).any())
        start = stop
    return ShardSet(schema, tuple(paths), tuple(rows), tuple(int(c) for c in counts), weighted)


class ShardBatches:
    """Shuffled batches of a :class:`ShardSet`, one epoch at a time, assembled on a background thread.

    Parameters
    ----------
    shards : ShardSet
    batch_size : int
    seed : int
        With the epoch number, fixes the shard order and the shuffle of every buffer.
    pin_memory : bool
        Assemble batches in page-locked memory (for a CUDA device: the copy to it does not block).
    buffer_shards : int
        Shards whose rows are shuffled together.
    """

    def __init__(self, shards: ShardSet, batch_size: int, seed: int, pin_memory: bool = False,
                 buffer_shards: int = BUFFER_SHARDS):
        self.shards = shards
        self.batch_size = batch_size
        self.seed = seed
        self.pin_memory = pin_memory
        self.buffer_shards = buffer_shards

    def _assemble(self, epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, epoch])
        spec = input_spec(self.shards.schema)
        order = rng.permutation(len(self.shards.paths))
        for begin in range(0, len(order), self.buffer_shards):
            buffer = ShardArrays.concatenate([self.shards.read(int(i))
                                              for i in order[begin:begin + self.buffer_shards]])
            permutation = rng.permutation(len(buffer.labels))
            for start in range(0, len(permutation), self.batch_size):
                index = np.sort(permutation[start:start + self.batch_size])    # sorted: reads pages in order
                sequence = buffer.sequence[index].astype(np.int64).reshape(len(index), spec.n_groups,
                                                                           spec.sequence_length)
                tensors = [torch.from_numpy(array) for array in (
                    buffer.rows[index], buffer.numeric[index], buffer.categorical[index].astype(np.int64), sequence,
                    buffer.labels[index], buffer.weights[index])]
                if self.pin_memory:
                    tensors = [tensor.pin_memory() for tensor in tensors]
                rows, numeric, categorical, sequence, labels, weights = tensors
                yield Batch(rows, Inputs(numeric, categorical, sequence), labels, weights)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of epoch ``epoch`` (1-based); a background thread keeps :data:`PREFETCH` of them ready.

        An error on that thread (an unreadable shard) is raised here, at the batch it would have made.
        """
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        end = object()

        def hand_over(item) -> bool:
            """Put ``item`` in the queue unless the training thread stopped listening; False then."""
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for batch in self._assemble(epoch):
                    if not hand_over(batch):
                        return
                hand_over(end)
            except BaseException as error:            # handed to the training thread, raised there
                hand_over(error)

        worker = threading.Thread(target=produce, name="recexp-shard-batches", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not end:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()


__all__ = ["SHARD_ROWS", "BUFFER_SHARDS", "NORMALIZER_ROWS", "Batch", "ShardArrays", "ParquetRows", "ShardBatches", "ShardSet",
           "shards_from_parquet", "tensor_bytes", "write_shards"]
