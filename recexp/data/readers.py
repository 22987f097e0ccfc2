"""Read files, folders and uploads into one Arrow table, reporting every row that could not be read.

What :func:`read_raw` works out by itself:

* **what it was given**: a path to a file, a path to a folder of same-layout files (concatenated in
  name order; hidden files, ``_*`` markers and ``*.md`` are skipped), or a ``(filename, bytes)`` pair
  from an uploader;
* **compression**, from the first bytes rather than the extension: gzip (``1f 8b``) and zip
  (``PK``; every member is read, as for a folder). Both are unpacked as streams, and refused in a
  sentence past the limits of :mod:`recexp.data.limits` (unpacked size, and ratio to the stored size),
  so a decompression bomb is never held in memory; a Parquet file is checked by its footer's sizes;
* **format**: Parquet (``PAR1`` magic), JSON lines (text starting with ``{``) or a JSON array
  (``[``), otherwise delimited text with the delimiter sniffed among ``,``, tab, ``;`` and ``|``;
* **encoding**: UTF-8 (with or without BOM); a file that is not valid UTF-8 throughout is judged
  line by line (:func:`_decide_encoding`): all GBK reads as GB18030 (a superset of GBK), while a file
  mixing UTF-8 and GBK lines, or holding lines that are neither (e.g. Latin-1), is refused with their
  line numbers rather than read as mojibake; ``encoding=`` forces one;
* **header row**: present when the first row holds names (a word above a numeric or date column, or
  a row of known column names); absent otherwise, as in the Taobao file. Without a header the columns
  are named ``c0``, ``c1``, ... by position; an empty header cell becomes ``unnamed_<position>``.

Only regular files and folders are read (FIFOs, devices, sockets and anything under ``/proc``, ``/sys``
or ``/dev`` are refused), and no message quotes a file's content. Which paths the dashboard may read
at all is :func:`recexp.data.limits.confine`'s business.

Rows with the wrong number of fields are not fatal: they are dropped and counted per reason (e.g.
``"truncated row (4 of 5 fields)"``). Feature tables may ask for ragged rows to be padded instead
(``pad_rows=True``): missing trailing fields are read as empty, as the raw Criteo files need.
Delimited text is parsed by pyarrow's multithreaded CSV reader; Python's ``csv`` module is only
used for padding ragged rows and ``json`` only for JSON that pyarrow rejects.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import mmap
import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from itertools import islice
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from recexp.data.limits import (
    MAX_DECOMPRESSED_ENV, MAX_RATIO_ENV, MB, RATIO_FLOOR_BYTES, ReadLimits, in_system_folder, read_limits,
)
from recexp.data.mapping import normalise_name
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import N_, _, format_integer, localized, ngettext

Progress = Callable[[float, str], None]

SNIFF_BYTES = 1 << 20          # bytes of (decompressed) text looked at to sniff encoding, delimiter, header
SNIFF_LINES = 200
SNIFF_LINE_CHARS = 65536       # longer lines are left out of sniffing (they are read all the same)
DELIMITERS = (",", "\t", ";", "|")
MAX_ZIP_MEMBERS = 1000         # files read from one zip archive (each is opened on its own)
BLOCK_SIZE = 4 << 20           # pyarrow CSV block size (larger blocks parse faster on big files)
NULL_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})
_NULL_VALUES = sorted(NULL_MARKERS | {m.upper() for m in NULL_MARKERS} | {"NaN", "N/A", "NA", "Null", "None"})
_GZIP, _ZIP, _PARQUET = b"\x1f\x8b", b"PK\x03\x04", b"PAR1"
_SKIPPED_SUFFIXES = {".md", ".crc"}
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$")


@dataclass
class RawRead:
    """What :func:`read_raw` returns: the table as read plus what happened while reading."""

    table: pa.Table
    rows_read: int                                       # data rows seen (kept + dropped by the parser)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows the parser dropped
    warnings: list[str] = field(default_factory=list)
    read_as: str = ""                                    # e.g. "CSV, utf-8, comma-separated, no header row"
    name: str = ""                                       # display name of the source
    header: bool | None = None                           # None for self-describing formats


@dataclass
class _Blob:
    """One file's bytes: on disk (``path``), in memory (``data``) or a member of a zip archive (``member``)."""

    name: str
    size: int                                   # stored bytes (compressed size for a zip member)
    path: Path | None = None
    data: bytes | None = None
    member: tuple[_Blob, str] | None = None     # (the archive, the member's name), streamed on open

    def open(self) -> BinaryIO:
        if self.member is not None:
            archive_blob, member_name = self.member
            archive = zipfile.ZipFile(str(archive_blob.path) if archive_blob.path is not None
                                      else archive_blob.open())
            stream = archive.open(member_name)
            archive.close()                     # the member stream keeps the file open until it is closed
            return stream
        return open(self.path, "rb") if self.path is not None else io.BytesIO(self.data)

    def head(self, n: int) -> bytes:
        with self.open() as handle:
            return handle.read(n)


class _Unpacked(io.RawIOBase):
    """A decompressing stream that refuses, in a sentence, to unpack past the configured limits.

    The limits (:mod:`recexp.data.limits`) bound the unpacked bytes and, past
    :data:`~recexp.data.limits.RATIO_FLOOR_BYTES`, their ratio to the stored bytes, so a
    decompression bomb is stopped after reading at most the limit, never held in memory whole.
    """

    def __init__(self, stream: BinaryIO, closers: list[BinaryIO], name: str, stored: int, limits: ReadLimits):
        super().__init__()
        self.stream, self.closers, self.name, self.stored, self.limits = stream, closers, name, stored, limits
        self.unpacked = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        self.unpacked += len(data)
        _check_unpacked(self.name, self.unpacked, self.stored, self.limits)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            for stream in self.closers:
                stream.close()
        super().close()


