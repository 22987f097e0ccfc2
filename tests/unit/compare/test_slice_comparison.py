"""The primary score per slice (recexp.compare.slices) and `compare --by-slice --json`, on Taobao purchase runs."""

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, matthews_corrcoef

from recexp.compare import compare, compare_by_slice
from recexp.compare.slices import MIN_CLASS_ROWS, MIN_SLICE_ROWS
from recexp.compare.stats import paired_seed_test, seed_interval
from recexp.errors import InvalidDataError
from recexp.runs import SQLiteRunStore
from recexp.slices import slice_test_rows
from recexp.spec import RunSpec, prepare_data

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ("slice", "group", "metric", "mean", "ci_low", "ci_high", "n_test_rows")


@pytest.fixture(scope="module")
def comparison(taobao_grid_home):
    return compare(SQLiteRunStore(taobao_grid_home), experiment="taobao purchase", n_bootstrap=0)


@pytest.fixture(scope="module")
def sliced(comparison):
    return compare_by_slice(comparison)


@pytest.fixture(scope="module")
def labels(comparison):
    dataset, split = prepare_data(RunSpec.from_dict(comparison.predictions[0].run.spec))
    return slice_test_rows(dataset, split)


def test_each_slice_score_is_sklearn_on_the_rows_of_that_slice(comparison, sliced, labels):
    assert sliced.metric == comparison.primary == "pr_auc[buy]"
    buy = comparison.classes.index("buy")
    checked = 0
    for row in sliced.per_seed.itertuples():
        mask = (labels.loc[comparison.predictions[0].rows, row.dimension] == row.segment).to_numpy()
        item = next(p for p in comparison.predictions if p.run.id == row.run_id)
        assert row.n_test_rows == mask.sum()
        positives = item.y[mask] == buy
        if positives.any():
            assert row.score == pytest.approx(average_precision_score(positives, item.proba[mask, buy]))
            checked += 1
        else:
            assert math.isnan(row.score)
    assert checked >= 30


@pytest.mark.parametrize("primary", ["balanced_accuracy", "f1[buy]", "mcc"])
def test_threshold_scores_per_slice_are_sklearn_on_the_rows_of_that_slice(taobao_grid_home, labels, primary):
    """Threshold scores come from per-slice confusion matrices (0.5 threshold, as the full-test scores)."""
    comparison = compare(SQLiteRunStore(taobao_grid_home), experiment="taobao purchase", n_bootstrap=0,
                         primary=primary, with_validation=False)
    sliced = compare_by_slice(comparison)
    assert sliced.metric == primary
    direct = {"balanced_accuracy": balanced_accuracy_score, "mcc": matthews_corrcoef,
              "f1[buy]": lambda y, p: f1_score(y, p, pos_label=1, zero_division=0)}[primary]
    for row in sliced.per_seed.itertuples():
        mask = (labels.loc[comparison.predictions[0].rows, row.dimension] == row.segment).to_numpy()
        item = next(p for p in comparison.predictions if p.run.id == row.run_id)
        if not mask.any():
            assert math.isnan(row.score)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = direct(item.y[mask], (item.proba[mask, 1] >= 0.5).astype(int))
        assert row.score == pytest.approx(expected, abs=1e-12), (row.dimension, row.segment)


def test_slice_intervals_and_differences_are_the_seed_level_statistics(comparison, sliced):
    table = sliced.table
    assert set(table["group"]) == {"none", "class_weights"}
    assert set(table["dimension"]) == {"user", "item", "popularity", "category", "activity"}
    for row in table[table["enough"]].itertuples():
        seeds = sliced.per_seed[(sliced.per_seed["dimension"] == row.dimension)
                                & (sliced.per_seed["segment"] == row.segment)]
        mine = seeds[seeds["group"] == row.group].set_index("pair")["score"]
        mean, low, high = seed_interval(mine.to_numpy())
        assert row.mean == pytest.approx(mean) and row.ci_low == pytest.approx(max(low, 0.0))
        assert row.ci_high == pytest.approx(min(high, 1.0)) and row.n_seeds == 3
        if row.group == "class_weights":
            base = seeds[seeds["group"] == "none"].set_index("pair")["score"]
            test = paired_seed_test(mine.loc[[0, 1, 2]].to_numpy(), base.loc[[0, 1, 2]].to_numpy())
            assert (row.delta, row.delta_low, row.delta_high) == pytest.approx((test.mean, test.low, test.high))
            assert row.n_pairs == 3 and row.better == (row.delta > 0)
    # the whole test split is the union of the two "user" slices, and each dimension covers every test row once
    for dimension, part in table[table["group"] == "none"].groupby("dimension"):
        assert part["n_test_rows"].sum() == len(comparison.predictions[0].y), dimension


