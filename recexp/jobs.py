"""Runs as reproducible specs, executed in separate worker processes.

A :class:`~recexp.spec.RunSpec` names everything a run depends on (data source and its fingerprint, task,
split, strategy, model, training settings, seed). :func:`execute` carries one out: load -> build the
dataset -> split -> strategy on the training split only -> train -> evaluate on the untouched test
split -> store metrics and artifacts. :class:`JobRunner` runs specs in worker processes
(``python -m recexp.worker RUN_ID``) with a concurrency limit, a queue kept in the run store, cancel,
and crash detection: a worker that dies leaves its run ``failed`` with the reason. Where the workers
run is its executor's business (:mod:`recexp.executors`: this machine, or tasks on a Ray cluster).
Other work that must share the limit (a study's tuning workers) is handed to the same runner as a
:class:`Command`, which always runs on this machine.

Example
-------
>>> store = SQLiteRunStore.open()                                    # doctest: +SKIP
>>> runner = JobRunner(store, max_concurrent=2)
>>> experiment, runs = runner.launch_grid(spec, strategies=[("none", {}), ("smote", {})], seeds=[0, 1])
>>> runner.wait([r.id for r in runs], timeout=600)
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidParameterError, JobError, RecexpError, os_error_sentence, sentence
from recexp.executors import Executor, LocalExecutor, LocalProcess, describe_exit, executor_from_env, worker_env
from recexp.i18n import _
from recexp.consistency import check_consistency
from recexp.importance import TrainedRun, run_importance
from recexp.metrics import classification_metrics, next_item_metrics, popularity_percentile
from recexp.models import MODELS, TrainConfig, evaluate, rank_items, resolve_device, save_checkpoint, train
from recexp.models.device import describe_device
from recexp.models.shards import ParquetRows, ShardSet, shards_from_parquet
from recexp.runs import (ACTIVE, CANCELLED, CONSISTENCY_REPORT, FAILED, FINISHED, QUEUED, RUNNING, STATES_FOLDER,
                         SYNTHESIS_REPORT, Run, RunStore, SQLiteRunStore, pid_alive)
from recexp.outofcore import throttled
from recexp.rundata import RunData, check_out_of_core, check_strategy, run_data
from recexp.spec import AA_SEED_OFFSET, RunSpec, prepare_data
from recexp.strategies import STRATEGIES, Strategy, StrategyResult
from recexp.strategies.expansion import Expansion
from recexp.strategies.importance import VALUES_SEED, ImportanceWeighting, SourceRun
from recexp.strategies.synthesis import SynthesisStrategy
from recexp.tasks import get_task, require_fit, task_kind
from recexp.tta import STREAMS, check_applies, check_copies, tta_operator, tta_proba


def validate_spec(spec: RunSpec) -> None:
    """Check a spec's names and parameters before anything is queued (raises :class:`RecexpError`)."""
    if spec.model not in MODELS:
        raise InvalidParameterError(_("Unknown model {model!r}; choose one of {models}.").format(
                                      model=spec.model, models=', '.join(MODELS)))
    MODELS[spec.model](**spec.model_params).validate_params()
    strategy_class(spec.strategy)(**spec.strategy_params).validate_params()
    check_task_fit(spec.task, spec.model, spec.strategy)
    check_out_of_core(spec.out_of_core)
    if spec.tta is not None and task_kind(spec.task) == "ranking":
        raise InvalidParameterError(_("Test-time augmentation averages class probabilities; the '{task}' task ranks "
                                      "items, so leave --tta out.").format(task=spec.task))
    config = TrainConfig.from_dict({**spec.train, "seed": spec.seed})
    config.validate()
    resolve_device(config.device)                  # an unknown or absent device is refused before anything is queued
    if spec.tta is not None:
        tta_operator(spec.tta, spec.tta_params)
        check_copies(spec.tta_copies)
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool) or spec.seed < 0:
        raise InvalidParameterError(_("seed must be a non-negative integer, but got "
                                      "{seed!r}.").format(seed=spec.seed))


def check_task_fit(task: str, model: str, strategy: str) -> None:
    """Refuse a model or strategy that does not serve ``task``'s kind, with the ones that do (a sentence)."""
    get_task(task)
    require_fit(_("model"), model, MODELS, task)
    require_fit(_("strategy"), strategy, STRATEGIES, task)


def available_strategies() -> dict[str, type]:
    """The strategy registry (``recexp.strategies.STRATEGIES``)."""
    return dict(STRATEGIES)


def strategy_class(name: str) -> type:
    """The strategy class registered as ``name``."""
    if name not in STRATEGIES:
        raise InvalidParameterError(_("Unknown strategy {name!r}; choose one of {strategies}.").format(
                                      name=name, strategies=', '.join(STRATEGIES)))
    return STRATEGIES[name]


def grid_specs(base: RunSpec, strategies: Sequence[tuple[str, dict[str, Any]]], seeds: Sequence[int],
               models: Sequence[tuple[str, dict[str, Any]]] | None = None, aa: bool = False) -> list[RunSpec]:
    """Every strategy x model x seed spec of a grid, validated; with ``aa``, the A/A arm too.

    The A/A arm replicates the baseline strategy (``"none"``, which must be in the grid) under the seeds
    ``AA_SEED_OFFSET + seed``: disjoint from every seed of the grid, and paired with them one to one.
    """
    models = list(models) if models else [(base.model, dict(base.model_params))]
    specs = [replace(base, strategy=s, strategy_params=dict(sp), model=m, model_params=dict(mp), seed=int(seed))
             for s, sp in strategies for m, mp in models for seed in seeds]
    if not specs:
        raise InvalidParameterError(_("The grid is empty: choose at least one strategy, one model and one seed."))
    if aa:
        baseline = [(s, sp) for s, sp in strategies if s == "none"]
        if not baseline:
            raise InvalidParameterError(_("The A/A arm replicates the baseline 'none' under other seeds: add "
                                          "'none' to the strategies, or leave the A/A arm out."))
        specs += [replace(base, strategy="none", strategy_params={}, model=m, model_params=dict(mp),
                          seed=AA_SEED_OFFSET + int(seed), aa=True) for m, mp in models for seed in seeds]
    for spec in specs:
        validate_spec(spec)
    return specs


