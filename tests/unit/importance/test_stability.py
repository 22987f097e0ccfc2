"""Agreement, consistently harmful rows and the cleanlab cross-check, on hand-made results with known answers."""

import numpy as np
import pandas as pd
import pytest

from recexp.errors import InvalidParameterError
from recexp.importance import ImportanceResult, TrainedRun
from recexp.importance.stability import (consistently_harmful, cross_check, label_issue_flags, label_quality,
                                         out_of_sample_probabilities, rank_agreement)


def made(run_id: str, method: str, values: dict[int, float], synthetic: dict[int, float] | None = None,
         label: int = 0) -> ImportanceResult:
    """A result whose real row with source row ``r`` has value ``values[r]`` (plus synthetic rows)."""
    synthetic = synthetic or {}
    sources = list(values) + list(synthetic)
    frame = pd.DataFrame({"row": np.arange(len(sources)), "value": list(values.values()) + list(synthetic.values()),
                          "label": label, "class": "view",
                          "is_synthetic": [False] * len(values) + [True] * len(synthetic), "source_row": sources})
    return ImportanceResult(run_id=run_id, method=method, params={}, seed=0, values=frame, seconds=0.0)


def test_rank_agreement_is_spearman_on_shared_real_rows():
    a = made("r1", "el2n", {0: 1, 1: 2, 2: 3, 3: 4, 4: 5})
    reversed_ = made("r1", "tracin", {0: 50, 1: 40, 2: 30, 3: 20, 4: 10}, synthetic={0: -99.0})
    # Shares rows 1..4 with a; ranks there [2, 1, 4, 3] against [1, 2, 3, 4]: rho = 1 - 6 * 4 / (4 * 15) = 0.6.
    other_run = made("r2", "el2n", {1: 0.2, 2: 0.1, 3: 0.4, 4: 0.3, 9: 7})
    table = rank_agreement([a, reversed_, other_run])
    assert list(table.columns) == ["run_a", "run_b", "method_a", "method_b", "shared_rows", "spearman"]
    assert table[["run_a", "run_b", "method_a", "method_b"]].values.tolist() == [
        ["r1", "r1", "el2n", "tracin"], ["r1", "r2", "el2n", "el2n"], ["r1", "r2", "tracin", "el2n"]]
    assert table["shared_rows"].tolist() == [5, 4, 4]
    assert table["spearman"].tolist() == pytest.approx([-1.0, 0.6, -0.6])
    constant = made("r3", "forgetting", {0: 0, 1: 0, 2: 0})
    assert np.isnan(rank_agreement([a, constant])["spearman"].iloc[0])
    assert rank_agreement([a]).empty


def test_consistently_harmful_rows_are_low_in_every_result():
    a = made("r1", "el2n", {row: float(row) for row in range(10)})                  # low 20%: rows 0, 1
    b = made("r1", "tracin", {**{row: 10.0 + row for row in range(10)}, 0: 0.0, 2: 1.0})   # low: rows 0, 2
    harmful = consistently_harmful([a, b], quantile=0.2)
    assert list(harmful.columns) == ["source_row", "label", "class", "results", "mean_rank", "mean_value"]
    assert harmful["source_row"].tolist() == [0]
    assert harmful["results"].tolist() == [2]
    assert harmful["mean_rank"].iloc[0] == pytest.approx(0.1) and harmful["mean_value"].iloc[0] == 0.0
    # A run without row 1: with min_results=1 row 1 only has to be low where it appears.
    c = made("r2", "el2n", {row: float(row) for row in (0, 2, 3, 4, 5, 6, 7, 8, 9, 10)})   # low: rows 0, 2
    assert consistently_harmful([a, c], quantile=0.2)["source_row"].tolist() == [0]
    assert consistently_harmful([a, c], quantile=0.2, min_results=1)["source_row"].tolist() == [0, 1]
    with pytest.raises(InvalidParameterError, match="'quantile' must be"):
        consistently_harmful([a], quantile=1.5)
    with pytest.raises(InvalidParameterError, match="'min_results' must be"):
        consistently_harmful([a, b], min_results=3)


def test_cross_check_counts_the_overlap_with_flagged_rows():
    result = made("r1", "el2n", {row: float(row) for row in range(10)})            # lowest 30%: rows 0, 1, 2
    flags = np.array([True, False, True, False, False, False, False, False, True, True])
    check = cross_check(result, flags, quantile=0.3)
    assert check == {"rows": 10, "flagged": 4, "lowest": 3, "overlap": 2, "precision": pytest.approx(2 / 3),
                     "recall": 0.5, "expected_overlap": pytest.approx(1.2), "lift": pytest.approx(2 / 1.2)}
    with pytest.raises(InvalidParameterError, match="one bool per training row"):
        cross_check(result, flags[:5])


def test_cleanlab_flags_the_flipped_labels_of_a_noisy_run(run_store, noisy_run):
    run_id, flipped = noisy_run
    run = TrainedRun.load(run_store, run_id)
    proba = out_of_sample_probabilities(run, seed=0)
    assert proba.shape == (len(run.train), run.train.schema.n_classes)
    assert np.allclose(proba.sum(axis=1), 1.0)
    flags = label_issue_flags(run, proba=proba)
    is_flipped = np.isin(run.source_rows, flipped)
    assert flags.dtype == bool and flags.shape == (len(run.train),)
    assert flags[is_flipped].mean() > 3 * flags[~is_flipped].mean()
    quality = label_quality(run, proba=proba)
    assert quality[is_flipped].mean() < quality[~is_flipped].mean()