@dataclass
class _TextLayout:
    """How a delimited text file is laid out, as sniffed from its first lines."""

    encoding: str
    delimiter: str
    header: bool
    names: list[str]
    quoted: bool = False          # quotes seen in data rows: values may hold line breaks (slower parsing)
    types: dict[str, pa.DataType] | None = None   # column types inferred from the sniffed sample


# --- sources ----------------------------------------------------------------------------------------


def _check_unpacked(name: str, unpacked: int, stored: int, limits: ReadLimits) -> None:
    """Refuse, in a sentence, a compressed file that unpacks (or says it unpacks) past the limits."""
    limit = limits.max_decompressed_bytes
    if unpacked > limit or (unpacked > RATIO_FLOOR_BYTES and unpacked > limits.max_compression_ratio * stored):
        what = (f"more than {limit / MB:,.0f} MB" if unpacked > limit
                else f"more than {limits.max_compression_ratio:,.0f} times its stored {stored / MB:,.1f} MB")
        raise InvalidDataError(
            _("'{name}' unpacks to {what}, past the limit for compressed files (a file that grows this much is a "
              "decompression bomb or too large to read here). Open it uncompressed by its path on the server, or "
              "ask the operator to raise {max_decompressed_env} / {max_ratio_env}.").format(
              name=name, what=what, max_decompressed_env=MAX_DECOMPRESSED_ENV, max_ratio_env=MAX_RATIO_ENV))


def _regular_file(path: Path, shown: str) -> os.stat_result:
    """``path``'s status, refused in a sentence unless it is a regular file or a folder outside /proc, /sys, /dev."""
    if in_system_folder(path.resolve()):
        raise InvalidDataError(
            _("'{shown}' is in /proc, /sys or /dev: live system state, not a data file. Give the path of a data "
              "file or folder.").format(shown=shown))
    try:
        status = path.stat()
    except OSError as error:
        raise InvalidDataError(_("'{shown}' cannot be read "
                                 "({strerror}). Check the path and its permissions.").format(shown=shown, strerror=error.strerror)) from None
    if not (stat.S_ISREG(status.st_mode) or stat.S_ISDIR(status.st_mode)):
        raise InvalidDataError(
            _("'{shown}' is a {st_mode}, not a regular file: reading it could block or never end. Give the path "
              "of a data file or folder.").format(
              shown=shown, st_mode=_special_kind(status.st_mode)))
    return status


def _special_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def _resolve(source: Any) -> tuple[str, list[_Blob]]:
    """Display name and the files behind ``source`` (a path, a folder, or a (filename, bytes) pair)."""
    if isinstance(source, tuple):
        if len(source) != 2 or not isinstance(source[1], (bytes, bytearray, memoryview)):
            raise InvalidDataError(
                _("An uploaded source must be a (filename, bytes) pair, but got a tuple of {n_source} items. "
                  "Pass the uploader's name and getvalue().").format(n_source=len(source)))
        name, data = str(source[0]), bytes(source[1])
        return name, [_Blob(name, len(data), data=data)]
    if not isinstance(source, (str, Path)):
        raise InvalidDataError(
            _("A source must be a path or a (filename, bytes) pair, but got {name}. Pass the path of a file or "
              "folder.").format(name=type(source).__name__))
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidDataError(
            _("There is no file or folder at '{path}'. Check the path; "
              "relative paths are read from {path2}.").format(path=path, path2=Path.cwd()))
    status = _regular_file(path, str(path))
    if stat.S_ISREG(status.st_mode):
        return path.name, [_Blob(path.name, status.st_size, path=path)]
    try:
        entries = sorted(path.iterdir())
    except OSError as error:
        raise InvalidDataError(_("The folder '{path}' cannot be "
                                 "listed ({strerror}). Check its permissions.").format(path=path, strerror=error.strerror)) from None
    files = []
    for entry in entries:
        if entry.name.startswith((".", "_")) or entry.suffix.lower() in _SKIPPED_SUFFIXES \
                or entry.name.lower().startswith("readme") or entry.is_dir():
            continue
        files.append(_Blob(entry.name, _regular_file(entry, f"{path.name}/{entry.name}").st_size, path=entry))
    if not files:
        raise InvalidDataError(
            _("The folder '{path}' holds no data files. Put CSV, TSV, Parquet or JSON lines files of the same "
              "layout in it.").format(path=path))
    return path.name + "/", files


def _expand_archives(blob: _Blob) -> list[tuple[_Blob, str | None]]:
    """``(blob, compression)`` pairs: zip archives become their (streamed) members, gzip is flagged."""
    head = _guarded(blob.name, lambda: blob.head(4))
    if head.startswith(_GZIP):       # capped as it unpacks (its stated size is unreliable: modulo 4 GiB, per member)
        return [(blob, "gzip")]
    if not head.startswith(_ZIP):
        return [(blob, None)]
    try:
        with zipfile.ZipFile(str(blob.path) if blob.path is not None else blob.open()) as archive:
            members = [m for m in archive.infolist()
                       if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                       and not Path(m.filename).name.startswith(".")]
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as error:
        raise InvalidDataError(
            _("'{name}' starts like a zip archive but cannot be opened ({error}). Re-create the archive or "
              "upload the file uncompressed.").format(name=blob.name, error=error)) from error
    if not members:
        raise InvalidDataError(_("The zip archive '{name}' is empty. Put the data file(s) "
                                 "in it.").format(name=blob.name))
    if len(members) > MAX_ZIP_MEMBERS:
        raise InvalidDataError(
            _("The zip archive '{name}' holds {n_members:,} files, more than the {max_zip_members:,} recexp "
              "reads from one archive. Put the data in fewer, larger files.").format(
              name=blob.name, n_members=len(members), max_zip_members=MAX_ZIP_MEMBERS))
    expanded: list[tuple[_Blob, str | None]] = []
    for member in members:      # the stated sizes are only a hint: each member is capped as it unpacks
        _check_unpacked(f"{blob.name}:{member.filename}", member.file_size, member.compress_size, read_limits())
        expanded.extend(_expand_archives(_Blob(f"{blob.name}:{member.filename}", member.compress_size,
                                               member=(blob, member.filename))))
    return expanded


