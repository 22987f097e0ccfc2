"""Next-item task: the two-tower and SASRec models against most-popular and item-kNN baselines, and throughput.

Quality: on one leave-last-out split of a log (default: the bundled Taobao sample), HR@10 / NDCG@10 / MRR over
the full item set (every item of the vocabulary ranked, no sampled negatives) of

* ``most_popular``: every user gets the items with the most training rows;
* ``item_knn``: the score of item ``i`` is the sum over the row's history items ``h`` of the cosine similarity of
  ``h`` and ``i`` in the training user-item matrix (binary, from the training rows' targets and histories); ties
  broken by popularity;
* ``two_tower`` and ``sasrec`` trained by ``recexp.models.train`` (full softmax unless ``--loss``), scored by
  ``recexp.models.rank_items`` like every run; the baselines go through the same ``rank_items`` and
  ``next_item_metrics``, so all four are ranked by one code path (ranks are pessimistic under ties).

Throughput: training samples per second of ``recexp.models.train`` against the minimal hand-written loop of
``benchmarks/train.py`` on the same two-tower module and tensors (CPU-time ratio; repeats alternate the sides).

    python benchmarks/next_item.py --max-vocab 5000 --epochs 10 --batch-size 128 --learning-rate 3e-3 \
        --throughput-repeats 5 --throughput-rows 2000

``--synthetic-rows N`` replaces the sample by a synthetic Taobao-like log of ``N`` events from
``recexp.data.synthetic.generate_log`` (seed 0), written to a temporary CSV and read back with ``recexp.data.load``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import sparse  # noqa: E402
from torch import nn  # noqa: E402

from recexp.data import load  # noqa: E402
from recexp.data.samples import load_sample  # noqa: E402
from recexp.data.synthetic import generate_log, write_log  # noqa: E402
from recexp.metrics import next_item_metrics, popularity_percentile  # noqa: E402
from recexp.models import MODELS, TrainConfig, rank_items, train  # noqa: E402
from recexp.tasks import SplitSpec, build_dataset, split_dataset  # noqa: E402
from train import minimal_loop, recexp_train  # noqa: E402


class _Scores(nn.Module):
    """A fixed scorer behind the model interface: ``forward`` scores every item from the row's item history."""

    def __init__(self, popularity: np.ndarray, similarity: np.ndarray | None):
        super().__init__()
        self.register_buffer("popularity", torch.tensor(popularity, dtype=torch.float32))
        self.similarity = None if similarity is None else torch.tensor(similarity, dtype=torch.float32)

    def forward(self, numeric, categorical, sequence):
        scores = self.popularity.expand(sequence.shape[0], -1)
        if self.similarity is None:
            return scores.clone()
        history = sequence[:, 0]                                   # (B, L) item codes, 0 = padding
        summed = self.similarity[history].sum(dim=1)               # row 0 of the similarity is all zeros
        return summed + 1e-6 * scores                              # popularity only breaks ties


