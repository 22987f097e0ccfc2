"""Plotly figures of generative synthesis: real vs synthetic distributions, pair-trend differences,
and the training curves of a neural generator with its quality score.

>>> from recexp.charts.synthesis import column_histograms, pair_difference_heatmap, training_curves
>>> figure = column_histograms(train.frame, synthetic, train.schema)              # doctest: +SKIP
>>> figure = pair_difference_heatmap(report)                                       # doctest: +SKIP
>>> figure = training_curves(generator.history_, best_epoch=generator.best_epoch_) # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from recexp.dataset import LABEL, FeatureSchema
from recexp.errors import InvalidParameterError
from recexp.i18n import _

REAL_COLOUR = "#636EFA"
SYNTHETIC_COLOUR = "#EF553B"
_BINS = 30
_TOP_CATEGORIES = 20


def _numeric_bars(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared bin centres and the share of each side's observed values per bin."""
    observed = np.concatenate([real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]])
    if len(observed) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    values = np.unique(observed)
    if len(values) <= _BINS:                   # few distinct values: one bar per value
        edges = np.concatenate([values - 0.5 * np.min(np.diff(values), initial=1.0),
                                [values[-1] + 0.5 * np.min(np.diff(values), initial=1.0)]])
        centres = values
    else:
        edges = np.histogram_bin_edges(observed, bins=_BINS)
        centres = (edges[:-1] + edges[1:]) / 2

    def shares(x: np.ndarray) -> np.ndarray:
        x = x[~np.isnan(x)]
        counts = np.histogram(x, bins=edges)[0] if len(edges) > 1 else np.zeros(len(centres))
        return counts / max(len(x), 1)

    return centres, shares(real), shares(synthetic)