def _guarded(name: str, read: Callable[[], Any]) -> Any:
    """``read()``, with a damaged compressed stream or an unreadable file turned into a sentence."""
    try:
        return read()
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise InvalidDataError(
            _("'{name}' cannot be read to its end: the file or its compressed (gzip or zip) data is damaged or "
              "cut short ({name2}). Check the file is complete, or "
              "upload it uncompressed.").format(name=name, name2=type(error).__name__)) from None


def _is_plain(blob: _Blob, compression: str | None) -> bool:
    """Whether the bytes are read as they are stored: not compressed and not a member of a zip archive."""
    return compression is None and blob.member is None


def _native_source(blob: _Blob):
    """A plain blob as pyarrow reads it fastest: its path on disk, or a buffer over its bytes in memory."""
    return str(blob.path) if blob.path is not None else pa.BufferReader(blob.data)


def _binary(blob: _Blob, compression: str | None) -> BinaryIO:
    """A Python binary stream of the (decompressed, size-capped) bytes."""
    raw = blob.open()
    if _is_plain(blob, compression):
        return raw
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if compression == "gzip" else raw
    return io.BufferedReader(_Unpacked(stream, [stream, raw], blob.name, blob.size, read_limits()), 1 << 20)


@contextmanager
def _input(blob: _Blob, compression: str | None):
    """Something pyarrow readers accept: a path or buffer (fast, native) or a capped Python stream."""
    if _is_plain(blob, compression):
        yield _native_source(blob)
        return
    with _binary(blob, compression) as stream:
        yield pa.PythonFile(stream, mode="r")


def _head(blob: _Blob, compression: str | None) -> bytes:
    def read() -> bytes:
        with _binary(blob, compression) as handle:
            return handle.read(SNIFF_BYTES)
    return _guarded(blob.name, read)


# --- sniffing ---------------------------------------------------------------------------------------


def _decode_head(blob: _Blob, compression: str | None, head: bytes, complete: bool,
                 encoding: str | None) -> tuple[str, str]:
    """Decoded sniffing text and its encoding: ``encoding`` when named, else UTF-8 or, on the evidence of
    every line (:func:`_decide_encoding`), GB18030."""
    if b"\x00" in head[:65536] or _control_share(head) > 0.01:
        raise _not_text(blob.name, head)
    if encoding:
        try:
            return codecs.getincrementaldecoder(encoding)().decode(head, final=complete), encoding
        except LookupError as error:
            raise InvalidParameterError(
                _("encoding must be a codec Python knows (e.g. 'utf-8', 'gbk', 'gb18030', 'latin-1'), but got "
                  "{encoding!r}. Leave it empty to detect UTF-8 or GBK.").format(encoding=encoding)) from error
        except UnicodeDecodeError:
            raise InvalidDataError(
                _("'{name}' is not valid {encoding} text. Leave the encoding empty to detect UTF-8 or GBK, or "
                  "name the file's real encoding.").format(name=blob.name, encoding=encoding)) from None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=complete), "utf-8"
    except UnicodeDecodeError:
        decided = _decide_encoding(blob, compression)   # GB18030, or a sentence saying what the text is
        return codecs.getincrementaldecoder(decided)().decode(head, final=complete), decided


def _control_share(head: bytes) -> float:
    """Share of control bytes (other than tab, line feed, carriage return) in the first 64 KiB."""
    sample = head[:65536]
    return len(_CONTROL_BYTES.findall(sample)) / max(len(sample), 1)


@dataclass
class _Lines:
    """How many lines of a file are of one kind, and the numbers (1-based) of the first few, for messages."""

    count: int = 0
    first: list[int] = field(default_factory=list)

    def add(self, numbers: Iterable[int], count: int) -> None:
        self.count += count
        self.first.extend(islice(numbers, max(0, 5 - len(self.first))))


def _line_encodings(blob: _Blob, compression: str | None) -> dict[str, _Lines]:
    """The non-ASCII lines of a file, by what decodes them: ``utf-8``, ``gbk`` or ``other``.

    A line that is valid UTF-8 counts as UTF-8. A line that is not, and decodes as GB18030, counts as
    GBK when at least half its high bytes sit next to another high byte (a GBK character is two of
    them); anything else is ``other`` (e.g. Latin-1, whose accented letters are single high bytes
    between ASCII letters). The file is streamed in blocks, each judged whole where it can be (all
    UTF-8, or all GBK) and line by line otherwise; a line longer than the longest row recexp reads is
    refused (:func:`_long_row`).
    """
    found = {kind: _Lines() for kind in ("utf-8", "gbk", "other")}
    lines_before, rest = 0, b""
    with _binary(blob, compression) as stream:
        while True:
            block = _guarded(blob.name, lambda: stream.read(BLOCK_SIZE))
            chunk = rest + block
            cut = chunk.rfind(b"\n") + 1 if block else len(chunk)
            chunk, rest = chunk[:cut], chunk[cut:]
            if len(rest) > BLOCK_SIZE:
                raise _long_row(blob.name, lines_before + 1)
            if not chunk.isascii():
                _block_encodings(chunk, lines_before + 1, found)
            lines_before += chunk.count(b"\n")
            if not block:
                return found


