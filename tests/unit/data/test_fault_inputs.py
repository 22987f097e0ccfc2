"""Bad and hostile input through the command line, as an operator runs it: a one-line sentence, a non-zero
exit, no traceback, no native abort, no file content echoed, and the run store untouched; peak memory
checked by a resident-memory watchdog. The parametrisation is the table of cases (see tests/fault_cases.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recexp.runs import SQLiteRunStore

ROOT = Path(__file__).resolve().parents[3]
PASSWD_CONTENT = ("root:", "/bin/", "nologin")      # what /etc/passwd's lines hold; never in a message

# case (a key of the bad_inputs fixture), what the one-line message must say
REFUSED = [
    ("gzip_bomb.csv.gz", "unpacks to more than 200 MB"),                    # 2 GB inside, trailer says 20 MB
    ("zip_bomb.zip", "unpacks to more than 200 MB"),                        # 400 MB member, declared
    ("zip_of_gzip_bomb.zip", "unpacks to more than"),                       # a gzip bomb as a zip member
    ("parquet_bomb.parquet", "unpacks to more than 200 MB"),                # 240 MB of zeros in a few KB
    ("row_20mb.csv", "is too long to read: recexp reads rows of up to 4 MB"),
    ("first_line_2mb.csv", "The first line of 'first_line_2mb.csv' is over 1 MB long"),   # was _csv.Error
    ("mixed_utf8_gbk.csv", "mixes text encodings: 100 lines (lines 2, 3, 4, 5, 6, ...) are UTF-8 and 100 lines "
                           "(lines 102, 103, 104, 105, 106, ...) are GBK"),
    ("utf8_latin1.csv", "are UTF-8, while 50 lines (lines 102, 105, 106, 109, 110, ...) are neither UTF-8 nor GBK"
                        ": the text looks like a single-byte encoding such as Latin-1"),
    ("png_image.csv", "it is a PNG image"),
    ("damaged.csv.gz", "damaged or cut short"),
    ("pipe.csv", "is a named pipe (FIFO), not a regular file"),
    ("proc_environ", "is in /proc, /sys or /dev"),
    ("etc_passwd", "was read as a single column"),                          # the operator's CLI reads it...
    ("link_to_passwd.csv", "was read as a single column"),                  # ...but echoes none of it
]


@pytest.fixture
def earlier_runs() -> list[str]:
    """Runs already in the workspace's store before the bad input arrives."""
    store = SQLiteRunStore.open()
    experiment = store.create_experiment("earlier work")
    return [store.create_run(experiment.id, {"task": "behavior", "seed": seed}, name=f"seed {seed}").id
            for seed in range(3)]


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recexp", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def _assert_one_sentence(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])   # negative: killed by a signal
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert expected in lines[0]
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr
    assert not any(content in lines[0] for content in PASSWD_CONTENT)
    assert result.stdout == ""


@pytest.mark.parametrize("case, expected", REFUSED, ids=[case for case, _ in REFUSED])
def test_cli_refuses_bad_input_in_one_sentence(bad_inputs, earlier_runs, case, expected):
    _assert_one_sentence(_cli("inspect", str(bad_inputs[case])), expected)
    assert sorted(run.id for run in SQLiteRunStore.open().list_runs()) == sorted(earlier_runs)


@pytest.mark.parametrize("case, expected", [
    ("field_200kb.csv", "301 rows kept of 301 read"),            # a 200 KB field is read, not a csv traceback
    ("all_gbk.csv", "classes (behavior task): view 50, cart 50, fav 50, buy 50"),  # GBK alone: 4 classes
])
def test_cli_reads_large_fields_and_pure_gbk(bad_inputs, case, expected):
    result = _cli("inspect", str(bad_inputs[case]))
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout


def test_mixed_encodings_are_refused_in_the_library_too(bad_inputs):
    from recexp.data import load
    from recexp.errors import InvalidDataError

    with pytest.raises(InvalidDataError, match="mixes text encodings"):
        load(bad_inputs["mixed_utf8_gbk.csv"])
    # UTF-8 first in the file and GBK past the sniffed megabyte: caught on the full read, not trained on
    utf8_head = bad_inputs["mixed_utf8_gbk.csv"].read_bytes().split(b"\n")
    late = b"\n".join(utf8_head[:101] + [b"1,2,pv,1511544070"] * 80_000 + utf8_head[101:])
    with pytest.raises(InvalidDataError, match=r"are UTF-8 and 100 lines \(lines 80,102"):
        load(("late.csv", late))


def test_gzip_bomb_stays_under_a_gigabyte(bad_inputs, rss_peak):
    peak, code, stderr = rss_peak([sys.executable, "-c", "import sys\nfrom recexp.data import load\n"
                                   "from recexp.errors import RecexpError\n"
                                   f"try:\n    load({str(bad_inputs['gzip_bomb.csv.gz'])!r})\n"
                                   "except RecexpError as error:\n    sys.exit(str(error))"])
    assert code == 1 and "unpacks to more than 200 MB" in stderr and "Traceback" not in stderr
    assert peak < 1024, f"peak resident memory {peak:.0f} MB"


