"""Fault sweep (issue 16's closing check): hundreds of bad inputs and faults through recexp's real entry points.

    python benchmarks/fault_sweep.py                      # every case; table into benchmarks/RESULTS.md
    python benchmarks/fault_sweep.py --only csv.gz        # the cases whose name contains this text
    python benchmarks/fault_sweep.py --no-write           # print the table, leave RESULTS.md alone

Every input is generated here, in a temporary folder (nothing is downloaded). The cases are driven through

* **the library** as the Data page drives it: ``recexp.data.load`` on a file, and ``confine`` (the
  "File on the server" box, under ``RECEXP_DATA_ROOT``) followed by ``load``. These run in a worker
  subprocess that takes one case at a time (imports paid once); its peak resident memory is reset
  before each case (``/proc/self/clear_refs``) and read back from ``VmHWM``. An exception that is not a
  ``RecexpError`` is a traceback (the page shows only the sentences of ``RecexpError``); a worker that
  dies is a native abort (or a crash) and is restarted;
* **the CLI** as a subprocess (``python -m recexp inspect|apply|run|runs|compare|importance|synth``),
  its peak memory sampled from ``/proc/PID/status`` (``VmRSS`` of the process tree) every 20 ms.

For each case it records the exit code (or outcome), whether the output holds ``Traceback`` or a native
abort (``terminate called``, ``core dumped``, death by SIGABRT/SIGSEGV/SIGBUS), whether the refusal is one
line, peak memory, the runs left ``running`` in the store (read straight from ``runs.sqlite`` and again
through ``runs --json``), reads outside the data root (``confine`` returning a path outside it), and for
files that must be read, whether the class counts are those generated (a difference the validation
report does not account for as dropped rows is a silent wrong read).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gzip
import io
import json
import os
import pickle
import re
import shutil
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
HEADING = "## Fault sweep: `benchmarks/fault_sweep.py`"
PEAK_LIMIT_KB = 1 << 20                 # 1 GB
NATIVE_SIGNALS = {-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, -signal.SIGILL, -signal.SIGFPE}
NATIVE_TEXT = ("terminate called", "core dumped", "Fatal Python error", "Segmentation fault", "Aborted")
CASE_TIMEOUT_S = 600

# --- generated data -----------------------------------------------------------------------------------

BEHAVIOURS = {"pv": 120, "cart": 40, "fav": 25, "buy": 15}
GBK_BEHAVIOURS = {"浏览": 120, "加购": 40, "收藏": 25, "购买": 15}
LATIN1_BEHAVIOURS = {"vué": 120, "panier": 40, "favori": 25, "acheté": 15}
HEADER = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
T0 = 1511539200                         # 2017-11-25 00:00 +08:00 (the Taobao window)


def log_frame(counts: dict[str, int] = BEHAVIOURS, seed: int = 0) -> pd.DataFrame:
    """A small behaviour log with exactly ``counts`` events per behaviour, shuffled, times in one week."""
    rng = np.random.default_rng(seed)
    behaviours = np.repeat(list(counts), list(counts.values()))
    rng.shuffle(behaviours)
    n = len(behaviours)
    return pd.DataFrame({"user_id": rng.integers(1, 30, n), "item_id": rng.integers(1000, 1200, n),
                         "category_id": rng.integers(1, 9, n), "behavior_type": behaviours,
                         "timestamp": np.sort(rng.integers(T0, T0 + 7 * 86400, n))})


def delimited(frame: pd.DataFrame, sep: str = ",", header: bool = True, newline: str = "\n") -> str:
    lines = [sep.join(frame.columns)] if header else []
    lines += [sep.join(str(v) for v in row) for row in frame.itertuples(index=False)]
    return newline.join(lines) + newline


def json_lines(frame: pd.DataFrame) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in frame.astype(object).to_dict("records"))


def text_of(frame: pd.DataFrame, fmt: str, **options) -> str:
    if fmt == "jsonl":
        return json_lines(frame)
    return delimited(frame, sep="\t" if fmt == "tsv" else ",", **options)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def compress(content: bytes, compression: str, member: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(content, compresslevel=6, mtime=0)
    if compression == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, content)
        return out.getvalue()
    return content


def gzip_bomb(line: bytes, inside_mb: int = 300) -> bytes:
    """A gzip file whose members unpack to ``inside_mb`` MB of ``line`` repeated (one member compressed once)."""
    chunk = gzip.compress(line * ((20 << 20) // len(line)), compresslevel=9, mtime=0)
    return chunk * (inside_mb // 20)


def zip_bomb(member: str, line: bytes, inside_mb: int = 400) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as stream:
            block = line * ((1 << 20) // len(line))
            for _ in range(inside_mb):
                stream.write(block)
    return out.getvalue()


def parquet_bomb() -> bytes:
    frame = pd.DataFrame({f"c{i}": np.zeros(3_000_000, dtype="int64") for i in range(10)})
    out = io.BytesIO()
    frame.to_parquet(out, index=False, compression="zstd")
    return out.getvalue()


# --- cases --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input or fault: how to drive it and what must happen."""

    name: str
    entry: str                              # "load", "confine" (library) or "cli"
    expect: str                             # "read", "refuse", "either" (read right or refuse) or "exit0"
    path: str = ""                          # library cases: the file or the text typed into the path box
    kind: str = "log"
    label: str | None = None
    counts: dict[str, int] | None = None    # class counts a read must give
    argv: list[str] = field(default_factory=list)   # CLI cases: arguments after ``python -m recexp``
    home: str | None = None                 # CLI cases: RECEXP_HOME
    env: dict[str, str] = field(default_factory=dict)
    outside: bool = False                   # the path lies outside the data root (a read is a breach)
    big: bool = False                       # an upload-sized input: peak memory must stay under 1 GB
    note: str = ""                          # what the input is, for the table
    prepare: object = None                  # CLI cases: callable(case) run just before (e.g. break the store)
    signal_after_running: int | None = None  # CLI `run` cases: send this signal once a run is running


@dataclass
class Observed:
    outcome: str = ""                       # "read", "refused", "exit N", "hang", "died"
    message: str = ""
    traceback: bool = False
    native: bool = False
    one_line: bool = True
    peak_kb: int = 0
    counts: dict[str, int] | None = None
    dropped: int = 0
    running_raw: int = 0                    # runs 'running' in runs.sqlite right after the case
    running_listed: int = 0                 # runs 'running' in `runs --json` afterwards
    outside_read: bool = False
    seconds: float = 0.0


FORMATS = ("csv", "tsv", "jsonl")
COMPRESSIONS = ("none", "gzip", "zip")


def _suffix(fmt: str, compression: str) -> str:
    return f".{fmt}" + {"none": "", "gzip": ".gz", "zip": ".zip"}[compression]


