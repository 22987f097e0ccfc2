"""LightGBM as a recexp model: gradient-boosted trees on the same split, strategies and run store.

The point is a reference: does a PyTorch model beat a gradient-boosted tree trained on the same rows?
So the tree model keeps the torch models' contract wherever it can:

* :class:`LightGBM` is a :class:`~recexp.models.base.Model` with a declarative parameter spec; its
  ``_build`` returns a :class:`BoosterNet`, an ``nn.Module`` whose ``forward(numeric, categorical,
  sequence)`` returns one logit per class (LightGBM's raw scores), so ``evaluate``, ``predict_proba``,
  Compare and the checkpoints work unchanged. The booster's text model travels in the module's
  ``state_dict`` as a uint8 tensor (``get_extra_state``), so a checkpoint still loads with
  ``weights_only=True`` and nothing is pickled.
* :func:`recexp.models.train` hands a model with ``differentiable = False`` to its :meth:`LightGBM.fit`,
  which returns the same :class:`~recexp.models.trainer.TrainResult`. An *epoch* is a block of
  ``rounds_per_epoch`` boosting rounds: ``TrainConfig.epochs`` blocks at most, progress callbacks,
  ``history``, early stopping (``patience`` and ``monitor``, in epochs) and per-row training loss and
  correctness (``sample_stats``, read by the mean-loss and forgetting importance methods) all count in
  these blocks. The model kept is the booster cut after the best epoch's last round.
* Rows count by their ``sample_weight`` (weighting strategies); ``class_weight="balanced"`` or the
  training setting ``loss="weighted"`` multiplies in inverse class frequencies. LightGBM has no focal
  loss, so a run that asks for one is refused with a sentence. LightGBM's ``seed`` is the run seed,
  so seeds differ only where something is random: row bagging and feature sampling.

Settings of ``TrainConfig`` that steer gradient descent (``batch_size``, ``learning_rate``,
``weight_decay``, ``mixed_precision``, ``kept_states``) do not apply: the model's own ``learning_rate``
and ``lambda_l2`` play those parts, and no model states are kept (the importance methods that need
gradients refuse tree runs). LightGBM runs on the CPU, with as many threads as torch may use.

Features: numbers as they are (LightGBM handles missing values), categorical codes as LightGBM
categorical features, and each behaviour-sequence group summarised by :func:`tree_features`.
"""

from __future__ import annotations

import math
import time

import lightgbm
import numpy as np
import pandas as pd
import torch
from torch import nn

from recexp.dataset import Dataset
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.metrics import confusion_scores
from recexp.models.base import Model, input_spec, to_tensors
from recexp.models.device import describe_device
from recexp.models.modules import InputSpec
from recexp.models.trainer import (EPOCH_METRICS, MONITORS, EpochCallback, TrainConfig, TrainResult, _sample_stats,
                                   class_weights)
from recexp.params import Choice, Float, Int, Optional

#: Sequence groups with at most this many codes (e.g. past behaviour types) also get a count per code.
SMALL_VOCABULARY = 16
#: Probabilities are clipped here before taking the per-row log-loss.
MIN_PROBABILITY = 1e-15


