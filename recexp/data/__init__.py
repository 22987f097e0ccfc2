"""Ingestion: read behaviour logs and feature tables from files, folders and uploads, and validate them.

>>> from recexp.data import load
>>> log = load("data/retailrocket/events_sample.csv")
>>> log.mapping
{'user': 'visitorid', 'item': 'itemid', 'behavior': 'event', 'timestamp': 'timestamp'}

:func:`load` returns a :class:`BehaviorLog` (``kind="log"``) or a :class:`FeatureTable`
(``kind="table"``), each with a :class:`ValidationReport` saying what was read, kept, dropped and
why. See :mod:`recexp.data.readers` for formats, compression, encodings and header detection,
:mod:`recexp.data.mapping` for how column roles are inferred, and :mod:`recexp.data.normalize` for
the conversions and checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recexp.data.log import (
    BEHAVIOR_SYNONYMS, FUNNEL, REQUIRED_ROLES, ROLE_COLUMNS, ROLES, BehaviorLog, FeatureTable, ValidationReport,
    frame_fingerprint,
)
from recexp.data.mapping import KNOWN_NAMES, infer_mapping
from recexp.data.normalize import build_log, build_table
from recexp.data.readers import Progress, read_raw
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _

KINDS = ("log", "table")


def load(
    source: str | Path | tuple[str, bytes],
    *,
    kind: str = "log",
    mapping: dict[str, str] | None = None,
    label_column: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
    time_window: tuple[Any, Any] | None = None,
) -> BehaviorLog | FeatureTable:
    """Read and validate a behaviour log or a feature table.

    Parameters
    ----------
    source : str, Path or (str, bytes)
        A file, a folder of same-layout files (concatenated in name order), or an uploaded
        ``(filename, bytes)`` pair. CSV, TSV (delimiter sniffed), Parquet or JSON lines, each optionally
        gzip- or zip-compressed (detected from the bytes, not the extension); UTF-8 or GBK/GB18030 text.
    kind : {"log", "table"}
        ``"log"``: one event per row (user, item, optional category, behaviour, timestamp).
        ``"table"``: rows that already carry features and a label column.
    mapping : dict, optional
        Role -> source column, overriding inference for those roles (logs only). Roles: ``user``,
        ``item``, ``category``, ``behavior``, ``timestamp``.
    label_column : str, optional
        The label column of a table. Without a header row columns are named ``c0``, ``c1``, ... by
        position, so the Criteo raw file's label is ``"c0"``. ``None`` looks for a column named
        ``label``, ``target``, ``class``, ``y`` or ``click``.
    header : bool, optional
        Whether delimited text has a header row; ``None`` detects it.
    encoding : str, optional
        Text encoding; ``None`` tries UTF-8, then GB18030 (which reads GBK).
    max_bytes : int, optional
        Refuse a source larger than this (e.g. the upload limit).
    progress : callable, optional
        Called as ``progress(fraction, message)`` while loading, ``fraction`` in [0, 1].
    time_window : (start, end), optional
        The window the log is documented to cover (end exclusive; naive times are UTC). Events outside
        it are counted in ``report.timestamp_outliers`` and warned about, not dropped. Without it, events
        far outside the central 98% of the log are reported instead.

    Returns
    -------
    BehaviorLog or FeatureTable
        With ``report`` (a :class:`ValidationReport`) and ``fingerprint`` (a content hash) set.

    Raises
    ------
    InvalidDataError
        When the source cannot be read or turned into a log/table (also when reading it runs out of
        memory, or a compressed file unpacks past :mod:`recexp.data.limits`); the message says what to do.
    InvalidParameterError
        When an argument is invalid (e.g. an unknown ``kind`` or role).
    """
    if kind not in KINDS:
        raise InvalidParameterError(_("kind must be 'log' or 'table', but got {kind!r}.").format(kind=kind))
    if header is not None and not isinstance(header, bool):
        raise InvalidParameterError(_("header must be True, False or None (detect), but "
                                      "got {header!r}.").format(header=header))
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise InvalidParameterError(_("max_bytes must be a positive number of bytes, "
                                      "but got {max_bytes!r}.").format(max_bytes=max_bytes))
    if kind == "table" and mapping:
        raise InvalidParameterError(_("mapping applies to behaviour logs only; for a table name label_column "
                                      "instead."))
    try:
        raw = read_raw(source, header=header, encoding=encoding, max_bytes=max_bytes, all_strings=kind == "table",
                       pad_rows=kind == "table", known_names=KNOWN_NAMES, progress=_scaled(progress, 0.6))
        if kind == "log":
            result = build_log(raw, mapping=mapping, time_window=time_window, progress=progress)
        else:
            result = build_table(raw, label_column=label_column, progress=progress)
    except MemoryError:                 # also pyarrow's ArrowMemoryError
        name = source[0] if isinstance(source, tuple) else Path(source).name
        raise InvalidDataError(
            _("Reading '{name}' ran out of memory: the server could not allocate more. Open a smaller part of "
              "the data, or run recexp where more memory is free.").format(name=name)) from None
    if progress is not None:
        progress(1.0, _("Read {name}: {rows_kept:,} rows kept").format(
                        name=raw.name, rows_kept=result.report.rows_kept))
    return result


def _scaled(progress: Progress | None, share: float) -> Progress | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(fraction * share, message)


__all__ = [
    "BEHAVIOR_SYNONYMS", "FUNNEL", "KINDS", "REQUIRED_ROLES", "ROLE_COLUMNS", "ROLES", "BehaviorLog", "FeatureTable",
    "ValidationReport", "frame_fingerprint", "infer_mapping", "load",
]