def _block_encodings(chunk: bytes, first_line: int, found: dict[str, _Lines]) -> None:
    """Add the non-ASCII lines of ``chunk`` (whole lines, the first numbered ``first_line``) to ``found``."""
    data = np.frombuffer(chunk, np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(data[:-1] == 10) + 1])     # where each line begins
    non_ascii = np.maximum.reduceat(data >= 0x80, starts)
    try:
        chunk.decode("utf-8")
        not_utf8 = np.zeros_like(non_ascii)
    except UnicodeDecodeError:
        not_utf8 = np.maximum.reduceat(_not_utf8(data), starts)
        if not not_utf8.any():       # only forms the fast check lets through (e.g. encoded surrogates)
            lines = chunk.split(b"\n")
            not_utf8 = np.array([bool(flag) and not _decodes(lines[i], "utf-8") for i, flag in enumerate(non_ascii)])
    utf8_lines, other_lines = np.flatnonzero(non_ascii & ~not_utf8), np.flatnonzero(not_utf8)
    found["utf-8"].add((first_line + int(i) for i in utf8_lines), len(utf8_lines))
    if not len(other_lines):
        return
    if not len(utf8_lines) and _gbk_like(chunk):
        found["gbk"].add((first_line + int(i) for i in other_lines), len(other_lines))
        return
    lines = chunk.split(b"\n")                       # mixed, or not all GBK: judge those lines one by one
    for i in other_lines:
        found["gbk" if _gbk_like(lines[i]) else "other"].add([first_line + int(i)], 1)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _not_utf8(data: np.ndarray) -> np.ndarray:
    """Which bytes break UTF-8's structure: a lead byte without its continuation bytes, a stray continuation
    byte, or a byte UTF-8 never uses (overlong and surrogate forms are not told apart: GBK never passes)."""
    high = data >= 0x80
    continuation = (data & 0xC0) == 0x80
    needs = np.select([(data >= 0xC2) & (data <= 0xDF), (data >= 0xE0) & (data <= 0xEF),
                       (data >= 0xF0) & (data <= 0xF4)], [1, 2, 3], 0)
    claimed = np.zeros(len(data), bool)
    for k in (1, 2, 3):
        claimed[k:] |= needs[:-k] >= k
    return (high & ~continuation & (needs == 0)) | (continuation != claimed)


def _gbk_like(data: bytes) -> bool:
    """Whether ``data`` decodes as GB18030 with at least half its high bytes next to another: GBK's characters
    are two high bytes, Latin-1's accented letters one between ASCII letters."""
    if not _decodes(data, "gb18030"):
        return False
    high = np.frombuffer(data, np.uint8) >= 0x80
    neighbour = np.zeros_like(high)
    neighbour[1:] |= high[:-1]
    neighbour[:-1] |= high[1:]
    return 2 * int((high & neighbour).sum()) >= int(high.sum())


def _decide_encoding(blob: _Blob, compression: str | None) -> str:
    """``"gb18030"`` (or ``"utf-8"``) for a text file that is not UTF-8 throughout, decided on every line.

    Raises
    ------
    InvalidDataError
        When the file mixes UTF-8 and GBK lines (decoding it either way would garble the other half), or
        holds lines that are neither (a single-byte encoding such as Latin-1); the message gives line numbers.
    """
    found = _line_encodings(blob, compression)
    utf8, gbk, other = found["utf-8"].count, found["gbk"].count, found["other"].count

    def lines(kind: _Lines, what: str) -> str:
        one = kind.count == 1
        shown = ", ".join(f"{n:,}" for n in kind.first) + (", ..." if kind.count > len(kind.first) else "")
        return (f"{kind.count:,} line{'' if one else 's'} (line{'' if one else 's'} {shown}) "
                f"{'is' if one else 'are'} {what}")

    if other:
        others = lines(found["other"], _("neither UTF-8 nor GBK: the text looks like a single-byte encoding such "
                                         "as Latin-1 or Windows-1252"))
        if utf8 or gbk:
            known = " and ".join(lines(found[kind], name) for kind, name in (("utf-8", "UTF-8"), ("gbk", "GBK"))
                                 if found[kind].count)
            raise InvalidDataError(
                _("'{name}' mixes text encodings: {known}, while {others}. Save the whole file in one encoding "
                  "(UTF-8) and open it again.").format(
                  name=blob.name, known=known, others=others))
        raise InvalidDataError(
            _("'{name}' is text, but not UTF-8 or GBK: {others}. Save it as UTF-8, or name its encoding (e.g. "
              "latin-1; command line: --encoding latin-1).").format(name=blob.name, others=others))
    if utf8 and gbk:
        raise InvalidDataError(
            _("'{name}' mixes text encodings: {found} and {gbk}; read as either one, the other's text would be "
              "garbled (e.g. 浏览 read as 娴忚). Save the whole file in one encoding (UTF-8) and open it again.").format(
              name=blob.name, found=lines(found['utf-8'], 'UTF-8'), gbk=lines(found['gbk'], 'GBK')))
    return "gb18030" if gbk else "utf-8"


