"""Importance-based pruning and weighting: act on a finished run's rows by their sample-importance values.

:class:`ImportanceWeighting` **replays** the training rows of a finished *source* run (its real rows
and the rows its strategy made, as stored in ``train_rows.parquet``), values them with a registered
importance method (:func:`recexp.importance.run_importance`, cached among the source run's
artifacts) and then either drops the lowest-valued share of the rows in scope or down-weights rows
by their rank. Trained with the same model and settings, the result answers "would the model be better
without the rows this method calls harmful?", and compares like any other strategy (the removal
control is ``order="random"``: the same number of rows, picked at random).

The strategy opens no run store: the caller, which has one, resolves the source run and its values
(:func:`recexp.jobs.source_run`) and hands them over as a :class:`SourceRun` with
:meth:`ImportanceWeighting.with_source` (``recexp.jobs.execute`` does this for every run it carries
out, so the Importance page's prune-and-retrain and the point-removal curves only queue specs).

The source run must have been trained on the very training split the strategy is given: the split
rebuilt from the source run's spec is compared row for row (fingerprint, length, features and
labels), and a mismatch is refused with a sentence. Real rows come back from the input itself; rows
the source strategy made are replayed from its stored frame. The values are computed with the
method's default parameters and seed :data:`VALUES_SEED`, so every seed of a point-removal curve drops
the same rows (``order="lowest"``) and only the training seed varies.

Example
-------
>>> strategy = get_strategy("importance_weighting", run_id="3f2a9c1b7d4e", method="mean_loss",
...                         scope="synthetic", fraction=0.2)                    # doctest: +SKIP
>>> strategy.with_source(source_run(store, "3f2a9c1b7d4e", "mean_loss"))      # doctest: +SKIP
>>> strategy.apply(train, seed=0).report.notes                                # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset, Split
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.importance import METHODS, SOURCE_ROW, TrainedRun
from recexp.params import Choice, Float, Optional, Text
from recexp.strategies.base import Strategy, counts

#: What a run id looks like (``SQLiteRunStore.create_run``).
RUN_ID_PATTERN = r"[0-9a-f]{12}"

ACTIONS = {"drop": "drop: remove the chosen rows", "weight": "weight: keep every row, down-weight low-valued ones"}
SCOPES = {"all": "all rows (real and synthetic)", "synthetic": "synthetic rows only (real rows are kept as they are)"}
ORDERS = {"lowest": "lowest values first", "random": "random rows (the control of a removal curve)"}

#: Seed of the importance values (fixed, so every training seed acts on the same values).
VALUES_SEED = 0


@dataclass(frozen=True)
class SourceRun:
    """A finished run as :class:`ImportanceWeighting` replays it, resolved from a run store by the caller.

    Attributes
    ----------
    run : TrainedRun
        The run opened for replay: the rows it trained on, in training order.
    data : (Dataset, Split)
        ``prepare_data`` of its spec: the training split the strategy's input must equal.
    method : str
        The importance method ``values`` come from (default parameters, seed :data:`VALUES_SEED`).
    values : numpy.ndarray
        The value of every training row of ``run``, in training order.
    """

    run: TrainedRun
    data: tuple[Dataset, Split]
    method: str
    values: np.ndarray


class ImportanceWeighting(Strategy):
    """Replay a finished run's training rows, dropping or down-weighting those an importance method values lowest.

    ``drop``: the ``fraction`` of the rows in ``scope`` with the lowest values (or, with ``order="random"``,
    as many rows picked at random with the strategy's seed) are removed. ``weight``: every row is kept;
    a row in scope whose value ranks ``r`` in ``(0, 1]`` among the rows in scope (1 = most valuable) has
    its weight multiplied by ``1 - fraction + fraction * r``, so ``fraction`` is the strength (0: no
    change; 1: the lowest row counts almost nothing). Weights are rescaled to keep their mean.
    """

    title = "Importance-based pruning / weighting"
    family = "importance"
    summary = ("Replays a finished run's training rows and drops (or down-weights) the rows a sample-importance "
               "method values lowest, e.g. the synthetic rows that hurt; random removal is the control.")
    #: Common registry tests skip this strategy on arbitrary training samples: it needs a source run
    #: trained on the same split (its own tests build one).
    needs_source_run: ClassVar[bool] = True
    params = {
        "run_id": Optional(Text(RUN_ID_PATTERN), help="The finished run whose training rows are replayed and valued "
                                                      "(its id, as listed on the Train page)."),
        "method": Choice({name: cls.title or name for name, cls in METHODS.items()},
                         help="The sample-importance method that values the rows (default parameters)."),
        "action": Choice(ACTIONS, help="Drop the chosen rows, or keep them all and weight them by value rank."),
        "scope": Choice(SCOPES, help="Which rows may be dropped or down-weighted."),
        "fraction": Float(0.0, 1.0, help="drop: share of the rows in scope removed; weight: strength of the "
                                         "down-weighting (0 = none)."),
        "order": Choice(ORDERS, help="Act on the lowest-valued rows, or on random rows (the control)."),
    }

    def __init__(self, run_id=None, method="mean_loss", action="drop", scope="all", fraction=0.2, order="lowest"):
        self.run_id = run_id
        self.method = method
        self.action = action
        self.scope = scope
        self.fraction = fraction
        self.order = order

    def with_source(self, source: SourceRun) -> ImportanceWeighting:
        """Hand over the source run named by ``run_id`` and its values of ``method``; returns the strategy.

        ``source`` comes from the caller's run store (:func:`recexp.jobs.source_run`).
        """
        self.source_run_ = source
        return self

    # --- checks -----------------------------------------------------------------------------------

    def _check_feasible(self, train: Dataset) -> None:
        owner = self.title
        if self.run_id is None:
            raise InvalidParameterError(
                _("{owner}: parameter 'run_id' is not set; it names the finished run whose training rows are "
                  "replayed and valued. Choose a finished run (the Importance page does this "
                  "for you).").format(owner=owner))
        bound = getattr(self, "source_run_", None)
        if bound is None or bound.run.run_id != self.run_id or bound.method != self.method:
            raise InvalidParameterError(
                _("{owner}: run {run_id}'s training rows and {method} values were not handed over. Launch it as "
                  "a run (recexp.jobs resolves them from the run store), or call "
                  "with_source(recexp.jobs.source_run(store, run_id, method)) before apply.").format(
                  owner=owner, run_id=self.run_id, method=self.method))
        spec, (dataset, split) = bound.run.spec, bound.data
        expected = dataset.subset(split.train)
        columns = [*train.schema.feature_columns, LABEL]
        same = (train.fingerprint == dataset.fingerprint and train.task == dataset.task
                and train.schema == dataset.schema and len(train) == len(expected)
                and train.frame[columns].reset_index(drop=True).equals(expected.frame[columns]))
        if not same:
            raise InvalidParameterError(
                _("{owner}: parameter 'run_id' names run {run_id} ({spec}), which was trained on another "
                  "training split ({n_expected:,} rows of {task} data {fingerprint}) than the {n_train:,} rows "
                  "given here ({task2} data {fingerprint2}). Choose a source run of the same dataset, task and "
                  "split, on the whole training split (not a preview sample).").format(
                  owner=owner, run_id=self.run_id, spec=spec.label(), n_expected=len(expected), task=dataset.task,
                  fingerprint=dataset.fingerprint[:12], n_train=len(train), task2=train.task,
                  fingerprint2=train.fingerprint[:12]))
        source = bound.run
        position = np.full(len(dataset), -1, dtype=np.int64)
        position[split.train] = np.arange(len(split.train))
        source_positions = position[source.source_rows]
        if (source_positions < 0).any():
            raise InvalidParameterError(
                _("{owner}: run {run_id} trained on rows outside this training split ({outside:,} of them), so its "
                  "rows cannot be replayed here. Choose another source run.").format(
                  owner=owner, run_id=self.run_id, outside=int((source_positions < 0).sum())))
        if self.scope == "synthetic" and not source.is_synthetic.any():
            raise InvalidParameterError(
                _("{owner}: parameter 'scope' is 'synthetic', but run {run_id} ({spec}) trained on no synthetic "
                  "rows. Choose scope='all', or a run whose strategy adds rows.").format(
                  owner=owner, run_id=self.run_id, spec=spec.label()))
        in_scope = int(source.is_synthetic.sum()) if self.scope == "synthetic" else len(source.train)
        if self.action == "drop" and self.scope == "all" and _share(self.fraction, in_scope) >= in_scope:
            raise InvalidParameterError(
                _("{owner}: parameter 'fraction' {fraction} would drop all {in_scope:,} training rows. Choose a "
                  "fraction below 1.").format(
                  owner=owner, fraction=self.fraction, in_scope=in_scope))
        self.source_positions_ = source_positions

    # --- the hook ---------------------------------------------------------------------------------

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        source, values, positions = self.source_run_.run, self.source_run_.values, self.source_positions_
        synthetic = source.is_synthetic
        scoped = np.flatnonzero(synthetic) if self.scope == "synthetic" else np.arange(len(source.train))
        rng = np.random.default_rng(seed)
        title = METHODS[self.method].title or self.method
        replayed = _replay(train, source, positions)
        self.note(_("Replayed the {n_train:,} training rows of run {run_id} ({spec}): {real:,} real, "
                    "{synthetic:,} synthetic; valued by {title}.").format(
                    n_train=len(source.train), run_id=self.run_id, spec=source.spec.label(),
                    real=int((~synthetic).sum()), synthetic=int(synthetic.sum()), title=title))
        if self.action == "drop":
            chosen = self._chosen(values, scoped, rng)
            keep = np.ones(len(values), dtype=bool)
            keep[chosen] = False
            classes = train.schema.classes
            dropped_synthetic = counts(source.labels[chosen][synthetic[chosen]], classes)
            self.note(f"Dropped {len(chosen):,} of {len(scoped):,} rows in scope ({self.scope}), "
                      + ("the lowest-valued" if self.order == "lowest" else "picked at random") + ": "
                      + ", ".join(f"{name} {n:,}" for name, n in counts(source.labels[chosen], classes).items())
                      + f"; {sum(dropped_synthetic.values()):,} of them synthetic"
                      + (" (" + ", ".join(f"{k} {v:,}" for k, v in dropped_synthetic.items() if v) + ")"
                         if any(dropped_synthetic.values()) else "") + ".")
            kept = np.setdiff1d(scoped, chosen)
            if len(chosen) and len(kept):
                self.note(_("Values of the dropped rows: {values:.4g} to {values2:.4g}; of the rows kept in "
                            "scope: {values3:.4g} to {values4:.4g}.").format(
                            values=values[chosen].min(), values2=values[chosen].max(), values3=values[kept].min(),
                            values4=values[kept].max()))
            frame = replayed.frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)
            return replace(replayed, frame=frame), positions[keep]
        factor = np.ones(len(values))
        if len(scoped):
            ranks = (np.argsort(np.argsort(values[scoped], kind="stable"), kind="stable") if self.order == "lowest"
                     else rng.permutation(len(scoped)))
            factor[scoped] = 1.0 - self.fraction + self.fraction * (ranks + 1) / len(scoped)
        old = replayed.frame[SAMPLE_WEIGHT].to_numpy(np.float64)
        new = old * factor
        new *= old.mean() / new.mean()
        self.note((_("Weighted the {rows:,} rows in scope ({scope}) by their value rank with strength {strength:g}: "
                     "weights from {low:.3g} to {high:.3g} (mean weight kept at {mean:.3g}).")
                   if self.order == "lowest" else
                   _("Weighted the {rows:,} rows in scope ({scope}) by their random rank (control) with strength "
                     "{strength:g}: weights from {low:.3g} to {high:.3g} (mean weight kept at {mean:.3g}).")).format(
            rows=len(scoped), scope=self.scope, strength=self.fraction, low=new[scoped].min(), high=new[scoped].max(),
            mean=old.mean()))
        return replace(replayed, frame=replayed.frame.assign(**{SAMPLE_WEIGHT: new})), positions

    def _chosen(self, values: np.ndarray, scoped: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Positions (in the replayed rows) of the rows to drop: lowest values first (ties: earlier row), or random."""
        k = _share(self.fraction, len(scoped))
        if self.order == "lowest":
            return np.sort(scoped[np.argsort(values[scoped], kind="stable")[:k]])
        return np.sort(rng.choice(scoped, k, replace=False))


def _share(fraction: float, n: int) -> int:
    """Rows a fraction of ``n`` stands for (rounded half to even, as numpy does)."""
    return int(np.round(fraction * n))


def _replay(train: Dataset, source: TrainedRun, positions: np.ndarray) -> Dataset:
    """The source run's training rows in its order: real rows taken from ``train``, synthetic ones from its frame.

    Every column keeps ``train``'s dtype; ``is_synthetic`` and ``sample_weight`` are the source run's.
    """
    frame = train.frame.take(positions).reset_index(drop=True)
    stored = source.train.frame
    synthetic = pd.Series(source.is_synthetic)
    if synthetic.any():
        for column in frame.columns:
            if column in stored.columns and column not in (IS_SYNTHETIC, SAMPLE_WEIGHT, SOURCE_ROW):
                frame[column] = frame[column].mask(synthetic, stored[column].astype(frame[column].dtype))
    frame[IS_SYNTHETIC] = source.is_synthetic
    frame[SAMPLE_WEIGHT] = source.sample_weight
    return replace(train, frame=frame)
