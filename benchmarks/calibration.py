"""Calibration of the verdict: A/A false-positive rate and the detection rate of a planted real effect.

A pool of baseline runs (strategy ``none``, seeds 0..P-1) and of a strategy with a known real effect
(``class_weights`` by default, seeds 0..P-1) is trained once on a bundled real table, with the real
pipeline (``recexp.jobs.execute``) into a temporary run store. Then, without training again:

* **A/A**: draw two disjoint sets of ``n`` baseline seeds, pair them by position, and ask each method
  whether the "strategy" differs from the "baseline". Both arms are the same recipe, so every
  "significant" is a false positive. recexp's verdict (paired t-test over per-seed differences,
  :func:`recexp.compare.stats.paired_seed_test`) against the former method (paired bootstrap over test
  rows with the trained models held fixed, ``p_rows``), at alpha = 0.05. Also a family of three A/A
  "strategies" against one baseline: the family-wise false-positive rate with Holm's adjustment and
  without.
* **Planted effect**: draw ``n`` seeds, pair each strategy run with the baseline run of the same seed,
  and count how often the verdict detects the difference (power) at n = 3, 5 and 10 seeds.

Comparisons are redrawn from one pool, so they are not independent: the Monte Carlo error printed
(binomial, sqrt(p(1-p)/R)) is a lower bound on the true one.

    python benchmarks/calibration.py                               # yeast_me2, logistic regression, pool 40
    python benchmarks/calibration.py --data yeast_me2 --model mlp --pool 30 --comparisons 400
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from recexp.compare.comparison import _bootstrap_scores, _run_metrics  # noqa: E402
from recexp.compare.loading import load_predictions  # noqa: E402
from recexp.compare.stats import MIN_SEEDS, bootstrap_p_value, holm, paired_seed_test  # noqa: E402
from recexp.jobs import execute  # noqa: E402
from recexp.runs import SQLiteRunStore  # noqa: E402
from recexp.spec import RunSpec, prepare_data  # noqa: E402

ALPHA = 0.05


def train_pool(store: SQLiteRunStore, base: RunSpec, strategies: list[str], pool: int) -> dict[str, list]:
    """Train ``pool`` seeds of each strategy; returns strategy -> predictions ordered by seed."""
    data = prepare_data(base)
    base = replace(base, fingerprint=data[0].fingerprint)
    experiment = store.create_experiment("calibration pool")
    started = time.perf_counter()
    for strategy in strategies:
        for seed in range(pool):
            spec = replace(base, strategy=strategy, seed=seed)
            run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
            execute(spec, store, run.id, data=data)
        print(f"trained {pool} runs of {strategy} ({time.perf_counter() - started:.0f} s so far)", file=sys.stderr)
    predictions = load_predictions(store, store.list_runs(experiment.id), with_validation=False)
    by_strategy: dict[str, list] = {s: [] for s in strategies}
    for item in sorted(predictions, key=lambda p: p.seed):
        by_strategy[item.strategy].append(item)
    return by_strategy


def scores_of(items: list, metrics: list[str]) -> dict[str, np.ndarray]:
    """metric -> per-seed full-test scores (pool order)."""
    per_run = [_run_metrics(item) for item in items]
    return {m: np.array([r[m] for r in per_run]) for m in metrics}


def row_bootstrap(items: list, n_bootstrap: int, random_state: int) -> dict[str, np.ndarray]:
    """metric -> (runs, B) scores of each run on one shared set of resampled test rows."""
    n = len(items[0].y)
    rng = np.random.default_rng(random_state)
    index = rng.integers(0, n, size=(n_bootstrap, n))
    flat = (index * n_bootstrap + np.arange(n_bootstrap)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_bootstrap * n).reshape(n, n_bootstrap).astype(np.float32)
    per_run = [_bootstrap_scores(item, counts) for item in items]
    return {m: np.vstack([np.asarray(r[m], dtype=np.float64) for r in per_run]) for m in per_run[0]}


def rate(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{p:.3f} ± {math.sqrt(max(p * (1 - p), 1e-12) / len(hits)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="yeast_me2", help="a bundled sample (default yeast_me2)")
    parser.add_argument("--task", default="table")
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--effect", action="append",
                        help="strategy compared with none for the detection rate; repeatable (default: class_weights, "
                             "random_over)")
    parser.add_argument("--pool", type=int, default=40, help="seeds trained per strategy (default 40)")
    parser.add_argument("--comparisons", type=int, default=400, help="A/A comparisons drawn per seed count")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bootstrap", type=int, default=300, help="row-bootstrap replicates (former method)")
    args = parser.parse_args()

    base = RunSpec(source={"sample": args.data}, task=args.task, split={"method": "stratified", "seed": 0},
                   model=args.model, train={"epochs": args.epochs, "batch_size": args.batch_size, "device": "cpu",
                                            "learning_rate": 0.01})
    effects = args.effect or ["class_weights", "random_over"]
    with tempfile.TemporaryDirectory() as home:
        pools = train_pool(SQLiteRunStore(home), base, ["none", *effects], args.pool)
    classes = pools["none"][0].classes
    primaries = ["balanced_accuracy"] + ([f"pr_auc[{classes[1]}]"] if len(classes) == 2 else [])
    scores = {strategy: scores_of(items, primaries) for strategy, items in pools.items()}
    rng = np.random.default_rng(1)
    print(f"\n{args.data} ({args.task}), {args.model}, pool of {args.pool} seeds per strategy, "
          f"{len(pools['none'][0].y):,} test rows; alpha {ALPHA}; ± binomial Monte Carlo error (a lower bound)\n")
    print("| recipe of both arms | primary | seeds per arm | comparisons | A/A false-positive rate: seed-level verdict "
          "| former row bootstrap | family of 3 A/A arms: Holm | unadjusted |")
    print("|---|---|---|---|---|---|---|---|")
    bootstraps = {recipe: row_bootstrap(items, args.bootstrap, 0) for recipe, items in pools.items()}
    for recipe, metric, n in ((r, m, n) for r in pools for m in primaries for n in (3, 5, 10) if 2 * n <= args.pool):
        values, rows = scores[recipe][metric], bootstraps[recipe].get(metric)
        seed_hits, row_hits, holm_hits, raw_hits = [], [], [], []
        for _ in range(args.comparisons):
            order = rng.permutation(args.pool)
            arms = [order[k * n:(k + 1) * n] for k in range(min(4, args.pool // n))]
            seed_hits.append(paired_seed_test(values[arms[1]], values[arms[0]]).p_value < ALPHA)
            if rows is not None:
                row_hits.append(bootstrap_p_value((rows[arms[1]] - rows[arms[0]]).mean(axis=0)) < ALPHA)
            if len(arms) == 4:
                p = np.array([paired_seed_test(values[arm], values[arms[0]]).p_value for arm in arms[1:]])
                holm_hits.append(bool((holm(p) < ALPHA).any()))
                raw_hits.append(bool((p < ALPHA).any()))
        print(f"| {recipe} | {metric} | {n} | {args.comparisons} | {rate(seed_hits)} | "
              f"{rate(row_hits) if row_hits else 'n/a'} | {rate(holm_hits) if holm_hits else 'n/a'} | "
              f"{rate(raw_hits) if raw_hits else 'n/a'} |")
    print("\n| strategy vs none | primary | seeds | comparisons | detection rate (seed-level verdict) | "
          "mean difference over the pool | its spread over seeds (sd) |")
    print("|---|---|---|---|---|---|---|")
    for strategy, metric, n in ((s, m, n) for s in effects for m in primaries for n in (3, 5, 10)):
        effect, baseline = scores[strategy][metric], scores["none"][metric]
        hits = []
        for _ in range(args.comparisons):
            seeds = rng.choice(args.pool, size=n, replace=False)
            hits.append(paired_seed_test(effect[seeds], baseline[seeds]).p_value < ALPHA and n >= MIN_SEEDS)
        print(f"| {strategy} | {metric} | {n} | {args.comparisons} | {rate(hits)} | "
              f"{np.nanmean(effect - baseline):+.4f} | {np.nanstd(effect - baseline, ddof=1):.4f} |")


if __name__ == "__main__":
    main()
