"""Side-by-side evaluation of finished runs: which strategy helped which class, by how much, how surely.

:func:`compare` loads the test predictions of the chosen runs (:mod:`recexp.compare.loading`), scores
each run on the whole test split, groups the runs by strategy and summarises every score over seeds
(mean and 95% t-interval). Each strategy is then paired with the "no strategy" baseline seed by seed,
and the statistics of :mod:`recexp.compare.stats` give the evidence:

* the **verdict** on the experiment's declared primary score: a paired t-test over per-seed differences
  (the training seed is the unit of replication), Holm-adjusted across the strategies compared, at least
  three paired seeds, and a sentence per strategy;
* every other score is **exploratory**: the same test, Benjamini-Hochberg-adjusted across the table;
* the probability of improvement and an effect size beside each difference; the power of the seeds at
  hand (the smallest difference they detect) and the seeds a given difference needs;
* an **A/A arm** (the baseline again under disjoint seeds), tested like a strategy: if it comes out
  significant, the comparison is noisier than its intervals say and a red flag is raised;
* the paired **bootstrap over test rows** with the trained models held fixed, kept only as a separately
  labelled "these trained models" interval: it measures test-set noise, not whether a strategy helps,
  and never decides significance.

Degenerate comparisons are flagged, not silently scored: runs that predict one class for every row, a
class with no validation or test rows, duplicate seeds, per-seed differences without spread.

Example
-------
>>> from recexp.runs import SQLiteRunStore                            # doctest: +SKIP
>>> result = compare(SQLiteRunStore.open(), experiment="smote vs none")
>>> result.verdicts["smote"]
>>> result.to_html("report.html")
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recexp.charts.compare import report_figures
from recexp.compare import stats
from recexp.compare.loading import RunPredictions, load_predictions, select_runs
from recexp.compare.report import finite, format_delta, format_interval, metric_title, render_report
from recexp.errors import InvalidParameterError, JobError
from recexp.i18n import N_, _, format_integer, ngettext
from recexp.metrics import (EVALUATION_METRICS, LIST_K, LOWER_IS_BETTER, NEXT_ITEM_METRICS, NEXT_ITEM_PROTOCOL,
                            class_key,
                            evaluation_metrics, f1_optimal_threshold, predict_labels, ranking_metrics,
                            recall_at_precision, scores_from_confusions, task_scores, weighted_roc_auc)
from recexp.runs import Run, RunStore

#: The strategy every other one is compared against.
BASELINE = "none"
#: Scores the paired bootstrap over test rows resamples (besides the per-class threshold scores).
BOOTSTRAP_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "mcc", "gmean",
                     "roc_auc", "log_loss")
#: Scores shown first by default on the Compare page and in the report (after the primary).
DEFAULT_METRICS = ("balanced_accuracy", "f1_macro", "recall_macro", "mcc", "roc_auc", "pr_auc_macro")
#: Suffix of the binary scores at the F1-optimal threshold chosen on the validation split.
TUNED = "_tuned"
#: K of the per-user ranking scores of the purchase task.
RANKING_KS = (5, 10)

#: How the verdict is reached, in words (page help, CLI JSON, HTML report).
_INFERENCE = N_("Paired t-test over per-seed differences of full-test scores: the training seed is the unit of "
                "replication (seed s of a strategy is paired with seed s of the baseline, on the same test rows); "
                "the interval is the 95% t-interval of the mean difference. The primary score's p-values are "
                "Holm-adjusted across the strategies compared with the baseline and decide the verdict (at least "
                "{min_seeds} paired seeds); every other score is exploratory, Benjamini-Hochberg-adjusted across "
                "the table. The A/A arm is tested on its own, unadjusted.")
INFERENCE = _INFERENCE.format(min_seeds=stats.MIN_SEEDS)
#: What the row bootstrap measures, in words (shown translated: ``_(ROWS_BOOTSTRAP)``).
ROWS_BOOTSTRAP = N_("These trained models: a paired bootstrap over test rows with the trained models held fixed. It "
                    "shows how much the difference between these particular models would move on other test rows; "
                    "it ignores run-to-run variation and never decides significance.")


def inference_text() -> str:
    """:data:`INFERENCE` in the current language (see :mod:`recexp.i18n`)."""
    return _(_INFERENCE).format(min_seeds=stats.MIN_SEEDS)


# --- scoring one run ------------------------------------------------------------------------------------

def _run_metrics(item: RunPredictions) -> dict[str, float]:
    if item.ranking:         # next-item: per-row scores averaged; the catalogue coverage as the run measured it
        scores = {name: float(values.mean()) for name, values in item.row_scores.items()}
        scores[f"coverage@{LIST_K}"] = float(item.run.metrics.get(f"coverage@{LIST_K}", math.nan))
        return {name: scores[name] for name in NEXT_ITEM_METRICS}
    binary = len(item.classes) == 2
    scores = evaluation_metrics(item.y, item.proba, item.classes, threshold=0.5 if binary else None,
                                sample_weight=item.weight)
    if binary and item.valid_proba is not None:
        threshold = f1_optimal_threshold(item.valid_y, item.valid_proba[:, 1])
        tuned = evaluation_metrics(item.y, item.proba, item.classes, threshold=threshold, sample_weight=item.weight)
        positive = item.classes[1]
        scores |= {f"threshold{TUNED}": threshold, f"balanced_accuracy{TUNED}": tuned["balanced_accuracy"],
                   f"f1_macro{TUNED}": tuned["f1_macro"], f"mcc{TUNED}": tuned["mcc"],
                   f"precision[{positive}]{TUNED}": tuned[class_key("precision", positive)],
                   f"recall[{positive}]{TUNED}": tuned[class_key("recall", positive)],
                   f"f1[{positive}]{TUNED}": tuned[class_key("f1", positive)]}
    if item.queries is not None and "buy" in item.classes:
        buy = item.classes.index("buy")
        scores |= ranking_metrics(item.y == buy, item.proba[:, buy], item.queries, RANKING_KS)
    return scores


def _bootstrap_scores(item: RunPredictions, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every bootstrap score of one run under the resampling ``counts`` (shape (n, B): rows x replicates); a row
    with a ``sample_weight`` counts that many times more."""
    if item.weight is not None:
        counts = counts * item.weight[:, None].astype(np.float32)
    if item.ranking:
        totals = counts.sum(axis=0)
        return {name: (values.to_numpy(np.float64) @ counts) / totals for name, values in item.row_scores.items()}
    k = len(item.classes)
    binary = k == 2
    predicted = predict_labels(item.proba, 0.5 if binary else None)
    cells = np.zeros((len(item.y), k * k), dtype=np.float32)
    cells[np.arange(len(item.y)), item.y * k + predicted] = 1.0
    confusions = (cells.T @ counts).T.reshape(-1, k, k)
    result = dict(scores_from_confusions(confusions, list(item.classes)))
    result["roc_auc"] = weighted_roc_auc(item.y, item.proba, counts)
    row_loss = -np.log(np.clip(item.proba[np.arange(len(item.y)), item.y] / np.clip(item.proba, 1e-7, 1).sum(1),
                               1e-7, 1.0))
    result["log_loss"] = (row_loss @ counts) / counts.sum(axis=0)
    return result


