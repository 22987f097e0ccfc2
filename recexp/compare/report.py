"""How a comparison reads: cell formats, metric names in words, and the self-contained HTML report."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from recexp.i18n import N_, _, current_language, format_datetime, format_integer, ngettext

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
    words = _(_METRIC_WORDS.get(base, base.replace("_", " ")))
    if rest:
        class_name, _sep, suffix = rest.partition("]")
        return _("{score} of {name}").format(score=words, name=class_name) + (
            " " + _(suffix.strip("_").replace("_", " ")) if suffix else "")
    return words


#: Scores' names in words (the others: the id with spaces, e.g. ``balanced accuracy``).
_METRIC_WORDS = {"pr_auc": N_("PR-AUC"), "roc_auc": N_("ROC-AUC"), "mcc": N_("MCC"), "f1": N_("F1"), "ece": N_("ECE"),
                 "pr_auc_macro": N_("macro PR-AUC"), "f1_macro": N_("macro F1"), "recall_macro": N_("macro recall"),
                 "precision_macro": N_("macro precision"), "gmean": N_("G-mean"), "accuracy": N_("accuracy"),
                 "balanced_accuracy": N_("balanced accuracy"), "log_loss": N_("log loss"), "recall": N_("recall"),
                 "precision": N_("precision"), "threshold": N_("threshold"), "brier": N_("brier"),
                 "tuned": N_("tuned")}


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
        parts.append(ngettext("{p_name} {p}, {n} seed", "{p_name} {p}, {n} seeds", n).format(
            p_name=name, p=f"{s['p_adjusted']:.3f}", n=n))
    else:
        parts.append({"too_few_seeds": ngettext("{n} seed: no test", "{n} seeds: no test", n).format(n=n),
                      "identical": _("identical across seeds"),
                      "constant": _("same on every seed")}.get(s["status"], ""))
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
    created = format_datetime(datetime.now(UTC), "medium") + " UTC"
    runs = comparison.per_run
    declared = _("declared before training") if comparison.primary_declared else _("the default for these classes")
    seeds = ", ".join(str(s) for s in sorted(set(runs["seed"])))
    parts = [
        f"<!DOCTYPE html><html lang='{_HTML_LANG[current_language()]}'><head><meta charset='utf-8'>",
        f"<title>{html.escape(comparison.title)}</title><style>{_STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(comparison.title)}</h1>",
        "<p class='note'>" + html.escape(
            _("{runs} runs, {arms} arms, seeds {seeds}; {rows} test rows (the same for every run). Created {created} "
              "with recexp.").format(runs=len(runs), arms=len(comparison.groups), seeds=seeds,
                                     rows=format_integer(len(comparison.predictions[0].y)), created=created))
        + "</p>",
        "<h2>" + html.escape(_("Verdicts on {score} (primary score, {declared})").format(
            score=metric_title(comparison.primary), declared=declared)) + "</h2><ul>",
        *[f"<li class='verdict'>{html.escape(v)}</li>" for v in comparison.verdicts.values()], "</ul>",
        *[f"<p class='flag'>{html.escape(flag)}</p>" for flag in comparison.flags],
        "<p class='note'><b>" + html.escape(_("Method.")) + f"</b> {html.escape(inference)} "
        + html.escape(_("Significance level {alpha}.").format(alpha=f"{comparison.alpha:g}"))
        + f" {html.escape(power_sentence(comparison))}</p>",
        "<h2>" + html.escape(_("Scores")) + "</h2>", comparison.table(metrics).to_html(escape=True),
        "<p class='note'>" + _("Cells: mean over seeds [95% t-interval]. Δ: mean per-seed difference to "
                               "<b>{baseline}</b> [95% t-interval over seeds]; * verdict on the primary score "
                               "(Holm-adjusted), ° exploratory score significant after Benjamini-Hochberg; P(better): "
                               "probability that a random seed of the strategy beats a random seed of the "
                               "baseline.").format(baseline=html.escape(str(comparison.baseline)))
        + f" {html.escape(rows_bootstrap)}</p>",
        "<h2>" + html.escape(_("In business terms")) + "</h2><ul>",
        *[f"<li>{html.escape(s)}</li>" for s in capture["statement"]], "</ul>",
    ]
    for note in comparison.notes:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for title, figure in figures.items():
        parts += [f"<h2>{html.escape(title)}</h2>",
                  figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})]
    parts += ["<h2>" + html.escape(_("Runs")) + "</h2>", runs.to_html(index=False, float_format=lambda v: f"{v:.4f}"),
              "</body></html>"]
    return "\n".join(parts)


def power_sentence(comparison: Comparison) -> str:
    """One sentence on what the seeds at hand can detect (page, CLI and report)."""
    power = comparison.power
    if not power or not np.isfinite(power.get("detectable_difference", math.nan)):
        return _("Power: the seed-to-seed spread is not known yet (at least two paired seeds are needed).")
    return _("Power: with {seeds} paired seeds and a seed-to-seed spread of the per-seed differences of {sd}, the "
             "smallest difference in {score} detected with {power} power is {difference} (at level {alpha} per "
             "comparison).").format(seeds=power["seeds"], sd=f"{power['sd']:.4f}",
                                    score=metric_title(comparison.primary), power=f"{power['target_power']:.0%}",
                                    difference=f"{power['detectable_difference']:.4f}",
                                    alpha=f"{power['alpha_per_comparison']:.3g}")


#: The HTML ``lang`` attribute of each language.
_HTML_LANG = {"en": "en", "zh": "zh-CN"}

__all__ = ["finite", "format_delta", "format_interval", "metric_title", "power_sentence", "render_report"]
