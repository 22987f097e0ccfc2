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

#: Score names :func:`classification_metrics` returns, in display order.
METRIC_NAMES = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                "roc_auc", "log_loss")


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro precision / recall / F1, ROC-AUC and log-loss.

    Parameters
    ----------
    y_true : array of int, shape (n,)
        Label codes ``0 .. K-1``.
    proba : array of float, shape (n, K)
        Predicted class probabilities; the predicted class is the arg-max.

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
    result = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, labels=labels, average="macro",
                                                     zero_division=0)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, labels=labels, average="macro",
                                               zero_division=0)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred))
    result["roc_auc"] = roc_auc(y_true, proba)
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    result["log_loss"] = float(skm.log_loss(y_true, clipped, labels=labels))
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


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary ROC-AUC of class 1, or one-vs-rest macro AUC over the classes present; ``nan`` if undefined."""
    present = np.unique(y_true)
    if len(present) < 2:
        return math.nan
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    scores = [skm.roc_auc_score(y_true == k, proba[:, k]) for k in present]
    return float(np.mean(scores))