def _refuse_long_rows(blob: _Blob, compression: str | None) -> None:
    """Refuse a plain file (on disk or in memory, not compressed) holding a line longer than the longest row recexp reads.

    pyarrow refuses such a row as well ("straddling object"), but its reader threads can still be
    running then, and the process may abort as it exits (``terminate called without an active
    exception``); so the row is refused before pyarrow starts. The check jumps from block to block,
    looking back from each block's end for its last line break, so it touches a few pages per block,
    not the whole file. Compressed files are read through a Python stream, which did not abort.
    """
    if not _is_plain(blob, compression):
        return
    if blob.path is None:
        _check_line_lengths(blob.name, blob.data or b"")
        return
    if blob.size == 0:
        return
    with open(blob.path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        _check_line_lengths(blob.name, mapped)


def _check_line_lengths(name: str, data: bytes | mmap.mmap) -> None:
    start = 0
    while len(data) - start > BLOCK_SIZE:
        last = data.rfind(b"\n", start, start + BLOCK_SIZE)
        if last < 0:
            lines_before = sum(data[at:min(at + BLOCK_SIZE, start)].count(b"\n")
                               for at in range(0, start, BLOCK_SIZE))
            raise _long_row(name, lines_before + 1)
        start = last + 1


def _long_row(name: str, line: int | None = None) -> InvalidDataError:
    where = (_("Line {line:,} of '{name}'").format(line=line, name=name) if line is not None
             else _("A row of '{name}'").format(name=name))
    return InvalidDataError(
        _("{where} is too long to read: recexp reads rows of up to {block_size} MB (a field that large is "
          "usually a missing closing quote or line break). Fix "
          "or drop that row.").format(where=where, block_size=BLOCK_SIZE >> 20))


_MAGIC = (
    (b"\x89PNG", N_("a PNG image")), (b"\xff\xd8\xff", N_("a JPEG image")), (b"GIF8", N_("a GIF image")),
    (b"%PDF", N_("a PDF document")), (b"\x7fELF", N_("a program (ELF executable)")), (b"BZh", N_("a bzip2 archive")),
    (b"\xfd7zXZ\x00", N_("an xz archive")), (b"7z\xbc\xaf", N_("a 7-Zip archive")), (b"\x28\xb5\x2f\xfd", N_("a zstd archive")),
    (b"\xd0\xcf\x11\xe0", N_("an old Office document (e.g. .xls)")), (b"SQLite format 3\x00", N_("an SQLite database")),
    (b"ARROW1", N_("an Arrow/Feather file")), (b"\xff\xfe", N_("UTF-16 text")), (b"\xfe\xff", N_("UTF-16 text")),
)


def _not_text(name: str, head: bytes) -> InvalidDataError:
    """The refusal of a file that is not a data file recexp reads, saying what it looks like instead."""
    what = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if what is None and len(head) >= 2 and head[1::2].count(0) > len(head) // 4:
        what = N_("UTF-16 text")
    what = _(what or N_("binary data"))
    return InvalidDataError(
        _("'{name}' does not look like a data file: it is {what}, not text (UTF-8 or GBK), Parquet, nor a gzip "
          "or zip archive of them. Export the data as CSV (UTF-8), TSV, Parquet or "
          "JSON lines.").format(name=name, what=what))


def _value_class(value: str) -> str:
    """'empty', 'number', 'date' or 'text': the coarse type of one raw cell."""
    stripped = value.strip()
    if stripped.lower() in NULL_MARKERS:
        return "empty"
    if _NUMBER.match(stripped):
        return "number"
    if _DATE.match(stripped):
        return "date"
    return "text"


def _csv_rows(lines: list[str], delimiter: str) -> list[list[str]] | None:
    """The sniffed lines split by Python's csv module; ``None`` when it refuses them (a value over its field
    limit, as an unclosed quote makes)."""
    try:
        return list(csv.reader(lines, delimiter=delimiter))
    except csv.Error:
        return None


def _sniff_delimiter(lines: list[str], name: str) -> str | None:
    """The delimiter that splits (nearly) every line into the most consistent number of fields."""
    best: tuple[float, int, int] | None = None
    choice = None
    preferred = "\t" if name.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else ","
    for delimiter in DELIMITERS:
        rows = _csv_rows(lines, delimiter)
        counts = [len(row) for row in rows or []]
        if not counts:
            continue
        multi = sum(c > 1 for c in counts) / len(counts)
        mode, frequency = Counter(counts).most_common(1)[0]
        if multi < 0.9 or mode < 2:
            continue
        score = (round(frequency / len(counts), 1), mode, delimiter == preferred)
        if best is None or score > best:
            best, choice = score, delimiter
    return choice


def _detect_header(rows: list[list[str]], known_names: frozenset[str]) -> bool:
    """Whether the first row holds column names rather than values.

    A header when (1) a word sits above a column whose other cells are numbers or dates, or (2) the
    first row is all words, none repeated below it, and one of them is a known column name.
    """
    first, rest = rows[0], rows[1:]
    first_classes = [_value_class(v) for v in first]
    for j, value in enumerate(first):
        column = [r[j] for r in rest if j < len(r)]
        classes = Counter(c for c in map(_value_class, column) if c != "empty")
        if not classes:
            continue
        dominant, count = classes.most_common(1)[0]
        if dominant in ("number", "date") and count / sum(classes.values()) >= 0.9 and first_classes[j] == "text":
            return True
    if not all(c == "text" for c in first_classes):
        return False
    for j, value in enumerate(first):
        if value in {r[j] for r in rest if j < len(r)}:
            return False
    return bool({normalise_name(v) for v in first} & known_names) or not rest


def _column_names(first_row: list[str]) -> list[str]:
    """Header cells as unique, non-empty column names."""
    names: list[str] = []
    for position, raw in enumerate(first_row):
        name = raw.strip() or f"unnamed_{position}"
        base, suffix = name, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def _sniff_text(blob: _Blob, text: str, complete: bool, encoding: str, header: bool | None,
                known_names: frozenset[str]) -> _TextLayout:
    lines: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip():
            lines.append(line)
            if len(lines) > SNIFF_LINES:
                break
    else:
        if not complete and len(lines) > 1:
            lines = lines[:-1]      # the last line of a cut-off sample may be partial
        elif not complete and lines:
            raise InvalidDataError(
                _("The first line of '{name}' is over {sniff_bytes} MB long: recexp works out a file's layout "
                  "from its first lines, and this one does not end within the first MB (usually a missing line "
                  "break or closing quote). Fix or drop that row.").format(
                  name=blob.name, sniff_bytes=SNIFF_BYTES >> 20))
    lines = lines[:SNIFF_LINES]
    if not lines:
        raise InvalidDataError(_("'{name}' is empty: it has no rows. Choose a file with "
                                 "data rows.").format(name=blob.name))
    # Lines with a huge field say nothing about the layout (and overflow the csv module's field limit);
    # pyarrow reads them all the same.
    lines = [line for line in lines if len(line) <= SNIFF_LINE_CHARS] or lines[:1]
    delimiter = _sniff_delimiter(lines, blob.name)
    if delimiter is None:
        raise InvalidDataError(
            ngettext("'{name}' was read as a single column: none of comma, tab, semicolon or pipe splits its "
                     "first {n_lines:,} line into fields. Save it with one of those delimiters.",
                     "'{name}' was read as a single column: none of comma, tab, semicolon or pipe splits its "
                     "first {n_lines:,} lines into fields. Save it with one of those delimiters.",
                     len(lines)).format(name=blob.name, n_lines=len(lines)))
    rows = _csv_rows(lines, delimiter)
    if rows is None:
        raise InvalidDataError(
            _("The first lines of '{name}' cannot be split into fields: a double quote opens a value that does "
              "not close. Close the quote, or save the file without quoting.").format(name=blob.name))
    has_header = _detect_header(rows, known_names) if header is None else bool(header)
    if has_header:
        names = _column_names(rows[0])
    else:
        width = Counter(len(r) for r in rows).most_common(1)[0][0]
        names = [f"c{i}" for i in range(width)]
    # Quote-aware parsing (values may hold line breaks) is much slower; a quoted header alone, as
    # pandas writes it, does not need it.
    body = text.lstrip("\ufeff").split("\n", 1)[-1] if has_header else text
    return _TextLayout(encoding=encoding, delimiter=delimiter, header=has_header, names=names, quoted='"' in body)


# --- readers ----------------------------------------------------------------------------------------


class _NeedsPadding(Exception):
    """Raised out of pyarrow's row handler when a short row must be padded, not dropped."""


def _field_reason(actual: int, expected: int) -> str:
    """Why pyarrow (in its own thread, so in English) dropped a row: a marked text the page shows localized."""
    if actual < expected:
        return _("truncated row ({actual} of {expected} fields)").format(actual=actual, expected=expected)
    return _("row with too many fields ({actual} of {expected})").format(actual=actual, expected=expected)


def _read_delimited(blob: _Blob, compression: str | None, layout: _TextLayout, *, all_strings: bool,
                    pad_rows: bool) -> tuple[pa.Table, Counter]:
    """pyarrow's CSV reader with a row handler that counts rows of the wrong width."""
    dropped: Counter = Counter()
    short_rows = []

    def on_invalid_row(row) -> str:
        if pad_rows and row.actual_columns < row.expected_columns:
            short_rows.append(row.actual_columns)
            return "error"
        dropped[_field_reason(row.actual_columns, row.expected_columns)] += 1
        return "skip"

    read_options = pa_csv.ReadOptions(
        column_names=layout.names, skip_rows=1 if layout.header else 0, block_size=BLOCK_SIZE,
        encoding=layout.encoding if layout.encoding != "utf-8" else "utf8")
    parse_options = pa_csv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=on_invalid_row,
                                        newlines_in_values=layout.quoted)
    types = {n: pa.string() for n in layout.names} if all_strings else layout.types
    try:
        # The system allocator: with pyarrow's default (mimalloc) the kernel time of a large read was
        # about three times higher here (memory returned to and taken back from the OS block by block).
        with _input(blob, compression) as source:
            table = pa_csv.read_csv(source, read_options=read_options, parse_options=parse_options,
                                    convert_options=_convert_options(types, all_strings),
                                    memory_pool=pa.system_memory_pool())
    except pa.ArrowInvalid as error:
        if short_rows:
            raise _NeedsPadding() from error
        raise
    return table, dropped


