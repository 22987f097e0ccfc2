"""Same seed, same output; no global RNG touched; new rows trace back to the real rows they came from."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn import over_sampling

from recexp.dataset import IS_SYNTHETIC
from recexp.strategies import STRATEGIES, get_strategy

STOCHASTIC = ["random_over", "smote", "smoten", "borderline_smote", "svm_smote", "kmeans_smote", "adasyn",
              "random_under", "cluster_centroids", "smote_enn", "gaussian_noise", "feature_masking", "mixup",
              "sequence_crop", "sequence_mask", "sequence_reorder"]


@pytest.mark.parametrize("name", [n for n, cls in STRATEGIES.items() if not getattr(cls, "needs_source_run", False)])
def test_same_seed_same_output_and_global_rng_untouched(name, small_train):
    train = small_train["purchase"]
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    states = (np.random.get_state()[1].copy(), random.getstate(), torch.random.get_rng_state().clone())
    first = STRATEGIES[name]().apply(train, seed=11)
    second = STRATEGIES[name]().apply(train, seed=11)
    pd.testing.assert_frame_equal(first.dataset.frame, second.dataset.frame)
    assert (first.source_rows == second.source_rows).all()
    assert (np.random.get_state()[1] == states[0]).all()
    assert random.getstate() == states[1]
    assert torch.equal(torch.random.get_rng_state(), states[2])


@pytest.mark.parametrize("name", STOCHASTIC)
def test_another_seed_gives_other_rows(name, small_train):
    train = small_train["behavior"]
    first = STRATEGIES[name]().apply(train, seed=1).dataset.frame
    second = STRATEGIES[name]().apply(train, seed=2).dataset.frame
    assert not first.equals(second)


def test_smote_output_is_imbalanced_learns_own(small_train, numeric_only):
    """recexp's SMOTE rows are exactly those of the same imbalanced-learn call made directly."""
    train = numeric_only(small_train["behavior"])
    columns = list(train.schema.numeric)
    X = train.frame[columns].to_numpy(np.float32)
    X_direct, y_direct = over_sampling.SMOTE(k_neighbors=4, random_state=5).fit_resample(X, train.y)
    result = get_strategy("smote", k_neighbors=4).apply(train, seed=5)
    new = result.dataset.frame[IS_SYNTHETIC].to_numpy()
    np.testing.assert_array_equal(result.dataset.frame.loc[new, columns].to_numpy(np.float32), X_direct[len(X):])
    np.testing.assert_array_equal(result.dataset.y[new], y_direct[len(X):])
    np.testing.assert_array_equal(result.dataset.frame.loc[~new, columns].to_numpy(np.float32), X)


def test_smote_output_when_a_numeric_feature_is_not_float32(small_train, numeric_only):
    """A float64 feature cannot share the sampler's float32 matrix: its values are still the sampler's rows."""
    train = numeric_only(small_train["behavior"])
    columns = list(train.schema.numeric)
    wide = type(train)(frame=train.frame.astype({columns[0]: np.float64}), schema=train.schema, task=train.task,
                       fingerprint=train.fingerprint)
    X = train.frame[columns].to_numpy(np.float32)
    X_direct, _ = over_sampling.SMOTE(random_state=3).fit_resample(X, train.y)
    out = get_strategy("smote").apply(wide, seed=3).dataset.frame
    assert out[columns[0]].dtype == np.float64 and out[columns[1]].dtype == np.float32
    np.testing.assert_array_equal(out[columns].to_numpy(np.float32), X_direct)


def _segment_gap(point: np.ndarray, seed: np.ndarray, others: np.ndarray) -> float:
    """Distance from ``point`` to the nearest segment from ``seed`` to one of ``others``, relative to it."""
    direction = others - seed
    offset = point - seed
    t = np.clip(direction @ offset / np.maximum((direction ** 2).sum(axis=1), 1e-12), 0.0, 1.0)
    gaps = np.linalg.norm(offset[None, :] - t[:, None] * direction, axis=1)
    best = np.argmin(gaps)
    return gaps[best] / max(np.linalg.norm(direction[best]), 1.0)


@pytest.mark.parametrize("name,param", [("smote", "k_neighbors"), ("borderline_smote", "k_neighbors"),
                                        ("adasyn", "n_neighbors"), ("kmeans_smote", "k_neighbors")])
def test_new_rows_lie_on_a_segment_from_their_source_row(name, param, small_train, numeric_only):
    """The traced source row is the seed: each new row sits between it and another row of its class."""
    train = numeric_only(small_train["behavior"])
    result = get_strategy(name, **{param: 3}).apply(train, seed=0)
    frame = result.dataset.frame
    new = np.flatnonzero(frame[IS_SYNTHETIC].to_numpy())
    columns = list(train.schema.numeric)
    X = train.frame[columns].to_numpy(np.float64)
    points = frame.loc[new, columns].to_numpy(np.float64)
    seeds = result.source_rows[new]
    checked = np.random.default_rng(0).choice(len(new), min(400, len(new)), replace=False)
    gaps = [_segment_gap(points[i], X[seeds[i]], X[train.y == train.y[seeds[i]]]) for i in checked]
    assert max(gaps) < 1e-4
    # a wrong source row would not pass: shift every seed by one row of its class
    wrong = [_segment_gap(points[i], X[seeds[i] - 1], X[train.y == train.y[seeds[i]]]) for i in checked[:50]]
    assert np.mean(np.array(wrong) > 1e-4) > 0.5
    # copied columns come from that same row
    sequence = list(train.schema.sequence_columns)
    np.testing.assert_array_equal(frame.loc[new, sequence].to_numpy(), train.frame.loc[seeds, sequence].to_numpy())


def test_missing_values_are_filled_for_neighbour_samplers_and_kept_on_real_rows(small_train, numeric_only):
    train = numeric_only(small_train["purchase"])
    column = train.schema.numeric[0]
    frame = train.frame.copy()
    holes = np.arange(0, len(frame), 7)
    frame.loc[holes, column] = np.nan
    holed = type(train)(frame=frame, schema=train.schema, task=train.task, fingerprint=train.fingerprint)
    result = get_strategy("smote").apply(holed, seed=0)
    assert any("filled with the training median" in note and column in note for note in result.report.notes)
    out = result.dataset.frame
    real = ~out[IS_SYNTHETIC].to_numpy()
    assert out.loc[real, column].isna().sum() == len(holes)
    assert out.loc[~real, column].notna().all()


@pytest.mark.parametrize("name", ["smote", "random_under", "sequence_crop"])
def test_output_does_not_depend_on_the_copy_threads(name, small_train, monkeypatch):
    from recexp.strategies import base
    train = small_train["behavior"]
    monkeypatch.setattr(base, "COPY_THREADS", 4)
    threaded = STRATEGIES[name]().apply(train, seed=3).dataset.frame
    monkeypatch.setattr(base, "COPY_THREADS", 1)
    pd.testing.assert_frame_equal(STRATEGIES[name]().apply(train, seed=3).dataset.frame, threaded)
