"""Data-OOB (Kwon & Zou, ICML 2023): how often a row's label is predicted by models that never saw it.

Many small models are fitted on bootstrap samples of the training rows; each row is scored by the
models whose sample left it out (out of bag), and its value is the share of them that predict its
label. A row whose label its neighbourhood contradicts (mislabelled, or an odd synthetic row) has a
value near 0; a typical row near 1. The base models are decision trees on the standardised numeric
features (:func:`~recexp.importance.representations.numeric_features`), each split choosing among
``sqrt(p)`` features as in a random forest, so the ensemble is diverse and quick to fit.

Bootstrap samples draw *source rows*, not training rows: a synthetic row goes in or out of a sample
with the real row it was made from, so an over-sampled copy never makes its seed row look
predictable out of bag. pyDVL's ``DataOOBValuation`` (LGPL-3.0) implements the paper with
scikit-learn's bagging, but does not install with recexp's pins (it needs numpy < 2) and cannot
group rows, hence this loop.
"""

from __future__ import annotations

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from recexp.i18n import N_, _
from recexp.importance.base import HarmfulRows, ImportanceMethod, Progress
from recexp.importance.representations import numeric_features
from recexp.importance.run import TrainedRun
from recexp.params import Float, Int, Optional


class DataOOB(ImportanceMethod):
    """Share of out-of-bag decision trees that predict each row's label (Data-OOB, Kwon & Zou 2023)."""

    title = "Data-OOB"
    summary = ("Share of bagged trees that did not see the row and still predict its label; "
               "contradicted rows score lowest.")
    harmful = HarmfulRows(
        0.5, N_("share most unseen trees get wrong"),
        N_("Values are the share (0 to 1) of the trees that did not train on the row and still predict its label, "
        "so none is below 0. Below 0.5: most of those trees predict another class (the row's label is contradicted)."))
    needs = "features"
    params = {"n_estimators": Int(2, 10_000, help="Trees in the bag; each row is out of bag in about a third of them."),
              "max_samples": Float(0.0, 1.0, low_open=True,
                                   help="Bootstrap sample size as a share of the (source) rows."),
              "max_depth": Optional(Int(1, None), help="Depth limit of each tree; empty = grown until pure.")}

    def __init__(self, n_estimators=100, max_samples=1.0, max_depth=None):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_depth = max_depth

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        features, _names = numeric_features(run)
        labels = run.labels
        _unique, group = np.unique(run.source_rows, return_inverse=True)
        n_groups = int(group.max()) + 1
        draws = max(1, int(round(self.max_samples * n_groups)))
        rng = np.random.default_rng(seed)
        hits, seen = np.zeros(len(labels)), np.zeros(len(labels))
        for tree in range(self.n_estimators):
            weight = np.bincount(rng.integers(0, n_groups, draws), minlength=n_groups)[group]
            in_bag = weight > 0
            model = DecisionTreeClassifier(max_features="sqrt", max_depth=self.max_depth,
                                           random_state=int(rng.integers(2**31 - 1)))
            model.fit(features[in_bag], labels[in_bag], sample_weight=weight[in_bag])
            out = ~in_bag
            hits[out] += model.predict(features[out]) == labels[out]
            seen[out] += 1
            progress((tree + 1) / self.n_estimators, _("{tree} of {n_estimators} trees").format(
                                                       tree=tree + 1, n_estimators=self.n_estimators))
        never = seen == 0
        values = np.divide(hits, seen, out=np.zeros_like(hits), where=~never)
        if never.any():
            fill = values[~never].mean() if (~never).any() else 0.5
            values[never] = fill
            self.note(_("Rows in every bootstrap sample ({never:,}) got the mean value {fill:.3f}; use more "
                        "trees or a smaller max_samples to score them.").format(never=int(never.sum()), fill=fill))
        return values
