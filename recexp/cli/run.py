"""``python -m recexp run``: train every strategy x seed in the foreground (or more seeds of an experiment).

With ``RECEXP_EXECUTOR=ray`` the runs execute as tasks on a Ray cluster instead (see :mod:`recexp.executors`),
driven from this process until they all ended, with their progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace

from recexp.cli.common import (build_progress, finite_or_none, key_values, print_json, progress_bar, sampling_of, source_for,
                               task_and_split)
from recexp.errors import InvalidParameterError
from recexp.executors import LocalExecutor, executor_from_env
from recexp.i18n import _, ngettext
from recexp.jobs import grid_specs, more_seeds, run_in_foreground, run_with_executor, strategy_class
from recexp.metrics import NEXT_ITEM_PROTOCOL, task_scores
from recexp.models import MODELS, TrainConfig
from recexp.runs import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, Run, SQLiteRunStore
from recexp.rundata import check_strategy, run_data
from recexp.spec import RunSpec, data_source
from recexp.tasks import task_kind
from recexp.tta import check_applies, check_copies, tta_operator, tta_params


def run(args: argparse.Namespace) -> int:
    store = SQLiteRunStore.open()
    executor = executor_from_env()                 # a bad setting is refused before any data is loaded
    experiment = None
    if args.add_seeds is not None:
        experiment, specs = _more_seeds(store, args)
    else:
        specs = _new_grid(args)
    print(f"loading the data and building the {specs[0].task} dataset...", file=sys.stderr, flush=True)
    data = run_data(specs[0], progress=build_progress())
    for spec in specs:                             # before any run starts: a split on disk, and TTA, can be refused
        check_strategy(strategy_class(spec.strategy)(**spec.strategy_params), data)
        if spec.tta is not None and not data.on_disk:     # the operator must change what is scored (on disk: refused)
            check_applies(tta_operator(spec.tta, spec.tta_params), data.test, spec.model_params)
    ranking = task_kind(specs[0].task) == "ranking"
    if experiment is None:
        default, choices = task_scores(task_kind(specs[0].task), data.schema.classes)
        if args.primary and args.primary not in choices:
            raise InvalidParameterError(_("--primary {primary!r} is not a score of this task; choose one of "
                                          "{choices}.").format(
                                          primary=args.primary, choices=', '.join(choices)))
        names = ", ".join(dict.fromkeys(spec.strategy for spec in specs))
        experiment = store.create_experiment(
            args.experiment or f"cli: {names} on {args.model} x {args.seeds} seeds ({data_source(specs[0].source).name})",
            settings={"primary": args.primary or default, "aa": args.aa})
    short = TrainConfig.from_dict(specs[0].train).short_training_warning(len(data.train))
    if short:
        print(f"warning: {short}", file=sys.stderr, flush=True)
    specs = [replace(spec, fingerprint=data.fingerprint) for spec in specs]
    epochs = int(specs[0].train.get("epochs", TrainConfig().epochs))

    def progress(i: int, spec: RunSpec):
        return progress_bar(spec.label(), epochs, f"[{i}/{len(specs)}]")

    try:
        if isinstance(executor, LocalExecutor):
            runs = run_in_foreground(store, experiment.id, specs, data=data, on_epoch=progress)
        else:
            runs = run_with_executor(store, experiment.id, specs, executor, on_progress=_progress_line())
    except KeyboardInterrupt as stop:
        what = ("the run in progress is marked failed and the rest cancelled" if isinstance(executor, LocalExecutor)
                else f"the runs still running or queued on {executor.name} are cancelled")
        print(f"\nerror: stopped ({stop or 'SIGINT'}); {what} in the run store (python -m recexp runs --experiment "
              f"{experiment.id}).", file=sys.stderr)
        return 130
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    results = [{"id": run.id, "name": run.name, "status": run.status, "device": run.device,
                "strategy": spec.strategy, "model": spec.model, "seed": spec.seed, "aa": spec.aa, "error": run.error,
                "metrics": finite_or_none(run.metrics)} for run, spec in zip(runs, specs)]
    for result, run, spec in zip(results, runs, specs):
        if spec.tta is not None:                   # the TTA scores under the plain metrics' names, and their cost
            tta = run.info.get("tta", {})
            result["tta"] = finite_or_none(tta.get("metrics", {}))
            result["tta_settings"] = {k: tta.get(k) for k in ("operator", "params", "copies", "forward_passes",
                                                               "seconds")}
    headline = ("hr@10", "ndcg@10", "mrr") if ranking else ("accuracy", "balanced_accuracy", "f1_macro")
    if args.json:
        print_json({"workspace": str(store.home), "experiment": {"id": experiment.id, "name": experiment.name,
                                                                 "settings": experiment.settings},
                    "runs": results, **({"protocol": NEXT_ITEM_PROTOCOL} if ranking else {})})
    else:
        for r in results:
            scores = ", ".join(f"{k}={r['metrics'][k]:.4f}" for k in headline if r["metrics"].get(k) is not None)
            reason = (r["error"] or "").splitlines()[0] if r["error"] else ""
            print(f"{r['id']}  {r['name']:<40} {r['status']:<9} {r['device'] or '-':<18} {scores or reason}")
            if r.get("tta"):
                print(f"{'':10}with TTA ({r['tta_settings']['forward_passes']} forward passes per row): "
                      + ", ".join(f"{k}={r['tta'][k]:.4f}" for k in ("accuracy", "balanced_accuracy", "f1_macro")
                                  if r["tta"].get(k) is not None))
    return 0 if all(r["status"] == "finished" for r in results) else 1


def _progress_line():
    """A progress line on stderr for runs executing elsewhere: how many ended how, and each running run's epoch
    as the store records it; printed when it changes."""
    last = [""]

    def show(runs: list[Run]) -> None:
        count = {status: sum(run.status == status for run in runs) for status in (FINISHED, FAILED, CANCELLED,
                                                                                  RUNNING, QUEUED)}
        line = ngettext("{ended} of {total} run ended ({finished} finished, {failed} failed, {cancelled} cancelled); "
                        "{running} running, {queued} queued",
                        "{ended} of {total} runs ended ({finished} finished, {failed} failed, {cancelled} cancelled); "
                        "{running} running, {queued} queued", len(runs)).format(
            ended=count[FINISHED] + count[FAILED] + count[CANCELLED], total=len(runs), finished=count[FINISHED],
            failed=count[FAILED], cancelled=count[CANCELLED], running=count[RUNNING], queued=count[QUEUED])
        epochs = [_("{name}: epoch {done}/{total}").format(name=run.name, done=run.epochs_done,
                                                            total=run.epochs_total or "?")
                  for run in runs if run.status == RUNNING]
        line = "; ".join([line, *epochs])
        if line != last[0]:
            print(line, file=sys.stderr, flush=True)
            last[0] = line

    return show


def _new_grid(args: argparse.Namespace) -> list[RunSpec]:
    """The specs of a new grid from the command line (validated)."""
    if args.seeds < 1 or args.epochs < 1:
        raise InvalidParameterError(_("--seeds and --epochs must be at least 1."))
    if args.model not in MODELS:
        raise InvalidParameterError(_("Unknown model {model!r}; choose one of {models}.").format(
                                      model=args.model, models=', '.join(MODELS)))
    source = source_for(args)
    task_params, split = task_and_split(args)
    names = args.strategy or ["none"]
    pairs = key_values(args.param, "--param")
    classes = {name: strategy_class(name) for name in names}
    claimed = {key for cls in classes.values() for key in cls.param_names()}
    if set(pairs) - claimed:
        raise InvalidParameterError(_("No chosen strategy has the parameter(s) {unknown}; {parameters}.").format(
            unknown=sorted(set(pairs) - claimed),
            parameters="; ".join(_("{strategy}: {parameters}").format(
                strategy=n, parameters=", ".join(c.param_names()) or _("none")) for n, c in classes.items())))
    strategies = [(name, cls.from_strings({k: v for k, v in pairs.items() if k in cls.param_names()}).get_params())
                  for name, cls in classes.items()]
    model_params = MODELS[args.model].from_strings(key_values(args.model_param, "--model-param")).get_params()
    train = {"epochs": args.epochs, "device": args.device}
    for key in ("batch_size", "learning_rate", "loss", "patience", "train_from"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    tta = {}
    if args.tta is not None:
        operator = tta_operator(args.tta, key_values(args.tta_param, "--tta-param"), strings=True)
        tta = {"tta": args.tta, "tta_copies": check_copies(args.tta_copies), "tta_params": tta_params(operator)}
    elif args.tta_param:
        raise InvalidParameterError(_("--tta-param sets a parameter of the --tta operator: name one with --tta "
                                      "NAME."))
    sampling = sampling_of(args)
    base = RunSpec(source=source.to_dict(), task=args.task, task_params=task_params, split=asdict(split),
                   model=args.model, model_params=model_params, train=train, **tta,
                   sampling=sampling.to_dict() if sampling.active else {}, out_of_core=args.out_of_core)
    return grid_specs(base, strategies, range(args.seeds), aa=args.aa)


def _more_seeds(store, args: argparse.Namespace):
    """The experiment named by --experiment and the specs of its next --add-seeds seeds."""
    if not args.experiment:
        raise InvalidParameterError(_("--add-seeds needs --experiment NAME: the experiment whose arms get more "
                                      "seeds."))
    if args.strategy or args.primary or args.aa or args.tta:
        raise InvalidParameterError(_("--add-seeds repeats the experiment's own arms and primary score: leave "
                                      "out --strategy, --primary, --aa and --tta."))
    matches = [e for e in store.list_experiments() if args.experiment in (e.id, e.name)]
    if not matches:
        raise InvalidParameterError(_("There is no experiment {experiment!r} to add seeds to; see `python -m "
                                      "recexp runs`.").format(experiment=args.experiment))
    return matches[-1], more_seeds(store, matches[-1].id, args.add_seeds)

