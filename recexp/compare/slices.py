"""A comparison by slice: who a strategy helps and who it hurts (new users, new items, the long tail, categories).

:func:`compare_by_slice` labels the test rows of a :class:`~recexp.compare.Comparison` of a log task with
their slices (:mod:`recexp.slices`, learned from the training rows only), scores the comparison's primary
score on the rows of every slice for every run, and summarises it over seeds as the comparison does: per
slice and strategy the mean and 95% t-interval over seeds (:func:`~recexp.compare.stats.seed_interval`), and
the difference to the baseline paired by seed with its t-interval and paired t-test
(:func:`~recexp.compare.stats.paired_seed_test`). Slice results are exploratory: their p-values are
Benjamini-Hochberg-adjusted across the slice table and never change a verdict.

A slice with too few test rows (:data:`MIN_SLICE_ROWS`), too few rows of the class a per-class score is
about (:data:`MIN_CLASS_ROWS`), an undefined score, or fewer than two seeds for an interval is kept in the
table with ``enough = False`` and the reason, not hidden.

Example
-------
>>> from recexp.compare import compare, compare_by_slice            # doctest: +SKIP
>>> sliced = compare_by_slice(compare(store, experiment="taobao"))
>>> sliced.to_records()[0]["slice"], sliced.worst()
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recexp.compare import stats
from recexp.compare.comparison import Comparison, clip_to_range
from recexp.compare.report import finite, format_interval, metric_title
from recexp.errors import InvalidDataError
from recexp.i18n import _, format_decimal, format_integer, ngettext
from recexp.metrics import (EVALUATION_METRICS, LOWER_IS_BETTER, NEXT_ITEM_PRIMARY, PER_CLASS_METRICS, default_primary,
                            evaluation_metrics, predict_labels, scores_from_confusions)
from recexp.slices import DIMENSIONS, slice_test_rows
from recexp.spec import RunSpec, prepare_data
from recexp.tasks import get_task


#: Fewest test rows in a slice for its interval to be shown as meaningful.
MIN_SLICE_ROWS = 50
#: Fewest rows of the class a per-class score (``pr_auc[buy]``) is about, in a slice.
MIN_CLASS_ROWS = 5
#: Columns of each record of :meth:`SliceComparison.to_records` (the CLI's ``"slices"`` list).
RECORD_KEYS = ("slice", "dimension", "segment", "group", "metric", "mean", "ci_low", "ci_high", "n_test_rows",
               "n_seeds", "n_pairs", "delta", "delta_low", "delta_high", "p_value", "p_adjusted", "status", "better",
               "enough", "reason", "is_baseline", "is_aa")


def _sliceable(metric: str, classes: tuple[str, ...]) -> bool:
    """Whether :func:`~recexp.metrics.evaluation_metrics` gives ``metric`` (not the tuned or ranking scores)."""
    return metric in EVALUATION_METRICS or any(metric == f"{m}[{c}]" for m in PER_CLASS_METRICS for c in classes)


def _class_of(metric: str) -> str | None:
    """The class a per-class score is about (``pr_auc[buy]`` -> ``buy``), else ``None``."""
    return metric.partition("[")[2].removesuffix("]") or None


@dataclass
class SliceComparison:
    """The primary score per slice and strategy; built by :func:`compare_by_slice`.

    Attributes
    ----------
    table : DataFrame
        One row per slice and group (strategy): ``dimension``, ``segment``, ``slice`` (``"dimension: segment"``),
        ``group``, ``metric``, ``n_test_rows``, ``n_seeds``, ``mean``, ``ci_low``, ``ci_high`` (95% over seeds),
        against the baseline ``n_pairs``, ``delta``, ``delta_low``, ``delta_high`` (paired by seed), ``p_value``,
        ``p_adjusted`` (Benjamini-Hochberg across the table), ``status``, ``better``; ``enough`` and ``reason``
        (why a slice's interval is not to be read), ``is_baseline``, ``is_aa``.
    per_seed : DataFrame
        The score of every run on every slice: ``dimension``, ``segment``, ``group``, ``run_id``, ``seed``,
        ``pair``, ``n_test_rows``, ``score``.
    metric : str
        The score sliced: the comparison's primary where it can be computed per slice.
    baseline : str or None
    notes : list of str
    """

    table: pd.DataFrame
    per_seed: pd.DataFrame
    metric: str
    baseline: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def worst(self) -> pd.DataFrame:
        """Per strategy, among slices with enough rows: the slice it scores worst on, and the one it loses most on.

        Columns ``group``, ``worst_slice``, ``worst_mean``, ``worst_ci_low``, ``worst_ci_high``, ``most_lost_slice``
        and ``most_lost_delta`` (its difference to the baseline; empty for the baseline itself or where every
        difference is a gain).
        """
        rows = []
        enough = self.table[self.table["enough"] & self.table["mean"].notna()]
        sign = 1 if self.higher_is_better else -1
        for group, part in enough.groupby("group", sort=False):
            worst = part.loc[(sign * part["mean"]).idxmin()]
            row = {"group": group, "worst_slice": worst["slice"], "worst_mean": worst["mean"],
                   "worst_ci_low": worst["ci_low"], "worst_ci_high": worst["ci_high"], "most_lost_slice": None,
                   "most_lost_delta": math.nan}
            losses = part[(sign * part["delta"]) < 0]
            if len(losses):
                lost = losses.loc[(sign * losses["delta"]).idxmin()]
                row |= {"most_lost_slice": lost["slice"], "most_lost_delta": lost["delta"]}
            rows.append(row)
        return pd.DataFrame(rows, columns=["group", "worst_slice", "worst_mean", "worst_ci_low", "worst_ci_high",
                                           "most_lost_slice", "most_lost_delta"])

    def worst_sentences(self) -> list[str]:
        """One sentence per strategy on its worst slice (and the slice it loses most on against the baseline)."""
        name = _(metric_title(self.metric))
        sentences = []
        for row in self.worst().itertuples():
            score = format_decimal(row.worst_mean, 4) + (
                f" [{format_decimal(row.worst_ci_low, 4)}, {format_decimal(row.worst_ci_high, 4)}]"
                if np.isfinite(row.worst_ci_low) else "")
            text = _("{group} scores worst on {slice}: {metric} {score}.").format(
                group=row.group, slice=row.worst_slice, metric=name, score=score)
            if isinstance(row.most_lost_slice, str):
                text += " " + _("Against {baseline} it loses most on {slice} ({delta}).").format(
                    baseline=self.baseline, slice=row.most_lost_slice, delta=f"{row.most_lost_delta:+.4f}")
            sentences.append(text)
        return sentences

    def view(self, digits: int = 4) -> pd.DataFrame:
        """Wide table for reading: one row per slice, per group ``mean [low, high]`` and ``Δ <group>``, marks for
        slices without enough rows or seeds (``†``, with the reason in the ``note`` column). Its headings are in the
        current language."""
        rows: dict[str, dict[str, Any]] = {}
        test_rows, note = _("test rows"), _("note")
        for r in self.table.itertuples():
            row = rows.setdefault(r.slice, {test_rows: int(r.n_test_rows), note: ""})
            mark = "" if r.enough else " †"
            row[r.group] = format_interval(r.mean, r.ci_low, r.ci_high, digits) + mark
            if self.baseline is not None and not r.is_baseline:
                row[f"Δ {r.group}"] = _signed_interval(r.delta, r.delta_low, r.delta_high, digits) + mark
            if not r.enough and r.reason not in row[note]:
                row[note] = "; ".join(filter(None, [row[note], r.reason]))
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = _("slice")
        return frame[[c for c in frame.columns if c != note] + [note]]

    def to_records(self) -> list[dict[str, Any]]:
        """The table as JSON-able records (the CLI's ``"slices"`` list), keys :data:`RECORD_KEYS`."""
        records = []
        for row in self.table.to_dict("records"):
            record = {}
            for key in RECORD_KEYS:
                value = row[key]
                if isinstance(value, (bool, np.bool_)):
                    record[key] = bool(value)
                elif isinstance(value, (int, np.integer)):
                    record[key] = int(value)
                elif isinstance(value, (float, np.floating)):
                    record[key] = finite(value)
                else:
                    record[key] = value
            records.append(record)
        return records

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the score sliced, the dimensions, the records, the worst slices and the notes."""
        worst = [{k: (finite(v) if isinstance(v, float) else v) for k, v in row.items()}
                 for row in self.worst().to_dict("records")]
        return {"metric": self.metric, "baseline": self.baseline, "dimensions": DIMENSIONS,
                "min_test_rows": MIN_SLICE_ROWS, "slices": self.to_records(), "worst_slices": worst,
                "notes": self.notes}


def _signed_interval(delta: float, low: float, high: float, digits: int) -> str:
    """A signed difference and its interval, ``+0.0123 [-0.0040, +0.0206]``; ``–`` without a difference."""
    if not np.isfinite(delta):
        return "–"
    interval = f" [{low:+.{digits}f}, {high:+.{digits}f}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"{delta:+.{digits}f}{interval}"


def segment_scores(y: np.ndarray, proba: np.ndarray, classes: tuple[str, ...] | list[str], codes: np.ndarray,
                   n_segments: int, metric: str, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """``metric`` on the rows of each segment ``0 .. n_segments - 1`` (``codes``: each row's segment); ``nan`` if empty.
    Rows count by ``sample_weight`` where given (a test split down-sampled at build time).

    Threshold scores (balanced accuracy, F1, MCC...) come from one confusion matrix per segment, all at once
    (:func:`~recexp.metrics.scores_from_confusions`, the definitions of :func:`~recexp.metrics.evaluation_metrics`,
    two classes at the 0.5 threshold as the full-test scores); scores of the probabilities (PR-AUC, ROC-AUC,
    log-loss) from :func:`~recexp.metrics.evaluation_metrics` on each segment's rows.
    """
    classes = [str(c) for c in classes]
    k = len(classes)
    threshold = 0.5 if k == 2 else None
    codes = np.asarray(codes, dtype=np.int64)
    sizes = np.bincount(codes, minlength=n_segments)
    if metric in scores_from_confusions(np.zeros((k, k)), classes):
        cells = (codes * k + y) * k + predict_labels(proba, threshold)
        confusions = np.bincount(cells, weights=sample_weight, minlength=n_segments * k * k).reshape(n_segments, k, k)
        return np.where(sizes > 0, scores_from_confusions(confusions, classes)[metric], math.nan)
    return np.array([evaluation_metrics(y[codes == s], proba[codes == s], classes, threshold,
                                        None if sample_weight is None else sample_weight[codes == s])[metric]
                     if sizes[s] else math.nan for s in range(n_segments)], dtype=np.float64)


def _scores(comparison: Comparison, labels: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The score of every run on the rows of every slice (``nan`` where a slice has no rows)."""
    rows = []
    for dimension in labels.columns:
        segments = labels[dimension].cat.categories
        codes = labels[dimension].cat.codes.to_numpy(np.int64)
        sizes = np.bincount(codes, minlength=len(segments))
        for item in comparison.predictions:
            if item.ranking:         # next-item: the mean of the per-row score over each segment's rows
                totals = np.bincount(codes, weights=item.row_scores[metric].to_numpy(np.float64),
                                     minlength=len(segments))
                values = np.where(sizes > 0, totals / np.maximum(sizes, 1), math.nan)
            else:
                values = segment_scores(item.y, item.proba, comparison.classes, codes, len(segments), metric,
                                        item.weight)
            rows += [{"dimension": dimension, "segment": str(segment), "group": item.group, "run_id": item.run.id,
                      "seed": item.seed, "pair": item.pair_key, "is_aa": item.is_aa, "n_test_rows": int(sizes[s]),
                      "score": float(values[s])} for s, segment in enumerate(segments)]
    return pd.DataFrame(rows)


def _reason(n_rows: int, n_class_rows: int | None, class_name: str | None, n_seeds: int) -> str:
    if not n_rows:
        return _("no test rows")
    if n_rows < MIN_SLICE_ROWS:
        return ngettext("only {n} test row (an interval needs at least {min})",
                        "only {n} test rows (an interval needs at least {min})", n_rows).format(
            n=format_integer(n_rows), min=format_integer(MIN_SLICE_ROWS))
    if n_class_rows is not None and n_class_rows < MIN_CLASS_ROWS:
        if n_class_rows:
            return ngettext("only {n} '{label}' test row; the score needs at least {min}",
                            "only {n} '{label}' test rows; the score needs at least {min}", n_class_rows).format(
                n=format_integer(n_class_rows), label=class_name, min=format_integer(MIN_CLASS_ROWS))
        return _("no '{label}' test row (the score is undefined); the score needs at least {min}").format(
            label=class_name, min=format_integer(MIN_CLASS_ROWS))
    if n_seeds < 2:
        return ngettext("{n} seed with a score (an interval needs at least 2)",
                        "{n} seeds with a score (an interval needs at least 2)", n_seeds).format(
            n=format_integer(n_seeds))
    return ""


def _summarise(per_seed: pd.DataFrame, comparison: Comparison, labels: pd.DataFrame, metric: str,
               level: float) -> pd.DataFrame:
    base = comparison.baseline
    class_name = _class_of(metric)
    y = comparison.predictions[0].y
    positive = (y == comparison.classes.index(class_name)) if class_name in comparison.classes else None
    rows = []
    for (dimension, segment), part in per_seed.groupby(["dimension", "segment"], sort=False):
        n_rows = int(part["n_test_rows"].iloc[0])
        n_class = int(positive[(labels[dimension] == segment).to_numpy()].sum()) if positive is not None else None
        reference = part[part["group"] == base].set_index("pair")["score"] if base is not None else None
        for group in comparison.groups:
            mine = part[part["group"] == group].set_index("pair")["score"]
            scores = mine.to_numpy(float)
            mean, low, high = stats.seed_interval(scores, level)
            n_seeds = int(np.isfinite(scores).sum())
            reason = _reason(n_rows, n_class, class_name, n_seeds)
            low, high = clip_to_range(metric, low, high)
            row = {"dimension": dimension, "segment": segment, "slice": f"{dimension}: {segment}", "group": group,
                   "metric": metric, "n_test_rows": n_rows, "n_seeds": n_seeds, "mean": mean,
                   "ci_low": low, "ci_high": high, "n_pairs": 0,
                   "delta": math.nan, "delta_low": math.nan, "delta_high": math.nan, "p_value": math.nan, "status": "",
                   "enough": not reason, "reason": reason, "is_baseline": group == base,
                   "is_aa": bool(comparison.per_run.loc[comparison.per_run["group"] == group, "is_aa"].iloc[0])}
            if reference is not None and group != base:
                keys = sorted(set(mine.index) & set(reference.index))
                if keys:
                    test = stats.paired_seed_test(mine.loc[keys].to_numpy(float), reference.loc[keys].to_numpy(float),
                                                  level)
                    row |= {"n_pairs": test.n_pairs, "delta": test.mean, "delta_low": test.low,
                            "delta_high": test.high, "p_value": test.p_value, "status": test.status}
            rows.append(row)
    table = pd.DataFrame(rows)
    compared = ~table["is_baseline"] & ~table["is_aa"] & table["enough"]
    table["p_adjusted"] = math.nan
    table.loc[compared, "p_adjusted"] = stats.benjamini_hochberg(table.loc[compared, "p_value"].to_numpy())
    sign = 1 if metric not in LOWER_IS_BETTER else -1
    table["better"] = (sign * table["delta"] > 0) & table["delta"].notna()
    return table


def compare_by_slice(comparison: Comparison, level: float = 0.95, top_categories: int = 5) -> SliceComparison:
    """The comparison's primary score per slice of the test rows, for every strategy, with intervals over seeds.

    The slices are learned from the compared runs' training rows (their data spec is loaded once; every run
    shares it, since they were scored on the same test split).

    Parameters
    ----------
    comparison : Comparison
        Runs of a log task (``behavior`` or ``purchase``).
    level : float
        Coverage of the intervals.
    top_categories : int
        Categories named on their own in the ``category`` slice.

    Returns
    -------
    SliceComparison

    Raises
    ------
    InvalidDataError
        The runs are of a feature table (no users or items), or their data cannot be loaded any more.
    """
    task = comparison.task
    if "log" not in get_task(task).input_kinds:
        raise InvalidDataError(_("Slices (new vs returning users, new vs known items...) are defined for tasks built "
                                 "from a behaviour log; these runs are of the '{task}' task, whose rows have no users "
                                 "or items.").format(task=task))
    notes = []
    metric = comparison.primary
    first = comparison.predictions[0]
    if first.ranking and metric not in first.row_scores.columns:        # coverage: a property of all lists
        metric = NEXT_ITEM_PRIMARY
        notes.append(_("The primary score '{primary}' is not computed per slice (it describes the recommended "
                       "lists as a whole); slices show {metric} instead.").format(
            primary=comparison.primary, metric=_(metric_title(metric))))
    elif not first.ranking and not _sliceable(metric, comparison.classes):
        metric = default_primary(comparison.classes)
        notes.append(_("The primary score '{primary}' is not computed per slice (it needs a threshold chosen on "
                       "validation or per-user ranking); slices show {metric} instead.").format(
            primary=comparison.primary, metric=_(metric_title(metric))))
    dataset, split = prepare_data(RunSpec.from_dict(first.run.spec))
    if len(split.test) != len(first.rows) or not np.array_equal(np.asarray(split.test), first.rows):
        raise InvalidDataError(
            _("The data of run {run} no longer gives the test rows it was scored on, so its slices cannot be "
              "labelled. Train the runs again on the current data.").format(run=first.run.id))
    labels = slice_test_rows(dataset, split, top_categories=top_categories)
    labels = labels.reindex(first.rows)
    per_seed = _scores(comparison, labels, metric)
    table = _summarise(per_seed, comparison, labels, metric, level)
    thin = list(dict.fromkeys(table.loc[~table["enough"], "slice"]))
    if thin:
        notes.append(ngettext("{n} slice has too few test rows or seeds for an interval; it is marked, not hidden: "
                              "{slices}.",
                              "{n} slices have too few test rows or seeds for an interval; they are marked, not "
                              "hidden: {slices}.", len(thin)).format(n=format_integer(len(thin)),
                                                                     slices=", ".join(thin)))
    return SliceComparison(table, per_seed, metric, comparison.baseline, notes)


__all__ = ["MIN_CLASS_ROWS", "MIN_SLICE_ROWS", "RECORD_KEYS", "SliceComparison", "compare_by_slice",
           "segment_scores"]
