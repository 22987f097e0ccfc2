"""A study: trials of a search space scored on the validation split, in an Optuna RDB storage.

Each trial applies its strategy to the training split, trains, and scores the experiment's primary
score on the validation split; after every epoch it reports that score to Optuna so a pruner (median
or Hyperband) can stop a hopeless trial. The test split is never handed to a trial: :func:`validation_data`
keeps only the training and validation rows (and asserts they do not overlap the test rows); the best
configurations go to an ordinary experiment, trained with seeds and compared on test.

The study lives in an Optuna RDB storage: ``$RECEXP_OPTUNA_STORAGE`` (e.g. a PostgreSQL URL several
machines share), else ``optuna.db`` (SQLite) in the workspace. Re-opening a study by name continues
it (its settings are stored with it; other settings for the same name are refused). Trials run in
this process (:func:`run_study`) or in worker processes that share the storage, Optuna's own
distributed mode: ``python -m recexp.tune``, started as commands of a :class:`recexp.jobs.JobRunner`
(:func:`launch`), so they share its limit with training runs and can be cancelled (:func:`cancel`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from sqlalchemy.engine import make_url

from recexp.data.source import workspace
from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError, RecexpError, sentence
from recexp.i18n import N_, _, dumps_text, loads_text
from recexp.jobs import Command, JobRunner, bind_strategy, strategy_class, threads_per_run, validate_spec
from recexp.metrics import LOWER_IS_BETTER, default_primary, evaluation_metrics, primary_choices
from recexp.models import MODELS, TrainConfig, evaluate, train
from recexp.runs import RunStore, SQLiteRunStore
from recexp.spec import RunSpec, prepare_data
from recexp.tune.space import SearchSpace, TrialConfig

#: Environment variable naming a shared Optuna storage (any SQLAlchemy URL Optuna accepts).
STORAGE_ENV = "RECEXP_OPTUNA_STORAGE"
#: The study's settings, stored with it (so a worker or a restart runs exactly these).
SPEC_ATTR = "recexp_tune_spec"
#: Trials the study should have once the latest budget is spent.
TARGET_ATTR = "recexp_target_trials"
SAMPLERS = {"tpe": N_("TPE (learns from the trials so far)"), "random": N_("random search")}
PRUNERS = {"median": N_("median: stop a trial below the median of earlier trials at the same epoch"),
           "hyperband": N_("Hyperband: successive halving over several brackets"), "none": N_("no pruning")}
#: Seconds between a running trial's heartbeats; a trial silent for GRACE_SECONDS (its process died) is
#: marked failed when the study next runs, so a study continues where it stopped.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40
#: The error of a trial whose process was stopped by a signal or Ctrl-C (the page's Cancel sends SIGTERM).
STOPPED = N_("Stopped during this trial: the study was cancelled (or its process got SIGTERM or Ctrl-C). The "
             "trials that finished are kept, and the study can be continued.")



class WorkerStop:
    """Where a worker's stop signal (SIGTERM from the page's Cancel, Ctrl-C) lands, so no trial is left unexplained.

    Inside a trial's work (sampling the strategy, training, scoring) it raises :class:`KeyboardInterrupt`
    at once, and the objective fails the trial with :data:`STOPPED`. Inside Optuna's own bookkeeping (a
    trial being created, its parameters sampled, its result stored) an interrupt would leave a trial failed
    without a sentence or still running; there the stop is held and raised as the next trial's work begins
    (or as the worker's optimisation ends). A worker installs :meth:`arrived` as its signal handler.
    """

    def __init__(self) -> None:
        self.holding = False
        self.pending: str | None = None

    def arrived(self, signum: int, frame: Any = None) -> None:
        """The signal handler: raise now, or hold the stop until the next trial's work."""
        name = signal.Signals(signum).name
        if self.holding:
            self.pending = name
            return
        raise KeyboardInterrupt(name)

    @contextlib.contextmanager
    def held(self):
        """Hold stops while Optuna runs its trials (its bookkeeping); raise a held stop on the way out."""
        before, self.holding = self.holding, True
        try:
            yield
        finally:
            self.holding = before
        self._raise_pending()

    @contextlib.contextmanager
    def open(self):
        """A trial's own work: stops land at once (a stop held so far is raised on entry)."""
        before, self.holding = self.holding, False
        try:
            self._raise_pending()
            yield
        finally:
            self.holding = before

    def _raise_pending(self) -> None:
        if self.pending is not None:
            name, self.pending = self.pending, None
            raise KeyboardInterrupt(name)


#: This process's :class:`WorkerStop` (a worker process installs its handler; elsewhere it never holds).
WORKER_STOP = WorkerStop()

@dataclass(frozen=True)
class TuneSpec:
    """Everything a study depends on besides its trials; stored with the study as JSON.

    ``base`` names the data, task, split, model, its parameters and training settings and the seed of
    every trial (its strategy is ignored). ``primary`` is the score maximised (or minimised, for a loss)
    on the validation split; empty means the task's default (:func:`recexp.metrics.default_primary`).
    The rest define the space (see :class:`recexp.tune.space.SearchSpace`), the sampler and the pruner.
    """

    base: RunSpec
    strategies: tuple[str, ...]
    primary: str = ""
    search_model: bool = False
    search_train: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    sampler_seed: int = 0
    pruner: str = "median"

    def space(self) -> SearchSpace:
        """The search space (validated: raises a sentence for a bad narrowing or an empty space)."""
        return SearchSpace(list(self.strategies), model=self.base.model, search_model=self.search_model,
                           search_train=self.search_train, fixed=self.fixed, ranges=self.ranges, choices=self.choices)

    def validate(self) -> None:
        """Check the space, sampler, pruner and the base run spec; raise a sentence on the first problem."""
        if self.sampler not in SAMPLERS:
            raise InvalidParameterError(_("Unknown sampler {sampler!r}; choose one of {samplers}.").format(
                                          sampler=self.sampler, samplers=', '.join(SAMPLERS)))
        if self.pruner not in PRUNERS:
            raise InvalidParameterError(_("Unknown pruner {pruner!r}; choose one of {pruners}.").format(
                                          pruner=self.pruner, pruners=', '.join(PRUNERS)))
        if not isinstance(self.sampler_seed, int) or isinstance(self.sampler_seed, bool) or self.sampler_seed < 0:
            raise InvalidParameterError(_("The sampler seed must be a non-negative integer, but got "
                                          "{sampler_seed!r}.").format(sampler_seed=self.sampler_seed))
        self.space()
        validate_spec(replace(self.base, strategy="none", strategy_params={}))

    @property
    def direction(self) -> str:
        """``"minimize"`` for a loss-like primary score, else ``"maximize"``."""
        return "minimize" if self.primary in LOWER_IS_BETTER else "maximize"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["base"] = self.base.to_dict()
        data["strategies"], data["search_train"] = list(self.strategies), list(self.search_train)
        data["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return json.loads(json.dumps(data, default=str))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneSpec:
        data = dict(data)
        return cls(**{**data, "base": RunSpec.from_dict(data["base"]), "strategies": tuple(data["strategies"]),
                      "search_train": tuple(data.get("search_train", ()))})


@dataclass(frozen=True)
class TrialData:
    """What a trial may see: the training and validation rows (never the test rows) and the class names."""

    train: Dataset
    valid: Dataset
    classes: tuple[str, ...]
    fingerprint: str


def validation_data(spec: RunSpec) -> TrialData:
    """The training and validation rows of ``spec``'s data; the test rows are dropped here, before any trial.

    The dataset is built whole (features of a log task come from each row's history, and vocabularies
    from the rows before the test cut, exactly as for an experiment), then only the training and
    validation positions are taken out of it.
    """
    dataset, split = prepare_data(spec)
    kept = np.concatenate([split.train, split.valid])
    assert not np.isin(kept, split.test).any(), "a trial's rows overlap the test split"
    if len(split.valid) == 0:
        raise InvalidParameterError(_("The split has no validation rows, and a search scores every trial on "
                                      "them. Set valid_size above 0 (e.g. 0.1)."))
    return TrialData(dataset.subset(split.train), dataset.subset(split.valid), tuple(dataset.schema.classes),
                     dataset.fingerprint)


def resolve_primary(spec: TuneSpec, classes) -> TuneSpec:
    """``spec`` with its primary score set (the task's default when empty) and checked against the classes."""
    primary = spec.primary or default_primary(classes)
    choices = primary_choices(classes)
    if primary not in choices:
        raise InvalidParameterError(_("The primary score {primary!r} is not a score of this task; choose one of "
                                      "{choices}.").format(
                                      primary=primary, choices=', '.join(choices)))
    return replace(spec, primary=primary)


def primary_scorer(primary: str, classes):
    """``scorer(label codes, probabilities)`` -> the primary score (as the Compare page computes it)."""
    names = [str(c) for c in classes]

    def score(labels: np.ndarray, proba: np.ndarray) -> float:
        if not np.isfinite(proba).all():                    # the training diverged (e.g. too large a step)
            return math.nan
        return float(evaluation_metrics(labels, proba, names)[primary])

    return score


def check_feasible(space: SearchSpace, data: TrialData) -> None:
    """Refuse a space in which a strategy cannot run at all on the training split.

    Each strategy is checked at the low and at the high corner of its ranges (:meth:`SearchSpace.corners`);
    when both fail, the sentence names the strategy, the low corner and what to change. (A range that is
    feasible only in part is searched: its infeasible trials fail with their sentence.)
    """
    for low, high in zip(space.corners("low"), space.corners("high")):
        errors = []
        for config in (low, high):
            try:
                strategy_class(config.strategy)(**config.strategy_params).check_feasible(data.train)
            except RecexpError as error:
                errors.append(error)
        if len(errors) == 2:
            raise InvalidParameterError(
                _("The range searched for {strategy} is infeasible on this training split: neither at "
                  "{strategy_params} nor at {strategy_params2} can it run. {errors}").format(
                  strategy=low.strategy, strategy_params=low.strategy_params,
                  strategy_params2=high.strategy_params, errors=errors[0]))


def score_config(config: TrialConfig, spec: TuneSpec, data: TrialData, store: RunStore | None = None,
                 trial: optuna.Trial | None = None) -> float:
    """Apply ``config``'s strategy to the training rows, train, and return the primary score on validation.

    With ``trial``, the validation score of every epoch is reported to it, and the trial is pruned
    (:class:`optuna.TrialPruned`) when its pruner says so.
    """
    base = spec.base
    run = replace(base, strategy=config.strategy, strategy_params=dict(config.strategy_params),
                  model_params={**base.model_params, **config.model_params}, train={**base.train, **config.train})
    validate_spec(run)
    strategy = bind_strategy(strategy_class(run.strategy)(**run.strategy_params), store or SQLiteRunStore.open(),
                             data.valid)
    outcome = strategy.apply(data.train, seed=run.seed)
    settings = {**run.train, **outcome.train_overrides(), "seed": run.seed, "record_sample_stats": False,
                "kept_states": 0}
    scorer = primary_scorer(spec.primary, data.classes)

    def report(epoch: int, metrics: dict[str, float]) -> None:
        value = metrics.get("valid_score", math.nan)
        if trial is None or not math.isfinite(value):
            return
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (validation {spec.primary} {value:.4f})")

    result = train(MODELS[run.model](**run.model_params), outcome.dataset, data.valid, TrainConfig.from_dict(settings),
                   callback=report, valid_scorer=scorer)
    _, proba = evaluate(result.module, data.valid)
    return scorer(data.valid.y, proba)


def objective(spec: TuneSpec, data: TrialData, store: RunStore | None = None):
    """The function Optuna calls per trial: sample, train, score on validation; a failure is noted on the trial."""
    space = spec.space()

    def run_trial(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())                # which worker process ran it
        config = space.sample(trial)
        trial.set_user_attr("config", config.to_dict())
        try:
            with WORKER_STOP.open():
                value = score_config(config, spec, data, store, trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:                              # Optuna fails the trial and stops the study
            trial.set_user_attr("error", dumps_text(_(STOPPED)))
            raise
        except RecexpError as error:
            trial.set_user_attr("error", dumps_text(sentence(error)))   # a recipe: read in the viewer's language
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        if not math.isfinite(value):
            trial.set_user_attr("error", dumps_text(_(
                "The validation {metric} is undefined for this trial: the training diverged (non-finite "
                "predictions; e.g. too large a learning rate) or a class is missing from the validation "
                "rows.").format(metric=spec.primary)))
        return value

    return run_trial


# --- storage and studies ---------------------------------------------------------------------------

def storage_url(home: str | Path | None = None) -> str:
    """``$RECEXP_OPTUNA_STORAGE``, else a SQLite file ``optuna.db`` in the workspace ``home``."""
    configured = os.environ.get(STORAGE_ENV, "").strip()
    if configured:
        return configured
    folder = Path(home) if home is not None else workspace()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.resolve() / 'optuna.db'}"


def shown_url(url: str) -> str:
    """The storage URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:                                     # noqa: BLE001 (not a URL SQLAlchemy parses: show as given)
        return url


def _storage(url: str) -> optuna.storages.RDBStorage:
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():                     # heartbeats are "experimental" in Optuna 5, and what we need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS)
    except Exception as error:                            # noqa: BLE001 (a bad URL, an unreachable server, a driver missing)
        raise InvalidParameterError(_("The Optuna storage {url} could not be opened ({error}). Check "
                                      "${storage_env}, or unset it to use the workspace's SQLite file.").format(
                                      url=shown_url(url), error=error, storage_env=STORAGE_ENV)) from None


def _sampler(spec: TuneSpec, worker: int) -> optuna.samplers.BaseSampler:
    seed = spec.sampler_seed + worker
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=5)


def _pruner(spec: TuneSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if spec.pruner == "hyperband":
        epochs = int(spec.base.train.get("epochs", TrainConfig().epochs))
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2), reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(name: str, spec: TuneSpec | None = None, url: str | None = None, worker: int = 0) -> optuna.Study:
    """The study ``name``: created with ``spec`` when new, continued when it exists.

    Without ``spec`` the study must exist, and runs with its stored settings. With ``spec`` an existing
    study must have been started with the same settings (so its trials stay comparable).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(_("A study needs a name (e.g. 'smote-yeast'); got an empty one."))
    url = url or storage_url()
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # failed trials are reported by recexp (a sentence), not logged
    storage = _storage(url)
    stored = _stored_spec(storage, name)
    if spec is None:
        if stored is None:
            raise InvalidParameterError(_("There is no study {name!r} in "
                                          "{url}; start it with its settings.").format(name=name, url=shown_url(url)))
        spec = stored
    elif stored is not None and stored.to_dict() != spec.to_dict():
        old, new = stored.to_dict(), spec.to_dict()
        differ = sorted(k for k in new if old.get(k) != new.get(k))
        raise InvalidParameterError(
            _("Study {name!r} was started with other settings ({differ} differ), so its trials would not be "
              "comparable. Use the same settings to continue it, or "
              "give the new search another study name.").format(name=name, differ=', '.join(differ)))
    study = optuna.create_study(study_name=name, storage=storage, direction=spec.direction,
                                sampler=_sampler(spec, worker), pruner=_pruner(spec), load_if_exists=True)
    if stored is None:
        study.set_user_attr(SPEC_ATTR, spec.to_dict())
    return study


def study_names(url: str | None = None) -> list[str]:
    """Names of the recexp studies in the storage (``$RECEXP_OPTUNA_STORAGE`` or the workspace's), newest last."""
    storage = _storage(url or storage_url())
    return [s.study_name for s in storage.get_all_studies() if SPEC_ATTR in s.user_attrs]


def _stored_spec(storage, name: str) -> TuneSpec | None:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    attrs = storage.get_study_user_attrs(study_id)
    if SPEC_ATTR not in attrs:
        raise InvalidParameterError(_("The study {name!r} in this storage was not made by recexp; choose another "
                                      "name.").format(name=name))
    return TuneSpec.from_dict(attrs[SPEC_ATTR])


def study_spec(study: optuna.Study) -> TuneSpec:
    """The settings a study was started with."""
    return TuneSpec.from_dict(study.user_attrs[SPEC_ATTR])


def prepare(spec: TuneSpec) -> tuple[TuneSpec, TrialData]:
    """Validate ``spec``, load the validation data, settle the primary score and check the space is feasible."""
    spec.validate()
    data = validation_data(spec.base)
    spec = replace(resolve_primary(spec, data.classes), base=replace(spec.base, fingerprint=data.fingerprint))
    check_feasible(spec.space(), data)
    return spec, data


def _check_budget(n_trials: Any, minutes: Any) -> None:
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise InvalidParameterError(_("The budget must be at least 1 trial, but got {n_trials!r}. Give a number "
                                      "of trials of 1 or more.").format(n_trials=n_trials))
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0):
        raise InvalidParameterError(_("The time budget must be a positive number of minutes, but got "
                                      "{minutes!r}. Give e.g. 10, or no time limit.").format(minutes=minutes))


def run_study(spec: TuneSpec, name: str, n_trials: int, minutes: float | None = None, url: str | None = None,
              store: RunStore | None = None, threads: int | None = None) -> optuna.Study:
    """Run ``n_trials`` more trials of study ``name`` in this process (fewer when ``minutes`` run out).

    A trial that fails is recorded as failed (with its sentence as the ``error`` attribute) and the
    study goes on. Torch uses ``threads`` threads (default: :func:`recexp.jobs.threads_per_run` of 1).
    """
    _check_budget(n_trials, minutes)
    spec, data = prepare(spec)
    study = open_study(name, spec, url)
    _set_target(study, n_trials)
    torch.set_num_threads(threads or threads_per_run(1))
    study.optimize(objective(spec, data, store), n_trials=n_trials, timeout=minutes * 60 if minutes else None,
                   catch=(Exception,), gc_after_trial=False)
    return study


def worker_group(name: str, url: str) -> str:
    """The job runner's group of study ``name``'s worker processes (what :func:`cancel` stops)."""
    return f"tune:{url}#{name}"


def launch(spec: TuneSpec, name: str, n_trials: int, workers: int, runner: JobRunner, minutes: float | None = None,
           url: str | None = None) -> str:
    """Queue ``workers`` worker processes sharing study ``name`` (Optuna's distributed mode) on ``runner``.

    They are commands of the job runner (:class:`recexp.jobs.Command`): they start as its limit allows,
    beside training runs and oldest first, and each trains with the runner's threads. The budget of
    ``n_trials`` is split between them (their shares differ by at most one), so the study gets exactly
    ``n_trials`` more trials unless ``minutes`` (counted from now) run out first. Each process writes its
    output to ``tune-<name>-<k>.log`` in the runner's workspace; when one ends other than by finishing,
    its running trial is failed with the reason (:func:`fail_trials_of`). Returns the runner's group of
    these workers (see :meth:`recexp.jobs.JobRunner.commands` and :func:`cancel`).
    """
    _check_budget(n_trials, minutes)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InvalidParameterError(_("Trials run in at least 1 process, but got "
                                      "{workers!r}.").format(workers=workers))
    home = runner.store.home
    url = url or storage_url(home)
    spec, _prepared = prepare(spec)
    _set_target(open_study(name, spec, url), n_trials)  # created (settings checked) before any worker starts
    workers = min(workers, n_trials)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    for k in range(workers):
        share = n_trials // workers + (1 if k < n_trials % workers else 0)
        argv = [sys.executable, "-m", "recexp.tune", name, "--storage", url, "--trials", str(share),
                "--worker", str(k), "--home", str(home)]
        if minutes:
            argv += ["--until", repr(time.time() + minutes * 60)]
        runner.submit_command(Command(worker_group(name, url), tuple(argv), home / f"tune-{safe}-{k}.log",
                                      on_exit=functools.partial(fail_trials_of, url, name)))
    return worker_group(name, url)


def cancel(runner: JobRunner, name: str, url: str | None = None) -> int:
    """Stop study ``name``'s worker processes on ``runner``: waiting ones are dropped, running ones get SIGTERM.

    A stopped worker fails its running trial (:data:`STOPPED`); the trials that finished are kept, and
    the study can be continued. Returns how many workers were dropped or stopped.
    """
    return runner.cancel_group(worker_group(name, url or storage_url(runner.store.home)))


def fail_trials_of(url: str, name: str, pid: int, reason: str | None) -> list[int]:
    """Fail the trials of study ``name`` still running in process ``pid``, which ended for ``reason``.

    The job runner calls it when a worker ended (``reason`` None: it finished, nothing to do). A worker
    killed outright (SIGKILL, out of memory) cannot fail its trial itself; Optuna's heartbeat would only
    fail it when the study next runs. Returns the numbers of the trials failed.
    """
    if reason is None:
        return []
    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return []
    failed = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("pid") != pid:
            continue
        storage.set_trial_user_attr(trial._trial_id, "error", dumps_text(_(
            "{reason} Its worker process (pid {pid}) ended during this trial; the trials that finished are kept, "
            "and the study can be continued.").format(reason=reason, pid=pid)))
        if storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            failed.append(trial.number)
    return failed


def run_workers(spec: TuneSpec, name: str, n_trials: int, workers: int, minutes: float | None = None,
                url: str | None = None, poll: float = 0.5) -> optuna.Study:
    """:func:`launch` on a runner of this process's own and wait for the workers (the CLI's ``--workers``).

    The runner runs ``workers`` processes at once and leaves the workspace's queued runs alone; a
    foreground command is not counted against a dashboard's limit (as ``python -m recexp run`` is not).
    On :class:`KeyboardInterrupt` (Ctrl-C; the CLI turns SIGTERM into one) the workers are cancelled (see
    :func:`cancel`) before it is raised again.
    """
    url = url or storage_url()
    runner = JobRunner(SQLiteRunStore.open(), max_concurrent=workers, runs=False)
    jobs = launch(spec, name, n_trials, workers, runner, minutes=minutes, url=url)
    try:
        while runner.commands(jobs) != (0, 0):
            time.sleep(poll)
            runner.poll()
    except KeyboardInterrupt:
        runner.stop(cancel_running=True)
        raise
    return open_study(name, url=url)


def _set_target(study: optuna.Study, n_trials: int) -> None:
    """Note the trials the study should have once this budget is spent (the page's progress bar)."""
    study.set_user_attr(TARGET_ATTR, len(study.get_trials(deepcopy=False)) + n_trials)


def work(name: str, n_trials: int, url: str, worker: int = 0, until: float | None = None,
         threads: int | None = None) -> optuna.Study:
    """One worker process's share: ``n_trials`` trials of the existing study ``name`` with its stored settings.

    No trial starts after ``until`` (a Unix time: the study's time budget, set when it was launched).
    """
    stored = study_spec(open_study(name, url=url))
    data = validation_data(stored.base)
    study = open_study(name, stored, url, worker=worker)
    torch.set_num_threads(threads or threads_per_run(1))
    timeout = None if until is None else until - time.time()
    if timeout is None or timeout > 0:
        with WORKER_STOP.held():
            study.optimize(objective(stored, data), n_trials=n_trials, timeout=timeout, catch=(Exception,),
                           gc_after_trial=False)
    return study


def snapshot(study: optuna.Study) -> optuna.Study:
    """``study`` as it is now, in memory: its trials read from the storage once (a page poll reads them once).

    Everything that reads a study (:func:`summary`, :func:`trials_frame`, :func:`best_configs`, the
    figures) can be handed the snapshot instead, without a query of its own.
    """
    frozen = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name=study.study_name,
                                 direction=study.direction)
    for key, value in study.user_attrs.items():
        frozen.set_user_attr(key, value)
    frozen.add_trials(study.get_trials(deepcopy=False))
    return frozen


