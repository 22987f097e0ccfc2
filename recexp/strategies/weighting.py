"""Weighting: change how much each row counts instead of how many rows there are.

Class weights go into ``sample_weight`` (every row of class ``c`` gets ``w_c``, multiplied into any
weight the row already had), so the training rows themselves are unchanged. The trainer multiplies
each row's loss by its weight and divides by the batch's weight sum, so only the ratios between
classes matter; weights are scaled here so that their mean over the training rows is 1.

Focal loss (Lin et al. 2017) is a change of the loss, not of the rows: :class:`FocalLoss` returns the
rows unchanged (optionally class-weighted, which is focal loss's ``alpha``) and sets
``StrategyResult.loss = {"name": "focal", "gamma": gamma}``; ``StrategyResult.train_overrides()``
turns that into ``TrainConfig(loss="focal", focal_gamma=gamma)``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recexp.dataset import SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.params import Choice, Float
from recexp.strategies.base import Strategy

#: Class-weight schemes: name -> description.
SCHEMES = {
    "balanced": "balanced: n / (classes x rows of the class), scikit-learn's rule",
    "inverse_sqrt": "inverse square root: 1 / sqrt(rows of the class)",
    "effective_number": "effective number of samples: (1 - beta) / (1 - beta^rows) (Cui et al. 2019)",
}

_BETA = Float(0.0, 1.0, high_open=True,
              help="Effective-number scheme only: 0 gives equal weights, values near 1 approach inverse frequency.")


def class_weights(y: np.ndarray, n_classes: int, scheme: str, beta: float = 0.999) -> np.ndarray:
    """Weight of each class code under ``scheme``, scaled so the mean weight over the rows ``y`` is 1.

    Classes without rows get weight 0 (no row carries it).

    Parameters
    ----------
    y : numpy.ndarray
        Integer label codes of the training rows.
    n_classes : int
    scheme : {"balanced", "inverse_sqrt", "effective_number"}
    beta : float
        Only for ``"effective_number"``; in ``[0, 1)``.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2, "balanced").round(3).tolist()
    [0.667, 2.0]
    """
    return weights_of_counts(np.bincount(y, minlength=n_classes), scheme, beta)


def weights_of_counts(counts: np.ndarray, scheme: str, beta: float = 0.999) -> np.ndarray:
    """:func:`class_weights` from the rows per class (what a training split on disk records, without its labels).

    >>> weights_of_counts(np.array([3, 1]), "balanced").round(3).tolist()
    [0.667, 2.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    raw = np.zeros(len(counts))
    if scheme == "balanced":           # scikit-learn's n / (classes x rows of the class); the scale cancels below
        raw[present] = 1.0 / counts[present]
    elif scheme == "inverse_sqrt":
        raw[present] = 1.0 / np.sqrt(counts[present])
    elif scheme == "effective_number":
        # (1 - beta^n) / (1 - beta) is the effective number of samples; its inverse is the weight.
        raw[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
    else:
        raise InvalidParameterError(_("Unknown class-weight "
                                      "scheme {scheme!r}; use one of {schemes}.").format(scheme=scheme, schemes=', '.join(SCHEMES)))
    mean = (raw * counts).sum() / counts.sum()
    return raw / mean


class ClassWeights(Strategy):
    """Weight every row by its class: balanced, inverse square root or effective number of samples."""

    title = "Class weights"
    family = "weighting"
    summary = "Keeps every row and sets sample_weight per class so that smaller classes count more."
    params = {
        "scheme": Choice(SCHEMES, help="How a class's weight follows from its number of training rows."),
        "beta": _BETA,
    }

    def __init__(self, scheme="balanced", beta=0.999):
        self.scheme = scheme
        self.beta = beta

    def keeps_rows(self) -> bool:
        return True

    def class_multipliers(self, counts: np.ndarray) -> np.ndarray:
        self.validate_params()
        return weights_of_counts(counts, self.scheme, self.beta)

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        return _weighted(self, train, self.scheme), np.arange(len(train))


class FocalLoss(Strategy):
    """Train with the focal loss; optionally class-weighted (focal loss's alpha)."""

    title = "Focal loss"
    family = "weighting"
    summary = ("Keeps every row and asks the trainer for the focal loss, which down-weights rows the model "
               "already gets right (Lin et al. 2017).")
    params = {
        "gamma": Float(0.0, 10.0, help="Focusing exponent: 0 is plain cross-entropy; 2 is the paper's choice."),
        "alpha": Choice({"none": "none: every class weighs the same", **SCHEMES},
                        help="Per-class weight (the focal loss's alpha), carried in sample_weight."),
        "beta": _BETA,
    }

    def __init__(self, gamma=2.0, alpha="none", beta=0.999):
        self.gamma = gamma
        self.alpha = alpha
        self.beta = beta

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        if self.alpha == "none":
            return train, np.arange(len(train))
        return _weighted(self, train, self.alpha), np.arange(len(train))

    def keeps_rows(self) -> bool:
        return True

    def class_multipliers(self, counts: np.ndarray) -> np.ndarray | None:
        self.validate_params()
        return None if self.alpha == "none" else weights_of_counts(counts, self.alpha, self.beta)

    def _loss(self):
        return {"name": "focal", "gamma": float(self.gamma)}


def _weighted(strategy: Strategy, train: Dataset, scheme: str) -> Dataset:
    y = train.y
    weights = class_weights(y, train.schema.n_classes, scheme, strategy.beta)
    present = strategy.class_counts_ > 0
    strategy.note(_("Class weights (mean 1 over the training rows): {weights}.").format(weights=", ".join(
        f"{name} {w:.3g}" for name, w, p in zip(train.schema.classes, weights, present) if p)))
    new_weight = train.frame[SAMPLE_WEIGHT].to_numpy(dtype=np.float64) * weights[y]
    return replace(train, frame=train.frame.assign(**{SAMPLE_WEIGHT: new_weight}))
