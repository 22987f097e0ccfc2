"""``python -m recexp synth``: fit a generator, write synthetic rows and their quality report.

The report has the privacy figures at its top level: ``epsilon`` (spent by DP-SGD training, ``None``
without ``--param epsilon=E``), ``membership_inference_auc`` and ``ids`` (the policy the rows' user and
item ids follow: never the real ids).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from recexp.cli.common import configured, load_and_split, output_file, writing
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.synthesis import GENERATORS, get_generator
from recexp.synthesis.impute import imputation_report, impute_missing, missing_mask
from recexp.synthesis.report import describe_fit, membership_reading


def run(args: argparse.Namespace) -> int:
    seeded = any(pair.partition("=")[0].strip() == "random_state" for pair in args.param or [])
    generator = configured(GENERATORS, get_generator, args.method, args.param,
                           **({} if seeded else {"random_state": args.seed}))
    conditions = None
    if args.classes:
        conditions = {}
        for item in args.classes:
            name, sep, count = item.rpartition(":")
            if not sep or not name or not count.strip().isdigit():
                raise InvalidParameterError(_("--class expects NAME:COUNT, but got {item!r}. Write it as --class "
                                              "buy:5000.").format(item=item))
            conditions[name] = int(count)
    out = output_file(args.out, "--out") if args.out else None                                  # before the work
    report_path = output_file(args.report, "--report")
    if conditions is None and args.rows is not None and args.rows < 1:
        raise InvalidParameterError(_("Say how many rows to generate (at least 1): --rows N (training class mix) "
                                      "or --class NAME:COUNT."))
    dataset, split = load_and_split(args)
    train, valid = dataset.subset(split.train), dataset.subset(split.valid)
    n_rows = len(train) if conditions is None and args.rows is None else args.rows

    def progress(epoch: int, metrics: dict[str, float]) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "seconds" and v == v)
        print(f"{args.method} epoch {epoch}: {shown}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    generator.fit(train.frame, train.schema, progress=progress)
    fitted = time.perf_counter() - started
    real, imputation = train.frame, None
    if args.impute:
        cells = int(missing_mask(real, train.schema).to_numpy().sum())
        imputation = {**imputation_report(real, train.schema, generator, random_state=args.seed), "filled_cells": cells}
        real = impute_missing(real, train.schema, generator)
    rows, sources = generator.sample(n_rows if conditions is None else None, conditions, return_sources=True)
    for column, ids in generator.synthetic_ids(sources).items():
        rows[column] = ids
    if out is not None:
        with writing(out, "--out"):
            rows.to_parquet(out, index=False)
    fit = describe_fit(generator, real, rows, train.schema, real_test=valid.frame, imputation=imputation,
                       fit_seconds=fitted, detector=args.detector, random_state=args.seed)
    payload = {
        "file": args.file, "task": args.task, "method": args.method, "classes": list(train.schema.classes),
        "training_rows": len(train), "rows": len(rows),
        "class_counts": {name: int((rows["label"] == code).sum()) for code, name in enumerate(train.schema.classes)},
        "out": str(out) if out is not None else None, **fit.to_dict(),
    }
    with writing(report_path, "--report"):
        report_path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=False))
    report, overall = fit.quality, fit.quality.overall
    where = f"written to {out}" if out is not None else "generated (no --out: not written)"
    print(f"{args.method}: {len(rows):,} rows {where} (fit {fitted:.1f}s on {len(train):,} training rows); "
          f"report in {report_path}")
    print(f"quality {report.score:.3f} | detection AUC {overall.detection['auc']:.3f} | "
          f"DCR ratio {overall.privacy['dcr_ratio']:.3f} | exact copies {overall.privacy['exact_copies']}")
    dp = fit.differential_privacy
    print(_("differential privacy: epsilon {spent:.3f} spent of {requested:g} (delta {delta:.2g})").format(
        spent=dp["epsilon"], requested=dp["epsilon_requested"], delta=dp["delta"]) if dp is not None
        else _("differential privacy: off (no epsilon given)"))
    for line in [membership_reading(fit.membership_inference_auc), *fit.privacy_notes()]:
        print(line)
    return 0