def _convert_options(types: dict[str, pa.DataType] | None, all_strings: bool) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=_NULL_VALUES, column_types=types,
        auto_dict_encode=not all_strings)     # low-cardinality text (behaviours) arrives dictionary-encoded


def _sample_types(text: str, complete: bool, layout: _TextLayout) -> dict[str, pa.DataType] | None:
    """Column types pyarrow infers from the sniffed sample, to state up front for the full read.

    Stating the types spares the reader its per-block type inference (about a third of its time on a
    large log). pyarrow infers from the first block anyway, so a later value that breaks a type fails
    either way; :func:`_read_one` then reads again without stated types. Columns empty in the sample
    are left to the reader.
    """
    if not complete:
        text = text[:text.rfind("\n") + 1]       # the sample's last line may be cut off
    try:
        sample = pa_csv.read_csv(
            pa.BufferReader(text.lstrip("\ufeff").encode("utf-8")),
            read_options=pa_csv.ReadOptions(column_names=layout.names, skip_rows=1 if layout.header else 0,
                                            use_threads=False),
            parse_options=pa_csv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=lambda row: "skip",
                                              newlines_in_values=layout.quoted),
            convert_options=_convert_options(None, all_strings=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if sample.num_rows == 0:
        return None
    return {f.name: f.type for f in sample.schema if not pa.types.is_null(f.type)} or None


def _read_delimited_padded(blob: _Blob, compression: str | None, layout: _TextLayout) -> tuple[pa.Table, Counter, int]:
    """Python ``csv`` reader that pads short rows with empty fields; returns table, drops, padded rows."""
    encoding = "utf-8-sig" if layout.encoding == "utf-8" else layout.encoding
    with io.TextIOWrapper(_binary(blob, compression), encoding=encoding, newline="") as text:
        reader = csv.reader(text, delimiter=layout.delimiter)
        try:
            rows = [row for row in reader if row and any(row)]
        except csv.Error as error:
            raise InvalidDataError(
                _("Line {line_num:,} of '{name}' cannot be read as delimited text ({error}). Shorten that field, "
                  "or close the double quote it opens.").format(
                  line_num=reader.line_num, name=blob.name, error=error)) from None
        except UnicodeDecodeError:
            raise InvalidDataError(
                _("'{name}' is not valid {encoding} text past line {line_num:,}. Name the file's real encoding, "
                  "or save it as UTF-8.").format(
                  name=blob.name, encoding=layout.encoding, line_num=reader.line_num)) from None
    if layout.header:
        rows = rows[1:]
        names = layout.names
    else:
        width = max((len(r) for r in rows), default=len(layout.names))
        names = [f"c{i}" for i in range(width)]
    width = len(names)
    dropped: Counter = Counter()
    kept, padded = [], 0
    for row in rows:
        if len(row) > width:
            dropped[_field_reason(len(row), width)] += 1
            continue
        if len(row) < width:
            padded += 1
            row = row + [""] * (width - len(row))
        kept.append([None if v.strip().lower() in NULL_MARKERS else v for v in row])
    columns = list(zip(*kept)) if kept else [()] * width
    table = pa.table({n: pa.array(list(c), pa.string()) for n, c in zip(names, columns)})
    layout.names = names
    return table, dropped, padded


def _json_scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_json(blob: _Blob, compression: str | None, encoding: str, text_head: str,
               automatic: bool) -> tuple[pa.Table, Counter, int]:
    """JSON lines via pyarrow; a JSON array, or lines pyarrow rejects, via Python's json module.

    ``automatic``: the encoding was detected, not named, so text past the sniffed head that is not
    UTF-8 is judged by :func:`_decide_encoding`.
    """
    if not text_head.lstrip("\ufeff \t\r\n").startswith("[") and encoding == "utf-8":
        try:
            with _input(blob, compression) as source:
                table = pa_json.read_json(source,
                                          parse_options=pa_json.ParseOptions(unexpected_field_behavior="infer"))
            return table, Counter(), table.num_rows
        except pa.ArrowInvalid:
            pass  # malformed lines or mixed types: read line by line below
    with _binary(blob, compression) as handle:
        content = handle.read()
    try:
        text = content.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError:
        if not automatic or encoding != "utf-8":
            raise InvalidDataError(_("'{name}' is not valid {encoding} text throughout. Name the file's real "
                                     "encoding, or save it as UTF-8.").format(name=blob.name, encoding=encoding)) from None
        text = content.decode(_decide_encoding(blob, compression))
    dropped: Counter = Counter()
    records: list[dict] = []
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise InvalidDataError(_("'{name}' starts like a JSON array but is not valid JSON ({error}). Export "
                                     "it as JSON lines (one object per line) "
                                     "or CSV.").format(name=blob.name, error=error)) from error
        lines_read = len(items)
        for item in items:
            if isinstance(item, dict):
                records.append(item)
            else:
                dropped[_("array item is not a JSON object")] += 1
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        lines_read = len(lines)
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                dropped[_("line is not valid JSON")] += 1
                continue
            if isinstance(item, dict):
                records.append(item)
            else:
                dropped[_("line is not a JSON object")] += 1
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    table = pa.table({n: pa.array([_json_scalar(r.get(n)) for r in records], pa.string()) for n in names})
    return table, dropped, lines_read


def _read_one(blob: _Blob, compression: str | None, *, header: bool | None, encoding: str | None,
              all_strings: bool, pad_rows: bool, known_names: frozenset[str]) -> RawRead:
    head = _head(blob, compression)
    if head.startswith(_PARQUET):
        try:
            if _is_plain(blob, compression):
                source = _native_source(blob)
            else:                           # Parquet needs random access: unpack it (capped) into memory
                with _binary(blob, compression) as stream:
                    source = pa.BufferReader(stream.read())
            # Its columns are compressed and run-length encoded too: before unpacking them, check the size
            # its footer states (at least 8 bytes a cell, as an Arrow table takes).
            metadata = pq.read_metadata(source)
            stated = max(sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)),
                         8 * metadata.num_rows * metadata.num_columns)
            limits = read_limits()
            _check_unpacked(blob.name, stated, blob.size,
                            replace(limits, max_decompressed_bytes=max(limits.max_decompressed_bytes, 8 * blob.size)))
            table = pq.read_table(source)
        except (pa.ArrowInvalid, OSError) as error:
            raise InvalidDataError(_("'{name}' starts like Parquet but cannot be read ({error}). Write it again, "
                                     "or export it as CSV.").format(name=blob.name, error=error)) from error
        return RawRead(table, table.num_rows, read_as=_describe("Parquet", compression), name=blob.name)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InvalidDataError(_("'{name}' is empty: it has no rows. Choose a file with "
                                 "data rows.").format(name=blob.name))
    complete = len(head) < SNIFF_BYTES
    text, detected = _decode_head(blob, compression, head, complete, encoding)
    if text.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
        _refuse_long_rows(blob, compression)
        table, dropped, rows_read = _read_json(blob, compression, detected, text, automatic=encoding is None)
        return RawRead(table, rows_read, dict(dropped), read_as=_describe("JSON", compression, detected),
                       name=blob.name)
    layout = _sniff_text(blob, text, complete, detected, header, known_names)
    _refuse_long_rows(blob, compression)
    if not all_strings:
        layout.types = _sample_types(text, complete, layout)
    warnings: list[str] = []
    padded = 0
    while True:   # each retry below changes one setting for good, so this ends after at most three reads
        try:
            table, dropped = _read_delimited(blob, compression, layout, all_strings=all_strings, pad_rows=pad_rows)
        except _NeedsPadding:
            table, dropped, padded = _read_delimited_padded(blob, compression, layout)
            break
        except pa.ArrowInvalid as error:
            message = str(error)
            if "conversion error" in message.lower() and layout.types:
                layout.types = None         # a later row broke a type seen in the sample: let pyarrow infer
                continue
            if "conversion error" in message.lower() and not all_strings:
                all_strings = True          # a later block broke the inferred type: read text, convert later
                continue
            if "invalid utf8" in message.lower() and encoding is None and layout.encoding == "utf-8":
                layout.encoding = _decide_encoding(blob, compression)   # invalid UTF-8 past the sniffed sample
                if layout.encoding != "utf-8":
                    continue
            if "straddling object" in message:
                raise _long_row(blob.name) from None
            raise InvalidDataError(_("'{name}' could not be parsed as {delimiter_names}-separated text: "
                                     "{message}. Check the delimiter and quoting.").format(
                                     name=blob.name, delimiter_names=_DELIMITER_NAMES[layout.delimiter],
                                     message=_without_content(message))) from None
        if encoding is None and layout.encoding == "utf-8" and any(
                pa.types.is_binary(t.value_type if pa.types.is_dictionary(t) else t) for t in table.schema.types):
            layout.encoding = _decide_encoding(blob, compression)       # invalid UTF-8 past the sniffed sample
            if layout.encoding != "utf-8":
                continue
        break
    if padded:
        warnings.append(ngettext("{padded:,} row of '{name}' had fewer fields than the {n_names} columns; its "
                                 "missing trailing fields were read as empty.",
                                 "{padded:,} rows of '{name}' had fewer fields than the {n_names} columns; their "
                                 "missing trailing fields were read as empty.", padded).format(
                                 padded=padded, name=blob.name, n_names=len(layout.names)))
    kind = "TSV" if layout.delimiter == "\t" else "CSV"
    read_as = _describe(kind, compression, layout.encoding,
                        f"{_DELIMITER_NAMES[layout.delimiter]}-separated",
                        "header row" if layout.header else "no header row (columns c0, c1, ...)")
    return RawRead(table, table.num_rows + sum(dropped.values()), dict(dropped), warnings, read_as,
                   blob.name, layout.header)