def _category_bars(real: np.ndarray, synthetic: np.ndarray, labels: dict | None = None
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
    r = pd.Series(real).value_counts(normalize=True)
    s = pd.Series(synthetic).value_counts(normalize=True)
    top = r.index[:_TOP_CATEGORIES]
    names = [str(labels.get(v, v)) if labels else str(v) for v in top]
    r_share, s_share = r.reindex(top).fillna(0).to_numpy(), s.reindex(top).fillna(0).to_numpy()
    if len(r) > _TOP_CATEGORIES:
        names.append("other")
        r_share = np.append(r_share, 1 - r_share.sum())
        s_share = np.append(s_share, max(0.0, 1 - s.reindex(top).fillna(0).sum()))
    return names, r_share, s_share


def column_histograms(real: pd.DataFrame, synthetic: pd.DataFrame, schema: FeatureSchema,
                      columns: list[str] | None = None, cols: int = 3) -> go.Figure:
    """Real vs synthetic distribution of each column: overlaid share bars, one panel per column.

    Numeric columns are binned on shared edges (one bar per value when there are few distinct values);
    categorical columns and the label show their most frequent real values, named by the source's ids
    or names (the label by class name). Missing values are left out of the bars.

    Parameters
    ----------
    real, synthetic : DataFrame
        Rows with the columns to draw.
    schema : FeatureSchema
        Tells numeric from categorical columns; the label shows class names.
    columns : list of str, optional
        Default: every numeric and categorical feature, then the label.
    cols : int
        Panels per row.
    """
    columns = list(columns) if columns is not None else list(schema.numeric) + list(schema.categorical) + [LABEL]
    unknown = [c for c in columns if c not in real.columns or c not in synthetic.columns]
    if unknown:
        raise InvalidParameterError(_("Cannot draw column(s) {unknown}: they are missing from the real or the "
                                      "synthetic rows.").format(unknown=', '.join(unknown)))
    if not columns:
        raise InvalidParameterError(_("No columns to draw. Pass at least one column."))
    cols = max(1, min(cols, len(columns)))
    rows = math.ceil(len(columns) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=columns,
                           vertical_spacing=min(0.12, 0.6 / rows), horizontal_spacing=0.06)
    for i, column in enumerate(columns):
        row, col = i // cols + 1, i % cols + 1
        if column in schema.numeric:
            x, r, s = _numeric_bars(real[column].to_numpy(np.float64, na_value=np.nan),
                                    synthetic[column].to_numpy(np.float64, na_value=np.nan))
        else:
            codes = np.arange(len(schema.classes) if column == LABEL else schema.cardinality.get(column, 0) + 1)
            names = dict(zip(codes, schema.classes if column == LABEL else schema.decode(column, codes)))
            x, r, s = _category_bars(real[column].to_numpy(), synthetic[column].to_numpy(), names)
            figure.update_xaxes(type="category", row=row, col=col)
        for name, y, colour in (("real", r, REAL_COLOUR), ("synthetic", s, SYNTHETIC_COLOUR)):
            figure.add_trace(go.Bar(x=x, y=y, name=_(name), marker_color=colour, opacity=0.6, legendgroup=name,
                                    showlegend=i == 0, hovertemplate=f"{column}: %{{x}}<br>{name}: %{{y:.3f}}"
                                                                     "<extra></extra>"), row=row, col=col)
    figure.update_layout(barmode="overlay", height=max(300, 230 * rows), title=_("Real vs synthetic, share of rows"),
                         legend={"orientation": "h", "y": 1.02 + 0.04 / rows, "x": 0})
    return figure


def pair_difference_heatmap(pair_trends: pd.DataFrame | object, columns: list[str] | None = None) -> go.Figure:
    """Heat map of the association difference (synthetic minus real) of every column pair.

    Parameters
    ----------
    pair_trends : DataFrame or QualityReport
        The ``pair_trends`` table of :func:`recexp.synthesis.quality.pair_trends` (or a report, whose
        overall table is used): Pearson's r for numeric pairs, Cramér's V otherwise.
    columns : list of str, optional
        Order of the axes; default: the order the columns first appear in the table.
    """
    table = getattr(getattr(pair_trends, "overall", None), "pair_trends", pair_trends)
    if not isinstance(table, pd.DataFrame) or not {"column_1", "column_2", "real_association",
                                                    "synthetic_association"} <= set(table.columns):
        raise InvalidParameterError(_("pair_difference_heatmap needs a quality report or its pair_trends table."))
    if columns is None:
        columns = list(dict.fromkeys(list(table["column_1"]) + list(table["column_2"])))
    position = {c: i for i, c in enumerate(columns)}
    z = np.full((len(columns), len(columns)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for record in table.itertuples(index=False):
        if record.column_1 not in position or record.column_2 not in position:
            continue
        i, j = position[record.column_1], position[record.column_2]
        difference = record.synthetic_association - record.real_association
        z[i, j] = z[j, i] = difference
        text[i, j] = text[j, i] = (f"{record.column_1} × {record.column_2}<br>{record.metric}<br>"
                                   f"real {record.real_association:.3f}, synthetic {record.synthetic_association:.3f}")
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    figure = go.Figure(go.Heatmap(
        z=z, x=columns, y=columns, text=text, hovertemplate="%{text}<br>" + _("difference {value}").format(value="%{z:.3f}") + "<extra></extra>",
        colorscale="RdBu_r", zmid=0, zmin=-max(limit, 1e-6), zmax=max(limit, 1e-6),
        colorbar={"title": _("synthetic − real")}))
    figure.update_layout(title=_("Association difference per column pair (Pearson r / Cramér's V)"),
                         height=max(400, 22 * len(columns) + 200), yaxis={"autorange": "reversed"})
    return figure


def training_curves(history: pd.DataFrame, best_epoch: int | None = None) -> go.Figure:
    """Loss curves of a neural generator with its quality score on a second axis.

    Parameters
    ----------
    history : DataFrame
        A generator's ``history_``: ``epoch``, one column per loss, ``quality`` (NaN where not
        scored) and ``seconds``.
    best_epoch : int, optional
        Marked with a vertical line (the checkpoint kept).
    """
    if not isinstance(history, pd.DataFrame) or "epoch" not in history.columns:
        raise InvalidParameterError(_("training_curves needs a generator's history_ table with an 'epoch' column."))
    losses = [c for c in history.columns if c not in {"epoch", "quality", "seconds"}]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for name in losses:
        figure.add_trace(go.Scatter(x=history["epoch"], y=history[name], mode="lines", name=name.replace("_", " ")),
                         secondary_y=False)
    if "quality" in history.columns:
        scored = history.dropna(subset=["quality"])
        figure.add_trace(go.Scatter(x=scored["epoch"], y=scored["quality"], mode="lines+markers",
                                    name=_("quality score"), line={"dash": "dot", "color": "black"}),
                         secondary_y=True)
    if best_epoch is not None:                           # named in the legend, not written over the curves
        figure.add_vline(x=best_epoch, line_dash="dash", line_color="green")
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=_("kept: epoch {epoch}").format(epoch=best_epoch),
                                    line={"dash": "dash", "color": "green"}))
    figure.update_xaxes(title_text=_("epoch"))
    figure.update_yaxes(title_text=_("loss"), secondary_y=False)
    figure.update_yaxes(title_text=_("quality score (1 = identical)"), secondary_y=True)
    figure.update_layout(title=_("Generator training"), legend={"orientation": "h", "y": 1.1})
    return figure
