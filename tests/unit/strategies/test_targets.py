"""The requested target mix is what comes out; infeasible requests get a sentence saying what to change."""

from __future__ import annotations

import numpy as np
import pytest

from recexp.errors import InvalidParameterError
from recexp.strategies import STRATEGIES, get_strategy

EXACT_OVER = ["random_over", "smote", "smotenc", "smoten"]
EXACT_UNDER = ["random_under", "near_miss", "cluster_centroids"]


@pytest.mark.parametrize("name", EXACT_OVER)
def test_over_samplers_reach_per_class_counts(name, small_train):
    train = small_train["behavior"]
    before = train.class_counts()
    target = {"buy": before["buy"] + 137, "cart": before["cart"] + 59}
    result = get_strategy(name, sampling_strategy=target).apply(train, seed=3)
    assert result.report.after == {**before, **target}
    assert result.report.target == target
    assert result.report.added == {c: target.get(c, before[c]) - before[c] for c in before}


@pytest.mark.parametrize("name", EXACT_UNDER)
def test_under_samplers_reach_per_class_counts(name, small_train):
    train = small_train["behavior"]
    before = train.class_counts()
    target = {"view": 250, "cart": 90}
    result = get_strategy(name, sampling_strategy=target).apply(train, seed=3)
    assert result.report.after == {**before, **target}
    assert result.report.target == target          # read back from imbalanced-learn's resolved target


def test_presets_and_ratio_follow_imbalanced_learn(small_train):
    train = small_train["behavior"]
    before = train.class_counts()
    majority, smallest = max(before.values()), min(before, key=before.get)
    minority = get_strategy("random_over", sampling_strategy="minority").apply(train, seed=0).report.after
    assert minority == {**before, smallest: majority}
    auto = get_strategy("smote").apply(train, seed=0).report.after
    assert set(auto.values()) == {majority}
    under = get_strategy("random_under").apply(train, seed=0).report
    assert set(under.after.values()) == {min(before.values())}
    assert under.target == {c: min(before.values()) for c in before if c != smallest}   # 'auto': all but the minority

    binary = small_train["purchase"]
    counts = binary.class_counts()
    after = get_strategy("smote", sampling_strategy=0.25).apply(binary, seed=0).report.after
    assert after == {"no_buy": counts["no_buy"], "buy": int(0.25 * counts["no_buy"])}
    after = get_strategy("random_under", sampling_strategy=0.5).apply(binary, seed=0).report.after
    assert after == {"no_buy": int(counts["buy"] / 0.5), "buy": counts["buy"]}


def test_approximate_samplers_say_when_they_miss_the_target(small_train):
    result = get_strategy("adasyn").apply(small_train["behavior"], seed=0)
    report = result.report
    if report.after != {c: max(report.before.values()) for c in report.before}:
        assert any("did not reach the target mix exactly" in note for note in report.notes)
    grown = [c for c in report.before if report.before[c] < max(report.before.values())]
    assert all(report.after[c] > report.before[c] for c in grown)


@pytest.mark.parametrize("name", ["gaussian_noise", "feature_masking", "mixup", "sequence_crop", "sequence_mask",
                                  "sequence_reorder"])
def test_expansion_factors_per_class_and_balance(name, small_train):
    train = small_train["behavior"]
    before = train.class_counts()
    per_class = get_strategy(name, factor={"buy": 2.0, "fav": 0.5}).apply(train, seed=1).report.after
    assert per_class == {**before, "buy": 3 * before["buy"], "fav": before["fav"] + round(0.5 * before["fav"])}
    balanced = get_strategy(name, factor="balance").apply(train, seed=1).report.after
    assert set(balanced.values()) == {max(before.values())}
    doubled = get_strategy(name, factor=1.0).apply(train, seed=1).report.after
    assert doubled == {c: 2 * n for c, n in before.items()}


def test_k_neighbors_larger_than_a_class_names_the_class_and_the_fix(small_train):
    train = small_train["purchase"]
    buy = train.class_counts()["buy"]
    for name in ("smote", "borderline_smote", "smote_enn", "smote_tomek", "kmeans_smote", "smoten"):
        with pytest.raises(InvalidParameterError) as caught:
            get_strategy(name, k_neighbors=buy).apply(train, seed=0)
        message = str(caught.value)
        assert "'buy'" in message and f"{buy:,} training rows" in message and f"at most {buy - 1}" in message, message
    with pytest.raises(InvalidParameterError, match=rf"n_neighbors={buy}.*at most {buy - 1}"):
        get_strategy("adasyn", n_neighbors=buy).apply(train, seed=0)
    # the same k works once the class that is too small is left out of the target mix
    result = get_strategy("smote", k_neighbors=buy, sampling_strategy={"no_buy": train.class_counts()["no_buy"]})
    assert result.apply(train, seed=0).report.after == train.class_counts()


