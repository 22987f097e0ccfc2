"""Plotly figures of the class mix and the long tail, built from :mod:`recexp.imbalance` results.

Each builder takes the statistics object (or the Dataset it summarises) and returns a
``plotly.graph_objects.Figure``; class colours are the same in every figure (class order).

>>> from recexp.data.samples import load_sample
>>> from recexp.imbalance import class_balance
>>> figure = class_balance_chart(class_balance(load_sample("taobao")))
>>> [bar.y for bar in figure.data][0]
(71898, 4307, 2228, 1673)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler
import plotly.graph_objects as go
from plotly.colors import qualitative

from recexp.charts import sample_note
from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import N_, _, format_decimal, format_integer
from recexp.imbalance import LongTail, class_balance

PALETTE = qualitative.Plotly


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """A colour per class, by position (so a dataset's classes keep their colours across figures)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(classes)}


def class_balance_chart(balance: dict[str, Any] | Dataset, log_y: bool = False,
                        title: str | None = None) -> go.Figure:
    """Bar per class with its count, labelled with its share; imbalance ratio and entropy in the title.

    Parameters
    ----------
    balance : dict or Dataset
        What :func:`recexp.imbalance.class_balance` returned, or a dataset to summarise.
    log_y : bool
        Logarithmic count axis, so a 1% class stays visible next to a 90% one.
    title : str, optional
    """
    if isinstance(balance, Dataset):
        balance = class_balance(balance)
    names = list(balance["class_counts"])
    counts = [balance["class_counts"][n] for n in names]
    shares = [balance["shares"][n] for n in names]
    colours = class_colours(names)
    figure = go.Figure(go.Bar(
        x=names, y=counts, marker={"color": [colours[n] for n in names]},
        text=[f"{s:.1%}" for s in shares], textposition="outside", cliponaxis=False,
        hovertemplate=_("{name}: {count} rows ({share})").format(name="%{x}", count="%{y:,}", share="%{text}")
        + "<extra></extra>"))
    ratio, entropy = balance.get("imbalance_ratio"), balance.get("normalised_entropy")
    subtitle = []
    if ratio is not None:
        subtitle.append(_("imbalance ratio {ratio}:1").format(ratio=format_decimal(ratio, 1)))
    if entropy is not None:
        subtitle.append(_("entropy balance {entropy}").format(entropy=format_decimal(entropy, 2)))
    figure.update_layout(
        title=title or (_("Class balance") + (f" ({', '.join(subtitle)})" if subtitle else "")),
        xaxis_title=_("class"), yaxis_title=_("rows"), yaxis_type="log" if log_y else "linear",
        yaxis_dtick=1 if log_y else None, showlegend=False, height=380)     # log: a label per power of ten
    return figure


def sampled_mix_chart(mix: dict[str, dict[str, float]], title: str | None = None) -> go.Figure:
    """The raw class mix (weighted back to the full population) beside the sampled one (rows kept), as shares.

    Parameters
    ----------
    mix : dict
        ``{"sampled": rows per class, "population": weighted rows per class}``
        (:func:`recexp.outofcore.sampled_class_mix`, :func:`recexp.diskbuild.class_mix`).
    title : str, optional
    """
    figure = go.Figure()
    for key, name in (("population", _("raw (weighted)")), ("sampled", _("sampled"))):
        counts = mix[key]
        total = sum(counts.values()) or 1.0
        figure.add_trace(go.Bar(
            name=name, x=list(counts), y=[v / total for v in counts.values()],
            text=[f"{v / total:.1%}" for v in counts.values()], textposition="outside", cliponaxis=False,
            customdata=list(counts.values()),
            hovertemplate=_("{name}: {count} rows ({share})").format(name="%{x}", count="%{customdata:,.0f}",
                                                                      share="%{text}") + "<extra></extra>"))
    figure.update_layout(title=title or _("Class mix: raw and sampled"), barmode="group", xaxis_title=_("class"),
                         yaxis_title=_("share"), yaxis_tickformat=".0%", height=380)
    return figure


def lorenz_chart(tails: LongTail | Sequence[LongTail], title: str = N_("Long tail of activity")) -> go.Figure:
    """Lorenz curves (share of entities vs share of events), Gini coefficient in each legend entry.

    Parameters
    ----------
    tails : LongTail or sequence of LongTail
        From :func:`recexp.imbalance.long_tail` (e.g. items and users).
    """
    tails = [tails] if isinstance(tails, LongTail) else list(tails)
    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("perfect equality (Gini 0)"),
                                  line={"color": "grey", "dash": "dot"}, hoverinfo="skip"))
    for i, tail in enumerate(tails):
        label = f"{tail.entity}s" + (f" ({tail.behavior})" if tail.behavior else "")
        figure.add_trace(go.Scatter(
            x=tail.lorenz["population_share"].tolist(), y=tail.lorenz["value_share"].tolist(), mode="lines",
            name=f"{label}: Gini {tail.gini:.3f}", line={"color": PALETTE[i % len(PALETTE)], "width": 2},
            hovertemplate=_("least active {share} of {label}: {events} of events").format(
                share="%{x:.0%}", label=label, events="%{y:.1%}") + "<extra></extra>"))
    figure.update_layout(title=_(title), xaxis_title=_("share of entities (least active first)"),
                         yaxis_title=_("share of events"), xaxis_tickformat=".0%", yaxis_tickformat=".0%",
                         height=420, legend={"x": 0.02, "y": 0.98})
    return figure


