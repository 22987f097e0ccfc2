"""The balancing family of the next-item task: which items the softmax over the catalogue sees, and how much.

A next-item dataset's classes are the catalogue's items, and their mix is a long tail: a few items take most
rows. Class-mix samplers (SMOTE...) make no sense there; what the field does instead:

* :class:`PopularityNegatives`: train with a sampled softmax whose negatives are drawn in proportion to
  item popularity (count ** 0.75, logQ-corrected), so popular items are pushed down where they are not
  the target (Mikolov et al. 2013; Yi et al. 2019). The rows are unchanged; the strategy sets
  ``StrategyResult.loss = {"name": "popularity_sampled", "negatives": n}``, which the trainer applies.
* :class:`LongTailWeighting`: every row's ``sample_weight`` is its target item's training count to the power
  ``-alpha`` (scaled to mean 1), so rows whose target is a tail item count more (inverse propensity).

Both apply to ranking tasks only (``task_kinds = ("ranking",)``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recexp.dataset import SAMPLE_WEIGHT, Dataset
from recexp.params import Float, Int
from recexp.strategies.base import Strategy


class PopularityNegatives(Strategy):
    """Sampled softmax with popularity-drawn negatives (logQ-corrected) instead of the full softmax."""

    title = "Popularity-aware negative sampling"
    family = "balancing"
    summary = ("Keeps every row and trains with a sampled softmax whose negative items are drawn by popularity "
               "(count^0.75, logQ-corrected): popular items are contrasted more often (next-item task).")
    task_kinds = ("ranking",)
    params = {"negatives": Int(1, 100_000, log=True, help="Negative items drawn per training batch.")}

    def __init__(self, negatives=100):
        self.negatives = negatives

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        return train, np.arange(len(train))

    def _loss(self):
        return {"name": "popularity_sampled", "negatives": int(self.negatives)}


class LongTailWeighting(Strategy):
    """Weight each row by its target item's training count to the power ``-alpha`` (mean weight 1)."""

    title = "Long-tail re-weighting"
    family = "weighting"
    summary = ("Keeps every row and weights it by 1 / (rows of its target item)^alpha, so rows whose target is a "
               "long-tail item count more (next-item task).")
    task_kinds = ("ranking",)
    params = {"alpha": Float(0.0, 2.0, help="Exponent: 0 keeps equal weights, 1 is inverse item frequency.")}

    def __init__(self, alpha=0.5):
        self.alpha = alpha

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        counts = self.class_counts_.astype(np.float64)
        raw = np.where(counts > 0, np.maximum(counts, 1.0) ** -float(self.alpha), 0.0)
        raw /= (raw * counts).sum() / counts.sum()
        y = train.y
        self.note(f"Row weights 1 / rows^{self.alpha:g}, mean 1: from {raw[y].min():.3g} (the most frequent target) "
                  f"to {raw[y].max():.3g} (targets seen once).")
        weight = train.frame[SAMPLE_WEIGHT].to_numpy(dtype=np.float64) * raw[y]
        return replace(train, frame=train.frame.assign(**{SAMPLE_WEIGHT: weight})), np.arange(len(train))


__all__ = ["LongTailWeighting", "PopularityNegatives"]
