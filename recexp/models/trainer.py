"""The training loop: one config, small pure helpers, the loop, a callback per epoch.

Data is converted to tensors once and moved to the device once; every batch is a gather of rows
from those resident tensors (no per-row Python ``Dataset``/``DataLoader``). Per-sample statistics
(loss and correctness of every training row at every epoch, measured on the forward pass that
trains on it) are written into preallocated device tensors, so recording them costs no host sync.

Example
-------
>>> from recexp.models import MLP, TrainConfig, train            # doctest: +SKIP
>>> result = train(MLP(), train_set, valid_set, TrainConfig(epochs=3))
>>> result.history[["epoch", "train_cross_entropy", "valid_loss"]]

Mixed precision (autocast on CUDA) is for the training steps only: validation and every prediction
(:func:`evaluate`) run in float32, so scores keep their resolution and top-K rankings do not tie.
Training draws every random number (initial weights, dropout, shuffling) from generators seeded with
``TrainConfig.seed`` inside :func:`train`; the caller's global RNG state is left as it was.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from recexp.dataset import IS_SYNTHETIC, Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _
from recexp.memory import memory_limit
from recexp.metrics import confusion_scores
from recexp.models.base import Inputs, Model, TensorData, input_spec, to_tensors
from recexp.models.device import describe_device, resolve_device
from recexp.models.modules import InputSpec
from recexp.models.shards import Batch, ParquetRows, ShardBatches, ShardSet, tensor_bytes, write_shards

#: Loss names TrainConfig accepts.
LOSSES = {"cross_entropy": N_("Cross-entropy"), "weighted": N_("Class-weighted cross-entropy (inverse frequency)"),
          "focal": N_("Focal loss (down-weights easy rows)"),
          "sampled_softmax": N_("Sampled softmax (the target against uniformly drawn negative classes)"),
          "popularity_sampled": N_("Sampled softmax with popularity-drawn negatives (logQ-corrected)")}
#: Losses that contrast the target with ``TrainConfig.negatives`` drawn classes (items) instead of all of them.
SAMPLED_LOSSES = ("sampled_softmax", "popularity_sampled")
#: Exponent of the training counts in the popularity proposal of ``popularity_sampled`` (word2vec's 0.75).
POPULARITY_EXPONENT = 0.75
#: Above this many classes validation skips the confusion matrix (K x K) and reports accuracy only.
MAX_CONFUSION_CLASSES = 1_000
#: Validation scores early stopping can watch, and whether higher is better.
MONITORS = {"loss": False, "balanced_accuracy": True, "f1_macro": True, "accuracy": True}


#: Where the training rows are read from: ``auto`` chooses disk when their tensors exceed the memory setting.
TRAIN_FROM = ("auto", "memory", "disk")

#: Optimiser steps per run below which :meth:`TrainConfig.short_training_warning` speaks up.
FEW_STEPS = 50


@dataclass(frozen=True)
class TrainConfig:
    """Everything that steers one training run; stored in the run spec."""

    epochs: int = 10                      # passes over the training rows (an upper bound with early stopping)
    batch_size: int = 512                 # rows per optimiser step
    learning_rate: float = 1e-3           # AdamW step size
    weight_decay: float = 0.0             # AdamW's decoupled weight decay
    loss: str = "cross_entropy"           # "cross_entropy", "weighted" (inverse class frequency), "focal", or sampled
    negatives: int = 100                  # negative classes drawn per batch by the sampled losses
    focal_gamma: float = 2.0              # focusing exponent of the focal loss (0 = cross-entropy)
    patience: int | None = 3              # epochs without validation improvement before stopping; None = never
    monitor: str = "loss"                 # validation score for early stopping: loss, balanced_accuracy, f1_macro, accuracy
    valid_fraction: float = 0.1           # share of real training rows held out when no validation set is given
    device: str = "auto"                  # "auto" (cuda > mps > cpu), "cuda", "mps" or "cpu"
    mixed_precision: bool = True          # autocast (bf16, or fp16 with loss scaling) in CUDA training steps; evaluation stays fp32
    record_sample_stats: bool = True      # keep per-epoch loss and correctness of every training row
    kept_states: int = 6                  # model states kept for sample importance (TracIn, GraNd): epoch 1 and evenly spaced after it; 0 = none
    seed: int = 0                         # seeds the run's own generators (init, dropout, shuffling); global RNGs untouched
    train_from: str = "auto"              # "memory", "disk" (memory-mapped shards), "auto" (disk past RECEXP_MEMORY_LIMIT)

    def validate(self) -> None:
        """Raise :class:`InvalidParameterError` naming the first bad field."""
        def bad(name: str, must: str) -> InvalidParameterError:
            return InvalidParameterError(
                _("Training setting '{name}' must be {must}, but got {value!r}. Change '{name}'.").format(
                  name=name, must=must, value=getattr(self, name)))

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", _("an integer of at least 1"))
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise bad("batch_size", _("an integer of at least 1"))
        for name in ("learning_rate",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
                raise bad(name, _("a positive number"))
        for name in ("weight_decay", "focal_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
                raise bad(name, _("a number of at least 0"))
        if self.loss not in LOSSES:
            raise bad("loss", _("one of {choices}").format(choices=", ".join(LOSSES)))
        if self.patience is not None and (not is_int(self.patience) or self.patience < 1):
            raise bad("patience", _("None or an integer of at least 1"))
        if self.monitor not in MONITORS:
            raise bad("monitor", _("one of {choices}").format(choices=", ".join(MONITORS)))
        if isinstance(self.valid_fraction, bool) or not isinstance(self.valid_fraction, int | float) \
                or not 0 <= self.valid_fraction < 1:
            raise bad("valid_fraction", _("a number from 0 up to (not including) 1"))
        if not isinstance(self.device, str):
            raise bad("device", _("'auto', 'cuda', 'mps' or 'cpu'"))
        for name in ("mixed_precision", "record_sample_stats"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, _("true or false"))
        if not is_int(self.seed) or self.seed < 0:
            raise bad("seed", _("a non-negative integer"))
        if not is_int(self.kept_states) or self.kept_states < 0:
            raise bad("kept_states", _("a non-negative integer"))
        if self.train_from not in TRAIN_FROM:
            raise bad("train_from", _("one of {choices}").format(choices=", ".join(TRAIN_FROM)))
        if not is_int(self.negatives) or self.negatives < 1:
            raise bad("negatives", _("an integer of at least 1"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def short_training_warning(self, train_rows: int) -> str | None:
        """A sentence when a run on ``train_rows`` rows would take fewer than :data:`FEW_STEPS` optimiser steps.

        So few steps leave a model close to its initialisation, and runs of different strategies with the same
        seed then tend to score alike (a small table with the default batch size). ``None`` when enough.

        >>> TrainConfig(epochs=10, batch_size=512).short_training_warning(144).split(" (")[0]
        'These settings give each run only 10 optimiser steps'
        """
        steps = self.epochs * math.ceil(train_rows / self.batch_size)
        if steps >= FEW_STEPS:
            return None
        batch = 2 ** max(0, int(math.log2(max(1, train_rows * self.epochs // FEW_STEPS))))
        return _("These settings give each run only {steps:,} optimiser steps ({rows:,} training rows in batches "
                 "of {batch_size:,}, {epochs} epochs). The models stay close to where they started, so strategies "
                 "may score alike: lower the batch size (e.g. {batch}) or raise the epochs.").format(
            steps=steps, rows=train_rows, batch_size=self.batch_size, epochs=self.epochs, batch=batch)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys with a sentence."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(
                _("Unknown training setting(s) {repr}; known: {known}.").format(
                  repr=', '.join(map(repr, unknown)), known=', '.join(sorted(known))))
        return cls(**data)


@dataclass
class TrainResult:
    """What :func:`train` returns: the fitted module plus everything measured while fitting it."""

    module: nn.Module                     # on ``device``, in eval mode, with the best epoch's weights
    model: Model
    input_spec: InputSpec
    device: str                           # the device actually used, e.g. "cpu" or "cuda:0"
    history: pd.DataFrame                 # one row per epoch (see EPOCH_METRICS)
    sample_stats: pd.DataFrame | None     # row, epoch, label, is_synthetic, loss, correct
    best_epoch: int
    stopped_early: bool
    train_rows: int
    valid_rows: int
    seconds: float                        # wall time of the epoch loop (validation included)
    samples_per_second: float             # training rows processed per second of pure training steps
    epoch_states: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # epoch -> state_dict on CPU
    trained_from: str = "memory"          # "memory" (resident tensors) or "disk" (memory-mapped shards)


#: Columns of ``TrainResult.history`` besides ``epoch``. ``train_loss`` is the training objective (focal,
#: class- and row-weighted where so configured); ``train_cross_entropy`` is the plain, unweighted mean
#: cross-entropy of the training rows over the epoch's steps, the same loss as ``valid_loss``.
EPOCH_METRICS = ("train_loss", "train_cross_entropy", "train_accuracy", "valid_loss", "valid_accuracy",
                 "valid_balanced_accuracy", "valid_f1_macro", "epoch_seconds", "samples_per_second")

EpochCallback = Callable[[int, dict[str, float]], None]
#: ``scorer(label codes, probabilities) -> float``: a score of the validation predictions after every epoch.
ValidScorer = Callable[[np.ndarray, np.ndarray], float]


def _own_generators(function: Callable) -> Callable:
    """Run ``function`` on forked torch generators (CPU and every accelerator device), restored on return.

    :func:`train` seeds torch's generators inside, so module initialisation and dropout are reproducible
    from ``TrainConfig.seed`` while the caller's random state is untouched (numpy and Python's ``random``
    are never used: shuffling and validation carving have generators of their own).
    """
    @functools.wraps(function)
    def forked(*args, **kwargs):
        with torch.random.fork_rng(devices=range(torch.accelerator.device_count())):
            return function(*args, **kwargs)
    return forked


def carve_validation(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out ``fraction`` of the real rows of each class (stratified) from a training set.

    Synthetic rows always stay in training. Classes with a single real row stay in training too.
    Returns ``(train, valid)``; ``valid`` is None when ``fraction`` is 0.
    """
    if fraction <= 0:
        return dataset, None
    rng = np.random.default_rng(seed)
    labels = dataset.y
    real = ~dataset.frame[IS_SYNTHETIC].to_numpy(dtype=bool) if IS_SYNTHETIC in dataset.frame \
        else np.ones(len(dataset), dtype=bool)
    held: list[np.ndarray] = []
    for k in np.unique(labels):
        rows = np.flatnonzero((labels == k) & real)
        if len(rows) < 2:
            continue
        take = min(len(rows) - 1, max(1, int(round(fraction * len(rows)))))
        held.append(rng.choice(rows, size=take, replace=False))
    if not held:
        return dataset, None
    valid_rows = np.sort(np.concatenate(held))
    keep = np.ones(len(dataset), dtype=bool)
    keep[valid_rows] = False
    return dataset.subset(np.flatnonzero(keep)), dataset.subset(valid_rows)


