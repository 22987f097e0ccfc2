"""The Strategy Lab with a generator: after fitting, the quality scores, real-vs-synthetic histograms, the
pair-difference heat map, the projection and (neural generators) the training curves with the kept epoch."""

from __future__ import annotations

from recexp.strategies import STRATEGIES
from recexp.ui.params import widget_key

UNIT_SCORES = ("Quality score", "Column shapes", "Pair trends", "Detection AUC")


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _chart_count(at) -> int:
    return len(at.get("plotly_chart"))


def _assert_scores(at) -> None:
    assert "Synthesis report" in [h.value for h in at.subheader]
    metrics = _metrics(at)
    for label in UNIT_SCORES:
        assert 0.0 <= float(metrics[label]) <= 1.0, (label, metrics[label])
    assert float(metrics["DCR ratio"]) >= 0
    assert int(metrics["Exact copies"].replace(",", "")) >= 0
    minority = next(label for label in metrics if label.startswith("Quality score, "))
    assert minority.removeprefix("Quality score, ") in {"cart", "fav", "buy"}   # a smallest class, never 'view'
    scores = next(t.value for t in at.table if "what good looks like" in t.value.columns)
    assert {"Quality score", "Detection AUC", "DCR ratio", "Exact copies (share)"} <= set(scores.index)
    assert all(0 <= float(v) <= 1 for v in scores.loc["Quality score"].iloc[:2])


def test_gaussian_copula_shows_scores_histograms_and_heat_map(lab, run_preview):
    lab.selectbox(key="lab_strategy").set_value("gaussian_copula")
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    assert not lab.error
    _assert_scores(lab)
    # class counts, column histogram, pair-difference heat map, projection, feature distribution
    assert _chart_count(lab) == 5
    assert any("fitted in closed form" in c.value for c in lab.caption)
    column = lab.selectbox(key="lab_synthesis_column")
    assert "label" in column.options
    column.set_value("label")
    lab.run()
    assert not lab.exception, lab.exception
    assert _chart_count(lab) == 5

    key = widget_key("lab", STRATEGIES["gaussian_copula"], "quality_report")
    lab.checkbox(key=key).uncheck()
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    assert "Quality score" not in _metrics(lab)
    assert any("quality report is off" in i.value for i in lab.info)


def test_efficacy_and_privacy_are_scored_on_the_validation_split(lab, run_preview):
    """The report's ML efficacy and privacy figures come from held-out real rows: the validation split the
    page locks away from the strategy (never the test split, never the training rows the generator saw)."""
    lab.selectbox(key="lab_strategy").set_value("gaussian_copula")
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    counts = next(t.value for t in lab.table if "validation (locked)" in t.value.columns)
    valid_rows = int(counts["validation (locked)"].sum())
    assert valid_rows > 0
    caption = next(c.value for c in lab.caption if "Efficacy models are tested on" in c.value)
    assert f"{valid_rows:,} held-out real rows the generator never saw" in caption
    assert "saw them" not in caption
    efficacy = next(t.value for t in lab.table if "trained on real" in t.value.index)
    assert {"trained on real", "trained on synthetic", "trained on both"} <= set(efficacy.index)
    assert all(0 <= float(v) <= 1 for v in efficacy["f1_macro"])
    metrics = _metrics(lab)
    assert float(metrics["ML efficacy"]) > 0 and float(metrics["DCR ratio"]) > 0


def test_neural_generator_shows_training_curves_with_the_kept_epoch(lab, run_preview):
    lab.selectbox(key="lab_strategy").set_value("vae")
    lab.run()
    assert not lab.exception, lab.exception
    assert not lab.metric                                           # nothing is fitted before a click
    cls = STRATEGIES["vae"]
    lab.number_input(key=widget_key("lab", cls, "epochs")).set_value(2)
    lab.number_input(key=widget_key("lab", cls, "eval_every")).set_value(1)
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    assert not lab.error
    _assert_scores(lab)
    assert _chart_count(lab) == 6                                   # the five above plus the training curves
    kept = next(c.value for c in lab.caption if "is the one kept" in c.value)
    assert "The checkpoint of epoch" in kept


def test_imputation_is_compared_with_mean_mode(lab, run_preview):
    lab.selectbox(key="lab_strategy").set_value("gaussian_copula")
    lab.run()
    lab.checkbox(key=widget_key("lab", STRATEGIES["gaussian_copula"], "impute_missing")).check()
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    summary = next(t.value for t in lab.table if {"error", "shape"} <= set(t.value.columns))
    assert list(summary.index) == ["GaussianCopula (conditional sampling)", "mean / mode"]
    assert any("missing cells filled" in m.value for m in lab.markdown)
