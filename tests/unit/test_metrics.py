"""Test scores: recexp's definitions agree with scikit-learn's, undefined scores are NaN."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from recexp.metrics import METRIC_NAMES, classification_metrics, confusion_scores


def _random_case(seed, n=500, k=4, missing_class=None):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.7, 0.15, 0.1, 0.05][:k] / np.sum([0.7, 0.15, 0.1, 0.05][:k]))
    if missing_class is not None:
        y[y == missing_class] = 0
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y] * rng.random((n, 1))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("seed,missing", [(0, None), (1, None), (2, 3)])
def test_scores_match_scikit_learn(seed, missing):
    y, proba = _random_case(seed, missing_class=missing)
    scores = classification_metrics(y, proba)
    assert list(scores) == list(METRIC_NAMES)
    pred = proba.argmax(axis=1)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(y, pred, labels=range(4), average="macro", zero_division=0))
    assert scores["recall_macro"] == pytest.approx(skm.recall_score(y, pred, labels=range(4), average="macro",
                                                                    zero_division=0))
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=range(4)), rel=1e-4)
    confusion = skm.confusion_matrix(y, pred, labels=range(4))
    fast = confusion_scores(confusion)
    for key in ("accuracy", "balanced_accuracy", "f1_macro"):
        assert fast[key] == pytest.approx(scores[key]), key


def test_binary_auc_and_undefined_auc():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]])
    assert classification_metrics(y, proba)["roc_auc"] == 1.0
    single = classification_metrics(np.zeros(4, dtype=int), proba)
    assert math.isnan(single["roc_auc"]) and single["accuracy"] == 0.5
