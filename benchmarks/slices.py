"""Scoring the slices of a comparison: the per-slice confusion matrices of ``segment_scores`` vs sklearn per slice.

The test rows of the bundled Taobao sample's behaviour task (default temporal split, 16,021 rows, 4 classes)
are labelled with their slices (:mod:`recexp.slices`, learned from the training rows); ``--runs`` sets of
class probabilities (Dirichlet draws mixed with the true label, seeded, as a trained model's would be) stand
in for the runs. For every run and slice dimension the primary score is computed on every slice:

* **reference**: :func:`recexp.metrics.evaluation_metrics` on the rows of each slice, the score taken from it
  (what ``compare_by_slice`` did first);
* **recexp**: :func:`recexp.compare.slices.segment_scores`, one confusion matrix per slice, all slices of a
  dimension at once.

Both give the same numbers (checked each repeat); repeats alternate the two, medians and the spread
(min-max) are printed, and the ratio reference / recexp.

    python benchmarks/slices.py --metric balanced_accuracy --runs 6 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from recexp.compare.slices import segment_scores  # noqa: E402
from recexp.metrics import evaluation_metrics  # noqa: E402
from recexp.slices import slice_test_rows  # noqa: E402
from recexp.spec import RunSpec, prepare_data  # noqa: E402


def reference(y, proba, classes, codes, n_segments, metric):
    return np.array([evaluation_metrics(y[codes == s], proba[codes == s], classes)[metric]
                     if (codes == s).any() else np.nan for s in range(n_segments)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", default="balanced_accuracy")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dataset, split = prepare_data(RunSpec(source={"sample": "taobao"}, task="behavior"))
    labels = slice_test_rows(dataset, split)
    y = dataset.y[split.test]
    classes = dataset.schema.classes
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(args.runs):
        proba = rng.dirichlet(np.ones(len(classes)), size=len(y))
        proba[np.arange(len(y)), y] += rng.uniform(0, 0.6, size=len(y))
        runs.append(proba / proba.sum(axis=1, keepdims=True))
    dimensions = [(labels[d].cat.codes.to_numpy(np.int64), len(labels[d].cat.categories)) for d in labels.columns]
    n_slices = sum(n for _, n in dimensions)
    print(f"{len(y):,} test rows, {len(classes)} classes, {n_slices} slices in {len(dimensions)} dimensions, "
          f"{args.runs} runs, score {args.metric}")

    def timed(score):
        start = time.perf_counter()
        values = [score(y, proba, classes, codes, n, args.metric) for proba in runs for codes, n in dimensions]
        return time.perf_counter() - start, np.concatenate(values)

    times = {"reference": [], "recexp": []}
    for _ in range(args.repeats):
        seconds_ref, expected = timed(reference)
        seconds_new, got = timed(segment_scores)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, equal_nan=True)
        times["reference"].append(seconds_ref)
        times["recexp"].append(seconds_new)
    for name, values in times.items():
        print(f"{name:>9}: median {statistics.median(values):.4f} s (min {min(values):.4f}, max {max(values):.4f})")
    ratios = [r / n for r, n in zip(times["reference"], times["recexp"])]
    print(f"reference / recexp: median {statistics.median(ratios):.1f}x (min {min(ratios):.1f}, max {max(ratios):.1f})")


if __name__ == "__main__":
    main()