def clip_to_range(metric: str, low: float, high: float) -> tuple[float, float]:
    """Keep a t-interval inside the score's possible range (scores in [0, 1], MCC in [-1, 1], losses >= 0)."""
    if metric in LOWER_IS_BETTER and metric != "ece":
        return max(low, 0.0), high
    if metric.startswith("mcc"):
        return max(low, -1.0), min(high, 1.0)
    if metric.startswith(("hr@", "ndcg@")) or metric in EVALUATION_METRICS or "[" in metric or metric.endswith(TUNED):
        return max(low, 0.0), min(high, 1.0)
    return low, high


def _bootstrap_deltas(predictions: list[RunPredictions], baseline: str, n_bootstrap: int,
                      random_state: int, chunk: int = 100) -> dict[tuple[str, str], np.ndarray]:
    """(group, score) -> bootstrap replicates over test rows of the seed-averaged paired difference to the baseline.

    Every run is scored on the same resampled test rows (one shared set of replicates), so the
    difference of a seed's pair is paired row by row. The trained models are held fixed: this is the
    "these trained models" figure, never the verdict.
    """
    n = len(predictions[0].y)
    rng = np.random.default_rng(random_state)
    by_group: dict[str, dict[int, RunPredictions]] = {}
    for p in predictions:
        by_group.setdefault(p.group, {})[p.pair_key] = p
    base_runs = by_group[baseline]
    pairs = {g: sorted(set(runs) & set(base_runs)) for g, runs in by_group.items() if g != baseline}
    needed = {p.key: p for g, keys in pairs.items() for s in keys for p in (by_group[g][s], base_runs[s])}
    collected: dict[str, dict[str, list[np.ndarray]]] = {run_id: {} for run_id in needed}
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        index = rng.integers(0, n, size=(size, n))
        flat = (index * size + np.arange(size)[:, None]).ravel()      # counts laid out (n, B): rows gather fast
        counts = np.bincount(flat, minlength=size * n).reshape(n, size).astype(np.float32)
        for run_id, item in needed.items():
            for metric, values in _bootstrap_scores(item, counts).items():
                collected[run_id].setdefault(metric, []).append(np.asarray(values, dtype=np.float64))
    scores = {run_id: {m: np.concatenate(v) for m, v in metrics.items()} for run_id, metrics in collected.items()}
    result = {}
    for group, keys in pairs.items():
        if not keys:
            continue
        for metric in scores[by_group[group][keys[0]].key]:
            differences = np.vstack([scores[by_group[group][s].key][metric] - scores[base_runs[s].key][metric]
                                     for s in keys])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result[(group, metric)] = np.nanmean(differences, axis=0)
    return result


# --- flags ----------------------------------------------------------------------------------------------