def text_defects(fmt: str) -> dict[str, tuple[bytes | None, str, dict | None, str]]:
    """defect -> (file bytes before compression, expectation, class counts, note) for one text format."""
    base = log_frame()
    clean = text_of(base, fmt)
    sep = "\t" if fmt == "tsv" else ","
    defects: dict[str, tuple[bytes | None, str, dict | None, str]] = {
        "clean": (clean.encode(), "read", BEHAVIOURS, "200 events, 4 behaviours"),
        "empty": (b"", "refuse", None, "0 bytes"),
        "binary junk": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "refuse", None, "PNG header + bytes"),
        "NUL bytes": (clean.replace("\n", "\n\x00\x00", 3).encode(), "either", BEHAVIOURS, "NULs after 3 line ends"),
        "BOM": (codecs.BOM_UTF8 + clean.encode(), "read", BEHAVIOURS, "UTF-8 BOM first"),
        "CRLF": (text_of(base, fmt, newline="\r\n").encode() if fmt != "jsonl" else clean.replace("\n", "\r\n").encode(),
                 "read", BEHAVIOURS, "Windows line ends"),
        "UTF-16": (clean.encode("utf-16"), "either", BEHAVIOURS, "UTF-16 with BOM"),
        "GBK only": (text_of(log_frame(GBK_BEHAVIOURS), fmt).encode("gbk"), "read", GBK_BEHAVIOURS,
                     "behaviours 浏览/加购/收藏/购买 in GBK"),
        "Latin-1 only": (text_of(log_frame(LATIN1_BEHAVIOURS), fmt).encode("latin-1"), "either", LATIN1_BEHAVIOURS,
                         "behaviours vué/acheté in Latin-1"),
        "mixed UTF-8/GBK": ((text_of(log_frame(GBK_BEHAVIOURS).iloc[:100], fmt).encode("utf-8")
                             + text_of(log_frame(GBK_BEHAVIOURS).iloc[100:], fmt, **_no_header(fmt)).encode("gbk")),
                            "refuse", None, "100 UTF-8 lines, then GBK lines"),
        "mixed UTF-8/Latin-1": ((text_of(log_frame(LATIN1_BEHAVIOURS).iloc[:100], fmt).encode("utf-8")
                                 + text_of(log_frame(LATIN1_BEHAVIOURS).iloc[100:], fmt,
                                           **_no_header(fmt)).encode("latin-1")),
                                "refuse", None, "100 UTF-8 lines, then Latin-1 lines"),
        "huge field": (_with_item(base, 5, "x" * 200_000, fmt).encode(), "read", BEHAVIOURS, "one 200 KB item id"),
        "huge line": (_with_item(base, 5, "y" * (6 << 20), fmt).encode(), "either", BEHAVIOURS, "one 6 MB line"),
        "one row": (text_of(base.iloc[:1], fmt).encode(), "either", dict(Counter(base.behavior_type.iloc[:1])),
                    "header + 1 event"),
        "single class": (text_of(log_frame({"pv": 200}), fmt).encode(), "either", {"pv": 200},
                         "every event pv (no classes to learn: a refusal is right too)"),
        "all-NaN timestamps": (text_of(base.assign(timestamp=np.nan), fmt).encode(), "refuse", None,
                               "timestamp column all NaN"),
        "non-numeric timestamps": (text_of(base.assign(timestamp="yesterday"), fmt).encode(), "refuse", None,
                                   "timestamp 'yesterday'"),
        "timestamps out of range": (text_of(base.assign(timestamp=base.timestamp.astype(object).where(
            base.index % 50 != 0, 10**20)), fmt).encode(), "either", BEHAVIOURS, "4 timestamps of 1e20"),
        "missing behaviour column": (text_of(base.drop(columns="behavior_type"), fmt).encode(), "refuse", None,
                                     "no behaviour column"),
    }
    if fmt != "jsonl":
        defects |= {
            "header only": ((sep.join(HEADER) + "\n").encode(), "refuse", None, "header, no rows"),
            "no header": (text_of(base, fmt, header=False).encode(), "read", BEHAVIOURS, "200 events, no header"),
            "ragged rows": ((clean + sep.join(["1", "2"]) + "\n" + sep.join(["7"] * 9) + "\n"
                             + sep.join(["3", "1001", "2", "buy", str(T0)]) + "\n").encode(),
                            "read", {**BEHAVIOURS, "buy": 16}, "+ a 2-field row, a 9-field row, a good buy"),
            "duplicate headers": (clean.replace("category_id", "user_id", 1).encode(), "either", BEHAVIOURS,
                                  "user_id twice"),
            "wrong columns": (delimited(pd.DataFrame(np.arange(600).reshape(200, 3), columns=["a", "b", "c"]),
                                        sep).encode(), "refuse", None, "3 numeric columns a, b, c"),
        }
    else:
        defects |= {
            "ragged rows": ((clean + '{"user_id": 1}\n' + "[1, 2, 3]\n").encode(), "either", BEHAVIOURS,
                            "+ an object missing keys, an array"),
            "broken JSON line": ((clean + '{"user_id": 1, "item_id": \n').encode(), "either", BEHAVIOURS,
                                 "+ a cut-off JSON object"),
            "not JSON objects": (b"1\n2\n3\n", "refuse", None, "numbers, one a line"),
        }
    return defects


def _no_header(fmt: str) -> dict:
    return {} if fmt == "jsonl" else {"header": False}


def _with_item(frame: pd.DataFrame, row: int, value: str, fmt: str) -> str:
    changed = frame.astype({"item_id": object})
    changed.loc[row, "item_id"] = value
    return text_of(changed, fmt)