def _without_content(message: str) -> str:
    """The first line of a pyarrow parse error without the row text it quotes (e.g. after "got 3 columns")."""
    first = message.splitlines()[0] if message else "unknown parse error"
    return re.sub(r"(got \d+)?:\s.*$", lambda m: m.group(1) or "", first.split(": ", 1)[-1]) or first


def _describe(kind: str, compression: str | None, *details: str) -> str:
    return ", ".join([kind + (f" ({compression})" if compression else ""), *details])


def _concat(parts: list[RawRead], name: str) -> pa.Table:
    first = parts[0]
    for part in parts[1:]:
        if part.table.column_names != first.table.column_names:
            raise InvalidDataError(
                _("'{name}' does not have the same columns as '{name2}' ({column_names} vs {column_names2}); "
                  "files of a folder or archive must share one layout. Split them into separate folders.").format(
                  name=part.name, name2=first.name, column_names=part.table.column_names,
                  column_names2=first.table.column_names))
    tables = [p.table for p in parts]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.concat_tables([t.cast(pa.schema([(n, pa.string()) for n in t.column_names])) for t in tables])


def read_raw(
    source: Any,
    *,
    header: bool | None = None,
    encoding: str | None = None,
    max_bytes: int | None = None,
    all_strings: bool = False,
    pad_rows: bool = False,
    known_names: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> RawRead:
    """Read ``source`` into one Arrow table.

    Parameters
    ----------
    source : str, Path or (str, bytes)
        A file, a folder of same-layout files, or an uploaded ``(filename, bytes)`` pair.
    header : bool, optional
        Whether delimited text has a header row; ``None`` detects it.
    encoding : str, optional
        Text encoding; ``None`` tries UTF-8, then GB18030.
    max_bytes : int, optional
        Refuse sources larger than this many (stored, possibly compressed) bytes.
    all_strings : bool
        Read every column of delimited text as strings (type inference is left to the caller).
    pad_rows : bool
        Pad rows with missing trailing fields instead of dropping them.
    known_names : frozenset of str
        Column names (in :func:`recexp.data.mapping.normalise_name` form, any script) that count as evidence
        of a header row.
    progress : callable, optional
        ``progress(fraction, message)`` after each file.

    Returns
    -------
    RawRead
    """
    name, blobs = _resolve(source)
    total = sum(b.size for b in blobs)
    if max_bytes is not None and total > max_bytes:
        raise InvalidDataError(
            _("'{name}' is {total:,.1f} MB, over the {max_bytes:,.0f} MB limit for uploads. Open it by its path "
              "on the server instead (Data page: 'File on the server'; command line: python -m recexp inspect "
              "PATH).").format(
              name=name, total=total / 1e6, max_bytes=max_bytes / 1e6))
    members = [pair for blob in blobs for pair in _expand_archives(blob)]
    parts: list[RawRead] = []
    done = 0
    for blob, compression in members:
        if progress is not None:
            progress(done / max(total, 1), _("Reading {name}").format(name=blob.name))
        parts.append(_guarded(blob.name, lambda: _read_one(
            blob, compression, header=header, encoding=encoding, all_strings=all_strings, pad_rows=pad_rows,
            known_names=known_names)))
        done += blob.size
    table = parts[0].table if len(parts) == 1 else _concat(parts, name)
    dropped: Counter = Counter()
    for part in parts:
        dropped.update(part.dropped)
    rows_read = sum(p.rows_read for p in parts)
    if rows_read and table.num_rows == 0:
        reasons = "; ".join(f"{localized(reason)}: {format_integer(count)}" for reason, count in dropped.items())
        raise InvalidDataError(
            _("None of the {rows_read:,} rows of '{name}' could be read ({reasons}). Check the delimiter and the "
              "quoting: a value that contains the delimiter must be in double quotes.").format(
              rows_read=rows_read, name=name, reasons=reasons))
    if rows_read == 0:
        raise InvalidDataError(
            _("'{name}' has no data rows{value}. Choose a file with data rows.").format(
              name=name, value=_(' (only a header row)') if parts[0].header else ''))
    read_as = parts[0].read_as + (f"; {len(parts)} files concatenated" if len(parts) > 1 else "")
    return RawRead(table, rows_read, dict(dropped), [w for p in parts for w in p.warnings], read_as, name,
                   parts[0].header)
