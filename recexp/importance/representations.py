"""What the valuation methods look at: a run's rows as feature vectors, and a model's last layer.

Two views of a row serve every method that needs more than the training statistics:

* :func:`numeric_features`: the numeric features, signed-log transformed and standardised with
  statistics of the real training rows (the behaviour counts are heavy-tailed: without the log a
  handful of power users would dominate every distance);
* :func:`last_layer_outputs`: a model's class probabilities and the input ``h`` of its final linear
  layer (:func:`last_layer`). The cross-entropy gradient of a row with respect to that layer's
  weights and bias is ``(p - y) ⊗ [h, 1]``, exact and cheap (GraNd, TracIn), and ``h`` is the
  model's penultimate embedding (KNN-Shapley's ``space="embedding"``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.importance.run import TrainedRun
from recexp.models import MODELS, evaluate


def numeric_features(run: TrainedRun) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows as standardised numeric feature matrices (float32).

    Each feature is ``sign(x) * log1p(|x|)``, missing values become the median of the real training
    rows, then it is centred and scaled by the real training rows' mean and standard deviation
    (constant features are only centred). Categorical codes and sequences are left out: their codes
    are identifiers, not positions on a scale.

    Raises
    ------
    InvalidDataError
        The dataset has no numeric features.
    """
    columns = list(run.train.schema.numeric)
    if not columns:
        raise InvalidDataError(
            _("Run {run_id}'s dataset has no numeric features, so rows cannot be compared by their features. Use "
              "a model-based method (e.g. EL2N or TracIn), or KNN-Shapley with "
              "space='embedding'.").format(run_id=run.run_id))

    def signed_log(dataset) -> np.ndarray:
        values = dataset.frame.loc[:, columns].to_numpy(np.float64, na_value=np.nan)
        return np.sign(values) * np.log1p(np.abs(values))

    train, valid = signed_log(run.train), signed_log(run.valid)
    real = train[~run.is_synthetic] if (~run.is_synthetic).any() else train
    median = np.nan_to_num(np.nanmedian(real, axis=0)) if len(real) else np.zeros(len(columns))
    filled = np.where(np.isnan(real), median, real)
    mean, std = filled.mean(axis=0), filled.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)

    def standardise(values: np.ndarray) -> np.ndarray:
        return ((np.where(np.isnan(values), median, values) - mean) / std).astype(np.float32)

    return standardise(train), standardise(valid)


def require_validation(run: TrainedRun, title: str) -> None:
    """Refuse, with a sentence, a run whose split has no validation rows to value against."""
    if len(run.valid) == 0:
        raise InvalidDataError(
            _("{title} values rows against the validation split, but run {run_id}'s split has no validation "
              "rows. Launch the run again with a validation share (split setting valid_size), or use another "
              "method.").format(title=title, run_id=run.run_id))


def require_network(run: TrainedRun, title: str) -> None:
    """Refuse, with a sentence, a run whose model has no gradients or embedding (gradient-boosted trees)."""
    if not MODELS[run.spec.model].differentiable:
        raise InvalidParameterError(
            _("{title} reads a neural network's last-layer gradients or embedding, but run {run_id} trained a "
              "{model} model (gradient-boosted trees), which has neither. Value its rows with the mean loss, "
              "forgetting events, KNN-Shapley on features or Data-OOB.").format(
              title=title, run_id=run.run_id, model=run.spec.model))


def last_layer(module: nn.Module) -> nn.Linear:
    """The final linear layer of a recexp model, whose per-row gradients the gradient methods use.

    Every network with a hidden part ends in ``head`` (for Wide&Deep and DeepFM, ``head`` is the deep
    part's output layer; the linear and FM terms added to it have their own weights, left out).
    Logistic regression has no hidden layer: its weights on the standardised numeric features are
    used, so ``h`` is the standardised numbers (its one-hot weights touch only a row's own codes).

    Raises
    ------
    InvalidParameterError
        The module has neither (a model added to the zoo without a ``head``).
    """
    head = getattr(module, "head", None)
    if isinstance(head, nn.Linear):
        return head
    numeric = getattr(getattr(module, "linear", None), "numeric", None)
    if isinstance(numeric, nn.Linear):
        return numeric
    raise InvalidParameterError(
        _("The {name} network has no final linear layer named 'head' to take gradients at. Choose a method that "
          "needs no model state (mean loss, forgetting, KNN-Shapley on "
          "features, Data-OOB).").format(name=type(module).__name__))


@torch.no_grad()
def last_layer_outputs(module: nn.Module, dataset, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``(n, K)`` and last-layer inputs ``h`` ``(n, d)`` of ``module`` on ``dataset``.

    The module runs in eval mode (no dropout), on the device its parameters are on.
    """
    captured: list[torch.Tensor] = []
    hook = last_layer(module).register_forward_hook(lambda layer, inputs, output: captured.append(inputs[0].float()))
    try:
        _, proba = evaluate(module, dataset, batch_size=batch_size)
    finally:
        hook.remove()
    hidden = torch.cat(captured).cpu().numpy() if captured else np.zeros((0, 0), dtype=np.float32)
    return proba.astype(np.float64), hidden.astype(np.float64)


def residuals(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``p - onehot(y)``: the cross-entropy gradient with respect to the logits, one row per sample."""
    out = np.array(proba, dtype=np.float64)
    out[np.arange(len(labels)), labels] -= 1.0
    return out
