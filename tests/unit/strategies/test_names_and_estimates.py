"""One display name per strategy on every page, the picker's family groups, and the preview time estimates."""

from __future__ import annotations

import pytest

from recexp.errors import InvalidParameterError
from recexp.strategies import FAMILIES, STRATEGIES, get_strategy, strategies_by_family, strategy_label


def test_every_strategy_has_one_label_with_its_title_id_and_family():
    labels = {name: strategy_label(name) for name in STRATEGIES}
    assert labels["smote"] == "SMOTE (smote) · balancing"
    assert labels["vae"] == "Conditional VAE (vae) · synthesis"
    assert len(set(labels.values())) == len(labels)
    for name, label in labels.items():
        assert label.startswith(STRATEGIES[name].title) and f"({name})" in label
        assert label.endswith(f"· {STRATEGIES[name].family}")


def test_a_label_of_an_unknown_strategy_is_a_sentence():
    with pytest.raises(InvalidParameterError, match="no strategy called 'smot'"):
        strategy_label("smot")


def test_families_group_every_strategy_once_in_the_dashboard_order():
    groups = strategies_by_family()
    assert list(groups) == [family for family in FAMILIES if family in groups]
    assert sorted(name for names in groups.values() for name in names) == sorted(STRATEGIES)
    for family, names in groups.items():
        assert all(STRATEGIES[name].family == family for name in names)
    assert groups["synthesis"] == ["gan", "vae", "gaussian_copula"]


def test_quick_strategies_have_no_estimate_and_slow_ones_grow_with_rows():
    assert get_strategy("smote").estimated_seconds(50_000) is None
    assert get_strategy("random_under").estimated_seconds(50_000) is None
    for name in ("svm_smote", "smote_enn", "smote_tomek", "gaussian_copula", "gan", "vae"):
        strategy = get_strategy(name)
        small, large = strategy.estimated_seconds(1_000), strategy.estimated_seconds(50_000)
        assert 0 < small < large, name
    for name in ("svm_smote", "smote_enn", "smote_tomek"):          # brute-force neighbour searches over every row
        strategy = get_strategy(name, knn_backend="sklearn")
        assert strategy.estimated_seconds(20_000) > 2 * strategy.estimated_seconds(10_000), name


@pytest.mark.parametrize("name", ["smote_enn", "smote_tomek"])
def test_the_estimate_follows_the_neighbour_backend(name):
    def estimate(backend, rows=10_000):
        return get_strategy(name, knn_backend=backend).estimated_seconds(rows)

    # the default ('auto': a KD-tree on large searches) grows about linearly and previews live at 10,000 rows
    assert estimate("auto") < 2 < estimate("sklearn")
    assert estimate("auto", 1_000_000) < estimate("sklearn", 1_000_000) / 50
    assert 100 < estimate("auto", 1_000_000) / estimate("auto") < 200
    assert estimate("kdtree") == estimate("auto")
    # a backend without its own measured cost is charged scikit-learn's (brute force, the slowest measured)
    assert estimate("torch") == estimate("sklearn")


@pytest.mark.parametrize("name", ["gan", "vae"])
def test_a_neural_generator_estimate_grows_with_epochs_and_counts_its_scoring(name):
    def estimate(**params):
        return get_strategy(name, **params).estimated_seconds(10_000)

    assert estimate(epochs=10, eval_every=0) < estimate(epochs=20, eval_every=0)
    assert estimate(epochs=20, eval_every=0) < estimate(epochs=20, eval_every=5) < estimate(epochs=20, eval_every=1)
    assert estimate(quality_report=False) < estimate(quality_report=True)
    # the Strategy Lab's default preview (10,000 rows, default settings) is far from live
    assert estimate() > 10


def test_an_estimate_checks_the_parameters_first():
    with pytest.raises(InvalidParameterError, match="'epochs'"):
        get_strategy("vae", epochs=0).estimated_seconds(1_000)
