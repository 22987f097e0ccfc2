"""KNN-Shapley: the closed form against a brute-force Shapley computation, and the method on a run."""

import itertools
import math

import numpy as np
import pytest

from recexp.errors import InvalidParameterError
from recexp.importance import TrainedRun, get_method
from recexp.importance.shapley import knn_shapley_values


def knn_utility(subset, train_x, train_y, test_x, test_y, k) -> float:
    """Mean over test rows of the share of the k nearest rows of ``subset`` that carry the test row's label."""
    if not subset:
        return 0.0
    rows = np.array(subset)
    total = 0.0
    for x, y in zip(test_x, test_y):
        nearest = rows[np.argsort(((train_x[rows] - x) ** 2).sum(axis=1))[:k]]
        total += (train_y[nearest] == y).sum() / k
    return total / len(test_x)


def brute_force_shapley(train_x, train_y, test_x, test_y, k) -> np.ndarray:
    """Shapley values by their definition: every subset without the row, weighted |S|!(n-|S|-1)!/n!."""
    n = len(train_x)
    values = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                gain = (knn_utility(list(subset) + [i], train_x, train_y, test_x, test_y, k)
                        - knn_utility(list(subset), train_x, train_y, test_x, test_y, k))
                values[i] += weight * gain
    return values


@pytest.mark.parametrize("k", [1, 2, 3])
def test_closed_form_equals_brute_force_shapley_on_a_tiny_dataset(k):
    rng = np.random.default_rng(7)
    train_x, test_x = rng.normal(size=(6, 2)), rng.normal(size=(3, 2))
    train_y, test_y = np.array([0, 1, 0, 1, 1, 0]), np.array([0, 1, 1])
    expected = brute_force_shapley(train_x, train_y, test_x, test_y, k)
    values = knn_shapley_values(train_x, train_y, test_x, test_y, k)
    assert np.allclose(values, expected, atol=1e-6)
    # Efficiency: the values share out the utility of the whole training set.
    assert values.sum() == pytest.approx(knn_utility(list(range(6)), train_x, train_y, test_x, test_y, k))


def test_blocks_of_validation_rows_give_the_same_values(monkeypatch):
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(50, 3)), rng.normal(size=(20, 3))
    train_y, test_y = rng.integers(0, 3, 50), rng.integers(0, 3, 20)
    whole = knn_shapley_values(train_x, train_y, test_x, test_y, 5)
    monkeypatch.setattr("recexp.importance.shapley.BLOCK_CELLS", 120)       # 2 validation rows per block
    seen = []
    blocked = knn_shapley_values(train_x, train_y, test_x, test_y, 5, progress=lambda f, m: seen.append(f))
    assert np.allclose(whole, blocked) and len(seen) == 10 and seen[-1] == 1.0


@pytest.mark.parametrize("space", ["features", "embedding"])
def test_knn_shapley_on_a_run_values_misclassified_rows_lower(run_store, plain_run, space):
    run = TrainedRun.load(run_store, plain_run)
    values = get_method("knn_shapley", k=5, space=space).compute(run).values["value"].to_numpy()
    assert values.shape == (len(run.train),) and np.isfinite(values).all()
    correct = run.matrix("correct")[:, -1] > 0.5
    assert values[~correct].mean() < values[correct].mean()
    with pytest.raises(InvalidParameterError, match="'k' is"):
        get_method("knn_shapley", k=len(run.train) + 1).compute(run)