# --- reading a study -------------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial: number, state (complete / pruned / fail / running / waiting), params, value, seconds,
    last epoch reported, error sentence and configuration."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        error = loads_text(t.user_attrs.get("error"))           # stored as a recipe: in the reader's language
        if error is None and t.state == optuna.trial.TrialState.FAIL:
            error = _("Its process stopped during the trial (no heartbeat for a while); the study went on without "
                      "it.")
        rows.append({"number": t.number, "state": t.state.name.lower(), "params": dict(t.params),
                     "value": _finite(t.value) if t.value is not None else None, "seconds": seconds,
                     "epochs": t.last_step, "error": error, "config": t.user_attrs.get("config")})
    return rows


#: A trial's state (:func:`trial_rows`) -> its name on the page (translated where shown).
TRIAL_STATES = {"complete": N_("complete"), "pruned": N_("pruned"), "fail": N_("fail"), "running": N_("running"),
                "waiting": N_("waiting")}
#: The columns of :func:`trials_frame` -> their heading on the page (translated where shown).
TRIAL_COLUMNS = {"number": N_("trial"), "state": N_("state"), "value": N_("validation score"),
                 "seconds": N_("seconds"), "epochs": N_("epochs"), "params": N_("parameters"), "error": N_("error")}


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """:func:`trial_rows` as a table for the page (params as one readable column)."""
    rows = trial_rows(study)
    frame = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    frame["params"] = [", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())
                       for p in frame["params"]]
    return frame


