"""Training charts: one legend entry per run, every curve drawn, unfinished values left as gaps."""

import math

import pandas as pd
import pytest

from recexp.charts.training import final_scores, training_curves


def _curves(runs: dict[str, int]) -> pd.DataFrame:
    """Per-epoch metrics as the run store returns them; the objective (``train_loss``, e.g. focal) is far
    below the cross-entropy, as it is for a focal loss."""
    rows = []
    for run_id, epochs in runs.items():
        for epoch in range(1, epochs + 1):
            for key in ("train_loss", "train_cross_entropy", "valid_loss", "valid_balanced_accuracy",
                        "valid_f1_macro"):
                value = math.nan if (run_id == "b" and key == "valid_loss" and epoch == 2) else 1.0 / epoch
                rows.append({"run_id": run_id, "epoch": epoch, "key": key,
                             "value": value / 10 if key == "train_loss" else value})
    return pd.DataFrame(rows)


def test_training_curves_list_each_run_once_in_the_legend():
    figure = training_curves(_curves({"a": 3, "b": 2}), labels={"a": "none / mlp / seed 0", "b": "smote / mlp / seed 0"})
    assert len(figure.data) == 8                                         # four curves per run
    shown = [trace.name for trace in figure.data if trace.showlegend is not False]
    assert shown == ["none / mlp / seed 0", "smote / mlp / seed 0"]
    assert {trace.legendgroup for trace in figure.data} == {"a", "b"}
    dashed = [trace for trace in figure.data if trace.line.dash == "dash"]
    assert len(dashed) == 4 and all("validation cross-entropy" in t.hovertemplate
                                    or "validation macro F1" in t.hovertemplate for t in dashed)
    gap = next(t for t in figure.data if t.legendgroup == "b" and "validation cross-entropy" in t.hovertemplate)
    assert list(gap.y) == [1.0, None]                                    # a NaN loss is a gap, not a zero
    assert figure.layout.xaxis.dtick == 1


def test_the_loss_panel_compares_cross_entropy_with_cross_entropy():
    """The training line is the plain cross-entropy, not the (focal, weighted) objective, and says so."""
    figure = training_curves(_curves({"a": 3}))
    training = [t for t in figure.data if t.xaxis == "x" and t.line.dash != "dash"]
    assert len(training) == 1 and "training cross-entropy" in training[0].hovertemplate
    assert list(training[0].y) == [1.0, 0.5, pytest.approx(1 / 3)]      # not train_loss (a tenth of it)
    assert figure.layout.annotations[0].text == "Cross-entropy"
    assert "cross-entropy" in figure.layout.yaxis.title.text
    older = _curves({"a": 2}).query("key != 'train_cross_entropy'")      # recorded before train_cross_entropy
    assert all("training" not in t.hovertemplate for t in training_curves(older).data)


def test_training_curves_and_scores_draw_nothing_before_the_first_epoch():
    empty = pd.DataFrame(columns=["run_id", "epoch", "key", "value"])
    assert len(training_curves(empty).data) == 0
    runs = pd.DataFrame({"strategy": ["none", "none", "smote"], "model": "mlp", "seed": [0, 1, 0],
                         "balanced_accuracy": [0.3, 0.32, 0.45]})
    figure = final_scores(runs)
    assert [trace.name for trace in figure.data] == ["none / mlp", "smote / mlp"]
    assert list(figure.data[0].y) == [0.3, 0.32]
    assert len(final_scores(runs.iloc[:0]).data) == 0