#: A long tail's entity -> the table's row label (translated where shown).
_ENTITIES = {"item": N_("items"), "user": N_("users")}


def long_tail_table(tails: LongTail | Sequence[LongTail]) -> Styler:
    """The long tail's summary as a table an analyst reads: one row per curve, shares as percentages.

    Parameters
    ----------
    tails : LongTail or sequence of LongTail
        From :func:`recexp.imbalance.long_tail`.

    Returns
    -------
    pandas.io.formats.style.Styler
        Index ``activity of`` (e.g. ``items``, ``users (buy)``); columns ``with an event`` (entities with
        at least one event), ``events``, ``Gini`` (0: equal, towards 1: concentrated) and ``top 1% hold``,
        ``top 10% hold``, ``top 20% hold`` (the share of events of the most active 1%, 10%, 20%).
    """
    tails = [tails] if isinstance(tails, LongTail) else list(tails)
    with_event, events = _("with an event"), _("events")
    rows, shares = {}, {}
    for tail in tails:
        entities = _(_ENTITIES.get(tail.entity, tail.entity))
        label = entities + (f" ({tail.behavior})" if tail.behavior else "")     # the behaviour: the data's own
        shares.update({top: _("top {share} hold").format(share=top.removeprefix("top ")) for top in tail.top_shares})
        rows[label] = {with_event: tail.n_entities, events: tail.n_events, "Gini": tail.gini,
                       **{shares[top]: share for top, share in tail.top_shares.items()}}
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis(_("activity of"))
    return frame.style.format({with_event: "{:,}", events: "{:,}", "Gini": "{:.3f}",
                               **{column: "{:.1%}" for column in shares.values()}})


