"""Classification scores of a run's test predictions, computed with scikit-learn.

Every function takes integer label codes and class probabilities (one column per class, in the
order of ``schema.classes``) and returns plain floats, ``nan`` where a score is undefined (for
example ROC-AUC when the test split holds a single class).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm

from recexp.i18n import N_

#: Score names :func:`classification_metrics` returns, in display order.
METRIC_NAMES = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                "roc_auc", "log_loss")


def classification_metrics(y_true: np.ndarray, proba: np.ndarray,
                           sample_weight: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro precision / recall / F1, ROC-AUC and log-loss.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        Label codes ``0 .. K-1``.
    proba : array of float, shape (n, K)
        Predicted class probabilities; the predicted class is the arg-max.
    sample_weight : array of float, shape (n,), optional
        Row weights: a dataset whose majority class was down-sampled at build time carries ``1 / rate`` on
        those rows (``sample_weight``), so the weighted scores estimate the full population's.

    Returns
    -------
    dict
        Score name -> float. ``roc_auc`` is the binary AUC of class 1 for two classes and the
        one-vs-rest macro AUC over the classes present otherwise; ``nan`` when undefined.

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1, 1]), np.array([[.8, .2], [.3, .7], [.6, .4]]))
    >>> round(m["accuracy"], 3), round(m["recall_macro"], 3)
    (0.667, 0.75)
    """
    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    y_pred = proba.argmax(axis=1)
    w = sample_weight
    result = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred, sample_weight=w)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, labels=labels, average="macro",
                                                     zero_division=0, sample_weight=w)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, labels=labels, average="macro",
                                               zero_division=0, sample_weight=w)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0,
                                       sample_weight=w)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred, sample_weight=w))
    result["roc_auc"] = roc_auc(y_true, proba, w)
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    result["log_loss"] = float(skm.log_loss(y_true, clipped, labels=labels, sample_weight=w))
    return {name: result[name] for name in METRIC_NAMES}


def confusion_scores(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 from a ``K x K`` confusion matrix (rows: true class).

    Same definitions as :func:`classification_metrics` (balanced accuracy averages recall over the
    classes present; macro F1 averages over all ``K`` classes, 0 where undefined) at a fraction of
    the cost: the trainer calls it after every epoch.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    true_counts = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    hits = np.diag(confusion)
    total = confusion.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(true_counts > 0, hits / true_counts, 0.0)
        precision = np.where(predicted_counts > 0, hits / predicted_counts, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = true_counts > 0
    return {"accuracy": float(hits.sum() / total) if total else math.nan,
            "balanced_accuracy": float(recall[present].mean()) if present.any() else math.nan,
            "f1_macro": float(f1.mean()) if len(f1) else math.nan}


def roc_auc(y_true: np.ndarray, proba: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Binary ROC-AUC of class 1, or one-vs-rest macro AUC over the classes present; ``nan`` if undefined."""
    present = np.unique(y_true)
    if len(present) < 2:
        return math.nan
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1], sample_weight=sample_weight))
    scores = [skm.roc_auc_score(y_true == k, proba[:, k], sample_weight=sample_weight) for k in present]
    return float(np.mean(scores))


# --- the full evaluation (recexp.compare and the Compare page) ---------------------------------------

#: Headline scores of :func:`evaluation_metrics`, in display order (per-class scores follow them).
EVALUATION_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                      "precision_weighted", "recall_weighted", "f1_weighted", "mcc", "gmean", "roc_auc",
                      "pr_auc_macro", "log_loss", "ece")
#: Per-class scores; :func:`evaluation_metrics` names them ``"<score>[<class>]"``, e.g. ``"recall[buy]"``.
PER_CLASS_METRICS = ("precision", "recall", "f1", "pr_auc")
#: Scores where lower is better (everything else: higher is better).
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "test_loss"})


def default_primary(classes) -> str:
    """The primary score of an experiment unless one is declared: balanced accuracy for several classes,
    the PR-AUC (average precision) of the positive class (the second) for two.

    >>> default_primary(["view", "cart", "buy"]), default_primary(["0", "1"])
    ('balanced_accuracy', 'pr_auc[1]')
    """
    classes = [str(c) for c in classes]
    return class_key("pr_auc", classes[1]) if len(classes) == 2 else "balanced_accuracy"


def primary_choices(classes) -> list[str]:
    """Scores an experiment can declare as its primary before training: the headline scores, then per class."""
    return [*EVALUATION_METRICS, *(class_key(m, str(c)) for m in PER_CLASS_METRICS for c in classes)]


def class_key(metric: str, class_name: str) -> str:
    """The key of a per-class score: ``class_key("recall", "buy") == "recall[buy]"``."""
    return f"{metric}[{class_name}]"


def predict_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Predicted label codes: arg-max, or for two classes ``proba[:, 1] >= threshold`` when given."""
    proba = np.asarray(proba, dtype=np.float64)
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1).astype(np.int64)


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15,
                               sample_weight: np.ndarray | None = None) -> float:
    """Expected calibration error of the top-label confidence, over ``n_bins`` equal-width bins.

    ``sum_b |accuracy_b - confidence_b| * n_b / n``: 0 for a perfectly calibrated model. With
    ``sample_weight``, rows count by their weight (a down-sampled test split, corrected to the population).

    Examples
    --------
    >>> expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.9, 0.1]]), n_bins=10)
    0.4
    """
    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if len(y_true) == 0:
        return math.nan
    weight = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins - 1e-9).astype(np.int64) - 1, 0, n_bins - 1)  # (lo, hi]
    counts = np.bincount(bins, weight, minlength=n_bins)
    gap = np.abs(np.bincount(bins, correct * weight, n_bins) - np.bincount(bins, confidence * weight, n_bins))
    return float(round(gap.sum() / counts.sum(), 12))


