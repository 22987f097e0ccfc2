"""Do importance values hold up? Agreement across methods and seeds, and a check against cleanlab.

Values of one run cannot be trusted on their own: a row that is "harmful" under one method, seed or
model and fine under the others says more about the method than about the row. This module compares
:class:`~recexp.importance.base.ImportanceResult` objects on the real rows they share (matched by
``source_row``, the dataset position, so runs with different strategies on the same split line up;
synthetic rows have no counterpart and are left out):

* :func:`rank_agreement`: pairwise Spearman rank correlation of the values;
* :func:`consistently_harmful`: the rows in the lowest quantile of every result;
* :func:`label_issue_flags` and :func:`cross_check`: cleanlab's label-issue detection (confident
  learning, Northcutt et al. 2021) and how much it overlaps with the lowest-valued rows.

cleanlab needs out-of-sample class probabilities: a model's predictions on the rows it trained on
are in-sample (a network can memorise a wrong label), so :func:`out_of_sample_probabilities`
cross-validates a logistic regression on the standardised numeric features instead, with folds
grouped by source row (a synthetic copy is never scored by a model that trained on its seed row).
It is a different model from the run's, which is the point of a cross-check.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.importance.base import ImportanceResult
from recexp.importance.representations import numeric_features
from recexp.importance.run import SOURCE_ROW, TrainedRun

#: Columns of :func:`rank_agreement`'s frame.
AGREEMENT_COLUMNS = ("run_a", "run_b", "method_a", "method_b", "shared_rows", "spearman")
#: Columns of :func:`consistently_harmful`'s frame.
HARMFUL_COLUMNS = (SOURCE_ROW, "label", "class", "results", "mean_rank", "mean_value")


def _check_quantile(quantile: float) -> None:
    if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
        raise InvalidParameterError(
            _("'quantile' must be a number between 0 and 1 (exclusive), but got {quantile!r}. Pass e.g. 0.1 for "
              "the lowest tenth.").format(quantile=quantile))


def real_values(result: ImportanceResult) -> pd.Series:
    """The values of a result's real rows, indexed by ``source_row``."""
    real = result.values[~result.values["is_synthetic"].to_numpy(bool)]
    return real.groupby(SOURCE_ROW)["value"].mean()


def rank_agreement(results: list[ImportanceResult]) -> pd.DataFrame:
    """Spearman rank correlation of every pair of results on the real rows both have.

    Parameters
    ----------
    results : list of ImportanceResult
        Values of any methods, seeds and runs (runs on the same dataset and split share real rows).

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(a, b)`` in the order given: ``run_a, run_b, method_a, method_b,
        shared_rows, spearman`` (NaN when fewer than two rows are shared or a side is constant on them).
    """
    series = [real_values(result) for result in results]
    rows = []
    for (i, a), (j, b) in itertools.combinations(enumerate(results), 2):
        shared = series[i].index.intersection(series[j].index)
        left, right = series[i].loc[shared], series[j].loc[shared]
        constant = left.nunique() < 2 or right.nunique() < 2
        rho = np.nan if len(shared) < 2 or constant else float(left.corr(right, method="spearman"))
        rows.append((a.run_id, b.run_id, a.method, b.method, len(shared), rho))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def consistently_harmful(results: list[ImportanceResult], quantile: float = 0.1,
                         min_results: int | None = None) -> pd.DataFrame:
    """Real rows in the lowest ``quantile`` of values in every result that has them.

    A row's rank in a result is its percentile among that result's real rows (ties get their average
    rank); it is "low" when the percentile is at most ``quantile``.

    Parameters
    ----------
    results : list of ImportanceResult
    quantile : float
        Share of the lowest-valued rows of each result that count as low, in (0, 1).
    min_results : int, optional
        Rows must appear in at least this many results (default: all of them; lower it to compare
        runs whose strategies removed different rows).

    Returns
    -------
    pandas.DataFrame
        ``source_row, label, class, results`` (how many results have the row), ``mean_rank`` (mean
        percentile, low = harmful) and ``mean_value``; lowest mean rank first.
    """
    _check_quantile(quantile)
    if not results:
        raise InvalidParameterError(_("consistently_harmful needs at least one importance result; compute one "
                                      "first."))
    needed = len(results) if min_results is None else min_results
    if isinstance(needed, bool) or not isinstance(needed, int) or not 1 <= needed <= len(results):
        raise InvalidParameterError(
            _("'min_results' must be an integer from 1 to {n_results} (the number of results), but got "
              "{min_results!r}. Leave it empty to require every result.").format(
              n_results=len(results), min_results=min_results))
    series = [real_values(result) for result in results]
    ranks = pd.concat([s.rank(method="average", pct=True) for s in series], axis=1)
    values = pd.concat(series, axis=1)
    count = ranks.notna().sum(axis=1)
    keep = (count >= needed) & (ranks.le(quantile) | ranks.isna()).all(axis=1)
    labels = pd.concat([r.values[~r.values["is_synthetic"].to_numpy(bool)].set_index(SOURCE_ROW)[["label", "class"]]
                        for r in results])
    labels = labels[~labels.index.duplicated()]
    index = keep[keep].index
    frame = pd.DataFrame({SOURCE_ROW: index.to_numpy(np.int64), "label": labels.loc[index, "label"].to_numpy(),
                          "class": labels.loc[index, "class"].to_numpy(), "results": count.loc[index].to_numpy(),
                          "mean_rank": ranks.loc[index].mean(axis=1).to_numpy(),
                          "mean_value": values.loc[index].mean(axis=1).to_numpy()})
    return frame.sort_values(["mean_rank", SOURCE_ROW], ignore_index=True).loc[:, list(HARMFUL_COLUMNS)]