def parquet_defects() -> dict[str, tuple[bytes, str, dict | None, str]]:
    base = log_frame()
    good = parquet_bytes(base)
    return {
        "clean": (good, "read", BEHAVIOURS, "200 events"),
        "empty": (b"", "refuse", None, "0 bytes"),
        "truncated": (good[: len(good) // 2], "refuse", None, "first half of the file"),
        "footer only": (b"PAR1" + good[-200:], "refuse", None, "magic + last 200 bytes"),
        "zero rows": (parquet_bytes(base.iloc[:0]), "refuse", None, "schema, no rows"),
        "one row": (parquet_bytes(base.iloc[:1]), "either", dict(Counter(base.behavior_type.iloc[:1])), "1 event"),
        "single class": (parquet_bytes(log_frame({"buy": 200})), "either", {"buy": 200},
                         "every event buy (no classes to learn: a refusal is right too)"),
        "all-NaN timestamps": (parquet_bytes(base.assign(timestamp=np.nan)), "refuse", None, "timestamps NaN"),
        "string timestamps": (parquet_bytes(base.assign(timestamp="yesterday")), "refuse", None, "'yesterday'"),
        "missing behaviour column": (parquet_bytes(base.drop(columns="behavior_type")), "refuse", None,
                                     "no behaviour column"),
        "GBK-named behaviours": (parquet_bytes(log_frame(GBK_BEHAVIOURS)), "read", GBK_BEHAVIOURS, "Chinese values"),
        "null behaviours": (parquet_bytes(base.assign(behavior_type=base.behavior_type.where(base.index % 20 != 0))),
                            "read", None, "every 20th behaviour null"),
    }


def table_cases(folder: Path) -> list[Case]:
    """Feature tables (--kind table): labels, a single class, 10,000 columns, all-NaN features."""
    rng = np.random.default_rng(1)
    labels = np.repeat(["0", "1"], [180, 20])
    rng.shuffle(labels)
    frame = pd.DataFrame(rng.normal(size=(200, 6)), columns=[f"f{i}" for i in range(6)]).assign(label=labels)
    counts = dict(Counter(labels))
    specs = {
        "table clean.csv": (frame.to_csv(index=False).encode(), "read", counts, "200 rows, 6 features"),
        "table single class.csv": (frame.assign(label="1").to_csv(index=False).encode(), "either", {"1": 200},
                                   "every label 1"),
        "table all-NaN feature.csv": (frame.assign(f0=np.nan).to_csv(index=False).encode(), "read", counts,
                                      "f0 empty"),
        "table NaN labels.csv": (frame.assign(label=np.nan).to_csv(index=False).encode(), "refuse", None,
                                 "label column empty"),
        "table no label column.csv": (frame.drop(columns="label").to_csv(index=False).encode(), "refuse", None,
                                      "no label"),
        "table 10,000 columns.csv": (pd.DataFrame(rng.integers(0, 9, size=(50, 10_000)),
                                                  columns=[f"f{i}" for i in range(10_000)]).assign(
            label=np.repeat(["a", "b"], 25)).to_csv(index=False).encode(), "either", {"a": 25, "b": 25},
            "50 rows x 10,001 columns"),
        "table 10,000 columns.parquet": (parquet_bytes(pd.DataFrame(
            rng.normal(size=(20, 10_000)), columns=[f"f{i}" for i in range(10_000)]).assign(
            label=np.repeat(["a", "b"], 10))), "either", {"a": 10, "b": 10}, "20 rows x 10,001 columns"),
        "table inf values.csv": (frame.assign(f1=np.inf).to_csv(index=False).encode(), "either", counts,
                                 "f1 all inf"),
    }
    cases = []
    for name, (content, expect, expected, note) in specs.items():
        path = folder / name.replace(" ", "_").replace(",", "")
        path.write_bytes(content)
        cases.append(Case(f"library load: {name}", "load", expect, str(path), kind="table", label="label",
                          counts=expected, note=note))
    return cases


def library_file_cases(folder: Path) -> list[Case]:
    cases = []
    for fmt in FORMATS:
        for defect, (content, expect, counts, note) in text_defects(fmt).items():
            for compression in COMPRESSIONS:
                path = folder / f"{defect.replace(' ', '_').replace('/', '_')}{_suffix(fmt, compression)}"
                path.write_bytes(compress(content, compression, f"events.{fmt}"))
                cases.append(Case(f"library load: {fmt} {compression} {defect}", "load", expect, str(path),
                                  counts=counts, note=note))
        line = text_of(log_frame().iloc[:1], fmt, **_no_header(fmt)).encode()
        clean = text_of(log_frame(), fmt).encode()
        for name, content, note in (
                ("truncated gzip", gzip.compress(clean * 50, mtime=0)[:-300], "gzip cut 300 bytes short"),
                ("truncated zip", compress(clean * 50, "zip", f"events.{fmt}")[:-120], "zip cut 120 bytes short"),
                ("gzip bomb", gzip_bomb(line), "300 MB inside, 20 MB gzip members"),
                ("zip bomb", zip_bomb(f"events.{fmt}", line), "member declares 400 MB"),
                ("zip of gzip bomb", compress(gzip_bomb(line, 1000), "zip", f"events.{fmt}.gz"),
                 "stored member: a 1 GB-inside gzip")):
            path = folder / f"{name.replace(' ', '_')}.{fmt}{'.gz' if 'gzip' in name and 'zip of' not in name else '.zip'}"
            path.write_bytes(content)
            cases.append(Case(f"library load: {fmt} {name}", "load", "refuse", str(path), note=note))
    for defect, (content, expect, counts, note) in parquet_defects().items():
        for compression in COMPRESSIONS:
            path = folder / f"pq_{defect.replace(' ', '_')}{_suffix('parquet', compression)}"
            path.write_bytes(compress(content, compression, "events.parquet"))
            cases.append(Case(f"library load: parquet {compression} {defect}", "load", expect, str(path),
                              counts=counts, note=note))
    path = folder / "parquet_bomb.parquet"
    path.write_bytes(parquet_bomb())
    cases.append(Case("library load: parquet bomb", "load", "refuse", str(path), note="few KB stating 240 MB"))
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(1001):
            archive.writestr(f"part{i:04d}.csv", delimited(log_frame().iloc[:2]))
    (folder / "zip_1001_files.zip").write_bytes(many.getvalue())
    cases.append(Case("library load: zip of 1,001 files", "load", "refuse", str(folder / "zip_1001_files.zip"),
                      note="1,001 tiny members"))
    return cases + table_cases(folder)


def confine_cases(tmp: Path) -> tuple[list[Case], Path]:
    """The Data page's server-path box: confine (RECEXP_DATA_ROOT) then load."""
    root = tmp / "root"
    (root / "logs").mkdir(parents=True)
    (root / "sub").mkdir()
    outside = tmp / "outside"
    outside.mkdir()
    good = delimited(log_frame())
    (root / "good.csv").write_text(good)
    (root / "logs" / "a.csv").write_text(delimited(log_frame().iloc[:100]))
    (root / "logs" / "b.csv").write_text(delimited(log_frame().iloc[100:]))
    (outside / "secret.csv").write_text(good)
    (root / "link_to_passwd.csv").symlink_to("/etc/passwd")
    (root / "link_to_environ").symlink_to("/proc/self/environ")
    (root / "link_to_outside_dir").symlink_to(outside)
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    (root / "sub" / "inner_link.csv").symlink_to(outside / "secret.csv")
    (root / "inside_link.csv").symlink_to(root / "good.csv")
    os.mkfifo(root / "pipe.csv")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "events.sock"))
    env = {"RECEXP_DATA_ROOT": str(root)}
    bad = [
        ("/etc/passwd", True), ("~/.ssh/id_rsa", True), ("/root/.ssh/id_rsa", True), ("/proc/self/environ", True),
        ("/dev/zero", True), ("/dev/stdin", True), ("/", True), ("~", True), (str(outside / "secret.csv"), True),
        ("link_to_passwd.csv", True), ("link_to_environ", True), ("link_to_outside_dir", True),
        ("link_to_outside_dir/secret.csv", True), ("sub", True), ("../outside/secret.csv", True),
        (f"{root}/../outside/secret.csv", True), (f"{root}/../../../../etc/passwd", True),
        ("logs/../../outside/secret.csv", True), (str(tmp), True),
        ("pipe.csv", False), ("events.sock", False), ("missing.csv", False), ("loop_a", False),
        ("a" * 5000, False), ("bad\x00name.csv", False), ("logs/a.csv/x", False),
    ]
    cases = [Case(f"server path: {text[:40]!r}", "confine", "refuse", text, env=env, outside=out,
                  note="outside the root" if out else "not a readable file") for text, out in bad]
    cases += [
        Case("server path: 'good.csv' (relative)", "confine", "read", "good.csv", env=env, counts=BEHAVIOURS),
        Case("server path: absolute good.csv", "confine", "read", str(root / "good.csv"), env=env, counts=BEHAVIOURS),
        Case("server path: link inside the root", "confine", "read", "inside_link.csv", env=env, counts=BEHAVIOURS),
        Case("server path: folder 'logs'", "confine", "read", "logs", env=env, counts=BEHAVIOURS,
             note="two same-layout files"),
        Case("server path: 'logs/./a.csv/../b.csv' ", "confine", "either", "logs/./a.csv/../b.csv", env=env,
             counts=dict(Counter(log_frame().behavior_type.iloc[100:]))),
        Case("server path: RECEXP_DATA_ROOT=/ with /proc/self/environ", "confine", "refuse", "/proc/self/environ",
             env={"RECEXP_DATA_ROOT": "/"}, outside=True),
        Case("server path: RECEXP_DATA_ROOT=/ with /dev/zero", "confine", "refuse", "/dev/zero",
             env={"RECEXP_DATA_ROOT": "/"}, outside=True),
        Case("server path: RECEXP_DATA_ROOT='::'", "confine", "either", "good.csv", env={"RECEXP_DATA_ROOT": "::"}),
        Case("server path: RECEXP_MAX_DECOMPRESSED_MB=abc", "confine", "refuse", "good.csv",
             env={**env, "RECEXP_MAX_DECOMPRESSED_MB": "abc"}),
    ]
    return cases, root


