"""``python -m recexp apply``: apply one strategy to the training split and write the result."""

from __future__ import annotations

import argparse

from recexp.cli.common import build_large, build_progress, configured, load_and_split, output_file, print_json, writing
from recexp.consistency import check_consistency
from recexp.i18n import _
from recexp.dataset import Dataset
from recexp.outofcore import DiskDataset
from recexp.strategies import STRATEGIES, get_strategy
from recexp.tasks import require_fit


def run(args: argparse.Namespace) -> int:
    strategy = configured(STRATEGIES, get_strategy, args.strategy, args.param)
    require_fit(_("strategy"), args.strategy, STRATEGIES, args.task)     # e.g. smote refused for next_item
    out = output_file(args.out, "--out")                  # before the work: a bad --out fails at once
    large = build_large(args, progress=build_progress())
    if large is not None and args.strategy == "none":
        return _copy_training_split(args, large, out)
    if large is not None:               # only the training part is read into memory
        train = Dataset(frame=large.read("train"), schema=large.schema, task=large.task, fingerprint=large.fingerprint)
        locked = {"validation": large.class_counts("valid"), "test": large.class_counts("test")}
    else:
        dataset, split = load_and_split(args)
        train = dataset.subset(split.train)
        locked = {"validation": dataset.class_counts(split.valid), "test": dataset.class_counts(split.test)}
    result = strategy.apply(train, seed=args.seed)
    with writing(out, "--out"):
        result.dataset.frame.to_parquet(out, index=False)
    report = result.report
    payload = {"file": args.file, "task": args.task, "strategy": args.strategy, "params": strategy.get_params(),
               "seed": args.seed, "out": str(out), "rows_before": report.rows_before, "rows_after": report.rows_after,
               "class_counts_before": report.before, "class_counts_after": report.after, "added": report.added,
               "removed": report.removed, "target": report.target, "seconds": round(report.seconds, 4),
               "loss": result.loss, "notes": report.notes,
               "locked": locked}
    consistency = check_consistency(result, random_state=args.seed)      # None when no rows were added
    if consistency is not None:
        payload["consistency"] = consistency.to_dict()
    if args.json:
        print_json(payload)
        return 0
    print(f"{args.strategy} on the {args.task} training split: {report.rows_before:,} -> {report.rows_after:,} rows "
          f"in {report.seconds:.2f}s; written to {out}")
    width = max(len(c) for c in report.before)
    print(f"{'class':{width}s} {'before':>10s} {'after':>10s} {'added':>10s} {'removed':>10s}")
    for name in report.before:
        print(f"{name:{width}s} {report.before[name]:>10,} {report.after[name]:>10,} {report.added[name]:>10,} "
              f"{report.removed[name]:>10,}")
    for note in report.notes:
        print(f"note: {note}")
    if consistency is not None:
        for item in consistency.classes:
            print(f"consistency ({item.verdict}): {item.line}")
    return 0



def _copy_training_split(args: argparse.Namespace, large: DiskDataset, out) -> int:
    """``--strategy none`` on a dataset built out of core: the training part is copied batch by batch."""
    with writing(out, "--out"):
        large.write_part("train", out)
    counts = large.class_counts("train")
    rows = large.rows["train"]
    payload = {"file": args.file, "task": args.task, "strategy": "none", "params": {}, "seed": args.seed,
               "out": str(out), "rows_before": rows, "rows_after": rows, "class_counts_before": counts,
               "class_counts_after": counts, "added": {c: 0 for c in counts}, "removed": {c: 0 for c in counts},
               "target": None, "seconds": round(large.seconds, 4), "loss": None, "notes": [],
               "locked": {"validation": large.class_counts("valid"), "test": large.class_counts("test")},
               "out_of_core": {"folder": str(large.folder), "sampling": large.sampling, "rows": large.rows}}
    if args.json:
        print_json(payload)
    else:
        print(f"none on the {args.task} training split (built out of core in {large.folder}): {rows:,} rows; "
              f"written to {out}")
    return 0
