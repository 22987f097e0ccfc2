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


# --- the full evaluation (evaluation_metrics and friends) ---------------------------------------------

from imblearn.metrics import geometric_mean_score  # noqa: E402

from recexp.metrics import (EVALUATION_METRICS, evaluation_metrics, expected_calibration_error,  # noqa: E402
                            f1_optimal_threshold, ranking_metrics, recall_at_precision, roc_auc,
                            scores_from_confusions, weighted_roc_auc)

CLASSES = ("pv", "cart", "fav", "buy")


def _never_predicted(seed, n=400, k=4, silent=2):
    """A case where class ``silent`` is in the labels but never predicted (its probability is always tiny)."""
    y, proba = _random_case(seed, n=n, k=k)
    proba[:, silent] = 1e-4
    return y, proba / proba.sum(axis=1, keepdims=True)


CASES = {"multiclass": lambda: _random_case(3), "absent_from_labels": lambda: _random_case(4, missing_class=3),
         "absent_from_predictions": lambda: _never_predicted(5)}


@pytest.mark.parametrize("case", list(CASES))
def test_every_score_equals_scikit_learn(case):
    y, proba = CASES[case]()
    pred = proba.argmax(axis=1)
    labels = np.arange(4)
    present = np.unique(y)
    scores = evaluation_metrics(y, proba, CLASSES)
    assert list(scores)[:len(EVALUATION_METRICS)] == list(EVALUATION_METRICS)
    if case == "absent_from_predictions":
        assert 2 not in pred and 2 in y
        assert scores["precision[fav]"] == 0.0 and scores["recall[fav]"] == 0.0 and scores["gmean"] == 0.0
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        assert scores["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    for average in ("macro", "weighted"):
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            assert scores[f"{name}_{average}"] == pytest.approx(
                fn(y, pred, labels=labels, average=average, zero_division=0)), (name, average)
    per_class = {name: fn(y, pred, labels=labels, average=None, zero_division=0)
                 for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                                  ("f1", skm.f1_score))}
    for k, cls in enumerate(CLASSES):
        for name, values in per_class.items():
            assert scores[f"{name}[{cls}]"] == pytest.approx(values[k]), (name, cls)
        if k in present:
            assert scores[f"pr_auc[{cls}]"] == pytest.approx(skm.average_precision_score(y == k, proba[:, k]))
        else:
            assert math.isnan(scores[f"pr_auc[{cls}]"])
    assert scores["pr_auc_macro"] == pytest.approx(np.mean([skm.average_precision_score(y == k, proba[:, k])
                                                            for k in present]))
    assert scores["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert scores["gmean"] == pytest.approx(geometric_mean_score(y, pred, labels=present, average="multiclass"))
    if len(present) == 4:
        assert scores["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    else:
        assert scores["roc_auc"] == pytest.approx(np.mean([skm.roc_auc_score(y == k, proba[:, k]) for k in present]))
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels), rel=1e-4)


def test_binary_threshold_and_f1_optimal_threshold():
    y, proba = _random_case(6, k=2)
    at_half = evaluation_metrics(y, proba, ("0", "1"), threshold=0.5)
    assert at_half["f1[1]"] == pytest.approx(skm.f1_score(y, proba[:, 1] >= 0.5))
    assert at_half["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    threshold = f1_optimal_threshold(y, proba[:, 1])
    candidates = np.unique(proba[:, 1])
    brute = max(candidates, key=lambda t: skm.f1_score(y, proba[:, 1] >= t))
    assert skm.f1_score(y, proba[:, 1] >= threshold) == pytest.approx(skm.f1_score(y, proba[:, 1] >= brute))
    tuned = evaluation_metrics(y, proba, ("0", "1"), threshold=threshold)
    assert tuned["f1[1]"] == pytest.approx(skm.f1_score(y, proba[:, 1] >= threshold))
    assert tuned["f1[1]"] >= at_half["f1[1]"]
    assert f1_optimal_threshold(np.zeros(5, dtype=int), np.linspace(0, 1, 5)) == 0.5


def test_recall_at_precision_is_the_best_reachable_recall():
    y, proba = _random_case(7, k=2)
    recall, threshold = recall_at_precision(y == 1, proba[:, 1], 0.4)
    reachable = [skm.recall_score(y, proba[:, 1] >= t) for t in np.unique(proba[:, 1])
                 if skm.precision_score(y, proba[:, 1] >= t, zero_division=0) >= 0.4]
    assert recall == pytest.approx(max(reachable))
    assert skm.precision_score(y, proba[:, 1] >= threshold) >= 0.4
    assert recall_at_precision(y == 1, proba[:, 1], 1.01) == (0.0, pytest.approx(math.nan, nan_ok=True))


def test_expected_calibration_error_by_hand():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.95, 0.05], [0.62, 0.38], [0.64, 0.36], [0.25, 0.75]])
    # bins of width 0.1: (0.9, 1] {0.95} right; (0.6, 0.7] {0.62 right, 0.64 wrong}; (0.7, 0.8] {0.75} right
    expected = (abs(1 - 0.95) + 2 * abs(0.5 - 0.63) + abs(1 - 0.75)) / 4
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(expected)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(np.array([0, 1]), perfect) == 0.0


def test_ranking_metrics_equal_scikit_learn_per_group():
    rng = np.random.default_rng(8)
    groups = np.repeat(np.arange(40), rng.integers(1, 15, 40))
    relevant = rng.random(len(groups)) < 0.15
    score = rng.random(len(groups))
    result = ranking_metrics(relevant, score, groups, ks=(3, 10))
    hr, ndcg = {3: [], 10: []}, {3: [], 10: []}
    for g in np.unique(groups):
        mask = groups == g
        if not relevant[mask].any():
            continue
        order = np.argsort(-score[mask])
        for k in (3, 10):
            hr[k].append(relevant[mask][order][:k].any())
            if mask.sum() > 1:
                ndcg[k].append(skm.ndcg_score(relevant[mask][None].astype(float), score[mask][None], k=k))
            else:
                ndcg[k].append(1.0)
    for k in (3, 10):
        assert result[f"hr@{k}"] == pytest.approx(np.mean(hr[k]))
        assert result[f"ndcg@{k}"] == pytest.approx(np.mean(ndcg[k]))
    assert math.isnan(ranking_metrics(np.zeros(3, bool), np.ones(3), np.zeros(3))["hr@5"])


@pytest.mark.parametrize("case", list(CASES))
def test_vectorised_bootstrap_scores_equal_the_direct_ones(case):
    y, proba = CASES[case]()
    rng = np.random.default_rng(9)
    weights = np.stack([np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) for _ in range(3)])
    confusions = np.stack([skm.confusion_matrix(np.repeat(y, w), np.repeat(proba.argmax(1), w), labels=range(4))
                           for w in weights])
    fast = scores_from_confusions(confusions, list(CLASSES))
    aucs = weighted_roc_auc(y, proba, weights.T)                 # one column per weight vector
    for b, w in enumerate(weights):
        direct = evaluation_metrics(np.repeat(y, w), np.repeat(proba, w, axis=0), CLASSES)
        for key in ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "mcc", "gmean",
                    "recall[buy]", "f1[cart]", "precision[fav]"):
            assert fast[key][b] == pytest.approx(direct[key], abs=1e-12), key
        assert aucs[b] == pytest.approx(roc_auc(np.repeat(y, w), np.repeat(proba, w, axis=0)))
