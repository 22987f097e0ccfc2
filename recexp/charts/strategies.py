"""Plotly figures for strategy previews: class counts, a PCA map of real vs. new rows, distributions.

Every function takes library objects (a :class:`~recexp.strategies.StrategyResult` and the training
set it was made from) and returns a ``plotly.graph_objects.Figure``; nothing here imports streamlit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.decomposition import PCA

from recexp.charts import sample_note
from recexp.dataset import IS_SYNTHETIC, Dataset
from recexp.i18n import N_, _, format_integer, format_percent
from recexp.strategies.base import StrategyResult

#: Colour of each row origin in the projection.
ORIGIN_SYMBOLS = {"real": "circle", "new": "diamond", "removed": "x"}
_LOCKED_COLOUR = "#9e9e9e"
_SEQUENCE_SUFFIX = " (events in history)"


def class_counts_figure(before: dict[str, int], after: dict[str, int],
                        locked: dict[str, dict[str, int]] | None = None, log_y: bool = False) -> go.Figure:
    """Grouped bars per class: training rows before and after, plus locked splits (grey, hatched).

    Parameters
    ----------
    before, after : dict
        Class name -> training rows before and after the strategy.
    locked : dict, optional
        Split name (e.g. ``"validation"``, ``"test"``) -> class counts; drawn as untouched references.
    log_y : bool
        Logarithmic row axis (helps when one class dwarfs the others).
    """
    classes = list(before)
    figure = go.Figure()
    hover = "<b>%{x}</b>: " + _("{rows} rows").format(rows="%{y:,}") + "<extra>%{fullData.name}</extra>"
    figure.add_bar(name=_("train before"), x=classes, y=[before[c] for c in classes], marker_color="#90caf9",
                   hovertemplate=hover)
    # Only the result carries a number on its bar (four labels side by side would run into each other);
    # every bar shows its count on hover, and the table under the chart lists them all.
    figure.add_bar(name=_("train after"), x=classes, y=[after.get(c, 0) for c in classes], marker_color="#1565c0",
                   text=[f"{after.get(c, 0):,}" for c in classes], textposition="outside", cliponaxis=False,
                   hovertemplate=hover)
    for name, counts in (locked or {}).items():
        figure.add_bar(name=_("{part} (locked)").format(part=_(name)), x=classes, y=[counts.get(c, 0) for c in classes],
                       marker_color=_LOCKED_COLOUR, marker_pattern_shape="/", opacity=0.8, hovertemplate=hover)
    figure.update_layout(barmode="group", yaxis_title=_("rows"), xaxis_title=_("class"), legend_title_text="",
                         margin=dict(t=30, b=10, l=10, r=10), height=360)
    if log_y:
        figure.update_yaxes(type="log", dtick=1)               # a label per power of ten only
    return figure


def _numeric(dataset: Dataset, columns: list[str]) -> np.ndarray:
    return dataset.frame.loc[:, columns].to_numpy(dtype=np.float64, na_value=np.nan)


def projection_frame(train: Dataset, result: StrategyResult, max_points: int = 3000, seed: int = 0) -> pd.DataFrame | None:
    """2-D PCA coordinates of real, removed and new rows (``None`` without two numeric features).

    PCA is fitted on the input training rows' numeric features, standardised with their mean and
    standard deviation (missing values set to the mean); new rows are projected with the same fit.
    Each origin is sub-sampled to ``max_points`` rows for drawing; ``frame.attrs["total_rows"]`` is the
    number of rows before that.
    """
    columns = list(train.schema.numeric)
    if len(columns) < 2:
        return None
    real = _numeric(train, columns)
    mean = np.nanmean(real, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    std = np.nanstd(real, axis=0)
    std = np.where(~np.isfinite(std) | (std == 0), 1.0, std)

    def scaled(values: np.ndarray) -> np.ndarray:
        values = np.where(np.isnan(values), mean, values)
        return (values - mean) / std

    pca = PCA(n_components=2, random_state=seed).fit(scaled(real))
    synthetic = result.dataset.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    kept = np.zeros(len(train), dtype=bool)
    kept[result.source_rows[~synthetic]] = True
    rng = np.random.default_rng(seed)
    parts = []
    total = 0
    for origin, rows, source in (("real", np.flatnonzero(kept), train),
                                 ("removed", np.flatnonzero(~kept), train),
                                 ("new", np.flatnonzero(synthetic), result.dataset)):
        if len(rows) == 0:
            continue
        total += len(rows)
        if len(rows) > max_points:
            rows = np.sort(rng.choice(rows, max_points, replace=False))
        xy = pca.transform(scaled(source.frame.loc[:, columns].iloc[rows].to_numpy(dtype=np.float64, na_value=np.nan)))
        parts.append(pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "origin": origin,
                                   "class": np.asarray(train.schema.classes)[source.y[rows]]}))
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs["explained"] = pca.explained_variance_ratio_.tolist()
    frame.attrs["total_rows"] = total
    return frame


def projection_figure(train: Dataset, result: StrategyResult, max_points: int = 3000, seed: int = 0) -> go.Figure | None:
    """Scatter of the PCA map: colour = class, marker = real / new / removed (``None`` if not drawable).

    When an origin has more than ``max_points`` rows, a sample is drawn and the title says how many rows
    are shown of how many.
    """
    frame = projection_frame(train, result, max_points, seed)
    if frame is None:
        return None
    explained = frame.attrs["explained"]
    palette = _palette(train.schema.classes)
    figure = go.Figure()
    for (origin, name), part in frame.groupby(["origin", "class"], sort=False):
        figure.add_scattergl(
            x=part["pc1"], y=part["pc2"], mode="markers", name=f"{name} · {origin}",
            marker=dict(color=palette[name], symbol=ORIGIN_SYMBOLS[origin], size=6 if origin == "new" else 5,
                        opacity=0.35 if origin == "real" else 0.8,
                        line=dict(width=1, color="black") if origin == "new" else dict(width=0)))
    figure.update_layout(xaxis_title=_("PC1 ({share} of variance)").format(share=format_percent(explained[0])),
                         yaxis_title=_("PC2 ({share} of variance)").format(share=format_percent(explained[1])),
                         legend_title_text=_("class · origin"),
                         margin=dict(t=30, b=10, l=10, r=10), height=460)
    note = sample_note(len(frame), frame.attrs["total_rows"],
                       how=_("at most {n} of each origin").format(n=format_integer(max_points)))
    if note:
        figure.update_layout(title=f"A sample{note}", margin_t=50)
    return figure


def feature_choices(dataset: Dataset) -> list[str]:
    """Features whose distribution can be compared: numeric, categorical, then sequence lengths."""
    schema = dataset.schema
    return [*schema.numeric, *schema.categorical, *(group + _SEQUENCE_SUFFIX for group in schema.sequences)]


def _feature_values(dataset: Dataset, feature: str) -> np.ndarray:
    if feature.endswith(_SEQUENCE_SUFFIX):
        columns = list(dataset.schema.sequences[feature[: -len(_SEQUENCE_SUFFIX)]])
        used = dataset.frame.loc[:, columns].to_numpy() != 0
        return np.where(used.any(axis=1), used.shape[1] - np.argmax(used[:, ::-1], axis=1), 0).astype(np.float64)
    return dataset.frame[feature].to_numpy(dtype=np.float64, na_value=np.nan)


def distribution_figure(train: Dataset, result: StrategyResult, feature: str, top: int = 20) -> go.Figure:
    """A feature's distribution before vs. after (share of rows), with the new rows on their own.

    Numeric features and sequence lengths are histograms on shared bins; categorical features show
    the ``top`` most frequent values before the strategy, as the source's ids or names ("rare/missing"
    for code 0).
    """
    after = result.dataset
    synthetic = after.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    series = {"train before": _feature_values(train, feature), "train after": _feature_values(after, feature)}
    if synthetic.any():
        series[N_("new rows only")] = series["train after"][synthetic]
    colours = {"train before": "#90caf9", "train after": "#1565c0", "new rows only": "#ef6c00"}
    figure = go.Figure()
    if feature in train.schema.categorical:
        codes, counts = np.unique(series["train before"], return_counts=True)
        shown = codes[np.argsort(-counts, kind="stable")[:top]]
        for name, values in series.items():
            share = [(values == code).mean() for code in shown]
            figure.add_bar(name=_(name), x=list(train.schema.decode(feature, shown.astype(np.int64))), y=share,
                           marker_color=colours[name])
        figure.update_layout(barmode="group", xaxis_title=_("{feature} (top {n} before)").format(
                                 feature=feature, n=len(shown)),
                             xaxis_type="category")
    else:
        finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
        if finite.size == 0:
            finite = np.zeros(1)
        low, high = np.quantile(finite, [0.0, 0.995])
        edges = np.histogram_bin_edges(np.clip(finite, low, high), bins=40)
        centres = (edges[:-1] + edges[1:]) / 2
        for name, values in series.items():
            values = values[np.isfinite(values)]
            hist, _edges = np.histogram(np.clip(values, low, high), bins=edges)
            figure.add_scatter(x=centres, y=hist / max(len(values), 1), mode="lines", line_shape="hvh",
                               name=_(name), line=dict(color=colours[name], width=2))
        figure.update_layout(xaxis_title=feature + (" " + _("(top 0.5% clipped)") if high < finite.max() else ""))
    figure.update_layout(yaxis_title=_("share of rows"), legend_title_text="", margin=dict(t=30, b=10, l=10, r=10),
                         height=340)
    return figure


def _palette(classes: tuple[str, ...]) -> dict[str, str]:
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#bcbd22", "#7f7f7f"]
    return {name: colours[i % len(colours)] for i, name in enumerate(classes)}