def tree_features(numeric: torch.Tensor, categorical: torch.Tensor, sequence: torch.Tensor, spec: InputSpec,
                  sequence_features: str) -> tuple[np.ndarray, list[int]]:
    """The feature matrix LightGBM sees, and the positions of its categorical columns.

    Parameters
    ----------
    numeric, categorical, sequence : torch.Tensor
        A model's three inputs (see :mod:`recexp.models.modules`).
    spec : InputSpec
    sequence_features : {"counts", "positions", "none"}
        ``"counts"``: per sequence group, its length (non-padding positions), how many positions hold
        the row's own value of that attribute when the schema has it (``hist_item`` <-> ``item``: has
        the user met this very item recently?), and for a small vocabulary (at most
        :data:`SMALL_VOCABULARY` codes, e.g. past behaviour types) a count per code.
        ``"positions"``: the counts plus every position's code as a categorical feature.
        ``"none"``: the sequence is left out.

    Returns
    -------
    (numpy.ndarray, list of int)
        ``(n, F)`` float64 features (numbers first, then categorical codes, then sequence features)
        and the indices of the categorical columns.
    """
    numbers, codes, history = (t.cpu().numpy() for t in (numeric, categorical, sequence))
    columns = [numbers[:, i] for i in range(numbers.shape[1])]
    categorical_columns = list(range(len(columns), len(columns) + codes.shape[1]))
    columns += [codes[:, j] for j in range(codes.shape[1])]
    if sequence_features != "none":
        targets = spec.sequence_targets or (-1,) * spec.n_groups
        for group, (size, target) in enumerate(zip(spec.sequence_sizes, targets)):
            group_codes = history[:, group]                                 # (n, L), 0 = padding
            present = group_codes != 0
            columns.append(present.sum(axis=1))
            if target >= 0:
                columns.append(((group_codes == codes[:, target:target + 1]) & present).sum(axis=1))
            if size - 1 <= SMALL_VOCABULARY:
                columns += [(group_codes == code).sum(axis=1) for code in range(1, size)]
            if sequence_features == "positions":
                categorical_columns += range(len(columns), len(columns) + group_codes.shape[1])
                columns += [group_codes[:, position] for position in range(group_codes.shape[1])]
    matrix = np.column_stack(columns).astype(np.float64) if columns else np.zeros((len(numbers), 0))
    return matrix, categorical_columns


class BoosterNet(nn.Module):
    """A fitted LightGBM booster behind the models' ``forward(numeric, categorical, sequence)`` contract.

    ``forward`` returns LightGBM's raw scores as ``(B, K)`` logits (binary: ``[0, score]``, whose
    softmax is the booster's probability). The booster's text model is the module's extra state, a
    uint8 tensor in its ``state_dict``.
    """

    def __init__(self, spec: InputSpec, sequence_features: str):
        super().__init__()
        self.spec = spec
        self.sequence_features = sequence_features
        self.model_text = ""
        self.booster: lightgbm.Booster | None = None

    def load_model_text(self, text: str) -> BoosterNet:
        """Hold the booster saved as ``text`` (LightGBM's ``model_to_string``)."""
        self.model_text = text
        self.booster = lightgbm.Booster(model_str=text) if text else None
        return self

    def get_extra_state(self) -> torch.Tensor:
        return torch.frombuffer(bytearray(self.model_text.encode()), dtype=torch.uint8) if self.model_text \
            else torch.zeros(0, dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.load_model_text(bytes(state.cpu().numpy()).decode())

    def forward(self, numeric, categorical, sequence):
        if self.booster is None:
            raise InvalidDataError(_("This LightGBM module holds no trees yet. Train it with "
                                     "recexp.models.train, or load a run's checkpoint with "
                                     "recexp.models.load_checkpoint."))
        features, _names = tree_features(numeric, categorical, sequence, self.spec, self.sequence_features)
        raw = self.booster.predict(features, raw_score=True, num_threads=torch.get_num_threads())
        logits = np.column_stack([np.zeros_like(raw), raw]) if raw.ndim == 1 else raw
        return torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)).to(numeric.device)


def _current_proba(booster: lightgbm.Booster, split: str) -> np.ndarray:
    """The booster's class probabilities ``(n, K)`` on its training (``"train"``) or validation data, now.

    LightGBM keeps both sets' scores up to date as it boosts; an evaluation function is the public way
    to read them, at no prediction cost.
    """
    captured = []

    def capture(preds, _data):
        captured.append(np.array(preds, dtype=np.float64))             # a copy: LightGBM reuses the buffer
        return "captured", 0.0, False

    (booster.eval_train if split == "train" else booster.eval_valid)(feval=capture)
    proba = captured[0]
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba


