"""Does a method find bad rows? Plant label noise, then score how well the values rank it.

The standard test of a data-valuation method (Ghorbani & Zou 2019; Jiang et al. 2023): flip the labels
of a share of the training rows, train, value the rows, and ask whether the flipped rows get the
lowest values. :func:`flip_labels` plants the noise (training rows only: validation and test keep
their true labels, so the model is still judged against the truth) and :func:`detection_auc`
scores a result. ``benchmarks/importance.py`` runs every method this way; the unit tests use the
same two functions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.metrics import roc_auc_score

from recexp.dataset import LABEL, Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.importance.base import ImportanceResult
from recexp.importance.run import SOURCE_ROW


def flip_labels(dataset: Dataset, rows: np.ndarray, fraction: float, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """A copy of ``dataset`` with the labels of ``fraction`` of ``rows`` changed to another class.

    Parameters
    ----------
    dataset : Dataset
    rows : numpy.ndarray
        Positions eligible for flipping (the training split's rows).
    fraction : float
        Share of ``rows`` to flip, in (0, 1).
    seed : int
        Picks the rows and their new classes (uniform among the other classes).

    Returns
    -------
    (Dataset, numpy.ndarray)
        The noisy dataset and the sorted positions whose label was flipped.

    Examples
    --------
    >>> noisy, flipped = flip_labels(dataset, split.train, 0.1, seed=0)       # doctest: +SKIP
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise InvalidParameterError(_("'fraction' must be a number between 0 and 1 (exclusive), but got "
                                      "{fraction!r}.").format(fraction=fraction))
    n_classes = dataset.schema.n_classes
    if n_classes < 2:
        raise InvalidParameterError(_("Labels can only be flipped with at least two classes; this dataset has "
                                      "one."))
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(np.asarray(rows), size=int(round(fraction * len(rows))), replace=False))
    labels = dataset.frame[LABEL].to_numpy(np.int64).copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, n_classes, size=len(flipped))) % n_classes
    frame = dataset.frame.copy()
    frame[LABEL] = labels.astype(dataset.frame[LABEL].dtype)
    return replace(dataset, frame=frame), flipped


def detection_auc(result: ImportanceResult, flipped: np.ndarray, by_class: bool = False) -> float:
    """ROC-AUC of ranking the flipped rows as the least valuable (0.5 = chance, 1 = all flipped rows lowest).

    Parameters
    ----------
    result : ImportanceResult
        Values of a run trained on the noisy labels; its real rows are scored.
    flipped : numpy.ndarray
        Dataset positions (``source_row``) of the flipped rows, as :func:`flip_labels` returns them.
    by_class : bool
        Rank within each (noisy) label instead: the AUC among the rows carrying each label, averaged
        with weights = flipped rows per label. Flipping moves rows from big classes into small ones,
        so ranking by label rarity alone already finds much of the noise; this score leaves that out.
    """
    real = result.values[~result.values["is_synthetic"].to_numpy(bool)].groupby(SOURCE_ROW).agg(
        value=("value", "mean"), label=("label", "first"))
    real["flipped"] = np.isin(real.index.to_numpy(), flipped)
    groups = [part for _, part in real.groupby("label")] if by_class else [real]
    scored = [(part["flipped"].sum(), roc_auc_score(part["flipped"], -part["value"]))
              for part in groups if 0 < part["flipped"].sum() < len(part)]
    if not scored:
        raise InvalidParameterError(
            _("The result's real rows are all flipped or none is (in every class), so there is nothing to rank. "
              "Pass the flipped rows of the same dataset and split."))
    weights, aucs = np.array(scored).T
    return float(np.average(aucs, weights=weights))
