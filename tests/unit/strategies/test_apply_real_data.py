"""Every registered strategy on the bundled Taobao data, for both tasks: the contract holds.

The output keeps every input column and dtype, adds ``is_synthetic`` (bool) and ``sample_weight``
(float); real rows come back unchanged; new rows never carry a code the data does not have; the
report adds up; and neither the input training frame nor the test split changes.

Strategies that replay a finished source run (``needs_source_run``, e.g. ``importance_weighting``) cannot
run on an arbitrary training sample: they refuse it with a sentence, and their own tests give them a
source run (tests/unit/strategies/test_importance_strategy.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.dataset import IS_SYNTHETIC, ITEM, LABEL, SAMPLE_WEIGHT, USER
from recexp.strategies import STRATEGIES
from recexp.tasks import applies_to

#: Every registered strategy that runs on a training sample alone, per task it serves (the ranking strategies of
#: the next-item task are not offered for these classification tasks).
SELF_CONTAINED = {task: {name: cls for name, cls in STRATEGIES.items()
                         if not getattr(cls, "needs_source_run", False) and applies_to(cls, task)}
                  for task in ("behavior", "purchase")}
CASES = [(name, task) for task, strategies in SELF_CONTAINED.items() for name in strategies]


@pytest.fixture(scope="module")
def outcomes(small_train, task_data, frame_hash):
    """Apply every strategy once per task, recording hashes of the data it must not touch."""
    results = {}
    for task, train in small_train.items():
        dataset, split = task_data[task]
        test_hash, full_hash = frame_hash(dataset.subset(split.test).frame), frame_hash(dataset.frame)
        train_hash = frame_hash(train.frame)
        for name, cls in SELF_CONTAINED[task].items():
            result = cls().apply(train, seed=0)
            results[name, task] = result
            assert frame_hash(train.frame) == train_hash, f"{name} modified its input"
        assert frame_hash(dataset.subset(split.test).frame) == test_hash
        assert frame_hash(dataset.frame) == full_hash
    return results


@pytest.mark.parametrize("name,task", CASES)
def test_output_contract(name, task, outcomes, small_train):
    train, result = small_train[task], outcomes[name, task]
    frame = result.dataset.frame
    assert list(frame.columns) == [*train.frame.columns, IS_SYNTHETIC, SAMPLE_WEIGHT]
    for column in train.frame.columns:
        if column in (USER, ITEM) and STRATEGIES[name].family == "synthesis":   # generated rows get new ids:
            assert frame[column].cat.categories.dtype == train.frame[column].cat.categories.dtype, column
            continue                                                        # their categories are added
        assert frame[column].dtype == train.frame[column].dtype, column
    assert frame[IS_SYNTHETIC].dtype == bool and frame[SAMPLE_WEIGHT].dtype == np.float64
    assert np.isfinite(frame[SAMPLE_WEIGHT]).all() and (frame[SAMPLE_WEIGHT] > 0).all()
    assert len(result.source_rows) == len(frame) and result.source_rows.min() >= 0
    assert result.source_rows.max() < len(train)
    assert result.dataset.schema == train.schema and result.dataset.task == train.task


@pytest.mark.parametrize("name,task", CASES)
def test_real_rows_come_back_unchanged(name, task, outcomes, small_train):
    train, result = small_train[task], outcomes[name, task]
    frame = result.dataset.frame
    real = ~frame[IS_SYNTHETIC].to_numpy()
    got = frame.loc[real, list(train.frame.columns)].reset_index(drop=True)
    expected = train.frame.iloc[result.source_rows[real]].reset_index(drop=True)
    for column in (USER, ITEM):           # a generator's new ids extend the categories; real rows keep their ids
        got[column] = got[column].astype(expected[column].dtype)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("name,task", CASES)
def test_new_rows_carry_only_codes_the_data_has(name, task, outcomes, small_train):
    train, result = small_train[task], outcomes[name, task]
    frame = result.dataset.frame
    new = frame[IS_SYNTHETIC].to_numpy()
    schema = train.schema
    assert (frame.loc[new, LABEL].to_numpy() == train.y[result.source_rows[new]]).all(), "label != source's label"
    for column in schema.categorical:
        assert set(frame.loc[new, column]) <= set(train.frame[column]) | {0}, column
    for group, columns in schema.sequences.items():
        values = frame.loc[new, list(columns)].to_numpy()
        assert values.min(initial=0) >= 0 and values.max(initial=0) <= schema.cardinality[group], group
    for column in schema.numeric:
        values = frame.loc[new, column].to_numpy()
        assert np.isfinite(values[~np.isnan(values)]).all()


@pytest.mark.parametrize("name,task", CASES)
def test_report_adds_up(name, task, outcomes, small_train):
    train, result = small_train[task], outcomes[name, task]
    report = result.report
    assert report.before == train.class_counts()
    assert report.after == result.dataset.class_counts()
    for cls in train.schema.classes:
        assert report.after[cls] == report.before[cls] - report.removed[cls] + report.added[cls], cls
    assert report.rows_after == len(result.dataset)
    assert report.seconds > 0
    assert report.to_dict()["strategy"] == type(STRATEGIES[name]()).__name__


@pytest.mark.parametrize("task", ["behavior", "purchase"])
def test_families_do_what_they_say(task, outcomes, small_train):
    train = small_train[task]
    smallest = min(train.class_counts().values())
    for name, cls in SELF_CONTAINED[task].items():
        report = outcomes[name, task].report
        if cls.family in ("baseline", "weighting"):
            assert report.after == report.before and not any(report.added.values()), name
        if cls.family == "expansion":
            assert not any(report.removed.values()) and sum(report.added.values()) == len(train), name
        if cls.family == "balancing" and cls.sampling_type == "over-sampling" and cls.output == "appended":
            assert min(report.after.values()) > smallest and not any(report.removed.values()), name
        if cls.family == "balancing" and cls.sampling_type != "over-sampling":
            assert not any(report.added.values()) or name == "cluster_centroids", name
            assert sum(report.removed.values()) > 0, name
    weights = outcomes["class_weights", task].dataset
    per_class = weights.frame.groupby(LABEL)[SAMPLE_WEIGHT].sum()
    assert np.allclose(per_class, per_class.iloc[0]), "balanced weights give every class the same total"


@pytest.mark.parametrize("name,params", [("random_under", {}), ("edited_nearest_neighbours", {}),
                                         ("smote", {}), ("class_weights", {})])
def test_report_counts_real_and_synthetic_rows_apart_on_an_expanded_input(name, params, small_train):
    """Chained strategies: on an input that already holds synthetic rows, 'removed' counts real rows only
    and 'added' counts only synthetic rows beyond those of the input (recounted here row by row)."""
    expanded = STRATEGIES["gaussian_noise"](factor=0.5).apply(small_train["behavior"], seed=1).dataset
    result = STRATEGIES[name](**params).apply(expanded, seed=0)
    classes = expanded.schema.classes
    synthetic_in = expanded.frame[IS_SYNTHETIC].to_numpy()
    synthetic_out = result.dataset.frame[IS_SYNTHETIC].to_numpy()
    kept_real = set(result.source_rows[~synthetic_out].tolist())
    for code, cls in enumerate(classes):
        real_rows = np.flatnonzero(~synthetic_in & (expanded.y == code))
        assert result.report.removed[cls] == sum(row not in kept_real for row in real_rows.tolist()), cls
        new_synthetic = int((synthetic_out & (result.dataset.y == code)).sum())
        assert result.report.added[cls] == max(0, new_synthetic - int((synthetic_in & (expanded.y == code)).sum())), cls
    assert result.report.before == expanded.class_counts() and result.report.after == result.dataset.class_counts()
    if name in ("random_under", "edited_nearest_neighbours"):
        assert sum(result.report.removed.values()) > 0
