"""How good is a synthetic table? Fidelity, detectability, usefulness and privacy, per class too.

Every score compares a synthetic frame with the real **training** split it imitates, over the
columns a generator models: the schema's numeric and categorical features and the label
(behaviour-sequence columns are not modelled, so they are not scored). The definitions follow
SDMetrics (https://docs.sdv.dev/sdmetrics), re-implemented here so the library does not depend on it:

* **Column shapes** (SDMetrics ``KSComplement`` / ``TVComplement``): ``1 - KS statistic`` of the two
  samples' observed values for a numeric column, ``1 - total variation distance`` of the category
  frequencies (missing counted as a category) for a categorical one. 1 is identical.
* **Column pair trends** (``CorrelationSimilarity`` / ``ContingencySimilarity``): for two numeric
  columns ``1 - |r_real - r_synthetic| / 2`` with Pearson's ``r`` (missing values read as 0, a constant
  column gives no score); for any pair with a categorical column ``1 - total variation distance`` of
  the two-way contingency tables, numeric columns cut into 10 bins at the real data's histogram
  edges (outer edges open). The association shown in the heat map is Pearson's ``r`` for numeric
  pairs and Cramér's V of the same contingency table otherwise. A table with more than
  :data:`MAX_PAIRS` column pairs has that many drawn at random (the report's notes say so).
* **Quality score** (SDMetrics ``QualityReport``): the mean of the average column-shape score and the
  average pair-trend score.
* **Detection** (``LogisticDetection``): 3-fold stratified cross-validation of a classifier telling
  real from synthetic rows (missing values mean-imputed, ``RobustScaler``, logistic regression on
  one-hot categoricals, scikit-learn's default solver settings); ``auc`` is the mean ROC-AUC (0.5 is
  best) and ``score`` SDMetrics' ``1 - mean(2 * max(auc, 0.5) - 1)``. ``detector="gbm"`` swaps in a
  gradient-boosted tree classifier, which also sees non-linear differences.
* **Machine-learning efficacy**: a gradient-boosted tree classifier trained on the real rows, on the
  synthetic rows alone (train-synthetic-test-real) and on both, each scored on real rows that none of
  them trained on (``real_test``; without it 30% of the real rows are held out, which the generator
  did see).
* **Privacy** (the distance of SDMetrics ``DCRBaselineProtection``): the distance between two rows is
  the mean over columns of ``min(|a - b| / range, 1)`` for numeric columns (range of the real column;
  both missing 0, one missing 1) and ``0/1`` mismatch for categorical ones. ``dcr_median`` is the
  median distance from a synthetic row to its closest real training row; ``baseline_median`` the same
  for real rows the generator did not train on (``real_test``), or for real training rows to their
  closest *other* training row; ``dcr_ratio`` their quotient (below 1: synthetic rows sit closer to
  training rows than new real rows do, a sign of memorisation). ``exact_copies`` counts synthetic rows
  equal to a real training row in every scored column, over all rows.
* **Membership inference** (a distance attack, as in Chen et al., "GAN-Leaks", CCS 2020): an attacker
  who holds real rows calls one a training row the closer it lies to a synthetic row (the DCR
  distance). ``membership_inference_auc`` is the ROC-AUC of that call on equally many real training
  rows and held-out real rows (``real_test``): 0.5 means the synthetic rows tell nothing about who
  was in the training data, 1 that they give every training row away. Without ``real_test`` it is
  missing. Held-out rows from another period (a temporal split) can sit farther from everything than
  training rows do, which lifts the AUC above 0.5 without a leak.

Each score is also computed on the minority class alone (the class with the fewest real rows, or
the one named), where memorisation risk is highest.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler
from threadpoolctl import threadpool_limits

from recexp.dataset import IS_SYNTHETIC, LABEL, FeatureSchema
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.metrics import classification_metrics

#: Detection classifiers ``detection`` accepts.
DETECTORS = {"logistic": "Logistic regression (SDMetrics LogisticDetection)",
             "gbm": "Gradient-boosted trees (sees non-linear differences)"}
PAIR_BINS = 10
MAX_PAIRS = 500            # column pairs scored for pair trends; more are sampled (the count is O(columns^2))
_MAX_ONE_HOT = 50          # categories per column one-hot encoded for the detector


# --- column shapes ----------------------------------------------------------------------------
def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``1 - KS statistic`` of the observed (non-missing) values; ``nan`` when either side has none."""
    real = np.asarray(real, dtype=np.float64)
    synthetic = np.asarray(synthetic, dtype=np.float64)
    real, synthetic = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if len(real) == 0 or len(synthetic) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # exact p-value not computable: irrelevant here
        return float(1.0 - ks_2samp(real, synthetic).statistic)


