"""KNN-Shapley: exact Shapley values of the training rows for a K-nearest-neighbour classifier.

Jia et al. (VLDB 2019) give the exact Shapley value of every training row for the utility "share
of the K nearest training rows that carry the validation row's label", averaged over the validation
rows, in closed form. For one validation row ``(x, y)`` with the training rows sorted by distance
(``α_1`` nearest, ``N`` rows):

    s(α_N) = 1[y(α_N) = y] / N
    s(α_i) = s(α_{i+1}) + (1[y(α_i) = y] - 1[y(α_{i+1}) = y]) / K * min(K, i) / i

so a row is valuable when it is near validation rows of its own class and ahead of rows of another
class; a mislabelled row near validation rows of its true class gets a negative value.

Implementation choice: pyDVL (``KNNShapleyValuation``, LGPL-3.0) and OpenDataVal (MIT) implement the
same closed form, but neither installs with recexp's pins (pyDVL 0.10 requires numpy < 2; OpenDataVal
1.3 requires torch 2.1, numpy < 1.26 and pandas < 2), so recexp writes it: the
recursion is a reversed cumulative sum over the sorted rows, vectorised over a block of validation
rows at a time (a block holds about four million distances, so memory stays near 200 MB whatever
the data size). The test suite checks it against a brute-force Shapley computation (every subset
of a tiny training set).
"""

from __future__ import annotations

import numpy as np

from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _
from recexp.importance.base import HarmfulRows, ImportanceMethod, Progress
from recexp.importance.representations import (last_layer_outputs, numeric_features, require_network,
                                               require_validation)
from recexp.importance.run import TrainedRun
from recexp.params import Choice, Int

#: Distances held at once (validation rows per block = this / training rows).
BLOCK_CELLS = 1 << 22


def knn_shapley_values(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int,
                       progress: Progress | None = None) -> np.ndarray:
    """Exact KNN-Shapley value of every training row, averaged over the test rows (Jia et al. 2019).

    Parameters
    ----------
    train_x, test_x : numpy.ndarray
        ``(n, d)`` and ``(m, d)`` feature matrices; Euclidean distance.
    train_y, test_y : numpy.ndarray
        Integer labels.
    k : int
        Neighbours of the KNN classifier whose utility is shared out.
    progress : callable, optional
        ``progress(fraction_done, message)`` after every block of test rows.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` values; they sum to the KNN utility of the whole training set (efficiency).

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [5.0]])
    >>> knn_shapley_values(x, np.array([0, 1, 0]), np.array([[0.2]]), np.array([0]), k=1).round(3)
    array([ 0.833, -0.167,  0.333])
    """
    n, m = len(train_x), len(test_x)
    train_x, test_x = np.asarray(train_x, np.float32), np.asarray(test_x, np.float32)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    rank = np.arange(1, n, dtype=np.float64)                     # i = 1 .. n-1 (1 = nearest)
    step = np.minimum(k, rank) / (rank * k)
    train_sq = (train_x ** 2).sum(axis=1)
    values = np.zeros(n)
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, m, block):
        stop = min(start + block, m)
        # |a - b|² up to the test row's own |b|², which does not change the order of its neighbours.
        distance = train_sq[None, :] - 2.0 * (test_x[start:stop] @ train_x.T)
        order = np.argsort(distance, axis=1)
        match = (train_y[order] == test_y[start:stop, None]).astype(np.float64)
        increments = (match[:, :-1] - match[:, 1:]) * step
        # s_i = s_n + Σ_{j >= i} increment_j: the total minus the running sum before i.
        shapley = np.empty_like(match)
        shapley[:, :-1] = increments.sum(axis=1, keepdims=True) - np.cumsum(increments, axis=1) + increments
        shapley[:, -1] = 0.0
        shapley += match[:, -1:] / n
        values += np.bincount(order.ravel(), weights=shapley.ravel(), minlength=n)
        if progress is not None:
            progress(stop / m, _("{stop:,} of {m:,} validation rows").format(stop=stop, m=m))
    return values / max(m, 1)


class KNNShapley(ImportanceMethod):
    """Exact KNN-Shapley values against the validation rows (Jia et al., VLDB 2019).

    The rows are compared on their standardised numeric features (``space="features"``, see
    :func:`~recexp.importance.representations.numeric_features`) or on the kept best model's
    penultimate embedding, the input of its final linear layer (``space="embedding"``), where rows
    the network finds alike are close. Values are per validation row on average, so they are small
    (about ``1 / N``); their sum is the K-nearest-neighbour accuracy of the whole training set.
    """

    title = "KNN-Shapley"
    summary = "Exact Shapley value of each row for a K-nearest-neighbour classifier scored on the validation rows."
    harmful = HarmfulRows(
        0.0, N_("share that lower validation accuracy"),
        N_("Above 0: adding the row raises a K-nearest-neighbour classifier's validation accuracy, on average over "
        "the other rows it joins. Below 0: it lowers it (the row hurts, e.g. a wrong label among another class)."))
    needs = "features"
    params = {"k": Int(1, None, help="Neighbours of the KNN classifier."),
              "space": Choice({"features": "standardised numeric features",
                               "embedding": "the trained model's penultimate embedding"},
                              help="Where distances between rows are measured.")}

    def __init__(self, k=10, space="features"):
        self.k = k
        self.space = space

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        require_validation(run, self.title)
        if self.k > len(run.train):
            raise InvalidParameterError(
                _("{title}: parameter 'k' is {k}, but run {run_id} trained on {n_train:,} rows. Set 'k' to at "
                  "most {n_train:,}.").format(
                  title=self.title, k=self.k, run_id=run.run_id, n_train=len(run.train)))
        if self.space == "features":
            train_x, valid_x = numeric_features(run)
        else:
            require_network(run, f"{self.title} with space='embedding'")
            progress(0.0, _("embedding the rows with the kept model"))
            _model, module = run.model_at(None)
            train_x, valid_x = last_layer_outputs(module, run.train)[1], last_layer_outputs(module, run.valid)[1]
        return knn_shapley_values(train_x, run.labels, valid_x, run.valid.y.astype(np.int64), self.k, progress)