def class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (K_present * n_k)``; 0 for classes absent from ``labels``."""
    return weights_of_counts(torch.bincount(labels, minlength=n_classes))


def weights_of_counts(counts: torch.Tensor) -> torch.Tensor:
    """:func:`class_weights` from the rows per class (what shards on disk record, without their labels)."""
    counts = counts.float()
    present = (counts > 0).sum().clamp_min(1)
    return torch.where(counts > 0, counts.sum() / (present * counts.clamp_min(1)), torch.zeros_like(counts))


def negative_proposal(counts: torch.Tensor, loss: str) -> torch.Tensor | None:
    """The distribution the sampled losses draw negative classes from, given the training rows per class
    (CPU, class 0 excluded when K > 2).

    ``sampled_softmax``: uniform; ``popularity_sampled``: proportional to (training count + 1) **
    :data:`POPULARITY_EXPONENT`; ``None`` for the other losses.
    """
    if loss not in SAMPLED_LOSSES:
        return None
    n_classes = len(counts)
    weights = torch.ones(n_classes)
    if loss == "popularity_sampled":
        weights = (counts.cpu().double() + 1).pow(POPULARITY_EXPONENT).float()
    if n_classes > 2:
        weights[0] = 0.0                         # code 0: rare / missing, never a meaningful negative
    return weights / weights.sum()


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str, gamma: float,
                    weights: torch.Tensor | None, negatives: torch.Tensor | None = None,
                    log_proposal: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(objective per row, cross-entropy per row)``; ``weights`` are per-class (weighted loss).

    The sampled losses contrast each row's target logit with the logits of the drawn ``negatives`` (class
    codes, shared by the batch), each corrected by minus its log proposal probability (``log_proposal``;
    the logQ correction, which makes the sampled softmax an estimate of the full one); a negative equal to
    the row's target is masked out. The second value is always the full cross-entropy.
    """
    ce = F.cross_entropy(logits, labels, reduction="none")
    if loss == "focal":
        objective = (1 - torch.exp(-ce)).pow(gamma) * ce
    elif loss in SAMPLED_LOSSES:
        target = logits.gather(1, labels[:, None]) - log_proposal[labels][:, None]
        drawn = logits[:, negatives] - log_proposal[negatives]
        drawn = drawn.masked_fill(negatives[None, :] == labels[:, None], torch.finfo(drawn.dtype).min)
        objective = F.cross_entropy(torch.cat([target, drawn], dim=1),
                                    torch.zeros_like(labels), reduction="none")
    else:
        objective = ce
    if weights is not None:
        objective = objective * weights[labels]
    return objective, ce


