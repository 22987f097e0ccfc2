"""What ``python -m recexp inspect`` prints: mapping, validation report and class balance of a source.

A log file too large to load (:func:`recexp.outofcore.choose_path`) is summarised by :func:`inspect_large`:
the mapping and validation of its first lines (:func:`log_head`), and class counts from the task's dataset
built out of core, never the log or its features in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recexp.data import load
from recexp.data.log import BehaviorLog, FeatureTable
from recexp.data.samples import SAMPLES
from recexp.data.source import DataSource
from recexp.imbalance import class_balance
from recexp.outofcore import BuildProgress, build_on_disk
from recexp.tasks import get_task

#: Bytes of a large log file read for its preview, column mapping and validation (:func:`log_head`).
HEAD_BYTES = 1 << 20


def _sample_settings(source: str) -> tuple[str, dict[str, Any]]:
    """A bundled sample's path and reader settings when ``source`` names one (by name or by path)."""
    if source in SAMPLES and not Path(source).exists():
        sample = SAMPLES[source]
        return str(sample.path), {"kind": sample.kind, **sample.loader}
    resolved = Path(source).resolve()
    for sample in SAMPLES.values():
        if sample.path.resolve() == resolved:
            return source, {"kind": sample.kind, **sample.loader}
    return source, {}


def class_balance_summary(loaded: BehaviorLog | FeatureTable, task: str | None = None,
                          task_params: dict[str, str] | None = None) -> dict[str, Any]:
    """Class balance of the supervised dataset ``task`` builds from ``loaded``.

    Uses :meth:`recexp.tasks.Task.class_counts` (default task: ``behavior`` for logs, ``table`` for tables;
    ``task_params`` are ``KEY=VALUE`` strings as on the command line) and
    :func:`recexp.imbalance.class_balance`; returns the latter's dict plus ``task`` and ``task_params``.
    """
    task = task or ("behavior" if loaded.kind == "log" else "table")
    builder = get_task(task).from_strings(dict(task_params or {}))
    return {"task": task, "task_params": builder.get_params(), **class_balance(builder.class_counts(loaded))}


def inspect_source(
    source: str,
    *,
    kind: str | None = None,
    mapping: dict[str, str] | None = None,
    label_column: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    task: str | None = None,
    task_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``source`` and summarise it as one JSON-able dict.

    ``source`` may also be the name of a bundled sample (``taobao``, ``criteo`` ...); a bundled file
    given by path is read with its registered settings (e.g. Taobao's stated time window). Explicit
    arguments win over those settings.

    Returns
    -------
    dict
        ``source``, ``kind``, ``rows``, ``fingerprint``, ``mapping``, ``confidence`` (role -> 0..1) and
        ``roles`` (role -> column, confidence, evidence) for logs, or ``label_column``, ``numeric``,
        ``categorical`` for tables; ``validation`` (the report), ``warnings`` (the report's sentences,
        guessed roles among them) and ``imbalance``
        (``task`` plus :func:`recexp.imbalance.class_balance` of the task's dataset: ``class_counts``,
        ``imbalance_ratio``, ``shares``, ``normalised_entropy`` ...).
    """
    path, settings = _sample_settings(source)
    explicit = {"kind": kind, "mapping": mapping, "label_column": label_column, "header": header,
                "encoding": encoding}
    settings.update({k: v for k, v in explicit.items() if v is not None})
    loaded = load(path, **settings)
    result: dict[str, Any] = {"source": str(source), "kind": loaded.kind, "rows": loaded.report.rows_kept,
                              "fingerprint": loaded.fingerprint}
    if loaded.kind == "log":
        result.update(_roles(loaded))
    else:
        result.update(label_column=loaded.label_column, numeric=list(loaded.numeric),
                      categorical=list(loaded.categorical))
    result["validation"] = loaded.report.to_dict()
    result["warnings"] = list(loaded.report.warnings)
    result["imbalance"] = class_balance_summary(loaded, task, task_params)
    return result


def _roles(log: BehaviorLog) -> dict[str, Any]:
    """A log's ``mapping``, ``confidence`` (role -> 0..1) and ``roles`` (role -> column, confidence, evidence)."""
    return {"mapping": dict(log.mapping),
            "confidence": {role: choice["confidence"] for role, choice in log.report.roles.items()},
            "roles": {role: dict(choice) for role, choice in log.report.roles.items()}}


def log_head(source: DataSource, size: int = HEAD_BYTES) -> BehaviorLog:
    """The first lines of ``source``'s log file (about ``size`` bytes; a Parquet file's first batch), read and
    checked as :func:`recexp.data.load` reads the whole file: its column mapping and a preview, never the log.

    Raises
    ------
    RecexpError
        What reading those lines raised (a bad file, a mapping that does not fit).
    """
    path = Path(source.path)
    if path.suffix.lower() == ".parquet":
        table = pa.Table.from_batches([next(pq.ParquetFile(path).iter_batches(50_000))])
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data, name = sink.getvalue().to_pybytes(), path.name
    else:
        with pa.input_stream(str(path), compression="detect") as stream:
            data = stream.read(size)
        if len(data) == size:
            data = data[:data.rfind(b"\n") + 1]
        name = path.name.removesuffix(path.suffix) if path.suffix.lower() in (".gz", ".bz2") else path.name
    return load((name, data), kind="log", mapping=source.mapping or None, header=source.header)


def inspect_large(source: str, *, mapping: dict[str, str] | None = None, header: bool | None = None,
                  task: str | None = None, task_params: dict[str, str] | None = None,
                  progress: BuildProgress | None = None) -> dict[str, Any]:
    """:func:`inspect_source`'s summary of a log file too large to load.

    ``mapping``, ``confidence``, ``roles``, ``validation`` and ``warnings`` are those of the file's first
    lines (:func:`log_head`; ``validation["scope"]`` is ``"first lines"``); ``imbalance`` counts the classes
    of ``task``'s dataset built out of core (:func:`recexp.outofcore.build_on_disk`, without a split, memory
    bounded by the memory setting; a later build of the same file and task reuses it), and ``out_of_core``
    says where it is. ``rows`` is the dataset's row count.
    """
    task = task or "behavior"
    builder = get_task(task).from_strings(dict(task_params or {}))
    builder.validate_params()
    head = log_head(DataSource(str(source), mapping=dict(mapping or {}), header=header))
    disk = build_on_disk(source, task, None, header=header, mapping=mapping or None, progress=progress,
                         **builder.get_params())
    return {"source": str(source), "kind": "log", "rows": len(disk), "fingerprint": disk.fingerprint,
            **_roles(head), "validation": {**head.report.to_dict(), "scope": "first lines"}, "warnings": list(head.report.warnings),
            "imbalance": {"task": task, "task_params": builder.get_params(), **class_balance(disk.class_counts())},
            "out_of_core": {"folder": str(disk.folder), "rows": disk.rows, "seconds": disk.seconds}}
