"""Out-of-core engine: DuckDB (recexp's build) against polars' streaming engine, the same behaviour dataset.

    python benchmarks/engines.py --rows 1000000 --repeat 5        # equality check, then 5 alternated runs each
    python benchmarks/engines.py --rows 10000000 --repeat 2
    python benchmarks/engines.py --rows 30000000 --repeat 1
    python benchmarks/engines.py --rows 100000 --repeat 1         # smoke check (under a minute)

Both engines build the behaviour task's dataset (defaults: sequence length 10, 20,000-id vocabularies,
temporal split 0.2 / 0.1) from the CSV of a synthetic Taobao-like log (recexp's generator, seed 0, cached
in ``--cache-dir`` as ``benchmarks/scale.py`` caches it) to partitioned Parquet:

* ``duckdb``: :func:`recexp.outofcore.build_on_disk` itself (pyarrow streams the CSV into Parquet, DuckDB
  computes the features with window functions and streams them out), under recexp's memory setting
  (``RECEXP_MEMORY_LIMIT``, DuckDB gets 60% of it and spills past it);
* ``polars``: the same columns from a polars LazyFrame pipeline run by the streaming engine
  (``sink_parquet`` / ``collect(engine="streaming")``): the CSV is scanned, mapped and sorted by time into
  an events Parquet file; the classes, the split's time cuts and the vocabularies are small aggregations; the
  features (per-class counts of each scope strictly earlier in time, hours since the previous event of the
  user and of the user-item pair, item popularity, hour, weekday, item and category codes, and the user's
  last ``sequence_length`` events before the event's second) are window expressions (``over``) written with
  ``sink_parquet(pl.PartitionBy(...))`` into ``part=train|valid|test``. By default polars sets no memory
  limit;
* ``polars-budget``: the same pipeline with polars' experimental out-of-core spilling turned on
  (``POLARS_OOC_MEMORY_BUDGET_MB`` = DuckDB's share of recexp's memory setting, ``POLARS_OOC_SPILL_DIR`` in
  the build's folder): a budget its spilling operators aim at, not a limit (operators that cannot spill,
  such as the window expressions' in-memory fallback, go past it).

Both also hash the file (the dataset's fingerprint, as ``build_on_disk`` does), so they do the same work.

Before any timing, both outputs are built on the bundled Taobao sample and on each log up to
``--check-max-rows`` events and compared column by column (row order, values and Arrow types of every
feature, the label, user, item and time, in each part); the benchmark stops if they differ. Then each engine
runs in its own child process, alternated ``--repeat`` times, and its wall time and peak resident memory
(the child's maximum RSS from ``os.wait4``, as in ``benchmarks/scale.py``) are printed with the load average
at its start; the last lines are the medians, the spreads and the ratios polars / DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import ROOT, _log, cache_and_env  # noqa: E402
from scale import _measure as measure  # noqa: E402

ENGINES = ("duckdb", "polars", "polars-budget")
SEQUENCE_LENGTH = 10
MAX_VOCAB = 20_000
#: Bits of each field in the packed history value (item code, category code, behaviour + 1).
_BITS = 21

# The builds run in child processes; the parent imports neither polars nor recexp, so that the peak RSS of a
# child (ru_maxrss, which counts the image the child had before ``exec``) is the child's own.


def build_duckdb(path: Path, out: Path) -> tuple[int, float]:
    """The behaviour dataset of ``path`` built by recexp (DuckDB) into ``out``; returns its rows and the seconds
    spent reading (hashing the file and streaming it into the events Parquet file)."""
    from recexp.outofcore import build_on_disk
    from recexp.tasks import SplitSpec

    start, read = time.perf_counter(), []

    def progress(phase: str, rows: int, fraction: float) -> None:
        if phase != "reading" and not read:
            read.append(time.perf_counter() - start)

    rows = len(build_on_disk(path, "behavior", SplitSpec(), folder=out, progress=progress,
                             sequence_length=SEQUENCE_LENGTH, max_vocab=MAX_VOCAB))
    return rows, read[0]


def build_polars(path: Path, out: Path) -> tuple[int, float]:
    """The behaviour dataset of ``path`` built by polars' streaming engine into ``out/dataset/part=*/``; returns its
    rows and the seconds spent reading (hashing the file and writing the events Parquet file sorted by time).

    The same columns, values, types and row order as :func:`recexp.outofcore.build_on_disk` (checked by
    :func:`compare`); CSV logs with epoch timestamps only, no sampling.
    """
    import numpy as np
    import polars as pl

    from recexp.data.log import BEHAVIOR_SYNONYMS
    from recexp.dataset import ITEM, LABEL, TIME, USER, code_dtype
    from recexp.outofcore import _NS, FILE_ROWS, _layout, _file_digest
    from recexp.tasks import NS_PER_DAY, NS_PER_HOUR, SplitSpec, _behavior_classes, _cut_time, _sequence_columns, _slug

    streaming = {"engine": "streaming"}
    split = SplitSpec()
    start = time.perf_counter()
    _file_digest(path)                 # the dataset's fingerprint, as build_on_disk hashes the file
    layout = _layout(path, None, None)
    if layout.kind != "csv" or layout.time_unit is None:
        raise SystemExit("the polars side reads CSV logs with epoch timestamps only")
    out.mkdir(parents=True)
    events = out / "events.parquet"
    m = layout.mapping
    raw = pl.scan_csv(path, has_header=layout.header, new_columns=None if layout.header else layout.names,
                      separator=layout.delimiter, schema_overrides={m["behavior"]: pl.String})
    trimmed = pl.col(m["behavior"]).str.strip_chars()
    lower = trimmed.str.to_lowercase()
    behaviour = pl.when(lower.is_in(list(BEHAVIOR_SYNONYMS))).then(
        lower.replace_strict(BEHAVIOR_SYNONYMS, default=None, return_dtype=pl.String)).otherwise(trimmed)
    ids = {role: pl.col(m[name]).cast(pl.Int64) if name in m else pl.lit(None, pl.Int64)
           for role, name in (("u", "user"), ("i", "item"), ("c", "category"))}
    (raw.with_row_index("rn")
     .select("rn", **ids, b=behaviour, t=pl.col(m["timestamp"]).cast(pl.Int64) * _NS[layout.time_unit])
     .filter(pl.col("u").is_not_null() & pl.col("i").is_not_null() & pl.col("t").is_not_null()
             & (pl.col("b").fill_null("") != ""))
     .sort("t", "rn").with_row_index("pos").select(pl.col("pos").cast(pl.Int64), "u", "i", "c", "b", "t")
     .sink_parquet(events, **streaming))
    read = time.perf_counter() - start

    ev = pl.scan_parquet(events)
    classes = _behavior_classes(set(ev.select(pl.col("b").unique()).collect(**streaming)["b"].to_list()))
    seconds = ev.group_by("t").len().sort("t").collect(**streaming)
    times, counts = seconds["t"].to_numpy(), seconds["len"].to_numpy().astype(np.int64)
    test_start = _cut_time(times, counts, split.test_size, "test")
    before = times < test_start
    valid_start = _cut_time(times[before], counts[before], split.valid_size, "validation")
    first_time = int(times[0])
    has_category = ev.select(pl.col("c").is_not_null().any()).collect(**streaming).item()
    code_type = pl.from_numpy(np.zeros(1, dtype=code_dtype(MAX_VOCAB))).dtypes[0]
    behaviour_type = pl.from_numpy(np.zeros(1, dtype=code_dtype(len(classes)))).dtypes[0]
    if MAX_VOCAB >= 1 << _BITS:
        raise SystemExit(f"the packed history holds codes below 2**{_BITS}")

    def codes(column: str) -> pl.Expr:
        """Codes of the ``MAX_VOCAB`` most frequent ids before the test cut (ties: first seen), by first appearance."""
        vocab = (ev.filter(pl.col(column).is_not_null() & (pl.col("t") < test_start))
                 .group_by(column).agg(n=pl.len(), first=pl.col("pos").min())
                 .sort(["n", "first"], descending=[True, False]).head(MAX_VOCAB).sort("first")
                 .collect(**streaming))
        return pl.col(column).replace_strict(vocab[column], np.arange(1, len(vocab) + 1), default=0,
                                             return_dtype=code_type)

    names = [_slug(c) for c in classes]
    scopes = {"user": ["u"], "item": ["i"]}
    if has_category:
        scopes.update(category=["c"], user_category=["u", "c"])
    scopes["user_item"] = ["u", "i"]
    flags = {f"is{k}": (pl.col("b") == k).cast(pl.UInt32) for k in range(len(classes))}
    packed = (pl.col("item_code").cast(pl.Int64) + pl.col("cat_code").cast(pl.Int64) * (1 << _BITS)
              + (pl.col("b").cast(pl.Int64) + 1) * (1 << 2 * _BITS))
    # Step 1, per row in time order: what came before it within its scope (exclusive running counts, the
    # previous time, the previous events); step 2: the value at the first row of the row's (scope, second)
    # block, so that events of the same second never see each other.
    step1 = {f"x_{scope}_{k}": (pl.col(f"is{k}").cum_sum() - pl.col(f"is{k}")).over(key)
             for scope, key in scopes.items() for k in range(len(classes))}
    step1 |= {"prev_user": pl.col("t").shift(1).over("u"), "prev_user_item": pl.col("t").shift(1).over(["u", "i"])}
    step1 |= {f"s{j}": packed.shift(j + 1).over("u") for j in range(SEQUENCE_LENGTH)}
    step2 = {f"n_{scope}_{k}": pl.col(f"x_{scope}_{k}").first().over([*key, "t"])
             for scope, key in scopes.items() for k in range(len(classes))}
    step2 |= {"prev_user": pl.col("prev_user").first().over(["u", "t"]),
              "prev_user_item": pl.col("prev_user_item").first().over(["u", "i", "t"])}
    step2 |= {f"s{j}": pl.col(f"s{j}").first().over(["u", "t"]).fill_null(0) for j in range(SEQUENCE_LENGTH)}
    columns = {}
    for scope in scopes:
        for k, name in enumerate(names):
            count = pl.col(f"n_{scope}_{k}")
            if scope in ("category", "user_category"):
                count = pl.when(pl.col("c").is_null()).then(0).otherwise(count)
            columns[f"{scope}_{name}_count"] = count.cast(pl.Float32)

    def hours(previous: str) -> pl.Expr:
        return ((pl.col("t") - pl.col(previous).fill_null(first_time)).cast(pl.Float64) / NS_PER_HOUR).cast(pl.Float32)

    item_total = pl.sum_horizontal(pl.col(f"n_item_{k}").cast(pl.Int64) for k in range(len(classes)))
    columns |= {"user_hours_since_prev": hours("prev_user"), "user_item_hours_since_prev": hours("prev_user_item"),
                "item_popularity": (item_total.cast(pl.Float64) / pl.max_horizontal("earlier", 1)).cast(pl.Float32),
                "hour": ((pl.col("t") % NS_PER_DAY) // NS_PER_HOUR).cast(pl.Float32),
                "weekday": ((pl.col("t") // NS_PER_DAY + 3) % 7).cast(pl.Float32),
                "item": pl.col("item_code")}
    if has_category:
        columns["category"] = pl.col("cat_code")
    fields = {"hist_item": (0, code_type), "hist_category": (_BITS, code_type), "hist_behavior": (2 * _BITS, behaviour_type)}
    for group, names_j in _sequence_columns(SEQUENCE_LENGTH, has_category).items():
        shift, dtype = fields[group]
        columns |= {name: (pl.col(f"s{j}") // (1 << shift) % (1 << _BITS)).cast(dtype) for j, name in enumerate(names_j)}
    columns |= {LABEL: pl.col("b").cast(pl.Int64), USER: pl.col("u"), ITEM: pl.col("i"),
                TIME: pl.col("t").cast(pl.Datetime("ns", "UTC"))}
    part = (pl.when(pl.col("t") < valid_start).then(pl.lit("train"))
            .when(pl.col("t") < test_start).then(pl.lit("valid")).otherwise(pl.lit("test")))
    (ev.with_columns(b=pl.col("b").replace_strict(classes, range(len(classes)), return_dtype=pl.Int8),
                     item_code=codes("i"), cat_code=codes("c") if has_category else pl.lit(0, code_type),
                     earlier=pl.col("pos").min().over("t"))
     .with_columns(**flags).with_columns(**step1).with_columns(**step2)
     .select(**columns, part=part)
     .sink_parquet(pl.PartitionBy(out / "dataset", key="part", include_key=False, max_rows_per_file=FILE_ROWS),
                   mkdir=True, **streaming))
    events.unlink()
    return int(counts.sum()), read


def _part_tables(folder: Path):
    """Each part's rows of a dataset folder (``part=<name>/*.parquet``) as one Arrow table, files in name order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return {part: pa.concat_tables([pq.read_table(f) for f in sorted((folder / f"part={part}").glob("*.parquet"))])
            for part in ("train", "valid", "test")}