def _frequencies(values: np.ndarray) -> pd.Series:
    return pd.Series(values).value_counts(normalize=True, dropna=False)


def tv_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``1 - total variation distance`` of the category frequencies (missing is a category)."""
    if len(real) == 0 or len(synthetic) == 0:
        return math.nan
    p, q = _frequencies(np.asarray(real)), _frequencies(np.asarray(synthetic))
    p, q = p.align(q, fill_value=0.0)
    return float(1.0 - 0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str],
                  categorical: list[str]) -> pd.DataFrame:
    """One row per column: ``column``, ``type``, ``metric`` (KSComplement / TVComplement), ``score``."""
    rows = [{"column": c, "type": "numeric", "metric": "KSComplement",
             "score": ks_complement(real[c].to_numpy(np.float64, na_value=np.nan),
                                    synthetic[c].to_numpy(np.float64, na_value=np.nan))} for c in numeric]
    rows += [{"column": c, "type": "categorical", "metric": "TVComplement",
              "score": tv_complement(real[c].to_numpy(), synthetic[c].to_numpy())} for c in categorical]
    return pd.DataFrame(rows, columns=["column", "type", "metric", "score"])


# --- column pair trends -----------------------------------------------------------------------
def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _bin_edges(real_values: np.ndarray) -> np.ndarray:
    observed = real_values[~np.isnan(real_values)]
    if len(observed) == 0:
        return np.array([-np.inf, np.inf])
    edges = np.histogram_bin_edges(observed, bins=PAIR_BINS).astype(np.float64)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def _discretise(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each value; missing values get their own bin (-1)."""
    values = np.asarray(values, dtype=np.float64)
    bins = np.digitize(values, edges[1:-1])
    return np.where(np.isnan(values), -1, bins)


def _joint_codes(a_real: np.ndarray, b_real: np.ndarray, a_syn: np.ndarray, b_syn: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Map two discrete columns of both tables onto dense codes ``0..ka-1`` / ``0..kb-1``."""
    a_all, a_codes = np.unique(np.concatenate([a_real, a_syn]), return_inverse=True)
    b_all, b_codes = np.unique(np.concatenate([b_real, b_syn]), return_inverse=True)
    n = len(a_real)
    return (np.stack([a_codes[:n], b_codes[:n]]), np.stack([a_codes[n:], b_codes[n:]]), len(a_all), len(b_all))


def _contingency(codes: np.ndarray, ka: int, kb: int) -> np.ndarray:
    table = np.bincount(codes[0] * kb + codes[1], minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    return table / max(table.sum(), 1.0)


def _cramers_v(table: np.ndarray) -> float:
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return math.nan
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True)
    chi2 = float(((table - expected) ** 2 / expected).sum())      # table holds proportions: chi2 / n
    return float(math.sqrt(chi2 / (min(table.shape) - 1)))


def _discrete_view(real: pd.DataFrame, synthetic: pd.DataFrame, column: str, is_numeric: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    if is_numeric:
        r = real[column].to_numpy(np.float64, na_value=np.nan)
        s = synthetic[column].to_numpy(np.float64, na_value=np.nan)
        edges = _bin_edges(r)
        return _discretise(r, edges), _discretise(s, edges)
    r = real[column].to_numpy(np.float64, na_value=np.nan)
    s = synthetic[column].to_numpy(np.float64, na_value=np.nan)
    return np.nan_to_num(r, nan=-1.0), np.nan_to_num(s, nan=-1.0)


def column_pairs(n_columns: int, max_pairs: int = MAX_PAIRS, random_state: int = 0) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of ``n_columns`` columns: all of them, or ``max_pairs`` drawn at
    random without repetition (sorted) when there are more, so pair trends stay linear in the pairs
    scored rather than quadratic in the columns."""
    total = n_columns * (n_columns - 1) // 2
    if total <= max_pairs:
        return [(i, j) for i in range(n_columns) for j in range(i + 1, n_columns)]
    rng = np.random.default_rng(random_state)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < max_pairs:
        i, j = rng.integers(n_columns, size=2)
        if i != j:
            chosen.add((int(min(i, j)), int(max(i, j))))
    return sorted(chosen)


def pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str],
                categorical: list[str], *, max_pairs: int = MAX_PAIRS, random_state: int = 0) -> pd.DataFrame:
    """One row per column pair: metric, real and synthetic association, and the similarity score.

    With more than ``max_pairs`` pairs, ``max_pairs`` of them drawn at random (:func:`column_pairs`).
    """
    columns = list(numeric) + list(categorical)
    kinds = {c: True for c in numeric} | {c: False for c in categorical}
    views: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for i, j in column_pairs(len(columns), max_pairs, random_state):
        a, b = columns[i], columns[j]
        if kinds[a] and kinds[b]:
            r_real = _pearson(real[a].to_numpy(np.float64, na_value=np.nan),
                              real[b].to_numpy(np.float64, na_value=np.nan))
            r_syn = _pearson(synthetic[a].to_numpy(np.float64, na_value=np.nan),
                             synthetic[b].to_numpy(np.float64, na_value=np.nan))
            score = 1.0 - abs(r_real - r_syn) / 2 if not (math.isnan(r_real) or math.isnan(r_syn)) else math.nan
            rows.append({"column_1": a, "column_2": b, "metric": "CorrelationSimilarity",
                         "real_association": r_real, "synthetic_association": r_syn, "score": score})
            continue
        if len(real) == 0 or len(synthetic) == 0:
            continue
        for column in (a, b):       # discretised once per column, for the pairs that use it
            if column not in views:
                views[column] = _discrete_view(real, synthetic, column, kinds[column])
        real_codes, syn_codes, ka, kb = _joint_codes(views[a][0], views[b][0], views[a][1], views[b][1])
        p, q = _contingency(real_codes, ka, kb), _contingency(syn_codes, ka, kb)
        rows.append({"column_1": a, "column_2": b, "metric": "ContingencySimilarity",
                     "real_association": _cramers_v(p), "synthetic_association": _cramers_v(q),
                     "score": float(1.0 - 0.5 * np.abs(p - q).sum())})
    return pd.DataFrame(rows, columns=["column_1", "column_2", "metric", "real_association",
                                       "synthetic_association", "score"])


