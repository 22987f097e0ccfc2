"""Where a dataset comes from, as a small JSON-able record a background worker can load again."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recexp.errors import InvalidDataError, os_error_sentence
from recexp.i18n import _


def workspace() -> Path:
    """The workspace folder (run store, artifacts, uploads): ``$RECEXP_HOME`` or ``./workspace``."""
    return Path(os.environ.get("RECEXP_HOME", "workspace")).resolve()


@dataclass(frozen=True)
class DataSource:
    """A file (or folder) on the server plus how to read it.

    Browser uploads are first saved into the workspace (:func:`save_upload`), so every source is a
    path and a run spec that names it can be replayed by a worker process.
    """

    path: str
    kind: str = "log"                                        # "log" or "table"
    mapping: dict[str, str] = field(default_factory=dict)   # role -> column, overrides inference
    label_column: str | None = None                         # feature tables only
    header: bool | None = None                              # None: detect
    time_window: tuple[str, str] | None = None              # documented window of a log (outliers warned)

    def load(self, progress=None):
        """Read and validate the source; returns a ``BehaviorLog`` or ``FeatureTable``."""
        from recexp.data import load

        return load(self.path, kind=self.kind, mapping=self.mapping or None,
                    label_column=self.label_column, header=self.header, time_window=self.time_window,
                    progress=progress)

    @property
    def name(self) -> str:
        """Short display name (file name)."""
        return Path(self.path).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSource:
        window = data.get("time_window")
        return cls(**{**data, "time_window": tuple(window) if window else None})


def save_upload(filename: str, content: bytes, owner: str | None = None) -> Path:
    """Store uploaded bytes as ``<workspace>/uploads/<content hash>/<file name>``; returns the path.

    An upload of a signed-in ``owner`` goes to ``uploads/user-<hash of owner>/<content hash>/<file name>``
    instead, apart from everyone else's. A failed write (a full or read-only disk) leaves no partial
    file and raises :class:`InvalidDataError` with a sentence.
    """
    if not content:
        raise InvalidDataError(_("The file '{filename}' is empty. Upload a file with a "
                                 "header or data rows.").format(filename=filename))
    digest = hashlib.sha256(content).hexdigest()[:16]
    safe_name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(filename).name)
    folder = workspace() / "uploads"
    if owner is not None:
        folder = folder / f"user-{hashlib.sha256(owner.encode()).hexdigest()[:16]}"
    target = folder / digest / safe_name
    if not target.exists():
        tmp = target.with_suffix(target.suffix + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(content)
            tmp.replace(target)
        except OSError as error:
            with contextlib.suppress(OSError):              # a read-only disk refuses even that
                tmp.unlink(missing_ok=True)
            raise InvalidDataError(_("The upload '{filename}' could not be saved: {error}").format(
                                     filename=filename, error=os_error_sentence(error, 'write'))) from error
    return target
