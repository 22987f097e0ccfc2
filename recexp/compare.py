"""Side-by-side evaluation of finished runs: which strategy helped which class, by how much, how surely.

:func:`compare` loads the test predictions of the chosen runs (an experiment, or run ids) from the
run store, checks that every run was scored on the very same test rows, scores each run with
:func:`recexp.metrics.evaluation_metrics`, groups the runs by strategy and summarises every score
over seeds (mean and 95% t-interval). Each strategy is then paired with the "no strategy" baseline
on the same seeds and the same test rows:

* a **paired bootstrap over test rows**: the same resampled rows score both runs of a seed, the
  difference is averaged over the seeds, and the percentile interval and a two-sided p-value come
  from the replicates (threshold scores, ROC-AUC and log-loss);
* a **paired t-test over seeds** (``scipy.stats.ttest_rel``) on every score.

The :class:`Comparison` it returns gives the tidy summary, a wide table with deltas, a business
statement ("buyers captured per 1,000 users scored"), CSV and a self-contained HTML report.

Example
-------
>>> from recexp.runs import SQLiteRunStore                            # doctest: +SKIP
>>> result = compare(SQLiteRunStore.open(), experiment="smote vs none")
>>> result.table(["balanced_accuracy", "f1_macro"])
>>> result.to_html("report.html")
"""

from __future__ import annotations

import html
import json
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recexp.dataset import LABEL, TIME, USER
from recexp.errors import InvalidDataError, InvalidParameterError, JobError, RecexpError
from recexp.metrics import (EVALUATION_METRICS, LOWER_IS_BETTER, class_key, evaluation_metrics, f1_optimal_threshold,
                            predict_labels, ranking_metrics, recall_at_precision, scores_from_confusions,
                            weighted_roc_auc)
from recexp.runs import FINISHED, Run, RunStore

#: The strategy every other one is compared against.
BASELINE = "none"
#: Scores the paired bootstrap over test rows resamples (besides the per-class threshold scores).
BOOTSTRAP_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "mcc", "gmean",
                     "roc_auc", "log_loss")
#: Scores shown first by default on the Compare page and in the report.
DEFAULT_METRICS = ("balanced_accuracy", "f1_macro", "recall_macro", "mcc", "roc_auc", "pr_auc_macro")
#: Suffix of the binary scores at the F1-optimal threshold chosen on the validation split.
TUNED = "_tuned"
#: K of the per-user ranking scores of the purchase task.
RANKING_KS = (5, 10)


# --- loading ------------------------------------------------------------------------------------------

@dataclass
class RunPredictions:
    """One finished run with its test predictions (and validation predictions where needed)."""

    run: Run
    group: str                                 # the strategy (and model / parameters when they differ)
    classes: tuple[str, ...]
    rows: np.ndarray                           # test row positions in the dataset
    y: np.ndarray                              # test label codes
    proba: np.ndarray                          # (n_test, K)
    valid_y: np.ndarray | None = None
    valid_proba: np.ndarray | None = None
    queries: np.ndarray | None = None          # per test row: user (and anchor) id, for top-K ranking

    @property
    def strategy(self) -> str:
        return str(self.run.spec.get("strategy", "?"))

    @property
    def seed(self) -> int:
        return int(self.run.spec.get("seed", 0))

    @property
    def label(self) -> str:
        return f"{self.group} · seed {self.seed}"

    def queries_users(self) -> np.ndarray | None:
        """Per test row its user (the anchor dropped), for business statements per user; ``None`` without users."""
        if self.queries is None:
            return None
        return np.array([str(q).split("@")[0] for q in self.queries])