def out_of_sample_probabilities(run: TrainedRun, seed: int = 0, folds: int = 5) -> np.ndarray:
    """Class probabilities ``(n, K)`` of every training row from a model that did not see it.

    A multinomial logistic regression on the standardised numeric features, ``folds``-fold
    cross-validated, stratified by label and grouped by source row. A class missing from a fold's
    training part gets probability 0 in that fold.
    """
    features, _ = numeric_features(run)
    labels = run.labels
    proba = np.zeros((len(labels), run.train.schema.n_classes))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="The least populated class")
        for fit_rows, score_rows in splitter.split(features, labels, groups=run.source_rows):
            model = LogisticRegression(max_iter=300).fit(features[fit_rows], labels[fit_rows])
            proba[np.ix_(score_rows, model.classes_)] = model.predict_proba(features[score_rows])
    return proba


def label_quality(run: TrainedRun, seed: int = 0, proba: np.ndarray | None = None) -> np.ndarray:
    """cleanlab's label-quality score of every training row, in [0, 1]; low = the label is likely wrong.

    ``proba`` are out-of-sample probabilities (default: :func:`out_of_sample_probabilities`).
    """
    from cleanlab.rank import get_label_quality_scores

    proba = out_of_sample_probabilities(run, seed) if proba is None else proba
    return get_label_quality_scores(run.labels, proba)


def label_issue_flags(run: TrainedRun, seed: int = 0, proba: np.ndarray | None = None) -> np.ndarray:
    """Whether cleanlab's ``find_label_issues`` flags each training row's label as likely wrong.

    Parameters
    ----------
    run : TrainedRun
    seed : int
        Seeds the cross-validation folds of :func:`out_of_sample_probabilities`.
    proba : numpy.ndarray, optional
        Out-of-sample probabilities when the caller has them.

    Returns
    -------
    numpy.ndarray
        One bool per training row, in training order.
    """
    from cleanlab.filter import find_label_issues

    proba = out_of_sample_probabilities(run, seed) if proba is None else proba
    return np.asarray(find_label_issues(run.labels, proba, n_jobs=1), dtype=bool)


def lowest_rows(result: ImportanceResult, quantile: float) -> np.ndarray:
    """Bool per training row: in the lowest ``quantile`` of the result's values (ties at their average rank)."""
    _check_quantile(quantile)
    return (result.values["value"].rank(method="average", pct=True) <= quantile).to_numpy()


def cross_check(result: ImportanceResult, flags: np.ndarray, quantile: float = 0.1) -> dict[str, float | int]:
    """How the lowest-valued rows of ``result`` overlap with cleanlab's flagged rows (same run, training order).

    Returns
    -------
    dict
        ``rows``, ``flagged`` (cleanlab), ``lowest`` (rows in the lowest ``quantile``), ``overlap``,
        ``precision`` (share of the lowest rows that cleanlab flags), ``recall`` (share of flagged
        rows among the lowest), ``expected_overlap`` (by chance) and ``lift`` (overlap / expected).
    """
    flags = np.asarray(flags, dtype=bool)
    if flags.shape != (len(result.values),):
        raise InvalidParameterError(
            _("'flags' must hold one bool per training row ({n_values:,}), but has shape {shape}. Pass "
              "label_issue_flags of the same run.").format(
              n_values=len(result.values), shape=flags.shape))
    low = lowest_rows(result, quantile)
    overlap, flagged, lowest = int((low & flags).sum()), int(flags.sum()), int(low.sum())
    expected = flagged * lowest / max(len(flags), 1)
    return {"rows": len(flags), "flagged": flagged, "lowest": lowest, "overlap": overlap,
            "precision": overlap / lowest if lowest else float("nan"),
            "recall": overlap / flagged if flagged else float("nan"),
            "expected_overlap": expected, "lift": overlap / expected if expected else float("nan")}
