"""Reversible encoding of a mixed-type table into the matrix the neural generators learn.

Numeric columns get **mode-specific normalisation** (Xu et al., "Modeling Tabular Data using
Conditional GAN", NeurIPS 2019): a variational Gaussian mixture (scikit-learn's
``BayesianGaussianMixture``) is fitted to the column, each value is assigned to one of the mixture's
modes by sampling from the modes' posterior probabilities, and is represented as that mode (one-hot)
plus its position inside the mode, ``(x - mean_k) / (4 std_k)`` clipped to ``(-1, 1)``. A numeric
column with few distinct values (at most ``max_discrete`` : counts, hours, weekdays, capped
popularity levels) is one-hot over those values instead, which reproduces them exactly and needs no
mixture (a Gaussian mixture fitted to a handful of repeated values is slow to converge and puts
near-zero-width modes on them). A column with missing values also gets a two-way
"observed / missing" indicator. Categorical columns are one-hot
over their most frequent codes (those seen in at least two rows, at most ``max_categories``) plus
one "other" bucket; decoding "other" draws a code from the training distribution of the rare codes.

The output is described by a list of :class:`Span` objects so that the generator can apply ``tanh``
to value dimensions and a softmax to every one-hot group.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture
from threadpoolctl import threadpool_limits

#: Kinds of span: ``value`` is one tanh dimension, the others are softmax groups.
SPAN_KINDS = ("value", "mode", "discrete", "missing", "category")


@dataclass(frozen=True)
class Span:
    """A run of output dimensions that belong to one column and share one activation."""

    column: str
    kind: str        # one of SPAN_KINDS
    start: int
    dim: int

    @property
    def stop(self) -> int:
        return self.start + self.dim


@dataclass
class NumericInfo:
    """What the transformer learned about one numeric column."""

    column: str
    means: np.ndarray            # (M,) means of the kept modes
    stds: np.ndarray             # (M,) standard deviations of the kept modes
    weights: np.ndarray          # (M,) mixture weights of the kept modes (sum to 1)
    has_missing: bool            # the column had NaN in the training data
    integer: bool                # every observed value was a whole number: round when decoding
    low: float                   # observed minimum (decoded values are clipped to [low, high])
    high: float
    mixture: BayesianGaussianMixture | None = None
    kept: np.ndarray | None = None   # indices of the kept components in ``mixture``
    values: np.ndarray | None = None  # the distinct values of a discrete column (one-hot encoded)

    @property
    def n_modes(self) -> int:
        return len(self.means)

    @property
    def discrete(self) -> bool:
        return self.values is not None


@dataclass
class CategoricalInfo:
    """What the transformer learned about one categorical column."""

    column: str
    codes: np.ndarray            # (K,) codes with their own one-hot slot, most frequent first
    tail_codes: np.ndarray       # codes merged into the "other" slot
    tail_probs: np.ndarray       # their training frequencies (sum to 1)
    frequencies: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K + has_other,) row counts

    @property
    def has_other(self) -> bool:
        return len(self.tail_codes) > 0

    @property
    def n_slots(self) -> int:
        return len(self.codes) + int(self.has_other)


class DataTransformer:
    """Encode numeric and categorical columns for a neural generator, and decode its output.

    Parameters
    ----------
    max_modes : int
        Upper bound on mixture components per numeric column (components with weight below
        ``weight_threshold`` are dropped after fitting).
    weight_threshold : float
        Minimum mixture weight for a mode to be kept.
    max_categories : int
        One-hot slots per categorical column; rarer codes share an "other" slot.
    max_discrete : int
        Numeric columns with at most this many distinct values are one-hot over those values.
    max_fit_rows : int
        The mixtures are fitted on at most this many (randomly chosen) observed values per column.

    Examples
    --------
    >>> t = DataTransformer().fit(frame, numeric=["price"], categorical=["shop"], rng=np.random.default_rng(0))
    >>> matrix, categories = t.transform(frame, rng)      # doctest: +SKIP
    >>> t.inverse_transform(matrix, rng).columns.tolist()  # doctest: +SKIP
    ['price', 'shop']
    """

    def __init__(self, max_modes: int = 10, weight_threshold: float = 0.005, max_categories: int = 100,
                 max_discrete: int = 32, max_fit_rows: int = 5_000):
        self.max_modes = max_modes
        self.weight_threshold = weight_threshold
        self.max_categories = max_categories
        self.max_discrete = max_discrete
        self.max_fit_rows = max_fit_rows

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, numeric: list[str] | tuple[str, ...], categorical: list[str] | tuple[str, ...],
            rng: np.random.Generator) -> DataTransformer:
        """Learn the modes of every numeric column and the vocabulary of every categorical one."""
        self.numeric_ = [self._fit_numeric(c, frame[c].to_numpy(dtype=np.float64, na_value=np.nan), rng)
                         for c in numeric]
        self.categorical_ = [self._fit_categorical(c, frame[c].to_numpy(dtype=np.int64, na_value=0))
                             for c in categorical]
        spans: list[Span] = []
        start = 0
        for info in self.numeric_:
            parts = [("discrete", len(info.values))] if info.discrete else \
                [("value", 1 if info.n_modes else 0), ("mode", info.n_modes)]
            for kind, dim in parts + [("missing", 2 if info.has_missing else 0)]:
                if dim:
                    spans.append(Span(info.column, kind, start, dim))
                    start += dim
        for info in self.categorical_:
            spans.append(Span(info.column, "category", start, info.n_slots))
            start += info.n_slots
        self.spans_ = spans
        self.output_dim_ = start
        return self

    def _fit_numeric(self, column: str, values: np.ndarray, rng: np.random.Generator) -> NumericInfo:
        observed = values[~np.isnan(values)]
        has_missing = bool(len(observed) < len(values))
        if len(observed) == 0:
            return NumericInfo(column, np.zeros(0), np.zeros(0), np.zeros(0), has_missing, False, np.nan, np.nan)
        low, high = float(observed.min()), float(observed.max())
        integer = bool(np.all(np.mod(observed, 1) == 0))
        unique = np.unique(observed)
        if len(unique) <= self.max_discrete:
            return NumericInfo(column, np.zeros(0), np.zeros(0), np.zeros(0), has_missing, integer, low, high,
                               values=unique)
        fit_values = observed if len(observed) <= self.max_fit_rows else \
            rng.choice(observed, self.max_fit_rows, replace=False)
        mixture = BayesianGaussianMixture(
            n_components=min(self.max_modes, len(unique)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001, max_iter=100, n_init=1,
            random_state=int(rng.integers(2**31 - 1)))
        # one BLAS / OpenMP thread: a one-column fit gains nothing from more, and loses a lot when
        # other processes share the cores (k-means initialisation spins its threads)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(fit_values.reshape(-1, 1))
        kept = np.flatnonzero(mixture.weights_ > self.weight_threshold)
        if len(kept) == 0:
            kept = np.array([int(np.argmax(mixture.weights_))])
        means = mixture.means_[kept, 0]
        stds = np.sqrt(mixture.covariances_[kept].reshape(-1))
        spread = max(high - low, 1.0)
        stds = np.maximum(stds, 1e-3 * spread)
        weights = mixture.weights_[kept] / mixture.weights_[kept].sum()
        return NumericInfo(column, means, stds, weights, has_missing, integer, low, high, mixture, kept)

    def _fit_categorical(self, column: str, codes: np.ndarray) -> CategoricalInfo:
        values, counts = np.unique(codes, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        values, counts = values[order], counts[order]
        # A code seen once gets no slot of its own: nothing can be learned from one row, and
        # reproducing it would single that row out. It joins the "other" slot.
        keep = min(self.max_categories, max(1, int((counts >= 2).sum())))
        head, tail = values[:keep], values[keep:]
        tail_counts = counts[keep:]
        tail_probs = tail_counts / tail_counts.sum() if len(tail) else np.zeros(0)
        frequencies = np.concatenate([counts[:keep], [tail_counts.sum()]] if len(tail) else [counts[:keep]])
        return CategoricalInfo(column, head, tail, tail_probs, frequencies.astype(np.float64))

    # --- encoding -----------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Encode ``frame``.

        Returns
        -------
        matrix : float32 array, shape (n, output_dim_)
        categories : int64 array, shape (n, n_categorical)
            The one-hot slot of every row in every categorical column (for the conditional vector).
        """
        n = len(frame)
        matrix = np.zeros((n, self.output_dim_), dtype=np.float32)
        spans = {(s.column, s.kind): s for s in self.spans_}
        for info in self.numeric_:
            values = frame[info.column].to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(values)
            if info.has_missing:
                span = spans[(info.column, "missing")]
                matrix[np.arange(n), span.start + missing.astype(np.int64)] = 1.0
            if info.discrete:
                slot = np.clip(np.searchsorted(info.values, np.nan_to_num(values, nan=info.values[0])),
                               0, len(info.values) - 1)
                nearer_left = (slot > 0) & (np.abs(values - info.values[np.maximum(slot - 1, 0)])
                                            < np.abs(values - info.values[slot]))
                slot = np.where(nearer_left, slot - 1, slot)
                matrix[np.arange(n), spans[(info.column, "discrete")].start + slot] = 1.0
                continue
            if not info.n_modes:
                continue
            mode = self._assign_modes(info, values, missing, rng)
            safe = np.where(missing, info.means[mode], values)
            alpha = np.clip((safe - info.means[mode]) / (4 * info.stds[mode]), -0.99, 0.99)
            matrix[:, spans[(info.column, "value")].start] = np.where(missing, 0.0, alpha)
            matrix[np.arange(n), spans[(info.column, "mode")].start + mode] = 1.0
        categories = np.zeros((n, len(self.categorical_)), dtype=np.int64)
        for j, info in enumerate(self.categorical_):
            slot = self.category_slots(info, frame[info.column].to_numpy(dtype=np.int64, na_value=0))
            categories[:, j] = slot
            matrix[np.arange(n), spans[(info.column, "category")].start + slot] = 1.0
        return matrix, categories

    def _assign_modes(self, info: NumericInfo, values: np.ndarray, missing: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        """Sample each observed value's mode from the posterior; missing rows get the heaviest mode."""
        mode = np.full(len(values), int(np.argmax(info.weights)), dtype=np.int64)
        if info.mixture is None or info.n_modes == 1:
            return np.zeros(len(values), dtype=np.int64) if info.n_modes == 1 else mode
        observed = ~missing
        proba = info.mixture.predict_proba(values[observed].reshape(-1, 1))[:, info.kept] + 1e-9
        cumulative = np.cumsum(proba / proba.sum(axis=1, keepdims=True), axis=1)
        draws = rng.random(len(cumulative))[:, None]
        mode[observed] = np.minimum((cumulative < draws).sum(axis=1), info.n_modes - 1)
        return mode

    @staticmethod
    def category_slots(info: CategoricalInfo, codes: np.ndarray) -> np.ndarray:
        """The one-hot slot of each code (codes outside the kept set go to "other", or to slot 0)."""
        lookup = pd.Index(info.codes)
        slot = lookup.get_indexer(codes)
        fallback = len(info.codes) if info.has_other else 0
        return np.where(slot < 0, fallback, slot).astype(np.int64)

    # --- decoding -----------------------------------------------------------------------------
    def inverse_transform(self, matrix: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Decode generator output (tanh values, one-hot or soft one-hot groups) into a frame.

        Softmax groups are decoded by arg-max; numeric values are rounded when the training column
        held whole numbers only, and clipped to its observed range.
        """
        n = len(matrix)
        spans = {(s.column, s.kind): s for s in self.spans_}
        columns: dict[str, np.ndarray] = {}
        for info in self.numeric_:
            if info.discrete:
                span = spans[(info.column, "discrete")]
                values = info.values[np.argmax(matrix[:, span.start:span.stop], axis=1)].astype(np.float64)
            elif info.n_modes:
                alpha = np.clip(matrix[:, spans[(info.column, "value")].start].astype(np.float64), -1, 1)
                mode_span = spans[(info.column, "mode")]
                mode = np.argmax(matrix[:, mode_span.start:mode_span.stop], axis=1)
                values = alpha * 4 * info.stds[mode] + info.means[mode]
                values = np.clip(values, info.low, info.high)
                if info.integer:
                    values = np.round(values)
            else:
                values = np.full(n, np.nan)
            if info.has_missing:
                span = spans[(info.column, "missing")]
                values = np.where(np.argmax(matrix[:, span.start:span.stop], axis=1) == 1, np.nan, values)
            columns[info.column] = values.astype(np.float32)
        for info in self.categorical_:
            span = spans[(info.column, "category")]
            slot = np.argmax(matrix[:, span.start:span.stop], axis=1)
            codes = info.codes[np.minimum(slot, len(info.codes) - 1)]
            if info.has_other:
                other = slot == len(info.codes)
                if other.any():
                    codes = codes.copy()
                    codes[other] = rng.choice(info.tail_codes, int(other.sum()), p=info.tail_probs)
            columns[info.column] = codes.astype(np.int64)
        return pd.DataFrame(columns, index=pd.RangeIndex(n))
