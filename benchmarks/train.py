"""Training throughput: recexp's trainer against a minimal hand-written PyTorch loop.

Both sides train the same module (built by the same ``Model.build`` with the same seed), on the same
tensors, on the same device, with the same optimiser, batch size and number of epochs. The minimal
loop is what one would write by hand: shuffle, gather a batch from resident tensors, forward,
cross-entropy, backward, step. recexp's ``train()`` additionally records per-sample statistics,
supports weights and focal loss, and (in the "with validation" variant, as in every real run)
scores the validation split after each epoch for early stopping. Timings include building the module
and moving data for both sides. Repeats alternate the two sides; medians are reported.

    python benchmarks/train.py                       # MLP on the bundled Taobao sample (80k events)
    python benchmarks/train.py --model din --threads 1 --repeats 5

Goal: recexp >= 0.9x the minimal loop's training samples per second on CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from recexp.data.samples import load_sample  # noqa: E402
from recexp.models import MODELS, TrainConfig, resolve_device, to_tensors, train  # noqa: E402
from recexp.models.device import describe_device  # noqa: E402
from recexp.tasks import SplitSpec, build_dataset, split_dataset  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Wall and process-CPU time of a block; CPU time is robust to other processes on a shared machine."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def rates(self, samples: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return samples / wall, samples / cpu

    def __exit__(self, *exc):
        return False


def minimal_loop(model, train_set, device, epochs: int, batch_size: int, lr: float, seed: int):
    """(wall, CPU) samples per second of the plainest correct loop over resident tensors."""
    clock = _Clock().__enter__()
    torch.manual_seed(seed)
    module = model.build(train_set).to(device)
    data = to_tensors(train_set).to(device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    module.train()
    n = len(data)
    for _ in range(epochs):
        permutation = torch.randperm(n, generator=generator).to(device)
        for begin in range(0, n, batch_size):
            index = permutation[begin:begin + batch_size]
            loss = F.cross_entropy(module(*data.inputs.take(index)), data.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    _sync(device)
    return clock.rates(n * epochs)


def recexp_train(model, train_set, valid_set, device, epochs: int, batch_size: int, lr: float, seed: int):
    """(wall, CPU) samples per second of ``recexp.models.train`` (module build and data transfer included)."""
    config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, patience=None, seed=seed,
                         device=str(device), valid_fraction=0.0)
    clock = _Clock().__enter__()
    result = train(model, train_set, valid_set, config)
    _sync(device)
    return clock.rates(result.train_rows * epochs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="taobao", help="bundled sample (default: taobao)")
    parser.add_argument("--task", default="behavior")
    parser.add_argument("--model", default="mlp", choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dataset = build_dataset(load_sample(args.sample), args.task)
    split = split_dataset(dataset, SplitSpec())
    train_set, valid_set = dataset.subset(split.train), dataset.subset(split.valid)
    model = MODELS[args.model]()
    common = dict(device=device, epochs=args.epochs, batch_size=args.batch_size, lr=args.learning_rate, seed=0)

    # one untimed warm-up of each side (allocator, kernels, lazy imports)
    minimal_loop(model, train_set, **{**common, "epochs": 1})
    recexp_train(model, train_set, valid_set, **{**common, "epochs": 1})
    sides = ("minimal", "recexp", "recexp_no_validation")
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.repeats):
        for side, rates in (("minimal", minimal_loop(model, train_set, **common)),
                            ("recexp", recexp_train(model, train_set, valid_set, **common)),
                            ("recexp_no_validation", recexp_train(model, train_set, None, **common))):
            wall[side].append(rates[0])
            cpu[side].append(rates[1])
    median = {k: statistics.median(v) for k, v in wall.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    report = {
        "device": describe_device(device), "torch": torch.__version__, "model": args.model,
        "data": f"{args.sample} / {args.task}: {len(train_set):,} training rows, {len(valid_set):,} validation rows, "
                f"{len(dataset.schema.feature_columns)} feature columns",
        "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
        "samples_per_second": {k: round(v) for k, v in median.items()},
        "samples_per_cpu_second": {k: round(v) for k, v in median_cpu.items()},
        "all_runs_wall": {k: [round(x) for x in v] for k, v in wall.items()},
        "ratio_recexp_vs_minimal": round(median["recexp"] / median["minimal"], 3),
        "ratio_recexp_no_validation_vs_minimal": round(median["recexp_no_validation"] / median["minimal"], 3),
        "cpu_time_ratio_recexp_vs_minimal": round(median_cpu["recexp"] / median_cpu["minimal"], 3),
        "cpu_time_ratio_recexp_no_validation_vs_minimal":
            round(median_cpu["recexp_no_validation"] / median_cpu["minimal"], 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
