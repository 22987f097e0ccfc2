"""Plotly figures of sample importance: value distributions per class and real vs synthetic (one run or
several side by side), value against training loss, point-removal curves, rank agreement between runs
and methods, and the Compare page's per-strategy distributions.

Every function takes plain frames (see :mod:`recexp.importance.explore`, :mod:`recexp.importance.removal`
and :mod:`recexp.importance.stability`) and returns a ``plotly.graph_objects.Figure``; none reads the store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from recexp.charts import frame_note, sample_note
from recexp.i18n import N_, _, format_integer

ORIGIN_COLOURS = {"real": "#636EFA", "synthetic": "#EF553B"}
ORDER_COLOURS = {"lowest": "#EF553B", "random": "#7F7F7F"}
_PALETTE = qualitative.Plotly
_VALUE_AXIS = N_("value (higher = more valuable)")
#: Legend names of the rows of each origin (translated where drawn).
_ORIGIN_ROWS = {"real": N_("real rows"), "synthetic": N_("synthetic rows")}
_ORIGINS = {"real": N_("real"), "synthetic": N_("synthetic")}


def _origin(frame: pd.DataFrame) -> pd.Series:
    return np.where(frame["is_synthetic"].to_numpy(bool), "synthetic", "real")


def value_distributions(values: pd.DataFrame, by: str = "class", title: str | None = None) -> go.Figure:
    """Box plots of the values per class (``by="class"``) or per origin (``by="origin"``), one panel per run.

    ``values`` has ``value``, ``class`` and ``is_synthetic`` (an :class:`~recexp.importance.ImportanceResult`'s
    ``values``), plus ``run`` (a label) to draw several runs side by side with a shared value axis. With
    ``by="class"`` the boxes are split into real and synthetic rows where the run has both. A sample (see
    :func:`recexp.importance.explore.stacked_values`) is stated in the title.
    """
    if by not in ("class", "origin"):
        raise ValueError(f"by must be 'class' or 'origin', not {by!r}")
    frame = values.assign(origin=_origin(values))
    runs = list(dict.fromkeys(frame["run"])) if "run" in frame else [None]
    figure = make_subplots(rows=1, cols=len(runs), shared_yaxes=True, horizontal_spacing=0.03,
                           subplot_titles=[str(r) for r in runs] if runs != [None] else None)
    shown: set[str] = set()
    for col, run in enumerate(runs, start=1):
        part = frame if run is None else frame[frame["run"] == run]
        if by == "origin":
            for origin, colour in ORIGIN_COLOURS.items():
                rows = part[part["origin"] == origin]
                if rows.empty:
                    continue
                figure.add_trace(go.Box(x=rows["origin"], y=rows["value"], name=_(_ORIGINS[origin]),
                                        marker_color=colour,
                                        boxpoints=False, legendgroup=origin, showlegend=origin not in shown),
                                 row=1, col=col)
                shown.add(origin)
        else:
            for origin, colour in ORIGIN_COLOURS.items():
                rows = part[part["origin"] == origin]
                if rows.empty:
                    continue
                figure.add_trace(go.Box(x=rows["class"].astype(str), y=rows["value"], name=_(_ORIGIN_ROWS[origin]),
                                        marker_color=colour, boxpoints=False, legendgroup=origin,
                                        showlegend=origin not in shown), row=1, col=col)
                shown.add(origin)
    if by == "class" and "label" in frame:                # classes in label-code order (view, cart, fav, buy)
        order = frame.drop_duplicates("label").sort_values("label")["class"].astype(str).tolist()
        figure.update_xaxes(categoryorder="array", categoryarray=order)
    figure.update_layout(boxmode="group", height=420, legend={"orientation": "h", "y": -0.15},
                         title=(title or (_("Values per class, real vs synthetic rows") if by == "class"
                                          else _("Values of real and synthetic rows"))) + frame_note(values))
    figure.update_yaxes(title_text=_(_VALUE_AXIS), row=1, col=1)
    return figure


def value_histogram(values: pd.DataFrame, bins: int = 60) -> go.Figure:
    """Overlaid histograms (share of rows) of the values of real and synthetic rows (a sample stated in the title)."""
    frame = values.assign(origin=_origin(values))
    figure = go.Figure()
    edges = np.histogram_bin_edges(frame["value"].to_numpy(np.float64), bins=bins)
    for origin, colour in ORIGIN_COLOURS.items():
        part = frame.loc[frame["origin"] == origin, "value"]
        if part.empty:
            continue
        figure.add_trace(go.Histogram(x=part, name=f"{_(_ORIGIN_ROWS[origin])} ({format_integer(len(part))})",
                                      marker_color=colour,
                                      opacity=0.6, histnorm="probability",
                                      xbins={"start": edges[0], "end": edges[-1], "size": edges[1] - edges[0]}))
    figure.update_layout(barmode="overlay", height=360,
                         title=_("Distribution of the values, real vs synthetic rows") + frame_note(values),
                         xaxis_title=_(_VALUE_AXIS), yaxis_title=_("share of the rows of its origin"))
    return figure


def value_vs_loss(frame: pd.DataFrame, max_points: int = 5000, random_state: int = 0) -> go.Figure:
    """Scatter of each row's value against its mean training loss, coloured by origin, one symbol per class.

    ``frame`` has ``value``, ``mean_loss``, ``class``, ``is_synthetic`` and ``row``; at most ``max_points``
    rows are drawn (a uniform sample, stated in the title).
    """
    note = sample_note(min(len(frame), max_points), len(frame))
    if len(frame) > max_points:
        frame = frame.sample(max_points, random_state=random_state)
    frame = frame.assign(origin=_origin(frame))
    figure = go.Figure()
    symbols = ["circle", "diamond", "square", "x", "triangle-up", "cross", "star", "hexagon"]
    classes = list(dict.fromkeys(sorted(frame["class"].astype(str))))
    for origin, colour in ORIGIN_COLOURS.items():
        for k, name in enumerate(classes):
            part = frame[(frame["origin"] == origin) & (frame["class"].astype(str) == name)]
            if part.empty:
                continue
            figure.add_trace(go.Scattergl(
                x=part["mean_loss"], y=part["value"], mode="markers", name=f"{name} · {_(_ORIGIN_ROWS[origin])}",
                marker={"color": colour, "symbol": symbols[k % len(symbols)], "size": 5, "opacity": 0.5},
                customdata=part[["row"]].to_numpy(), hovertemplate=_("row {row}<br>mean loss {loss}<br>value {value}").format(
                    row="%{customdata[0]}", loss="%{x:.3f}", value="%{y:.4g}") + "<extra></extra>"))
    figure.update_layout(height=420, title=_("Value against the row's mean training loss") + note,
                         xaxis_title=_("mean training loss over epochs"), yaxis_title=_(_VALUE_AXIS))
    return figure


def removal_curve_figure(curve) -> go.Figure:
    """Test score against the share of rows dropped: lowest-valued first vs random, mean and 95% interval.

    ``curve`` is a :class:`recexp.importance.removal.RemovalCurve`; each seed's score is a faint dot.
    """
    figure = go.Figure()
    summary, points = curve.summary, curve.points
    for order in dict.fromkeys(summary["order"]):
        colour = ORDER_COLOURS.get(order, _PALETTE[0])
        part = summary[summary["order"] == order].sort_values("fraction")
        label = _("lowest values dropped first") if order == "lowest" else _("random rows dropped (control)")
        upper, lower = part["high"] - part["mean"], part["mean"] - part["low"]
        figure.add_trace(go.Scatter(x=part["fraction"] * 100, y=part["mean"], mode="lines+markers", name=label,
                                    line={"color": colour}, legendgroup=order,
                                    error_y={"type": "data", "array": upper.fillna(0), "arrayminus": lower.fillna(0),
                                             "visible": bool(upper.notna().any())},
                                    customdata=part[["runs"]].to_numpy(),
                                    hovertemplate=_("{share} dropped: {score} ({seeds} seeds)").format(
                                        share="%{x:.0f}%", score="%{y:.4f}", seeds="%{customdata[0]}")
                                    + "<extra></extra>"))
        dots = points[points["order"] == order]
        figure.add_trace(go.Scatter(x=dots["fraction"] * 100, y=dots["value"], mode="markers", showlegend=False,
                                    legendgroup=order, marker={"color": colour, "size": 5, "opacity": 0.35},
                                    hovertemplate=_("seed run: {score}").format(score="%{y:.4f}")
                                    + "<extra></extra>"))
    settings = curve.settings
    figure.update_layout(height=420, xaxis={"title": _("share of the {scope} rows dropped (%)").format(
                                                scope=_(settings.get("scope", "all"))),
                                            "ticksuffix": "%"},
                         yaxis_title=_("test {score}").format(score=curve.metric),
                         title=_("Point-removal curve ({method}): mean over seeds, 95% interval").format(
                             method=settings.get("method")))
    return figure


def rank_agreement_heatmap(agreement: pd.DataFrame) -> go.Figure:
    """Spearman rank correlation of the values on shared real rows, for every pair of (run, method).

    ``agreement`` has ``run_a``, ``run_b``, ``method_a``, ``method_b``, ``shared_rows`` and ``spearman``
    (:func:`recexp.importance.stability.rank_agreement`); it is drawn as a symmetric matrix with 1 on the
    diagonal.
    """
    a = agreement["run_a"].astype(str) + " · " + agreement["method_a"].astype(str)
    b = agreement["run_b"].astype(str) + " · " + agreement["method_b"].astype(str)
    labels = list(dict.fromkeys([*a, *b]))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.full((len(labels), len(labels)), np.nan)
    shared = np.zeros_like(matrix)
    np.fill_diagonal(matrix, 1.0)
    for x, y, rho, n in zip(a, b, agreement["spearman"], agreement["shared_rows"]):
        matrix[index[x], index[y]] = matrix[index[y], index[x]] = rho
        shared[index[x], index[y]] = shared[index[y], index[x]] = n
    text = np.where(np.isnan(matrix), "", np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(matrix)))
    figure = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu",
                                  text=text, texttemplate="%{text}", customdata=shared,
                                  hovertemplate="%{y}<br>%{x}<br>" + _("Spearman {rho} on {rows} shared rows").format(
                                      rho="%{z:.3f}", rows="%{customdata:,}") + "<extra></extra>",
                                  colorbar={"title": "Spearman"}))
    figure.update_layout(height=max(360, 60 + 40 * len(labels)),
                         title=_("Rank agreement of the values on the real rows the runs share"))
    return figure


def importance_by_strategy(frame: pd.DataFrame, method_title: str = "value") -> go.Figure:
    """Per strategy (group), box plots of the values of real and synthetic rows, pooled over seeds.

    ``frame`` has ``group``, ``is_synthetic`` and ``value`` (:func:`recexp.compare.sample_importance`); a
    sample is stated in the title.
    """
    figure = go.Figure()
    for origin, colour in ORIGIN_COLOURS.items():
        part = frame[frame["is_synthetic"] == (origin == "synthetic")]
        if part.empty:
            continue
        figure.add_trace(go.Box(x=part["group"], y=part["value"], name=_(_ORIGIN_ROWS[origin]), marker_color=colour,
                                boxpoints=False))
    figure.update_layout(boxmode="group", height=420, yaxis_title=_(_VALUE_AXIS),
                         title=_("Sample importance ({method}) of the training rows, real vs synthetic").format(
                             method=method_title) + frame_note(frame))
    return figure


def attention_profile_figure(profile: pd.DataFrame) -> go.Figure:
    """Share of the attention per sequence position, past behaviour type and category, one panel each.

    ``profile`` is :func:`recexp.importance.attention.attention_profile`'s frame (``by``, ``key``,
    ``mean_weight``, ``share``, ``positions``); panels the profile lacks are left out. When the profile is
    of a sample of the rows, the title says how many of how many.
    """
    titles = {"position": _("per position (0 = most recent)"), "behavior": _("per past behaviour"),
              "category": _("per category (top ones)")}
    kinds = [kind for kind in titles if (profile["by"] == kind).any()]
    figure = make_subplots(rows=1, cols=max(1, len(kinds)), subplot_titles=[titles[k] for k in kinds],
                           horizontal_spacing=0.06)
    for col, kind in enumerate(kinds, start=1):
        part = profile[profile["by"] == kind]
        figure.add_trace(go.Bar(x=part["key"].astype(str), y=part["share"], name=kind, showlegend=False,
                                marker_color=_PALETTE[col - 1], customdata=part[["mean_weight", "positions"]].to_numpy(),
                                hovertemplate="%{x}: " + _("{share} of the attention<br>mean weight {weight} over "
                                                            "{positions} positions").format(
                                    share="%{y:.1%}", weight="%{customdata[0]:.3f}",
                                    positions="%{customdata[1]:,}") + "<extra></extra>"),
                         row=1, col=col)
        figure.update_xaxes(type="category", row=1, col=col)
    figure.update_yaxes(title_text=_("share of the attention"), tickformat=".0%", row=1, col=1)
    note = sample_note(profile.attrs.get("rows", 0), profile.attrs.get("total_rows"))
    figure.update_layout(height=380, title=_("Attention over the behaviour sequence") + note)
    return figure
