"""Do the rows a strategy added look like real rows of their class? One check for every strategy that adds rows.

Expansion (noise, masking, mixup, sequence operators), the SMOTE family and the generators all add
training rows; :func:`check_consistency` compares, class by class, the new rows (flagged
``is_synthetic``) with the real rows of the same class in the strategy's output:

* **per feature**: the KS statistic of each numeric feature and the total variation distance of each
  categorical feature's frequencies (0 is identical; :func:`recexp.synthesis.quality.column_shapes`
  reports one minus these), on up to :data:`SHAPE_ROWS` rows of each side. Each behaviour-sequence group enters as its history length (events
  before padding), so crop and mask are seen; a reorder keeps every length and is invisible here.
* **jointly**: a classifier two-sample test, the cross-validated ROC-AUC of a gradient-boosted tree
  classifier telling new rows from real ones (:func:`recexp.synthesis.quality.detection`; 0.5 means
  indistinguishable), and the maximum mean discrepancy (RBF kernel, median-distance bandwidth, on
  standardised features) with its permutation p-value, on a sample of each side.

The verdict is ``"warn"`` when a class's detection AUC reaches :data:`WARN_AUC` ("new cart rows are
distinguishable from real ones: AUC 0.93"), else ``"pass"``; the report's ``detection_auc`` is the
highest class AUC (the least realistic class decides). An MMD p-value below 0.05 says the two samples
differ at all, which with many rows even a harmless perturbation does; the AUC says by how much.

Example
-------
>>> result = get_strategy("smote").apply(train, seed=0)                  # doctest: +SKIP
>>> report = check_consistency(result)
>>> report.verdict, report.detection_auc, report.lines
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recexp.dataset import IS_SYNTHETIC, Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _, format_decimal, format_integer
from recexp.strategies.base import StrategyResult
from recexp.strategies.expansion import history_lengths
from recexp.synthesis.quality import column_shapes, detection, jsonable, one_hot_matrix

#: A class whose new rows a classifier tells from its real rows with at least this ROC-AUC is flagged.
WARN_AUC = 0.75
#: Rows of each side per class the per-feature distances use (a uniform sample beyond: the KS statistic of
#: 20,000 rows is within about 0.01 of the whole class's, and a large training set is never copied whole).
SHAPE_ROWS = 20_000
#: Rows of each side per class the detection classifier sees (a uniform sample beyond).
MAX_ROWS = 1000
#: Rows of each side per class in the MMD test (its kernel matrix grows with the square).
MMD_ROWS = 300
#: Label permutations of the MMD p-value.
PERMUTATIONS = 200
#: Classes with fewer new or real rows than this are not scored (the note says so).
MIN_ROWS = 10
#: The columns of :meth:`ConsistencyReport.table` -> their heading on the page (translated where shown).
CONSISTENCY_COLUMNS = {"class": N_("class"), "new rows": N_("new rows"), "real rows": N_("real rows"),
                       "detection AUC": N_("detection AUC"), "MMD": N_("MMD"), "MMD p-value": N_("MMD p-value"),
                       "worst feature": N_("worst feature"), "its distance": N_("its distance"),
                       "verdict": N_("verdict")}


@dataclass
class ClassConsistency:
    """The check of one class: its new rows against its real rows."""

    name: str
    real_rows: int
    new_rows: int
    detection_auc: float
    mmd: float
    mmd_p_value: float
    features: pd.DataFrame                  # column, type, statistic ("ks" / "tv"), value (0 = identical)

    @property
    def verdict(self) -> str:
        return "warn" if self.detection_auc >= WARN_AUC else "pass"

    @property
    def line(self) -> str:
        """One sentence: pass or warn, with the AUC."""
        return consistency_line(self.name, self.detection_auc)

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.name, "real_rows": self.real_rows, "new_rows": self.new_rows,
                "detection_auc": self.detection_auc, "mmd": self.mmd, "mmd_p_value": self.mmd_p_value,
                "verdict": self.verdict, "line": self.line, "features": self.features.to_dict(orient="records")}


@dataclass
class ConsistencyReport:
    """New rows vs real rows of the same class, for every class the strategy added rows to."""

    classes: list[ClassConsistency]
    strategy: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def detection_auc(self) -> float:
        """The highest detection AUC over the classes scored (``nan`` when none could be scored)."""
        values = [c.detection_auc for c in self.classes if not math.isnan(c.detection_auc)]
        return max(values) if values else math.nan

    @property
    def verdict(self) -> str:
        """``"warn"`` when any class warns, ``"pass"`` otherwise (also when nothing could be scored)."""
        return "warn" if any(c.verdict == "warn" for c in self.classes) else "pass"

    @property
    def lines(self) -> list[str]:
        """The pass / warn sentence of every class scored."""
        return [c.line for c in self.classes]

    def table(self) -> pd.DataFrame:
        """One row per class: rows, detection AUC, MMD, its p-value, the largest feature distance and verdict."""
        return pd.DataFrame([{
            "class": c.name, "new rows": c.new_rows, "real rows": c.real_rows, "detection AUC": c.detection_auc,
            "MMD": c.mmd, "MMD p-value": c.mmd_p_value,
            "worst feature": (c.features.loc[c.features["value"].idxmax(), "column"]
                              if c.features["value"].notna().any() else None),
            "its distance": c.features["value"].max(), "verdict": c.verdict} for c in self.classes])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN as ``None``): what ``consistency.json`` and ``apply --json`` hold."""
        return jsonable({"strategy": self.strategy, "detection_auc": self.detection_auc, "verdict": self.verdict,
                         "warn_auc": WARN_AUC, "detector": "gbm", "lines": self.lines,
                         "classes": [c.to_dict() for c in self.classes], "notes": list(self.notes)})

    def summary(self) -> dict[str, Any]:
        """The headline a run keeps in its info (Compare summarises it per strategy): the verdict, the highest
        AUC, and each class's AUC, from which a page writes the sentences in its reader's language
        (:func:`consistency_line`; ``lines`` keeps them in the worker's language, English, for programs)."""
        return jsonable({"detection_auc": self.detection_auc, "verdict": self.verdict, "lines": self.lines,
                         "classes": [{"class": c.name, "detection_auc": c.detection_auc} for c in self.classes]})