def _mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def quality_score(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str]) -> float:
    """SDMetrics' overall quality: mean of the average column-shape and average pair-trend scores."""
    shapes = _mean(column_shapes(real, synthetic, numeric, categorical)["score"])
    pairs = _mean(pair_trends(real, synthetic, numeric, categorical)["score"])
    parts = [v for v in (shapes, pairs) if not math.isnan(v)]
    return float(np.mean(parts)) if parts else math.nan


# --- detection --------------------------------------------------------------------------------
def one_hot_matrix(reference: pd.DataFrame, frames: list[pd.DataFrame], numeric: list[str],
                    categorical: list[str]) -> list[np.ndarray]:
    """Numeric columns as floats (NaN kept) plus one-hot of each categorical's frequent values."""
    levels = {c: reference[c].value_counts(dropna=False).index[:_MAX_ONE_HOT].to_numpy() for c in categorical}
    out = []
    for frame in frames:
        parts = [frame[list(numeric)].to_numpy(np.float64, na_value=np.nan)] if numeric else []
        for c in categorical:
            values = frame[c].to_numpy()
            parts.append((values[:, None] == levels[c][None, :]).astype(np.float64))
        out.append(np.hstack(parts) if parts else np.zeros((len(frame), 0)))
    return out


def _ordinal_matrix(reference: pd.DataFrame, frames: list[pd.DataFrame], numeric: list[str],
                    categorical: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Numeric columns plus each categorical as its frequency rank in ``reference`` (rare -> one code)."""
    ranks = {c: pd.Index(reference[c].value_counts().index[:254]) for c in categorical}
    out = []
    for frame in frames:
        parts = [frame[list(numeric)].to_numpy(np.float64, na_value=np.nan)] if numeric else []
        for c in categorical:
            code = ranks[c].get_indexer(frame[c].to_numpy())
            parts.append(np.where(code < 0, 254, code).astype(np.float64)[:, None])
        out.append(np.hstack(parts) if parts else np.zeros((len(frame), 0)))
    mask = np.array([False] * len(numeric) + [True] * len(categorical), dtype=bool)
    return out, mask


def detection(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str], *,
              detector: str = "logistic", random_state: int = 0) -> dict[str, float]:
    """Cross-validated ROC-AUC of a classifier telling real rows from synthetic ones.

    Returns
    -------
    dict
        ``auc`` (mean over 3 folds; 0.5 means indistinguishable) and ``score``
        (SDMetrics' ``1 - mean(2 * max(auc, 0.5) - 1)``; 1 is best). ``nan`` when either side has
        fewer than 3 rows.
    """
    if detector not in DETECTORS:
        raise InvalidParameterError(
            _("detector must be one of {detectors}, but got {detector!r}. Pick one of those.").format(
              detectors=', '.join(DETECTORS), detector=detector))
    if len(real) < 3 or len(synthetic) < 3:
        return {"auc": math.nan, "score": math.nan}
    if detector == "logistic":
        real_x, syn_x = one_hot_matrix(real, [real, synthetic], numeric, categorical)
        mask = None
    else:
        (real_x, syn_x), mask = _ordinal_matrix(real, [real, synthetic], numeric, categorical)
    x = np.vstack([real_x, syn_x])
    y = np.concatenate([np.ones(len(real_x)), np.zeros(len(syn_x))])
    aucs, scores = [], []
    for train, test in StratifiedKFold(3, shuffle=True, random_state=random_state).split(x, y):
        if detector == "logistic":
            model = Pipeline([("impute", SimpleImputer()), ("scale", RobustScaler()),
                              ("classify", LogisticRegression())])
        else:
            model = _boosted_trees(mask, random_state)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train], y[train])
            auc = float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
        aucs.append(auc)
        scores.append(max(auc, 0.5) * 2 - 1)
    return {"auc": float(np.mean(aucs)), "score": float(1 - np.mean(scores))}


# --- machine-learning efficacy ----------------------------------------------------------------
def _boosted_trees(categorical_mask: np.ndarray, random_state: int) -> HistGradientBoostingClassifier:
    """The report's tree model. Report models run with one BLAS / OpenMP thread: on report-sized
    data that is as fast as two, and many times faster when other processes share the cores."""
    return HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=random_state,
                                          categorical_features=categorical_mask if categorical_mask.any() else None)


def _fit_score(train: pd.DataFrame, test: pd.DataFrame, reference: pd.DataFrame, numeric: list[str],
               categorical: list[str], n_classes: int, minority: int | None, random_state: int) -> dict[str, float]:
    (train_x, test_x), mask = _ordinal_matrix(reference, [train, test], numeric, categorical)
    train_y = train[LABEL].to_numpy(np.int64)
    test_y = test[LABEL].to_numpy(np.int64)
    model = _boosted_trees(mask, random_state)
    with threadpool_limits(limits=1):
        model.fit(train_x, train_y)
        proba = np.zeros((len(test_x), n_classes))
        proba[:, model.classes_] = model.predict_proba(test_x)
    scores = classification_metrics(test_y, proba)
    if minority is not None:
        predicted = proba.argmax(axis=1)
        scores["minority_f1"] = float(f1_score(test_y == minority, predicted == minority, zero_division=0))
        scores["minority_recall"] = float(recall_score(test_y == minority, predicted == minority, zero_division=0))
    return scores


def efficacy(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str],
             n_classes: int, *, real_test: pd.DataFrame | None = None, minority: int | None = None,
             random_state: int = 0) -> dict[str, Any]:
    """Train on real, on synthetic and on both; score each on real test rows.

    Returns
    -------
    dict
        ``real``, ``synthetic`` (``None`` when the synthetic rows lack a class the real rows have)
        and ``augmented``: each a dict of :func:`recexp.metrics.classification_metrics` plus
        ``minority_f1`` / ``minority_recall``; ``synthetic_to_real_f1`` is the macro-F1 ratio of
        train-synthetic to train-real; ``test_rows`` and ``holdout`` say what was scored on.
    """
    holdout = "real_test"
    if real_test is None:
        labels = real[LABEL].to_numpy()
        counts = np.bincount(labels, minlength=n_classes)
        stratify = labels if counts[counts > 0].min() >= 2 else None
        train_part, real_test = train_test_split(real, test_size=0.3, random_state=random_state, stratify=stratify)
        real = train_part
        holdout = _("30% of the real training rows (the generator saw them)")
    result: dict[str, Any] = {"holdout": holdout, "test_rows": int(len(real_test))}
    if len(real_test) == 0 or real[LABEL].nunique() < 2:
        return {**result, "real": None, "synthetic": None, "augmented": None, "synthetic_to_real_f1": None}
    reference = real
    result["real"] = _fit_score(real, real_test, reference, numeric, categorical, n_classes, minority, random_state)
    real_classes = set(real[LABEL].unique())
    if len(synthetic) and real_classes <= set(synthetic[LABEL].unique()):
        result["synthetic"] = _fit_score(synthetic, real_test, reference, numeric, categorical, n_classes,
                                         minority, random_state)
        result["synthetic_to_real_f1"] = (result["synthetic"]["f1_macro"] / result["real"]["f1_macro"]
                                          if result["real"]["f1_macro"] > 0 else None)
    else:
        result["synthetic"] = None
        result["synthetic_to_real_f1"] = None
    both = pd.concat([real, synthetic[real.columns.intersection(synthetic.columns)]], ignore_index=True)
    result["augmented"] = _fit_score(both, real_test, reference, numeric, categorical, n_classes, minority,
                                     random_state)
    return result


# --- privacy ----------------------------------------------------------------------------------
def _row_keys(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash per row over ``columns`` (numbers compared as float64; NaN equals NaN)."""
    view = pd.DataFrame({c: frame[c].to_numpy(np.float64, na_value=np.nan) for c in columns})
    return pd.util.hash_pandas_object(view, index=False).to_numpy()


def exact_copies(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str]) -> int:
    """How many synthetic rows equal some real row in every one of ``columns``."""
    if len(real) == 0 or len(synthetic) == 0:
        return 0
    return int(np.isin(_row_keys(synthetic, columns), _row_keys(real, columns)).sum())


def closest_distances(query: pd.DataFrame, reference: pd.DataFrame, numeric: list[str], categorical: list[str],
                      *, ranges: dict[str, float] | None = None, exclude_self: bool = False,
                      chunk: int = 512) -> np.ndarray:
    """Distance of each ``query`` row to its closest ``reference`` row (SDMetrics' DCR distance).

    ``exclude_self`` treats ``query`` as ``reference``'s first rows (same order) and skips the pair
    of a row with itself, giving real-to-real nearest-neighbour distances.
    """
    n_columns = len(numeric) + len(categorical)
    if n_columns == 0 or len(reference) == 0:
        return np.full(len(query), np.nan)
    if ranges is None:
        ranges = _ranges(reference, numeric)
    ref_num = reference[list(numeric)].to_numpy(np.float64, na_value=np.nan) if numeric \
        else np.zeros((len(reference), 0))
    qry_num = query[list(numeric)].to_numpy(np.float64, na_value=np.nan) if numeric else np.zeros((len(query), 0))
    low = np.array([np.nanmin(ref_num[:, j]) if not np.isnan(ref_num[:, j]).all() else 0.0
                    for j in range(len(numeric))])
    scale = np.array([ranges[c] if ranges[c] > 0 else 1.0 for c in numeric])
    ref_scaled, qry_scaled = (ref_num - low) / scale, (qry_num - low) / scale
    # Columns where |a - b| / range can exceed 1 (a query value outside the reference range), or with
    # missing values, or constant, need the capped element-wise rule; the rest is one L1 distance.
    special = np.zeros(len(numeric), dtype=bool)
    for j, c in enumerate(numeric):
        q, r = qry_scaled[:, j], ref_scaled[:, j]
        special[j] = (ranges[c] <= 0 or np.isnan(q).any() or np.isnan(r).any()
                      or np.nanmin(q, initial=0.0) < 0 or np.nanmax(q, initial=0.0) > 1)
    # float32 is ample for distances in [0, 1] and twice as fast; exact copies are counted by hashing
    plain = torch.from_numpy(np.ascontiguousarray(ref_scaled[:, ~special], dtype=np.float32))
    plain_q = torch.from_numpy(np.ascontiguousarray(qry_scaled[:, ~special], dtype=np.float32))
    capped = torch.from_numpy(np.ascontiguousarray(ref_scaled[:, special], dtype=np.float32))
    capped_q = torch.from_numpy(np.ascontiguousarray(np.clip(qry_scaled[:, special], -1.0, 2.0), dtype=np.float32))
    zero_range = torch.tensor([ranges[c] <= 0 for c in np.asarray(numeric)[special]], dtype=torch.bool)
    ref_cat = [pd.factorize(np.concatenate([reference[c].to_numpy(np.float64, na_value=np.nan),
                                            query[c].to_numpy(np.float64, na_value=np.nan)]),
                            use_na_sentinel=False)[0] for c in categorical]
    cat_ref = torch.from_numpy(np.stack([codes[:len(reference)] for codes in ref_cat], axis=1)) if categorical \
        else torch.zeros((len(reference), 0), dtype=torch.long)
    cat_qry = torch.from_numpy(np.stack([codes[len(reference):] for codes in ref_cat], axis=1)) if categorical \
        else torch.zeros((len(query), 0), dtype=torch.long)
    result = np.empty(len(query))
    with torch.no_grad():
        for start in range(0, len(query), chunk):
            stop = min(start + chunk, len(query))
            if plain.shape[1]:
                total = torch.cdist(plain_q[start:stop], plain, p=1)
            else:
                total = torch.zeros((stop - start, len(reference)), dtype=torch.float32)
            for j in range(capped.shape[1]):
                q, r = capped_q[start:stop, j, None], capped[None, :, j]
                d = (q - r).abs_()
                d = (d > 0).float() if zero_range[j] else d.clamp_(max=1.0)
                q_nan, r_nan = torch.isnan(q), torch.isnan(r)
                if q_nan.any() or r_nan.any():
                    d = torch.where(q_nan | r_nan, (q_nan ^ r_nan).float(), d)
                total += d
            for j in range(cat_ref.shape[1]):
                total += cat_qry[start:stop, j, None] != cat_ref[None, :, j]
            if exclude_self:
                rows = torch.arange(stop - start)
                total[rows, rows + start] = math.inf
            result[start:stop] = (total.min(dim=1).values / n_columns).numpy()
    return result


def _ranges(frame: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
    result = {}
    for c in numeric:
        values = frame[c].to_numpy(np.float64, na_value=np.nan)
        result[c] = float(np.nanmax(values) - np.nanmin(values)) if not np.isnan(values).all() else 0.0
    return result


def membership_inference_auc(members: pd.DataFrame, non_members: pd.DataFrame, synthetic: pd.DataFrame,
                             numeric: list[str], categorical: list[str], *, max_rows: int = 1000,
                             max_reference_rows: int = 20_000, random_state: int = 0) -> float:
    """ROC-AUC of the distance attack (see the module docstring): members vs non-members, scored by
    closeness to the nearest synthetic row. ``nan`` when a side has no rows.

    Equally many rows (at most ``max_rows``) are drawn from ``members`` and ``non_members``; distances
    use the members' column ranges and at most ``max_reference_rows`` synthetic rows.

    Examples
    --------
    >>> membership_inference_auc(train.frame, valid.frame, train.frame, numeric, categorical)  # doctest: +SKIP
    1.0
    """
    n = min(len(members), len(non_members), max_rows)
    if n == 0 or len(synthetic) == 0 or not (list(numeric) + list(categorical)):
        return math.nan
    rng = np.random.default_rng(random_state)

    def pick(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
        return frame if len(frame) <= limit else frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]

    candidates = pd.concat([pick(members, n)[list(numeric) + list(categorical)],
                            pick(non_members, n)[list(numeric) + list(categorical)]], ignore_index=True)
    distance = closest_distances(candidates, pick(synthetic, max_reference_rows), numeric, categorical,
                                 ranges=_ranges(members, numeric))
    is_member = np.r_[np.ones(n), np.zeros(n)]
    return float(roc_auc_score(is_member, -distance))


def privacy(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str], *,
            real_test: pd.DataFrame | None = None, max_rows: int = 1000, max_reference_rows: int = 20_000,
            random_state: int = 0) -> dict[str, Any]:
    """Distance to closest record and exact copies (see the module docstring for the definitions)."""
    rng = np.random.default_rng(random_state)
    columns = list(numeric) + list(categorical)
    copies = exact_copies(real, synthetic, columns)
    result: dict[str, Any] = {
        "exact_copies": copies, "exact_copy_share": copies / len(synthetic) if len(synthetic) else math.nan,
        "dcr_median": math.nan, "baseline_median": math.nan, "dcr_ratio": math.nan,
        "baseline": "real_test" if real_test is not None else "real-to-real (leave one out)",
        "membership_inference_auc": math.nan,
    }
    if len(real) < 2 or len(synthetic) == 0:
        return result

    def pick(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
        return frame if len(frame) <= limit else frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]

    reference = pick(real, max_reference_rows)
    ranges = _ranges(real, numeric)
    dcr = closest_distances(pick(synthetic, max_rows), reference, numeric, categorical, ranges=ranges)
    if real_test is not None and len(real_test):
        baseline = closest_distances(pick(real_test, max_rows), reference, numeric, categorical, ranges=ranges)
        result["baseline_exact_copy_share"] = exact_copies(real, real_test, columns) / len(real_test)
        result["membership_inference_auc"] = membership_inference_auc(
            real, real_test, synthetic, numeric, categorical, max_rows=max_rows,
            max_reference_rows=max_reference_rows, random_state=random_state)
    else:
        order = rng.permutation(len(reference))
        shuffled = reference.iloc[order]
        baseline = closest_distances(shuffled.iloc[:max_rows], shuffled, numeric, categorical, ranges=ranges,
                                     exclude_self=True)
    result["dcr_median"] = float(np.median(dcr))
    result["baseline_median"] = float(np.median(baseline))
    result["dcr_ratio"] = (result["dcr_median"] / result["baseline_median"]
                           if result["baseline_median"] > 0 else math.nan)
    return result


# --- the report -------------------------------------------------------------------------------
@dataclass
class QualityScores:
    """All scores for one population (every class, or the minority class alone)."""

    quality: float
    column_shapes: pd.DataFrame
    pair_trends: pd.DataFrame
    detection: dict[str, float]
    privacy: dict[str, Any]
    rows_real: int
    rows_synthetic: int

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "quality": self.quality, "rows_real": self.rows_real, "rows_synthetic": self.rows_synthetic,
            "column_shapes_mean": _mean(self.column_shapes["score"]),
            "pair_trends_mean": _mean(self.pair_trends["score"]),
            "column_shapes": self.column_shapes.to_dict(orient="records"),
            "pair_trends": self.pair_trends.to_dict(orient="records"),
            "detection": self.detection, "privacy": self.privacy,
        })


