"""A run's data: the dataset in memory, or built out of core when the log is larger than memory.

:func:`run_data` turns a :class:`~recexp.spec.RunSpec`'s data part into the three parts a run trains,
validates and tests on. A log file whose in-memory build would pass the memory setting
(:func:`recexp.outofcore.choose_path`), or any log file when the spec says ``out_of_core="yes"``, is
built with :func:`recexp.outofcore.build_on_disk` (with the spec's task parameters, temporal split and
sampling; every seed and arm of a grid reuses one build, the log read once). Then:

* the training part is read into memory when training it there fits the memory setting (:func:`reading_bytes`:
  a measured multiple of its tensors; or when the training settings say ``train_from="memory"``), and
  otherwise stays on disk, trained from memory-mapped shards;
* the validation and test parts stay on disk (:class:`~recexp.models.shards.ParquetRows`) and are scored
  file by file, a chunk at a time, so a run never holds a large part whole (boosted trees, which take their
  validation rows in memory, get the validation part read).

A training split left on disk serves only strategies that keep its rows as they are
(:meth:`recexp.strategies.Strategy.keeps_rows`: the baseline, class weights, a loss): :func:`check_strategy` refuses
every other one in a sentence that names the build-time sampling options, before any training.

>>> data = run_data(spec, progress=print)                          # doctest: +SKIP
>>> data.on_disk, len(data.train), len(data.test)                  # doctest: +SKIP
(True, 812233, 93112)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recexp.dataset import Dataset, FeatureSchema, Split
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _, format_decimal, format_integer
from recexp.memory import MEMORY_LIMIT_ENV, memory_limit
from recexp.models import MODELS, TrainConfig
from recexp.models.shards import ParquetRows, tensor_bytes
from recexp.outofcore import BuildProgress, DiskDataset, Sampling, build_on_disk, choose_path
from recexp.spec import RunSpec, data_source, prepare_data
from recexp.strategies import Strategy
from recexp.tasks import SplitSpec

#: Values of ``RunSpec.out_of_core`` and of the CLI's ``--out-of-core``.
OUT_OF_CORE = ("auto", "yes", "no")
PARTS = ("train", "valid", "test")
#: What a run that trains a split in memory holds at its peak, in multiples of the split's tensors: the Arrow table
#: and pandas frame read, the frame with the strategy's columns, the tensors and the stored training rows. Measured
#: with ``benchmarks/scale.py`` (10M events, purchase task, 1.64M training rows, tensors 0.39 GB): 1.6 GB above
#: the process's 0.45 GB at rest.
READING_FACTOR = 4


@dataclass
class RunData:
    """The parts one run uses: each a :class:`~recexp.dataset.Dataset` in memory or
    :class:`~recexp.models.shards.ParquetRows` on disk, with what the run records about them.

    ``positions`` holds the dataset row positions of the parts in memory; ``counts`` the rows per class of
    every part; ``disk`` the dataset built out of core (``None`` in memory).
    """

    schema: FeatureSchema
    task: str
    fingerprint: str
    train: Dataset | ParquetRows
    valid: Dataset | ParquetRows
    test: Dataset | ParquetRows
    positions: dict[str, np.ndarray]
    counts: dict[str, dict[str, int]]
    disk: DiskDataset | None = None

    @classmethod
    def in_memory(cls, dataset: Dataset, split: Split) -> RunData:
        """The parts of a dataset in memory and its split (what :func:`recexp.spec.prepare_data` returns)."""
        parts = {name: dataset.subset(getattr(split, name)) for name in PARTS}
        return cls(schema=dataset.schema, task=dataset.task, fingerprint=dataset.fingerprint, **parts,
                   positions={name: getattr(split, name) for name in PARTS},
                   counts={name: part.class_counts() for name, part in parts.items()})

    @property
    def on_disk(self) -> bool:
        """Whether the dataset was built out of core."""
        return self.disk is not None

    def rows(self, part: str) -> np.ndarray:
        """Positions in the whole dataset of ``part``'s rows."""
        value = getattr(self, part)
        return value.positions() if isinstance(value, ParquetRows) else self.positions[part]

    def loaded(self, part: str) -> Dataset:
        """``part`` in memory (read from disk if it is there): for work that needs every row of it at once."""
        value = getattr(self, part)
        if isinstance(value, Dataset):
            return value
        return Dataset(frame=self.disk.read(part), schema=self.schema, task=self.task, fingerprint=self.fingerprint)


def check_out_of_core(choice: str) -> str:
    """``choice`` when it is one of :data:`OUT_OF_CORE`; else :class:`InvalidParameterError`."""
    if choice not in OUT_OF_CORE:
        raise InvalidParameterError(_("out_of_core must be one of {choices}, but got {value!r}.").format(
            choices=", ".join(OUT_OF_CORE), value=choice))
    return choice