def select_runs(store: RunStore, experiment: str | None = None, run_ids: list[str] | None = None) -> list[Run]:
    """The finished runs of an experiment (its id or name, the latest of that name) or the given run ids.

    Raises :class:`InvalidParameterError` when neither or both are given, :class:`JobError` for an unknown
    experiment or run, and :class:`InvalidDataError` when a named run has not finished or nothing is left.
    """
    if (experiment is None) == (not run_ids):
        raise InvalidParameterError("Name an experiment or give run ids (one of the two, not both).")
    if experiment is not None:
        matches = [e for e in store.list_experiments() if experiment in (e.id, e.name)]
        if not matches:
            known = ", ".join(f"{e.name!r} ({e.id})" for e in store.list_experiments()) or "none yet"
            raise JobError(f"There is no experiment {experiment!r}; experiments: {known}.")
        runs = [r for r in store.list_runs(matches[-1].id) if r.status == FINISHED]
        if not runs:
            raise InvalidDataError(f"Experiment {experiment!r} has no finished run yet; wait for its runs to finish.")
        return runs
    runs = [store.get_run(r) for r in dict.fromkeys(run_ids or [])]
    unfinished = [f"{r.id} ({r.status})" for r in runs if r.status != FINISHED]
    if unfinished:
        raise InvalidDataError(f"Only finished runs can be compared; not finished: {', '.join(unfinished)}.")
    return runs


def _group_labels(runs: list[Run]) -> dict[str, str]:
    """Run id -> group: the strategy, plus the model or parameters where those differ among the runs."""
    def params(run: Run) -> str:
        return json.dumps(run.spec.get("strategy_params", {}), sort_keys=True)

    models = {r.spec.get("model") for r in runs}
    labels = {}
    for run in runs:
        label = str(run.spec.get("strategy", "?"))
        same_name = [r for r in runs if r.spec.get("strategy") == run.spec.get("strategy")]
        if len({params(r) for r in same_name}) > 1:
            label += " (" + ", ".join(f"{k}={v}" for k, v in run.spec.get("strategy_params", {}).items()) + ")"
        if len(models) > 1:
            label += f" / {run.spec.get('model')}"
        labels[run.id] = label
    return labels


def _data_key(spec: dict[str, Any]) -> str:
    return json.dumps({k: spec.get(k) for k in ("source", "task", "task_params", "split", "fingerprint")},
                      sort_keys=True, default=str)


def _derive_artifacts(store: RunStore, runs: list[Run]) -> list[str]:
    """Write ``valid_predictions`` and ``test_queries`` for runs that lack them, from the checkpoint.

    Runs store only their test predictions; the validation predictions (for a threshold chosen on
    validation) and the test rows' users (for per-user ranking) are rebuilt once from the run's spec
    and ``model.pt`` and kept among its artifacts. Returns a note per run where that was impossible
    (data gone or changed, no checkpoint); those runs are compared without the derived scores.
    """
    notes = []
    prepared: dict[str, tuple | RecexpError] = {}          # one dataset per data spec, or why it failed
    for run in runs:
        try:
            _derive_one(store, run, prepared)
        except RecexpError as error:
            notes.append(f"Run {run.id}: its validation predictions could not be rebuilt ({error}) Its "
                         "tuned-threshold and ranking scores are left out.")
    return notes


def _run_data(run: Run, prepared: dict[str, tuple | RecexpError]) -> tuple:
    """``prepare_data`` of the run's spec, loaded once per data spec into ``prepared`` (a failure too)."""
    from recexp.spec import RunSpec, prepare_data

    key = _data_key(run.spec)
    if key not in prepared:
        try:
            prepared[key] = prepare_data(RunSpec.from_dict(run.spec))
        except RecexpError as error:
            prepared[key] = error
    if isinstance(prepared[key], RecexpError):
        raise prepared[key]
    return prepared[key]


def _derive_one(store: RunStore, run: Run, prepared: dict[str, tuple | RecexpError]) -> None:
    from recexp.models import evaluate, load_checkpoint

    folder = store.artifact_dir(run.id)
    if (folder / "valid_predictions.parquet").exists() and (folder / "test_queries.parquet").exists():
        return
    if not (folder / "model.pt").exists():
        raise InvalidDataError("it has no model checkpoint.")
    dataset, split = _run_data(run, prepared)
    _, module, _ = load_checkpoint(folder / "model.pt")
    valid = dataset.subset(split.valid)
    _, proba = evaluate(module, valid)
    frame = pd.DataFrame({"row": np.asarray(split.valid, dtype=np.int64), LABEL: valid.y})
    for k, name in enumerate(dataset.schema.classes):
        frame[f"proba_{name}"] = proba[:, k]
    store.write_table(run.id, "valid_predictions", frame)
    test = dataset.frame.iloc[np.asarray(split.test)]
    queries = pd.DataFrame({"row": np.asarray(split.test, dtype=np.int64)})
    if USER in test.columns:
        query = test[USER].astype("string").to_numpy()
        if TIME in test.columns and dataset.task == "purchase":
            query = query + "@" + test[TIME].astype("string").to_numpy()
        queries["query"] = query
    store.write_table(run.id, "test_queries", queries)


