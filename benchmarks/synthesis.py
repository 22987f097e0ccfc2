"""recexp's conditional GAN against the ``ctgan`` package's CTGAN: same data, same epochs, one run.

Fits both on the Taobao sample's purchase task (numeric, categorical and label columns; behaviour
sequences are not modelled by either), each for ``--epochs`` epochs with the same batch size and
``pac``, then prints the time per epoch and recexp's quality report of both synthetic sets (scored
against the same real training rows, with a stratified 10% real holdout as efficacy test set and
privacy baseline). It also asks each for rows of the rarest class only and reports the share that
came back with that label (recexp conditions the generator on the class; ctgan's ``sample(...,
condition_column=...)`` conditions its input but does not guarantee the output).

With SDMetrics installed it cross-checks recexp's quality score against SDMetrics' QualityReport.

Setup (ctgan and SDMetrics are not recexp dependencies; ctgan is BSL-licensed)::

    python -m venv /tmp/bench && /tmp/bench/bin/pip install -r benchmarks/requirements.txt
    PYTHONPATH=. /tmp/bench/bin/python benchmarks/synthesis.py --rows 100000 --epochs 10

The bundled sample's purchase task has fewer rows than the default ``--rows`` (all are then used);
``--rows`` caps it with a stratified sample.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
import warnings

import numpy as np
import pandas as pd

from recexp.data.samples import load_sample
from recexp.dataset import LABEL, Dataset
from recexp.synthesis import GAN, quality_report
from recexp.tasks import build_dataset


def stratified(dataset: Dataset, rows: int, seed: int) -> np.ndarray:
    """Row positions of a stratified sample of at most ``rows`` rows (every class kept)."""
    rng = np.random.default_rng(seed)
    y = dataset.y
    share = min(1.0, rows / len(y))
    parts = [rng.choice(np.flatnonzero(y == c), max(1, int(round((y == c).sum() * share))), replace=False)
             for c in np.unique(y)]
    return np.sort(np.concatenate(parts))


def holdout(dataset: Dataset, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = dataset.y
    test = np.concatenate([rng.choice(np.flatnonzero(y == c), max(1, int(round((y == c).sum() * share))),
                                      replace=False) for c in np.unique(y)])
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, np.sort(test)


def summary(report, minority_share: float, timing: dict[str, float]) -> dict[str, float]:
    d = report.to_dict()
    overall, minority, eff = d["overall"], d["minority"] or {}, d["efficacy"]
    return {
        "train_s_per_epoch": timing["train_per_epoch"], "fit_s_total": timing["total"],
        "quality": overall["quality"], "column_shapes": overall["column_shapes_mean"],
        "pair_trends": overall["pair_trends_mean"], "detection_auc_logistic": overall["detection"]["auc"],
        "detection_auc_gbm": timing.get("gbm_auc", math.nan),
        "efficacy_f1_real": (eff.get("real") or {}).get("f1_macro"),
        "efficacy_f1_synthetic": (eff.get("synthetic") or {}).get("f1_macro"),
        "efficacy_f1_augmented": (eff.get("augmented") or {}).get("f1_macro"),
        "dcr_ratio": overall["privacy"]["dcr_ratio"], "exact_copies": overall["privacy"]["exact_copies"],
        "minority_quality": minority.get("quality"),
        "minority_detection_auc": (minority.get("detection") or {}).get("auc"),
        "minority_dcr_ratio": (minority.get("privacy") or {}).get("dcr_ratio"),
        "rare_class_label_share": minority_share,
    }


def to_table_dtypes(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    out = frame.copy()
    for c in dataset.schema.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float32")
    for c in list(dataset.schema.categorical) + [LABEL]:
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype("int64")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="cap on rows of the purchase task (stratified)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="recexp device; ctgan uses CUDA when this resolves to cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for both (default: torch's own choice)")
    parser.add_argument("--skip-ctgan", action="store_true", help="only fit recexp's GAN")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    dataset = build_dataset(load_sample("taobao"), "purchase")
    dataset = dataset.subset(stratified(dataset, args.rows, args.seed))
    train_rows, test_rows = holdout(dataset, 0.1, args.seed)
    train, test = dataset.subset(train_rows), dataset.subset(test_rows)
    schema = dataclasses.replace(dataset.schema, sequences={})       # neither generator models sequences
    columns = list(schema.numeric) + list(schema.categorical) + [LABEL]
    real = train.frame[columns]
    counts = train.class_counts()
    rare = min((c for c in counts if counts[c] > 0), key=counts.get)
    print(f"purchase task: {len(train)} training rows, {len(test)} holdout rows, classes {counts}, "
          f"{len(schema.numeric)} numeric + {len(schema.categorical)} categorical columns, {args.epochs} epochs")

    results: dict[str, dict] = {}

    # --- recexp ---------------------------------------------------------------------------------
    started = time.perf_counter()
    gan = GAN(epochs=args.epochs, batch_size=args.batch_size, pac=10, device=args.device, random_state=args.seed)
    gan.fit(real, schema)
    total = time.perf_counter() - started
    print(f"recexp GAN fitted in {total:.1f}s {gan.timing_}", flush=True)
    synthetic = gan.sample(conditions=counts)[columns]
    rare_rows = gan.sample(conditions={rare: 1000})
    rare_share = float((rare_rows[LABEL] == schema.classes.index(rare)).mean())
    report = quality_report(real, synthetic, schema, real_test=test.frame, random_state=args.seed)
    gbm = quality_report(real, synthetic, schema, real_test=test.frame, detector="gbm", efficacy_test=False,
                         random_state=args.seed).overall.detection["auc"]
    results["recexp"] = summary(report, rare_share, {
        "train_per_epoch": gan.timing_["train"] / args.epochs, "total": total, "gbm_auc": gbm})
    results["recexp"]["best_epoch"] = gan.best_epoch_
    recexp_synthetic = synthetic

    # --- ctgan ----------------------------------------------------------------------------------
    if not args.skip_ctgan:
        import torch
        from ctgan import CTGAN
        from ctgan.synthesizers import ctgan as ctgan_module

        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        spent = {"preprocess": 0.0}
        transformer_class = ctgan_module.DataTransformer

        class TimedTransformer(transformer_class):          # preprocessing is not an epoch
            def fit(self, *a, **k):
                t = time.perf_counter()
                result = super().fit(*a, **k)
                spent["preprocess"] += time.perf_counter() - t
                return result

            def transform(self, *a, **k):
                t = time.perf_counter()
                result = super().transform(*a, **k)
                spent["preprocess"] += time.perf_counter() - t
                return result

        ctgan_module.DataTransformer = TimedTransformer
        model = CTGAN(epochs=args.epochs, batch_size=args.batch_size, pac=10,
                      enable_gpu=gan.device_.type == "cuda", verbose=False)
        discrete = list(schema.categorical) + [LABEL]
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(real, discrete_columns=discrete)
        total = time.perf_counter() - started
        print(f"ctgan CTGAN fitted in {total:.1f}s (preprocessing {spent['preprocess']:.1f}s)", flush=True)
        ctgan_module.DataTransformer = transformer_class
        synthetic = to_table_dtypes(model.sample(len(real)), dataset)[columns]
        code = schema.classes.index(rare)
        rare_rows = to_table_dtypes(model.sample(1000, condition_column=LABEL, condition_value=code), dataset)
        rare_share = float((rare_rows[LABEL] == code).mean())
        report = quality_report(real, synthetic, schema, real_test=test.frame, random_state=args.seed)
        gbm = quality_report(real, synthetic, schema, real_test=test.frame, detector="gbm", efficacy_test=False,
                             random_state=args.seed).overall.detection["auc"]
        results["ctgan"] = summary(report, rare_share, {
            "train_per_epoch": (total - spent["preprocess"]) / args.epochs, "total": total, "gbm_auc": gbm})

        try:
            from sdmetrics.reports.single_table import QualityReport as SDQualityReport
        except ImportError:
            SDQualityReport = None
        if SDQualityReport is not None:
            metadata = {"columns": {**{c: {"sdtype": "numerical"} for c in schema.numeric},
                                    **{c: {"sdtype": "categorical"} for c in discrete}}}
            for name, frame in (("recexp", recexp_synthetic), ("ctgan", synthetic)):
                sd = SDQualityReport()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sd.generate(real.astype({c: "int64" for c in discrete}), frame[columns], metadata, verbose=False)
                results[name]["sdmetrics_quality"] = float(sd.get_score())

    table = pd.DataFrame(results)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 120):
        print(table)
    if "ctgan" in results:
        r, c = results["recexp"], results["ctgan"]
        print(f"\nrecexp / ctgan time per epoch: {r['train_s_per_epoch'] / c['train_s_per_epoch']:.2f}  "
              f"(below 1: recexp is faster)")
        print(f"quality: recexp {r['quality']:.4f} vs ctgan {c['quality']:.4f}; "
              f"logistic detection AUC recexp {r['detection_auc_logistic']:.4f} "
              f"vs ctgan {c['detection_auc_logistic']:.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2, default=float)


if __name__ == "__main__":
    main()