def _autocast(device: torch.device, enabled: bool):
    if not (enabled and device.type == "cuda"):
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast(device_type="cuda", dtype=dtype), scaler


def _module_device(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


#: Rows of a Dataset converted to tensors at a time when it is scored (bounds the memory scoring takes).
SCORING_ROWS = 65_536


def _scoring_batches(data: Dataset | ParquetRows | TensorData, device: torch.device, batch_size: int
                     ) -> Iterator[tuple[Inputs, torch.Tensor]]:
    """``(inputs, labels)`` of consecutive rows on ``device``: slices of tensors, or of a Dataset (or of Parquet
    files, read in chunks) converted :data:`SCORING_ROWS` rows at a time."""
    if isinstance(data, ParquetRows):
        for chunk in data.chunks(SCORING_ROWS):
            yield from _scoring_batches(to_tensors(chunk), device, batch_size)
        return
    if isinstance(data, Dataset):
        for start in range(0, len(data), SCORING_ROWS):
            chunk = to_tensors(data.subset(np.arange(start, min(start + SCORING_ROWS, len(data)))))
            yield from _scoring_batches(chunk, device, batch_size)
        return
    data = data.to(device)
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        yield Inputs(*(tensor[rows] for tensor in data.inputs)), data.labels[rows]


@torch.no_grad()
def evaluate(module: nn.Module, data: Dataset | ParquetRows | TensorData, *, batch_size: int = 8192
             ) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and class probabilities of ``module`` on ``data`` (no gradients, eval mode, float32).

    Never under autocast, whatever the training used: reduced-precision logits collapse nearby scores
    into ties (bf16 keeps 8 bits of mantissa), which distorts ranking metrics.

    Parameters
    ----------
    module : nn.Module
        A model module; it runs on the device its parameters are on.
    data : Dataset, ParquetRows or TensorData
        Rows to score; a Dataset (or a part on disk, read file by file) is converted and moved to the module's
        device :data:`SCORING_ROWS` rows at a time, so scoring a large split holds its probabilities, not its
        tensors.
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    (float, numpy.ndarray)
        The mean (unweighted) cross-entropy and the ``(n, K)`` float32 probabilities.
    """
    device = _module_device(module)
    was_training = module.training
    module.eval()
    chunks, total = [], torch.zeros((), device=device)
    for inputs, labels in _scoring_batches(data, device, batch_size):
        logits = module(*inputs).float()
        total += F.cross_entropy(logits, labels, reduction="sum")
        chunks.append(torch.softmax(logits, dim=1).cpu())
    module.train(was_training)
    n = len(data)
    proba = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)
    return (float(total) / n if n else math.nan), proba


@torch.no_grad()
def _validate(module: nn.Module, data: Dataset | ParquetRows | TensorData, n_classes: int, batch_size: int
              ) -> tuple[float, dict[str, float]]:
    """Mean cross-entropy and confusion-matrix scores (one host sync), in float32.

    Batches as large as the training batches: known to fit, and on CPU faster per row than huge ones.
    """
    device = _module_device(module)
    module.eval()
    total = torch.zeros((), device=device)
    with_confusion = n_classes <= MAX_CONFUSION_CLASSES
    confusion = torch.zeros(n_classes * n_classes if with_confusion else 0, dtype=torch.long, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    n = len(data)
    for inputs, labels in _scoring_batches(data, device, batch_size):
        logits = module(*inputs).float()
        total += F.cross_entropy(logits, labels, reduction="sum")
        predicted = logits.argmax(dim=1)
        if with_confusion:
            confusion += torch.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes)
        else:
            correct += (predicted == labels).sum()
    module.train()
    if with_confusion:
        scores = confusion_scores(confusion.view(n_classes, n_classes).cpu().numpy())
    else:                  # thousands of classes (items): accuracy is top-1 hit rate; macro scores mean nothing
        scores = {"accuracy": float(correct) / max(n, 1), "balanced_accuracy": math.nan, "f1_macro": math.nan}
    return float(total) / max(n, 1), scores


def predict_proba(module: nn.Module, data: Dataset | TensorData, *, batch_size: int = 8192) -> np.ndarray:
    """Class probabilities ``(n, K)`` of ``module`` on ``data`` (see :func:`evaluate`)."""
    return evaluate(module, data, batch_size=batch_size)[1]


@torch.no_grad()
def rank_items(module: nn.Module, data: Dataset | TensorData, *, top_k: int = 20,
               batch_size: int = 1024) -> tuple[float, np.ndarray, np.ndarray]:
    """Rank every item for each row of a next-item dataset: the target's rank and the top of the list.

    The logits over the label space are item scores; code 0 (rare / missing) is never recommended. The
    rank is pessimistic under ties: ``1 +`` the number of other items scored at least as high as the target,
    so a constant model ranks its target last, not first. Float32, eval mode, as :func:`evaluate`.

    Returns
    -------
    (float, numpy.ndarray, numpy.ndarray)
        The mean cross-entropy over all classes, each row's rank (float; ``inf`` when the target is code 0)
        and the ``top_k`` recommended item codes per row ``(n, top_k)``.
    """
    device = _module_device(module)
    if isinstance(data, Dataset):
        data = to_tensors(data)
    data = data.to(device)
    was_training = module.training
    module.eval()
    total = torch.zeros((), device=device)
    ranks, tops = [], []
    n = len(data)
    for start in range(0, n, batch_size):
        index = torch.arange(start, min(start + batch_size, n), device=device)
        labels = data.labels[index]
        logits = module(*data.inputs.take(index)).float()
        total += F.cross_entropy(logits, labels, reduction="sum")
        scores = logits.clone()
        scores[:, 0] = -math.inf
        target = scores.gather(1, labels[:, None])
        rank = (scores >= target).sum(dim=1).double()
        ranks.append(torch.where(labels == 0, math.inf, rank))
        tops.append(scores.topk(min(top_k, scores.shape[1] - 1), dim=1).indices)
    module.train(was_training)
    if not n:
        return math.nan, np.zeros(0), np.zeros((0, top_k), dtype=np.int64)
    return float(total) / n, torch.cat(ranks).cpu().numpy(), torch.cat(tops).cpu().numpy()


def _sample_stats(losses: torch.Tensor, correct: torch.Tensor, data: TensorData, epochs: int) -> pd.DataFrame:
    n = len(data)
    labels = data.labels.cpu().numpy()
    labels = labels.astype(np.int16 if labels.max(initial=0) <= np.iinfo(np.int16).max else np.int32)   # items
    return pd.DataFrame({
        "row": np.tile(np.arange(n, dtype=np.int32), epochs),
        "epoch": np.repeat(np.arange(1, epochs + 1, dtype=np.int16), n),
        "label": np.tile(labels, epochs),
        "is_synthetic": np.tile(data.synthetic.cpu().numpy(), epochs),
        "loss": losses[:epochs].cpu().numpy().reshape(-1),
        "correct": correct[:epochs].cpu().numpy().reshape(-1),
    })


def _keep_state(states: dict[int, dict[str, torch.Tensor]], module: nn.Module, epoch: int, limit: int,
                stride: int) -> int:
    """Keep ``module``'s state after ``epoch`` when it falls on the stride; return the stride to use next.

    Epoch 1 is always kept; when more than ``limit`` states are held, the stride doubles and the
    states off it are dropped, so at most ``limit`` states spread evenly over the epochs run remain.
    """
    if limit == 0 or (epoch - 1) % stride:
        return stride
    states[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    while len(states) > limit:
        stride *= 2
        for kept in [e for e in states if (e - 1) % stride]:
            del states[kept]
    return stride


def trains_from_disk(train_set: Dataset, config: TrainConfig) -> bool:
    """Whether :func:`train` reads ``train_set`` from memory-mapped shards: ``config.train_from`` when it names
    a place, else (``"auto"``) when the rows' tensors, per-row statistics included, exceed the memory setting
    (:func:`recexp.memory.memory_limit`)."""
    if config.train_from != "auto":
        return config.train_from == "disk"
    stats_epochs = config.epochs if config.record_sample_stats else 0
    return tensor_bytes(train_set, stats_epochs) > memory_limit()


def _resident_batches(data: TensorData, batch_size: int, generator: torch.Generator, weighted: bool
                      ) -> Iterator[Batch]:
    """One epoch of shuffled batches gathered from resident tensors (weights only when ``weighted``)."""
    permutation = torch.randperm(len(data), generator=generator).to(data.labels.device)
    for start in range(0, len(data), batch_size):
        index = permutation[start:start + batch_size]
        yield Batch(index, data.inputs.take(index), data.labels[index], data.weights[index] if weighted else None)


@_own_generators
def train(model: Model, train_set: Dataset | ShardSet, valid_set: Dataset | ParquetRows | None = None,
          config: TrainConfig | None = None, callback: EpochCallback | None = None,
          valid_scorer: ValidScorer | None = None, scratch: str | Path | None = None) -> TrainResult:
    """Fit ``model`` on ``train_set`` with early stopping on ``valid_set``.

    Parameters
    ----------
    model : Model
        The model spec (e.g. ``MLP(hidden_dim=64)``); its module is built here, after seeding.
    train_set : Dataset or ShardSet
        Training rows, possibly with ``sample_weight`` (multiplies each row's loss) and
        ``is_synthetic`` columns from a strategy. A Dataset trains from resident tensors, or from
        memory-mapped shards written to ``scratch`` when :func:`trains_from_disk` says so; a
        :class:`~recexp.models.shards.ShardSet` (rows already on disk) always trains from its shards.
        From disk, no per-row statistics are kept (``sample_stats`` is None) and the numeric statistics
        are fitted on up to :data:`~recexp.models.shards.NORMALIZER_ROWS` real rows.
    valid_set : Dataset or ParquetRows, optional
        Rows to monitor for early stopping (a part on disk is scored file by file after every epoch). When
        omitted, ``config.valid_fraction`` of the real training rows is carved out (stratified), so the test
        split is never touched (a Dataset only).
    config : TrainConfig, optional
    callback : callable, optional
        Called after every epoch as ``callback(epoch, metrics)`` with the history row's values.
    valid_scorer : callable, optional
        ``valid_scorer(label codes, probabilities)`` of the validation rows after every epoch (e.g. the
        experiment's primary score, which a hyper-parameter search reports to its pruner); its value reaches
        ``callback`` as ``metrics["valid_score"]`` (not a history column). Differentiable models only:
        boosted trees ignore it.
    scratch : path, optional
        Folder for the shards of a Dataset trained from disk (a temporary folder by default); emptied after.

    Returns
    -------
    TrainResult
    """
    config = config or TrainConfig()
    config.validate()
    torch.manual_seed(config.seed)                       # on generators forked for this call (see _own_generators)
    device = resolve_device(config.device)
    if len(train_set) == 0:
        raise InvalidParameterError(_("The training set is empty; nothing to train on. Check the split and "
                                      "strategy."))
    on_disk = isinstance(train_set, ShardSet)
    if valid_set is None and on_disk:
        raise InvalidParameterError(_("Training from shards on disk needs a validation set: pass valid_set (rows "
                                      "are only carved from a training set in memory)."))
    if valid_set is None:
        train_set, valid_set = carve_validation(train_set, config.valid_fraction, config.seed)
    if not model.differentiable:                    # gradient-boosted trees boost in their own loop
        if on_disk or config.train_from == "disk":
            raise InvalidParameterError(_("The {model} model boosts on every row in memory; it cannot train from "
                                          "disk. Set train_from to 'auto' or 'memory', or choose a neural model."
                                          ).format(model=model.name))
        return model.fit(train_set, valid_set, config, callback)
    if on_disk or trains_from_disk(train_set, config):
        with contextlib.ExitStack() as stack:
            if not on_disk:
                folder = scratch if scratch is not None else stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="recexp-shards-"))
                stack.callback(shutil.rmtree, folder, True)
                train_set = write_shards(train_set, folder)
            return _fit(model, train_set, valid_set, config, callback, valid_scorer, device)
    return _fit(model, train_set, valid_set, config, callback, valid_scorer, device)


def _fit(model: Model, train_set: Dataset | ShardSet, valid_set: Dataset | ParquetRows | None, config: TrainConfig,
         callback: EpochCallback | None, valid_scorer: ValidScorer | None, device: torch.device) -> TrainResult:
    """The gradient-descent loop of :func:`train`, over resident tensors or over shards on disk."""
    on_disk = isinstance(train_set, ShardSet)
    spec = input_spec(train_set.schema)
    n, n_classes = len(train_set), spec.n_classes
    record_stats = config.record_sample_stats and not on_disk
    if on_disk:
        module = model.build_for(train_set.schema, train_set.real_numeric()).to(device)
        data = None
        shard_batches = ShardBatches(train_set, config.batch_size, config.seed, pin_memory=device.type == "cuda")
        counts = torch.tensor(train_set.class_counts)
        has_row_weights = train_set.weighted
    else:
        module = model.build(train_set).to(device)
        data = to_tensors(train_set).to(device)
        counts = torch.bincount(data.labels, minlength=n_classes).cpu()
        has_row_weights = bool((data.weights != 1).any())
    valid = None
    if valid_set is not None and len(valid_set):   # scored from resident tensors when they fit, else chunk by chunk
        resident = isinstance(valid_set, Dataset) and tensor_bytes(valid_set) <= memory_limit()
        valid = to_tensors(valid_set).to(device) if resident else valid_set
    loss_weights = weights_of_counts(counts).to(device) if config.loss == "weighted" else None
    proposal = negative_proposal(counts, config.loss)
    log_proposal = torch.log(proposal.clamp_min(1e-30)).to(device) if proposal is not None else None

    optimizer = torch.optim.AdamW(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    autocast, scaler = _autocast(device, config.mixed_precision)
    generator = torch.Generator().manual_seed(config.seed)
    epoch_losses = torch.zeros(config.epochs if record_stats else 0, n, device=device)
    epoch_correct = torch.zeros(config.epochs if record_stats else 0, n, dtype=torch.bool, device=device)

    higher_better = MONITORS[config.monitor]
    best_score, best_epoch, best_state, stale = -math.inf, 0, None, 0
    epoch_states: dict[int, dict[str, torch.Tensor]] = {}
    state_stride = 1
    history: list[dict[str, float]] = []
    train_seconds, stopped_early = 0.0, False
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        module.train()
        epoch_start = time.perf_counter()
        batches = (batch.to(device) for batch in shard_batches.epoch(epoch)) if on_disk else \
            _resident_batches(data, config.batch_size, generator, has_row_weights)
        loss_sum = torch.zeros((), device=device)
        cross_entropy_sum = torch.zeros((), device=device)
        weight_sum = torch.zeros((), device=device)
        correct_sum = torch.zeros((), device=device, dtype=torch.long)
        for index, inputs, labels, row_weights in batches:
            with autocast:
                logits = module(*inputs)
            negatives = (torch.multinomial(proposal, config.negatives, replacement=True, generator=generator).to(device)
                         if proposal is not None else None)
            objective, ce = per_sample_loss(logits.float(), labels, config.loss, config.focal_gamma, loss_weights,
                                            negatives, log_proposal)
            if has_row_weights:
                objective = objective * row_weights
                batch_weight = row_weights.sum()
            else:
                batch_weight = torch.tensor(float(len(index)), device=device)
            loss = objective.sum() / batch_weight.clamp_min(1e-12)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                hit = logits.argmax(dim=1) == labels
                loss_sum += objective.detach().sum()
                cross_entropy_sum += ce.detach().sum()
                weight_sum += batch_weight
                correct_sum += hit.sum()
                if record_stats:
                    epoch_losses[epoch - 1, index] = ce.detach()
                    epoch_correct[epoch - 1, index] = hit
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step_seconds = time.perf_counter() - epoch_start
        train_seconds += step_seconds

        row = {"epoch": epoch, "train_loss": float(loss_sum / weight_sum.clamp_min(1e-12)),
               "train_cross_entropy": float(cross_entropy_sum) / n, "train_accuracy": float(correct_sum) / n}
        if valid is not None:
            valid_loss, scores = _validate(module, valid, n_classes, config.batch_size)
            row.update(valid_loss=valid_loss, valid_accuracy=scores["accuracy"],
                       valid_balanced_accuracy=scores["balanced_accuracy"], valid_f1_macro=scores["f1_macro"])
        else:
            row.update(valid_loss=math.nan, valid_accuracy=math.nan, valid_balanced_accuracy=math.nan,
                       valid_f1_macro=math.nan)
        if valid is not None and valid_scorer is not None:
            row["valid_score"] = float(valid_scorer(valid_set.y.astype(np.int64), evaluate(module, valid)[1]))
        row.update(epoch_seconds=time.perf_counter() - epoch_start, samples_per_second=n / max(step_seconds, 1e-9))
        history.append(row)
        state_stride = _keep_state(epoch_states, module, epoch, config.kept_states, state_stride)

        if valid is not None:
            score = row["valid_" + config.monitor]
            score = score if higher_better else -score
            if score > best_score or best_state is None:
                best_score, best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
        else:
            best_epoch = epoch
        if callback is not None:
            callback(epoch, {k: v for k, v in row.items() if k != "epoch"})
        if valid is not None and config.patience is not None and stale >= config.patience:
            stopped_early = True
            break

    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    epochs_run = len(history)
    stats = _sample_stats(epoch_losses, epoch_correct, data, epochs_run) if record_stats else None
    return TrainResult(
        module=module, model=model, input_spec=spec, device=describe_device(device),
        history=pd.DataFrame(history, columns=["epoch", *EPOCH_METRICS]), sample_stats=stats,
        best_epoch=best_epoch, stopped_early=stopped_early, train_rows=n, valid_rows=len(valid) if valid is not None else 0,
        seconds=time.perf_counter() - started, samples_per_second=n * epochs_run / max(train_seconds, 1e-9),
        epoch_states=epoch_states, trained_from="disk" if on_disk else "memory")