def test_impossible_target_mixes_get_sentences(small_train):
    behavior, purchase = small_train["behavior"], small_train["purchase"]
    counts = behavior.class_counts()
    with pytest.raises(InvalidParameterError, match="only works with two classes.*4"):
        get_strategy("smote", sampling_strategy=0.5).apply(behavior, seed=0)
    with pytest.raises(InvalidParameterError, match=rf"fewer than the {counts['cart']:,} it already has"):
        get_strategy("smote", sampling_strategy={"cart": 10}).apply(behavior, seed=0)
    with pytest.raises(InvalidParameterError, match=rf"more than the {counts['view']:,} it has"):
        get_strategy("random_under", sampling_strategy={"view": counts["view"] + 1}).apply(behavior, seed=0)
    with pytest.raises(InvalidParameterError, match="'purchase'.*Its classes are: view, cart, fav, buy"):
        get_strategy("random_over", sampling_strategy={"purchase": 10}).apply(behavior, seed=0)
    with pytest.raises(InvalidParameterError, match="Set a ratio of at least"):
        get_strategy("smote", sampling_strategy=0.0001).apply(purchase, seed=0)
    with pytest.raises(InvalidParameterError, match="no class called|not have"):
        get_strategy("mixup", factor={"nope": 1.0}).apply(behavior, seed=0)


def test_sampler_failures_become_sentences_and_the_strategy_still_works_after(small_train, numeric_only):
    train = numeric_only(small_train["behavior"])
    # one cluster can never hold a class at a 60% share: imbalanced-learn's RuntimeError becomes a sentence
    with pytest.raises(InvalidParameterError, match="KMeansSMOTE could not resample.*Change the parameters"):
        get_strategy("kmeans_smote", n_clusters=2, cluster_balance_threshold=0.9).apply(train, seed=0)
    assert get_strategy("kmeans_smote").apply(train, seed=0).report.rows_after > len(train)


def test_strategies_that_need_missing_feature_kinds_say_so(small_train, numeric_only):
    train = numeric_only(small_train["purchase"])
    with pytest.raises(InvalidParameterError, match="SMOTENC needs categorical features"):
        get_strategy("smotenc").apply(train, seed=0)
    from dataclasses import replace
    no_sequences = replace(train, schema=replace(train.schema, sequences={}))
    with pytest.raises(InvalidParameterError, match="behaviour-sequence features"):
        get_strategy("sequence_crop").apply(no_sequences, seed=0)


def test_weighting_schemes(small_train):
    train = small_train["behavior"]
    counts = np.array(list(train.class_counts().values()), dtype=float)
    y = train.y
    for scheme, expected in (("balanced", 1 / counts), ("inverse_sqrt", 1 / np.sqrt(counts)),
                             ("effective_number", (1 - 0.99) / (1 - 0.99 ** counts))):
        result = get_strategy("class_weights", scheme=scheme, beta=0.99).apply(train, seed=0)
        weights = result.dataset.frame["sample_weight"].to_numpy()
        assert np.isclose(weights.mean(), 1.0)
        per_class = np.array([weights[y == c][0] for c in range(len(counts))])
        assert np.allclose(per_class / per_class[0], expected / expected[0])
        assert result.loss is None and result.train_overrides() == {}
    equal = get_strategy("class_weights", scheme="effective_number", beta=0.0).apply(train, seed=0)
    assert np.allclose(equal.dataset.frame["sample_weight"], 1.0)


def test_focal_loss_is_carried_to_the_trainer(small_train):
    from recexp.models.trainer import TrainConfig

    result = get_strategy("focal_loss", gamma=1.5, alpha="balanced").apply(small_train["purchase"], seed=0)
    assert result.loss == {"name": "focal", "gamma": 1.5}
    config = TrainConfig(**result.train_overrides())
    config.validate()
    assert config.loss == "focal" and config.focal_gamma == 1.5
    weights = result.dataset.frame.groupby("label")["sample_weight"].first()
    assert weights[1] > weights[0]                                  # alpha weights the rare class up
    plain = get_strategy("focal_loss").apply(small_train["purchase"], seed=0)
    assert (plain.dataset.frame["sample_weight"] == 1.0).all()


def test_registered_names_have_exact_flags_that_hold(small_train):
    train = small_train["behavior"]
    for name, cls in STRATEGIES.items():
        if cls.exact_target and cls.family == "balancing":
            report = cls().apply(train, seed=0).report
            for cls_name, wanted in (report.target or {}).items():
                assert report.after[cls_name] == wanted, (name, cls_name)


def test_runaway_targets_are_refused_before_any_work(small_train):
    train = small_train["behavior"]
    with pytest.raises(InvalidParameterError, match="would add .* rows, more than the 50,000,000"):
        get_strategy("random_over", sampling_strategy={"buy": 60_000_000}).apply(train, seed=0)
    with pytest.raises(InvalidParameterError, match="Lower 'factor'"):
        get_strategy("gaussian_noise", factor=100.0).apply(
            type(train)(frame=train.frame.iloc[[0] * 600_000].reset_index(drop=True), schema=train.schema,
                        task=train.task, fingerprint=train.fingerprint), seed=0)


def test_an_integer_ratio_means_the_same_as_the_float(small_train):
    train = small_train["purchase"]
    as_int = get_strategy("random_over", sampling_strategy=1).apply(train, seed=0).report.after
    as_float = get_strategy("random_over", sampling_strategy=1.0).apply(train, seed=0).report.after
    assert as_int == as_float == {c: max(train.class_counts().values()) for c in train.schema.classes}
