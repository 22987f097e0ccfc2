"""A Gaussian copula per class: the baseline generator (no training loop, seconds to fit).

For each class separately, every modelled column is mapped to a standard normal score through its
own empirical distribution in that class, the scores' correlation matrix is estimated, and new rows
are drawn as correlated normal vectors mapped back through each column's inverse distribution.

* Discrete values (categories, repeated numbers) use the distributional transform: a value whose
  cumulative probability interval is ``[F(x-), F(x))`` gets a uniform draw inside it, which makes
  every column's scores exactly normal. Categorical code 0 ("missing or unseen") is a category.
* A numeric column with missing values gets two dimensions: its observed values (the marginal is
  fitted on those only; a missing cell has no score) and a missing-indicator dimension, so the copula
  learns how missingness goes with the other columns without the missing cells blurring the
  correlations of the values.
* The correlation matrix is computed from pairwise-complete scores, shrunk towards the identity
  with the Ledoit-Wolf intensity (so a class with fewer rows than columns still gets a stable
  matrix) and repaired to be positive definite.
* Going back, a numeric column takes the empirical quantile, interpolated between neighbouring
  observed values when the column has more than ``max_discrete`` distinct values and the exact
  observed value otherwise (whole numbers stay whole); a categorical column takes the category whose
  interval holds the draw; the indicator dimension blanks the value when it says "missing".

Class-conditional sampling is native: the rows of class ``c`` come from class ``c``'s copula.
:meth:`GaussianCopula.conditional_sample` draws the missing cells of a row given its observed cells
and its class from the conditional normal distribution (used for imputation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from sklearn.covariance import ledoit_wolf_shrinkage

from recexp.dataset import LABEL, FeatureSchema
from recexp.params import Int
from recexp.synthesis.base import Generator, Progress

_EPS = 1e-6


@dataclass
class _Marginal:
    """One dimension's empirical distribution within one class."""

    values: np.ndarray          # distinct values in CDF order
    upper: np.ndarray           # F(value): cumulative probability at the end of each value's interval
    interpolate: bool           # continuous numeric: interpolate between observed values when sampling
    observed: np.ndarray        # sorted observed values (continuous columns)

    def to_uniform(self, column: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The distributional transform: a uniform draw inside each value's probability interval
        (NaN where the value is missing)."""
        missing = np.isnan(column) if np.issubdtype(column.dtype, np.floating) else np.zeros(len(column), bool)
        index = self.index_of(np.where(missing, self.values[0], column))
        lower = np.where(index > 0, self.upper[np.maximum(index - 1, 0)], 0.0)
        upper = self.upper[index]
        return np.where(missing, np.nan, lower + rng.random(len(column)) * (upper - lower))

    def index_of(self, column: np.ndarray) -> np.ndarray:
        if self.interpolate or np.issubdtype(self.values.dtype, np.floating):
            position = np.clip(np.searchsorted(self.values, column), 0, len(self.values) - 1)
            left = np.maximum(position - 1, 0)
            closer_left = np.abs(column - self.values[left]) < np.abs(column - self.values[position])
            return np.where(closer_left, left, position)
        lookup = pd.Index(self.values).get_indexer(column)
        widest = int(np.argmax(np.diff(np.concatenate([[0.0], self.upper]))))
        return np.where(lookup < 0, widest, lookup)

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        if self.interpolate and len(self.observed) >= 2:
            return np.interp(np.clip(u, 0, 1) * (len(self.observed) - 1), np.arange(len(self.observed)),
                             self.observed)
        return self.values[np.minimum(np.searchsorted(self.upper, u, side="right"), len(self.values) - 1)]


def _fit_marginal(column: np.ndarray, kind: str, max_discrete: int) -> _Marginal:
    if kind == "numeric":
        observed = np.sort(column[~np.isnan(column)])
        if len(observed) == 0:                       # never observed in this class: a placeholder value
            observed = np.zeros(1)
        values, counts = np.unique(observed, return_counts=True)
        return _Marginal(values, np.cumsum(counts) / len(observed), len(values) > max_discrete, observed)
    values, counts = np.unique(column, return_counts=True)
    if kind == "categorical":
        order = np.lexsort((-counts, values != 0))   # code 0 (missing or unseen) first, then by frequency
        values, counts = values[order], counts[order]
    return _Marginal(values, np.cumsum(counts) / len(column), False, np.zeros(0))


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """A positive-definite correlation matrix close to ``matrix`` (eigenvalues clipped, unit diagonal)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    repaired = (vectors * np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(repaired))
    repaired = repaired / scale[:, None] / scale[None, :]
    np.fill_diagonal(repaired, 1.0)
    return repaired


class GaussianCopula(Generator):
    """Gaussian copula fitted separately for every class (baseline generator).

    Parameters
    ----------
    max_discrete : int
        Numeric columns with at most this many distinct values in a class are sampled as those exact
        values; columns with more are interpolated between observed values.
    ids : {"new", "hash"}
        User and item ids of generated rows (:meth:`~recexp.synthesis.base.Generator.synthetic_ids`).
    random_state : int or None
        Seed of every random draw.

    Examples
    --------
    >>> copula = GaussianCopula(random_state=0).fit(train.frame, train.schema)     # doctest: +SKIP
    >>> copula.sample(conditions={"buy": 1000})                                       # doctest: +SKIP
    """

    name = "gaussian_copula"
    description = "Gaussian copula per class (fast baseline, no training loop)"
    params = {
        **Generator.params,
        "max_discrete": Int(1, None, help="Numeric columns with at most this many distinct values keep "
                                          "exactly those values."),
    }

    def __init__(self, max_discrete=32, ids="new", random_state=None):
        self.max_discrete = max_discrete
        self.ids = ids
        self.random_state = random_state

    # --- fitting ------------------------------------------------------------------------------
    def _fit(self, frame: pd.DataFrame, schema: FeatureSchema, progress: Progress | None) -> None:
        # one dimension per column, plus a missing indicator for each numeric column that has NaN
        dims = [(c, "numeric") for c in schema.numeric] + [(c, "categorical") for c in schema.categorical]
        dims += [(c, "missing") for c in schema.numeric if frame[c].isna().any()]
        self.dims_ = dims
        labels = frame[LABEL].to_numpy(np.int64)
        self.marginals_: dict[int, list[_Marginal]] = {}
        self.correlations_: dict[int, np.ndarray] = {}
        for code in np.unique(labels):
            rows = frame.loc[labels == code]
            marginals = [_fit_marginal(self._values(rows, c, kind), kind, self.max_discrete) for c, kind in dims]
            self.marginals_[int(code)] = marginals
            self.correlations_[int(code)] = self._correlation(self._normal_scores(rows, marginals, self.fit_rng_))
        if progress is not None:
            progress(1, {"classes": float(len(self.marginals_))})

    @staticmethod
    def _values(frame: pd.DataFrame, column: str, kind: str) -> np.ndarray:
        if kind == "categorical":
            return frame[column].to_numpy(np.int64, na_value=0)
        if kind == "missing":
            return frame[column].isna().to_numpy().astype(np.int64)
        return frame[column].to_numpy(np.float64, na_value=np.nan)

    def _normal_scores(self, frame: pd.DataFrame, marginals: list[_Marginal], rng: np.random.Generator) -> np.ndarray:
        """Normal scores of every dimension; NaN where a numeric value is missing."""
        columns = [m.to_uniform(self._values(frame, c, kind), rng) for m, (c, kind) in zip(marginals, self.dims_)]
        u = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
        return ndtri(np.clip(u, _EPS, 1 - _EPS))

    @staticmethod
    def _correlation(scores: np.ndarray) -> np.ndarray:
        d = scores.shape[1]
        if d == 0:
            return np.zeros((0, 0))
        if len(scores) < 3:
            return np.eye(d)
        with np.errstate(all="ignore"):
            pairwise = pd.DataFrame(scores).corr(min_periods=3).to_numpy()
        pairwise = np.nan_to_num(pairwise, nan=0.0)
        np.fill_diagonal(pairwise, 1.0)
        filled = np.nan_to_num(scores - np.nanmean(scores, axis=0), nan=0.0)
        shrinkage = float(ledoit_wolf_shrinkage(filled)) if d > 1 else 0.0
        return _nearest_correlation((1 - shrinkage) * pairwise + shrinkage * np.eye(d))

    # --- sampling -----------------------------------------------------------------------------
    def _decode(self, code: int, z: np.ndarray) -> pd.DataFrame:
        u = ndtr(z)
        marginals = self.marginals_[code]
        out: dict[str, np.ndarray] = {}
        for j, (c, kind) in enumerate(self.dims_):
            values = marginals[j].from_uniform(u[:, j])
            if kind == "missing":
                out[c] = np.where(values == 1, np.nan, out[c])
            else:
                out[c] = values
        return pd.DataFrame(out)

    def _sample(self, labels: np.ndarray) -> pd.DataFrame:
        parts = []
        for code in np.unique(labels):
            rows = np.flatnonzero(labels == code)
            correlation = self.correlations_[int(code)]
            z = self.rng_.multivariate_normal(np.zeros(len(correlation)), correlation, size=len(rows),
                                              method="eigh") if len(correlation) else np.zeros((len(rows), 0))
            part = self._decode(int(code), z)
            part.index = rows
            parts.append(part)
        return pd.concat(parts).sort_index()

    def conditional_sample(self, frame: pd.DataFrame, missing: pd.DataFrame) -> pd.DataFrame:
        """Draw the cells flagged in ``missing`` given the row's other cells and its class.

        The normal scores of the row's observed cells (and its missing indicators) condition a
        multivariate normal draw of the flagged cells' scores, mapped back through the class's
        marginals. A drawn numeric cell is never missing and a drawn categorical cell never code 0.

        Parameters
        ----------
        frame : DataFrame
            Rows with the modelled columns and ``label``.
        missing : DataFrame of bool
            True where a value must be drawn (over the numeric and categorical columns).

        Returns
        -------
        DataFrame
            ``frame``'s numeric and categorical columns with the flagged cells replaced.
        """
        schema = self.schema_
        columns = list(schema.numeric) + list(schema.categorical)
        out = frame[columns].copy()
        labels = frame[LABEL].to_numpy(np.int64)
        value_dims = [j for j, (_, kind) in enumerate(self.dims_) if kind != "missing"]
        flags = np.zeros((len(frame), len(self.dims_)), dtype=bool)
        flags[:, value_dims] = missing[[self.dims_[j][0] for j in value_dims]].to_numpy(dtype=bool)
        for code in np.unique(labels):
            marginals, correlation = self.marginals_[int(code)], self.correlations_[int(code)]
            class_rows = np.flatnonzero(labels == code)
            scores = self._normal_scores(frame.iloc[class_rows], marginals, self.rng_)
            hidden_all = flags[class_rows] | np.isnan(scores)          # unknown: flagged or not observed
            patterns, index = np.unique(hidden_all, axis=0, return_inverse=True)
            for p, pattern in enumerate(patterns):
                local = np.flatnonzero(index.reshape(-1) == p)
                if not flags[class_rows[local]].any():
                    continue
                hidden, seen = np.flatnonzero(pattern), np.flatnonzero(~pattern)
                s_hh = correlation[np.ix_(hidden, hidden)]
                if len(seen):
                    s_hs = correlation[np.ix_(hidden, seen)]
                    weights = np.linalg.solve(correlation[np.ix_(seen, seen)], s_hs.T).T
                    mean = scores[np.ix_(local, seen)] @ weights.T
                    cov = s_hh - weights @ s_hs.T
                else:
                    mean, cov = np.zeros((len(local), len(hidden))), s_hh
                cov = (cov + cov.T) / 2 + np.eye(len(hidden)) * 1e-9
                z = mean + self.rng_.multivariate_normal(np.zeros(len(hidden)), cov, size=len(local), method="eigh")
                u = ndtr(z)
                for k, j in enumerate(hidden):
                    column, kind = self.dims_[j]
                    rows = class_rows[local][flags[class_rows[local], j]]
                    if kind == "missing" or len(rows) == 0:
                        continue
                    m = marginals[j]
                    picked = u[flags[class_rows[local], j], k]
                    if kind == "categorical" and m.values[0] == 0 and len(m.values) > 1:
                        low = m.upper[0]                     # skip the code-0 interval
                        picked = low + picked * (1 - low)
                    values = m.from_uniform(picked)
                    position = columns.index(column)
                    out.iloc[rows, position] = values.astype(out.dtypes.iloc[position])
        return out