def _split_proba(frame: pd.DataFrame) -> tuple[tuple[str, ...], np.ndarray]:
    columns = [c for c in frame.columns if c.startswith("proba_")]
    return tuple(c.removeprefix("proba_") for c in columns), frame[columns].to_numpy(np.float64)


def load_predictions(store: RunStore, runs: list[Run], with_validation: bool = False,
                     notes: list[str] | None = None) -> list[RunPredictions]:
    """Test predictions of ``runs`` (plus validation predictions and ranking queries if asked).

    Runs whose validation predictions cannot be rebuilt get a sentence in ``notes`` (when given).

    Raises :class:`InvalidDataError` when the runs were not scored on the same test rows with the same
    labels and classes: paired comparisons are only meaningful on one test split.
    """
    if not runs:
        raise InvalidDataError("No runs to compare: choose at least one finished run.")
    if with_validation:
        (notes if notes is not None else []).extend(_derive_artifacts(store, runs))
    groups = _group_labels(runs)
    loaded = []
    for run in runs:
        frame = store.read_table(run.id, "predictions")
        classes, proba = _split_proba(frame)
        item = RunPredictions(run, groups[run.id], classes, frame["row"].to_numpy(np.int64),
                              frame[LABEL].to_numpy(np.int64), proba)
        if with_validation and (store.artifact_dir(run.id) / "test_queries.parquet").exists():
            valid = store.read_table(run.id, "valid_predictions")
            item.valid_y, item.valid_proba = valid[LABEL].to_numpy(np.int64), _split_proba(valid)[1]
            queries = store.read_table(run.id, "test_queries")
            if "query" in queries.columns and run.spec.get("task") == "purchase":
                item.queries = queries.set_index("row").loc[item.rows, "query"].to_numpy()
        loaded.append(item)
    check_same_test_split(loaded)
    return loaded


def check_same_test_split(predictions: list[RunPredictions]) -> None:
    """Raise :class:`InvalidDataError` unless every run has the same test rows, labels and classes."""
    first = predictions[0]
    for other in predictions[1:]:
        if other.classes != first.classes:
            raise InvalidDataError(
                f"Runs {first.run.id} and {other.run.id} predict different classes ({', '.join(first.classes)} vs "
                f"{', '.join(other.classes)}): they were trained on different tasks or data and cannot be compared. "
                "Compare runs of one dataset and task.")
        if len(other.rows) != len(first.rows) or not (np.array_equal(other.rows, first.rows)
                                                      and np.array_equal(other.y, first.y)):
            raise InvalidDataError(
                f"Runs {first.run.id} and {other.run.id} were scored on different test splits ({len(first.rows):,} vs "
                f"{len(other.rows):,} rows, or other rows or labels), so they cannot be paired. Compare runs of the "
                "same dataset, task and split settings.")


# --- scoring --------------------------------------------------------------------------------------------

def _run_metrics(item: RunPredictions) -> dict[str, float]:
    binary = len(item.classes) == 2
    scores = evaluation_metrics(item.y, item.proba, item.classes, threshold=0.5 if binary else None)
    if binary and item.valid_proba is not None:
        threshold = f1_optimal_threshold(item.valid_y, item.valid_proba[:, 1])
        tuned = evaluation_metrics(item.y, item.proba, item.classes, threshold=threshold)
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
    """Every bootstrap score of one run under the resampling ``counts`` (shape (n, B): rows x replicates)."""
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


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of per-seed scores: ``(mean, low, high)``; bounds ``nan`` below 2 seeds."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else math.nan
    return (mean, *_t_interval(values, level))


