"""Who gains, who loses: a strategy's difference to the baseline on every slice of the test rows.

Takes the ``table`` of a :class:`recexp.compare.SliceComparison` (a plain frame) and returns a plotly figure;
reads no store.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from recexp.charts.compare import _colours
from recexp.i18n import _


def slice_gains(table: pd.DataFrame, baseline: str | None, metric_name: str) -> go.Figure:
    """Per slice (rows) and strategy (colours): the mean per-seed difference to the baseline, with its 95% interval.

    Points right of zero gain over the baseline on that slice, left of it lose (for a score where lower is
    better the axis says so). Slices without enough test rows or seeds are drawn hollow and named so in the
    hover text, not left out. The baseline and the A/A arm are not drawn.
    """
    slices = list(dict.fromkeys(table["slice"]))
    groups = [g for g in dict.fromkeys(table["group"])
              if g != baseline and not table.loc[table["group"] == g, "is_aa"].any()]
    colours = _colours(list(dict.fromkeys(table["group"])))
    figure = go.Figure()
    for group in groups:
        part = table[(table["group"] == group) & table["delta"].notna()]
        for enough in (True, False):
            rows = part[part["enough"] == enough]
            if rows.empty:
                continue
            figure.add_trace(go.Scatter(
                x=rows["delta"], y=rows["slice"], mode="markers",
                name=group if enough else _("{group} (too few rows)").format(group=group),
                legendgroup=group, showlegend=True,
                marker={"color": colours[group], "size": 10,
                        "symbol": "circle" if enough else "circle-open"},
                error_x={"type": "data", "symmetric": False, "array": (rows["delta_high"] - rows["delta"]).fillna(0),
                         "arrayminus": (rows["delta"] - rows["delta_low"]).fillna(0)},
                customdata=rows[["n_test_rows", "reason"]].to_numpy(),
                hovertemplate=group + "<br>%{y}: %{x:+.4f}<br>" + _("{rows} test rows").format(
                    rows="%{customdata[0]}") + "<br>%{customdata[1]}<extra></extra>"))
    figure.add_vline(x=0, line={"color": "#888", "dash": "dot"})
    figure.update_layout(
        title=_("Who gains, who loses: difference in {metric} to {baseline} per slice (95% interval over "
                "seeds)").format(metric=metric_name, baseline=baseline),
        xaxis_title=_("Δ {metric} vs {baseline}").format(metric=metric_name, baseline=baseline),
        height=max(320, 28 * len(slices) + 140),
        yaxis={"categoryorder": "array", "categoryarray": slices[::-1], "type": "category"},
        legend={"orientation": "h", "y": -0.15})
    return figure


__all__ = ["slice_gains"]
