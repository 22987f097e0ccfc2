"""Scale benchmark: task datasets from synthetic Taobao-like logs of 10M and 30M events, in memory and out of core.

    python benchmarks/scale.py                                # 10M and 30M events
    python benchmarks/scale.py --rows 1000000 --repeat 3      # a quick look
    python benchmarks/scale.py --rows 30000000 --cases contract-purchase contract-behavior

Generates (or reuses, from ``--cache-dir``) a synthetic log CSV with recexp's generator
(``recexp.data.synthetic``, seed 0), then runs each case in its own process and reports its wall time
and peak resident memory (the child's maximum RSS, from the rusage the kernel reports when it is
reaped, ``os.wait4``):

* ``pandas-read``: ``pandas.read_csv`` of the log and nothing else, the floor of any in-memory path (as
  ``benchmarks/ingest.py`` measures it; only up to ``--memory-max-rows``);
* ``memory-purchase`` / ``memory-behavior``: today's path, ``recexp.data.load`` + ``build_dataset``
  (only up to ``--memory-max-rows``, 10M by default: at 30M the behaviour task runs out of memory);
* ``disk-purchase`` / ``disk-behavior`` / ``disk-behavior-neg10``: ``recexp.outofcore.build_on_disk``
  (the last keeps 10% of the majority class, weighted);
* ``contract-purchase`` / ``contract-behavior``: ``python -m recexp apply LOG --task T --strategy none
  --seed 0 --out PATH --json`` (builds, splits and writes the training split);
* ``run-purchase`` / ``run-purchase-memory``: a run end to end, ``python -m recexp run LOG --task purchase
  --strategy none --epochs 1 --seeds 1 --device cpu --out-of-core yes|no --json`` (temporal split: build,
  one MLP epoch, validation and test scoring, predictions stored), each repeat in a fresh workspace so
  the build is never reused from an earlier one; the in-memory reference only up to ``--memory-max-rows``;
  ``run-purchase-shards`` is ``run-purchase`` with ``--train-from disk`` (memory-mapped shards whatever
  the size, as a training split past the memory setting trains).

The ratio lines compare each out-of-core case with today's path on the same log in the same run.
Goals: the behaviour task at 30M events under 12 GB, the purchase task at 30M under 4 GB; the 100M-event
log end to end (``run-purchase``) in under 30 minutes at under 8 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("pandas-read", "memory-purchase", "memory-behavior", "disk-purchase", "disk-behavior", "disk-behavior-neg10",
         "contract-purchase", "contract-behavior", "run-purchase", "run-purchase-shards", "run-purchase-memory")
GOALS_GB = {("behavior", 30_000_000): 12.0, ("purchase", 30_000_000): 4.0}
#: (peak GB, wall seconds) a whole run must stay under, by events.
RUN_GOALS = {100_000_000: (8.0, 1800.0)}
#: In-memory cases: today's path, measured only up to --memory-max-rows.
IN_MEMORY = ("pandas-read", "memory-purchase", "memory-behavior", "run-purchase-memory")


def _child(case: str, path: str, work: str) -> None:
    """Run one case in this process and print its result as JSON."""
    from recexp.tasks import SplitSpec, build_dataset

    start = time.perf_counter()
    if case == "pandas-read":
        import pandas as pd

        rows = len(pd.read_csv(path))
    elif case.startswith("memory-"):
        from recexp.data import load

        dataset = build_dataset(load(path), case.split("-")[1], split=SplitSpec())
        rows = len(dataset)
    else:
        from recexp.outofcore import Sampling, build_on_disk

        task = case.split("-")[1]
        sampling = Sampling(negative_rate=0.1) if case.endswith("neg10") else None
        dataset = build_on_disk(path, task, SplitSpec(), sampling=sampling, folder=Path(work) / case)
        rows = len(dataset)
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))


class _Reaped(subprocess.Popen):
    """A Popen that reaps its child with ``os.wait4`` to keep the child's own peak RSS (kB)."""

    def _try_wait(self, wait_flags):
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid:
            self._peak_kb = usage.ru_maxrss
        return pid, status