def compare(path: Path, work: Path) -> str:
    """Build ``path``'s dataset with both engines under ``work`` and compare them; "" if equal, else what differs."""
    import numpy as np

    duck, polar = work / "duckdb", work / "polars"
    build_duckdb(path, duck)
    build_polars(path, polar)  # the same pipeline as polars-budget's
    duck_parts, polar_parts = _part_tables(duck), _part_tables(polar / "dataset")
    for part, expected in duck_parts.items():
        got = polar_parts[part]
        if got.num_rows != expected.num_rows:
            return f"{part}: {got.num_rows} rows from polars, {expected.num_rows} from DuckDB"
        if got.column_names != expected.column_names:
            return f"{part}: columns {got.column_names} from polars, {expected.column_names} from DuckDB"
        for name in expected.column_names:
            a, b = expected[name].combine_chunks(), got[name].combine_chunks()
            if a.type != b.type:
                return f"{part}.{name}: type {b.type} from polars, {a.type} from DuckDB"
            if not a.equals(b):
                x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
                first = int(np.flatnonzero(x != y)[0]) if len(x) else 0
                return f"{part}.{name}: row {first} is {y[first]!r} from polars, {x[first]!r} from DuckDB"
    return ""


def _child(engine: str, path: str, out: str) -> None:
    if engine == "polars-budget":        # set before polars is imported, which reads them
        from recexp.memory import memory_limit
        from recexp.outofcore import DUCKDB_SHARE

        os.environ["POLARS_OOC_MEMORY_BUDGET_MB"] = str(int(memory_limit() * DUCKDB_SHARE) >> 20)
        os.environ["POLARS_OOC_SPILL_DIR"] = str(Path(out).parent / "spill")
    start = time.perf_counter()
    rows, read = (build_duckdb if engine == "duckdb" else build_polars)(Path(path), Path(out))
    print(json.dumps({"seconds": time.perf_counter() - start, "read_s": read, "rows": rows}))


