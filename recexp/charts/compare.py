"""Plotly figures of a :class:`recexp.compare.Comparison`: scores with intervals, per-class heat maps,
ROC / PR curves, confusion matrices and their difference to the baseline, capture curves and
per-sample training-loss distributions.

Every function takes the comparison (or a plain frame) and returns a ``plotly.graph_objects.Figure``;
none reads the store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from sklearn import metrics as skm

from recexp.charts import frame_note
from recexp.charts.training import training_curves
from recexp.i18n import _, format_percent
from recexp.metrics import class_key, predict_labels

_PALETTE = qualitative.Plotly


def _colours(groups: list[str]) -> dict[str, str]:
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(groups)}


def run_colours(comparison) -> dict[str, str]:
    """Run id -> the colour of its strategy, the one that strategy has on every Compare chart."""
    colours = _colours(comparison.groups)
    return {item.run.id: colours[item.group] for item in comparison.predictions if not item.tta}


def metric_bars(comparison, metrics: list[str]) -> go.Figure:
    """Grouped bars: one bar per strategy for each score, error bars = 95% interval over seeds.

    A bar carries ``*`` above it when the verdict on the primary score (Holm-adjusted, at least three
    paired seeds) finds it different from the baseline, ``°`` when an exploratory score is significant
    after Benjamini-Hochberg.
    """
    summary = comparison.summary
    colours = _colours(comparison.groups)
    figure = go.Figure()
    for group in comparison.groups:
        part = summary[(summary["group"] == group) & summary["metric"].isin(metrics)].set_index("metric")
        part = part.reindex([m for m in metrics if m in part.index])
        mean = part["mean"].to_numpy(float)
        upper = np.nan_to_num(part["ci_high"].to_numpy(float) - mean)
        lower = np.nan_to_num(mean - part["ci_low"].to_numpy(float))
        marks = [("*" if primary else "°") if significant else ""
                 for significant, primary in zip(part["significant"], part["is_primary"])]
        figure.add_trace(go.Bar(
            name=group, x=list(part.index), y=mean, marker_color=colours[group], text=marks, textposition="outside",
            error_y={"type": "data", "array": upper, "arrayminus": lower, "visible": True},
            customdata=np.c_[part["ci_low"], part["ci_high"], part["delta"], part["n_seeds"]],
            hovertemplate=f"{group}<br>%{{x}}: %{{y:.4f}}<br>" + _(
                "95% interval [{low}, {high}]<br>Δ vs baseline {delta}<br>{seeds} seeds").format(
                low="%{customdata[0]:.4f}", high="%{customdata[1]:.4f}", delta="%{customdata[2]:+.4f}",
                seeds="%{customdata[3]}") + "<extra></extra>"))
    figure.update_layout(barmode="group", title=_("Test scores (mean over seeds, 95% interval; * verdict vs "
                                                  "{baseline} on the primary, ° exploratory)").format(
                             baseline=comparison.baseline),
                         yaxis_title=_("score"), height=430,
                         legend_title_text=_("strategy"))
    return figure


def per_class_heatmap(comparison, metric: str = "recall") -> go.Figure:
    """Strategies x classes heat map of a per-class score (mean over seeds), text: value and Δ vs baseline."""
    summary = comparison.summary.set_index(["group", "metric"])
    groups, classes = comparison.groups, list(comparison.classes)
    values = np.full((len(groups), len(classes)), np.nan)
    text = [["" for _ in classes] for _ in groups]
    for i, group in enumerate(groups):
        for j, name in enumerate(classes):
            key = (group, class_key(metric, name))
            if key in summary.index:
                row = summary.loc[key]
                values[i, j] = row["mean"]
                delta = f"<br>Δ {row['delta']:+.3f}{' °' if row['significant'] else ''}" if np.isfinite(
                    row["delta"]) else ""
                text[i][j] = f"{row['mean']:.3f}{delta}"
    figure = go.Figure(go.Heatmap(z=values, x=classes, y=groups, text=text, texttemplate="%{text}",
                                  colorscale="Viridis", zmin=0, zmax=1, colorbar={"title": metric},
                                  hovertemplate="%{y}<br>" + _("class {name}").format(name="%{x}")
                                  + ": %{z:.4f}<extra></extra>"))
    figure.update_layout(title=_("Per-class {score} (mean over seeds; Δ vs {baseline}, ° exploratory "
                                 "significant after BH)").format(score=metric, baseline=comparison.baseline),
                         xaxis_title=_("class"), yaxis={"autorange": "reversed"}, height=120 + 60 * len(groups))
    return figure


def curves(comparison, class_name: str, kind: str = "roc") -> go.Figure:
    """Overlaid ROC (``kind="roc"``) or precision-recall (``"pr"``) curves of one class, one line per run."""
    k = list(comparison.classes).index(class_name)
    colours = _colours(comparison.groups)
    figure = go.Figure()
    shown: set[str] = set()
    for item in comparison.predictions:
        truth = item.y == k
        if truth.all() or not truth.any():
            continue
        if kind == "roc":
            x, y, _thresholds = skm.roc_curve(truth, item.proba[:, k])
            area = skm.auc(x, y)
        else:
            y, x, _thresholds = skm.precision_recall_curve(truth, item.proba[:, k])
            area = skm.average_precision_score(truth, item.proba[:, k])
        step = max(1, len(x) // 400)                      # keep the page light; the shape survives
        figure.add_trace(go.Scatter(
            x=x[::step], y=y[::step], mode="lines", name=item.group, legendgroup=item.group,
            showlegend=item.group not in shown, line={"color": colours[item.group], "width": 1.5},
            hovertemplate=_("{label} (area {area:.3f})").format(label=item.label, area=area)
            + "<br>%{x:.3f}, %{y:.3f}<extra></extra>"))
        shown.add(item.group)
    if kind == "roc":
        figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                                    name=_("chance"), hoverinfo="skip"))
        figure.update_layout(title=_("ROC curves of class {name} (one line per run)").format(name=class_name),
                             xaxis_title=_("false positive rate"), yaxis_title=_("true positive rate"))
    else:
        base_rate = float(np.mean(comparison.predictions[0].y == k))
        figure.add_trace(go.Scatter(x=[0, 1], y=[base_rate, base_rate], mode="lines",         # named in the legend,
                                    line={"dash": "dot", "color": "grey"}, hoverinfo="skip",  # not written on curves
                                    name=_("base rate {rate} (random ranking)").format(rate=f"{base_rate:.3f}")))
        figure.update_layout(title=_("Precision-recall curves of class {name} (one line per run)").format(
                                 name=class_name),
                             xaxis_title=_("recall"), yaxis_title=_("precision"))
    figure.update_layout(height=430, legend_title_text=_("strategy"))
    return figure


def _mean_confusion(items, n_classes: int) -> np.ndarray:
    matrices = []
    for item in items:
        binary = n_classes == 2
        confusion = skm.confusion_matrix(item.y, predict_labels(item.proba, 0.5 if binary else None),
                                         labels=np.arange(n_classes)).astype(np.float64)
        totals = confusion.sum(axis=1, keepdims=True)
        matrices.append(np.divide(confusion, totals, out=np.full_like(confusion, np.nan), where=totals > 0))
    return np.nanmean(np.stack(matrices), axis=0)


def _confusion_grid(matrices: dict[str, np.ndarray], classes: list[str], zmin: float, zmax: float,
                    colorscale: str, number_format: str, title: str) -> go.Figure:
    """Heat maps of class x class matrices side by side, one per title (rows: true, columns: predicted)."""
    figure = make_subplots(rows=1, cols=len(matrices), subplot_titles=list(matrices), horizontal_spacing=0.04)
    digits = 3 if "+" in number_format else 2
    for i, (name, matrix) in enumerate(matrices.items(), start=1):
        figure.add_trace(go.Heatmap(z=matrix, x=classes, y=classes, zmin=zmin, zmax=zmax, colorscale=colorscale,
                                    showscale=i == len(matrices), text=np.round(matrix, digits), texttemplate="%{text}",
                                    hovertemplate=f"{name}<br>" + _("true {true} → predicted {predicted}").format(
                                        true="%{y}", predicted="%{x}") + f": %{{z:{number_format}}}<extra></extra>"),
                          row=1, col=i)
        figure.update_xaxes(title_text=_("predicted"), row=1, col=i)
        figure.update_yaxes(autorange="reversed", row=1, col=i, showticklabels=i == 1)
    figure.update_yaxes(title_text=_("true"), row=1, col=1)
    figure.update_layout(title=title, height=360 + 10 * len(classes))
    return figure


def confusion_matrices(comparison) -> go.Figure:
    """Row-normalised confusion matrices side by side (share of each true class, mean over seeds)."""
    classes = list(comparison.classes)
    matrices = {group: _mean_confusion(comparison.group_predictions(group), len(classes))
                for group in comparison.groups}
    return _confusion_grid(matrices, classes, 0, 1, "Blues", ".3f",
                           _("Confusion matrices (rows: true class, normalised; mean over seeds)"))


def confusion_difference(comparison) -> go.Figure:
    """Each strategy's normalised confusion matrix minus the baseline's (red: more of that cell)."""
    classes = list(comparison.classes)
    others = [g for g in comparison.groups if g != comparison.baseline]
    if comparison.baseline is None or not others:
        figure = go.Figure()
        figure.update_layout(title=_("Difference to the baseline: no baseline or no other strategy in this "
                                     "comparison"))
        return figure
    base = _mean_confusion(comparison.group_predictions(comparison.baseline), len(classes))
    matrices = {f"{g} − {comparison.baseline}": _mean_confusion(comparison.group_predictions(g), len(classes)) - base
                for g in others}
    limit = max([1e-9] + [float(np.nanmax(np.abs(m))) for m in matrices.values() if np.isfinite(m).any()])
    return _confusion_grid(matrices, classes, -limit, limit, "RdBu_r", "+.3f",
                           _("Confusion difference to the baseline (diagonal up = more rows right)"))


def capture_curve(comparison, positive: str, top_fraction: float | None = None, users: bool = True) -> go.Figure:
    """Cumulative gains: share of all ``positive`` units captured when acting on the top x% scored."""
    k = list(comparison.classes).index(positive)
    colours = _colours(comparison.groups)
    figure = go.Figure()
    grid = np.linspace(0, 1, 101)
    for group in comparison.groups:
        shares = []
        for item in comparison.group_predictions(group):
            truth, score = item.y == k, item.proba[:, k]
            queries = item.queries_users() if users else None
            if queries is not None:
                frame = pd.DataFrame({"g": queries, "p": truth, "s": score}).groupby("g", sort=False)
                truth, score = frame["p"].any().to_numpy(), frame["s"].max().to_numpy()
            order = np.argsort(-score, kind="stable")
            gained = np.r_[0, np.cumsum(truth[order])] / max(truth.sum(), 1)
            shares.append(np.interp(grid, np.linspace(0, 1, len(gained)), gained))
        figure.add_trace(go.Scatter(x=grid, y=np.mean(shares, axis=0), mode="lines", name=group,
                                    line={"color": colours[group]},
                                    hovertemplate=f"{group}<br>" + _("top {share} captures {captured}").format(
                                        share="%{x:.0%}", captured="%{y:.1%}") + "<extra></extra>"))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("random"),
                                line={"dash": "dot", "color": "grey"}))
    if top_fraction is not None:                         # named in the legend, not written over the curves
        figure.add_trace(go.Scatter(x=[top_fraction, top_fraction], y=[0, 1], mode="lines", hoverinfo="skip",
                                    line={"dash": "dash", "color": "black", "width": 1},
                                    name=_("acting on the top {share}").format(share=format_percent(top_fraction))))
    figure.update_layout(title=_("Share of all '{positive}' captured by acting on the top-scored (mean over "
                                 "seeds)").format(positive=positive),
                         xaxis={"title": _("share acted on"), "tickformat": ".0%"},
                         yaxis={"title": _("share of '{positive}' captured").format(positive=positive),
                                "tickformat": ".0%"}, height=420)
    return figure


def recall_at_precision_bars(frame: pd.DataFrame, positive: str, min_precision: float) -> go.Figure:
    """Bars of :meth:`Comparison.recall_at_precision` with the interval over seeds."""
    upper = np.nan_to_num(frame["ci_high"] - frame["recall"])
    lower = np.nan_to_num(frame["recall"] - frame["ci_low"])
    unreachable = frame["recall"].isna()
    figure = go.Figure(go.Bar(x=frame["group"], y=frame["recall"].fillna(0.0),
                              marker_color=list(_colours(list(frame["group"])).values()),
                              error_y={"type": "data", "array": upper, "arrayminus": lower},
                              text=np.where(unreachable, _("no run reaches this precision"), ""),
                              textposition="outside", hovertemplate="%{x}: " + _("recall {recall}").format(recall="%{y:.3f}")
                              + "<extra></extra>"))
    figure.update_layout(title=_("Recall of '{positive}' at precision ≥ {precision} (mean over seeds)").format(
                             positive=positive, precision=format_percent(min_precision)),
                         yaxis={"title": _("recall"), "range": [0, 1.05]}, height=380)
    return figure


def loss_distributions(losses: pd.DataFrame) -> go.Figure:
    """Per strategy, the distribution of each training row's mean loss over epochs, real vs synthetic rows.

    ``losses`` has columns ``group``, ``is_synthetic`` and ``loss`` (see :func:`recexp.compare.sample_losses`);
    a sample is stated in the title.
    """
    figure = go.Figure()
    for synthetic, colour in ((False, "#636EFA"), (True, "#EF553B")):
        part = losses[losses["is_synthetic"] == synthetic]
        if part.empty:
            continue
        figure.add_trace(go.Box(x=part["group"], y=part["loss"],
                                name=_("synthetic rows") if synthetic else _("real rows"),
                                marker_color=colour, boxpoints=False))
    figure.update_layout(boxmode="group", height=420, yaxis={"title": _("mean training loss per row"), "type": "log"},
                         title=_("Sample importance: each training row's mean loss over epochs (real vs synthetic)")
                               + frame_note(losses))
    return figure


def report_figures(comparison, metrics: list[str], positive: str, epoch_metrics: pd.DataFrame | None = None,
                   sample_losses: pd.DataFrame | None = None) -> dict[str, go.Figure]:
    """The figures of the HTML report, by section title."""
    figures = {_("Scores with 95% intervals"): metric_bars(comparison, metrics),
               _("Recall per class"): per_class_heatmap(comparison, "recall"),
               _("F1 per class"): per_class_heatmap(comparison, "f1"),
               _("ROC curves ({positive})").format(positive=positive): curves(comparison, positive, "roc"),
               _("Precision-recall curves ({positive})").format(positive=positive): curves(comparison, positive, "pr"),
               _("Confusion matrices"): confusion_matrices(comparison),
               _("Confusion difference to the baseline"): confusion_difference(comparison),
               _("Capture of '{positive}'").format(positive=positive): capture_curve(comparison, positive, 0.1)}
    if epoch_metrics is not None and len(epoch_metrics):
        labels = {p.run.id: p.label for p in comparison.predictions if not p.tta}     # a TTA arm trains nothing
        figures[_("Training curves")] = training_curves(epoch_metrics, labels, colours=run_colours(comparison))
    if sample_losses is not None and len(sample_losses):
        figures[_("Per-sample training loss")] = loss_distributions(sample_losses)
    return figures
