"""What test-time augmentation costs: TTA scoring of the test split against plain scoring, same model.

Plain scoring is one forward pass (``recexp.models.evaluate``); TTA with K copies is K + 1 passes plus
the perturbation of each copy (``recexp.tta.tta_proba``). Both are timed in process CPU time (other
processes on the machine do not inflate it), repeated, alternating, after one untimed warm-up each.
Prints the median seconds, the min-max spread and the ratio TTA / plain for each K and operator.

    python benchmarks/tta_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recexp.data.samples import load_sample
from recexp.models import MODELS, TrainConfig, evaluate, train
from recexp.tasks import build_dataset, split_dataset
from recexp.tta import tta_operator, tta_proba


def cpu_seconds(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = build_dataset(load_sample("taobao"), "behavior")
    split = split_dataset(dataset)
    train_set, valid_set, test_set = (dataset.subset(split.train), dataset.subset(split.valid),
                                      dataset.subset(split.test))
    config = TrainConfig.from_dict({"epochs": 1, "device": "cpu", "seed": 0})
    module = train(MODELS["mlp"](), train_set, valid_set, config).module
    print(f"mlp on the Taobao behaviour task, {len(test_set):,} test rows, 1 torch thread, CPU seconds")
    print("| operator | K | plain median [min, max] | TTA median [min, max] | TTA / plain | K + 1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("gaussian_noise", "sequence_mask"):
        operator = tta_operator(name)
        for copies in (1, 4, 8):
            plain_runs, tta_runs = [], []
            cpu_seconds(lambda: evaluate(module, test_set))                       # warm-up
            cpu_seconds(lambda: tta_proba(module, test_set, operator, copies, 0, reference=train_set))
            for _ in range(args.repeats):
                plain_runs.append(cpu_seconds(lambda: evaluate(module, test_set)))
                tta_runs.append(cpu_seconds(lambda: tta_proba(module, test_set, operator, copies, 0,
                                                              reference=train_set)))
            plain, tta = statistics.median(plain_runs), statistics.median(tta_runs)
            print(f"| {name} | {copies} | {plain:.3f} [{min(plain_runs):.3f}, {max(plain_runs):.3f}] | "
                  f"{tta:.3f} [{min(tta_runs):.3f}, {max(tta_runs):.3f}] | {tta / plain:.2f} | {copies + 1} |")


if __name__ == "__main__":
    main()
