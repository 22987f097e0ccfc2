"""The neighbour-based samplers with scikit-learn's neighbours against recexp's k-NN backend, same run.

Each line times one recexp strategy end to end (``Strategy.apply`` on the training rows, same seed, same
target mix) twice: with ``knn_backend="sklearn"`` (imbalanced-learn's own ``NearestNeighbors``: on these
25 features a brute-force search) and with another backend (``auto`` by default: the fastest exact
engine, measured on the data; the note of the run says which it took). Sides alternate which goes first.
"same rows" compares the output frames' numeric features and labels (exact engines may differ where
distances tie; ``tests/unit/strategies/test_neighbours.py`` counts those rows).

Columns besides the wall-clock medians and ranges: "CPU s" is the process CPU time (both threads summed;
on a machine shared with other work it is what the call would take on idle cores, at most); "cap" is
scikit-learn's median over the backend side's median time *outside* its neighbour searches, i.e. the
speed-up a search of zero seconds would give (the rest is the same work on both sides: imbalanced-learn
making the rows, recexp building the output frame). The load average is printed at the start and the end.

Peak memory: the process's resident-set high-water mark during the call (``VmHWM``, reset before each call
through ``/proc/self/clear_refs``), so it includes the training frame already in memory.

Data: the bundled Taobao behaviour training split grown with Gaussian noise to ``--rows`` rows, as
``benchmarks/strategies.py`` does (``million_rows``).

    python benchmarks/knn.py --rows 100000 --repeats 5
    python benchmarks/knn.py --rows 1000000 --repeats 2 --only smote --only adasyn_minority --only smote_enn \\
        --extrapolate-sklearn smote_enn

``--estimates`` measures instead what ``Strategy.estimated_seconds`` charges the neighbour-based strategies
with an estimate (the Strategy Lab's "takes about"): the process CPU time of ``apply`` with one torch thread
on stratified samples of the bundled Taobao training split (behaviour task, as
``benchmarks/preview_seconds.py`` does), per ``knn_backend``, beside the estimate:

    python benchmarks/knn.py --estimates --estimate-rows 1000 10000 40000 --estimate-backends sklearn auto faiss

``--extrapolate-sklearn NAME`` does not run NAME with scikit-learn's neighbours (an hour at 1M rows for
SMOTE-ENN) but estimates it: the same sampler's non-neighbour work is the backend side's time minus its
neighbour searches, and scikit-learn's searches are timed on ``--sample-queries`` sampled queries of each
search the backend side made, scaled to all queries. The line says "extrapolated". The backend side then runs
``--repeats - 1`` more times in full (its range and CPU time come from those).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from recexp.data.samples import load_sample  # noqa: E402
from recexp.strategies import get_strategy, stratified_sample  # noqa: E402
from recexp.strategies.neighbours import Neighbours  # noqa: E402
from recexp.tasks import SplitSpec, build_dataset, split_dataset  # noqa: E402
from strategies import million_rows  # noqa: E402

#: name -> (recexp strategy, parameters)
CASES = {
    "smote": ("smote", {}),
    "adasyn": ("adasyn", {}),
    "adasyn_minority": ("adasyn", {"sampling_strategy": "minority"}),
    "borderline_smote": ("borderline_smote", {}),
    "near_miss": ("near_miss", {}),
    "enn": ("edited_nearest_neighbours", {}),
    "tomek": ("tomek_links", {}),
    "smote_enn": ("smote_enn", {}),
    "smote_tomek": ("smote_tomek", {}),
}


def peak_reset() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_gb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def run(train, name, params, backend, seed):
    """(result, wall seconds, process CPU seconds, peak GB) of one ``apply``."""
    peak_reset()
    start, cpu = time.perf_counter(), time.process_time()
    result = get_strategy(name, knn_backend=backend, **params).apply(train, seed=seed)
    return result, time.perf_counter() - start, time.process_time() - cpu, peak_gb()


def search_seconds(result) -> float:
    """Seconds the backend side spent in neighbour searches (its report note; 0 without one)."""
    notes = [note for note in result.report.notes if note.startswith("Nearest neighbours")]
    return float(notes[0].split(" (")[1].split(" s in all")[0]) if notes else 0.0


def fingerprint(result):
    frame = result.dataset.frame
    return frame[list(result.dataset.schema.numeric)].to_numpy(np.float32), result.dataset.y


def extrapolated_sklearn(train, name, params, seed, sample_queries):
    """(seconds, backend side's result) for scikit-learn's neighbours, estimated as the module docstring says."""
    strategy = get_strategy(name, knn_backend="auto", **params)
    searches = []
    original = Neighbours.kneighbors

    def kneighbors(finder, X=None, n_neighbors=None, return_distance=True):
        out = original(finder, X, n_neighbors, return_distance)
        searches.append((finder._X, finder._X if X is None else np.asarray(X), finder.searches_[-1]))
        return out

    Neighbours.kneighbors = kneighbors
    try:
        start = time.perf_counter()
        result = strategy.apply(train, seed=seed)
        total = time.perf_counter() - start
    finally:
        Neighbours.kneighbors = original
    rest = total - sum(search.seconds for _, _, search in searches)
    estimate = rest
    rng = np.random.default_rng(0)
    for fitted, queries, search in searches:
        start = time.perf_counter()
        finder = NearestNeighbors(n_neighbors=search.k).fit(fitted)
        sample = queries[rng.choice(len(queries), min(sample_queries, len(queries)), replace=False)]
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        finder.kneighbors(sample)
        estimate += fit_seconds + (time.perf_counter() - start) * len(queries) / len(sample)
    return estimate, total, result


#: Strategies whose estimate ``--estimates`` checks.
ESTIMATED = ("smote_enn", "smote_tomek")


def estimates(rows: list[int], backends: list[str]) -> None:
    """Print CPU seconds of ``apply`` beside ``estimated_seconds`` (see the module docstring)."""
    torch.set_num_threads(1)
    dataset = build_dataset(load_sample("taobao"), "behavior")
    train = dataset.subset(split_dataset(dataset, SplitSpec()).train)
    get_strategy("smote_enn").apply(stratified_sample(train, 200, seed=0), seed=0)      # untimed: warm-up
    print("| strategy | knn_backend | rows | CPU seconds | estimate | measured / estimate |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ESTIMATED:
        for backend in backends:
            for n_rows in rows:
                sample = stratified_sample(train, n_rows, seed=0)
                strategy = get_strategy(name, knn_backend=backend)
                estimate = strategy.estimated_seconds(len(sample))
                started = time.process_time()
                strategy.apply(sample, seed=0)
                seconds = time.process_time() - started
                ratio = f"{seconds / estimate:.2f}" if estimate else "n/a"
                shown = f"{estimate:.2f}" if estimate is not None else "none"
                print(f"| {name} | {backend} | {len(sample):,} | {seconds:.2f} | {shown} | {ratio} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="auto", help="the side compared with scikit-learn (default auto)")
    parser.add_argument("--only", action="append", choices=sorted(CASES), help="repeatable")
    parser.add_argument("--extrapolate-sklearn", action="append", default=[], choices=sorted(CASES))
    parser.add_argument("--sample-queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimates", action="store_true", help="check Strategy.estimated_seconds instead")
    parser.add_argument("--estimate-rows", type=int, nargs="*", default=[1000, 10_000, 40_000])
    parser.add_argument("--estimate-backends", nargs="*", default=["sklearn", "auto", "kdtree", "faiss"])
    args = parser.parse_args(argv)
    if args.estimates:
        estimates(args.estimate_rows, args.estimate_backends)
        return 0

    train = million_rows(args.rows, args.seed)
    print(f"load average at the start: {' '.join(open('/proc/loadavg').read().split()[:3])}; "
          f"{len(train):,} rows, {len(train.schema.numeric)} numeric features, classes {train.class_counts()}",
          flush=True)
    print(f"{'case':17s} {'rows out':>10s} {'sklearn s':>10s} {'(spread)':>15s} {args.backend + ' s':>9s} "
          f"{'(spread)':>15s} {'speed-up':>8s} {'CPU s sk/bk':>13s} {'cap':>6s} {'sk peak GB':>10s} "
          f"{'bk peak GB':>10s}  same rows  engines", flush=True)
    for case in args.only or CASES:
        name, params = CASES[case]
        ours, theirs, ours_cpu, theirs_cpu, ours_peak, theirs_peak, searching = [], [], [], [], [], [], []
        if case in args.extrapolate_sklearn:
            estimate, seconds, result = extrapolated_sklearn(train, name, params, args.seed, args.sample_queries)
            theirs, ours, ours_peak, theirs_peak = [estimate], [seconds], [float("nan")], [float("nan")]
            ours_cpu, theirs_cpu = [float("nan")], [float("nan")]
            searching.append(search_seconds(result))
            for _ in range(args.repeats - 1):          # the backend side again, measured in full
                result, seconds, cpu, peak = run(train, name, params, args.backend, args.seed)
                ours.append(seconds), ours_cpu.append(cpu), ours_peak.append(peak)
                searching.append(search_seconds(result))
            ours_cpu = [c for c in ours_cpu if c == c] or ours_cpu        # the first run's CPU time is not taken
            same = "n/a (extrapolated)"
        else:
            for repeat in range(args.repeats):
                for side in (("sklearn", args.backend) if repeat % 2 == 0 else (args.backend, "sklearn")):
                    result, seconds, cpu, peak = run(train, name, params, side, args.seed)
                    print(f"  {case} repeat {repeat + 1} {side}: {seconds:.2f} s, CPU {cpu:.2f} s", flush=True)
                    (theirs if side == "sklearn" else ours).append(seconds)
                    (theirs_cpu if side == "sklearn" else ours_cpu).append(cpu)
                    (theirs_peak if side == "sklearn" else ours_peak).append(peak)
                    if side == "sklearn":
                        reference = fingerprint(result)
                    else:
                        mine = result
                        searching.append(search_seconds(result))
            X, y = fingerprint(mine)
            same = "yes" if X.shape == reference[0].shape and np.array_equal(X, reference[0]) and \
                np.array_equal(y, reference[1]) else "NO (ties?)"
            result = mine
        engines = [note for note in result.report.notes if note.startswith("Nearest neighbours")]
        engine_text = engines[0].split(" (")[0].replace("Nearest neighbours: ", "") if engines else "-"
        engine_text += f", {statistics.median(searching):.2f} s searching (median)"
        t, o = statistics.median(theirs), statistics.median(ours)
        # cap: the speed-up if the backend side's searches took no time at all (the rest is the same work on both sides)
        rest = statistics.median([seconds - search for seconds, search in zip(ours, searching, strict=True)])
        spread = (lambda v: f"{min(v):.2f}-{max(v):.2f}")
        peak = (lambda v: max((p for p in v if p == p), default=float("nan")))      # NaN: not measured
        cpu = f"{statistics.median(theirs_cpu):.1f}/{statistics.median(ours_cpu):.1f}"
        print(f"{case:17s} {len(result.dataset):>10,} {t:>10.2f} {spread(theirs):>15s} {o:>9.2f} {spread(ours):>15s} "
              f"{t / o:>7.1f}x {cpu:>13s} {t / rest:>5.1f}x {peak(theirs_peak):>10.2f} {peak(ours_peak):>10.2f}  "
              f"{same:9s}  {engine_text}"
              + (" [sklearn side extrapolated]" if case in args.extrapolate_sklearn else ""),
              flush=True)
    print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