def consistency_line(name: str, detection_auc: float) -> str:
    """The sentence of one class's check, in the current language: warn from :data:`WARN_AUC`, else pass.

    >>> consistency_line("cart", 0.93)
    'new cart rows are distinguishable from real ones: AUC 0.93'
    """
    text = (_("new {name} rows are distinguishable from real ones: AUC {auc}") if detection_auc >= WARN_AUC else
            _("new {name} rows are hard to tell from real ones: AUC {auc}"))
    return text.format(name=name, auc=format_decimal(detection_auc, 2))


def adds_rows(result: StrategyResult) -> bool:
    """Whether the strategy's output holds new rows (``is_synthetic``) to check."""
    return sum(result.report.added.values()) > 0


def check_consistency(result: StrategyResult, *, random_state: int = 0) -> ConsistencyReport | None:
    """Compare a strategy's new rows with the real rows of the same class; ``None`` when it added none.

    Parameters
    ----------
    result : StrategyResult
        What :meth:`recexp.strategies.Strategy.apply` returned.
    random_state : int
        Seeds the samples, the folds, the classifier and the permutations.

    Returns
    -------
    ConsistencyReport or None
    """
    if not adds_rows(result):
        return None
    return consistency_of(result.dataset, random_state=random_state, strategy=result.report.strategy)


def consistency_of(data: Dataset, *, random_state: int = 0, strategy: str = "") -> ConsistencyReport:
    """The check on a training set whose new rows are flagged ``is_synthetic`` (see :func:`check_consistency`).

    Raises
    ------
    InvalidParameterError
        ``data`` has no ``is_synthetic`` column.
    """
    if IS_SYNTHETIC not in data.frame.columns:
        raise InvalidParameterError(_("The consistency check compares rows flagged is_synthetic with real rows, "
                                      "but this training set has no is_synthetic column. Pass a strategy's "
                                      "output."))
    synthetic = data.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    labels = data.y
    rng = np.random.default_rng(random_state)
    classes, notes = [], []
    for code, name in enumerate(data.schema.classes):
        in_class = labels == code
        real_rows, new_rows = np.flatnonzero(in_class & ~synthetic), np.flatnonzero(in_class & synthetic)
        if len(new_rows) == 0:
            continue
        if min(len(real_rows), len(new_rows)) < MIN_ROWS:
            notes.append(_("Class '{name}' has {new} new and {real} real rows: fewer than {min} on a side, so it is "
                           "not scored.").format(name=name, new=format_integer(len(new_rows)),
                                             real=format_integer(len(real_rows)), min=format_integer(MIN_ROWS)))
            continue
        real_pick, new_pick = _pick(real_rows, SHAPE_ROWS, rng), _pick(new_rows, SHAPE_ROWS, rng)
        frame, numeric, categorical = _features(data, np.concatenate([real_pick, new_pick]))
        real, new = frame.iloc[:len(real_pick)], frame.iloc[len(real_pick):]
        features = column_shapes(real, new, numeric, categorical)
        features = pd.DataFrame({"column": features["column"], "type": features["type"],
                                 "statistic": np.where(features["type"] == "numeric", "ks", "tv"),
                                 "value": 1.0 - features["score"]})
        real_s, new_s = _sample(real, MAX_ROWS, rng), _sample(new, MAX_ROWS, rng)
        auc = detection(real_s, new_s, numeric, categorical, detector="gbm", random_state=random_state)["auc"]
        mmd, p_value = mmd_test(_sample(real_s, MMD_ROWS, rng), _sample(new_s, MMD_ROWS, rng), numeric, categorical,
                                random_state=random_state)
        classes.append(ClassConsistency(name, len(real_rows), len(new_rows), auc, mmd, p_value, features))
    if data.schema.sequences:
        notes.append(_("Behaviour sequences enter as each group's history length: a reorder of events keeps every "
                       "length and cannot be seen by this check."))
    return ConsistencyReport(classes, strategy=strategy, notes=notes)