def _degenerate_notes(predictions: list[RunPredictions]) -> list[str]:
    """Sentences for runs that predict one class for every test row, and classes with no validation/test rows."""
    notes = []
    classes = predictions[0].classes
    if predictions[0].ranking:                  # no classes to collapse onto: items are ranked, not predicted
        return notes
    one_class: dict[str, list[tuple[RunPredictions, str]]] = {}
    for p in predictions:
        predicted = np.unique(predict_labels(p.proba, 0.5 if len(classes) == 2 else None))
        if len(predicted) == 1:
            one_class.setdefault(p.group, []).append((p, classes[int(predicted[0])]))
    for group, items in one_class.items():
        total = sum(1 for p in predictions if p.group == group)
        names = sorted({name for _, name in items})
        notes.append(_("{group}: {runs} of {total} runs predict {classes} for every test row, so their threshold "
                       "scores sit at chance (balanced accuracy 1/classes, MCC 0) whatever the strategy. Train longer, "
                       "try class weights, or check the features before reading these differences.").format(
            group=group, runs=len(items), total=total, classes=", ".join(repr(n) for n in names)))
    test_counts = np.bincount(predictions[0].y, minlength=len(classes))
    missing_test = [classes[k] for k in np.flatnonzero(test_counts == 0)]
    valid_counts = predictions[0].run.info.get("class_counts", {}).get("valid")
    if valid_counts is None and predictions[0].valid_y is not None:
        valid_counts = dict(zip(classes, np.bincount(predictions[0].valid_y, minlength=len(classes)).tolist()))
    missing_valid = [c for c in classes if valid_counts is not None and not valid_counts.get(c, 0)]
    for split, missing in (("test", missing_test), ("validation", missing_valid)):
        if missing:
            template = (_("Class {classes} has no rows in the validation split: its per-class scores are undefined "
                          "and early stopping never sees it, and macro scores average over fewer classes. Use another "
                          "split (e.g. stratified, or a later temporal cut) so every class is in every split.")
                        if split == "validation" else
                        _("Class {classes} has no rows in the test split: its per-class scores are undefined, and "
                          "macro scores average over fewer classes. Use another split (e.g. stratified, or a later "
                          "temporal cut) so every class is in every split."))
            notes.append(template.format(classes=", ".join(repr(c) for c in missing)))
    return notes