def test_sparse_slices_are_marked_not_hidden(sliced):
    table = sliced.table
    thin = table[~table["enough"]]
    assert len(thin)                            # the Taobao sample's top categories hold few buys in the test period
    assert thin["reason"].str.len().gt(0).all()
    for row in thin.itertuples():
        assert (row.n_test_rows < MIN_SLICE_ROWS or f"at least {MIN_CLASS_ROWS}" in row.reason
                or "seed" in row.reason), row
    # every slice appears for every strategy, marked or not
    assert table.groupby("slice")["group"].nunique().eq(2).all()
    assert any("marked, not hidden" in note for note in sliced.notes)
    assert table.loc[table["enough"], "reason"].eq("").all()


def test_the_worst_slice_is_the_lowest_score_among_slices_with_enough_rows(sliced):
    worst = sliced.worst().set_index("group")
    for group, part in sliced.table[sliced.table["enough"]].groupby("group"):
        assert worst.loc[group, "worst_mean"] == part["mean"].min()
        assert worst.loc[group, "worst_slice"] == part.loc[part["mean"].idxmin(), "slice"]
    losses = sliced.table[sliced.table["enough"] & (sliced.table["delta"] < 0)]
    if len(losses):
        assert worst.loc["class_weights", "most_lost_delta"] == losses["delta"].min()
    sentences = sliced.worst_sentences()
    assert len(sentences) == 2 and sentences[0].startswith("none scores worst on ")


def test_table_task_runs_have_no_slices(yeast_grid, tmp_path):
    store = yeast_grid.build(tmp_path / "yeast", "yeast")
    with pytest.raises(InvalidDataError, match="behaviour log"):
        compare_by_slice(compare(store, experiment="yeast", n_bootstrap=0))
    completed = subprocess.run(
        [sys.executable, "-m", "recexp", "compare", "--experiment", "yeast", "--bootstrap", "0", "--by-slice",
         "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(tmp_path / "yeast")})
    assert completed.returncode != 0 and not completed.stdout
    assert "defined for tasks built from a behaviour log" in completed.stderr and "Traceback" not in completed.stderr


def test_cli_by_slice_json_contract(taobao_grid_home, sliced, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "recexp", "compare", "--experiment", "taobao purchase", "--bootstrap", "0",
         "--by-slice", "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(taobao_grid_home)})
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    records = payload["slices"]
    assert len(records) == len(sliced.table)
    for record in records:
        assert set(CONTRACT) <= set(record)
        assert record["metric"] == "pr_auc[buy]" and isinstance(record["n_test_rows"], int)
        assert record["group"] in ("none", "class_weights") and ": " in record["slice"]
        assert isinstance(record["enough"], bool)
    table = sliced.table.set_index(["slice", "group"])
    for record in records:
        expected = table.loc[(record["slice"], record["group"])]
        for key in ("mean", "ci_low", "ci_high", "delta", "delta_low", "delta_high"):
            value = expected[key]
            assert (record[key] is None) if not np.isfinite(value) else record[key] == pytest.approx(value), key
    assert {w["group"] for w in payload["by_slice"]["worst_slices"]} == {"none", "class_weights"}
    assert payload["primary"] == "pr_auc[buy]" and payload["groups"]      # the comparison is still there


def test_cli_by_slice_text(taobao_grid_home, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "recexp", "compare", "--experiment", "taobao purchase", "--bootstrap", "0",
         "--by-slice"], capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(taobao_grid_home)})
    assert completed.returncode == 0, completed.stderr
    assert "by slice (pr_auc[buy]" in completed.stdout and "item: new" in completed.stdout
    assert completed.stdout.count("worst slice: ") == 2