def _row_losses(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of every row."""
    return -np.log(np.clip(proba[np.arange(len(labels)), labels], MIN_PROBABILITY, None))


class LightGBM(Model):
    """Gradient-boosted decision trees (LightGBM) as a reference for the neural models.

    See the module docstring for how boosting rounds map onto epochs and which training settings apply.

    Examples
    --------
    >>> from recexp.models import LightGBM, TrainConfig, train                     # doctest: +SKIP
    >>> result = train(LightGBM(num_leaves=15), train_set, valid_set, TrainConfig(epochs=20))
    >>> result.history[["epoch", "valid_loss"]]
    """

    name = "lightgbm"
    description = "LightGBM gradient-boosted trees (a non-neural reference; an epoch is a block of boosting rounds)."
    differentiable = False
    params = {
        "rounds_per_epoch": Int(1, 10_000, help="Boosting rounds per epoch; the run's epochs times this is the "
                                                "most rounds. Early stopping keeps the best epoch's rounds."),
        "learning_rate": Float(0.0, 1.0, low_open=True, log=True,
                               help="Shrinkage of every tree's contribution. The training settings' learning rate, "
                                    "batch size and weight decay steer gradient descent and do not apply to trees."),
        "num_leaves": Int(2, 131_072, log=True, help="Most leaves per tree: the main capacity setting."),
        "max_depth": Optional(Int(1, None), help="Depth limit of each tree; empty = limited by num_leaves only."),
        "min_child_samples": Int(1, None, help="Fewest training rows in a leaf."),
        "feature_fraction": Float(0.0, 1.0, low_open=True,
                                  help="Share of features each tree may use, drawn with the run seed; 1 = all."),
        "bagging_fraction": Float(0.0, 1.0, low_open=True,
                                  help="Share of rows each round is fitted on, drawn anew every round with the "
                                       "run seed; 1 = all rows."),
        "lambda_l2": Float(0.0, None, help="L2 penalty on leaf values."),
        "class_weight": Choice({"none": "rows count by their sample_weight only",
                                "balanced": "sample_weight times inverse class frequency"},
                               help="Class weighting of the rows (the training setting loss='weighted' also "
                                    "turns on 'balanced')."),
        "sequence_features": Choice({"counts": "length, matches with the row's own item / category, "
                                               "counts of small vocabularies",
                                     "positions": "the counts plus each position's code as a categorical feature",
                                     "none": "leave the behaviour sequence out"},
                                    help="How the behaviour sequence becomes tree features."),
    }

    def __init__(self, rounds_per_epoch=10, learning_rate=0.1, num_leaves=31, max_depth=None, min_child_samples=20,
                 feature_fraction=1.0, bagging_fraction=1.0, lambda_l2=0.0, class_weight="none",
                 sequence_features="counts"):
        self.rounds_per_epoch = rounds_per_epoch
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.class_weight = class_weight
        self.sequence_features = sequence_features

    def _build(self, spec: InputSpec) -> BoosterNet:
        return BoosterNet(spec, self.sequence_features)

    def booster_params(self, n_classes: int, seed: int) -> dict:
        """LightGBM's parameters for a ``n_classes`` task and run seed (deterministic, quiet, no built-in metric)."""
        objective = {"objective": "binary"} if n_classes == 2 else {"objective": "multiclass", "num_class": n_classes}
        return {**objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "max_depth": -1 if self.max_depth is None else self.max_depth,
                "min_data_in_leaf": self.min_child_samples, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
                "lambda_l2": self.lambda_l2, "seed": seed, "deterministic": True, "force_col_wise": True,
                "num_threads": torch.get_num_threads(), "metric": "None", "verbosity": -1}

    def fit(self, train_set: Dataset, valid_set: Dataset | None, config: TrainConfig,
            callback: EpochCallback | None = None) -> TrainResult:
        """Boost on ``train_set`` with early stopping on ``valid_set``; what :func:`recexp.models.train` calls.

        Parameters
        ----------
        train_set : Dataset
            Training rows (after any strategy), with ``sample_weight`` and ``is_synthetic`` when set.
        valid_set : Dataset or None
            Rows for early stopping (``train`` carves them from ``train_set`` when none are given).
        config : TrainConfig
            ``epochs`` (blocks of ``rounds_per_epoch`` rounds), ``patience``, ``monitor``, ``loss``,
            ``record_sample_stats`` and ``seed`` apply.
        callback : callable, optional
            ``callback(epoch, metrics)`` after every block of rounds.

        Returns
        -------
        TrainResult
        """
        module = self.build(train_set)                     # validates the parameters
        if config.loss == "focal":
            raise InvalidParameterError(
                _("LightGBM has no focal loss, but this run asks for one (training setting loss='focal', or a "
                  "focal-loss strategy). Use loss 'cross_entropy' or 'weighted', or a torch model for focal loss."))
        spec = input_spec(train_set.schema)
        n_classes = spec.n_classes
        data = to_tensors(train_set)
        features, categorical = tree_features(*data.inputs, spec, self.sequence_features)
        labels = data.labels.numpy()
        row_weights = data.weights.numpy().astype(np.float64)
        loss_weights = row_weights
        if self.class_weight == "balanced" or config.loss == "weighted":
            loss_weights = row_weights * class_weights(data.labels, n_classes).numpy()[labels]
        params = self.booster_params(n_classes, config.seed)
        train_data = lightgbm.Dataset(features, label=labels, categorical_feature=categorical, params=params,
                                      weight=loss_weights if (loss_weights != 1).any() else None)
        booster = lightgbm.Booster(params, train_data)
        valid = to_tensors(valid_set) if valid_set is not None and len(valid_set) else None
        if valid is not None:
            valid_features, _names = tree_features(*valid.inputs, spec, self.sequence_features)
            booster.add_valid(lightgbm.Dataset(valid_features, label=valid.labels.numpy(), reference=train_data,
                                               categorical_feature=categorical, params=params), "valid")
            valid_labels = valid.labels.numpy()

        n = len(labels)
        losses = torch.zeros(config.epochs if config.record_sample_stats else 0, n)
        correct = torch.zeros(config.epochs if config.record_sample_stats else 0, n, dtype=torch.bool)
        higher_better = MONITORS[config.monitor]
        best_score, best_epoch, stale, stopped_early = -math.inf, 0, 0, False
        history: list[dict[str, float]] = []
        boost_seconds = 0.0
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            for _round in range(self.rounds_per_epoch):
                booster.update()
            step_seconds = time.perf_counter() - epoch_start
            boost_seconds += step_seconds
            proba = _current_proba(booster, "train")
            row_loss, hit = _row_losses(proba, labels), proba.argmax(axis=1) == labels
            if config.record_sample_stats:
                losses[epoch - 1] = torch.from_numpy(row_loss)
                correct[epoch - 1] = torch.from_numpy(hit)
            row = {"epoch": epoch, "train_loss": float((loss_weights * row_loss).sum() / max(row_weights.sum(), 1e-12)),
                   "train_accuracy": float(hit.mean())}
            if valid is not None:
                valid_proba = _current_proba(booster, "valid")
                confusion = np.bincount(valid_labels * n_classes + valid_proba.argmax(axis=1),
                                        minlength=n_classes * n_classes).reshape(n_classes, n_classes)
                scores = confusion_scores(confusion)
                row.update(valid_loss=float(_row_losses(valid_proba, valid_labels).mean()),
                           valid_accuracy=scores["accuracy"], valid_balanced_accuracy=scores["balanced_accuracy"],
                           valid_f1_macro=scores["f1_macro"])
                score = row["valid_" + config.monitor] * (1 if higher_better else -1)
                if score > best_score or best_epoch == 0:
                    best_score, best_epoch, stale = score, epoch, 0
                else:
                    stale += 1
            else:
                row.update(valid_loss=math.nan, valid_accuracy=math.nan, valid_balanced_accuracy=math.nan,
                           valid_f1_macro=math.nan)
                best_epoch = epoch
            row.update(epoch_seconds=time.perf_counter() - epoch_start,
                       samples_per_second=n * self.rounds_per_epoch / max(step_seconds, 1e-9))
            history.append(row)
            if callback is not None:
                callback(epoch, {k: v for k, v in row.items() if k != "epoch"})
            if valid is not None and config.patience is not None and stale >= config.patience:
                stopped_early = True
                break

        module.load_model_text(booster.model_to_string(num_iteration=best_epoch * self.rounds_per_epoch))
        module.eval()
        epochs_run = len(history)
        stats = _sample_stats(losses, correct, data, epochs_run) if config.record_sample_stats else None
        return TrainResult(
            module=module, model=self, input_spec=spec, device=describe_device("cpu"),
            history=pd.DataFrame(history, columns=["epoch", *EPOCH_METRICS]), sample_stats=stats,
            best_epoch=best_epoch, stopped_early=stopped_early, train_rows=n,
            valid_rows=len(valid) if valid is not None else 0, seconds=time.perf_counter() - started,
            samples_per_second=n * epochs_run * self.rounds_per_epoch / max(boost_seconds, 1e-9))