# --- measuring ----------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    stack += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return pids


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class TreeSampler(threading.Thread):
    """Peak summed VmRSS of a process and its descendants, sampled every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stopped = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in _tree(self.pid)))
            self.stopped.wait(0.02)


def running_in_store(home: str | None) -> int:
    """Runs with status 'running' in ``home/runs.sqlite``, read directly (no orphan check); 0 if unreadable."""
    if not home or not (Path(home) / "runs.sqlite").is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{home}/runs.sqlite?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
    except sqlite3.Error:
        return 0


def cli_env(home: str | None, extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    if home:
        env["RECEXP_HOME"] = home
    return env


def run_cli(case: Case) -> Observed:
    if callable(case.prepare):
        case.prepare(case)
    observed = Observed()
    start = time.time()
    out_file, err_file = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    child = subprocess.Popen([sys.executable, "-m", "recexp", *case.argv], cwd=REPO, env=cli_env(case.home, case.env),
                             stdout=out_file, stderr=err_file, start_new_session=True)
    sampler = TreeSampler(child.pid)
    sampler.start()
    try:
        if case.signal_after_running is not None:
            deadline = time.time() + CASE_TIMEOUT_S
            while child.poll() is None and running_in_store(case.home) == 0 and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            if child.poll() is None:
                os.kill(child.pid, case.signal_after_running)
        code = child.wait(timeout=CASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        code = None
    sampler.stopped.set()
    sampler.join()
    out_file.seek(0)
    err_file.seek(0)
    stdout, stderr = out_file.read().decode(errors="replace"), err_file.read().decode(errors="replace")
    text = stdout + stderr
    observed.seconds = time.time() - start
    observed.peak_kb = sampler.peak_kb
    observed.traceback = "Traceback" in text
    observed.native = code in NATIVE_SIGNALS or any(marker in text for marker in NATIVE_TEXT)
    errors = [line for line in stderr.splitlines() if "error:" in line]
    observed.one_line = len(errors) <= 1
    observed.message = (errors[-1] if errors else (stderr.strip().splitlines() or stdout.strip().splitlines()
                                                   or [""])[-1]).strip()
    observed.outcome = "hang" if code is None else f"exit {code}"
    if code == 0 and "--json" in case.argv and case.argv[0] == "inspect":
        with contextlib.suppress(ValueError, KeyError):
            report = json.loads(stdout)
            observed.counts = report["validation"]["behavior_values"] or report["imbalance"]["class_counts"]
            observed.dropped = sum(report["validation"]["dropped"].values())
    observed.running_raw = running_in_store(case.home)
    return observed


class LibraryWorker:
    """A subprocess running library cases one at a time (``--worker``); restarted when it dies."""

    def __init__(self, tmp: Path):
        self.tmp, self.process, self.log = tmp, None, None

    def _start(self) -> None:
        self.log = open(self.tmp / f"worker-{time.time_ns()}.err", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker"], cwd=REPO, env=cli_env(str(self.tmp / "worker_home"), {}),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)

    def run(self, case: Case) -> Observed:
        if case.big:                    # an upload-sized case gets a fresh process: its own peak, no leftovers
            self.close()
        if self.process is None or self.process.poll() is not None:
            self._start()
        observed = Observed()
        start = time.time()
        offset = self.log.seek(0, os.SEEK_END)
        self.process.stdin.write(json.dumps({"op": case.entry, "path": case.path, "kind": case.kind,
                                             "label": case.label, "env": case.env}) + "\n")
        self.process.stdin.flush()
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(CASE_TIMEOUT_S)
        self.log.seek(offset)
        stderr = self.log.read().decode(errors="replace")
        observed.seconds = time.time() - start
        observed.native = any(marker in stderr for marker in NATIVE_TEXT)
        observed.traceback = "Traceback" in stderr
        if not answer or not answer[0]:
            if reader.is_alive():
                self.process.kill()
            code = self.process.wait()
            observed.outcome = "hang" if reader.is_alive() else f"died ({code})"
            observed.native = observed.native or code in NATIVE_SIGNALS
            observed.message = (stderr.strip().splitlines() or [""])[-1]
            self.process = None
            return observed
        result = json.loads(answer[0])
        observed.outcome = result["outcome"]
        observed.message = result["message"]
        observed.traceback = observed.traceback or result["traceback"]
        observed.one_line = "\n" not in result["message"].strip()
        observed.peak_kb = result["peak_kb"]
        observed.counts = result.get("counts")
        observed.dropped = result.get("dropped", 0)
        observed.outside_read = bool(case.outside and result.get("resolved") is not None)
        return observed

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()
        self.process = None


def worker_main() -> None:
    """``--worker``: read one JSON case a line from stdin, answer one JSON line on stdout."""
    import traceback

    from recexp.data import load
    from recexp.data.limits import confine
    from recexp.errors import RecexpError

    protocol = sys.stdout
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        saved = {key: os.environ.get(key) for key in request["env"]}
        os.environ.update(request["env"])
        Path("/proc/self/clear_refs").write_text("5")           # reset VmHWM: this case's own peak
        answer: dict = {"traceback": False, "resolved": None}
        try:
            path = request["path"]
            if request["op"] == "confine":
                path = str(confine(path))
                answer["resolved"] = path
            loaded = load(path, kind=request["kind"], label_column=request["label"])
            if loaded.kind == "log":
                counts = loaded.report.behavior_values
            else:
                counts = loaded.frame[loaded.label_column].astype(str).value_counts().to_dict()
            answer |= {"outcome": "read", "message": f"{loaded.report.rows_kept} rows kept; {loaded.report.read_as}",
                       "counts": {str(k): int(v) for k, v in counts.items()},
                       "dropped": int(sum(loaded.report.dropped.values()))}
        except RecexpError as error:
            answer |= {"outcome": "refused", "message": str(error)}
        except BaseException as error:                          # what the page would show as a traceback
            answer |= {"outcome": "traceback", "message": f"{type(error).__name__}: {error}"[:400], "traceback": True}
            traceback.print_exc()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        peak = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:")]
        answer["peak_kb"] = int(peak[0].split()[1]) if peak else 0
        protocol.write(json.dumps(answer, default=str) + "\n")
        protocol.flush()


# --- CLI cases ----------------------------------------------------------------------------------------


YEAST = str(REPO / "data" / "imbalanced_benchmarks" / "yeast_me2.csv")
TABLE_ARGS = ["--kind", "table", "--label", "TARGET", "--task", "table"]


def build_base_store(tmp: Path) -> tuple[Path, str, list[str]]:
    """A workspace with one finished experiment (yeast, logreg, none + random_over, 3 seeds, 2 epochs)."""
    home = tmp / "base_home"
    done = subprocess.run([sys.executable, "-m", "recexp", "run", YEAST, *TABLE_ARGS, "--strategy", "none",
                           "--strategy", "random_over", "--model", "logreg", "--seeds", "3", "--epochs", "2",
                           "--device", "cpu", "--experiment", "base", "--json"], cwd=REPO,
                          env=cli_env(str(home), {}), capture_output=True, text=True, timeout=CASE_TIMEOUT_S)
    if done.returncode:
        raise SystemExit(f"the base experiment did not finish:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return home, report["experiment"]["id"], [r["id"] for r in report["runs"]]


def mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                          capture_output=True).returncode == 0


def fill(folder: Path) -> None:
    with open(folder / "ballast", "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 512)


def cli_cases(tmp: Path, files: Path, root: Path, big: dict[str, Path]) -> tuple[list[Case], list[Path]]:
    base, experiment, run_ids = build_base_store(tmp)
    mounts: list[Path] = []
    counter = iter(range(10_000))

    def home_copy() -> str:
        target = tmp / f"home{next(counter)}"
        shutil.copytree(base, target, symlinks=True)
        return str(target)

    def cli(name, argv, expect="refuse", home=None, **extra) -> Case:
        return Case(f"cli {argv[0]}: {name}", "cli", expect, argv=list(argv), home=home or home_copy(), **extra)

    first = run_ids[0]
    clean_csv = files / "clean.csv"
    single = files / "single_class.csv"
    one_row = files / "one_row.csv"
    apply = ["apply", YEAST, *TABLE_ARGS]
    run = ["run", YEAST, *TABLE_ARGS, "--model", "logreg", "--seeds", "1", "--epochs", "1", "--device", "cpu"]
    out = str(tmp / "out.parquet")
    cases = [
        cli("clean log", ["inspect", str(clean_csv), "--json"], "read", counts=BEHAVIOURS),
        cli("GBK log", ["inspect", str(files / "GBK_only.csv"), "--json"], "read", counts=GBK_BEHAVIOURS),
        cli("gzip bomb", ["inspect", str(files / "gzip_bomb.csv.gz")]),
        cli("zip bomb", ["inspect", str(files / "zip_bomb.csv.zip")]),
        cli("parquet bomb", ["inspect", str(files / "parquet_bomb.parquet")]),
        cli("binary junk", ["inspect", str(files / "binary_junk.csv")]),
        cli("mixed UTF-8/GBK", ["inspect", str(files / "mixed_UTF-8_GBK.csv")]),
        cli("huge line", ["inspect", str(files / "huge_line.tsv")], "either", counts=BEHAVIOURS),
        cli("truncated gzip", ["inspect", str(files / "truncated_gzip.csv.gz")]),
        cli("FIFO", ["inspect", str(root / "pipe.csv")]),
        cli("socket", ["inspect", str(root / "events.sock")]),
        cli("/proc/self/environ", ["inspect", "/proc/self/environ"]),
        cli("/dev/zero", ["inspect", "/dev/zero"]),
        cli("a directory of junk", ["inspect", str(tmp)], "refuse"),
        cli("missing file", ["inspect", str(tmp / "nope.csv")]),
        cli("10,000 columns", ["inspect", str(files / "table_10000_columns.csv"), "--kind", "table", "--label",
                               "label", "--json"], "either", counts={"a": 25, "b": 25}),
        cli("unknown task", ["inspect", str(clean_csv), "--task", "nope"]),
        cli("bad --map", ["inspect", str(clean_csv), "--map", "user"]),
        cli("--map to a missing column", ["inspect", str(clean_csv), "--map", "user=nope"]),
        cli("unknown encoding", ["inspect", str(clean_csv), "--encoding", "klingon"]),
        cli("wrong encoding named", ["inspect", str(files / "GBK_only.csv"), "--encoding", "utf-16", "--json"],
            "either", counts=GBK_BEHAVIOURS),
        cli("--label on a missing column", ["inspect", YEAST, "--kind", "table", "--label", "nope"]),
        cli("unknown strategy", [*apply, "--strategy", "nope", "--out", out]),
        cli("unknown task", ["apply", YEAST, "--kind", "table", "--label", "TARGET", "--task", "nope", "--strategy",
                             "smote", "--out", out]),
        cli("wrong-type param", [*apply, "--strategy", "smote", "--param", "k_neighbors=abc", "--out", out]),
        cli("out-of-range param", [*apply, "--strategy", "smote", "--param", "k_neighbors=0", "--out", out]),
        cli("k_neighbors past the minority", [*apply, "--strategy", "smote", "--param", "k_neighbors=5000",
                                              "--out", out]),
        cli("unknown param", [*apply, "--strategy", "smote", "--param", "nope=1", "--out", out]),
        cli("param without =", [*apply, "--strategy", "smote", "--param", "k_neighbors", "--out", out]),
        cli("infeasible over-sampling target", [*apply, "--strategy", "random_over", "--param",
                                                "sampling_strategy=1:2", "--out", out]),
        cli("unknown class in target", [*apply, "--strategy", "random_over", "--param",
                                        "sampling_strategy=nope:5000", "--out", out]),
        cli("ratio out of range", [*apply, "--strategy", "random_over", "--param", "sampling_strategy=7.5",
                                   "--out", out]),
        cli("negative seed", [*apply, "--strategy", "smote", "--seed", "-1", "--out", out], "either"),
        cli("split test_size=2", [*apply, "--strategy", "smote", "--split-param", "test_size=2", "--out", out]),
        cli("unknown split method", [*apply, "--strategy", "smote", "--split-param", "method=nope", "--out", out]),
        cli("--out into /proc", [*apply, "--strategy", "none", "--out", "/proc/nope.parquet"]),
        cli("--out is a folder", [*apply, "--strategy", "none", "--out", str(tmp)]),
        cli("single-class log", ["apply", str(single), "--task", "behavior", "--strategy", "smote", "--out", out]),
        cli("one-row log", ["apply", str(one_row), "--task", "behavior", "--strategy", "none", "--out", out]),
        cli("unknown model", [*run, "--model", "nope"]),
        cli("--seeds 0", [*run, "--seeds", "0"]),
        cli("--seeds -3", [*run, "--seeds", "-3"]),
        cli("negative epochs", [*run, "--epochs", "-1"]),
        cli("--epochs abc", [*run, "--epochs", "abc"]),
        cli("--batch-size 0", [*run, "--batch-size", "0"]),
        cli("--learning-rate -1", [*run, "--learning-rate", "-1"]),
        cli("--learning-rate nan", [*run, "--learning-rate", "nan"]),
        cli("--patience -1", [*run, "--patience", "-1"]),
        cli("unknown device", [*run, "--device", "quantum"]),
        cli("unknown --primary", [*run, "--primary", "nope"]),
        cli("unknown strategy", [*run, "--strategy", "nope"]),
        cli("bad --model-param", [*run, "--model-param", "hidden=abc"]),
        cli("unknown --model-param", [*run, "--model-param", "nope=1"]),
        cli("--add-seeds on a missing experiment", [*run, "--add-seeds", "2", "--experiment", "nope"]),
        cli("--add-seeds 0", [*run, "--add-seeds", "0", "--experiment", experiment]),
        cli("--add-seeds without --experiment", [*run, "--add-seeds", "2"]),
        cli("single-class log", ["run", str(single), "--task", "behavior", "--model", "logreg", "--seeds", "1",
                                 "--epochs", "1", "--device", "cpu"]),
        cli("missing file", ["run", str(tmp / "nope.csv"), "--task", "behavior", "--seeds", "1"]),
        cli("unknown experiment", ["runs", "--experiment", "nope"], "either"),
        cli("unknown status", ["runs", "--status", "nope"]),
        cli("unknown experiment", ["compare", "--experiment", "nope"]),
        cli("unknown run ids", ["compare", "nope1", "nope2"]),
        cli("nothing to compare", ["compare"]),
        cli("unknown baseline", ["compare", "--experiment", experiment, "--baseline", "nope"], "exit0",
            note="documented: a note says no run used it, deltas left empty"),
        cli("--bootstrap -5", ["compare", "--experiment", experiment, "--bootstrap", "-5"]),
        cli("--detect abc", ["compare", "--experiment", experiment, "--detect", "abc"]),
        cli("--detect -1", ["compare", "--experiment", experiment, "--detect", "-1"], "either",
            note="the size of the difference counts"),
        cli("unknown --metric", ["compare", "--experiment", experiment, "--metric", "nope"]),
        cli("--html into /proc", ["compare", "--experiment", experiment, "--html", "/proc/report.html"]),
        cli("--csv is a folder", ["compare", "--experiment", experiment, "--csv", str(tmp)]),
        cli("unknown run", ["importance", "nope", "--method", "mean_loss"]),
        cli("unknown method", ["importance", first, "--method", "nope"]),
        cli("bad method param", ["importance", first, "--method", "knn_shapley", "--param", "k=abc"]),
        cli("out-of-range method param", ["importance", first, "--method", "knn_shapley", "--param", "k=0"]),
        cli("--out into /proc", ["importance", first, "--method", "mean_loss", "--out", "/proc/v.parquet"]),
        cli("unknown generator", ["synth", YEAST, *TABLE_ARGS, "--method", "nope", "--rows", "10", "--out", out,
                                  "--report", str(tmp / "r.json")]),
        cli("--rows -5", ["synth", YEAST, *TABLE_ARGS, "--method", "gaussian_copula", "--rows", "-5", "--out", out,
                          "--report", str(tmp / "r.json")]),
        cli("--rows 0", ["synth", YEAST, *TABLE_ARGS, "--method", "gaussian_copula", "--rows", "0", "--out", out,
                         "--report", str(tmp / "r.json")], "either"),
        cli("bad --class", ["synth", YEAST, *TABLE_ARGS, "--method", "gaussian_copula", "--class", "1:x",
                            "--out", out, "--report", str(tmp / "r.json")]),
        cli("unknown --class", ["synth", YEAST, *TABLE_ARGS, "--method", "gaussian_copula", "--class", "nope:5",
                                "--out", out, "--report", str(tmp / "r.json")]),
        cli("negative epochs", ["synth", YEAST, *TABLE_ARGS, "--method", "gan", "--param", "epochs=-1", "--rows",
                                "5", "--out", out, "--report", str(tmp / "r.json")]),
    ]

    # store faults
    def zero_byte(case: Case) -> None:
        (Path(case.home) / "runs.sqlite").write_bytes(b"")

    def junk(case: Case) -> None:
        (Path(case.home) / "runs.sqlite").write_bytes(b"this is not a database\n" * 100)

    def junk_model(case: Case) -> None:
        (Path(case.home) / "artifacts" / first / "model.pt").write_bytes(b"\x80junk" * 50)

    def no_predictions(case: Case) -> None:
        (Path(case.home) / "artifacts" / first / "predictions.parquet").unlink()

    def junk_predictions(case: Case) -> None:
        (Path(case.home) / "artifacts" / first / "predictions.parquet").write_bytes(b"PAR1 junk")

    def wal_junk(case: Case) -> None:
        (Path(case.home) / "runs.sqlite-wal").write_bytes(b"\xff" * 4096)

    for name, prepare in (("zero-byte runs.sqlite", zero_byte), ("junk runs.sqlite", junk)):
        cases += [cli(name, ["runs", "--json"], prepare=prepare), cli(name, ["compare", "--experiment", experiment],
                                                                      prepare=prepare),
                  cli(name, [*run], prepare=prepare), cli(name, ["importance", first, "--method", "mean_loss"],
                                                          prepare=prepare)]
    cases += [
        cli("junk -wal file", ["runs", "--json"], "either", prepare=wal_junk),
        cli("junk model.pt", ["importance", first, "--method", "mean_loss"], "exit0", prepare=junk_model,
            note="mean_loss reads the per-epoch losses, not the checkpoint"),
        cli("junk model.pt", ["importance", first, "--method", "knn_shapley", "--param", "space=embedding"],
            prepare=junk_model, note="embeds the rows with the checkpoint"),
        cli("junk model.pt", ["compare", "--experiment", experiment], "either", prepare=junk_model),
        cli("deleted predictions", ["compare", "--experiment", experiment], "either", prepare=no_predictions),
        cli("deleted predictions", ["importance", first, "--method", "mean_loss"], "either", prepare=no_predictions),
        cli("junk predictions", ["compare", "--experiment", experiment], "either", prepare=junk_predictions),
        cli("missing runs.sqlite beside artifacts", ["runs", "--json"],
            prepare=lambda case: (Path(case.home) / "runs.sqlite").unlink()),
    ]
    # read-only workspace and full disk (tmpfs; skipped when mounting is refused)
    ro = tmp / "ro_home"
    if mount_tmpfs(ro, "200m"):
        mounts.append(ro)
        shutil.copytree(base, ro, dirs_exist_ok=True, symlinks=True)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        for argv, expect in ((["runs", "--json"], "exit0"), (["compare", "--experiment", experiment], "exit0"),
                             ([*run], "refuse"), (["importance", first, "--method", "el2n"], "either")):
            cases.append(cli("read-only workspace", argv, expect, home=str(ro)))
    full = tmp / "full_home"
    if mount_tmpfs(full, "60m"):
        mounts.append(full)
        shutil.copytree(base, full, dirs_exist_ok=True, symlinks=True)
        fill(full)
        for argv, expect in (([*run], "refuse"), (["runs", "--json"], "exit0"),
                             (["importance", first, "--method", "el2n"], "either"),
                             (["inspect", str(clean_csv), "--json"], "read")):
            cases.append(cli("full disk", argv, expect, home=str(full), counts=BEHAVIOURS if argv[0] == "inspect"
                             else None))
    # signals during a run
    long_run = [*run, "--epochs", "200", "--patience", "200", "--seeds", "2"]
    cases += [cli("SIGTERM mid-run", long_run, "refuse", signal_after_running=signal.SIGTERM),
              cli("SIGINT mid-run", long_run, "refuse", signal_after_running=signal.SIGINT),
              cli("kill -9 mid-run", long_run, "refuse", signal_after_running=signal.SIGKILL)]
    # uploads of up to 200 MB through the CLI
    cases += [cli(f"{name} ({path.stat().st_size / (1 << 20):.0f} MB)", ["inspect", str(path), "--json"], "read",
                  counts=counts, big=True) for name, (path, counts) in big.items()]
    return cases, mounts


def big_files(tmp: Path) -> dict[str, tuple[Path, dict[str, int]]]:
    """190 MB of the Taobao sample, plain and gzip, and 150 MB of JSON lines: upload-sized inputs."""
    source = (REPO / "data" / "taobao_userbehavior" / "UserBehavior_sample.csv").read_bytes()
    source = source[: source.rindex(b"\n", 0, len(source) - 1) + 1]     # whole lines only
    reps = (190 << 20) // len(source)
    counts = Counter(line.split(b",")[3].decode() for line in source.splitlines())
    big = {}
    plain = tmp / "big_190mb.csv"
    with open(plain, "wb") as out:
        for _ in range(reps):
            out.write(source)
    big["plain CSV"] = (plain, {k: v * reps for k, v in counts.items()})
    packed = tmp / "big_190mb.csv.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as out:
        shutil.copyfileobj(src, out, 1 << 20)
    big["gzip CSV, 190 MB unpacked"] = (packed, big["plain CSV"][1])
    frame = log_frame(seed=3)
    block = json_lines(frame).encode()
    jreps = (150 << 20) // len(block)
    jsonl = tmp / "big_150mb.jsonl"
    with open(jsonl, "wb") as out:
        for _ in range(jreps):
            out.write(block)
    big["JSON lines"] = (jsonl, {k: v * jreps for k, v in BEHAVIOURS.items()})
    return big


# --- verdicts and the table ---------------------------------------------------------------------------


def counts_wrong(case: Case, observed: Observed) -> bool:
    """A read whose class counts differ from those generated by more than the rows it reports dropped."""
    if case.counts is None or observed.counts is None:
        return False
    expected, got = Counter(case.counts), Counter(observed.counts)
    if expected == got:
        return False
    missing = sum((expected - got).values())
    extra = sum((got - expected).values())
    return extra > 0 or missing > observed.dropped


def verdict(case: Case, observed: Observed) -> tuple[str, str]:
    """("pass" or "FAIL", why)."""
    problems = []
    read = observed.outcome == "read" or (case.entry == "cli" and observed.outcome == "exit 0")
    refused = observed.outcome == "refused" or (case.entry == "cli" and observed.outcome not in ("exit 0", "hang"))
    if observed.traceback:
        problems.append("traceback")
    if observed.native:
        problems.append("native abort")
    if observed.outcome == "hang":
        problems.append("hang")
    if observed.outcome.startswith("died"):
        problems.append("process died")
    if counts_wrong(case, observed):
        problems.append("silent wrong read")
    if observed.outside_read:
        problems.append("read outside the data root")
    # SIGKILL leaves the killed process no way to mark its run: the next opening of the store must fail it
    killed = case.signal_after_running == signal.SIGKILL
    if observed.running_listed or (observed.running_raw and not killed):
        problems.append("run left running")
    if case.big and observed.peak_kb > PEAK_LIMIT_KB:
        problems.append("peak over 1 GB")
    if refused and not observed.one_line:
        problems.append("message not one line")
    if case.expect in ("read", "exit0") and not read:
        problems.append("refused what should work")
    if case.expect == "read" and read and case.counts and observed.counts is None and case.entry != "cli":
        problems.append("no class counts")
    if case.expect == "refuse" and read:
        problems.append("accepted what should be refused")
    return ("FAIL" if problems else "pass"), ", ".join(problems)


def _cell(text: str, limit: int = 220) -> str:
    text = re.sub(r"/tmp/fault_sweep_[^/\s']+", "$TMP", text).replace(f"{REPO}/", "")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m[0]):02x}", text)   # a NUL in a typed path
    text = re.sub(r"\s+", " ", text).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts_text(counts: dict | None) -> str:
    return "" if not counts else "; counts " + ", ".join(f"{k} {v:,}" for k, v in counts.items())


def table(rows: list[tuple[Case, Observed]], seconds: float) -> str:
    verdicts = [verdict(c, o) for c, o in rows]
    read_peaks = [o.peak_kb for c, o in rows if c.big and c.entry == "load"]
    inspect_peaks = [o.peak_kb for c, o in rows if c.big and c.entry == "cli"]
    totals = {
        "cases": len(rows),
        "failures": sum(v == "FAIL" for v, _ in verdicts),
        "tracebacks": sum(o.traceback for _, o in rows),
        "native aborts": sum(o.native for _, o in rows),
        "silent wrong reads": sum(counts_wrong(c, o) for c, o in rows),
        "runs left running: in `runs --json` afterwards / in runs.sqlite straight after the case (a kill -9 "
        "cannot mark its own run)": f"{sum(o.running_listed for _, o in rows)} / {sum(o.running_raw for _, o in rows)}",
        "reads outside the data root": sum(o.outside_read for _, o in rows),
        "hangs": sum(o.outcome == "hang" for _, o in rows),
        "peak memory, uploads of up to 200 MB read as the Data page reads them (`load`)":
            f"{max(read_peaks, default=0) / 1024:.0f} MB",
        "peak memory, the same through `inspect` (read, then the behaviour task's classes counted)":
            f"{max(inspect_peaks, default=0) / 1024:.0f} MB",
        "peak memory, any case": f"{max(o.peak_kb for _, o in rows) / 1024:.0f} MB",
    }
    lines = [HEADING, "",
             f"Run on {time.strftime('%Y-%m-%d', time.gmtime())}, {seconds / 60:.0f} minutes on this shared 2-core "
             f"machine (`python benchmarks/fault_sweep.py`). Entry points: `load` = `recexp.data.load` in a worker "
             "process, `confine` = the Data page's server-path box (`recexp.data.limits.confine`, then `load`, "
             "`RECEXP_DATA_ROOT` set to the sweep's root), `cli` = `python -m recexp` as a subprocess. Expected: "
             "`read` (class counts as generated), `refuse` (a one-line sentence, no traceback), `either` (read "
             "with the right counts, or refused in one line), `exit0`. A silent wrong read is a read whose class "
             "counts differ from those generated by more than the dropped rows it reports. Peak memory: VmHWM of "
             "the worker per case (its imports included), summed VmRSS of a CLI process tree.", "",
             "| total | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in totals.items()]
    lines += ["", "| # | case | entry point | expected | observed | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    for i, ((case, observed), (mark, why)) in enumerate(zip(rows, verdicts), 1):
        what = " ".join(filter(None, [case.note, f"`recexp {shlex.join(case.argv)}`" if case.entry == "cli" else ""]))
        seen = (f"{observed.outcome}: {observed.message}{_counts_text(observed.counts)}; "
                f"peak {observed.peak_kb / 1024:.0f} MB")
        if observed.running_raw or observed.running_listed:
            seen += f"; running {observed.running_raw}/{observed.running_listed}"
        lines.append(f"| {i} | {_cell(case.name + (f' ({what})' if what else ''), 400)} | {case.entry} | "
                     f"{case.expect}{_counts_text(case.counts) if case.expect != 'refuse' else ''} | {_cell(seen)} | "
                     f"{mark}{': ' + why if why else ''} |")
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    text = RESULTS.read_text()
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument("--no-write", action="store_true", help="print the table; leave RESULTS.md alone")
    parser.add_argument("--jobs", type=int, default=2, help="CLI cases run at once (default 2)")
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="fault_sweep_") as name:
        tmp = Path(name)
        files = tmp / "files"
        files.mkdir()
        library = library_file_cases(files)
        confined, root = confine_cases(tmp)
        big = big_files(tmp)
        library += [Case(f"library load: {label} ({path.stat().st_size / (1 << 20):.0f} MB)", "load", "read",
                         str(path), counts=counts, big=True) for label, (path, counts) in big.items()]
        print(f"{len(library) + len(confined)} library cases generated", file=sys.stderr, flush=True)
        cli, mounts = cli_cases(tmp, files, root, big)
        everything = [c for c in library + confined + cli if not args.only or args.only in c.name]
        print(f"{len(everything)} cases", file=sys.stderr, flush=True)
        results: dict[int, Observed] = {}
        worker = LibraryWorker(tmp)
        try:
            for i, case in enumerate(everything):
                if case.entry != "cli":
                    results[i] = worker.run(case)
                    print(f"[{len(results)}/{len(everything)}] {case.name}: {results[i].outcome}", file=sys.stderr,
                          flush=True)
        finally:
            worker.close()

        def one(i: int) -> None:
            results[i] = run_cli(everything[i])
            if everything[i].argv[0] == "run":
                results[i].running_listed = _listed_running(everything[i])
            print(f"[{len(results)}/{len(everything)}] {everything[i].name}: {results[i].outcome} "
                  f"{results[i].message[:100]}", file=sys.stderr, flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(one, [i for i, c in enumerate(everything) if c.entry == "cli"]))
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        rows = [(case, results[i]) for i, case in enumerate(everything)]
        for case in everything:
            case.prepare = None
        with open(Path(tempfile.gettempdir()) / "fault_sweep_rows.pkl", "wb") as dump:   # to re-render the table
            pickle.dump(rows, dump)
        section = table(rows, time.time() - started)
    print(section)
    if not args.no_write and not args.only:
        write_results(section)


def _listed_running(case: Case) -> int:
    """Runs `runs --json` lists as 'running' in the case's workspace afterwards (orphans are failed first)."""
    done = subprocess.run([sys.executable, "-m", "recexp", "runs", "--json"], cwd=REPO,
                          env=cli_env(case.home, case.env), capture_output=True, text=True, timeout=300)
    try:
        return sum(r["status"] == "running" for r in json.loads(done.stdout)["runs"])
    except (ValueError, KeyError):
        return 0


if __name__ == "__main__":
    main()
