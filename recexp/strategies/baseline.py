"""The "no strategy" baseline: the training rows as they are, with the two flag columns added."""

from __future__ import annotations

import numpy as np

from recexp.dataset import Dataset
from recexp.i18n import N_
from recexp.strategies.base import Strategy


class NoStrategy(Strategy):
    """Return the training rows unchanged (``is_synthetic`` False, ``sample_weight`` 1.0)."""

    title = N_("No strategy (baseline)")              # words, not a name: translated where shown
    family = "baseline"
    summary = "Trains on the real rows as they are; every comparison is made against this."
    exact_target = True
    task_kinds = ("classification", "ranking")
    params = {}

    def __init__(self):
        pass

    def keeps_rows(self) -> bool:
        return True

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        return train, np.arange(len(train))
