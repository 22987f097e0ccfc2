"""The Importance page's frames and figures on hand-made results: stacking, cleanlab marks, panels per run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recexp.charts.importance import importance_by_strategy, rank_agreement_heatmap, value_distributions
from recexp.importance.base import ImportanceResult
from recexp.importance.explore import mark_label_issues, stacked_values, summary_table


def _result(run_id: str, values, synthetic, source_rows) -> ImportanceResult:
    n = len(values)
    frame = pd.DataFrame({"row": np.arange(n), "value": np.asarray(values, dtype=float), "label": np.arange(n) % 2,
                          "class": np.where(np.arange(n) % 2, "buy", "view"), "is_synthetic": synthetic,
                          "source_row": source_rows})
    return ImportanceResult(run_id=run_id, method="mean_loss", params={}, seed=0, values=frame, seconds=0.1)


A = _result("a", [0.1, -2.0, 0.3, -1.5], [False, False, False, True], [10, 11, 12, 11])
B = _result("b", [-3.0, 0.2, 0.1], [False, False, False], [10, 11, 12])


def test_stacked_values_label_every_run_and_sample_large_ones():
    frame = stacked_values([A, B], {"a": "run A"}, max_rows_per_run=3)
    assert list(frame["run"].drop_duplicates()) == ["run A", "b"]
    assert (frame["run_id"] == "a").sum() == 3 and (frame["run_id"] == "b").sum() == 3
    table = summary_table([A, B], {"a": "run A", "b": "run B"})
    assert table.columns[0] == "run" and set(table["run"]) == {"run A", "run B"}


def test_label_issue_marks_count_runs_that_flag_the_same_real_row():
    harmful = pd.DataFrame({"source_row": [10, 11, 12], "class": ["view", "buy", "view"]})
    # run a flags its real row 11 and the synthetic copy of 11 (which does not count); run b flags 10 and 11
    flags = {"a": np.array([False, True, False, True]), "b": np.array([True, True, False])}
    marked = mark_label_issues(harmful, [A, B], flags).set_index("source_row")
    assert marked["cleanlab_flags"].to_dict() == {10: 1, 11: 2, 12: 0}
    assert marked["cleanlab_runs"].to_dict() == {10: 2, 11: 2, 12: 2}
    assert marked["cleanlab_flagged"].to_dict() == {10: True, 11: True, 12: False}
    only_a = mark_label_issues(harmful, [A, B], {"a": flags["a"]}).set_index("source_row")
    assert only_a["cleanlab_runs"].to_dict() == {10: 1, 11: 1, 12: 1}


def test_figures_draw_a_panel_per_run_and_both_origins():
    figure = value_distributions(stacked_values([A, B]), "class")
    assert {trace.xaxis for trace in figure.data} == {"x", "x2"}
    assert {trace.name for trace in figure.data} == {"real rows", "synthetic rows"}
    by_code = stacked_values([A, B]).drop_duplicates("label").sort_values("label")["class"].astype(str).tolist()
    assert list(figure.layout.xaxis.categoryarray) == by_code         # classes in label-code order
    by_origin = value_distributions(A.values, "origin")
    assert [trace.name for trace in by_origin.data] == ["real", "synthetic"]
    agreement = pd.DataFrame({"run_a": ["a"], "run_b": ["b"], "method_a": ["m"], "method_b": ["m"],
                              "shared_rows": [3], "spearman": [-0.5]})
    heat = rank_agreement_heatmap(agreement).data[0]
    assert np.allclose(np.asarray(heat.z, dtype=float), [[1.0, -0.5], [-0.5, 1.0]])
    compared = pd.concat([A.values.assign(group="smote"), B.values.assign(group="none")])
    assert len(importance_by_strategy(compared, "Mean training loss").data) == 2