def _available_gb() -> float:
    """The machine's available memory (``MemAvailable``), in GB."""
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:")) / 2**20


def _measure(command: list[str], env: dict, floor_gb: float | None = None) -> dict:
    """Wall time, peak RSS (the child's own, see :class:`_Reaped`), exit code and output (``stdout``) of
    ``command``; with ``floor_gb``, the child is killed when the machine's available memory falls under it (for
    a build with no memory limit of its own, on a shared machine)."""
    start = time.perf_counter()
    process = _Reaped(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = {}

    def watch() -> None:
        while process.poll() is None:
            available = _available_gb()
            if available < floor_gb:
                killed["at"] = available
                process.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    if floor_gb is not None:
        watcher.start()
    out, err = process.communicate()
    if watcher.is_alive():
        watcher.join()
    result = {"wall_s": round(time.perf_counter() - start, 1), "peak_gb": round(process._peak_kb / 2**20, 2),
              "rc": process.returncode, "stdout": out}
    if killed:
        result["error"] = f"killed: the machine's available memory fell to {killed['at']:.1f} GB"
    elif process.returncode != 0:
        result["error"] = (err.strip().splitlines() or ["?"])[-1][:300]
    return result


def _verdict(case: str, rows: int, result: dict) -> str:
    """Whether ``result`` met the goal of ``case`` at ``rows`` events ("" where there is none)."""
    if case in IN_MEMORY:
        return ""
    if case.startswith("run-"):
        if rows not in RUN_GOALS:
            return ""
        peak, wall = RUN_GOALS[rows]
        met = result["peak_gb"] < peak and result["wall_s"] < wall
        return f"  goal < {peak:g} GB and < {wall / 60:g} min: {'met' if met else 'MISSED'}"
    goal = GOALS_GB.get((case.split("-")[1], rows))
    return "" if goal is None else f"  goal < {goal:g} GB: {'met' if result['peak_gb'] < goal else 'MISSED'}"


#: Logs up to this size are generated in one piece (seed 0); larger ones as pieces of this size (see :func:`_generate`).
ONE_PIECE_ROWS = 30_000_000
PIECE_ROWS = 10_000_000


def _generate(rows: str, path: str) -> None:
    """Write the synthetic log of ``rows`` events to ``path`` (in a child: see :func:`_log`).

    Up to :data:`ONE_PIECE_ROWS` it is one ``generate_log(rows, seed=0)``. The generator holds about 200
    bytes per event, so a 100M-event log (20 GB) would not fit this 23 GB machine beside anything else:
    larger logs are pieces of :data:`PIECE_ROWS` events with seeds 0, 1, ... appended to one CSV, each piece
    a shop of its own (its users, items and categories drawn by its seed, 1/100 and 1/15 of its events as
    in one piece), time-ordered within the piece; like the real Taobao file, the whole is not in time order.
    """
    from recexp.data.synthetic import generate_log, write_log

    path, rows = Path(path), int(rows)
    if rows <= ONE_PIECE_ROWS:
        written = write_log(generate_log(rows, seed=0), path.parent, name=path.stem)
        if written != path:
            written.rename(path)
        return
    part = path.with_suffix(".csv.part")
    with part.open("wb") as out:
        for seed, begin in enumerate(range(0, rows, PIECE_ROWS)):
            piece = write_log(generate_log(min(PIECE_ROWS, rows - begin), seed=seed), path.parent,
                              name=f"piece_{seed}")
            with piece.open("rb") as source:
                if seed:
                    source.readline()                     # one header for the whole file
                while chunk := source.read(1 << 24):
                    out.write(chunk)
            piece.unlink()
            print(f"generated {min(begin + PIECE_ROWS, rows):,} of {rows:,} events", file=sys.stderr, flush=True)
    part.replace(path)


def _log(rows: int, cache: Path, env: dict) -> Path:
    """The cached log of ``rows`` events, generated in a child process: a child forked from a parent that held
    the generated frame would report the parent's resident memory as its own peak (``ru_maxrss`` counts the
    image before ``exec``)."""
    path = cache / f"synthetic_{rows}.csv"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--generate", str(rows), str(path)], check=True, env=env)
    return path


def cache_and_env(cache_dir: str) -> tuple[Path, dict]:
    """The cache folder of the logs (created) and the environment of the measured children (recexp importable,
    a workspace in the cache)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    return cache, {**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(cache / "workspace")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 30_000_000])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--memory-max-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "recexp-scale"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.generate:
        _generate(*args.generate)
        return
    cache, env = cache_and_env(args.cache_dir)
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"RECEXP_MEMORY_LIMIT={os.environ.get('RECEXP_MEMORY_LIMIT', '(unset: 4 GiB, or half of RAM if less)')}")
    for rows in args.rows:
        path = _log(rows, cache, env)
        print(f"## {rows:,} events: {path} ({path.stat().st_size / 2**30:.2f} GB)", flush=True)
        results: dict[str, list[dict]] = {}
        cases = [case for case in args.cases if not (case in IN_MEMORY and rows > args.memory_max_rows)]
        for _ in range(args.repeat):                   # repeats interleaved: a change in load hits every case alike
            for case in cases:
                with tempfile.TemporaryDirectory(dir=cache) as work:
                    case_env = env
                    if case.startswith("contract-"):
                        command = [sys.executable, "-m", "recexp", "apply", str(path), "--task", case.split("-")[1],
                                   "--strategy", "none", "--seed", "0", "--out", str(Path(work) / "train.parquet"),
                                   "--json"]
                    elif case.startswith("run-"):
                        command = [sys.executable, "-m", "recexp", "run", str(path), "--task", "purchase",
                                   "--strategy", "none", "--epochs", "1", "--seeds", "1", "--device", "cpu",
                                   "--out-of-core", "no" if case in IN_MEMORY else "yes", "--json"]
                        if case.endswith("-shards"):
                            command += ["--train-from", "disk"]
                        case_env = {**env, "RECEXP_HOME": str(Path(work) / "workspace")}
                    else:
                        command = [sys.executable, __file__, "--child", case, str(path), work]
                    result = _measure(command, case_env)
                results.setdefault(case, []).append(result)
                verdict = _verdict(case, rows, result)
                print(f"{case:22s} wall {result['wall_s']:7.1f} s  peak {result['peak_gb']:6.2f} GB  rc {result['rc']}"
                      f"{verdict}{'  ' + result['error'] if 'error' in result else ''}", flush=True)
        for task, reference_case, disk_case in (("purchase", "memory-purchase", "disk-purchase"),
                                                ("behavior", "memory-behavior", "disk-behavior"),
                                                ("run purchase", "run-purchase-memory", "run-purchase")):
            reference, disk = results.get(reference_case), results.get(disk_case)
            if reference and disk and reference[0]["rc"] == 0 and disk[0]["rc"] == 0:
                ref_wall = statistics.median(r["wall_s"] for r in reference)
                disk_wall = statistics.median(r["wall_s"] for r in disk)
                ref_peak = statistics.median(r["peak_gb"] for r in reference)
                disk_peak = statistics.median(r["peak_gb"] for r in disk)
                spread = f" (walls {[r['wall_s'] for r in disk]} vs {[r['wall_s'] for r in reference]})" \
                    if args.repeat > 1 else ""
                print(f"ratio {task}: out-of-core / in-memory wall {disk_wall / ref_wall:.2f}x, "
                      f"peak {disk_peak / ref_peak:.2f}x{spread}")


if __name__ == "__main__":
    main()
