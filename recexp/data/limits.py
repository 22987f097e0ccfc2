"""Where the dashboard may read files from, and how much one read may unpack: the one place that reads
the environment settings for safe reading.

* ``RECEXP_DATA_ROOT``: folders (separated by ``:``, as in ``PATH``) under which a path typed into the
  Data page's "File on the server" box must lie once resolved (symbolic links followed). Default: the
  workspace's ``data/`` folder (``$RECEXP_HOME/data``) and the bundled samples.
* ``RECEXP_MAX_DECOMPRESSED_MB``: the most bytes (in MB of 2**20 bytes) a gzip file or zip member may
  unpack to; a Parquet file's footer may state this much, or 8 times the file's own size if that is
  more. Default 200, the upload limit: an uncompressed log of that size peaks under 1 GB of memory
  (about 710 MB measured for 190 MB).
* ``RECEXP_MAX_COMPRESSION_RATIO``: the most a compressed file may grow by (unpacked bytes over stored
  bytes) once it has unpacked past :data:`RATIO_FLOOR_BYTES`. Default 100; logs compress 3 to 20 times,
  a decompression bomb a thousand times.

>>> from recexp.data.limits import read_limits
>>> read_limits().max_compression_ratio
100.0
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recexp.data.samples import DATA_DIR
from recexp.data.source import workspace
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _

DATA_ROOT_ENV = "RECEXP_DATA_ROOT"
MAX_DECOMPRESSED_ENV = "RECEXP_MAX_DECOMPRESSED_MB"
MAX_RATIO_ENV = "RECEXP_MAX_COMPRESSION_RATIO"
DEFAULT_MAX_DECOMPRESSED_MB = 200.0
DEFAULT_MAX_RATIO = 100.0
#: The ratio check starts once this many bytes are unpacked (a small file may compress very well).
RATIO_FLOOR_BYTES = 16 << 20
#: A megabyte as these settings (and Streamlit's upload limit) count it: 2**20 bytes.
MB = 1 << 20
#: Kernel file systems whose "files" are live process or device state, never data.
SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


@dataclass(frozen=True)
class ReadLimits:
    """The safe-reading settings in force (see the module docstring for the variables behind them)."""

    data_roots: tuple[Path, ...]        # resolved folders the server-path box may read under
    max_decompressed_bytes: int         # most bytes one compressed file or member may unpack to
    max_compression_ratio: float        # most unpacked bytes per stored byte, past RATIO_FLOOR_BYTES


def _positive(variable: str, default: float) -> float:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InvalidParameterError(
            _("{variable} must be a positive number, but is {text!r}. Fix "
              "or unset it and restart recexp.").format(variable=variable, text=text))
    return value


def read_limits() -> ReadLimits:
    """The settings from the environment (read on every call, so a changed variable takes effect).

    Returns
    -------
    ReadLimits

    Raises
    ------
    InvalidParameterError
        When a variable is set to something that is not a positive number, or RECEXP_DATA_ROOT names no
        folder.
    """
    roots_text = os.environ.get(DATA_ROOT_ENV, "").strip()
    if roots_text:
        roots = [Path(part).expanduser() for part in roots_text.split(os.pathsep) if part.strip()]
        if not roots:
            raise InvalidParameterError(
                _("{data_root_env} names no folder (it is {roots_text!r}). Set it to folders separated by "
                  "'{pathsep}', or unset it to read from the workspace's data folder, and restart recexp.").format(
                  data_root_env=DATA_ROOT_ENV, roots_text=roots_text, pathsep=os.pathsep))
    else:
        roots = [workspace() / "data", DATA_DIR]
    return ReadLimits(
        data_roots=tuple(root.resolve() for root in roots),
        max_decompressed_bytes=int(_positive(MAX_DECOMPRESSED_ENV, DEFAULT_MAX_DECOMPRESSED_MB) * MB),
        max_compression_ratio=_positive(MAX_RATIO_ENV, DEFAULT_MAX_RATIO))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def in_system_folder(path: Path) -> bool:
    """Whether the resolved ``path`` lies in ``/proc``, ``/sys`` or ``/dev`` (live state, never data)."""
    return any(_inside(path, folder) for folder in SYSTEM_FOLDERS)


def confine(path_text: str) -> Path:
    """The resolved path of a file or folder named on the server, refused unless it lies under a data root.

    A relative path is read from the first data root. Symbolic links are followed before the check,
    and every file of a folder is checked too, so a link cannot lead out of the roots. The message of a
    refusal names the roots and never says whether the path exists outside them.

    Parameters
    ----------
    path_text : str
        What the user typed.

    Returns
    -------
    Path
        The resolved path, inside one of :func:`read_limits`'s ``data_roots``.

    Raises
    ------
    InvalidDataError
        When the path (or a file of the folder it names) resolves outside every data root, or into
        ``/proc``, ``/sys`` or ``/dev``.
    """
    roots = read_limits().data_roots
    shown = path_text.strip()
    try:
        typed = Path(shown).expanduser()
        resolved = (typed if typed.is_absolute() else roots[0] / typed).resolve()
        if in_system_folder(resolved) or not any(_inside(resolved, root) for root in roots):
            raise InvalidDataError(
                _("'{shown}' is outside the data folders this server reads from ({value}). Put the file in one "
                  "of them (or upload it), or ask the operator to add its folder to {data_root_env}.").format(
                  shown=shown, value=', '.join(str(root) for root in roots), data_root_env=DATA_ROOT_ENV))
        if resolved.is_dir():
            for member in sorted(resolved.iterdir()):
                target = member.resolve()
                if in_system_folder(target) or not any(_inside(target, root) for root in roots):
                    raise InvalidDataError(
                        _("'{name}' in the folder '{shown}' links outside the data folders this server reads "
                          "from. Copy the file into the folder instead of "
                          "linking it.").format(name=member.name, shown=shown))
    except (OSError, RuntimeError, ValueError) as error:   # unreadable folder, symlink loop, a NUL in the path
        raise InvalidDataError(_("'{shown}' cannot be resolved ({error}). Check "
                                 "the path and its permissions.").format(shown=shown, error=error)) from None
    return resolved
