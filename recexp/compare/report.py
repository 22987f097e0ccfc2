"""How a comparison reads: cell formats, metric names in words, and the self-contained HTML report."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

if TYPE_CHECKING:
    from recexp.compare.comparison import Comparison

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem} th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:right}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left} .note{color:#555;font-size:.9rem}
.verdict{font-size:1rem} .flag{color:#b00020;font-weight:600}
"""


def finite(value: Any) -> float | None:
    """A float, or ``None`` where it is not finite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def metric_title(metric: str) -> str:
    """A score's name in words: ``balanced_accuracy`` -> ``balanced accuracy``, ``pr_auc[buy]`` -> ``PR-AUC of buy``."""
    base, _sep, rest = metric.partition("[")
    words = {"pr_auc": "PR-AUC", "roc_auc": "ROC-AUC", "mcc": "MCC", "f1": "F1", "ece": "ECE",
             "pr_auc_macro": "macro PR-AUC", "f1_macro": "macro F1", "recall_macro": "macro recall",
             "precision_macro": "macro precision", "gmean": "G-mean"}.get(base, base.replace("_", " "))
    if rest:
        class_name, _sep, suffix = rest.partition("]")
        return f"{words} of {class_name}" + (suffix.replace("_", " ") if suffix else "")
    return words


def format_delta(s: dict[str, Any], digits: int) -> str:
    """A Δ cell: difference, its interval over seeds, the mark, the adjusted p-value (or why there is none) and
    the probability of improvement (a random seed of the strategy beats a random seed of the baseline).

    Marks: ``*`` the verdict on the primary score, ``°`` an exploratory score significant after
    Benjamini-Hochberg, ``!`` the A/A arm significant (a red flag).
    """
    if not np.isfinite(s["delta"]):
        return "–"
    text = f"{s['delta']:+.{digits}f}"
    if np.isfinite(s["delta_low"]) and np.isfinite(s["delta_high"]):
        text += f" [{s['delta_low']:+.{digits}f}, {s['delta_high']:+.{digits}f}]"
    mark = ("!" if s["is_aa"] else "*" if s["is_primary"] else "°") if s["significant"] else ""
    if mark:
        text += f" {mark}"
    n = int(s["n_pairs"])
    parts = []
    if np.isfinite(s["p_adjusted"]):
        name = {"holm": "p Holm", "bh": "p BH", "none": "p"}.get(s["adjustment"], "p")
        parts.append(f"{name} {s['p_adjusted']:.3f}, {n} seeds")
    else:
        parts.append({"too_few_seeds": f"{n} seed{'s' if n != 1 else ''}: no test",
                      "identical": "identical across seeds", "constant": "same on every seed"}.get(s["status"], ""))
    if np.isfinite(s["prob_improvement"]):
        parts.append(f"P(better) {s['prob_improvement']:.2f}")
    detail = "; ".join(p for p in parts if p)
    return text + (f" ({detail})" if detail else "")


def format_interval(mean: float, low: float, high: float, digits: int) -> str:
    """``mean [low, high]``, or the mean alone where there is no interval."""
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def render_report(comparison: Comparison, metrics: list[str], figures: dict[str, Any], capture: pd.DataFrame,
                  inference: str, rows_bootstrap: str) -> str:
    """The HTML text of the report: verdicts, method, table, business statement and figures, plotly.js inline once."""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = comparison.per_run
    declared = "declared before training" if comparison.primary_declared else "the default for these classes"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(comparison.title)}</title><style>{_STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(comparison.title)}</h1>",
        f"<p class='note'>{len(runs)} runs, {len(comparison.groups)} arms, seeds "
        f"{', '.join(str(s) for s in sorted(set(runs['seed'])))}; {len(comparison.predictions[0].y):,} test rows "
        f"(the same for every run). Created {created} with recexp.</p>",
        f"<h2>Verdicts on {html.escape(metric_title(comparison.primary))} (primary score, {declared})</h2><ul>",
        *[f"<li class='verdict'>{html.escape(v)}</li>" for v in comparison.verdicts.values()], "</ul>",
        *[f"<p class='flag'>{html.escape(flag)}</p>" for flag in comparison.flags],
        f"<p class='note'><b>Method.</b> {html.escape(inference)} Significance level {comparison.alpha:g}. "
        f"{html.escape(power_sentence(comparison))}</p>",
        "<h2>Scores</h2>", comparison.table(metrics).to_html(escape=True),
        "<p class='note'>Cells: mean over seeds [95% t-interval]. Δ: mean per-seed difference to "
        f"<b>{html.escape(str(comparison.baseline))}</b> [95% t-interval over seeds]; * verdict on the primary score "
        "(Holm-adjusted), ° exploratory score significant after Benjamini-Hochberg; P(better): probability that a "
        "random seed of the strategy beats a random seed of the baseline. "
        f"{html.escape(rows_bootstrap)}</p>",
        "<h2>In business terms</h2><ul>",
        *[f"<li>{html.escape(s)}</li>" for s in capture["statement"]], "</ul>",
    ]
    for note in comparison.notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for title, figure in figures.items():
        parts += [f"<h2>{html.escape(title)}</h2>",
                  figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})]
    parts += ["<h2>Runs</h2>", runs.to_html(index=False, float_format=lambda v: f"{v:.4f}"), "</body></html>"]
    return "\n".join(parts)


def power_sentence(comparison: Comparison) -> str:
    """One sentence on what the seeds at hand can detect (page, CLI and report)."""
    power = comparison.power
    if not power or not np.isfinite(power.get("detectable_difference", math.nan)):
        return "Power: the seed-to-seed spread is not known yet (at least two paired seeds are needed)."
    return (f"Power: with {power['seeds']} paired seeds and a seed-to-seed spread of the per-seed differences of "
            f"{power['sd']:.4f}, the smallest difference in {metric_title(comparison.primary)} detected with "
            f"{power['target_power']:.0%} power is {power['detectable_difference']:.4f} (at level "
            f"{power['alpha_per_comparison']:.3g} per comparison).")


__all__ = ["finite", "format_delta", "format_interval", "metric_title", "power_sentence", "render_report"]