def baselines(train_set, n_classes: int) -> dict[str, nn.Module]:
    counts = np.bincount(train_set.y, minlength=n_classes).astype(np.float64)
    counts[0] = 0.0
    popularity = counts / max(counts.max(), 1.0)
    users = train_set.frame["user_id"].cat.codes.to_numpy()
    items = np.concatenate([train_set.y] + [train_set.frame[c].to_numpy(np.int64)
                                            for c in train_set.schema.sequences["hist_item"]])
    owners = np.tile(users, len(items) // len(users))
    keep = items > 0
    matrix = sparse.csr_matrix((np.ones(int(keep.sum())), (owners[keep], items[keep])),
                               shape=(int(users.max()) + 1, n_classes))
    matrix.data[:] = 1.0                                           # binary: did the user touch the item
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    cooc = (matrix.T @ matrix).toarray()
    similarity = cooc / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(similarity, similarity.diagonal())          # an item is similar to itself (repeats)
    similarity[0] = 0.0
    similarity[:, 0] = 0.0
    return {"most_popular": _Scores(popularity, None), "item_knn": _Scores(popularity, similarity)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="taobao")
    parser.add_argument("--synthetic-rows", type=int, default=0,
                        help="use a synthetic log of this many events (seed 0) instead of --sample")
    parser.add_argument("--sequence-length", type=int, default=10)
    parser.add_argument("--max-vocab", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--loss", default="cross_entropy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--throughput-repeats", type=int, default=5)
    parser.add_argument("--throughput-rows", type=int, default=20_000, help="training rows timed per repeat")
    parser.add_argument("--models", default="two_tower,sasrec")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spec = SplitSpec(method="leave_last_out")
    if args.synthetic_rows:
        with tempfile.TemporaryDirectory() as folder:
            log = load(write_log(generate_log(args.synthetic_rows, seed=0), folder))
        source = f"synthetic log of {args.synthetic_rows:,} events (seed 0)"
    else:
        log, source = load_sample(args.sample), args.sample
    dataset = build_dataset(log, "next_item", split=spec, sequence_length=args.sequence_length,
                            max_vocab=args.max_vocab)
    split = split_dataset(dataset, spec)
    train_set, valid_set, test_set = (dataset.subset(split.train), dataset.subset(split.valid),
                                      dataset.subset(split.test))
    n_classes = dataset.schema.n_classes
    popularity = popularity_percentile(train_set.y, n_classes)
    report: dict = {"data": f"{source}: {len(train_set):,} training rows, {len(test_set):,} test users, "
                            f"{n_classes - 1:,} items in the vocabulary, "
                            f"{float(np.mean(test_set.y == 0)):.1%} of test targets outside it (a miss for every model)",
                    "torch": torch.__version__, "threads": args.threads, "quality": {}}
    for name, module in baselines(train_set, n_classes).items():
        started = time.perf_counter()
        _, ranks, top = rank_items(module, test_set)
        report["quality"][name] = {**{k: round(v, 4) for k, v in next_item_metrics(ranks, top, popularity).items()},
                                   "seconds": round(time.perf_counter() - started, 1)}
    for name in args.models.split(","):
        runs = []
        for seed in range(args.seeds):
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                 loss=args.loss, seed=seed, kept_states=0, patience=None, device="cpu")
            started = time.perf_counter()
            result = train(MODELS[name](), train_set, valid_set, config)
            _, ranks, top = rank_items(result.module, test_set)
            runs.append({**next_item_metrics(ranks, top, popularity), "seconds": time.perf_counter() - started})
        report["quality"][name] = {key: round(statistics.mean(r[key] for r in runs), 4) for key in runs[0]}
        if args.seeds > 1:
            report["quality"][name]["ndcg@10_per_seed"] = [round(r["ndcg@10"], 4) for r in runs]

    timed = train_set.subset(np.arange(min(args.throughput_rows, len(train_set))))
    model = MODELS["two_tower"]()
    common = dict(device=torch.device("cpu"), epochs=1, batch_size=args.batch_size, lr=1e-3, seed=0)
    minimal_loop(model, timed, **common)                      # untimed warm-up of each side
    recexp_train(model, timed, None, **common)
    cpu: dict[str, list[float]] = {"minimal": [], "recexp": []}
    for _ in range(args.throughput_repeats):
        cpu["minimal"].append(minimal_loop(model, timed, **common)[1])
        cpu["recexp"].append(recexp_train(model, timed, None, **common)[1])
    ratios = [r / m for r, m in zip(cpu["recexp"], cpu["minimal"])]
    report["throughput_two_tower"] = {
        "rows": len(timed), "repeats": args.throughput_repeats,
        "samples_per_cpu_second_median": {k: round(statistics.median(v)) for k, v in cpu.items()},
        "ratio_recexp_vs_minimal_median": round(statistics.median(ratios), 3),
        "ratio_min_max": [round(min(ratios), 3), round(max(ratios), 3)]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
