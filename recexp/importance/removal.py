"""Point-removal curves: drop a run's lowest-valued rows, retrain, and compare with dropping random rows.

For a finished *source* run and an importance method, :func:`launch_removal_curve` queues one
experiment: for every fraction (e.g. 0, 10, 20, 30 and 50%), every order (``lowest`` values first, and
``random`` rows as the control) and every seed, a run with the source run's data, split, model and
training settings whose strategy is ``importance_weighting`` (action ``drop``). The runs train in the
job runner's worker processes. :func:`removal_curve` assembles the finished ones into the curve: the
test score against the fraction dropped, per order, with the mean and a 95% interval over seeds. If
the method ranks rows well, dropping the lowest-valued rows should hurt less (or help more) than
dropping as many random rows.

Example
-------
>>> experiment, runs = launch_removal_curve(runner, run_id, "mean_loss", seeds=[0, 1, 2])   # doctest: +SKIP
>>> runner.wait([r.id for r in runs])                                                       # doctest: +SKIP
>>> removal_curve(runner.store, experiment.id, "balanced_accuracy").summary                # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from recexp.compare.stats import seed_interval
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.importance import METHODS, run_importance
from recexp.importance.base import Progress
from recexp.spec import RunSpec
from recexp.jobs import JobRunner
from recexp.runs import FAILED, FINISHED, Experiment, Run, RunStore
from recexp.strategies.importance import VALUES_SEED

#: Shares of the rows in scope dropped by default (0 is the replayed run itself, the reference).
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5)
#: ``lowest``: the lowest-valued rows first; ``random``: as many random rows (the control).
ORDERS = ("lowest", "random")
#: The strategy every run of a curve uses.
STRATEGY = "importance_weighting"
#: ``kind`` in the description of a curve's experiment (how :func:`removal_experiments` finds them).
KIND = "removal_curve"


def removal_specs(source: RunSpec, run_id: str, method: str, fractions: Sequence[float] = FRACTIONS,
                  orders: Sequence[str] = ORDERS, seeds: Sequence[int] = (0, 1, 2), scope: str = "all"
                  ) -> list[RunSpec]:
    """The run specs of one point-removal curve: fraction x order x seed, on ``source``'s data and settings.

    Fraction 0 drops nothing, so both orders share its runs (one per seed, listed with the first order).

    Parameters
    ----------
    source : RunSpec
        The spec of the source run (data, split, model and training settings are kept).
    run_id : str
        The source run's id (the rows replayed and valued).
    method : str
        A name of :data:`recexp.importance.METHODS`.
    fractions : sequence of float
        Shares of the rows in scope to drop, each in ``[0, 1)``.
    orders : sequence of str
        Among :data:`ORDERS`.
    seeds : sequence of int
        Training (and random-removal) seeds.
    scope : {"all", "synthetic"}
        Which rows may be dropped.
    """
    fractions = sorted({float(f) for f in fractions})
    if not fractions or any(not 0.0 <= f < 1.0 for f in fractions):
        raise InvalidParameterError(
            _("Removal fractions must be at least 0 and below 1, but got {fractions}. Choose e.g. 0, 0.1, 0.2, "
              "0.3, 0.5.").format(fractions=fractions))
    unknown = [o for o in orders if o not in ORDERS]
    if not orders or unknown:
        raise InvalidParameterError(_("Removal orders must be among {orders}, but got {orders2}.").format(
                                      orders=', '.join(ORDERS), orders2=list(orders)))
    if not seeds:
        raise InvalidParameterError(_("Choose at least one seed for the removal curve."))
    if method not in METHODS:
        raise InvalidParameterError(_("Unknown importance "
                                      "method {method!r}; choose one of {methods}.").format(method=method, methods=', '.join(METHODS)))
    orders = list(dict.fromkeys(orders))
    return [replace(source, strategy=STRATEGY, seed=int(seed),
                    strategy_params={"run_id": run_id, "method": method, "action": "drop", "scope": scope,
                                     "fraction": fraction, "order": order})
            for fraction in fractions for order in (orders if fraction > 0 else orders[:1]) for seed in seeds]


def launch_removal_curve(runner: JobRunner, run_id: str, method: str, fractions: Sequence[float] = FRACTIONS,
                         orders: Sequence[str] = ORDERS, seeds: Sequence[int] = (0, 1, 2), scope: str = "all",
                         progress: Progress | None = None) -> tuple[Experiment, list[Run]]:
    """Queue the runs of a point-removal curve for finished run ``run_id`` as one experiment.

    The method's values are computed first (here, once, with ``progress``) so the worker processes
    only read them from the source run's artifacts. Every spec is validated before anything is queued.

    Returns
    -------
    (Experiment, list of Run)
        The experiment (its description records the source run, method and scope) and its queued runs.
    """
    store = runner.store
    source = store.get_run(run_id)
    if source.status != FINISHED:
        raise InvalidDataError(_("Run {run_id} is {status}, not finished; a removal curve starts from a finished "
                                 "run. Pick a finished run, or wait "
                                 "for this one.").format(run_id=run_id, status=source.status))
    spec = RunSpec.from_dict(source.spec)
    if spec.strategy == STRATEGY:
        raise InvalidParameterError(_("Run {run_id} already replays run {strategy_params}; draw the removal "
                                      "curve from that source run instead.").format(
                                      run_id=run_id, strategy_params=spec.strategy_params.get('run_id')))
    specs = removal_specs(spec, run_id, method, fractions, orders, seeds, scope)
    run_importance(store, run_id, method, seed=VALUES_SEED, progress=progress)
    strategies = list(dict.fromkeys(json.dumps(s.strategy_params, sort_keys=True) for s in specs))
    fractions = sorted({s.strategy_params["fraction"] for s in specs})
    description = json.dumps({"kind": KIND, "source_run": run_id, "method": method, "scope": scope,
                              "fractions": fractions, "orders": list(dict.fromkeys(orders)),
                              "seeds": [int(s) for s in dict.fromkeys(seeds)]})
    title = METHODS[method].title or method
    return runner.launch_grid(
        spec, [(STRATEGY, json.loads(params)) for params in strategies], seeds=list(dict.fromkeys(seeds)),
        name=f"Removal curve: {title}, {scope} rows of run {run_id} ({spec.label()})", description=description)


def curve_settings(experiment: Experiment) -> dict[str, Any] | None:
    """The source run, method, scope, fractions, orders and seeds of a removal-curve experiment (else ``None``)."""
    try:
        settings = json.loads(experiment.description or "")
    except json.JSONDecodeError:
        return None
    return settings if isinstance(settings, dict) and settings.get("kind") == KIND else None


def removal_experiments(store: RunStore, run_id: str | None = None) -> list[Experiment]:
    """Removal-curve experiments (of source run ``run_id`` when given), newest first."""
    found = [e for e in store.list_experiments() if (s := curve_settings(e)) and run_id in (None, s["source_run"])]
    return found[::-1]


@dataclass
class RemovalCurve:
    """A point-removal curve as far as its runs have finished.

    Attributes
    ----------
    experiment : Experiment
    settings : dict
        Source run, method, scope, fractions, orders and seeds (see :func:`curve_settings`).
    metric : str
    points : pandas.DataFrame
        One row per finished run and order: ``fraction``, ``order``, ``seed``, ``value``, ``run_id`` (the
        runs at fraction 0 appear once per order).
    summary : pandas.DataFrame
        Per ``fraction`` and ``order``: ``runs``, ``mean``, ``low``, ``high`` (95% t-interval over seeds; NaN
        below two seeds).
    runs : dict
        Runs of the experiment by status (``queued``, ``running``, ``finished``, ``failed``, ``cancelled``).
    """

    experiment: Experiment
    settings: dict[str, Any]
    metric: str
    points: pd.DataFrame
    summary: pd.DataFrame
    runs: dict[str, int]

    @property
    def done(self) -> bool:
        """Whether no run of the curve is still queued or running."""
        return not (self.runs.get("queued", 0) or self.runs.get("running", 0))

    def gap(self) -> pd.DataFrame:
        """Per fraction: mean score after dropping the lowest-valued rows minus after dropping random ones."""
        wide = self.summary.pivot(index="fraction", columns="order", values="mean")
        if not {"lowest", "random"} <= set(wide.columns):
            return pd.DataFrame(columns=["fraction", "lowest_minus_random"])
        return (wide["lowest"] - wide["random"]).rename("lowest_minus_random").reset_index()


def removal_curve(store: RunStore, experiment_id: str, metric: str = "balanced_accuracy",
                  level: float = 0.95) -> RemovalCurve:
    """Assemble the finished runs of removal-curve experiment ``experiment_id`` into a :class:`RemovalCurve`.

    Raises :class:`InvalidParameterError` when the experiment is not a removal curve, or when no finished
    run recorded ``metric``.
    """

    experiment = store.get_experiment(experiment_id)
    settings = curve_settings(experiment)
    if settings is None:
        raise InvalidParameterError(_("Experiment {name!r} is not a point-removal curve; launch one from the "
                                      "Importance page or with "
                                      "recexp.importance.removal.launch_removal_curve.").format(name=experiment.name))
    runs = store.list_runs(experiment_id)
    statuses = pd.Series([r.status for r in runs], dtype=object).value_counts().to_dict()
    orders = settings.get("orders") or list(ORDERS)
    rows = []
    for run in runs:
        if run.status != FINISHED:
            continue
        params = run.spec.get("strategy_params", {})
        fraction = float(params.get("fraction", 0.0))
        value = run.metrics.get(metric, np.nan)
        for order in (orders if fraction == 0 else [params.get("order", "lowest")]):
            rows.append({"fraction": fraction, "order": order, "seed": int(run.spec.get("seed", 0)),
                         "value": float(value), "run_id": run.id})
    points = pd.DataFrame(rows, columns=["fraction", "order", "seed", "value", "run_id"])
    finished = [r for r in runs if r.status == FINISHED]
    if finished and not np.isfinite(points["value"]).any():
        raise InvalidParameterError(_("No finished run of this curve recorded the score {metric!r}; choose "
                                      "another score.").format(metric=metric))
    summary = []
    for (fraction, order), part in points.groupby(["fraction", "order"], sort=True):
        mean, low, high = seed_interval(part["value"].to_numpy(), level)
        summary.append({"fraction": fraction, "order": order, "runs": len(part), "mean": mean, "low": low,
                        "high": high})
    summary = pd.DataFrame(summary, columns=["fraction", "order", "runs", "mean", "low", "high"])
    return RemovalCurve(experiment=experiment, settings=settings, metric=metric, points=points, summary=summary,
                        runs={status: int(n) for status, n in statuses.items()})


def failed_runs(store: RunStore, experiment_id: str) -> list[Run]:
    """The runs of a curve that failed (their error says why)."""
    return [r for r in store.list_runs(experiment_id) if r.status == FAILED]


__all__ = ["FRACTIONS", "ORDERS", "KIND", "RemovalCurve", "removal_specs", "launch_removal_curve", "curve_settings",
           "removal_experiments", "removal_curve", "failed_runs"]