def _log_loss(y_true: np.ndarray, proba: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(skm.log_loss(y_true, clipped, labels=np.arange(proba.shape[1]), sample_weight=sample_weight))


def evaluation_metrics(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...] | list[str] | None = None,
                       threshold: float | None = None, sample_weight: np.ndarray | None = None) -> dict[str, float]:
    """Every score of the Compare page for one set of predictions, with scikit-learn where it has it.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        Label codes ``0 .. K-1``.
    proba : array of float, shape (n, K)
        Predicted class probabilities.
    classes : sequence of str, optional
        Class names for the per-class keys (default ``"0"``, ``"1"``...).
    threshold : float, optional
        Two classes only: predict class 1 when ``proba[:, 1] >= threshold`` (default: arg-max, which is
        the 0.5 threshold). Ignored for more classes.
    sample_weight : array of float, shape (n,), optional
        Row weights (a test split whose majority class was down-sampled at build time carries ``1 / rate`` on
        those rows): every score counts each row by its weight, so it estimates the full population's.

    Returns
    -------
    dict
        :data:`EVALUATION_METRICS` (macro and support-weighted precision / recall / F1, Matthews
        correlation, G-mean of the recalls of the classes present, ROC-AUC as in :func:`roc_auc`,
        macro PR-AUC (average precision) over the classes present, log-loss, expected calibration
        error), then ``precision[c]``, ``recall[c]``, ``f1[c]``, ``pr_auc[c]`` for every class ``c``.
        Undefined scores are ``nan`` (e.g. the PR-AUC of a class absent from ``y_true``); a class never
        predicted has precision 0.
    """
    from imblearn.metrics import geometric_mean_score

    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    names = [str(c) for c in (classes if classes is not None else labels)]
    y_pred = predict_labels(proba, threshold)
    present = np.unique(y_true)
    result: dict[str, float] = {"accuracy": float(skm.accuracy_score(y_true, y_pred, sample_weight=w))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred, sample_weight=w))
        for average in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                             zero_division=0, sample_weight=w)
            result |= {f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)}
        result["mcc"] = float(skm.matthews_corrcoef(y_true, y_pred, sample_weight=w))
        result["gmean"] = float(geometric_mean_score(y_true, y_pred, labels=present, average="multiclass",
                                                     sample_weight=w))
    result["roc_auc"] = roc_auc(y_true, proba, sample_weight=w)
    pr_auc = [float(skm.average_precision_score(y_true == k, proba[:, k], sample_weight=w)) if k in present
              else math.nan for k in labels]
    result["pr_auc_macro"] = float(np.nanmean(pr_auc)) if len(present) else math.nan
    result["log_loss"] = _log_loss(y_true, proba, w)
    result["ece"] = expected_calibration_error(y_true, proba, sample_weight=w)
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0,
                                                     sample_weight=w)
    for k, name in enumerate(names):
        result |= {class_key("precision", name): float(p[k]), class_key("recall", name): float(r[k]),
                   class_key("f1", name): float(f[k]), class_key("pr_auc", name): pr_auc[k]}
    return result


