"""Training from disk against training from memory: the same trainer, model, rows, seed and settings.

``train(..., TrainConfig(train_from="memory"))`` gathers every batch from tensors resident on the device;
``train_from="disk"`` writes the training split as memory-mapped Arrow shards and draws its batches from
them on a background thread (shard order and a shuffle buffer). Both sides run in the same process,
alternating, after one untimed warm-up of each; the reference is the in-memory trainer measured in the
same run.

Reported per side, as medians over the repeats with the spread (min..max):
- ``step``: training rows per second of the training steps (``TrainResult.samples_per_second``; the
  epoch loop without validation, i.e. what the shard reader must keep fed);
- ``cpu``: training rows per process-CPU second of the whole ``train()`` call (module build, writing the
  shards, the background thread, validation): robust to other processes on a shared machine;
- ``wall``: the same per wall second.

    python benchmarks/disk_training.py                         # MLP, bundled Taobao sample, 5 repeats
    python benchmarks/disk_training.py --model din --repeats 7 --threads 1
    python benchmarks/disk_training.py --peak-rss 1000000 --threads 1   # memory held, one epoch of 1M rows

``--peak-rss N`` writes the sample's training split repeated to N rows as Parquet files, then trains one epoch
in a fresh process per side: ``memory`` reads the files into a frame and trains from resident tensors;
``disk`` turns them into shards one batch at a time (``shards_from_parquet``) and trains from those; ``base``
only builds the sample's dataset (what both hold besides). Reported: each process's peak RSS and seconds.

Goal: disk >= 0.9x the in-memory trainer's samples per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from recexp.data.samples import load_sample  # noqa: E402
from recexp.dataset import Dataset  # noqa: E402
from recexp.models import MODELS, TrainConfig, resolve_device, train  # noqa: E402
from recexp.models.device import describe_device  # noqa: E402
from recexp.models.shards import shards_from_parquet, tensor_bytes  # noqa: E402
from recexp.tasks import SplitSpec, build_dataset, split_dataset  # noqa: E402

SIDES = ("memory", "disk")


def one_run(model, train_set, valid_set, config: TrainConfig, scratch: Path) -> dict[str, float]:
    """Step, CPU and wall rows per second of one ``train()`` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(model, train_set, valid_set, config, scratch=scratch)
    assert result.trained_from == config.train_from
    if config.device.startswith("cuda"):
        torch.cuda.synchronize()
    rows = result.train_rows * len(result.history)
    return {"step": result.samples_per_second, "cpu": rows / (time.process_time() - cpu),
            "wall": rows / (time.perf_counter() - wall)}


def peak_rss_child(side: str, folder: Path, sample: str, task: str, model_name: str) -> dict[str, float]:
    """One epoch on the Parquet rows in ``folder`` (``side``: memory, disk or base); peak RSS and seconds."""
    started = time.perf_counter()
    dataset = build_dataset(load_sample(sample), task)
    valid_set = dataset.subset(split_dataset(dataset, SplitSpec()).valid)
    config = TrainConfig(epochs=1, patience=None, record_sample_stats=False, train_from=side, device="cpu")
    rows = 0
    if side == "memory":
        train_set = Dataset(pd.read_parquet(folder), dataset.schema, task, dataset.fingerprint)
        rows = train(MODELS[model_name](), train_set, valid_set, config).train_rows
    elif side == "disk":
        with tempfile.TemporaryDirectory(prefix="recexp-disk-bench-") as scratch:
            shards = shards_from_parquet(folder, dataset.schema, scratch)
            rows = train(MODELS[model_name](), shards, valid_set, config).train_rows
    return {"side": side, "rows": rows, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "seconds": round(time.perf_counter() - started, 1)}


def peak_rss(args) -> dict:
    """Write the repeated training split as Parquet, then run each side in its own process."""
    dataset = build_dataset(load_sample(args.sample), args.task)
    train_set = dataset.subset(split_dataset(dataset, SplitSpec()).train)
    report = {"rows": args.peak_rss, "model": args.model}
    with tempfile.TemporaryDirectory(prefix="recexp-disk-rows-") as folder:
        written, part = 0, 0
        while written < args.peak_rss:
            rows = train_set.frame.iloc[:args.peak_rss - written]
            rows.to_parquet(Path(folder) / f"part-{part:04d}.parquet", index=False)
            written, part = written + len(rows), part + 1
        report["tensor_mb_in_memory"] = round(tensor_bytes(Dataset(
            train_set.frame.iloc[:1], dataset.schema, "", "")) * args.peak_rss / 2**20)
        for side in ("base", "memory", "disk"):
            output = subprocess.run([sys.executable, __file__, "--child", side, "--folder", folder, "--model",
                                     args.model, "--threads", str(args.threads or 1)],
                                    capture_output=True, text=True, check=True).stdout
            report[side] = json.loads(output.strip().splitlines()[-1])
    return report


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="taobao", help="bundled sample (default: taobao)")
    parser.add_argument("--task", default="behavior")
    parser.add_argument("--model", default="mlp", choices=[m for m in MODELS if MODELS[m].differentiable])
    parser.add_argument("--rows", type=int, default=None, help="first N training rows only (default: all)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-rss", type=int, metavar="N", help="measure the memory of one epoch on N rows instead")
    parser.add_argument("--child", choices=["base", "memory", "disk"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(peak_rss_child(args.child, Path(args.folder), args.sample, args.task, args.model)))
        return 0
    if args.peak_rss:
        print(json.dumps(peak_rss(args), indent=2))
        return 0
    device = resolve_device(args.device)
    dataset = build_dataset(load_sample(args.sample), args.task)
    split = split_dataset(dataset, SplitSpec())
    train_set, valid_set = dataset.subset(split.train[:args.rows]), dataset.subset(split.valid)
    model = MODELS[args.model]()
    base = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None, device=str(device),
                       record_sample_stats=False)       # the disk path keeps none; the comparison is the loop itself
    configs = {side: TrainConfig(**{**base.to_dict(), "train_from": side}) for side in SIDES}
    rates: dict[str, dict[str, list[float]]] = {side: {"step": [], "cpu": [], "wall": []} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="recexp-disk-bench-") as scratch:
        for side in SIDES:                                                   # warm-up, untimed
            one_run(model, train_set, valid_set, TrainConfig(**{**configs[side].to_dict(), "epochs": 1}),
                    Path(scratch) / "warm")
        for repeat in range(args.repeats):
            order = SIDES if repeat % 2 == 0 else SIDES[::-1]                # alternate who goes first
            for side in order:
                for key, value in one_run(model, train_set, valid_set, configs[side], Path(scratch) / "s").items():
                    rates[side][key].append(value)
    ratios = {key: [d / m for d, m in zip(rates["disk"][key], rates["memory"][key])] for key in ("step", "cpu", "wall")}
    report = {
        "device": describe_device(device), "torch": torch.__version__, "model": args.model,
        "data": f"{args.sample} / {args.task}: {len(train_set):,} training rows, {len(valid_set):,} validation rows, "
                f"{len(dataset.schema.feature_columns)} feature columns",
        "epochs": args.epochs, "batch_size": args.batch_size, "repeats": args.repeats,
        "median_rows_per_second": {side: {k: round(statistics.median(v)) for k, v in rates[side].items()}
                                   for side in SIDES},
        "ratio_disk_vs_memory_median": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        "ratio_disk_vs_memory_spread": {k: spread(v) for k, v in ratios.items()},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