@pytest.mark.parametrize("command, first", [
    (["apply", "--task", "behavior", "--strategy", "random_over", "--out", "{tmp}/train.parquet"], False),
    (["run", "--task", "behavior", "--strategy", "none", "--model", "logreg", "--seeds", "1", "--epochs", "1"], False),
    (["apply", "--task", "behavior", "--strategy", "random_over", "--out", "{tmp}/train.parquet"], True),
], ids=["apply", "run", "apply-first-line"])
def test_200mb_line_is_refused_without_native_abort(tmp_path, rss_peak, earlier_runs, command, first):
    path = tmp_path / "one_long_line.csv"
    rows = b"".join(f"{u},{u},{'pv' if u % 3 else 'buy'},{1511544070 + u}\n".encode() for u in range(300))
    with open(path, "wb") as out:
        if not first:
            out.write(b"user_id,item_id,behavior_type,timestamp\n" + rows)
        out.write(b"1,2,pv,")
        for _ in range(200):
            out.write(b"7" * 1_000_000)
        out.write(b"\n" + rows)
    argv = [sys.executable, "-m", "recexp", command[0], str(path), *(a.format(tmp=tmp_path) for a in command[1:])]
    peak, code, stderr = rss_peak(argv)
    assert code == 2, stderr[-2000:]            # -6 would be SIGABRT
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]    # run also shows progress
    assert len(errors) == 1 and stderr.strip().endswith(errors[0])
    assert ("is over 1 MB long" if first else "too long to read") in errors[0]
    assert "Traceback" not in stderr and "terminate called" not in stderr
    assert peak < 1024, f"peak resident memory {peak:.0f} MB"
    assert sorted(run.id for run in SQLiteRunStore.open().list_runs()) == sorted(earlier_runs)


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "gzip"])
def test_200mb_upload_is_read_under_a_gigabyte(tmp_path, taobao_csv, rss_peak, compressed):
    """The upload limit's worth of a real log (the Taobao sample repeated to 190 MB), plain and gzip."""
    import gzip

    lines = taobao_csv.read_bytes()
    lines = lines[:lines.rfind(b"\n") + 1]                  # without the sample's truncated last line
    path = tmp_path / ("big.csv.gz" if compressed else "big.csv")
    with (gzip.open(path, "wb", compresslevel=1) if compressed else open(path, "wb")) as out:
        for _ in range(190_000_000 // len(lines)):
            out.write(lines)
    # inspect reads the file and counts the task's classes (without building the task's features)
    peak, code, stderr = rss_peak([sys.executable, "-m", "recexp", "inspect", str(path), "--json"])
    assert code == 0, stderr[-2000:]
    assert peak < 1024, f"peak resident memory {peak:.0f} MB"


@pytest.mark.parametrize("stage", ["read_raw", "build_log"])
def test_running_out_of_memory_is_a_sentence(monkeypatch, taobao_csv, stage):
    import pyarrow as pa

    import recexp.data as data
    from recexp.errors import InvalidDataError

    def exhausted(*args, **kwargs):
        raise pa.ArrowMemoryError("malloc of size 4294967296 failed") if stage == "read_raw" else MemoryError()

    monkeypatch.setattr(data, stage, exhausted)        # as the reader or the normaliser would fail
    with pytest.raises(InvalidDataError, match="Reading 'UserBehavior_sample.csv' ran out of memory"):
        data.load(taobao_csv)


def test_utf8_forbidden_forms_are_judged_line_by_line():
    from recexp.data import load
    from recexp.errors import InvalidDataError

    # an encoded surrogate (ED A0 80) has UTF-8's shape but is not UTF-8: a sentence, not a UnicodeDecodeError
    text = b"user_id,item_id,behavior_type,timestamp\n1,2,pv\xed\xa0\x80,1511544070\n" + b"3,4,buy,1511544071\n" * 10
    with pytest.raises(InvalidDataError, match=r"1 line \(line 2\) is neither UTF-8 nor GBK"):
        load(("surrogate.csv", text))


@pytest.mark.parametrize("out, expected", [
    ("/proc/nope.parquet", "--out: Could not write /proc/nope.parquet: there is no such file or folder."),
    ("/proc/folder/nope.parquet", "--out: Could not create /proc/folder: there is no such file or folder."),
], ids=["file", "folder"])
def test_apply_names_an_output_path_it_cannot_write(taobao_csv, out, expected):
    _assert_one_sentence(_cli("apply", str(taobao_csv), "--task", "behavior", "--strategy", "none", "--out", out),
                         expected)
