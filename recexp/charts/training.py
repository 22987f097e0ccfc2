"""Plotly figures of training runs: per-epoch curves and final test scores per strategy.

Both take plain frames (as :meth:`recexp.runs.SQLiteRunStore.epoch_metrics` returns, or built from
``Run.metrics``), so they work for live and finished runs alike.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from recexp.i18n import N_, _

#: (metric key, panel) pairs drawn by :func:`training_curves`; dashed lines are validation. The loss panel
#: compares like with like: plain (unweighted) cross-entropy on both splits, whatever objective trained the
#: model (``train_loss``, the focal or weighted objective, is not drawn). Runs recorded before
#: ``train_cross_entropy`` existed show their validation loss alone.
CURVES = (("train_cross_entropy", 1), ("valid_loss", 1), ("valid_balanced_accuracy", 2), ("valid_f1_macro", 2))
_DASHED = {"valid_loss", "valid_f1_macro"}
#: Hover names of the curves.
_NAMES = {"train_cross_entropy": N_("training cross-entropy (mean over the epoch's steps)"),
          "valid_loss": N_("validation cross-entropy"), "valid_balanced_accuracy": N_("validation balanced accuracy"),
          "valid_f1_macro": N_("validation macro F1")}


def training_curves(curves: pd.DataFrame, labels: dict[str, str] | None = None,
                    title: str = N_("Cross-entropy and validation scores per epoch"),
                    colours: dict[str, str] | None = None) -> go.Figure:
    """Cross-entropy (training solid, validation dashed) and validation scores per epoch, one colour per run.

    Both loss lines are the plain, unweighted cross-entropy, so a focal or class-weighted objective does
    not make the training line look lower (or higher) than the validation line for reasons other than fit.

    The legend has one entry per run (clicking it hides or shows all of that run's lines); the line
    style says which curve a line is, and hovering names it.

    Parameters
    ----------
    curves : DataFrame
        Long format with columns ``run_id``, ``epoch``, ``key``, ``value``.
    labels : dict, optional
        Run id -> legend label (default: the id).
    title : str
    colours : dict, optional
        Run id -> line colour (default: a colour per run). Compare passes its strategy colours
        (:func:`recexp.charts.compare.run_colours`), so a strategy has one colour on every chart.

    Returns
    -------
    plotly.graph_objects.Figure
        Two panels: "Cross-entropy" and "Validation score"; empty panels when no epoch has finished yet.
    """
    labels = labels or {}
    figure = make_subplots(rows=1, cols=2, subplot_titles=(_("Cross-entropy"), _("Validation score")),
                           horizontal_spacing=0.1)
    palette = qualitative.Plotly
    run_ids = list(dict.fromkeys(curves["run_id"])) if len(curves) else []
    for i, run_id in enumerate(run_ids):
        colour = (colours or {}).get(run_id, palette[i % len(palette)])
        run = curves[curves["run_id"] == run_id]
        name = labels.get(run_id, run_id)
        in_legend = False
        for key, col in CURVES:
            series = run[run["key"] == key].sort_values("epoch")
            if series.empty:
                continue
            values = [None if not math.isfinite(v) else v for v in series["value"]]
            figure.add_trace(go.Scatter(
                x=series["epoch"].tolist(), y=values, mode="lines+markers", name=name, showlegend=not in_legend,
                legendgroup=run_id, line={"color": colour, "dash": "dash" if key in _DASHED else "solid"},
                marker={"size": 5, "symbol": "circle-open" if key in _DASHED else "circle"},
                hovertemplate=f"{name}<br>{_(_NAMES[key])}<br>" + _("epoch {epoch}").format(epoch="%{x}")
                + ": %{y:.4f}<extra></extra>"), row=1, col=col)
            in_legend = True
    figure.update_xaxes(title_text=_("epoch"), dtick=1 if len(curves) and curves["epoch"].max() <= 20 else None)
    figure.update_yaxes(title_text=_("cross-entropy, unweighted: training (solid), validation (dashed)"), row=1, col=1)
    figure.update_yaxes(title_text=_("balanced accuracy (solid), macro F1 (dashed)"), row=1, col=2)
    figure.update_layout(title=_(title), height=420, legend={"font": {"size": 10}}, margin={"t": 70})
    return figure


def final_scores(runs: pd.DataFrame, metric: str = "balanced_accuracy") -> go.Figure:
    """Test score of every finished run, grouped by strategy (and model), one point per seed.

    Parameters
    ----------
    runs : DataFrame
        One row per run with columns ``strategy``, ``model``, ``seed`` and ``metric``.
    metric : str
        The column to plot.
    """
    figure = go.Figure()
    if len(runs) and metric in runs:
        groups = runs.assign(group=runs["strategy"].astype(str) + " / " + runs["model"].astype(str))
        for i, (group, part) in enumerate(groups.groupby("group", sort=False)):
            colour = qualitative.Plotly[i % len(qualitative.Plotly)]
            figure.add_trace(go.Box(y=part[metric].tolist(), name=group, boxpoints="all", jitter=0.3,
                                    pointpos=0, marker={"color": colour},
                                    text=[_("seed {seed}").format(seed=s) for s in part["seed"]],
                                    hovertemplate="%{text}: %{y:.4f}<extra>" + group + "</extra>"))
    figure.update_layout(title=_("Test {score} per strategy (one point per seed)").format(score=metric.replace("_", " ")),
                         yaxis_title=metric, showlegend=False, height=380)
    return figure
