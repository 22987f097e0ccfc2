"""Frames the Importance page shows: values with each row's training loss, the most and least valuable
rows with their features, and the values of several runs stacked for side-by-side plots.

All functions read a finished run's artifacts (``train_rows``, ``sample_stats``) from the run store and
an :class:`~recexp.importance.ImportanceResult`; none computes values (that is
:func:`recexp.importance.run_importance`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, FeatureSchema
from recexp.importance.base import ImportanceResult
from recexp.importance.run import SOURCE_ROW
from recexp.runs import RunStore

#: Columns of the values shown first in row tables.
LEAD_COLUMNS = ["rank", "row", "value", "class", "origin", "mean_loss", SOURCE_ROW, SAMPLE_WEIGHT]


def mean_losses(store: RunStore, run_id: str) -> pd.Series:
    """Each training row's mean loss over the epochs it was trained (indexed by ``row``)."""
    stats = store.read_table(run_id, "sample_stats")
    return stats.groupby("row", sort=True)["loss"].mean().rename("mean_loss")


def with_losses(store: RunStore, result: ImportanceResult) -> pd.DataFrame:
    """``result.values`` plus each row's ``mean_loss`` and ``origin`` (real / synthetic)."""
    frame = result.values.join(mean_losses(store, result.run_id), on="row")
    return frame.assign(origin=np.where(frame["is_synthetic"].to_numpy(bool), "synthetic", "real"))


def extreme_rows(store: RunStore, result: ImportanceResult, n: int = 10,
                 schema: FeatureSchema | None = None) -> pd.DataFrame:
    """The ``n`` most and ``n`` least valuable training rows, with their features.

    Returns one row per training row shown: ``rank`` ("top 1" ... and "bottom 1" = lowest value ...),
    ``row`` (position in the run's training frame), ``value``, ``class``, ``origin``, ``mean_loss``,
    ``source_row`` (dataset row, or the seed row of a synthetic one), ``sample_weight`` and then the
    run's feature columns as trained on. With the run's ``schema`` (``TrainedRun.train.schema``), code
    columns show the source's ids and names (:meth:`~recexp.dataset.FeatureSchema.decode`).
    """
    values = with_losses(store, result).sort_values(["value", "row"], ascending=[False, True], kind="stable")
    top = values.head(n).assign(rank=[f"top {i}" for i in range(1, min(n, len(values)) + 1)])
    bottom = values.tail(n).iloc[::-1]
    bottom = bottom.assign(rank=[f"bottom {i}" for i in range(1, len(bottom) + 1)])
    shown = pd.concat([top, bottom[~bottom["row"].isin(top["row"])]], ignore_index=True)
    features = store.read_table(result.run_id, "train_rows")
    features = features.drop(columns=[c for c in (LABEL, IS_SYNTHETIC, SOURCE_ROW) if c in features]).iloc[shown["row"]]
    if schema is not None:
        codes = [c for c in (*schema.categorical, *schema.sequence_columns) if c in features]
        features = features.assign(**{c: schema.decode(c, features[c].to_numpy()) for c in codes})
    table = pd.concat([shown.reset_index(drop=True), features.reset_index(drop=True)], axis=1)
    return table[[*LEAD_COLUMNS, *[c for c in features.columns if c not in LEAD_COLUMNS]]]


def stacked_values(results: Sequence[ImportanceResult], labels: dict[str, str] | None = None,
                   max_rows_per_run: int = 5000, random_state: int = 0) -> pd.DataFrame:
    """The values of several runs in one frame with a ``run`` label column, for side-by-side plots.

    At most ``max_rows_per_run`` rows per run are kept (a uniform sample), so the plots stay light;
    ``frame.attrs["total_rows"]`` is the number of rows of all the runs together, so a chart can say how
    many it shows.
    """
    rng = np.random.default_rng(random_state)
    parts = []
    total = 0
    for result in results:
        frame = result.values
        total += len(frame)
        if len(frame) > max_rows_per_run:
            frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows_per_run, replace=False))]
        label = (labels or {}).get(result.run_id, result.run_id)
        parts.append(frame.assign(run=label, run_id=result.run_id, method=result.method))
    if not parts:
        return pd.DataFrame(columns=["row", "value", "label", "class", "is_synthetic", SOURCE_ROW, "run", "run_id",
                                     "method"])
    stacked = pd.concat(parts, ignore_index=True)
    stacked.attrs["total_rows"] = total
    return stacked


def summary_table(results: Sequence[ImportanceResult], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """The per-group summaries (:meth:`ImportanceResult.summary`) of several runs, one block per run."""
    parts = [result.summary().assign(run=(labels or {}).get(result.run_id, result.run_id)) for result in results]
    frame = pd.concat(parts, ignore_index=True)
    return frame[["run", *[c for c in frame.columns if c != "run"]]]



def mark_label_issues(harmful: pd.DataFrame, results: Sequence[ImportanceResult],
                      flags: dict[str, np.ndarray]) -> pd.DataFrame:
    """Consistently harmful rows plus how many runs' cleanlab check flags each one's label.

    Parameters
    ----------
    harmful : pandas.DataFrame
        Rows with a ``source_row`` column (:func:`recexp.importance.stability.consistently_harmful`).
    results : sequence of ImportanceResult
        The results the rows came from (their real rows map training rows to source rows).
    flags : dict
        Run id -> one bool per training row of that run (:func:`recexp.importance.stability.label_issue_flags`).

    Returns
    -------
    pandas.DataFrame
        ``harmful`` with ``cleanlab_flags`` (runs whose check flags the row), ``cleanlab_runs`` (runs checked
        that trained on the row) and ``cleanlab_flagged`` (flagged by at least one).
    """
    flagged = pd.Series(0, index=harmful[SOURCE_ROW].to_numpy(), dtype=np.int64)
    checked = flagged.copy()
    for result in dict((r.run_id, r) for r in results).values():
        run_flags = flags.get(result.run_id)
        if run_flags is None:
            continue
        real = ~result.values["is_synthetic"].to_numpy(bool)
        rows = result.values.loc[real, SOURCE_ROW].to_numpy()
        present = pd.Index(rows).intersection(flagged.index)
        checked.loc[present] += 1
        hit = pd.Index(rows[np.asarray(run_flags, dtype=bool)[real]]).intersection(flagged.index)
        flagged.loc[hit] += 1
    return harmful.assign(cleanlab_flags=flagged.to_numpy(), cleanlab_runs=checked.to_numpy(),
                          cleanlab_flagged=flagged.to_numpy() > 0)

__all__ = ["mean_losses", "with_losses", "extreme_rows", "stacked_values", "summary_table", "mark_label_issues"]