def best_trials(study: optuna.Study, n: int = 3) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best complete trials, best first."""
    done = [t for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
            if t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: t.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)[:n]


def best_configs(study: optuna.Study, n: int = 3) -> list[TrialConfig]:
    """The configurations of the ``n`` best trials, best first (what "send to the grid" sends)."""
    space = study_spec(study).space()
    return [space.config(t.params) for t in best_trials(study, n)]


def summary(study: optuna.Study, url: str | None = None) -> dict[str, Any]:
    """The study as JSON: name, storage, ``"split": "validation"``, primary, direction, best trial, every trial."""
    spec = study_spec(study)
    best = best_trials(study, 1)
    rows = trial_rows(study)
    return {"study": study.study_name, "storage": shown_url(url or storage_url()), "split": "validation",
            "primary": spec.primary, "direction": spec.direction, "strategies": list(spec.strategies),
            "best_params": dict(best[0].params) if best else None,
            "best_value": best[0].value if best else None,
            "best_config": spec.space().config(best[0].params).to_dict() if best else None,
            "target_trials": study.user_attrs.get(TARGET_ATTR),
            "counts": {state: sum(1 for r in rows if r["state"] == state)
                       for state in ("complete", "pruned", "fail", "running")},
            "trials": [{k: r[k] for k in ("number", "state", "params", "value", "epochs", "error")} for r in rows]}


__all__ = ["TuneSpec", "TrialData", "validation_data", "resolve_primary", "primary_scorer", "check_feasible",
           "score_config", "objective", "storage_url", "shown_url", "open_study", "study_spec", "prepare", "run_study",
           "launch", "cancel", "fail_trials_of", "run_workers", "worker_group", "work", "WorkerStop", "WORKER_STOP", "snapshot", "study_names", "trial_rows", "trials_frame", "best_trials", "best_configs", "summary",
           "SAMPLERS", "PRUNERS", "STORAGE_ENV", "TRIAL_COLUMNS", "TRIAL_STATES", "STOPPED"]