@dataclass
class QualityReport:
    """Fidelity, detection, efficacy and privacy of a synthetic set, overall and for the minority class."""

    overall: QualityScores
    minority: QualityScores | None
    minority_class: str | None
    efficacy: dict[str, Any]
    numeric: list[str]
    categorical: list[str]
    detector: str
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        """The overall quality score (SDMetrics QualityReport definition), 0..1, higher is better."""
        return self.overall.quality

    @property
    def membership_inference_auc(self) -> float:
        """The distance attack's ROC-AUC over every class (0.5: no leak; ``nan`` without held-out rows)."""
        return float(self.overall.privacy.get("membership_inference_auc", math.nan))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN written as ``None``)."""
        return jsonable({
            "score": self.score, "detector": self.detector, "numeric": self.numeric,
            "categorical": self.categorical, "overall": self.overall.to_dict(),
            "minority_class": self.minority_class,
            "minority": self.minority.to_dict() if self.minority is not None else None,
            "efficacy": self.efficacy, "notes": list(self.notes),
        })


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and NaN / infinity made ``None`` (for strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scores(real: pd.DataFrame, synthetic: pd.DataFrame, numeric: list[str], categorical: list[str],
            real_test: pd.DataFrame | None, detector: str, max_rows: int, random_state: int) -> QualityScores:
    rng = np.random.default_rng(random_state)

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if len(frame) <= max_rows else frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]

    real_s, syn_s = pick(real), pick(synthetic)
    shapes = column_shapes(real, synthetic, numeric, categorical)
    pairs = pair_trends(real_s, syn_s, numeric, categorical, random_state=random_state)
    parts = [v for v in (_mean(shapes["score"]), _mean(pairs["score"])) if not math.isnan(v)]
    return QualityScores(
        quality=float(np.mean(parts)) if parts else math.nan, column_shapes=shapes, pair_trends=pairs,
        detection=detection(real_s, syn_s, numeric, categorical, detector=detector, random_state=random_state),
        privacy=privacy(real, synthetic, numeric, categorical, real_test=real_test,
                        max_rows=min(max_rows, 1000), random_state=random_state),
        rows_real=len(real), rows_synthetic=len(synthetic))


def quality_report(real: pd.DataFrame, synthetic: pd.DataFrame, schema: FeatureSchema, *,
                   real_test: pd.DataFrame | None = None, minority: str | None = None,
                   detector: str = "logistic", efficacy_test: bool = True, max_rows: int = 2000,
                   random_state: int = 0) -> QualityReport:
    """Score ``synthetic`` against the real training rows it imitates.

    Parameters
    ----------
    real : DataFrame
        The real training split (a :class:`~recexp.dataset.Dataset`'s frame; rows flagged
        ``is_synthetic`` are dropped).
    synthetic : DataFrame
        Generated rows with the schema's feature columns and ``label``.
    schema : FeatureSchema
        Which columns are numeric and categorical, and the class names.
    real_test : DataFrame, optional
        Real rows the generator never saw (e.g. the validation split): the efficacy test set and the
        privacy baseline. Without it both are taken from ``real`` (see :func:`efficacy`, :func:`privacy`).
    minority : str, optional
        Class scored separately; default: the class with the fewest real rows.
    detector : {"logistic", "gbm"}
        Classifier of the detection score.
    efficacy_test : bool
        Compute machine-learning efficacy (three model fits; the slowest part).
    max_rows : int
        Rows of each side used by pair trends and detection, and (at most 1,000) synthetic rows whose
        closest-record distance is measured against up to 20,000 real rows. Column shapes and exact
        copies always use every row.
    random_state : int
        Seeds the subsampling, the folds and the classifiers.

    Returns
    -------
    QualityReport

    Examples
    --------
    >>> report = quality_report(train.frame, generator.sample(2000), train.schema)   # doctest: +SKIP
    >>> round(report.score, 3), report.overall.detection["auc"]                        # doctest: +SKIP
    """
    if detector not in DETECTORS:
        raise InvalidParameterError(
            _("detector must be one of {detectors}, but got {detector!r}. Pick one of those.").format(
              detectors=', '.join(DETECTORS), detector=detector))
    numeric = list(schema.numeric)
    features = list(schema.numeric) + list(schema.categorical)
    missing = [c for c in features + [LABEL] if c not in synthetic.columns]
    if missing:
        raise InvalidDataError(
            _("The synthetic rows lack the column(s) {missing}. Generate them with the same schema as the real "
              "training split.").format(missing=', '.join(missing)))
    if IS_SYNTHETIC in real.columns:
        real = real.loc[~real[IS_SYNTHETIC].to_numpy(dtype=bool)]
    if len(real) == 0:
        raise InvalidDataError(_("The real training split has no real rows to compare with. Pass the real split."))
    notes = []
    if schema.sequences:
        notes.append(_("Behaviour-sequence columns are not modelled by the generators and are not scored."))
    categorical = list(schema.categorical) + [LABEL]
    n_columns = len(numeric) + len(categorical)
    if n_columns * (n_columns - 1) // 2 > MAX_PAIRS:
        notes.append(_("Pair trends are scored on {max_pairs:,} of the {n_columns:,} column pairs of the "
                       "{n_columns2:,} scored columns, drawn at random (seed {random_state}): scoring every pair "
                       "grows with the square of the columns.").format(
                       max_pairs=MAX_PAIRS, n_columns=n_columns * (n_columns - 1) // 2, n_columns2=n_columns,
                       random_state=random_state))
    overall = _scores(real, synthetic, numeric, categorical, real_test, detector, max_rows, random_state)

    counts = np.bincount(real[LABEL].to_numpy(np.int64), minlength=schema.n_classes)
    if minority is None:
        present = np.flatnonzero(counts > 0)
        code = int(present[np.argmin(counts[present])])
    elif minority in schema.classes:
        code = schema.classes.index(minority)
    else:
        raise InvalidParameterError(
            _("minority must be one of the classes {classes}, but got {minority!r}.").format(
              classes=', '.join(schema.classes), minority=minority))
    real_min = real.loc[real[LABEL].to_numpy() == code]
    syn_min = synthetic.loc[synthetic[LABEL].to_numpy() == code]
    test_min = real_test.loc[real_test[LABEL].to_numpy() == code] if real_test is not None else None
    minority_scores = None
    if len(syn_min):
        minority_scores = _scores(real_min, syn_min, numeric, list(schema.categorical), test_min, detector,
                                  max_rows, random_state)
    else:
        notes.append(_("No synthetic rows of the minority class "
                       "{classes!r}: its scores are missing.").format(classes=schema.classes[code]))
    eff = efficacy(real, synthetic, numeric, categorical[:-1], schema.n_classes, real_test=real_test,
                   minority=code, random_state=random_state) if efficacy_test else {}
    return QualityReport(overall=overall, minority=minority_scores, minority_class=schema.classes[code],
                         efficacy=eff, numeric=numeric, categorical=categorical, detector=detector, notes=notes)
