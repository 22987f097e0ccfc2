"""Privacy-utility trade-off of DP-SGD synthesis: quality, ML efficacy and membership inference per epsilon.

On a bundled task (default: yeast_me2, the 28:1 table task, stratified split) each generator (VAE,
GAN) is fitted on the training split at epsilon in ``--epsilons`` (``inf``: ordinary training, no
DP-SGD) for ``--repeats`` seeds, generates as many rows per class as the training split has, and is
scored by :func:`recexp.synthesis.quality_report` against the training rows with the validation split
as held-out real rows: the quality score, ML efficacy (macro-F1 of a model trained on synthetic rows
only, over one trained on real rows, both tested on held-out rows), the membership-inference AUC and
the DCR ratio. The time cost of DP-SGD is the training time (``timing_["train"]``, without
preprocessing or scoring) at each epsilon over the non-DP training time **of the same seed, measured
in the same run**; the mean and standard deviation over seeds are printed.

    PYTHONPATH=. python benchmarks/privacy.py --repeats 5 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
import torch

from recexp.data.samples import load_sample
from recexp.synthesis import GAN, VAE, quality_report
from recexp.tasks import SplitSpec, build_dataset, split_dataset

GENERATORS = {"vae": (VAE, {}), "gan": (GAN, {"hidden": 128, "noise_dim": 64, "pac": 10})}


def fit_and_score(name: str, epsilon: float, seed: int, train, valid, epochs: int, batch_size: int) -> dict:
    cls, extra = GENERATORS[name]
    generator = cls(epochs=epochs, batch_size=batch_size, eval_every=0, device="cpu", random_state=seed,
                    epsilon=None if math.isinf(epsilon) else epsilon, **extra)
    started = time.perf_counter()
    generator.fit(train.frame, train.schema)
    fit_seconds = time.perf_counter() - started
    counts = train.class_counts()
    rows = generator.sample(conditions={k: v for k, v in counts.items() if v})
    report = quality_report(train.frame, rows, train.schema, real_test=valid.frame, random_state=seed)
    efficacy = report.efficacy
    real_f1, syn_f1 = efficacy["real"]["f1_macro"], efficacy["synthetic"]["f1_macro"]
    return {"generator": name, "epsilon": epsilon, "seed": seed,
            "epsilon_spent": generator.privacy_["epsilon"] if generator.privacy_ else math.inf,
            "train_seconds": generator.timing_["train"], "fit_seconds": fit_seconds,
            "quality": report.score, "efficacy_f1_ratio": syn_f1 / real_f1 if real_f1 else math.nan,
            "minority_f1_synthetic": efficacy["synthetic"]["minority_f1"],
            "membership_inference_auc": report.membership_inference_auc,
            "dcr_ratio": report.overall.privacy["dcr_ratio"], "detection_auc": report.overall.detection["auc"]}


def spread(values: list[float]) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="yeast_me2")
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS), choices=list(GENERATORS))
    parser.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 3.0, 10.0, math.inf])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: timings less disturbed)")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    dataset = build_dataset(load_sample(args.sample), "table")
    split = split_dataset(dataset, SplitSpec(method="stratified"))
    train, valid = dataset.subset(split.train), dataset.subset(split.valid)
    print(f"{args.sample}: {len(train):,} training rows {train.class_counts()}, {len(valid):,} held-out rows; "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.repeats} seeds, torch threads {args.threads}")

    results = []
    for name in args.generators:
        for seed in range(args.repeats):
            for epsilon in args.epsilons:          # every epsilon of a seed back to back: paired timings
                results.append(fit_and_score(name, epsilon, seed, train, valid, args.epochs, args.batch_size))
                r = results[-1]
                print(f"  {name} seed {seed} eps {epsilon:g}: spent {r['epsilon_spent']:.3f}, train "
                      f"{r['train_seconds']:.2f}s, quality {r['quality']:.3f}, efficacy {r['efficacy_f1_ratio']:.3f}, "
                      f"MIA {r['membership_inference_auc']:.3f}", flush=True)

    print("\ngenerator | epsilon | spent | quality | ML efficacy (F1 syn/real) | minority F1 (syn) | MIA AUC | "
          "DCR ratio | train s | time vs non-DP")
    for name in args.generators:
        base = {r["seed"]: r["train_seconds"] for r in results if r["generator"] == name and math.isinf(r["epsilon"])}
        for epsilon in args.epsilons:
            rows = [r for r in results if r["generator"] == name and r["epsilon"] == epsilon]
            ratios = [r["train_seconds"] / base[r["seed"]] for r in rows if r["seed"] in base]
            print(f"{name} | {epsilon:g} | {spread([r['epsilon_spent'] for r in rows]) if not math.isinf(epsilon) else 'inf'}"
                  f" | {spread([r['quality'] for r in rows])} | {spread([r['efficacy_f1_ratio'] for r in rows])}"
                  f" | {spread([r['minority_f1_synthetic'] for r in rows])}"
                  f" | {spread([r['membership_inference_auc'] for r in rows])} | {spread([r['dcr_ratio'] for r in rows])}"
                  f" | {spread([r['train_seconds'] for r in rows])} | {spread(ratios) if ratios else 'n/a'}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1, default=str)


if __name__ == "__main__":
    main()