# --- the comparison -------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Everything the Compare page, the CLI and the report show; built by :func:`compare`.

    Attributes
    ----------
    predictions : list of RunPredictions
    per_run : DataFrame
        One row per run: ``run_id``, ``group``, ``strategy``, ``model``, ``seed``, ``pair`` (the baseline seed
        it is paired with), ``is_aa``, then every score.
    summary : DataFrame
        One row per group and score: ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` (95% over seeds); against
        the baseline ``n_pairs``, ``delta`` (mean per-seed difference), ``delta_low``/``delta_high`` (its
        t-interval), ``p_value`` (paired t-test over seeds, ``nan`` below 3 pairs), ``p_adjusted`` and
        ``adjustment`` (``holm`` for the primary, ``bh`` for exploratory scores, ``none`` for the A/A arm),
        ``significant`` (``p_adjusted < alpha`` with at least 3 pairs), ``status`` (see
        :mod:`recexp.compare.stats`), ``prob_improvement`` with ``prob_improvement_low``/``_high``,
        ``effect_size`` (d_z), ``rows_delta_low``/``rows_delta_high``/``p_rows`` (the row bootstrap of these
        trained models), ``is_primary``, ``is_aa``, ``better`` and ``alpha``.
    baseline : str or None
        The baseline group, ``None`` when no run used it.
    primary : str
        The declared primary score (or the default for the task's classes).
    primary_declared : bool
        Whether the primary was declared with the experiment before training.
    verdicts : dict
        Group -> the sentence on the primary score.
    flags : list of str
        Red flags: the A/A arm came out significant.
    power : dict
        The seed-to-seed spread of the primary's per-seed differences and what the seeds can detect.
    """

    predictions: list[RunPredictions]
    per_run: pd.DataFrame
    summary: pd.DataFrame
    baseline: str | None
    classes: tuple[str, ...]
    metrics: list[str]
    primary: str
    primary_declared: bool = False
    alpha: float = 0.05
    n_bootstrap: int = 0
    title: str = "Comparison"
    notes: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    power: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """Groups in display order: the baseline first, the A/A arm last."""
        names = list(dict.fromkeys(self.per_run["group"]))
        aa = set(self.per_run.loc[self.per_run["is_aa"], "group"])
        return (([self.baseline] if self.baseline in names else []) + [g for g in names if g != self.baseline
                                                                         and g not in aa] + sorted(aa))

    @property
    def aa_groups(self) -> list[str]:
        return sorted(set(self.per_run.loc[self.per_run["is_aa"], "group"]))

    @property
    def task(self) -> str:
        return str(self.predictions[0].run.spec.get("task", ""))

    def group_predictions(self, group: str) -> list[RunPredictions]:
        return [p for p in self.predictions if p.group == group]

    def seeds_needed(self, difference: float) -> int | None:
        """Paired seeds needed to detect a true ``difference`` of the primary score with 80% power.

        Uses the pooled seed-to-seed spread of the per-seed differences and the per-comparison level
        Holm starts from (alpha / number of strategies compared); ``None`` when the spread is unknown or
        more than 500 seeds would be needed.
        """
        return stats.seeds_needed(abs(difference), self.power.get("sd", math.nan),
                                  self.power.get("alpha_per_comparison", self.alpha))

    def seeds_to_add(self) -> int:
        """Seeds every arm still needs for a verdict (at least one): :data:`MIN_SEEDS` less the fewest paired seeds."""
        compared = self.summary[self.summary["is_primary"] & (self.summary["group"] != self.baseline)]
        fewest = int(compared["n_pairs"].min()) if len(compared) else 0
        return max(1, stats.MIN_SEEDS - fewest)

    def table(self, metrics: list[str] | tuple[str, ...] | None = None, digits: int = 4) -> pd.DataFrame:
        """Wide table: one row per score (the primary first), per group ``mean [low, high]`` and ``Δ <group>``.

        A delta reads ``+0.0123 [+0.0040, +0.0206] * (p adj 0.004, 5 seeds)``: ``*`` marks the verdict on the
        primary score (Holm-adjusted), ``°`` an exploratory score significant after Benjamini-Hochberg.
        """
        metrics = list(dict.fromkeys([self.primary, *(metrics or self.metrics)]))
        rows = []
        for metric in metrics:
            row: dict[str, Any] = {"metric": metric + (" (primary)" if metric == self.primary else "")}
            for group in self.groups:
                s = self._cell(group, metric)
                if s is None:
                    continue
                row[group] = format_interval(s["mean"], s["ci_low"], s["ci_high"], digits)
                if self.baseline is not None and group != self.baseline:
                    row[f"Δ {group}"] = format_delta(s, digits)
            rows.append(row)
        return pd.DataFrame(rows).set_index("metric")

    def _cell(self, group: str, metric: str) -> dict[str, Any] | None:
        match = self.summary[(self.summary["group"] == group) & (self.summary["metric"] == metric)]
        return None if match.empty else match.iloc[0].to_dict()

    def to_csv(self, path: str | Path | None = None) -> str:
        """The tidy summary (group x score with intervals, deltas, p-values) as CSV; written to ``path`` if given."""
        text = self.summary.to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_dict(self, metrics: list[str] | None = None) -> dict[str, Any]:
        """JSON-able form: the method, the primary, the verdicts and flags, and per group every score's evidence."""
        metrics = list(metrics or self.summary["metric"].unique())
        keys = ("mean", "ci_low", "ci_high", "delta", "delta_low", "delta_high", "p_value", "p_adjusted",
                "prob_improvement", "prob_improvement_low", "prob_improvement_high", "effect_size", "rows_delta_low",
                "rows_delta_high", "p_rows")
        groups = []
        for group in self.groups:
            runs = self.per_run[self.per_run["group"] == group]
            scores = {}
            for metric in metrics:
                s = self._cell(group, metric)
                if s is not None:
                    scores[metric] = {k: finite(s[k]) for k in keys} | {
                        "n_seeds": int(s["n_seeds"]), "n_pairs": int(s["n_pairs"]), "status": s["status"],
                        "adjustment": s["adjustment"], "significant": bool(s["significant"]),
                        "exploratory": metric != self.primary}
            groups.append({"group": group, "strategy": str(runs["strategy"].iloc[0]),
                           "model": str(runs["model"].iloc[0]), "seeds": [int(s) for s in runs["seed"]],
                           "runs": list(runs["run_id"]), "is_baseline": group == self.baseline,
                           "is_aa": bool(runs["is_aa"].iloc[0]), "verdict": self.verdicts.get(group),
                           "metrics": scores})
        return {"title": self.title, "task": self.task, "classes": list(self.classes), "baseline": self.baseline,
                "primary": self.primary, "primary_declared": self.primary_declared, "alpha": self.alpha,
                "inference": INFERENCE, "min_seeds": stats.MIN_SEEDS, "rows_bootstrap": ROWS_BOOTSTRAP,
                "n_bootstrap": self.n_bootstrap, "test_rows": int(len(self.predictions[0].y)),
                "verdicts": self.verdicts, "flags": self.flags,
                "power": {k: (finite(v) if isinstance(v, float) else v) for k, v in self.power.items()},
                "notes": self.notes, "groups": groups,
                **({"protocol": NEXT_ITEM_PROTOCOL} if self.predictions[0].ranking else {})}

    def capture(self, positive: str, top_fraction: float | None = None, per: int = 1000,
                threshold: float | None = None) -> pd.DataFrame:
        """Per group (mean over seeds): scoring everyone and acting on the top ``top_fraction`` (or on
        every unit whose probability of ``positive`` is at least ``threshold``).

        For the purchase task the unit is a user (score: their best item, positive: bought anything),
        otherwise a test row. Columns: ``group``, ``captured_per_1000``, ``recall``, ``precision``,
        ``lift``, ``selected_per_1000``, ``delta_per_1000`` (vs the baseline) and ``statement``.
        """
        if positive not in self.classes:
            raise InvalidParameterError(_("Class {positive!r} is not one of {classes}.").format(
                                          positive=positive, classes=', '.join(self.classes)))
        k = self.classes.index(positive)
        rows = []
        for group in self.groups:
            outcomes = [capture_at(p.y == k, p.proba[:, k], top_fraction=top_fraction, threshold=threshold,
                                   groups=p.queries_users(), per=per) for p in self.group_predictions(group)]
            rows.append({"group": group, **{key: float(np.mean([o[key] for o in outcomes]))
                                             for key in ("captured_per_1000", "recall", "precision", "lift",
                                                         "selected_per_1000", "positives_per_1000")},
                         "unit": outcomes[0]["unit"]})
        frame = pd.DataFrame(rows)
        base = frame.loc[frame["group"] == self.baseline, "captured_per_1000"]
        frame["delta_per_1000"] = frame["captured_per_1000"] - (base.iloc[0] if len(base) else np.nan)
        unit_noun = _("users") if frame["unit"].iloc[0] == "user" else _("rows")
        noun = _("buyers") if positive == "buy" else _("'{positive}' {units}").format(positive=positive,
                                                                                      units=unit_noun)
        frame["statement"] = [self._capture_statement(r, noun, per, top_fraction, threshold)
                              for r in frame.itertuples()]
        return frame

    def _capture_statement(self, r, noun: str, per: int, top_fraction: float | None, threshold: float | None) -> str:
        """One row of :meth:`capture` in words."""
        units = {"user": _("users"), "row": _("rows")}.get(r.unit, f"{r.unit}s")
        values = {"group": r.group, "units": units, "noun": noun, "per": format_integer(per),
                  "captured": f"{r.captured_per_1000:.1f}", "recall": f"{r.recall:.0%}",
                  "positives": f"{r.positives_per_1000:.1f}", "lift": f"{r.lift:.1f}"}
        if top_fraction is not None:
            text = _("{group}: acting on the top {share} of {units} scored captures {captured} {noun} per {per} "
                     "{units} scored ({recall} of all {positives}; {lift}x random)").format(
                share=f"{top_fraction:.0%}", **values)
        else:
            text = _("{group}: acting on the {selected} per {per} {units} scoring at least {threshold} captures "
                     "{captured} {noun} per {per} {units} scored ({recall} of all {positives}; {lift}x random)").format(
                selected=f"{r.selected_per_1000:.0f}", threshold=f"{threshold:.2f}", **values)
        if self.baseline and r.group != self.baseline and np.isfinite(r.delta_per_1000):
            text += _(", {delta} vs {baseline}").format(delta=f"{r.delta_per_1000:+.1f}", baseline=self.baseline)
        return text + "."

    def recall_at_precision(self, positive: str, min_precision: float) -> pd.DataFrame:
        """Per group: mean (over seeds) recall of ``positive`` at precision >= ``min_precision``, and the threshold."""
        k = self.classes.index(positive)
        rows = []
        for group in self.groups:
            values = [recall_at_precision(p.y == k, p.proba[:, k], min_precision)
                      for p in self.group_predictions(group)]
            recalls = np.array([v[0] for v in values])
            mean, low, high = stats.seed_interval(recalls)
            rows.append({"group": group, "recall": mean, "ci_low": low, "ci_high": high,
                         "threshold": float(np.nanmean([v[1] for v in values])) if any(
                             np.isfinite(v[1]) for v in values) else math.nan})
        return pd.DataFrame(rows)

    def to_html(self, path: str | Path | None = None, metrics: list[str] | None = None,
                positive: str | None = None, top_fraction: float = 0.1,
                epoch_metrics: pd.DataFrame | None = None, sample_losses: pd.DataFrame | None = None) -> str:
        """One self-contained HTML report (plotly embedded inline; opens offline without recexp)."""
        metrics = list(metrics or self.metrics)
        positive = positive or default_positive(self.classes)
        figures = report_figures(self, metrics, positive, epoch_metrics=epoch_metrics, sample_losses=sample_losses)
        text = render_report(self, metrics, figures, self.capture(positive, top_fraction), inference_text(),
                             _(ROWS_BOOTSTRAP))
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def default_positive(classes: tuple[str, ...] | list[str]) -> str:
    """The class business statements count: ``buy`` when there is one, else the last class (1 of 0/1)."""
    return "buy" if "buy" in classes else str(classes[-1])


def capture_at(positive: np.ndarray, score: np.ndarray, *, top_fraction: float | None = None,
               threshold: float | None = None, groups: np.ndarray | None = None, per: int = 1000) -> dict[str, Any]:
    """What acting on the best-scored units yields, in business terms.

    Parameters
    ----------
    positive : array of bool
        Per row: is it the outcome we want (a purchase)?
    score : array of float
        Per row: the model's probability of it.
    top_fraction, threshold : float
        Act on the top ``top_fraction`` of units by score, or on units scoring ``>= threshold`` (one of them).
    groups : array, optional
        Per row its user: units are then users (score: their best row, positive: any positive row).
    per : int
        Report counts per this many units scored.

    Returns
    -------
    dict
        ``unit`` ("user" or "row"), ``scored``, ``selected``, ``captured``, ``positives``,
        ``captured_per_1000``, ``selected_per_1000``, ``positives_per_1000``, ``recall`` (share of all
        positives captured), ``precision`` and ``lift`` (precision / base rate).
    """
    if (top_fraction is None) == (threshold is None):
        raise InvalidParameterError(_("Give either top_fraction or threshold."))
    if top_fraction is not None and not 0 < top_fraction <= 1:
        raise InvalidParameterError(_("top_fraction must be in (0, 1], but got "
                                      "{top_fraction!r}.").format(top_fraction=top_fraction))
    positive = np.asarray(positive).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    unit = "row"
    if groups is not None:
        frame = pd.DataFrame({"g": np.asarray(groups), "p": positive, "s": score}).groupby("g", sort=False)
        positive, score, unit = frame["p"].any().to_numpy(), frame["s"].max().to_numpy(), "user"
    n = len(score)
    if top_fraction is not None:
        selected = np.zeros(n, dtype=bool)
        selected[np.argsort(-score, kind="stable")[:int(math.ceil(top_fraction * n))]] = True
    else:
        selected = score >= threshold
    captured, total, chosen = int((selected & positive).sum()), int(positive.sum()), int(selected.sum())
    base_rate = total / n if n else math.nan
    precision = captured / chosen if chosen else math.nan
    return {"unit": unit, "scored": n, "selected": chosen, "captured": captured, "positives": total,
            "captured_per_1000": per * captured / n if n else math.nan,
            "selected_per_1000": per * chosen / n if n else math.nan,
            "positives_per_1000": per * total / n if n else math.nan,
            "recall": captured / total if total else math.nan, "precision": precision,
            "lift": precision / base_rate if base_rate and np.isfinite(precision) else math.nan}


# --- building it ----------------------------------------------------------------------------------------

def _declared_primary(store: RunStore, runs: list[Run]) -> str | None:
    """The primary score declared with the runs' experiment(s), when they all declare the same one."""
    declared = set()
    for experiment_id in {r.experiment_id for r in runs}:
        try:
            declared.add(store.get_experiment(experiment_id).settings.get("primary"))
        except JobError:
            declared.add(None)
    return declared.pop() if len(declared) == 1 else None


def _pair_rows(per_run: pd.DataFrame, group: str, base: str | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    mine = per_run[per_run["group"] == group].set_index("pair")
    reference = per_run[per_run["group"] == base].set_index("pair") if base else None
    return mine, reference


def _summarise(per_run: pd.DataFrame, names: list[str], base: str | None, metric_columns: list[str], primary: str,
               replicates: dict, level: float) -> tuple[pd.DataFrame, dict[str, stats.SeedTest]]:
    """The summary rows (before adjustment) and the paired test of each group on the primary score."""
    rows, primary_tests = [], {}
    half = (1 - level) / 2
    for group in names:
        mine, reference = _pair_rows(per_run, group, base)
        keys = sorted(set(mine.index) & set(reference.index)) if reference is not None and group != base else []
        is_aa = bool(mine["is_aa"].iloc[0])
        for metric in metric_columns:
            mean, low, high = stats.seed_interval(mine[metric].to_numpy(float), level)
            low, high = clip_to_range(metric, low, high)
            row = {"group": group, "metric": metric, "is_primary": metric == primary, "is_aa": is_aa,
                   "n_seeds": int(mine[metric].notna().sum()), "mean": mean, "ci_low": low, "ci_high": high,
                   "n_pairs": 0, "delta": math.nan, "delta_low": math.nan, "delta_high": math.nan,
                   "p_value": math.nan, "status": "", "prob_improvement": math.nan, "prob_improvement_low": math.nan,
                   "prob_improvement_high": math.nan, "effect_size": math.nan, "rows_delta_low": math.nan,
                   "rows_delta_high": math.nan, "p_rows": math.nan}
            if keys:
                test = stats.paired_seed_test(mine.loc[keys, metric].to_numpy(float),
                                              reference.loc[keys, metric].to_numpy(float), level)
                probability = stats.probability_of_improvement(
                    mine[metric].to_numpy(float), reference[metric].to_numpy(float),
                    higher_is_better=metric not in LOWER_IS_BETTER, level=level)
                row |= {"n_pairs": test.n_pairs, "delta": test.mean, "delta_low": test.low, "delta_high": test.high,
                        "p_value": test.p_value, "status": test.status, "effect_size": stats.effect_size(test),
                        "prob_improvement": probability[0], "prob_improvement_low": probability[1],
                        "prob_improvement_high": probability[2]}
                if metric == primary:
                    primary_tests[group] = test
                boot = replicates.get((group, metric))
                if boot is not None and np.isfinite(boot).any():
                    row["rows_delta_low"], row["rows_delta_high"] = (float(v) for v in np.nanquantile(
                        boot, [half, 1 - half]))
                    row["p_rows"] = stats.bootstrap_p_value(boot)
            rows.append(row)
    return pd.DataFrame(rows), primary_tests


def _adjust(summary: pd.DataFrame, base: str | None, alpha: float) -> pd.DataFrame:
    """Holm across strategies for the primary, BH across the table for the rest; the A/A arm unadjusted."""
    compared = (summary["group"] != base) & ~summary["is_aa"]
    family = compared & summary["is_primary"]
    exploratory = compared & ~summary["is_primary"]
    summary["p_adjusted"] = math.nan
    summary.loc[family, "p_adjusted"] = stats.holm(summary.loc[family, "p_value"].to_numpy())
    summary.loc[exploratory, "p_adjusted"] = stats.benjamini_hochberg(summary.loc[exploratory, "p_value"].to_numpy())
    summary.loc[summary["is_aa"], "p_adjusted"] = summary.loc[summary["is_aa"], "p_value"]
    summary["adjustment"] = np.select([family, exploratory, summary["is_aa"]], ["holm", "bh", "none"], "")
    summary["significant"] = ((summary["p_adjusted"] < alpha) & (summary["status"] == stats.OK)
                              & (summary["n_pairs"] >= stats.MIN_SEEDS))
    summary["alpha"] = alpha
    lower = summary["metric"].isin(LOWER_IS_BETTER)
    summary["better"] = np.where(lower, summary["delta"] < 0, summary["delta"] > 0) & summary["delta"].notna()
    return summary


def _verdict(group: str, base: str, s: dict[str, Any], primary: str) -> str:
    """The sentence on one strategy's primary score."""
    name = metric_title(primary)
    n, needed = int(s["n_pairs"]), stats.MIN_SEEDS - int(s["n_pairs"])
    if not n:
        return _("{group} shares no seed with {base}, so it cannot be paired: train both with the same seeds.").format(
            group=group, base=base)
    if s["status"] == stats.TOO_FEW_SEEDS:
        return (ngettext("{group}: {n} paired seed with {base}; ", "{group}: {n} paired seeds with {base}; ", n)
                + ngettext("a verdict needs at least {min}: add {needed} more seed (mean difference so far {delta}, "
                           "not tested).",
                           "a verdict needs at least {min}: add {needed} more seeds (mean difference so far {delta}, "
                           "not tested).", needed)).format(group=group, n=n, base=base, min=stats.MIN_SEEDS,
                                                           needed=needed, delta=f"{s['delta']:+.4f}")
    values = {"group": group, "base": base, "name": name, "n": n, "delta": f"{s['delta']:+.4f}"}
    if s["status"] == stats.IDENTICAL:
        return _("{group} scores exactly as {base} on {name} on every one of {n} seeds: identical across "
                 "seeds.").format(**values)
    if s["status"] == stats.CONSTANT:
        return _("{group} differs from {base} on {name} by the same {delta} on every one of {n} seeds: there is no "
                 "seed-to-seed spread to test it against (is training deterministic?).").format(**values)
    adjusted = _("not adjusted") if s["is_aa"] else _("Holm-adjusted")
    evidence = _("{delta} [{low}, {high}] ({adjusted} p = {p}, {n} seeds)").format(
        delta=f"{s['delta']:+.4f}", low=f"{s['delta_low']:+.4f}", high=f"{s['delta_high']:+.4f}", adjusted=adjusted,
        p=f"{s['p_adjusted']:.3g}", n=n)
    odds = " " + _("A random seed of {group} beats a random seed of {base} with probability {p} [{low}, {high}]; "
                   "effect size d_z {d}.").format(group=group, base=base, p=f"{s['prob_improvement']:.2f}",
                                                   low=f"{s['prob_improvement_low']:.2f}",
                                                   high=f"{s['prob_improvement_high']:.2f}",
                                                   d=f"{s['effect_size']:+.2f}")
    values["evidence"] = evidence
    if s["is_aa"]:
        if s["significant"]:
            return _("{group} differs from {base} on {name} by {evidence}, though both are the same "
                     "recipe.").format(**values) + odds
        return _("No detectable difference between {group} and {base} on {name}, as it should be: "
                 "{evidence}.").format(**values) + odds
    if s["significant"]:
        template = {(True, True): _("{group} raises {name} by {evidence} over {base}: better."),
                    (True, False): _("{group} raises {name} by {evidence} over {base}: worse."),
                    (False, True): _("{group} lowers {name} by {evidence} over {base}: better."),
                    (False, False): _("{group} lowers {name} by {evidence} over {base}: worse.")}
        return template[(bool(s["delta"] > 0), bool(s["better"]))].format(**values) + odds
    return _("No detectable difference between {group} and {base} on {name}: {evidence}.").format(**values) + odds


def _power(summary: pd.DataFrame, primary_tests: dict[str, stats.SeedTest], base: str | None,
           alpha: float) -> dict[str, Any]:
    """Pooled seed-to-seed spread of the primary's per-seed differences, and the smallest difference detectable."""
    sd, df = stats.pooled_sd(list(primary_tests.values()))
    family = summary[summary["is_primary"] & (summary["group"] != base) & ~summary["is_aa"]]
    compared = max(1, len(family))
    pairs = [int(n) for n in family["n_pairs"] if n] or [t.n_pairs for t in primary_tests.values()] or [0]
    seeds = int(np.median(pairs))
    per_comparison = alpha / compared
    return {"sd": sd, "df": df, "seeds": seeds, "compared": compared, "alpha_per_comparison": per_comparison,
            "target_power": stats.POWER,
            "detectable_difference": stats.minimum_detectable_difference(sd, max(seeds, 2), per_comparison)
            if df else math.nan}


def compare(store: RunStore, *, experiment: str | None = None, run_ids: list[str] | None = None,
            baseline: str = BASELINE, n_bootstrap: int = 1000, alpha: float = 0.05, level: float = 0.95,
            random_state: int = 0, with_validation: bool = True, primary: str | None = None) -> Comparison:
    """Score, summarise and pair the finished runs of an experiment (or the given runs) against the baseline.

    Parameters
    ----------
    store : RunStore
    experiment : str, optional
        Experiment id or name (the latest with that name).
    run_ids : list of str, optional
        Runs to compare instead of an experiment.
    baseline : str
        Strategy every other group is paired with (default ``"none"``: no strategy).
    n_bootstrap : int
        Replicates of the row bootstrap of these trained models (0: none). It never decides significance.
    alpha : float
        Significance level of the verdicts (family-wise for the primary score).
    level : float
        Coverage of the intervals.
    random_state : int
        Seed of the bootstraps' resampling.
    with_validation : bool
        Also score binary runs at the F1-optimal threshold chosen on the validation split, and
        purchase runs by per-user HR@K / NDCG@K (rebuilds missing validation predictions once).
    primary : str, optional
        The primary score. Default: the one declared with the experiment before training, else
        balanced accuracy (several classes) or the positive class's PR-AUC (two classes).

    Returns
    -------
    Comparison

    Raises
    ------
    InvalidDataError
        The runs were scored on different test splits, or none has finished or can be read.
    InvalidParameterError
        A bad level, replicate count or primary score.
    """
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InvalidParameterError(_("n_bootstrap must be a non-negative "
                                      "integer, but got {n_bootstrap!r}.").format(n_bootstrap=n_bootstrap))
    if not 0 < alpha < 1 or not 0 < level < 1:
        raise InvalidParameterError(_("alpha and level must be in (0, 1), but "
                                      "got {alpha!r} and {level!r}.").format(alpha=alpha, level=level))
    runs = select_runs(store, experiment, run_ids)
    notes: list[str] = []
    predictions = load_predictions(store, runs, with_validation=with_validation, notes=notes)
    classes = predictions[0].classes
    per_run = pd.DataFrame([{"run_id": p.run.id, "group": p.group, "strategy": p.strategy,
                             "model": str(p.run.spec.get("model", "")), "seed": p.seed, "pair": p.pair_key,
                             "is_aa": p.is_aa, **_run_metrics(p)} for p in predictions])
    metric_columns = [c for c in per_run.columns
                      if c not in ("run_id", "group", "strategy", "model", "seed", "pair", "is_aa")]
    declared = primary or _declared_primary(store, [p.run for p in predictions])
    ranking = predictions[0].ranking
    chosen = declared or task_scores("ranking" if ranking else "classification", classes)[0]
    if chosen not in metric_columns:
        raise InvalidParameterError(_("The primary score {chosen!r} is not among this comparison's scores; "
                                      "choose one of {metric_columns}.").format(
                                      chosen=chosen, metric_columns=', '.join(metric_columns)))
    names = list(dict.fromkeys(per_run["group"]))
    base = baseline if baseline in names else None
    if base is None:
        notes.append(_("No run used the baseline {baseline!r}: deltas, p-values and verdicts are left empty. Add it "
                       "to the experiment to see what each strategy changes.").format(baseline=baseline))
    notes += _degenerate_notes(predictions)
    # Runs trained with too few optimiser steps barely leave their initialisation, whatever the strategy.
    short = {p.group: p.run.info["short_training_warning"] for p in predictions if p.run.info.get("short_training_warning")}
    notes += [f"{group}: {sentence}" for group, sentence in short.items()]

    replicates = _bootstrap_deltas(predictions, base, n_bootstrap, random_state) if base and n_bootstrap else {}
    summary, primary_tests = _summarise(per_run, names, base, metric_columns, chosen, replicates, level)
    summary = _adjust(summary, base, alpha)
    verdicts, flags = {}, []
    if base is not None:
        for group in names:
            if group == base:
                continue
            cell = summary[(summary["group"] == group) & summary["is_primary"]].iloc[0].to_dict()
            verdicts[group] = _verdict(group, base, cell, chosen)
            if cell["is_aa"] and cell["significant"]:
                flags.append(_("The A/A arm {group} (the baseline again, other seeds) differs significantly from "
                               "{base} on {score} (p = {p}): the comparison is noisier than its intervals say. By "
                               "chance this happens 1 time in 20; if it repeats, add seeds and check the runs for "
                               "non-determinism or a data problem before trusting any verdict.").format(
                    group=group, base=base, score=metric_title(chosen), p=f"{cell['p_value']:.3g}"))
    shown = NEXT_ITEM_METRICS if ranking else DEFAULT_METRICS
    default = list(dict.fromkeys([chosen, *(m for m in shown if m in metric_columns)]))
    return Comparison(predictions, per_run, summary, base, classes, default, chosen, bool(declared), alpha,
                      n_bootstrap if base else 0, _title(store, runs, experiment), notes, verdicts, flags,
                      _power(summary, primary_tests, base, alpha) if base else {})


def _title(store: RunStore, runs: list[Run], experiment: str | None) -> str:
    spec = runs[0].spec
    source = spec.get("source", {})
    data = source.get("sample") or Path(str(source.get("path", "data"))).name
    try:
        name = store.get_experiment(runs[0].experiment_id).name if experiment else f"{len(runs)} runs"
    except JobError:
        name = f"{len(runs)} runs"
    return f"{name} — {data}, {spec.get('task')} task, {spec.get('model')}"


__all__ = ["BASELINE", "BOOTSTRAP_METRICS", "DEFAULT_METRICS", "INFERENCE", "ROWS_BOOTSTRAP", "TUNED", "Comparison",
           "capture_at", "compare", "default_positive", "inference_text"]
