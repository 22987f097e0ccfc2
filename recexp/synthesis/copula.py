"""A Gaussian copula per class: the baseline generator (no training loop, seconds to fit).

For each class separately, every modelled column is mapped to a standard normal score through its
own empirical distribution in that class, the scores' correlation matrix is estimated (Ledoit-Wolf
shrinkage, so a class with fewer rows than columns still gets a valid matrix), and new rows are
drawn as correlated normal vectors mapped back through each column's inverse distribution.

* Discrete values (categories, repeated numbers, missing values) use the distributional transform:
  a value whose cumulative probability interval is ``[F(x-), F(x))`` gets a uniform draw inside it,
  which makes every column's scores exactly normal. A missing numeric value and categorical code 0
  are values like any other, so the copula also learns how missingness goes with other columns.
* Going back, a numeric column takes the empirical quantile, interpolated between neighbouring
  observed values when the column has more than ``max_discrete`` distinct values and the exact
  observed value otherwise (whole numbers stay whole); a categorical column takes the category whose
  interval holds the draw.

Class-conditional sampling is native: the rows of class ``c`` come from class ``c``'s copula.
:meth:`GaussianCopula.conditional_sample` draws the missing cells of a row given its observed cells
and its class from the conditional normal distribution (used for imputation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from sklearn.covariance import LedoitWolf

from recexp.dataset import LABEL, FeatureSchema
from recexp.params import Int
from recexp.synthesis.base import Generator, Progress

_EPS = 1e-6


@dataclass
class _Marginal:
    """One column's empirical distribution within one class."""

    values: np.ndarray          # distinct values in CDF order (NaN first for numeric columns that have it)
    upper: np.ndarray           # F(value): cumulative probability at the end of each value's interval
    interpolate: bool           # continuous numeric: interpolate between observed values when sampling
    observed: np.ndarray        # sorted observed values (continuous columns)
    missing_share: float        # share of the "missing" value (NaN, or categorical code 0)

    def to_uniform(self, column: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The distributional transform: a uniform draw inside each value's probability interval."""
        index = self.index_of(column)
        lower = np.where(index > 0, self.upper[np.maximum(index - 1, 0)], 0.0)
        upper = self.upper[index]
        return lower + rng.random(len(column)) * (upper - lower)

    def index_of(self, column: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.values.dtype, np.floating):
            nan_first = len(self.values) and np.isnan(self.values[0])
            finite = self.values[1:] if nan_first else self.values
            position = np.searchsorted(finite, column)
            position = np.clip(position, 0, max(len(finite) - 1, 0))
            left = np.maximum(position - 1, 0)
            closer_left = np.abs(column - finite[left]) < np.abs(column - finite[position]) if len(finite) \
                else np.zeros(len(column), dtype=bool)
            position = np.where(closer_left, left, position) + int(bool(nan_first))
            return np.where(np.isnan(column), 0, position) if nan_first else position
        lookup = pd.Index(self.values).get_indexer(column)
        return np.where(lookup < 0, int(np.argmax(np.diff(np.concatenate([[0.0], self.upper])))), lookup)

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        index = np.minimum(np.searchsorted(self.upper, u, side="right"), len(self.values) - 1)
        values = self.values[index]
        if not self.interpolate or len(self.observed) < 2:
            return values
        # continuous part: interpolate the observed quantile function at the draw's position in it
        observed = ~np.isnan(values) if np.issubdtype(values.dtype, np.floating) else np.ones(len(u), bool)
        share = self.missing_share
        within = np.clip((u[observed] - share) / max(1.0 - share, _EPS), 0.0, 1.0)
        positions = within * (len(self.observed) - 1)
        out = values.astype(np.float64)
        out[observed] = np.interp(positions, np.arange(len(self.observed)), self.observed)
        return out


def _fit_marginal(column: np.ndarray, categorical: bool, max_discrete: int) -> _Marginal:
    if categorical:
        values, counts = np.unique(column, return_counts=True)
        order = np.lexsort((-counts, values != 0))         # code 0 (missing) first, then by frequency
        values, counts = values[order], counts[order]
        share = counts[values == 0].sum() / len(column)
        return _Marginal(values, np.cumsum(counts) / len(column), False, np.zeros(0), float(share))
    missing = np.isnan(column)
    observed = np.sort(column[~missing])
    values, counts = np.unique(observed, return_counts=True)
    if missing.any():
        values = np.concatenate([[np.nan], values])
        counts = np.concatenate([[missing.sum()], counts])
    upper = np.cumsum(counts) / len(column)
    interpolate = len(np.unique(observed)) > max_discrete
    return _Marginal(values, upper, interpolate, observed, float(missing.mean()))


class GaussianCopula(Generator):
    """Gaussian copula fitted separately for every class (baseline generator).

    Parameters
    ----------
    max_discrete : int
        Numeric columns with at most this many distinct values in a class are sampled as those exact
        values; columns with more are interpolated between observed values.
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

    def __init__(self, max_discrete=32, random_state=None):
        self.max_discrete = max_discrete
        self.random_state = random_state

    def _fit(self, frame: pd.DataFrame, schema: FeatureSchema, progress: Progress | None) -> None:
        self.columns_ = list(schema.numeric) + list(schema.categorical)
        self.is_categorical_ = np.array([False] * len(schema.numeric) + [True] * len(schema.categorical))
        labels = frame[LABEL].to_numpy(np.int64)
        self.marginals_: dict[int, list[_Marginal]] = {}
        self.correlations_: dict[int, np.ndarray] = {}
        for code in np.unique(labels):
            rows = frame.loc[labels == code, self.columns_]
            marginals = [_fit_marginal(self._column(rows, c, cat), cat, self.max_discrete)
                         for c, cat in zip(self.columns_, self.is_categorical_)]
            scores = self._normal_scores(rows, marginals, self.fit_rng_)
            self.marginals_[int(code)] = marginals
            self.correlations_[int(code)] = self._correlation(scores)
        if progress is not None:
            progress(1, {"classes": float(len(self.marginals_))})

    @staticmethod
    def _column(frame: pd.DataFrame, column: str, categorical: bool) -> np.ndarray:
        return frame[column].to_numpy(np.int64, na_value=0) if categorical \
            else frame[column].to_numpy(np.float64, na_value=np.nan)

    def _normal_scores(self, frame: pd.DataFrame, marginals: list[_Marginal], rng: np.random.Generator) -> np.ndarray:
        columns = [m.to_uniform(self._column(frame, c, cat), rng)
                   for m, c, cat in zip(marginals, self.columns_, self.is_categorical_)]
        u = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
        return ndtri(np.clip(u, _EPS, 1 - _EPS))

    @staticmethod
    def _correlation(scores: np.ndarray) -> np.ndarray:
        d = scores.shape[1]
        if d == 0:
            return np.zeros((0, 0))
        if len(scores) < 2:
            return np.eye(d)
        covariance = LedoitWolf().fit(scores).covariance_
        scale = np.sqrt(np.clip(np.diag(covariance), _EPS, None))
        correlation = covariance / scale[:, None] / scale[None, :]
        np.fill_diagonal(correlation, 1.0)
        return correlation

    def _decode(self, code: int, z: np.ndarray) -> pd.DataFrame:
        u = ndtr(z)
        marginals = self.marginals_[code]
        out = {}
        for j, (c, cat) in enumerate(zip(self.columns_, self.is_categorical_)):
            out[c] = marginals[j].from_uniform(u[:, j])
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

        Parameters
        ----------
        frame : DataFrame
            Rows with the modelled columns and ``label``.
        missing : DataFrame of bool
            Same shape over the modelled columns: True where a value must be drawn.

        Returns
        -------
        DataFrame
            ``frame``'s modelled columns with the flagged cells replaced. A drawn numeric cell is
            never missing and a drawn categorical cell never code 0: the draw is taken from the
            column's observed part of its distribution.
        """
        out = frame[self.columns_].copy()
        labels = frame[LABEL].to_numpy(np.int64)
        flags = missing[self.columns_].to_numpy(dtype=bool)
        patterns, pattern_index = np.unique(flags, axis=0, return_inverse=True)
        pattern_index = pattern_index.reshape(-1)
        for code in np.unique(labels):
            marginals, correlation = self.marginals_[int(code)], self.correlations_[int(code)]
            in_class = labels == code
            scores = self._normal_scores(frame.loc[in_class, self.columns_], marginals, self.rng_)
            class_rows = np.flatnonzero(in_class)
            for p, pattern in enumerate(patterns):
                if not pattern.any():
                    continue
                local = np.flatnonzero(pattern_index[class_rows] == p)
                if len(local) == 0:
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
                    m = marginals[j]
                    # restrict the draw to the observed part of the distribution (skip NaN / code 0)
                    low = m.upper[0] if (m.missing_share > 0 and self._missing_first(m)) else 0.0
                    values = m.from_uniform(low + u[:, k] * (1 - low))
                    out.iloc[class_rows[local], j] = values.astype(out.dtypes.iloc[j])
        return out

    @staticmethod
    def _missing_first(marginal: _Marginal) -> bool:
        first = marginal.values[0]
        return bool(np.isnan(first)) if np.issubdtype(marginal.values.dtype, np.floating) else bool(first == 0)
