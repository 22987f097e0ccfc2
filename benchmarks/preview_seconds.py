"""How close ``Strategy.estimated_seconds`` comes to what a preview really costs.

The Strategy Lab previews a strategy live only when its estimate is under two seconds; slower ones wait
for "Run preview" and show the estimate beside the button. The estimate charges a measured cost per
training row (and per epoch, for the neural generators) plus fixed parts (the generator's setup, its
checkpoint scoring, the quality report); this script measures the process CPU time of ``apply`` on
stratified samples of the bundled Taobao training split (behaviour task, 57 feature columns) with one
torch thread, and prints it beside the estimate. CPU time, not wall time: on a shared machine other
processes inflate wall time, and with one torch thread the CPU time is the wall time of an idle core.
Each strategy runs once untimed first: the first neural generator a process fits also pays torch's lazy
imports (a few seconds, once per dashboard server), which the estimate leaves out.

    python benchmarks/preview_seconds.py                      # every strategy with an estimate
    python benchmarks/preview_seconds.py --only vae gan --rows 1000 5000

Use it to re-measure the constants (``seconds_per_row`` of each class, and the fixed parts in
``recexp/strategies/synthesis.py``) after a change that makes a strategy faster or slower: a ratio
measured / estimated between 0.5 and 2 is good enough for a "takes about" sentence.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from recexp.data.samples import load_sample  # noqa: E402
from recexp.strategies import STRATEGIES, get_strategy, stratified_sample  # noqa: E402
from recexp.tasks import SplitSpec, build_dataset, split_dataset  # noqa: E402

#: Settings measured for each strategy with an estimate (the neural generators at a few epochs).
SETTINGS = {
    "gan": [{"epochs": 1, "eval_every": 0, "quality_report": False},
            {"epochs": 4, "eval_every": 0, "quality_report": False},
            {"epochs": 4, "eval_every": 2, "quality_report": False},
            {"epochs": 4, "eval_every": 0, "quality_report": True}],
    "vae": [{"epochs": 1, "eval_every": 0, "quality_report": False},
            {"epochs": 4, "eval_every": 0, "quality_report": False},
            {"epochs": 4, "eval_every": 2, "quality_report": False},
            {"epochs": 4, "eval_every": 0, "quality_report": True}],
    "gaussian_copula": [{"quality_report": False}, {"quality_report": True}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="strategy ids (default: every one with an estimate)")
    parser.add_argument("--rows", nargs="*", type=int, default=[1000, 5000, 20000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = build_dataset(load_sample("taobao"), "behavior")
    train = dataset.subset(split_dataset(dataset, SplitSpec()).train)
    names = args.only or [name for name, cls in STRATEGIES.items()
                          if name in SETTINGS or cls.seconds_per_row is not None]
    for name in names:             # untimed: one-time costs (torch's lazy imports on a first optimiser)
        get_strategy(name, **SETTINGS.get(name, [{}])[0]).apply(stratified_sample(train, 200, seed=0), seed=0)
    print("| strategy | settings | rows | CPU seconds | estimate | measured / estimate |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        for params in SETTINGS.get(name, [{}]):
            for n_rows in args.rows:
                rows = stratified_sample(train, n_rows, seed=0)
                strategy = get_strategy(name, **params)
                estimate = strategy.estimated_seconds(len(rows))
                started = time.process_time()
                strategy.apply(rows, seed=0)
                seconds = time.process_time() - started
                ratio = f"{seconds / estimate:.2f}" if estimate else "n/a"
                shown = f"{estimate:.2f}" if estimate is not None else "none"
                print(f"| {name} | {params} | {len(rows):,} | {seconds:.2f} | {shown} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
