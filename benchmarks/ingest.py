"""Ingestion benchmark: recexp's loader + purchase-task features vs. a plain-pandas reference, same run.

    python benchmarks/ingest.py                 # 10 million events
    python benchmarks/ingest.py --rows 1000000  # smaller

Generates (or reuses, from ``--cache-dir``) a synthetic Taobao-like log CSV (``recexp.data.synthetic``),
warms the OS file cache, then runs each side in its own subprocess:

* **recexp**: ``recexp.data.load`` (read, infer mapping, convert, validate, sort, fingerprint) and
  ``recexp.tasks.build_dataset(log, "purchase", sequence_length=0)``;
* **reference**: default ``pandas.read_csv``, ``pandas.to_datetime`` (no sort: the windows are masks) and
  ``groupby`` aggregations that compute the same purchase-task features (per anchor: behaviour counts per
  user, item, category, user-category and user-item over the feature window, hours since the user's and
  the pair's last event, item popularity, hour, weekday, and the buy label of the next window).

Each side's time covers its work only (not interpreter start-up or imports); with ``--repeat N`` the
fastest of N fresh processes counts, the two sides taking turns so that both meet the same background
load (the load average is printed: other work on the machine slows both sides). The CPU time of that
run (``time.process_time``: all of the process's threads, same span) is printed too: on a busy machine
it moves less than wall time, and recexp's threads are then of little help to it. Peak memory is the
child's maximum resident set size, read from the rusage the kernel reports for that child when it is
reaped (``os.wait4``; ``resource.getrusage(RUSAGE_CHILDREN)`` would fold both children into one
maximum). Prints rows/s of each side, their ratio and peak memory; goals: recexp >= 2x the reference's
rows/s, under 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 2.0
GOAL_PEAK_GB = 4.0
N_WINDOWS, WINDOW_DAYS = 5, 1.0     # the purchase task's defaults, used on both sides


def _recexp(path: str) -> dict:
    from recexp.data import load

    try:
        from recexp.tasks import build_dataset
    except ImportError:
        build_dataset = None
    start, cpu = time.perf_counter(), time.process_time()
    log = load(path)
    loaded = time.perf_counter()
    result = {"rows": log.report.rows_kept, "load_s": loaded - start}
    if build_dataset is not None:
        dataset = build_dataset(log, "purchase", label_window_days=WINDOW_DAYS, feature_window_days=WINDOW_DAYS,
                                n_windows=N_WINDOWS, sequence_length=0)
        result["samples"] = len(dataset)
        result["positives"] = int(dataset.y.sum())
    else:
        result["note"] = "recexp.tasks is not available: load + validate only"
    result["seconds"] = time.perf_counter() - start
    result["cpu_s"] = time.process_time() - cpu
    result["features_s"] = result["seconds"] - result["load_s"]
    return result


def _reference(path: str) -> dict:
    import pandas as pd

    start, cpu = time.perf_counter(), time.process_time()
    df = pd.read_csv(path)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
    loaded = time.perf_counter()
    hour, day = pd.Timedelta(hours=1), pd.Timedelta(days=WINDOW_DAYS)
    end = df["timestamp"].max().floor("s") + pd.Timedelta(seconds=1)
    scopes = {"user": ["user_id"], "item": ["item_id"], "category": ["category_id"],
              "user_category": ["user_id", "category_id"], "user_item": ["user_id", "item_id"]}
    parts = []
    for k in range(N_WINDOWS, 0, -1):
        anchor = end - k * day
        feature = df[(df["timestamp"] >= anchor - day) & (df["timestamp"] < anchor)]
        label = df[(df["timestamp"] >= anchor) & (df["timestamp"] < anchor + day)]
        if feature.empty:
            continue
        pairs = feature.groupby(["user_id", "item_id"], sort=False).agg(
            last=("timestamp", "max"), category_id=("category_id", "last")).reset_index()
        for scope, keys in scopes.items():
            counts = (feature.groupby(keys + ["behavior_type"], observed=True).size()
                      .unstack(fill_value=0).add_prefix(f"{scope}_").add_suffix("_count"))
            pairs = pairs.merge(counts, left_on=keys, right_index=True, how="left")
        user_last = feature.groupby("user_id")["timestamp"].max()
        pairs["user_hours_since_prev"] = (anchor - pairs["user_id"].map(user_last)) / hour
        pairs["user_item_hours_since_prev"] = (anchor - pairs["last"]) / hour
        item_columns = [c for c in pairs.columns if c.startswith("item_") and c.endswith("_count")]
        pairs["item_popularity"] = pairs[item_columns].sum(axis=1) / len(feature)
        pairs["hour"] = pairs["last"].dt.hour
        pairs["weekday"] = anchor.weekday()
        bought = label.loc[label["behavior_type"] == "buy", ["user_id", "item_id"]].drop_duplicates()
        pairs["label"] = pd.MultiIndex.from_frame(pairs[["user_id", "item_id"]]).isin(
            pd.MultiIndex.from_frame(bought))
        parts.append(pairs)
    features = pd.concat(parts, ignore_index=True)
    seconds = time.perf_counter() - start
    return {"rows": len(df), "load_s": loaded - start, "features_s": seconds - (loaded - start),
            "seconds": seconds, "cpu_s": time.process_time() - cpu, "samples": len(features),
            "positives": int(features["label"].sum())}


def _run_child(side: str, path: Path) -> dict:
    child = subprocess.Popen([sys.executable, __file__, "--worker", side, "--file", str(path)],
                             stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the {side} worker failed with exit code {child.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_gb"] = usage.ru_maxrss * 1024 / 1e9     # ru_maxrss is in KiB on Linux
    return result


def _dataset(rows: int, seed: int, cache_dir: Path) -> Path:
    from recexp.data.synthetic import generate_log, write_log

    target = cache_dir / f"synthetic_{rows}rows_seed{seed}.csv"
    if not target.exists():
        started = time.perf_counter()
        write_log(generate_log(rows, seed=seed), cache_dir, name=f"{rows}rows_seed{seed}")
        print(f"generated {target} in {time.perf_counter() - started:.1f} s")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="events in the synthetic log")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "recexp-bench",
                        help="where the generated CSV is kept between runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each side this many times (fresh process each); report the fastest")
    parser.add_argument("--worker", choices=["recexp", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps((_recexp if args.worker == "recexp" else _reference)(args.file)))
        return

    path = _dataset(args.rows, args.seed, args.cache_dir)
    with open(path, "rb") as handle:                       # warm the page cache for both sides alike
        while handle.read(64 << 20):
            pass
    size_mb = path.stat().st_size / 1e6
    print(f"input: {path} ({args.rows:,} events, {size_mb:,.0f} MB), {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    runs: dict[str, list[dict]] = {"reference": [], "recexp": []}
    for _ in range(args.repeat):                # interleaved, so both sides meet the same background load
        for side in runs:
            runs[side].append(_run_child(side, path))
    results = {side: dict(min(done, key=lambda r: r["seconds"]), peak_gb=max(r["peak_gb"] for r in done))
               for side, done in runs.items()}
    print(f"{'side':<10} {'load s':>8} {'features s':>11} {'total s':>8} {'rows/s':>12} {'CPU s':>7} "
          f"{'peak GB':>8} {'samples':>11}")
    for side, r in results.items():
        print(f"{side:<10} {r['load_s']:>8.2f} {r['features_s']:>11.2f} {r['seconds']:>8.2f} "
              f"{r['rows'] / r['seconds']:>12,.0f} {r['cpu_s']:>7.2f} {r['peak_gb']:>8.2f} {r.get('samples', 0):>11,}")
        if "note" in r:
            print(f"  note: {r['note']}")
    ratio = (results["recexp"]["rows"] / results["recexp"]["seconds"]) / (
        results["reference"]["rows"] / results["reference"]["seconds"])
    peak = results["recexp"]["peak_gb"]
    cpu_ratio = results["reference"]["cpu_s"] / results["recexp"]["cpu_s"]
    print(f"recexp / reference rows/s: {ratio:.2f}x (goal >= {GOAL_RATIO:g}x: "
          f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}); recexp peak {peak:.2f} GB "
          f"(goal < {GOAL_PEAK_GB:g} GB: {'met' if peak < GOAL_PEAK_GB else 'NOT met'})")
    print(f"CPU time, reference / recexp: {cpu_ratio:.2f}x (all threads; less sensitive than wall time to other "
          f"work on the machine; load average after: {os.getloadavg()[0]:.1f})")
    if results["recexp"].get("samples") and results["recexp"]["samples"] != results["reference"]["samples"]:
        print(f"note: sample counts differ (recexp {results['recexp']['samples']:,}, reference "
              f"{results['reference']['samples']:,}); check the two feature definitions still match")


if __name__ == "__main__":
    main()