def _check(paths: list[str], work: str) -> None:
    for path in paths:
        with tempfile.TemporaryDirectory(dir=work) as folder:
            difference = compare(Path(path), Path(folder))
        if difference:
            print(f"DIFFERENT on {path}: {difference}")
            raise SystemExit(1)
        print(f"equal on {path}: every column of every part, same rows in the same order", flush=True)


def _measure(command: list[str], env: dict, floor_gb: float) -> dict:
    """:func:`scale._measure` (killed under ``floor_gb`` of available memory: polars has no memory limit) and the
    seconds the child spent reading."""
    result = measure(command, env, floor_gb)
    if result["rc"] == 0:
        result["read_s"] = round(json.loads(result["stdout"].strip().splitlines()[-1])["read_s"], 1)
    return result


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="polars-budget: polars with its experimental spilling on, POLARS_OOC_MEMORY_BUDGET_MB "
                             "set to DuckDB's share of the memory setting")
    parser.add_argument("--check-max-rows", type=int, default=1_000_000,
                        help="compare the two outputs on logs up to this many events (and the bundled sample)")
    parser.add_argument("--min-free-gb", type=float, default=3.0,
                        help="kill a build when the machine's available memory falls under this (GB)")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "recexp-scale"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    cache, env = cache_and_env(args.cache_dir)
    if args.check:
        _check(args.check[1:], args.check[0])
        return
    print(f"# {os.cpu_count()} cores, load average {_load()}; RECEXP_MEMORY_LIMIT="
          f"{os.environ.get('RECEXP_MEMORY_LIMIT', '(unset: 4 GiB, or half of RAM if less)')}; DuckDB gets 60% of it; "
          "polars none; polars-budget a spilling budget the size of DuckDB's", flush=True)
    logs = {rows: _log(rows, cache, env) for rows in args.rows}
    sample = ROOT / "data" / "taobao_userbehavior" / "UserBehavior_sample.csv"
    checked = [str(sample)] + [str(p) for rows, p in logs.items() if rows <= args.check_max_rows]
    if subprocess.run([sys.executable, __file__, "--check", str(cache), *checked], env=env).returncode:
        raise SystemExit("The two engines' outputs differ: no timing.")
    for rows, path in logs.items():
        print(f"## {rows:,} events: {path} ({path.stat().st_size / 2**30:.2f} GB)", flush=True)
        results: dict[str, list[dict]] = {}
        for _ in range(args.repeat):                 # alternated: a change in load hits both engines alike
            for engine in args.engines:
                load = _load()
                work = Path(tempfile.mkdtemp(dir=cache))
                try:
                    result = _measure([sys.executable, __file__, "--child", engine, str(path), str(work / "out")], env,
                                      args.min_free_gb)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                result["load"] = load
                results.setdefault(engine, []).append(result)
                print(f"{engine:13s} wall {result['wall_s']:7.1f} s (reading {result.get('read_s', '?')} s)  "
                      f"peak {result['peak_gb']:5.2f} GB  load {load}"
                      f"  rc {result['rc']}{'  ' + result['error'] if 'error' in result else ''}", flush=True)
        ok = {e: [r for r in rs if r["rc"] == 0] for e, rs in results.items()}
        for engine, runs in ok.items():
            if runs:
                walls, peaks = [r["wall_s"] for r in runs], [r["peak_gb"] for r in runs]
                print(f"{engine:13s} median wall {statistics.median(walls):.1f} s ({min(walls)}..{max(walls)}), "
                      f"median peak {statistics.median(peaks):.2f} GB ({min(peaks)}..{max(peaks)}), {len(runs)} runs")
        for engine in ("polars", "polars-budget"):
            if ok.get("duckdb") and ok.get(engine):
                wall, peak = (statistics.median(r[key] for r in ok[engine]) / statistics.median(r[key] for r in ok["duckdb"])
                              for key in ("wall_s", "peak_gb"))
                print(f"ratio {engine} / DuckDB at {rows:,} events: wall {wall:.2f}x, peak {peak:.2f}x", flush=True)


if __name__ == "__main__":
    main()