def _clip_to_range(metric: str, low: float, high: float) -> tuple[float, float]:
    """Keep a t-interval inside the score's possible range (scores in [0, 1], MCC in [-1, 1], losses >= 0)."""
    if metric in LOWER_IS_BETTER and metric != "ece":
        return max(low, 0.0), high
    if metric.startswith("mcc"):
        return max(low, -1.0), min(high, 1.0)
    if metric.startswith(("hr@", "ndcg@")) or metric in EVALUATION_METRICS or "[" in metric or metric.endswith(TUNED):
        return max(low, 0.0), min(high, 1.0)
    return low, high


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from bootstrap replicates of a difference."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return math.nan
    below, above = (np.count_nonzero(d <= 0) + 1) / (len(d) + 1), (np.count_nonzero(d >= 0) + 1) / (len(d) + 1)
    return float(min(1.0, 2 * min(below, above)))


def paired_seed_test(scores: np.ndarray, baseline: np.ndarray) -> float:
    """p-value of the paired t-test over seeds (``nan`` with fewer than two pairs or no variation)."""
    scores, baseline = np.asarray(scores, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    keep = np.isfinite(scores) & np.isfinite(baseline)
    if keep.sum() < 2:
        return math.nan
    difference = scores[keep] - baseline[keep]
    if np.allclose(difference, 0.0):
        return math.nan                                    # identical scores: nothing to test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.ttest_rel(scores[keep], baseline[keep]).pvalue)


# --- the comparison -------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Everything the Compare page, the CLI and the report show; built by :func:`compare`.

    Attributes
    ----------
    predictions : list of RunPredictions
    per_run : DataFrame
        One row per run: ``run_id``, ``group``, ``strategy``, ``model``, ``seed``, then every score.
    summary : DataFrame
        One row per group and score: ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` (95% over seeds),
        ``delta`` (mean paired difference to the baseline), ``delta_low``, ``delta_high`` (bootstrap
        percentile interval, or the t-interval of the paired differences for scores not
        bootstrapped), ``p_bootstrap``, ``p_seeds``, ``significant`` (``p_bootstrap < alpha``, or
        ``p_seeds`` where there is no bootstrap), ``significant_seeds`` (``p_seeds < alpha``),
        ``alpha`` and ``better`` (the delta points the good way).
    baseline : str or None
        The baseline group, ``None`` when no run used it.
    """

    predictions: list[RunPredictions]
    per_run: pd.DataFrame
    summary: pd.DataFrame
    baseline: str | None
    classes: tuple[str, ...]
    metrics: list[str]
    alpha: float = 0.05
    n_bootstrap: int = 0
    title: str = "Comparison"
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        """Groups in display order: the baseline first."""
        names = list(dict.fromkeys(self.per_run["group"]))
        return ([self.baseline] if self.baseline in names else []) + [g for g in names if g != self.baseline]

    @property
    def task(self) -> str:
        return str(self.predictions[0].run.spec.get("task", ""))

    def group_predictions(self, group: str) -> list[RunPredictions]:
        return [p for p in self.predictions if p.group == group]

    def table(self, metrics: list[str] | tuple[str, ...] | None = None, digits: int = 4) -> pd.DataFrame:
        """Wide table: one row per score, per group ``mean [low, high]`` and a ``Δ <group>`` column.

        A delta reads ``+0.0123 * (p rows 0.004, seeds 0.210)``: ``*`` marks significance at ``alpha`` by
        the paired bootstrap over test rows, ``†`` by the paired t-test over seeds.
        """
        metrics = list(metrics or self.metrics)
        rows = []
        for metric in metrics:
            row: dict[str, Any] = {"metric": metric}
            for group in self.groups:
                s = self._cell(group, metric)
                if s is None:
                    continue
                row[group] = _format_interval(s["mean"], s["ci_low"], s["ci_high"], digits)
                if self.baseline is not None and group != self.baseline:
                    row[f"Δ {group}"] = _format_delta(s, digits)
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
        """JSON-able form: per group its strategy, seeds, run ids and every score with interval, delta, p."""
        metrics = list(metrics or self.summary["metric"].unique())
        groups = []
        for group in self.groups:
            runs = self.per_run[self.per_run["group"] == group]
            scores = {}
            for metric in metrics:
                s = self._cell(group, metric)
                if s is not None:
                    scores[metric] = {k: _finite(s[k]) for k in ("mean", "ci_low", "ci_high", "delta", "delta_low",
                                                                 "delta_high", "p_bootstrap", "p_seeds")}
                    scores[metric]["significant"] = bool(s["significant"])
                    scores[metric]["significant_seeds"] = bool(s["significant_seeds"])
            groups.append({"group": group, "strategy": str(runs["strategy"].iloc[0]),
                           "model": str(runs["model"].iloc[0]), "seeds": [int(s) for s in runs["seed"]],
                           "runs": list(runs["run_id"]), "is_baseline": group == self.baseline, "metrics": scores})
        return {"title": self.title, "task": self.task, "classes": list(self.classes), "baseline": self.baseline,
                "alpha": self.alpha, "n_bootstrap": self.n_bootstrap, "test_rows": int(len(self.predictions[0].y)),
                "notes": self.notes, "groups": groups}

    def capture(self, positive: str, top_fraction: float | None = None, per: int = 1000,
                threshold: float | None = None) -> pd.DataFrame:
        """Per group (mean over seeds): scoring everyone and acting on the top ``top_fraction`` (or on
        every unit whose probability of ``positive`` is at least ``threshold``).

        For the purchase task the unit is a user (score: their best item, positive: bought anything),
        otherwise a test row. Columns: ``group``, ``captured_per_1000``, ``recall``, ``precision``,
        ``lift``, ``selected_per_1000``, ``delta_per_1000`` (vs the baseline) and ``statement``.
        """
        if positive not in self.classes:
            raise InvalidParameterError(f"Class {positive!r} is not one of {', '.join(self.classes)}.")
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
        unit_noun = "users" if frame["unit"].iloc[0] == "user" else "rows"
        noun = "buyers" if positive == "buy" else f"'{positive}' {unit_noun}"
        frame["statement"] = [
            f"{r.group}: acting on " + (f"the top {top_fraction:.0%} of {r.unit}s scored" if top_fraction is not None
                                        else f"the {r.selected_per_1000:.0f} per {per:,} {r.unit}s scoring at least "
                                             f"{threshold:.2f}")
            + f" captures {r.captured_per_1000:.1f} {noun} per {per:,} {r.unit}s scored ({r.recall:.0%} of all "
            f"{r.positives_per_1000:.1f}; {r.lift:.1f}x random)" + (f", {r.delta_per_1000:+.1f} vs {self.baseline}"
                                        if self.baseline and r.group != self.baseline and np.isfinite(r.delta_per_1000)
                                        else "") + "."
            for r in frame.itertuples()]
        return frame

    def recall_at_precision(self, positive: str, min_precision: float) -> pd.DataFrame:
        """Per group: mean (over seeds) recall of ``positive`` at precision >= ``min_precision``, and the threshold."""
        k = self.classes.index(positive)
        rows = []
        for group in self.groups:
            values = [recall_at_precision(p.y == k, p.proba[:, k], min_precision)
                      for p in self.group_predictions(group)]
            recalls = np.array([v[0] for v in values])
            mean, low, high = seed_interval(recalls)
            rows.append({"group": group, "recall": mean, "ci_low": low, "ci_high": high,
                         "threshold": float(np.nanmean([v[1] for v in values])) if any(
                             np.isfinite(v[1]) for v in values) else math.nan})
        return pd.DataFrame(rows)

    def to_html(self, path: str | Path | None = None, metrics: list[str] | None = None,
                positive: str | None = None, top_fraction: float = 0.1,
                epoch_metrics: pd.DataFrame | None = None, sample_losses: pd.DataFrame | None = None) -> str:
        """One self-contained HTML report (plotly embedded inline; opens offline without recexp)."""
        from recexp.charts.compare import report_figures

        metrics = list(metrics or self.metrics)
        positive = positive or default_positive(self.classes)
        figures = report_figures(self, metrics, positive, epoch_metrics=epoch_metrics, sample_losses=sample_losses)
        text = render_report(self, metrics, figures, self.capture(positive, top_fraction))
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _format_delta(s: dict[str, Any], digits: int) -> str:
    if not np.isfinite(s["delta"]):
        return "–"
    marks = ("*" if s["p_bootstrap"] < s["alpha"] else "") + ("†" if s["p_seeds"] < s["alpha"] else "")
    p_values = [f"{name} {s[key]:.3f}" for name, key in (("rows", "p_bootstrap"), ("seeds", "p_seeds"))
                if np.isfinite(s[key])]
    return f"{s['delta']:+.{digits}f}" + (f" {marks}" if marks else "") + (
        f" (p {', '.join(p_values)})" if p_values else "")


def _format_interval(mean: float, low: float, high: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


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
        raise InvalidParameterError("Give either top_fraction or threshold.")
    if top_fraction is not None and not 0 < top_fraction <= 1:
        raise InvalidParameterError(f"top_fraction must be in (0, 1], but got {top_fraction!r}.")
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


def compare(store: RunStore, *, experiment: str | None = None, run_ids: list[str] | None = None,
            baseline: str = BASELINE, n_bootstrap: int = 1000, alpha: float = 0.05, level: float = 0.95,
            random_state: int = 0, with_validation: bool = True) -> Comparison:
    """Score, summarise and pair the finished runs of an experiment (or the given runs) against the baseline.

    Parameters
    ----------
    store : RunStore
    experiment : str, optional
        Experiment id or name (the latest with that name).
    run_ids : list of str, optional
        Runs to compare instead of an experiment.
    baseline : str
        Group every other group is paired with (default ``"none"``: no strategy).
    n_bootstrap : int
        Bootstrap replicates over test rows (0: no bootstrap, seed-level tests only).
    alpha : float
        Significance level of the marks.
    level : float
        Coverage of the intervals.
    random_state : int
        Seed of the bootstrap's resampling.
    with_validation : bool
        Also score binary runs at the F1-optimal threshold chosen on the validation split, and
        purchase runs by per-user HR@K / NDCG@K (rebuilds missing validation predictions once).

    Returns
    -------
    Comparison

    Raises
    ------
    InvalidDataError
        The runs were scored on different test splits, or none has finished.
    """
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InvalidParameterError(f"n_bootstrap must be a non-negative integer, but got {n_bootstrap!r}.")
    if not 0 < alpha < 1 or not 0 < level < 1:
        raise InvalidParameterError(f"alpha and level must be in (0, 1), but got {alpha!r} and {level!r}.")
    runs = select_runs(store, experiment, run_ids)
    notes: list[str] = []
    predictions = load_predictions(store, runs, with_validation=with_validation, notes=notes)
    classes = predictions[0].classes
    per_run = pd.DataFrame([{"run_id": p.run.id, "group": p.group, "strategy": p.strategy,
                             "model": str(p.run.spec.get("model", "")), "seed": p.seed, **_run_metrics(p)}
                            for p in predictions])
    names = list(dict.fromkeys(per_run["group"]))
    base = baseline if baseline in names else None
    if base is None:
        notes.append(f"No run used the baseline {baseline!r}: deltas and p-values are left empty. Add it to the "
                     "experiment to see what each strategy changes.")
    metric_columns = [c for c in per_run.columns if c not in ("run_id", "group", "strategy", "model", "seed")]
    # Runs trained with too few optimiser steps barely leave their initialisation, whatever the strategy.
    short = {p.group: p.run.info["short_training_warning"] for p in predictions if p.run.info.get("short_training_warning")}
    notes += [f"{group}: {sentence}" for group, sentence in short.items()]

    replicates = _bootstrap_deltas(predictions, base, n_bootstrap, random_state) if base and n_bootstrap else {}
    half_alpha = (1 - level) / 2
    rows = []
    for group in names:
        mine = per_run[per_run["group"] == group].set_index("seed")
        reference = per_run[per_run["group"] == base].set_index("seed") if base else None
        seeds = sorted(set(mine.index) & set(reference.index)) if reference is not None else []
        if base and group != base and not seeds:
            notes.append(f"{group} shares no seed with {base}: it cannot be paired.")
        for metric in metric_columns:
            mean, low, high = seed_interval(mine[metric].to_numpy(), level)
            low, high = _clip_to_range(metric, low, high)
            row = {"group": group, "metric": metric, "n_seeds": int(mine[metric].notna().sum()), "mean": mean,
                   "ci_low": low, "ci_high": high, "delta": math.nan, "delta_low": math.nan, "delta_high": math.nan,
                   "p_bootstrap": math.nan, "p_seeds": math.nan}
            if seeds and group != base:
                a, b = mine.loc[seeds, metric].to_numpy(float), reference.loc[seeds, metric].to_numpy(float)
                differences = a - b
                row["delta"] = float(np.nanmean(differences)) if np.isfinite(differences).any() else math.nan
                row["p_seeds"] = paired_seed_test(a, b)
                boot = replicates.get((group, metric))
                if boot is not None and np.isfinite(boot).any():
                    row["delta_low"], row["delta_high"] = (float(v) for v in np.nanquantile(
                        boot, [half_alpha, 1 - half_alpha]))
                    row["p_bootstrap"] = bootstrap_p_value(boot)
                else:
                    row["delta_low"], row["delta_high"] = _t_interval(differences, level)
            rows.append(row)
    summary = pd.DataFrame(rows)
    p_used = summary["p_bootstrap"].where(summary["p_bootstrap"].notna(), summary["p_seeds"])
    summary["significant"] = (p_used < alpha).fillna(False).astype(bool)
    summary["significant_seeds"] = (summary["p_seeds"] < alpha).fillna(False).astype(bool)
    summary["alpha"] = alpha
    lower = summary["metric"].isin(LOWER_IS_BETTER)
    summary["better"] = np.where(lower, summary["delta"] < 0, summary["delta"] > 0) & summary["delta"].notna()
    title = _title(store, runs, experiment)
    default = [m for m in DEFAULT_METRICS if m in metric_columns]
    return Comparison(predictions, per_run, summary, base, classes, default, alpha, n_bootstrap if base else 0, title,
                      notes)


def _title(store: RunStore, runs: list[Run], experiment: str | None) -> str:
    spec = runs[0].spec
    source = spec.get("source", {})
    data = source.get("sample") or Path(str(source.get("path", "data"))).name
    try:
        name = store.get_experiment(runs[0].experiment_id).name if experiment else f"{len(runs)} runs"
    except JobError:
        name = f"{len(runs)} runs"
    return f"{name} — {data}, {spec.get('task')} task, {spec.get('model')}"


def _bootstrap_deltas(predictions: list[RunPredictions], baseline: str, n_bootstrap: int,
                      random_state: int, chunk: int = 100) -> dict[tuple[str, str], np.ndarray]:
    """(group, score) -> bootstrap replicates of the seed-averaged paired difference to the baseline.

    Every run is scored on the same resampled test rows (one shared set of replicates), so the
    difference of a seed's pair is paired row by row.
    """
    n = len(predictions[0].y)
    rng = np.random.default_rng(random_state)
    by_group: dict[str, dict[int, RunPredictions]] = {}
    for p in predictions:
        by_group.setdefault(p.group, {})[p.seed] = p
    base_runs = by_group[baseline]
    pairs = {g: sorted(set(runs) & set(base_runs)) for g, runs in by_group.items() if g != baseline}
    needed = {p.run.id: p for g, seeds in pairs.items() for s in seeds for p in (by_group[g][s], base_runs[s])}
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
    for group, seeds in pairs.items():
        if not seeds:
            continue
        metrics = scores[by_group[group][seeds[0]].run.id]
        for metric in metrics:
            differences = np.vstack([scores[by_group[group][s].run.id][metric] - scores[base_runs[s].run.id][metric]
                                     for s in seeds])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                result[(group, metric)] = np.nanmean(differences, axis=0)
    return result


def sample_losses(store: RunStore, comparison: Comparison, max_rows_per_run: int = 5000,
                  random_state: int = 0) -> pd.DataFrame:
    """Each training row's mean loss over epochs, per run, from ``sample_stats.parquet`` (where stored).

    Returns a frame ``run_id``, ``group``, ``seed``, ``is_synthetic``, ``loss`` with at most
    ``max_rows_per_run`` rows per run (a uniform sample, so plots stay light); empty when no run
    recorded per-sample statistics.
    """
    rng = np.random.default_rng(random_state)
    parts = []
    for item in comparison.predictions:
        if not (store.artifact_dir(item.run.id) / "sample_stats.parquet").exists():
            continue
        frame = store.read_table(item.run.id, "sample_stats")
        per_row = frame.groupby("row", sort=True).agg(loss=("loss", "mean"), is_synthetic=("is_synthetic", "first"))
        if len(per_row) > max_rows_per_run:
            per_row = per_row.iloc[np.sort(rng.choice(len(per_row), max_rows_per_run, replace=False))]
        parts.append(per_row.reset_index(drop=True).assign(run_id=item.run.id, group=item.group, seed=item.seed))
    if not parts:
        return pd.DataFrame(columns=["run_id", "group", "seed", "is_synthetic", "loss"])
    return pd.concat(parts, ignore_index=True)[["run_id", "group", "seed", "is_synthetic", "loss"]]


def sample_importance(store: RunStore, comparison: Comparison, method: str = "mean_loss",
                      max_rows_per_run: int = 5000, random_state: int = 0) -> pd.DataFrame:
    """Each training row's sample-importance value under ``method``, per compared run (where it can be valued).

    Values come from :func:`recexp.importance.run_importance` (computed once, then read from each run's
    artifacts). Returns a frame ``run_id``, ``group``, ``seed``, ``class``, ``is_synthetic``, ``value`` with at
    most ``max_rows_per_run`` rows per run (a uniform sample), and the sentences of runs that could not be
    valued (e.g. trained before recexp kept training rows) in ``frame.attrs["notes"]``.
    """
    from recexp.importance import TrainedRun, cached_values_path, get_method, run_importance

    rng = np.random.default_rng(random_state)
    parts, notes = [], []
    valuer = get_method(method)
    prepared: dict[str, tuple | RecexpError] = {}      # data of runs not valued yet, loaded once per data spec
    for item in comparison.predictions:
        try:
            run = None
            if not cached_values_path(store, item.run.id, valuer, 0).exists():
                run = TrainedRun.load(store, item.run.id, data=_run_data(item.run, prepared))
            values = run_importance(store, item.run.id, valuer, run=run).values
        except RecexpError as error:
            notes.append(f"{item.label}: {error}")
            continue
        if len(values) > max_rows_per_run:
            values = values.iloc[np.sort(rng.choice(len(values), max_rows_per_run, replace=False))]
        parts.append(values.assign(run_id=item.run.id, group=item.group, seed=item.seed))
    columns = ["run_id", "group", "seed", "class", "is_synthetic", "value"]
    frame = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    frame.attrs["notes"] = notes
    return frame

# --- the report ---------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem} th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:right}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left} .note{color:#555;font-size:.9rem}
"""


def render_report(comparison: Comparison, metrics: list[str], figures: dict[str, Any],
                  capture: pd.DataFrame) -> str:
    """The HTML text of the report: the table, the business statement and the figures, plotly.js inline once."""
    from plotly.offline import get_plotlyjs

    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = comparison.per_run
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(comparison.title)}</title><style>{_STYLE}</style>",
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(comparison.title)}</h1>",
        f"<p class='note'>{len(runs)} runs, {len(comparison.groups)} strategies, seeds "
        f"{', '.join(str(s) for s in sorted(set(runs['seed'])))}; {len(comparison.predictions[0].y):,} test rows "
        f"(the same for every run). Intervals: 95% over seeds. Deltas: paired with "
        f"<b>{html.escape(str(comparison.baseline))}</b> on the same seeds and test rows; * = significant at "
        f"{comparison.alpha:g} by the paired bootstrap over test rows ({comparison.n_bootstrap:,} replicates), "
        f"† = by the paired t-test over seeds. Created {created} with recexp.</p>",
        "<h2>Scores</h2>", comparison.table(metrics).to_html(escape=True),
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


__all__ = ["BASELINE", "BOOTSTRAP_METRICS", "DEFAULT_METRICS", "EVALUATION_METRICS", "Comparison", "RunPredictions",
           "bootstrap_p_value", "capture_at", "check_same_test_split", "compare", "default_positive",
           "load_predictions", "paired_seed_test", "render_report", "sample_losses", "seed_interval", "select_runs"]