def more_seeds(store: RunStore, experiment_id: str, n: int) -> list[RunSpec]:
    """Specs of ``n`` more seeds for every arm (strategy, parameters, model, A/A) of an experiment, validated.

    New seeds continue after the highest seed any arm has used (``k + 1 .. k + n``; the A/A arm gets
    ``AA_SEED_OFFSET`` plus the same numbers), so every arm gets the same new seeds and they stay paired.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidParameterError(_("The number of seeds to add must be a positive integer, but "
                                      "got {n!r}.").format(n=n))
    runs = store.list_runs(experiment_id)
    if not runs:
        raise InvalidParameterError(_("Experiment {experiment_id} has no "
                                      "runs to add seeds to; launch it first.").format(experiment_id=experiment_id))
    arms: dict[str, RunSpec] = {}
    for run in runs:
        spec = RunSpec.from_dict(run.spec)
        arms.setdefault(json.dumps({**spec.to_dict(), "seed": None}, sort_keys=True, default=str), spec)
    top = max(RunSpec.from_dict(r.spec).seed % AA_SEED_OFFSET for r in runs)
    specs = [replace(spec, seed=(AA_SEED_OFFSET if spec.aa else 0) + top + k)
             for spec in arms.values() for k in range(1, n + 1)]
    for spec in specs:
        validate_spec(spec)
    return specs


def _stopped_sentence(started: bool, reason: str) -> str:
    """Why a run of a command-line grid stopped by ``reason`` (a signal's name) ended, as the store records it."""
    return (_("The command-line run was stopped ({reason}) during this run.") if started else
            _("The command-line run was stopped ({reason}) before this run started.")).format(reason=reason)


def run_in_foreground(store: RunStore, experiment_id: str, specs: Sequence[RunSpec], data: RunData | tuple | None = None,
                      on_epoch: Callable[[int, RunSpec], Callable[[int, dict[str, float]], None] | None] | None = None,
                      ) -> list[Run]:
    """Execute ``specs`` in this process, recording the whole grid in the store first (the CLI's ``run``).

    Every run is created ``queued`` with this process's pid up front (so the remaining seeds are on
    record, and a job runner leaves them to this process), then claimed and executed in order, with torch's
    threads set by :func:`threads_per_run` as for the runner's workers. A run that fails is recorded as
    failed and the grid goes on. On
    SIGTERM or SIGINT the run in progress is marked failed and the ones not started cancelled, each with
    a sentence, before :class:`KeyboardInterrupt` is raised again. ``on_epoch(i, spec)`` may return a
    per-epoch callback for the ``i``-th run. Returns the runs as they ended.
    """
    runs = [store.create_run(experiment_id, spec.to_dict(), name=spec.label(), pid=os.getpid()) for spec in specs]
    torch.set_num_threads(threads_per_run(1))          # the job runner's rule, so CLI runs side by side share cores

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i, (run, spec) in enumerate(zip(runs, specs), start=1):
            if not store.claim(run.id):
                continue                                   # cancelled (or claimed) meanwhile
            try:
                execute(spec, store, run.id, on_epoch=on_epoch(i, spec) if on_epoch else None, data=data)
            except Exception:                              # noqa: BLE001 (recorded as failed; the grid goes on)
                pass
    except KeyboardInterrupt as interrupt:
        reason = str(interrupt) or "SIGINT"
        for run in runs:
            status = store.get_run(run.id).status
            if status in (RUNNING, QUEUED):
                store.finish(run.id, FAILED if status == RUNNING else CANCELLED,
                             error=_stopped_sentence(status == RUNNING, reason))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return [store.get_run(run.id) for run in runs]


def run_with_executor(store: SQLiteRunStore, experiment_id: str, specs: Sequence[RunSpec], executor: Executor,
                      on_progress: Callable[[list[Run]], None] | None = None, poll_interval: float = 0.5) -> list[Run]:
    """Execute ``specs`` on ``executor`` (e.g. a Ray cluster) with a job runner of this process until every run ended
    (the CLI's ``run`` under ``RECEXP_EXECUTOR=ray``).

    The runs are created ``queued`` and reserved for this process, as :func:`run_in_foreground` does, so a
    dashboard's runner on the same workspace leaves them alone; this process's runner claims only them, as many
    at once as the executor holds (:meth:`~recexp.executors.Executor.capacity`). ``on_progress(runs)`` gets the
    runs as the store has them after every poll. On SIGTERM or SIGINT (acted on between polls) the runs still
    running or queued are cancelled, each with a sentence, and their workers stopped, before
    :class:`KeyboardInterrupt` is raised. Returns the runs as they ended.
    """
    runner = JobRunner(store, max_concurrent=executor.capacity(max_jobs()), poll_interval=poll_interval,
                       executor=executor, reserved_by=os.getpid())         # connects to the cluster first
    runs = [store.create_run(experiment_id, spec.to_dict(), name=spec.label(), pid=os.getpid()) for spec in specs]
    stopped: list[str] = []             # a signal is noted and acted on between polls, never inside one

    def stop(signum, frame):
        stopped.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopped:
            runner.poll()
            current = [store.get_run(run.id) for run in runs]
            if on_progress is not None:
                on_progress(current)
            if not any(run.is_active for run in current):
                return current
            time.sleep(poll_interval)
        for run in runs:
            runner.cancel(run.id, reason=_stopped_sentence(store.get_run(run.id).status == RUNNING, stopped[0]))
        deadline = time.monotonic() + runner.cancel_grace + 2
        while runner.running() and time.monotonic() < deadline:        # the workers stop (killed after the grace)
            runner.poll()
            time.sleep(0.1)
        raise KeyboardInterrupt(stopped[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def source_run(store: RunStore, run_id: str, method: str) -> SourceRun:
    """Finished run ``run_id`` of ``store``, opened for ``importance_weighting`` to replay, with ``method``'s values.

    The values (default parameters, seed ``VALUES_SEED``) are computed once and then read from the run's
    artifacts (:func:`recexp.importance.run_importance`).

    Raises
    ------
    InvalidParameterError
        ``run_id`` names no run of ``store``, or one that has not finished.
    InvalidDataError
        The run's data changed since it was trained.
    """
    owner = ImportanceWeighting.title
    try:
        run = store.get_run(run_id)
    except JobError:
        raise InvalidParameterError(
            _("{owner}: parameter 'run_id' names no run of the workspace {home} (got {run_id!r}). Choose a "
              "finished run listed on the Train page.").format(
              owner=owner, home=store.home, run_id=run_id)) from None
    if run.status != FINISHED:
        raise InvalidParameterError(
            _("{owner}: parameter 'run_id' names run {run_id}, which is {status}, not finished. Choose a "
              "finished run, or wait for this one.").format(
              owner=owner, run_id=run_id, status=run.status))
    data = prepare_data(RunSpec.from_dict(run.spec))
    trained = TrainedRun.load(store, run_id, data=data)
    values = run_importance(store, run_id, method, seed=VALUES_SEED, run=trained).values
    return SourceRun(run=trained, data=data, method=method,
                     values=values.sort_values("row")["value"].to_numpy(np.float64))


def bind_strategy(strategy: Strategy, store: RunStore, valid: Dataset) -> Strategy:
    """Hand ``strategy`` what it needs besides the training rows; returns it.

    A generative strategy gets ``valid`` (held-out real rows: the validation split, never the test
    split) for its quality report's efficacy and privacy scores; ``importance_weighting`` gets its source
    run and values from ``store`` (:func:`source_run`). Every other strategy needs nothing more.
    """
    if isinstance(strategy, SynthesisStrategy):
        return strategy.with_holdout(valid)
    if isinstance(strategy, ImportanceWeighting) and strategy.run_id is not None:
        return strategy.with_source(source_run(store, strategy.run_id, strategy.method))
    return strategy


# --- one run --------------------------------------------------------------------------------------

def _weights(part: Dataset | ParquetRows) -> np.ndarray | None:
    """A part's ``sample_weight`` column (build-time down-sampling), ``None`` when it has none."""
    if isinstance(part, ParquetRows):
        weights = part.column(SAMPLE_WEIGHT)
    else:
        weights = part.frame[SAMPLE_WEIGHT].to_numpy() if SAMPLE_WEIGHT in part.frame else None
    return None if weights is None else weights.astype(np.float64)


def _prediction_frame(rows, labels, proba, classes, weights: np.ndarray | None = None) -> pd.DataFrame:
    """Positions in the dataset, true label code, predicted code, one probability column per class, and each row's
    ``sample_weight`` when the part carries one (so scores computed later estimate the full population's)."""
    frame = pd.DataFrame({"row": np.asarray(rows, dtype=np.int64), LABEL: labels, "predicted": proba.argmax(axis=1)})
    for k, name in enumerate(classes):
        frame[f"proba_{name}"] = proba[:, k]
    if weights is not None:
        frame[SAMPLE_WEIGHT] = weights
    return frame


def _ranking_frame(rows, labels, ranks, top, popularity) -> pd.DataFrame:
    """Positions in the dataset, target item code, its rank among all items, the popularity of the top-10 list and
    the recommended list (``top_1`` ...): a next-item run's predictions (no per-item probabilities)."""
    frame = pd.DataFrame({"row": np.asarray(rows, dtype=np.int64), LABEL: labels, "rank": ranks,
                          "popularity@10": popularity[top[:, :10]].mean(axis=1) if top.size else np.zeros(len(rows))})
    for j in range(top.shape[1]):
        frame[f"top_{j + 1}"] = top[:, j].astype(np.int32)
    return frame


def _evaluate_run(store: RunStore, run_id: str, module, data: RunData) -> tuple[dict[str, float], float,
                                                                              np.ndarray | None]:
    """Score the test split and store the test and validation predictions.

    Returns ``(metrics, test loss, test probabilities)``; the probabilities are ``None`` for a ranking run.

    A classification run stores class probabilities (and the rows' ``sample_weight`` where the dataset was
    down-sampled: the metrics are weighted by it); a next-item (ranking) run the rank of each target among every
    item and the recommended lists (:func:`recexp.models.rank_items`). Parts on disk are scored file by file.
    """
    classes = data.schema.classes
    parts = [("predictions", "test")] + ([("valid_predictions", "valid")] if len(data.valid) else [])
    if task_kind(data.task) == "ranking":
        popularity = popularity_percentile(data.train.y, len(classes))
        results = {}
        for table, name in parts:
            part = getattr(data, name)
            results[table] = rank_items(module, part)
            store.write_table(run_id, table, _ranking_frame(data.rows(name), part.y, *results[table][1:], popularity))
        loss, ranks, top = results["predictions"]
        return next_item_metrics(ranks, top, popularity), loss, None
    results = {}
    for table, name in parts:
        part = getattr(data, name)
        results[table] = (*evaluate(module, part), part.y, _weights(part))
        store.write_table(run_id, table, _prediction_frame(data.rows(name), results[table][2], results[table][1],
                                                           classes, results[table][3]))
    loss, proba, labels, weights = results["predictions"]
    return classification_metrics(labels, proba, weights), loss, proba      # build-time down-sampling undone


def _test_time_augmentation(store: RunStore, run_id: str, spec: RunSpec, operator: Expansion, module, data: RunData,
                            proba: np.ndarray, test_loss: float) -> dict[str, Any]:
    """Score the test (and validation) rows with TTA; store ``tta_predictions`` (``tta_valid_predictions``).

    ``proba`` and ``test_loss`` are the plain test evaluation. Returns what the run's info keeps: operator,
    parameters, copies, forward passes per row, seconds and the TTA test metrics (the plain metrics' names).
    ``K = 0`` is plain evaluation, its loss included.
    """
    started = time.perf_counter()
    classes, train_set, valid_set, test_set = data.schema.classes, data.train, data.valid, data.test
    tta_test = tta_proba(module, test_set, operator, spec.tta_copies, spec.seed, reference=train_set,
                         stream=STREAMS["test"], plain=proba)
    store.write_table(run_id, "tta_predictions", _prediction_frame(data.rows("test"), test_set.y, tta_test, classes))
    if len(valid_set):
        tta_valid = tta_proba(module, valid_set, operator, spec.tta_copies, spec.seed, reference=train_set,
                              stream=STREAMS["valid"])
        store.write_table(run_id, "tta_valid_predictions", _prediction_frame(data.rows("valid"), valid_set.y,
                                                                             tta_valid, classes))
    picked = np.clip(tta_test[np.arange(len(test_set)), test_set.y].astype(np.float64), 1e-12, 1.0)
    loss = test_loss if spec.tta_copies == 0 else float(-np.log(picked).mean()) if len(picked) else float("nan")
    return {"operator": spec.tta, "params": dict(spec.tta_params), "copies": spec.tta_copies,
            "forward_passes": spec.tta_copies + 1, "seconds": time.perf_counter() - started,
            "metrics": {**classification_metrics(test_set.y, tta_test), "test_loss": loss}}


def _class_counts(rows: Dataset | ShardSet, classes: tuple[str, ...]) -> dict[str, int]:
    return rows.class_counts() if isinstance(rows, Dataset) else dict(zip(classes, rows.class_counts))


def _apply_strategy(store: RunStore, run_id: str, spec: RunSpec, strategy: Strategy, data: RunData):
    """The rows to train on: ``strategy`` applied to the training split in memory, or a split left on disk written
    as memory-mapped shards (``strategy`` keeps rows as they are there, :func:`recexp.rundata.check_strategy`).

    Returns ``(rows, outcome or None, report, train overrides, consistency or None)``.
    """
    if isinstance(data.train, ParquetRows):
        store.update(run_id, message=_("writing the training split as shards on disk"))
        multipliers = strategy.class_multipliers(np.array([data.counts["train"][c] for c in data.schema.classes]))
        shards = shards_from_parquet(data.train, data.schema, store.artifact_dir(run_id, create=True) / "shards",
                                     class_weight=multipliers)
        report = {} if multipliers is None else {"class_multipliers": dict(zip(data.schema.classes,
                                                                              map(float, multipliers)))}
        return shards, None, report, strategy.loss_overrides(), None
    store.update(run_id, message=_("applying strategy {strategy}").format(strategy=spec.strategy))
    valid = data.loaded("valid") if isinstance(strategy, SynthesisStrategy) else data.valid
    strategy = bind_strategy(strategy, store, valid)
    outcome = strategy.apply(data.train, seed=spec.seed, progress=lambda fraction, message: store.update(
        run_id, message=_("applying strategy {strategy}: {message}").format(strategy=spec.strategy, message=message)))
    report = outcome.report.to_dict() if hasattr(outcome.report, "to_dict") else dict(outcome.report or {})
    consistency = None
    if isinstance(outcome, StrategyResult):
        store.update(run_id, message=_("checking the new rows against real ones"))
        consistency = check_consistency(outcome, random_state=spec.seed)
    # A strategy that asks for a loss (e.g. focal) is the thing under test: it wins over the settings.
    overrides = outcome.train_overrides() if hasattr(outcome, "train_overrides") else {}
    return outcome.dataset, outcome, report, overrides, consistency


def execute(spec: RunSpec, store: RunStore, run_id: str,
            on_epoch: Callable[[int, dict[str, float]], None] | None = None, data: RunData | tuple | None = None
            ) -> dict[str, float]:
    """Carry out one run and record everything in ``store`` under ``run_id``.

    Steps: load -> build dataset -> split -> strategy (training split only) -> train (early stopping
    on the validation split) -> evaluate on the test split -> store final metrics, test and validation
    predictions, model checkpoint and per-sample statistics, and mark the run ``finished``. On an error the run
    is marked ``failed`` with the message and the error is raised again.

    A log larger than memory is built out of core and trained from disk (:func:`recexp.rundata.run_data`); the
    build's progress (phase, rows, share done, peak memory) is the run's message meanwhile.

    Parameters
    ----------
    spec : RunSpec
    store : RunStore
    run_id : str
        A run already created in ``store`` (status queued or running).
    on_epoch : callable, optional
        Extra per-epoch callback (e.g. a progress bar), after the store has the epoch.
    data : RunData or (Dataset, Split), optional
        The spec's data when the caller already has it (the CLI reuses one dataset for a grid): a
        :class:`~recexp.rundata.RunData`, or what :func:`prepare_data` returns; by default the data is loaded
        from the spec.

    Returns
    -------
    dict
        The test metrics.
    """
    try:
        started = time.perf_counter()
        validate_spec(spec)
        store.update(run_id, message=_("loading data"))
        data = run_data(spec, data, progress=throttled(lambda line: store.update(run_id, message=line)))
        strategy = strategy_class(spec.strategy)(**spec.strategy_params)
        check_strategy(strategy, data)             # a training split on disk: only strategies that keep its rows

        tta = tta_operator(spec.tta, spec.tta_params) if spec.tta is not None else None
        if tta is not None:                        # refused before the work when the operator cannot apply
            if data.on_disk:
                raise InvalidParameterError(_("Test-time augmentation needs the whole dataset in memory; this run's "
                                              "dataset is built out of core. Leave --tta out, or set out_of_core to "
                                              "'no'."))
            check_applies(tta, data.test, spec.model_params)

        train_prime, outcome, report, overrides, consistency = _apply_strategy(store, run_id, spec, strategy, data)
        settings = {**spec.train, **overrides, "seed": spec.seed}
        config = TrainConfig.from_dict(settings)
        config.validate()
        device = resolve_device(config.device)
        classes = data.schema.classes
        info = {"strategy_report": report, "strategy_overrides": overrides, "train_config": config.to_dict(),
                           "rows": {"train": len(data.train), "train_after_strategy": len(train_prime),
                                    "valid": len(data.valid), "test": len(data.test)},
                           # a ranking task's classes are the catalogue's items: thousands of counts say nothing
                           "class_counts": {"train": data.counts["train"],
                                            "train_after_strategy": _class_counts(train_prime, classes),
                                            "valid": data.counts["valid"], "test": data.counts["test"]}
                           if task_kind(data.task) != "ranking" else {},
                           "dataset_fingerprint": data.fingerprint,
                           # On the rows trained on: a strategy that removes rows can make training too short.
                           # Optimiser steps mean nothing to boosted trees (every round sees every row).
                           "short_training_warning": config.short_training_warning(len(train_prime))
                           if MODELS[spec.model].differentiable else None}
        if data.on_disk:
            info["out_of_core"] = {"folder": str(data.disk.folder), "rows": data.disk.rows,
                                   "sampling": data.disk.sampling, "build_seconds": data.disk.seconds}
        if consistency is not None:
            info["consistency"] = consistency.summary()
        store.update(run_id, device=describe_device(device), epochs_total=config.epochs, message=_("training"), info=info)

        def log(epoch: int, metrics: dict[str, float]) -> None:
            store.log_epoch(run_id, epoch, metrics)
            if on_epoch is not None:
                on_epoch(epoch, metrics)

        model = MODELS[spec.model](**spec.model_params)
        try:
            result = train(model, train_prime, data.valid, config, callback=log,
                           scratch=store.artifact_dir(run_id) / "shards")
        finally:
            if isinstance(train_prime, ShardSet):           # the run's own copy of a split on disk
                shutil.rmtree(store.artifact_dir(run_id) / "shards", ignore_errors=True)
        info["trained_from"] = result.trained_from
        if result.trained_from == "disk":
            info["trained_from_note"] = _("Trained from memory-mapped shards on disk (the training split's tensors "
                                          "exceed the memory setting, or train_from is 'disk'); per-row training "
                                          "statistics were not kept.")

        # The device the model really used (LightGBM boosts on the CPU whatever the setting).
        store.update(run_id, device=result.device, message=_("evaluating on the test split"), info=info)
        metrics, test_loss, proba = _evaluate_run(store, run_id, result.module, data)
        if tta is not None:
            store.update(run_id, message=_("test-time augmentation: {passes} forward passes per row").format(
                passes=spec.tta_copies + 1))
            info["tta"] = _test_time_augmentation(store, run_id, spec, tta, result.module, data, proba, test_loss)
            store.update(run_id, info=info)
        if result.sample_stats is not None:
            stats = result.sample_stats
            if SAMPLE_WEIGHT in train_prime.frame:
                stats["sample_weight"] = np.tile(train_prime.frame[SAMPLE_WEIGHT].to_numpy(np.float32),
                                                 len(result.history))
            store.write_table(run_id, "sample_stats", stats)
        folder = store.artifact_dir(run_id, create=True)
        extra = {"classes": list(classes), "run_id": run_id}
        save_checkpoint(folder / "model.pt", model, result.module, result.input_spec, extra=extra)
        # What sample importance needs later: the rows trained on (with the dataset row each came from)
        # and the model along the way. A split trained from disk is not copied per run.
        if outcome is not None:
            store.write_table(run_id, "train_rows", train_prime.frame.assign(
                source_row=data.rows("train")[outcome.source_rows]))
        if getattr(outcome, "synthesis", None) is not None:      # a generator's history and quality report
            (folder / SYNTHESIS_REPORT).write_text(json.dumps(outcome.synthesis.to_dict()))
        if consistency is not None:                               # new rows against real ones, per class
            (folder / CONSISTENCY_REPORT).write_text(json.dumps(consistency.to_dict(), allow_nan=False))
        for epoch, state in result.epoch_states.items():
            save_checkpoint(folder / STATES_FOLDER / f"epoch_{epoch:03d}.pt", model, result.module, result.input_spec,
                            extra={**extra, "epoch": epoch}, state=state)
        final = {**metrics, "test_loss": test_loss, "best_epoch": float(result.best_epoch),
                 "epochs_run": float(len(result.history)), "train_seconds": result.seconds,
                 "samples_per_second": result.samples_per_second, "total_seconds": time.perf_counter() - started,
                 "synthetic_rows": float(train_prime.frame[IS_SYNTHETIC].sum())
                 if isinstance(train_prime, Dataset) and IS_SYNTHETIC in train_prime.frame else 0.0}
        store.set_final_metrics(run_id, final)
        store.update(run_id, message=_("done"))
        store.finish(run_id, FINISHED)
        return final
    except (RecexpError, OSError) as error:
        store.finish(run_id, FAILED, error=sentence(error))
        raise
    except Exception as error:
        store.finish(run_id, FAILED, error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=8)}")
        raise


# --- background runner ----------------------------------------------------------------------------

def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_run(max_concurrent: int) -> int:
    """Torch intra-op threads for each of ``max_concurrent`` runs training at once.

    One core stays free for the dashboard and data loading, the rest is split evenly, at least one
    thread each: torch's spinning worker threads collapse (many times slower) when the machine is
    oversubscribed. The job runner's workers and ``python -m recexp run`` both follow this rule
    (a foreground CLI run is one run at a time: ``threads_per_run(1)``).

    Examples
    --------
    >>> threads_per_run(1) == max(1, usable_cores() - 1)
    True
    """
    return max(1, (usable_cores() - 1) // max(1, max_concurrent))


@dataclass(frozen=True, eq=False)
class Command:
    """Work for a :class:`JobRunner` besides the store's runs: ``argv`` run in a worker process when a slot is free.

    Commands and queued runs share the runner's limit and start oldest first. The runner appends
    ``--threads N`` (its rule for torch's threads, :func:`threads_per_run`), writes the process's output
    to ``log``, and once the process ended calls ``on_exit(pid, reason)``: ``reason`` is None after exit
    code 0, else a sentence (cancelled, killed by which signal, or the exit code). ``group`` names the
    commands :meth:`JobRunner.cancel_group` stops together (e.g. one study's workers). Commands live in the
    runner's memory: unlike queued runs, one still waiting when the app stops is not started again.
    """

    group: str
    argv: tuple[str, ...]
    log: Path
    on_exit: Callable[[int, str | None], None] | None = None


@dataclass
class _Child:
    handle: Any                        # the executor's handle of the run (a local process for a command)
    kill_at: float | None = None       # set by cancel: kill after this time if still executing
    command: Command | None = None     # None: the worker of the run the child is keyed by


class JobRunner:
    """Executes queued runs in worker processes, at most ``max_concurrent`` at a time.

    The queue is the run store itself (runs with status ``queued``, oldest first), so queued runs
    survive an app restart and several runners may share a store (claiming a run is atomic).
    Call :meth:`poll` to reap finished workers and start queued runs, or :meth:`start` a
    background thread that polls every ``poll_interval`` seconds.

    Parameters
    ----------
    store : SQLiteRunStore
    max_concurrent : int
        Worker processes running at once.
    threads_per_job : int, optional
        ``torch.set_num_threads`` in each worker; default: :func:`threads_per_run` of ``max_concurrent``.
    poll_interval : float
        Seconds between polls of the background thread.
    cancel_grace : float
        Seconds between SIGTERM and SIGKILL when cancelling.
    runs : bool
        Whether it executes the store's queued runs; False: only the :class:`Command` s submitted to it
        (a foreground CLI's own workers, which must leave the dashboard's queue alone).
    executor : Executor, optional
        Where the workers run (:class:`~recexp.executors.LocalExecutor`, the default, or
        :class:`~recexp.executors.RayExecutor`); the runner alone writes the store either way. Commands
        always run on this machine.
    reserved_by : int, optional
        Execute only the queued runs reserved for this process id (a foreground CLI's own grid, see
        :func:`run_with_executor`) instead of the unreserved queue.
    """

    def __init__(self, store: SQLiteRunStore, max_concurrent: int = 1, threads_per_job: int | None = None,
                 poll_interval: float = 0.5, cancel_grace: float = 5.0, runs: bool = True,
                 executor: Executor | None = None, reserved_by: int | None = None):
        self.store = store
        self.max_concurrent = max_concurrent
        self.threads_per_job = threads_per_job
        self.poll_interval = poll_interval
        self.cancel_grace = cancel_grace
        self.runs = runs
        self.executor = executor if executor is not None else LocalExecutor()
        self.reserved_by = reserved_by
        self._children: dict[str, _Child] = {}
        self._commands: list[tuple[float, Command]] = []       # waiting for a slot, with the time submitted
        self._serial = itertools.count()                       # keys of command children
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def for_owner(self, owner: str | None) -> JobRunner:
        """This runner acting for one signed-in user (itself for None, i.e. without login).

        The same workers, queue, limit and lock; its :attr:`store` is ``store.for_owner(owner)``, so the
        experiments it launches belong to ``owner`` and it lists what ``owner`` may see.
        """
        if owner is None:
            return self
        view = copy.copy(self)                                  # shares _children, _lock and the poll thread
        view.store = self.store.for_owner(owner)
        return view

    # --- submitting ---------------------------------------------------------------------------

    def submit(self, spec: RunSpec, experiment_id: str | None = None, name: str = "") -> Run:
        """Validate ``spec`` and queue it (in a new experiment unless one is given)."""
        validate_spec(spec)
        if experiment_id is None:
            experiment_id = self.store.create_experiment(name or spec.label()).id
        run = self.store.create_run(experiment_id, spec.to_dict(), name=name or spec.label())
        self.poll()
        return run

    def launch_grid(self, base: RunSpec, strategies: Sequence[tuple[str, dict[str, Any]]],
                    seeds: Sequence[int], models: Sequence[tuple[str, dict[str, Any]]] | None = None,
                    name: str = "", description: str = "", primary: str | None = None, aa: bool = False
                    ) -> tuple[Any, list[Run]]:
        """Queue every strategy x seed (x model) combination as one experiment.

        ``primary`` is the score whose verdict counts, declared before training and stored with the
        experiment; ``aa`` adds the A/A arm (see :func:`grid_specs`). Every spec is validated before
        anything is queued, so a bad parameter queues nothing. Returns ``(experiment, runs)``.
        """
        specs = grid_specs(base, strategies, seeds, models, aa=aa)
        models = list(models) if models else [(base.model, dict(base.model_params))]
        experiment = self.store.create_experiment(
            name or f"{len(strategies)} strategies x {len(models)} models x {len(seeds)} seeds", description,
            settings={"primary": primary, "aa": aa} if primary else {"aa": aa})
        runs = [self.store.create_run(experiment.id, spec.to_dict(), name=spec.label()) for spec in specs]
        self.poll()
        return experiment, runs

    def add_seeds(self, experiment_id: str, n: int) -> list[Run]:
        """Queue ``n`` more seeds of every arm of an experiment into it (see :func:`more_seeds`)."""
        runs = [self.store.create_run(experiment_id, spec.to_dict(), name=spec.label())
                for spec in more_seeds(self.store, experiment_id, n)]
        self.poll()
        return runs

    # --- the loop -----------------------------------------------------------------------------

    def _spawn(self, run: Run) -> None:
        threads = self.threads_per_job or threads_per_run(self.max_concurrent)
        try:
            handle = self.executor.start(self.store, run, threads)
        except (OSError, RecexpError) as error:             # e.g. a full disk: no room for the worker's log
            reason = os_error_sentence(error, "start") if isinstance(error, OSError) else str(error)
            self.store.finish(run.id, FAILED, error=_("Could not start the worker process: {reason}").format(
                reason=reason))
            return
        self._children[run.id] = _Child(handle)
        self.store.update(run.id, pid=self.executor.pid(handle))

    def _reap(self) -> None:
        now = time.monotonic()
        self.executor.relay(self.store)
        for key, child in list(self._children.items()):
            if child.command is not None:
                ended = child.handle.exit_code()
            else:
                ended = self.executor.poll(self.store, key, child.handle)
            if ended is None:
                if child.kill_at is not None and now >= child.kill_at:
                    self._signal(child, force=True)
                continue
            del self._children[key]
            if child.command is not None:
                self._command_ended(child, ended)
            elif self.store.get_run(key).is_active:
                self.store.finish(key, FAILED, error=ended)

    def poll(self) -> None:
        """Reap finished workers, fail runs whose process died, start queued runs and commands up to the limit.

        Queued runs and waiting commands start oldest first. Queued runs that record a process id are
        reserved for that (foreground) process and claimed only by its own runner (``reserved_by``).
        """
        with self._lock:
            self._reap()
            if self.store.read_only:                            # nothing can be queued, claimed or failed there
                return
            if self.runs:
                self.store.fail_orphans(exclude=self._children)
            free = self.max_concurrent - len(self._children)
            if free <= 0:
                return
            queued = [(datetime.fromisoformat(run.created_at).timestamp(), run) for run in
                      (self.store.list_runs(statuses=[QUEUED]) if self.runs else [])
                      if run.pid == self.reserved_by]  # a run with a pid was queued by a foreground process, which runs it
            for item in sorted(queued + self._commands, key=lambda item: item[0]):
                if free <= 0:
                    break
                job = item[1]
                if isinstance(job, Command):
                    self._commands.remove(item)
                    self._start_command(job)
                    free -= 1
                elif self.store.claim(job.id):
                    self._spawn(job)
                    free -= 1

    def start(self) -> JobRunner:
        """Poll in a daemon thread (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="recexp-job-runner", daemon=True)
                self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            if not self.store.path.exists():                    # the workspace was deleted: nothing to watch
                break
            try:
                self.poll()
            except RecexpError as error:                        # e.g. a full disk: say so; the next poll retries
                print(f"job runner: {error}", file=sys.stderr, flush=True)
            except Exception:                                   # keep polling; the next poll retries
                traceback.print_exc()

    def stop(self, cancel_running: bool = False) -> None:
        """Stop the background thread (and cancel this runner's running workers if asked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if cancel_running:
            for key, child in list(self._children.items()):
                if child.command is None:
                    self.cancel(key)
                else:
                    self.cancel_group(child.command.group)
            deadline = time.monotonic() + self.cancel_grace + 2
            while self._children and time.monotonic() < deadline:
                self.poll()
                time.sleep(0.05)

    # --- control ------------------------------------------------------------------------------

    def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Cancel a queued or running run: mark it cancelled (with ``reason``, by default "Cancelled by the user."),
        SIGTERM its worker, SIGKILL after the grace.

        Returns False when the run had already ended.
        """
        with self._lock:
            run = self.store.get_run(run_id)
            if not self.store.finish(run_id, CANCELLED, error=reason or _("Cancelled by the user.")):
                return False
            child = self._children.get(run_id)
            if child is not None:
                self._terminate(child)
            elif run.status == RUNNING and run.pid and pid_alive(run.pid, worker_only=True):   # not a foreground caller
                with _suppress_lookup():
                    os.killpg(run.pid, signal.SIGTERM)
            return True

    def _terminate(self, child: _Child) -> None:
        """Ask a child to stop now (SIGTERM), kill it after the grace (see :meth:`_reap`)."""
        self._signal(child)
        child.kill_at = time.monotonic() + self.cancel_grace

    def _signal(self, child: _Child, force: bool = False) -> None:
        """Stop a child: a command's local process directly, a run through the executor it runs on."""
        if child.command is not None:
            child.handle.signal(force)
        else:
            self.executor.stop(child.handle, force=force)

    def running(self) -> list[str]:
        """Ids of runs this runner's workers are executing."""
        with self._lock:
            return [key for key, child in self._children.items() if child.command is None]

    # --- commands -----------------------------------------------------------------------------

    def submit_command(self, command: Command) -> None:
        """Queue ``command``; it starts when a slot is free, after the runs and commands queued before it."""
        with self._lock:
            self._commands.append((time.time(), command))
        self.poll()

    def _start_command(self, command: Command) -> None:
        threads = self.threads_per_job or threads_per_run(self.max_concurrent)
        try:
            process = LocalProcess.spawn([*command.argv, "--threads", str(threads)], command.log, self.store.home)
        except OSError as error:
            print(_("job runner: could not start {group}: {reason}").format(
                group=command.group, reason=os_error_sentence(error, "start")), file=sys.stderr, flush=True)
            return
        self._children[f"{command.group}#{next(self._serial)}"] = _Child(process, command=command)

    def _command_ended(self, child: _Child, code: int) -> None:
        """Tell a command's ``on_exit`` how its process ended (a failing callback is printed, not raised)."""
        if child.command.on_exit is None:
            return
        if child.kill_at is not None:
            reason = _("Cancelled by the user.")
        else:
            reason = None if code == 0 else _("{reason}.").format(reason=describe_exit(code))
        try:
            child.command.on_exit(child.handle.pid, reason)
        except Exception:                                       # noqa: BLE001 (the runner keeps polling)
            traceback.print_exc()

    def cancel_group(self, group: str) -> int:
        """Drop ``group``'s waiting commands and stop its running ones (SIGTERM, then SIGKILL after the grace).

        Returns how many commands were dropped or stopped.
        """
        with self._lock:
            waiting = [item for item in self._commands if item[1].group == group]
            for item in waiting:
                self._commands.remove(item)
            running = [child for child in self._children.values()
                       if child.command is not None and child.command.group == group and child.kill_at is None]
            for child in running:
                self._terminate(child)
            return len(waiting) + len(running)

    def commands(self, group: str) -> tuple[int, int]:
        """``(running, waiting)``: how many of ``group``'s commands have a process, and how many wait for a slot."""
        with self._lock:
            running = sum(1 for child in self._children.values()
                          if child.command is not None and child.command.group == group)
            return running, sum(1 for _, command in self._commands if command.group == group)

    def wait(self, run_ids: Sequence[str], timeout: float = 600.0, interval: float = 0.2) -> list[Run]:
        """Poll until every run in ``run_ids`` has ended; raise :class:`JobError` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            runs = [self.store.get_run(r) for r in run_ids]
            if all(not r.is_active for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise JobError(_("Runs still active after {timeout:.0f} s: {value}.").format(
                                 timeout=timeout, value=', '.join(r.id for r in runs if r.is_active)))
            time.sleep(interval)


class _suppress_lookup:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, ProcessLookupError | PermissionError)


def max_jobs() -> int:
    """Runs a job runner trains at once: ``$RECEXP_MAX_JOBS``, else one per four cores (at least one).

    ``$RECEXP_MAX_JOBS`` above the core count is capped at it, with a :class:`RuntimeWarning` that says
    so: more runs than cores only makes each of them slower.
    """
    cores = usable_cores()
    configured = os.environ.get("RECEXP_MAX_JOBS", "").strip()
    if not configured:
        return max(1, cores // 4)
    if not (configured.isdigit() and int(configured) > 0):
        raise InvalidParameterError(
            _("RECEXP_MAX_JOBS must be a positive integer, but is {configured!r}. "
              "Fix or unset it.").format(configured=configured))
    if int(configured) > cores:
        warnings.warn(f"RECEXP_MAX_JOBS={configured} is more than the {cores} CPU cores here; at most {cores} runs "
                      "train at once.", RuntimeWarning, stacklevel=2)
    return min(int(configured), cores)


def default_runner(store: SQLiteRunStore | None = None, max_concurrent: int | None = None) -> JobRunner:
    """A runner on the workspace store with the executor ``$RECEXP_EXECUTOR`` names (local worker processes by
    default; see :mod:`recexp.executors`), training :func:`max_jobs` runs at once (or ``max_concurrent``; on
    Ray, as many as the cluster's CPUs hold)."""
    executor = executor_from_env()
    limit = max_concurrent or executor.capacity(max_jobs())
    return JobRunner(store or SQLiteRunStore.open(), max_concurrent=limit, executor=executor)


__all__ = ["execute", "validate_spec", "grid_specs", "more_seeds", "run_in_foreground", "run_with_executor",
           "available_strategies", "strategy_class", "bind_strategy", "source_run", "Command", "JobRunner", "default_runner", "max_jobs",
           "threads_per_run", "usable_cores", "worker_env", "ACTIVE"]