def _features(data: Dataset, rows: np.ndarray) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The scored columns of ``rows``: numeric and categorical features, plus one history length per sequence
    group."""
    schema = data.schema
    numeric, categorical = list(schema.numeric), list(schema.categorical)
    picked = data.frame.iloc[rows].reset_index(drop=True)          # at most 2 x SHAPE_ROWS rows
    frame = picked.loc[:, numeric + categorical]
    lengths = {}
    for group, columns in schema.sequences.items():
        history = picked.loc[:, list(columns)].to_numpy(dtype=np.int64)[:, None, :]
        lengths[f"{group} length"] = history_lengths(history).astype(np.float64)
    if lengths:
        frame = frame.assign(**lengths)
    return frame, numeric + list(lengths), categorical


def _pick(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False))


def _sample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    return frame if len(frame) <= limit else frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]


def mmd_test(real: pd.DataFrame, new: pd.DataFrame, numeric: list[str], categorical: list[str], *,
             permutations: int = PERMUTATIONS, random_state: int = 0) -> tuple[float, float]:
    """Unbiased squared MMD between two samples and its permutation p-value.

    Numeric columns are standardised by the real sample's median and interquartile range (missing
    values as 0 after that), categorical columns one-hot encoded (their frequent values); the kernel is
    an RBF with the median pairwise distance of the pooled sample as bandwidth. The p-value is
    ``(1 + #{permuted MMD >= observed}) / (1 + permutations)``.

    Returns
    -------
    (float, float)
        ``(mmd2, p_value)``; ``(nan, nan)`` with fewer than two rows on a side.
    """
    if len(real) < 2 or len(new) < 2:
        return math.nan, math.nan
    real_x, new_x = one_hot_matrix(real, [real, new], numeric, categorical)
    k = len(numeric)
    if k:
        centre = np.nanmedian(real_x[:, :k], axis=0)
        spread = np.nanpercentile(real_x[:, :k], 75, axis=0) - np.nanpercentile(real_x[:, :k], 25, axis=0)
        spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
        centre = np.nan_to_num(centre)
        real_x[:, :k] = (real_x[:, :k] - centre) / spread
        new_x[:, :k] = (new_x[:, :k] - centre) / spread
    pooled = np.nan_to_num(np.vstack([real_x, new_x]))
    squared = np.square(pooled).sum(axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = distances[np.triu_indices(len(pooled), 1)]
    bandwidth = float(np.median(upper[upper > 0])) if (upper > 0).any() else 1.0
    kernel = np.exp(-distances / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    n, m = len(real_x), len(new_x)

    def statistic(side: np.ndarray) -> float:
        a, b = side, ~side
        within_a = kernel[np.ix_(a, a)].sum() / (n * (n - 1))
        within_b = kernel[np.ix_(b, b)].sum() / (m * (m - 1))
        between = kernel[np.ix_(a, b)].sum() / (n * m)
        return float(within_a + within_b - 2.0 * between)

    side = np.zeros(n + m, dtype=bool)
    side[:n] = True
    observed = statistic(side)
    rng = np.random.default_rng(random_state)
    exceed = sum(statistic(rng.permutation(side)) >= observed for _draw in range(permutations))
    return observed, (1 + exceed) / (1 + permutations)


__all__ = ["CONSISTENCY_COLUMNS", "MAX_ROWS", "MIN_ROWS", "MMD_ROWS", "PERMUTATIONS", "SHAPE_ROWS", "WARN_AUC",
           "ClassConsistency", "ConsistencyReport",
           "adds_rows", "consistency_line", "check_consistency", "consistency_of", "mmd_test"]
