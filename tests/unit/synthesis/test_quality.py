"""The quality report's metrics against values computed by hand on tiny frames, then on real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from recexp.dataset import LABEL, FeatureSchema
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.synthesis.quality import (
    MAX_PAIRS, closest_distances, column_pairs, column_shapes, detection, efficacy, exact_copies, ks_complement,
    pair_trends, privacy, quality_report, quality_score, tv_complement,
)


# --- column shapes ------------------------------------------------------------------------------
def test_ks_complement_by_hand():
    # ECDFs of [1, 2, 3] and [1, 2, 4] differ most on [3, 4): 1 - 2/3
    assert ks_complement(np.array([1.0, 2, 3]), np.array([1.0, 2, 4])) == pytest.approx(1 - 1 / 3)
    assert ks_complement(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == 1.0
    assert ks_complement(np.array([0.0, 0]), np.array([5.0, 6])) == 0.0
    # missing values are ignored; nothing observed on one side gives no score
    assert ks_complement(np.array([1.0, np.nan]), np.array([1.0])) == 1.0
    assert math.isnan(ks_complement(np.array([np.nan]), np.array([1.0])))


def test_tv_complement_by_hand():
    # frequencies (2/3, 1/3) against (1/3, 2/3): total variation 1/3
    assert tv_complement(np.array(["a", "a", "b"]), np.array(["a", "b", "b"])) == pytest.approx(2 / 3)
    # a category only the synthetic side has counts fully: (1, 0, 0) vs (0.5, 0, 0.5) -> 0.5
    assert tv_complement(np.array([1, 1]), np.array([1, 3])) == pytest.approx(0.5)
    # missing is a category of its own
    assert tv_complement(np.array([1.0, np.nan]), np.array([1.0, 1.0])) == pytest.approx(0.5)


def test_column_shapes_table():
    real = pd.DataFrame({"x": [1.0, 2, 3], "c": [1, 1, 2]})
    synthetic = pd.DataFrame({"x": [1.0, 2, 4], "c": [1, 2, 2]})
    table = column_shapes(real, synthetic, ["x"], ["c"]).set_index("column")
    assert table.loc["x", "metric"] == "KSComplement" and table.loc["c", "metric"] == "TVComplement"
    assert table.loc["x", "score"] == pytest.approx(2 / 3)
    assert table.loc["c", "score"] == pytest.approx(2 / 3)


# --- pair trends --------------------------------------------------------------------------------
def test_correlation_similarity_by_hand():
    real = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 4]})
    opposite = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [4.0, 3, 2, 1]})
    table = pair_trends(real, opposite, ["x", "y"], [])
    record = table.iloc[0]
    assert record["metric"] == "CorrelationSimilarity"
    assert record["real_association"] == pytest.approx(1.0) and record["synthetic_association"] == pytest.approx(-1.0)
    assert record["score"] == pytest.approx(0.0)          # 1 - |1 - (-1)| / 2
    # r = 0.8 (hand: x=[1,2,3,4], y=[1,3,2,4]) against r = 1: score 1 - 0.2 / 2
    partial = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 3, 2, 4]})
    assert pair_trends(real, partial, ["x", "y"], [])["score"].iloc[0] == pytest.approx(0.9)
    # a constant column has no correlation: no score
    flat = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [2.0, 2, 2, 2]})
    assert math.isnan(pair_trends(real, flat, ["x", "y"], [])["score"].iloc[0])


def test_contingency_similarity_by_hand():
    real = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 0, 1, 1]})
    swapped = pd.DataFrame({"a": [0, 0, 1, 1], "b": [1, 1, 0, 0]})
    half = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 1, 0]})
    assert pair_trends(real, real, [], ["a", "b"])["score"].iloc[0] == pytest.approx(1.0)
    assert pair_trends(real, swapped, [], ["a", "b"])["score"].iloc[0] == pytest.approx(0.0)
    record = pair_trends(real, half, [], ["a", "b"]).iloc[0]
    # joint (0.5, 0, 0, 0.5) vs (0.25 each): total variation 0.5
    assert record["score"] == pytest.approx(0.5)
    assert record["real_association"] == pytest.approx(1.0)      # Cramér's V of a perfect association
    assert record["synthetic_association"] == pytest.approx(0.0)


def test_mixed_pair_bins_numeric_column_at_real_edges():
    real = pd.DataFrame({"x": np.arange(10, dtype=float), "c": [0] * 5 + [1] * 5})
    same = real.copy()
    # shifting every synthetic x into the top bin breaks the pair: only the c=1 rows of the top bin overlap
    moved = pd.DataFrame({"x": np.full(10, 9.0), "c": [0] * 5 + [1] * 5})
    assert pair_trends(real, same, ["x"], ["c"])["score"].iloc[0] == pytest.approx(1.0)
    assert pair_trends(real, moved, ["x"], ["c"])["score"].iloc[0] == pytest.approx(0.1)


def test_pairs_of_a_wide_table_are_sampled_and_the_report_says_so():
    # 1,500 columns have 1,124,250 pairs: scoring them all took minutes; a sample of MAX_PAIRS is scored
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(1500)]
    real = pd.DataFrame(rng.normal(size=(60, 1500)), columns=columns)
    real[LABEL] = np.repeat([0, 1], 30)
    table = pair_trends(real, real, columns, [])
    assert len(table) == MAX_PAIRS
    assert not table.duplicated(["column_1", "column_2"]).any()
    assert (table["column_1"] != table["column_2"]).all()
    assert table["score"].to_numpy() == pytest.approx(1.0)          # real against itself, pair by pair
    assert table.equals(pair_trends(real, real, columns, []))        # the same seed draws the same pairs
    assert column_pairs(4) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]   # few columns: every pair
    schema = FeatureSchema(numeric=tuple(columns), categorical=(), classes=("a", "b"))
    report = quality_report(real, real, schema, efficacy_test=False, detector="logistic")
    assert len(report.overall.pair_trends) == MAX_PAIRS
    assert any(f"{MAX_PAIRS} of the 1,125,750 column pairs" in note for note in report.notes)  # 1,501 with the label


def test_quality_score_is_mean_of_shapes_and_pairs():
    real = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 0, 1, 1]})
    half = pd.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 1, 0]})
    # both columns keep their marginals (1.0 each), the pair scores 0.5
    assert quality_score(real, half, [], ["a", "b"]) == pytest.approx((1.0 + 0.5) / 2)


# --- privacy ------------------------------------------------------------------------------------
def test_closest_distance_by_hand():
    real = pd.DataFrame({"x": [0.0, 10.0], "c": [1, 2]})
    synthetic = pd.DataFrame({"x": [5.0, 25.0, np.nan, 0.0], "c": [1, 2, 2, 1]})
    distance = closest_distances(synthetic, real, ["x"], ["c"])
    # (5, 1): to (0, 1) (0.5 + 0) / 2 = 0.25; (25, 2): |25-10|/10 capped at 1 -> (1 + 0)/2 vs (1 + 1)/2
    # (nan, 2): one side missing counts 1 -> (1 + 0) / 2; (0, 1): an exact copy
    assert distance == pytest.approx([0.25, 0.5, 0.5, 0.0])


def test_closest_distance_excluding_self_is_nearest_other_row():
    real = pd.DataFrame({"x": [0.0, 1.0, 10.0]})
    distance = closest_distances(real, real, ["x"], [], exclude_self=True)
    assert distance == pytest.approx([0.1, 0.1, 0.9])


def test_exact_copies_counted_per_synthetic_row():
    real = pd.DataFrame({"x": np.array([1.0, 2.0, np.nan], dtype=np.float32), "c": [1, 2, 3]})
    synthetic = pd.DataFrame({
        "x": [1.0, 1.0, np.nan, 2.0, 2.0000001, 1.0],
        "c": [1, 1, 3, 3, 2, 2],
    })
    # rows 0 and 1 (a duplicate counts twice) and row 2 (missing equals missing) copy real rows;
    # row 3 mixes two rows, row 4 is off by a hair, row 5 has another code
    assert exact_copies(real, synthetic, ["x", "c"]) == 3
    result = privacy(real, synthetic, ["x"], ["c"])
    assert result["exact_copies"] == 3 and result["exact_copy_share"] == pytest.approx(0.5)


def test_privacy_ratio_flags_memorisation():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    fresh = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    copied = real.sample(200, random_state=1).reset_index(drop=True) + 1e-4
    fair = privacy(real, fresh, ["x", "y"], [])
    leaky = privacy(real, copied, ["x", "y"], [], real_test=fresh)
    assert 0.6 < fair["dcr_ratio"] < 1.6
    assert leaky["dcr_ratio"] < 0.05 and leaky["exact_copies"] == 0


# --- detection and efficacy ---------------------------------------------------------------------
def test_detection_tells_shifted_data_apart_and_not_the_same_distribution():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=600), "c": rng.integers(0, 3, 600)})
    same = pd.DataFrame({"x": rng.normal(size=600), "c": rng.integers(0, 3, 600)})
    shifted = pd.DataFrame({"x": rng.normal(3, 1, size=600), "c": rng.integers(0, 3, 600)})
    for detector in ("logistic", "gbm"):
        alike = detection(real, same, ["x"], ["c"], detector=detector)
        apart = detection(real, shifted, ["x"], ["c"], detector=detector)
        assert alike["auc"] < 0.62 and alike["score"] > 0.75
        assert apart["auc"] > 0.95 and apart["score"] < 0.1
    with pytest.raises(InvalidParameterError, match="detector"):
        detection(real, same, ["x"], ["c"], detector="svm")


def test_efficacy_on_real_behaviour_data(small_behavior_train, behavior_valid):
    schema = small_behavior_train.schema
    real = small_behavior_train.frame
    only_views = real.loc[real[LABEL] == 0]
    result = efficacy(real, only_views, list(schema.numeric), list(schema.categorical), schema.n_classes,
                      real_test=behavior_valid.frame, minority=3)
    assert result["holdout"] == "real_test" and result["test_rows"] == len(behavior_valid)
    assert 0 < result["real"]["f1_macro"] <= 1 and 0 <= result["real"]["minority_f1"] <= 1
    assert result["synthetic"] is None          # one class cannot train a classifier of four
    assert result["augmented"]["f1_macro"] > 0


# --- the report ---------------------------------------------------------------------------------
def test_report_on_real_rows_against_themselves(behavior_train, behavior_valid):
    schema = behavior_train.schema
    report = quality_report(behavior_train.frame, behavior_train.frame, schema, real_test=behavior_valid.frame,
                            efficacy_test=False, max_rows=len(behavior_train))
    assert report.score == pytest.approx(1.0)
    assert report.overall.column_shapes["score"].min() == pytest.approx(1.0)
    assert report.overall.privacy["exact_copy_share"] == 1.0
    assert report.minority_class == "buy" and report.minority.rows_real == behavior_train.class_counts()["buy"]
    assert report.minority.detection["auc"] < 0.6
    payload = report.to_dict()
    json.dumps(payload, allow_nan=False)
    assert payload["notes"] and "sequence" in payload["notes"][0]
    assert {r["column"] for r in payload["overall"]["column_shapes"]} == \
        set(schema.numeric) | set(schema.categorical) | {LABEL}


def test_report_rejects_missing_columns_and_unknown_minority(behavior_train):
    schema = behavior_train.schema
    with pytest.raises(InvalidDataError, match="lack"):
        quality_report(behavior_train.frame, behavior_train.frame.drop(columns=[schema.numeric[0]]), schema)
    with pytest.raises(InvalidParameterError, match="minority"):
        quality_report(behavior_train.frame, behavior_train.frame, schema, minority="refund", efficacy_test=False)


def test_report_without_minority_rows_says_so():
    schema = FeatureSchema(numeric=("x",), categorical=(), classes=("no", "yes"))
    real = pd.DataFrame({"x": np.arange(20, dtype=np.float32), LABEL: [0] * 15 + [1] * 5})
    synthetic = real.loc[real[LABEL] == 0].reset_index(drop=True)
    report = quality_report(real, synthetic, schema, efficacy_test=False)
    assert report.minority is None and "yes" in report.notes[-1]