def f1_optimal_threshold(y_true: np.ndarray, score: np.ndarray) -> float:
    """The threshold on ``score`` (probability of class 1) that maximises F1 of class 1.

    Choose it on the validation split and apply it to the test split, never the reverse.
    Returns 0.5 when ``y_true`` holds no positive.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    if not (y_true == 1).any():
        return 0.5
    precision, recall, thresholds = skm.precision_recall_curve(y_true == 1, np.asarray(score, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    return float(thresholds[int(np.argmax(f1))])


def recall_at_precision(y_true: np.ndarray, score: np.ndarray, min_precision: float) -> tuple[float, float]:
    """Highest recall of the positives reachable with precision >= ``min_precision``, and its threshold.

    ``y_true`` is boolean (positive or not), ``score`` the positive's score. Returns ``(0.0, nan)`` when
    no threshold reaches the precision, ``(nan, nan)`` without positives.
    """
    y_true = np.asarray(y_true).astype(bool)
    if not y_true.any():
        return math.nan, math.nan
    precision, recall, thresholds = skm.precision_recall_curve(y_true, np.asarray(score, dtype=np.float64))
    ok = np.flatnonzero(precision[:-1] >= min_precision)
    if not len(ok):
        return 0.0, math.nan
    best = ok[np.argmax(recall[ok])]
    return float(recall[best]), float(thresholds[best])


def ranking_metrics(relevant: np.ndarray, score: np.ndarray, groups: np.ndarray,
                    ks: tuple[int, ...] = (5, 10)) -> dict[str, float]:
    """Top-K ranking scores per group (user): hit rate HR@K and NDCG@K with binary relevance.

    Items of each group are ranked by ``score`` (ties in row order). HR@K is the share of groups
    with at least one relevant item that have one in their top K; NDCG@K is DCG@K / ideal DCG@K
    (``sklearn.metrics.ndcg_score`` per group, for tie-free scores), averaged over the same groups.
    Groups without a relevant item are left out (nothing to find). ``nan`` when no group has one.
    """
    relevant = np.asarray(relevant).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    order = np.lexsort((np.arange(len(score)), -score, group))
    group_sorted, relevant_sorted = group[order], relevant[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, group_sorted[1:] != group_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(group_sorted)])
    rank = np.arange(len(group_sorted)) - np.repeat(starts, sizes)
    positives = np.add.reduceat(relevant_sorted, starts) if len(starts) else np.zeros(0)
    has_positive = positives > 0
    result: dict[str, float] = {}
    for k in ks:
        top = rank < k
        hits = np.add.reduceat(relevant_sorted * top, starts) if len(starts) else np.zeros(0)
        dcg = np.add.reduceat(relevant_sorted * top / np.log2(rank + 2), starts) if len(starts) else np.zeros(0)
        discounts = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(k) + 2))]
        ideal = discounts[np.minimum(positives, k).astype(np.int64)]
        if not has_positive.any():
            result[f"hr@{k}"] = result[f"ndcg@{k}"] = math.nan
            continue
        result[f"hr@{k}"] = float((hits[has_positive] > 0).mean())
        result[f"ndcg@{k}"] = float((dcg[has_positive] / ideal[has_positive]).mean())
    return result


# --- vectorised scores for the bootstrap ---------------------------------------------------------------

def scores_from_confusions(confusions: np.ndarray, class_names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Threshold scores of many ``K x K`` confusion matrices at once (shape ``(..., K, K)``, rows: true).

    Same definitions as :func:`evaluation_metrics`: accuracy, balanced accuracy, macro precision /
    recall / F1, MCC, G-mean, and per-class ``recall[c]`` / ``f1[c]`` / ``precision[c]`` when
    ``class_names`` is given. Used by the paired bootstrap of :mod:`recexp.compare`.
    """
    c = np.asarray(confusions, dtype=np.float64)
    true_counts, predicted_counts = c.sum(axis=-1), c.sum(axis=-2)
    hits = np.diagonal(c, axis1=-2, axis2=-1)
    total = c.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(true_counts > 0, hits / true_counts, 0.0)
        precision = np.where(predicted_counts > 0, hits / predicted_counts, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        present = true_counts > 0
        n_present = present.sum(axis=-1)
        balanced = np.where(n_present > 0, (recall * present).sum(axis=-1) / n_present, np.nan)
        log_recall = np.where(present, np.log(np.where(recall > 0, recall, 1.0)), 0.0)
        zero = (present & (recall == 0)).any(axis=-1)
        gmean = np.where(zero, 0.0, np.exp(log_recall.sum(axis=-1) / np.maximum(n_present, 1)))
        trace = hits.sum(axis=-1)
        cov_tp = trace * total - (predicted_counts * true_counts).sum(axis=-1)
        cov_pp = total ** 2 - (predicted_counts ** 2).sum(axis=-1)
        cov_tt = total ** 2 - (true_counts ** 2).sum(axis=-1)
        denominator = np.sqrt(cov_pp * cov_tt)
        mcc = np.where(denominator > 0, cov_tp / denominator, 0.0)
        result = {"accuracy": trace / total, "balanced_accuracy": balanced, "precision_macro": precision.mean(-1),
                  "recall_macro": recall.mean(-1), "f1_macro": f1.mean(-1), "mcc": mcc, "gmean": gmean}
    for k, name in enumerate(class_names or []):
        result |= {class_key("precision", name): precision[..., k], class_key("recall", name): recall[..., k],
                   class_key("f1", name): f1[..., k]}
    return result


def weighted_roc_auc(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`roc_auc` under row weights, for many weight vectors at once (``weights``: shape (n, B)).

    Column ``b`` of ``weights`` weighs the ``n`` rows. With integer weights (bootstrap counts) the
    result equals :func:`roc_auc` on the rows repeated that many times: the Mann-Whitney statistic
    with ties counted half. Classes absent under a weight vector are left out of the macro average;
    ``nan`` when fewer than two classes remain.
    """
    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float32)
    weights = weights[:, None] if weights.ndim == 1 else weights
    columns = [1] if proba.shape[1] == 2 else list(np.unique(y_true))
    aucs = []
    for k in columns:
        score = proba[:, k]
        positive = y_true == k
        negatives = np.flatnonzero(~positive)
        negatives = negatives[np.argsort(score[negatives], kind="stable")]
        positives = np.flatnonzero(positive)
        # below[j]: weight of the j lowest-scored negatives (exact in float32 up to 2**24 rows); a positive
        # beats those strictly below its score and ties with those equal to it: (below[left] + below[right]) / 2
        below = np.zeros((len(negatives) + 1, weights.shape[1]), dtype=np.float32)
        np.cumsum(weights[negatives], axis=0, out=below[1:])
        left = np.searchsorted(score[negatives], score[positives], side="left")
        right = np.searchsorted(score[negatives], score[positives], side="right")
        positive_weights = weights[positives]
        wins = np.einsum("ib,ib->b", positive_weights, below[left] + below[right], dtype=np.float64) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append(wins / (positive_weights.sum(axis=0, dtype=np.float64) * below[-1].astype(np.float64)))
    stacked = np.vstack(aucs)
    if proba.shape[1] == 2:
        return stacked[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        valid = np.isfinite(stacked)
        return np.where(valid.sum(axis=0) >= 2, np.nanmean(np.where(valid, stacked, np.nan), axis=0), np.nan)


# --- next-item (ranking over the full item set) ---------------------------------------------------------

#: Cut-offs K of the next-item task's top-K scores.
NEXT_ITEM_KS = (5, 10, 20)
#: K of the coverage and popularity scores of the recommended lists.
LIST_K = 10
#: The next-item task's scores, in display order: per row (averaged over test rows), then of the lists.
NEXT_ITEM_METRICS = (*(f"{name}@{k}" for k in NEXT_ITEM_KS for name in ("hr", "ndcg")), "mrr",
                     f"coverage@{LIST_K}", f"popularity@{LIST_K}")
#: The primary score of a next-item experiment unless one is declared.
NEXT_ITEM_PRIMARY = "ndcg@10"
#: What the next-item scores rank against, in words (CLI help and JSON, Compare page).
NEXT_ITEM_PROTOCOL = N_("HR@K, NDCG@K and MRR rank the target among every item of the catalogue (the full item "
                        "set, not a sample of negatives); a target outside the training vocabulary is a miss. "
                        "coverage@10: share of the catalogue in some top-10 list; popularity@10: mean popularity "
                        "percentile (by training rows, 1 = most popular) of the recommended items.")


def task_scores(kind: str, classes) -> tuple[str, list[str]]:
    """The default primary score and the scores an experiment may declare primary, for a task of ``kind``.

    >>> task_scores("ranking", ["rare/missing", "42"])[0], task_scores("classification", ["0", "1"])[0]
    ('ndcg@10', 'pr_auc[1]')
    """
    if kind == "ranking":
        return NEXT_ITEM_PRIMARY, list(NEXT_ITEM_METRICS)
    return default_primary(classes), primary_choices(classes)


def next_item_row_scores(ranks: np.ndarray, ks: tuple[int, ...] = NEXT_ITEM_KS) -> dict[str, np.ndarray]:
    """Per test row: ``hr@K`` (target in the top K), ``ndcg@K`` (``1 / log2(rank + 1)`` inside the top K, one
    relevant item) and ``mrr`` (``1 / rank``), from the target's 1-based rank among all items (``inf``: a miss).

    >>> {k: v.tolist() for k, v in next_item_row_scores(np.array([1.0, 3.0, np.inf]), ks=(2,)).items()}
    {'hr@2': [1.0, 0.0, 0.0], 'ndcg@2': [1.0, 0.0, 0.0], 'mrr': [1.0, 0.3333333333333333, 0.0]}
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    scores: dict[str, np.ndarray] = {}
    for k in ks:
        inside = ranks <= k
        scores[f"hr@{k}"] = inside.astype(np.float64)
        scores[f"ndcg@{k}"] = np.where(inside, 1.0 / np.log2(np.where(inside, ranks, 1.0) + 1.0), 0.0)
    scores["mrr"] = 1.0 / ranks
    return scores


def popularity_percentile(train_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per item code its popularity percentile by training rows: the share of catalogue items (codes ``1..``)
    with at most as many training rows (1 = the most popular; an item without rows gets the share of
    items without rows). Code 0 (rare / missing) gets ``nan``."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=n_classes)[1:n_classes]
    ordered = np.sort(counts)
    share = np.searchsorted(ordered, counts, side="right") / max(len(counts), 1)
    return np.r_[np.nan, share]


def next_item_metrics(ranks: np.ndarray, top: np.ndarray, popularity: np.ndarray) -> dict[str, float]:
    """The next-item scores of a run (:data:`NEXT_ITEM_METRICS`) over the full item set.

    Parameters
    ----------
    ranks : array (n,)
        Each test target's 1-based rank among every catalogue item (code ``1..K-1``), ``inf`` for a target
        outside the vocabulary (a miss).
    top : array (n, >= LIST_K)
        Item codes of each row's recommended list, best first.
    popularity : array (K,)
        :func:`popularity_percentile` of the training labels.
    """
    scores = {name: float(np.mean(values)) if len(values) else math.nan
              for name, values in next_item_row_scores(ranks).items()}
    lists = np.asarray(top)[:, :LIST_K]
    n_items = len(popularity) - 1
    scores[f"coverage@{LIST_K}"] = float(len(np.unique(lists)) / n_items) if n_items and len(lists) else math.nan
    scores[f"popularity@{LIST_K}"] = float(np.mean(popularity[lists])) if lists.size else math.nan
    return {name: scores[name] for name in NEXT_ITEM_METRICS}
