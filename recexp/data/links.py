"""Short ids for data sources, so that a link to the dashboard can reopen the dataset it was made on.

A link never names a file. The id of a bundled sample is its name (``taobao``); any other source (an
upload saved in the workspace, a file opened on the Data page) is recorded in
``<workspace>/sources/<id>.json`` when the analyst makes it the active dataset, and its id is the
first 16 hex digits of the SHA-256 of that record. Resolving an id reads the record back, so a link
can only reopen what the Data page opened in this workspace, never point the dashboard at another
path; a file named on the server (not an upload) must also still lie under the data folders the Data
page reads from (:func:`recexp.data.limits.confine`).

>>> from recexp.data.samples import sample_source
>>> source_id(sample_source("criteo"))
'criteo'
>>> resolve_source("criteo") == sample_source("criteo")
True
"""

from __future__ import annotations

import hashlib
import json
import re

from pathlib import Path

from recexp.data.limits import confine
from recexp.data.samples import SAMPLES, sample_source
from recexp.data.source import DataSource, workspace
from recexp.errors import InvalidParameterError
from recexp.i18n import _

_RECORD_ID = re.compile(r"[0-9a-f]{16}")


def _records():
    return workspace() / "sources"


def _record_text(source: DataSource) -> str:
    return json.dumps(source.to_dict(), sort_keys=True)


def source_id(source: DataSource) -> str:
    """The id a link carries for ``source``: a bundled sample's name, else the hash of its record.

    Parameters
    ----------
    source : DataSource

    Returns
    -------
    str
        A key of :data:`~recexp.data.samples.SAMPLES`, or 16 hex digits.
    """
    for name in SAMPLES:
        if sample_source(name) == source:
            return name
    return hashlib.sha256(_record_text(source).encode()).hexdigest()[:16]


def remember_source(source: DataSource) -> str:
    """Record ``source`` in the workspace (unless it is a bundled sample) and return its id.

    Parameters
    ----------
    source : DataSource
        A source the Data page opened.

    Returns
    -------
    str
        The id :func:`resolve_source` turns back into ``source``.
    """
    sid = source_id(source)
    if sid in SAMPLES:
        return sid
    record = _records() / f"{sid}.json"
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        part = record.with_suffix(".part")
        part.write_text(_record_text(source), encoding="utf-8")
        part.replace(record)
    return sid


def resolve_source(sid: str) -> DataSource:
    """The source a link's id names: a bundled sample, or a source recorded by :func:`remember_source`.

    Parameters
    ----------
    sid : str
        A sample name or a 16-hex-digit record id.

    Returns
    -------
    DataSource

    Raises
    ------
    InvalidParameterError
        ``sid`` is neither a sample nor a record of this workspace (the message says what to do).
    InvalidDataError
        The record names a server file that is no longer under the data folders.
    """
    if sid in SAMPLES:
        return sample_source(sid)
    record = _records() / f"{sid}.json"
    if not _RECORD_ID.fullmatch(sid) or not record.is_file():
        raise InvalidParameterError(
            _("The link names the dataset {sid!r}, which is neither a bundled sample ({samples}) nor a dataset "
              "opened in this workspace ({workspace}). Open the file on the Data page again.").format(
              sid=sid, samples=', '.join(SAMPLES), workspace=workspace()))
    source = DataSource.from_dict(json.loads(record.read_text(encoding="utf-8")))
    uploads = workspace() / "uploads"
    if uploads not in Path(source.path).resolve().parents:
        confine(source.path)
    return source
