"""Sample importance: how well each method finds planted label noise, and how long it takes.

For each task on the bundled Taobao sample (behaviour: view / cart / fav / buy; purchase: buys an
item in the next window or not) this flips the labels of 10% of the training rows (seeded; the
validation and test rows keep theirs), trains the model on the noisy training split through
``recexp.jobs.execute`` into a temporary run store, opens the run as importance methods see it and
values every training row with each registered method (default parameters). For each it reports
the ROC-AUC of ranking the flipped rows as the least valuable (0.5 = chance, 1 = every flipped row
below every clean one), the same AUC within each noisy label (averaged, weighted by flipped rows:
what is left once the class a row claims is known) and its time, next to references on the same rows:

* cleanlab: ``cleanlab.rank.get_label_quality_scores`` on out-of-sample probabilities
  (cross-validated logistic regression on the standardised numeric features, grouped by source row,
  as ``recexp.importance.stability`` computes them), plus the precision and recall of
  ``cleanlab.filter.find_label_issues`` against the flipped rows (its time covers both);
* label frequency: rows ranked by how common their (noisy) label is, rarest lowest. Flipping moves
  rows out of the big classes into the small ones, so this class-only ranking already finds much of
  the noise (on the purchase task, where 0.7% of rows are buys, most "buy" labels are flipped ones);
  its within-class AUC is 0.5 by construction;
* random: a random ranking (seeded).

    python benchmarks/importance.py                              # both tasks, MLP, 5 epochs (about 2 min on 2 cores)
    python benchmarks/importance.py --task behavior --model din --only el2n --only tracin
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from recexp.importance import METHODS, ImportanceResult, TrainedRun, get_method  # noqa: E402
from recexp.importance.evaluation import detection_auc, flip_labels  # noqa: E402
from recexp.importance.stability import label_issue_flags, label_quality, out_of_sample_probabilities  # noqa: E402
from recexp.spec import RunSpec, prepare_data  # noqa: E402
from recexp.jobs import execute  # noqa: E402
from recexp.models import MODELS  # noqa: E402
from recexp.runs import RUNNING, SQLiteRunStore  # noqa: E402


def noisy_run(store: SQLiteRunStore, spec: RunSpec, fraction: float, seed: int) -> tuple[TrainedRun, np.ndarray, dict]:
    """Train ``spec`` on its split with ``fraction`` of the training labels flipped; the run and the flipped rows."""
    dataset, split = prepare_data(spec)
    noisy, flipped = flip_labels(dataset, split.train, fraction, seed=seed)
    run = store.create_run(store.create_experiment(f"noise {spec.task}").id, spec.to_dict(), status=RUNNING)
    started = time.perf_counter()
    metrics = execute(spec, store, run.id, data=(noisy, split))
    training = {"train_seconds": round(time.perf_counter() - started, 1), "test_balanced_accuracy":
                round(metrics["balanced_accuracy"], 4), "epochs_run": int(metrics["epochs_run"])}
    return TrainedRun.load(store, run.id, data=(noisy, split)), flipped, training


def references(run: TrainedRun, seed: int) -> tuple[list[ImportanceResult], np.ndarray]:
    """Reference rankings of ``run``'s rows as results (cleanlab, label frequency, random), and cleanlab's flags."""
    started = time.perf_counter()
    proba = out_of_sample_probabilities(run, seed)
    quality = label_quality(run, proba=proba)
    flags = label_issue_flags(run, proba=proba)
    seconds = time.perf_counter() - started
    label_share = np.bincount(run.labels)[run.labels] / len(run.labels)
    results = [ImportanceResult.for_run(run, quality, "cleanlab", seconds=seconds),
               ImportanceResult.for_run(run, label_share, "label_frequency"),
               ImportanceResult.for_run(run, np.random.default_rng(seed).random(len(run.train)), "random")]
    return results, flags


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", choices=["behavior", "purchase"],
                        help="task to run; repeatable (default: both)")
    parser.add_argument("--model", default="mlp", choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of training labels flipped (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the flips, the training and the methods")
    parser.add_argument("--only", action="append", metavar="METHOD", help="value with this method only; repeatable")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    names = args.only or list(METHODS)
    report = {"sample": "taobao", "model": args.model, "epochs": args.epochs, "flipped_share": args.fraction,
              "seed": args.seed, "threads": args.threads, "tasks": {}}
    with tempfile.TemporaryDirectory() as home, threadpool_limits(args.threads):
        store = SQLiteRunStore(home)
        for task in args.task or ["behavior", "purchase"]:
            spec = RunSpec(source={"sample": "taobao"}, task=task, model=args.model,
                           train={"epochs": args.epochs, "patience": None, "device": "cpu"}, seed=args.seed)
            print(f"{task}: training on labels with {args.fraction:.0%} flipped...", file=sys.stderr, flush=True)
            run, flipped, training = noisy_run(store, spec, args.fraction, args.seed)
            results = [get_method(name).compute(run, seed=args.seed) for name in names]
            reference_results, flags = references(run, args.seed)
            rows = {}
            for result in results + reference_results:
                within = detection_auc(result, flipped, by_class=True)
                row = rows[result.method] = {"auc": round(detection_auc(result, flipped), 4),
                                             "auc_within_class": round(within, 4), "seconds": round(result.seconds, 2)}
                print(f"{task}: {result.method:16s} AUC {row['auc']:.3f}, within class {row['auc_within_class']:.3f}, "
                      f"{result.seconds:.1f}s", file=sys.stderr, flush=True)
            is_flipped = np.isin(run.source_rows, flipped)
            rows["cleanlab"].update(flagged=int(flags.sum()), precision=round(float(is_flipped[flags].mean()), 4),
                                    recall=round(float(flags[is_flipped].mean()), 4))
            report["tasks"][task] = {"training_rows": len(run.train), "validation_rows": len(run.valid),
                                     "classes": run.train.class_counts(), "flipped_rows": len(flipped),
                                     **training, "methods": rows}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