def funnel_chart(stats: pd.DataFrame, group: str | None = None, title: str | None = None) -> go.Figure:
    """The funnel of one group (default: the first, ``"all"`` for an overall funnel): two ``go.Funnel`` traces.

    The first trace is the sequential funnel (``units_in_order``: units that did every earlier stage
    first), labelled with its share of the first stage and of the previous one; the second shows each
    stage counted independently (``units``), with counts only, since a share of the first stage means
    nothing for units that need not have been in it.

    Parameters
    ----------
    stats : pandas.DataFrame
        From :func:`recexp.imbalance.funnel`.
    group : str, optional
        Which group to draw.
    """
    _check_funnel(stats)
    group = stats["group"].iloc[0] if group is None else group
    part = stats[stats["group"] == group].sort_values("stage_index")
    if part.empty:
        raise InvalidParameterError(
            _("The funnel has no group {group!r}; groups: {values}.").format(
              group=group, values=', '.join(map(str, stats['group'].unique()))))
    stages = part["stage"].tolist()
    figure = go.Figure()
    figure.add_trace(go.Funnel(
        name=_("in order: did every earlier stage first"), y=stages, x=part["units_in_order"].tolist(),
        textinfo="value+percent initial", marker={"color": PALETTE[0]},
        hovertemplate=_("%{y}, after every earlier stage: %{x:,} (%{percentInitial:.1%} of the first stage, "
                        "%{percentPrevious:.1%} of the previous)") + "<extra></extra>"))
    figure.add_trace(go.Funnel(
        name=_("each stage counted independently"), y=stages, x=part["units"].tolist(), textinfo="value",
        marker={"color": "#B6BCC8"}, connector={"visible": False},
        hovertemplate=_("%{y}, with or without the earlier stages: %{x:,}") + "<extra></extra>"))
    figure.update_layout(title=title or _("Funnel ({group})").format(group=group), height=400, funnelmode="group",
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure


def funnel_groups_chart(stats: pd.DataFrame, kind: str = "lines", measure: str = "conversion",
                        title: str | None = None) -> go.Figure:
    """Conversion of each later stage per group (segment, day or category): lines or a heatmap.

    Parameters
    ----------
    stats : pandas.DataFrame
        From :func:`recexp.imbalance.funnel` with ``by`` set.
    kind : {"lines", "heatmap"}
    measure : {"conversion", "step_conversion"}
        Share of the first stage's units that went on through every stage in order (the sequential
        funnel of :func:`recexp.imbalance.funnel`), or of the previous stage's.
    """
    _check_funnel(stats)
    if kind not in ("lines", "heatmap"):
        raise InvalidParameterError(_("kind must be 'lines' or 'heatmap', but got {kind!r}.").format(kind=kind))
    if measure not in ("conversion", "step_conversion"):
        raise InvalidParameterError(_("measure must be 'conversion' or "
                                      "'step_conversion', but got {measure!r}.").format(measure=measure))
    later = stats[stats["stage_index"] > 0]
    groups = list(dict.fromkeys(stats["group"]))
    stages = list(dict.fromkeys(later.sort_values("stage_index", kind="stable")["stage"]))
    table = later.pivot(index="group", columns="stage", values=measure).reindex(index=groups, columns=stages)
    what = _("of the first stage, in order") if measure == "conversion" else _("of the previous stage, in order")
    if kind == "heatmap":
        values = table.to_numpy(dtype=float)
        figure = go.Figure(go.Heatmap(
            z=np.where(np.isnan(values), None, values).tolist(), x=stages, y=groups, colorscale="Blues",
            zmin=0, text=[[("" if v != v else f"{v:.1%}") for v in row] for row in values],
            texttemplate="%{text}", colorbar={"title": _("conversion"), "tickformat": ".0%"},
            hovertemplate=f"%{{y}}, %{{x}}: %{{z:.1%}} {what}<extra></extra>"))
        figure.update_layout(yaxis={"autorange": "reversed", "type": "category"}, xaxis_type="category")
    else:
        figure = go.Figure()
        for i, stage in enumerate(stages):
            values = table[stage].to_numpy(dtype=float)
            figure.add_trace(go.Scatter(
                x=groups, y=np.where(np.isnan(values), None, values).tolist(), mode="lines+markers", name=stage,
                line={"color": PALETTE[(i + 1) % len(PALETTE)]},
                hovertemplate=_("{group}: {share} reach {stage} ({what})").format(
                    group="%{x}", share="%{y:.1%}", stage=stage, what=what) + "<extra></extra>"))
        figure.update_layout(yaxis_tickformat=".0%", yaxis_title=_("units {what}").format(what=what),
                             xaxis_type="category")
    figure.update_layout(title=title or _("Funnel conversion per group ({what})").format(what=what), height=420)
    return figure


def class_mix_chart(mix: pd.DataFrame, normalise: bool = True, title: str | None = None) -> go.Figure:
    """Stacked bars of the classes inside each category (shares, or counts with ``normalise=False``).

    Parameters
    ----------
    mix : pandas.DataFrame
        From :func:`recexp.imbalance.class_mix_by_category`.
    """
    required = {"category", "class", "count", "share"}
    if not required <= set(mix.columns):
        raise InvalidParameterError(_("class_mix_chart takes the frame of recexp.imbalance.class_mix_by_category."))
    categories = list(dict.fromkeys(mix["category"]))
    classes = list(dict.fromkeys(mix["class"]))
    colours = class_colours(classes)
    figure = go.Figure()
    for name in classes:
        part = mix[mix["class"] == name].set_index("category").reindex(categories)
        values = part["share" if normalise else "count"].fillna(0).tolist()
        figure.add_trace(go.Bar(
            x=categories, y=values, name=name, marker={"color": colours[name]},
            customdata=part["count"].fillna(0).astype(int).tolist(),
            hovertemplate=_("category {category}").format(category="%{x}") + "<br>"
                          + _("{name}: {count} rows").format(name=name, count="%{customdata:,}")
                          + (" (%{y:.1%})" if normalise else "") + "<extra></extra>"))
    figure.update_layout(barmode="stack", title=title or _("Class mix in the largest categories"),
                         xaxis_title=_("category"), xaxis_type="category",
                         yaxis_title=_("share of rows") if normalise else _("rows"),
                         yaxis_tickformat=".0%" if normalise else None, height=420)
    return figure


def feature_box_chart(distributions: pd.DataFrame, feature: str, title: str | None = None) -> go.Figure:
    """Box per class from precomputed quantiles (whiskers at the 5th and 95th percentiles).

    Parameters
    ----------
    distributions : pandas.DataFrame
        From :func:`recexp.imbalance.feature_distributions` (with its default quantiles).
    feature : str
        The feature to draw.
    """
    needed = {"q05", "q25", "q50", "q75", "q95", "mean"}
    if not needed <= set(distributions.columns):
        raise InvalidParameterError(
            _("feature_box_chart needs the 5/25/50/75/95% quantiles of recexp.imbalance.feature_distributions."))
    part = distributions[distributions["feature"] == feature]
    if part.empty:
        raise InvalidParameterError(
            _("No distribution for {feature!r}; features: {feature2}.").format(
              feature=feature, feature2=', '.join(dict.fromkeys(distributions['feature']))))
    colours = class_colours(list(dict.fromkeys(distributions["class"])))
    figure = go.Figure()
    for row in part.to_dict("records"):
        name = row["class"]
        figure.add_trace(go.Box(
            name=name, x=[name], q1=[row["q25"]], median=[row["q50"]], q3=[row["q75"]], lowerfence=[row["q05"]],
            upperfence=[row["q95"]], mean=[row["mean"]], marker={"color": colours[name]}, boxpoints=False))
    figure.update_layout(title=title or _("{feature} per class (whiskers: 5th-95th percentile)").format(
                             feature=feature),
                         xaxis_title=_("class"), yaxis_title=feature, showlegend=False, height=380)
    return figure


def feature_violin_chart(dataset: Dataset, feature: str, max_rows_per_class: int = 2_000, seed: int = 0,
                         title: str | None = None) -> go.Figure:
    """Violin per class of one numeric feature, from at most ``max_rows_per_class`` rows of each class
    (a seeded sample, so large datasets still draw quickly and the figure is reproducible); the title says
    how many rows are shown of how many when it is a sample."""
    if feature not in dataset.schema.numeric:
        raise InvalidParameterError(
            _("{feature!r} is not a numeric feature of this dataset; choose among {numeric}.").format(
              feature=feature, numeric=', '.join(dataset.schema.numeric)))
    if max_rows_per_class < 1:
        raise InvalidParameterError(_("max_rows_per_class must be "
                                      "at least 1, but got {max_rows_per_class!r}.").format(max_rows_per_class=max_rows_per_class))
    rng = np.random.default_rng(seed)
    values = dataset.frame[feature].to_numpy(dtype=np.float64, na_value=np.nan)
    labels = dataset.y
    colours = class_colours(dataset.schema.classes)
    figure = go.Figure()
    shown = 0
    for code, name in enumerate(dataset.schema.classes):
        rows = np.flatnonzero(labels == code)
        if len(rows) == 0:
            continue
        if len(rows) > max_rows_per_class:
            rows = np.sort(rng.choice(rows, size=max_rows_per_class, replace=False))
        shown += len(rows)
        sample = values[rows]
        sample = sample[~np.isnan(sample)]
        figure.add_trace(go.Violin(y=sample.tolist(), name=name, box_visible=True, meanline_visible=True,
                                   line={"color": colours[name]}, points=False))
    note = sample_note(shown, len(labels), how=_("at most {n} per class").format(n=format_integer(max_rows_per_class)))
    figure.update_layout(title=title or _("{feature} per class").format(feature=feature) + note, yaxis_title=feature,
                         showlegend=False, height=380)
    return figure


def _check_funnel(stats: pd.DataFrame) -> None:
    required = {"group", "stage", "stage_index", "units", "units_in_order", "conversion", "step_conversion"}
    if not isinstance(stats, pd.DataFrame) or not required <= set(stats.columns):
        raise InvalidParameterError(_("Funnel charts take the frame of recexp.imbalance.funnel."))
    if stats.empty:
        raise InvalidParameterError(_("The funnel is empty: no group has any unit."))