def wants_out_of_core(spec: RunSpec) -> bool:
    """Whether ``spec``'s dataset is built out of core: its source is a behaviour log file and ``out_of_core``
    is ``"yes"``, or ``"auto"`` and the in-memory build would pass the memory setting.

    Raises
    ------
    InvalidParameterError
        ``out_of_core`` is not one of :data:`OUT_OF_CORE`, or is ``"yes"`` for a source that is not a log file.
    """
    choice = check_out_of_core(spec.out_of_core)
    if choice == "no":
        return False
    source = data_source(spec.source)
    path = Path(source.path)
    if source.kind != "log" or not path.is_file():
        if choice == "yes":
            raise InvalidParameterError(_(
                "out_of_core 'yes' needs a behaviour log file on disk as the source, but the run's source is "
                "{source}.").format(source=source.name))
        return False
    return choice == "yes" or choose_path(path, spec.task).on_disk


def build_for(spec: RunSpec, progress: BuildProgress | None = None) -> DiskDataset:
    """``spec``'s dataset built out of core (or the earlier build with the same key, reused)."""
    source = data_source(spec.source)
    return build_on_disk(source.path, spec.task, SplitSpec(**spec.split), sampling=Sampling(**spec.sampling),
                         header=source.header, mapping=dict(source.mapping) or None, progress=progress,
                         **spec.task_params)


def run_data(spec: RunSpec, data: RunData | tuple | None = None, progress: BuildProgress | None = None) -> RunData:
    """The parts of ``spec``'s dataset: ``data`` when the caller has them (a :class:`RunData`, or the
    ``(dataset, split)`` of :func:`recexp.spec.prepare_data`), else built out of core when
    :func:`wants_out_of_core` says so, else in memory.

    ``progress(phase, rows, fraction)`` hears an out-of-core build's progress.

    Raises
    ------
    InvalidDataError
        ``spec.fingerprint`` is set and the data no longer matches it.
    """
    if isinstance(data, RunData):
        return data
    if data is not None:
        return RunData.in_memory(*data)
    if not wants_out_of_core(spec):
        return RunData.in_memory(*prepare_data(spec))
    disk = build_for(spec, progress)
    if spec.fingerprint and disk.fingerprint != spec.fingerprint:
        raise InvalidDataError(_(
            "The data changed since the run was specified (fingerprint {fingerprint}, expected "
            "{fingerprint2}). Re-open the file on the Data page and launch the run again.").format(
            fingerprint=disk.fingerprint, fingerprint2=spec.fingerprint))
    data = from_disk(disk, TrainConfig.from_dict({**spec.train, "seed": spec.seed}))
    if not MODELS[spec.model].differentiable:           # boosted trees take their validation rows in memory
        data.positions["valid"] = data.valid.positions()
        data.valid = data.loaded("valid")
    return data


def reading_bytes(part: ParquetRows, config: TrainConfig) -> int:
    """Bytes a run holds at its peak when it reads ``part`` into memory and trains on it there:
    :data:`READING_FACTOR` times the trainer's tensors (per-row statistics of ``config.epochs`` epochs included
    where it records them)."""
    return READING_FACTOR * tensor_bytes(part, config.epochs if config.record_sample_stats else 0)


def from_disk(disk: DiskDataset, config: TrainConfig) -> RunData:
    """The parts of a dataset built out of core: the training part in memory when ``config.train_from`` says so,
    or (``"auto"``) when reading it and training on it there fits the memory setting (:func:`reading_bytes`);
    every other part on disk."""
    offsets = np.cumsum([0] + [disk.rows[name] for name in PARTS])
    parts = {name: ParquetRows(disk.files(name), disk.schema, disk.rows[name], int(offset))
             for name, offset in zip(PARTS, offsets)}
    positions = {}
    fits = reading_bytes(parts["train"], config) <= memory_limit()
    if config.train_from == "memory" or (config.train_from == "auto" and fits):
        positions["train"] = parts["train"].positions()
        parts["train"] = Dataset(frame=disk.read("train"), schema=disk.schema, task=disk.task,
                                 fingerprint=disk.fingerprint)
    return RunData(schema=disk.schema, task=disk.task, fingerprint=disk.fingerprint, **parts, positions=positions,
                   counts={name: disk.class_counts(name) for name in PARTS}, disk=disk)


def check_strategy(strategy: Strategy, data: RunData) -> None:
    """Refuse ``strategy`` on a training split left on disk unless it keeps the rows as they are (one sentence
    that names the sampling options); anything goes on a split in memory (the strategy checks it itself)."""
    train = data.train
    if not isinstance(train, ParquetRows) or strategy.keeps_rows():
        return
    raise InvalidParameterError(_(
        "{title} needs the training rows in memory, but this training split of {rows} rows (about {needed} GB in "
        "memory) is over the memory setting ({budget} GB, {variable}), so only strategies that keep the rows as "
        "they are (none, class weights, focal loss) can run on it: build a smaller dataset with --sample-users or "
        "--negative-rate (the run spec's sampling), or raise {variable}.").format(
            title=strategy.title, rows=format_integer(len(train)), needed=format_decimal(reading_bytes(train, TrainConfig()) / 1e9, 1),
            budget=format_decimal(memory_limit() / 1e9, 1), variable=MEMORY_LIMIT_ENV))


__all__ = ["OUT_OF_CORE", "READING_FACTOR", "RunData", "build_for", "check_out_of_core", "check_strategy", "from_disk",
           "reading_bytes", "run_data", "wants_out_of_core"]
