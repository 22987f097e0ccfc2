"""``python -m recexp``: everything the dashboard does, from the shell.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments, ``_cmd_<name>(args)``
runs it and returns the exit code. A :class:`RecexpError`, and a file-system or SQLite failure
nothing below caught, becomes a one-line message on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from recexp.compare import compare, power_sentence, sample_losses
from recexp.data.inspect import inspect_source
from recexp.data.samples import SAMPLES, sample_source
from recexp.data.source import DataSource
from recexp.errors import InvalidDataError, InvalidParameterError, RecexpError, sentence
from recexp.importance import METHODS, cached_values_path, get_method, run_importance
from recexp.jobs import grid_specs, more_seeds, run_in_foreground, strategy_class
from recexp.metrics import default_primary, primary_choices
from recexp.models import MODELS, TrainConfig
from recexp.runs import SQLiteRunStore
from recexp.spec import RunSpec, data_source, prepare_data
from recexp.strategies import STRATEGIES, describe_strategies, get_strategy
from recexp.synthesis import GENERATORS, get_generator
from recexp.synthesis.impute import imputation_report, impute_missing, missing_mask
from recexp.synthesis.report import describe_fit
from recexp.tasks import SplitSpec, build_dataset, get_task, split_dataset, split_methods


def _open_store() -> SQLiteRunStore:
    """The workspace's run store, its runs whose process is gone marked failed first (``fail_orphans``)."""
    store = SQLiteRunStore.open()
    store.fail_orphans()
    return store


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str, allow_nan=False))


def _key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    """Parse repeated ``KEY=VALUE`` arguments into a dict of strings."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecexpError(f"{flag} expects KEY=VALUE, but got {pair!r}. Write it as {flag} name=value.")
        result[key.strip()] = value.strip()
    return result


def _configured(registry: dict, lookup, name: str, pairs: Sequence[str] | None, **fixed: Any):
    """``registry[name]`` built from ``--param KEY=VALUE`` strings (plus ``fixed``) and validated.

    ``lookup(name)`` raises the sentence that lists the registered names when ``name`` is unknown.
    """
    if name not in registry:
        lookup(name)
    instance = registry[name].from_strings(_key_values(pairs, "--param"), **fixed)
    instance.validate_params()
    return instance


# --- commands -------------------------------------------------------------------------------------
# (one _add_/_cmd_ pair per subcommand; register it in COMMANDS at the bottom)


def _add_inspect(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="read a log or table; print its column mapping, validation report and class balance",
        description="Read a behaviour log or feature table (CSV/TSV/Parquet/JSON lines, optionally gzip/zip; "
                    "UTF-8 or GBK) and print the inferred column mapping, the validation report and the class "
                    "balance. Files without a header row have columns c0, c1, ... by position.")
    p.add_argument("file", help="a file, or a folder of same-layout files")
    p.add_argument("--kind", choices=["log", "table"],
                   help="log: one event per row (default); table: features plus a label column")
    p.add_argument("--map", action="append", metavar="ROLE=COLUMN",
                   help="send a role (user, item, category, behavior, timestamp) to a column; repeatable")
    p.add_argument("--label", metavar="COLUMN", help="label column of a table (e.g. c0 without a header row)")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto", help="is the first row a header?")
    p.add_argument("--encoding", help="text encoding (default: detect UTF-8, else GBK/GB18030)")
    p.add_argument("--task", help="learning task whose classes to count (default: behavior for logs, table for tables)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of the task; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_inspect(args: argparse.Namespace) -> int:
    result = inspect_source(
        args.file, kind=args.kind, mapping=_key_values(args.map, "--map") or None, label_column=args.label,
        header={"auto": None, "yes": True, "no": False}[args.header], encoding=args.encoding, task=args.task,
        task_params=_key_values(args.param, "--param"))
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['source']}: {result['rows']:,} rows kept of {result['validation']['rows_read']:,} read "
          f"({result['validation']['read_as']})")
    if "mapping" in result:
        print("mapping: " + ", ".join(f"{role}={column}" for role, column in result["mapping"].items()))
    else:
        print(f"label: {result['label_column']}; {len(result['numeric'])} numeric, "
              f"{len(result['categorical'])} categorical features")
    for reason, count in result["validation"]["dropped"].items():
        print(f"dropped {count:,}: {reason}")
    for warning in result["validation"]["warnings"]:
        print(f"warning: {warning}")
    balance = result["imbalance"]
    print(f"classes ({balance['task']} task): " + ", ".join(f"{k} {v:,}" for k, v in balance["class_counts"].items())
          + (f"; imbalance ratio {balance['imbalance_ratio']:.1f}" if balance["imbalance_ratio"] is not None
             else "; imbalance ratio undefined (fewer than two non-empty classes)"))
    return 0


def _source_for(args: argparse.Namespace):
    """A DataSource for FILE: a path on disk, else the name of a bundled sample."""
    if Path(args.file).exists():
        return DataSource(str(Path(args.file).resolve()), kind=args.kind or "log",
                          mapping=_key_values(args.map, "--map"), label_column=args.label,
                          header={"auto": None, "yes": True, "no": False}[args.header])
    if args.file in SAMPLES:
        return sample_source(args.file)
    raise InvalidDataError(f"There is no file {args.file!r}, and it is not a bundled sample "
                           f"({', '.join(SAMPLES)}). Give a path to a data file or folder.")


def _add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """FILE, how to read it, the task and the split: shared by every command that builds a dataset."""
    p.add_argument("file", help="a data file or folder, or the name of a bundled sample (e.g. taobao)")
    p.add_argument("--kind", choices=["log", "table"], help="log: one event per row (default); table: features + label")
    p.add_argument("--label", metavar="COLUMN", help="label column of a table")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto", help="is the first row a header?")
    p.add_argument("--map", action="append", metavar="ROLE=COLUMN", help="send a log role to a column; repeatable")
    p.add_argument("--task", required=True, help="behavior, purchase or table")
    p.add_argument("--task-param", action="append", metavar="KEY=VALUE", help="task parameter; repeatable")
    p.add_argument("--split-param", action="append", metavar="KEY=VALUE",
                   help="split setting: method=temporal|stratified (default: temporal for a log, stratified for a "
                        "table, which has no event times), test_size, valid_size, group_by_user, seed")


def _task_and_split(args: argparse.Namespace):
    """(task parameters, SplitSpec) from ``--task-param`` / ``--split-param``, both validated."""

    task_params = get_task(args.task).from_strings(_key_values(args.task_param, "--task-param")).get_params()
    split = {"method": split_methods(args.task)[0], **_key_values(args.split_param, "--split-param")}
    return task_params, SplitSpec.from_strings(split)


def _load_and_split(args: argparse.Namespace):
    """(Dataset, Split) of FILE for ``--task``, built as the dashboard builds it."""

    task_params, split_spec = _task_and_split(args)
    dataset = build_dataset(_source_for(args).load(), args.task, split=split_spec, **task_params)
    return dataset, split_dataset(dataset, split_spec)


def _add_run(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="train in the foreground: every strategy x seed on one dataset; print test metrics",
        description="Build the task's dataset, split it, apply each strategy to the training split only, train "
                    "the model with each seed and score it on the untouched test split. Every run is stored in the "
                    "workspace ($RECEXP_HOME, default ./workspace) as one experiment; a progress bar goes to stderr.")
    _add_dataset_arguments(p)
    p.add_argument("--strategy", action="append", metavar="NAME",
                   help="strategy to apply to the training split; repeat to compare several (default: none)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="strategy parameter; with several strategies it goes to each one that has it")
    p.add_argument("--model", default="mlp", help="logreg, mlp, wide_deep, deepfm, dcn_v2 or din (default: mlp)")
    p.add_argument("--model-param", action="append", metavar="KEY=VALUE", help="model parameter; repeatable")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="runs per strategy, with seeds 0..N-1 (default 3, the fewest that give an interval over seeds)")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs at most (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--learning-rate", type=float, metavar="LR")
    p.add_argument("--loss", choices=["cross_entropy", "weighted", "focal"],
                   help="training loss (a strategy that asks for one, e.g. focal_loss, overrides it)")
    p.add_argument("--patience", type=int, metavar="N", help="early-stopping patience in epochs")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cuda, mps or cpu")
    p.add_argument("--experiment", metavar="NAME", help="name of the experiment the runs are grouped in (with "
                   "--add-seeds: the experiment to extend, by id or name)")
    p.add_argument("--primary", metavar="SCORE",
                   help="the score whose verdict counts, declared before training (default: balanced_accuracy for "
                        "several classes, pr_auc[<positive class>] for two)")
    p.add_argument("--aa", action="store_true",
                   help="add an A/A arm: the baseline 'none' again under disjoint seeds; it must come out 'no difference'")
    p.add_argument("--add-seeds", type=int, metavar="N",
                   help="queue N more seeds of every arm of --experiment into it and run them (other grid options "
                        "are taken from the experiment)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every run's id, device and metrics")


def _finite_or_none(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if isinstance(v, float) and v == v and abs(v) != float("inf") else
                None if isinstance(v, float) else v) for k, v in values.items()}


def _progress_bar(label: str, total_epochs: int, position: str):
    """A per-epoch progress line on stderr (redrawn in place on a terminal)."""
    tty = sys.stderr.isatty()

    def show(epoch: int, metrics: dict[str, float]) -> None:
        done = int(20 * epoch / max(total_epochs, 1))
        line = (f"{position} {label} [{'#' * done}{'.' * (20 - done)}] epoch {epoch}/{total_epochs} "
                f"train_loss={metrics.get('train_loss', float('nan')):.4f} "
                f"valid_loss={metrics.get('valid_loss', float('nan')):.4f}")
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def _cmd_run(args: argparse.Namespace) -> int:
    store = SQLiteRunStore.open()
    experiment = None
    if args.add_seeds is not None:
        experiment, specs = _more_seeds(store, args)
    else:
        specs = _new_grid(args)
    print(f"loading the data and building the {specs[0].task} dataset...", file=sys.stderr, flush=True)
    dataset, split_rows = prepare_data(specs[0])
    if experiment is None:
        choices = primary_choices(dataset.schema.classes)
        if args.primary and args.primary not in choices:
            raise InvalidParameterError(f"--primary {args.primary!r} is not a score of this task; choose one of "
                                        f"{', '.join(choices)}.")
        names = ", ".join(dict.fromkeys(spec.strategy for spec in specs))
        experiment = store.create_experiment(
            args.experiment or f"cli: {names} on {args.model} x {args.seeds} seeds ({data_source(specs[0].source).name})",
            settings={"primary": args.primary or default_primary(dataset.schema.classes), "aa": args.aa})
    short = TrainConfig.from_dict(specs[0].train).short_training_warning(len(split_rows.train))
    if short:
        print(f"warning: {short}", file=sys.stderr, flush=True)
    specs = [replace(spec, fingerprint=dataset.fingerprint) for spec in specs]
    epochs = int(specs[0].train.get("epochs", TrainConfig().epochs))

    def progress(i: int, spec: RunSpec):
        return _progress_bar(spec.label(), epochs, f"[{i}/{len(specs)}]")

    try:
        runs = run_in_foreground(store, experiment.id, specs, data=(dataset, split_rows), on_epoch=progress)
    except KeyboardInterrupt as stop:
        print(f"\nerror: stopped ({stop or 'SIGINT'}); the run in progress is marked failed and the rest cancelled "
              f"in the run store (python -m recexp runs --experiment {experiment.id}).", file=sys.stderr)
        return 130
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    results = [{"id": run.id, "name": run.name, "status": run.status, "device": run.device,
                "strategy": spec.strategy, "model": spec.model, "seed": spec.seed, "aa": spec.aa, "error": run.error,
                "metrics": _finite_or_none(run.metrics)} for run, spec in zip(runs, specs)]
    if args.json:
        _print_json({"workspace": str(store.home), "experiment": {"id": experiment.id, "name": experiment.name,
                                                                  "settings": experiment.settings},
                     "runs": results})
    else:
        for r in results:
            scores = ", ".join(f"{k}={r['metrics'][k]:.4f}" for k in ("accuracy", "balanced_accuracy", "f1_macro")
                               if r["metrics"].get(k) is not None)
            print(f"{r['id']}  {r['name']:<40} {r['status']:<9} {r['device'] or '-':<18} {scores or r['error']}")
    return 0 if all(r["status"] == "finished" for r in results) else 1


def _new_grid(args: argparse.Namespace) -> list[RunSpec]:
    """The specs of a new grid from the command line (validated)."""
    if args.seeds < 1 or args.epochs < 1:
        raise InvalidParameterError("--seeds and --epochs must be at least 1.")
    if args.model not in MODELS:
        raise InvalidParameterError(f"Unknown model {args.model!r}; choose one of {', '.join(MODELS)}.")
    source = _source_for(args)
    task_params, split = _task_and_split(args)
    names = args.strategy or ["none"]
    pairs = _key_values(args.param, "--param")
    classes = {name: strategy_class(name) for name in names}
    claimed = {key for cls in classes.values() for key in cls.param_names()}
    if set(pairs) - claimed:
        raise InvalidParameterError(
            f"No chosen strategy has the parameter(s) {sorted(set(pairs) - claimed)}; "
            + "; ".join(f"{n}: {', '.join(c.param_names()) or 'none'}" for n, c in classes.items()) + ".")
    strategies = [(name, cls.from_strings({k: v for k, v in pairs.items() if k in cls.param_names()}).get_params())
                  for name, cls in classes.items()]
    model_params = MODELS[args.model].from_strings(_key_values(args.model_param, "--model-param")).get_params()
    train = {"epochs": args.epochs, "device": args.device}
    for key in ("batch_size", "learning_rate", "loss", "patience"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    base = RunSpec(source=source.to_dict(), task=args.task, task_params=task_params, split=asdict(split),
                   model=args.model, model_params=model_params, train=train)
    return grid_specs(base, strategies, range(args.seeds), aa=args.aa)


def _more_seeds(store, args: argparse.Namespace):
    """The experiment named by --experiment and the specs of its next --add-seeds seeds."""
    if not args.experiment:
        raise InvalidParameterError("--add-seeds needs --experiment NAME: the experiment whose arms get more seeds.")
    if args.strategy or args.primary or args.aa:
        raise InvalidParameterError("--add-seeds repeats the experiment's own arms and primary score: leave out "
                                    "--strategy, --primary and --aa.")
    matches = [e for e in store.list_experiments() if args.experiment in (e.id, e.name)]
    if not matches:
        raise InvalidParameterError(f"There is no experiment {args.experiment!r} to add seeds to; see "
                                    "`python -m recexp runs`.")
    return matches[-1], more_seeds(store, matches[-1].id, args.add_seeds)


def _add_runs(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list the experiments and runs in the workspace's run store",
                              description="List every run in the workspace ($RECEXP_HOME, default ./workspace): "
                                          "status, device, progress and test metrics.")
    p.add_argument("--experiment", metavar="ID", help="only the runs of this experiment")
    p.add_argument("--status", action="append", choices=["queued", "running", "finished", "failed", "cancelled"],
                   help="only runs with this status; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_runs(args: argparse.Namespace) -> int:
    store = _open_store()
    runs = store.list_runs(args.experiment, args.status)
    if args.json:
        _print_json({"workspace": str(store.home),
                     "experiments": [vars(e) for e in store.list_experiments()
                                     if args.experiment in (None, e.id)],
                     "runs": [r.to_dict() for r in runs]})
        return 0
    print(f"{len(runs)} runs in {store.path}")
    for r in runs:
        score = r.metrics.get("balanced_accuracy")
        print(f"{r.id}  {r.experiment_id}  {r.status:<9} {r.name:<40} {r.device or '-':<18} "
              f"epochs {r.epochs_done}/{r.epochs_total or '?'}"
              + (f"  balanced_accuracy={score:.4f}" if score is not None else "")
              + (f"  error: {r.error.splitlines()[0]}" if r.error else ""))
    return 0


def _add_strategies(subparsers) -> None:
    p = subparsers.add_parser(
        "strategies", help="list every strategy with its family and parameter spec",
        description="List the registered strategies (balancing, weighting, sample expansion) with their "
                    "parameters: type, allowed values, default and help.")
    p.add_argument("--json", action="store_true", help="print one JSON list")


def _cmd_strategies(args: argparse.Namespace) -> int:
    listing = describe_strategies()
    if args.json:
        _print_json(listing)
        return 0
    for entry in listing:
        print(f"{entry['name']:28s} {entry['family']:10s} {entry['summary']}")
        for name, spec in entry["params"].items():
            print(f"    {name} = {spec['default']!r}  ({spec['type']}) {spec.get('help', '')}")
    return 0


def _add_apply(subparsers) -> None:
    p = subparsers.add_parser(
        "apply", help="apply one strategy to a dataset's training split; write it as Parquet",
        description="Build the task's dataset, split it, apply the strategy to the training split only and write "
                    "the new training split (with is_synthetic and sample_weight columns) to a Parquet file. "
                    "Prints the class counts before and after.")
    _add_dataset_arguments(p)
    p.add_argument("--strategy", required=True, metavar="NAME", help="a name from `python -m recexp strategies`")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="strategy parameter, e.g. k_neighbors=3 or sampling_strategy=buy:5000,cart:5000; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the strategy (default 0)")
    p.add_argument("--out", required=True, metavar="PATH", help="Parquet file to write the new training split to")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_apply(args: argparse.Namespace) -> int:
    strategy = _configured(STRATEGIES, get_strategy, args.strategy, args.param)
    dataset, split = _load_and_split(args)
    result = strategy.apply(dataset.subset(split.train), seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.dataset.frame.to_parquet(out, index=False)
    report = result.report
    payload = {"file": args.file, "task": args.task, "strategy": args.strategy, "params": strategy.get_params(),
               "seed": args.seed, "out": str(out), "rows_before": report.rows_before, "rows_after": report.rows_after,
               "class_counts_before": report.before, "class_counts_after": report.after, "added": report.added,
               "removed": report.removed, "target": report.target, "seconds": round(report.seconds, 4),
               "loss": result.loss, "notes": report.notes,
               "locked": {"validation": dataset.class_counts(split.valid),
                          "test": dataset.class_counts(split.test)}}
    if args.json:
        _print_json(payload)
        return 0
    print(f"{args.strategy} on the {args.task} training split: {report.rows_before:,} -> {report.rows_after:,} rows "
          f"in {report.seconds:.2f}s; written to {out}")
    width = max(len(c) for c in report.before)
    print(f"{'class':{width}s} {'before':>10s} {'after':>10s} {'added':>10s} {'removed':>10s}")
    for name in report.before:
        print(f"{name:{width}s} {report.before[name]:>10,} {report.after[name]:>10,} {report.added[name]:>10,} "
              f"{report.removed[name]:>10,}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _add_compare(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare finished runs: scores with intervals over seeds, deltas and p-values vs the baseline",
        description="Score the finished runs of an experiment (or the given runs) on their common test split, "
                    "summarise every score over seeds (mean, 95% interval) and pair each strategy with the "
                    "no-strategy baseline seed by seed. The verdict is on the experiment's primary score: a paired "
                    "t-test over per-seed differences (the training seed is the unit), Holm-adjusted across the "
                    "strategies, at least 3 paired seeds; other scores are exploratory (Benjamini-Hochberg).")
    p.add_argument("runs", nargs="*", metavar="RUN_ID", help="runs to compare (instead of --experiment)")
    p.add_argument("--experiment", metavar="NAME", help="experiment id or name (the latest with that name)")
    p.add_argument("--baseline", default="none", help="strategy every other one is paired with (default: none)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="replicates of the row bootstrap of these trained models (0: none; it never decides significance)")
    p.add_argument("--detect", type=float, action="append", metavar="DIFF",
                   help="how many paired seeds would detect this difference of the primary score (80%% power); repeatable")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="score to show (repeatable; default: the headline scores; --json prints every score)")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (opens offline)")
    p.add_argument("--csv", metavar="PATH", help="write the summary (strategy x score) as CSV")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_compare(args: argparse.Namespace) -> int:
    store = _open_store()
    comparison = compare(store, experiment=args.experiment, run_ids=args.runs or None, baseline=args.baseline,
                         n_bootstrap=args.bootstrap)
    unknown = sorted(set(args.metric or []) - set(comparison.summary["metric"]))
    if unknown:
        raise RecexpError(f"Unknown score(s) {unknown}; scores: {', '.join(comparison.summary['metric'].unique())}.")
    metrics = args.metric or comparison.metrics
    if args.csv:
        comparison.to_csv(args.csv)
    if args.html:
        comparison.to_html(args.html, metrics, epoch_metrics=store.epoch_metrics(list(comparison.per_run["run_id"])),
                           sample_losses=sample_losses(store, comparison))
    needed = {str(d): comparison.seeds_needed(d) for d in args.detect or []}
    if args.json:
        payload = comparison.to_dict(args.metric)
        payload["power"]["seeds_needed"] = needed
        _print_json(payload)
        return 0
    print(comparison.title)
    print(f"primary score: {comparison.primary}" + (" (declared before training)" if comparison.primary_declared
                                                    else " (default; none was declared)"))
    for verdict in comparison.verdicts.values():
        print(f"verdict: {verdict}")
    for flag in comparison.flags:
        print(f"RED FLAG: {flag}")
    print(power_sentence(comparison))
    for difference, seeds in needed.items():
        print(f"seeds needed to detect {difference}: {seeds if seeds else 'more than 500 (or the spread is unknown)'}")
    print(comparison.table(metrics).to_string())
    for note in comparison.notes:
        print(f"note: {note}")
    for path in filter(None, (args.csv, args.html)):
        print(f"written: {path}")
    return 0


def _add_synth(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="fit a generator on a dataset's training split; write synthetic rows and a quality report",
        description="Build the task's dataset, split it, fit a generator (gan, vae, gaussian_copula) on the real "
                    "training rows only, generate rows (with the training class mix, or per class with --class) "
                    "and write them as Parquet, plus a JSON quality report against the training split (the "
                    "validation split is the efficacy test set and the privacy baseline).")
    _add_dataset_arguments(p)
    p.add_argument("--method", required=True, metavar="NAME", help="generator: gan, vae or gaussian_copula")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="generator parameter, e.g. epochs=50 or device=cpu; repeatable")
    p.add_argument("--rows", type=int, metavar="N", help="rows to generate with the training class mix")
    p.add_argument("--class", dest="classes", action="append", metavar="NAME:COUNT",
                   help="rows of one class instead of --rows, e.g. --class buy:5000; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random_state of the generator (default 0)")
    p.add_argument("--impute", action="store_true",
                   help="fill missing feature values of the training split by conditional sampling from the "
                        "generator first, and compare that with mean/mode imputation in the report")
    p.add_argument("--detector", choices=["logistic", "gbm"], default="logistic",
                   help="classifier of the detection score (logistic matches SDMetrics' LogisticDetection)")
    p.add_argument("--out", required=True, metavar="PATH", help="Parquet file for the synthetic rows")
    p.add_argument("--report", required=True, metavar="PATH.json", help="JSON file for the quality report")


def _cmd_synth(args: argparse.Namespace) -> int:
    seeded = any(pair.partition("=")[0].strip() == "random_state" for pair in args.param or [])
    generator = _configured(GENERATORS, get_generator, args.method, args.param,
                            **({} if seeded else {"random_state": args.seed}))
    conditions = None
    if args.classes:
        conditions = {}
        for item in args.classes:
            name, sep, count = item.rpartition(":")
            if not sep or not name or not count.strip().isdigit():
                raise InvalidParameterError(f"--class expects NAME:COUNT, but got {item!r}. Write it as --class buy:5000.")
            conditions[name] = int(count)
    if conditions is None and (args.rows is None or args.rows < 0):
        raise InvalidParameterError("Say how many rows to generate: --rows N (training class mix) or --class NAME:COUNT.")
    dataset, split = _load_and_split(args)
    train, valid = dataset.subset(split.train), dataset.subset(split.valid)

    def progress(epoch: int, metrics: dict[str, float]) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "seconds" and v == v)
        print(f"{args.method} epoch {epoch}: {shown}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    generator.fit(train.frame, train.schema, progress=progress)
    fitted = time.perf_counter() - started
    real, imputation = train.frame, None
    if args.impute:
        cells = int(missing_mask(real, train.schema).to_numpy().sum())
        imputation = {**imputation_report(real, train.schema, generator, random_state=args.seed), "filled_cells": cells}
        real = impute_missing(real, train.schema, generator)
    rows = generator.sample(args.rows if conditions is None else None, conditions)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out, index=False)
    fit = describe_fit(generator, real, rows, train.schema, real_test=valid.frame, imputation=imputation,
                       fit_seconds=fitted, detector=args.detector, random_state=args.seed)
    payload = {
        "file": args.file, "task": args.task, "method": args.method, "classes": list(train.schema.classes),
        "training_rows": len(train), "rows": len(rows),
        "class_counts": {name: int((rows["label"] == code).sum()) for code, name in enumerate(train.schema.classes)},
        "out": str(out), **fit.to_dict(),
    }
    report_path = Path(args.report)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=False))
    report, overall = fit.quality, fit.quality.overall
    print(f"{args.method}: {len(rows):,} rows written to {out} (fit {fitted:.1f}s on {len(train):,} training rows); "
          f"report in {report_path}")
    print(f"quality {report.score:.3f} | detection AUC {overall.detection['auc']:.3f} | "
          f"DCR ratio {overall.privacy['dcr_ratio']:.3f} | exact copies {overall.privacy['exact_copies']}")
    return 0


def _add_importance(subparsers) -> None:
    p = subparsers.add_parser(
        "importance", help="value every training row of a finished run with one method; write the values as Parquet",
        description="Open a finished run of the workspace ($RECEXP_HOME), value each of its training rows with "
                    "one sample-importance method (higher = more valuable) and print the summary per class and "
                    "for real vs synthetic rows. Values are cached among the run's artifacts; the per-row values "
                    "go to --out, or stay in the cache file, whose path is printed.")
    p.add_argument("run_id", metavar="RUN_ID", help="a finished run (see `python -m recexp runs`)")
    p.add_argument("--method", required=True, metavar="NAME",
                   help="mean_loss, forgetting, el2n, grand, tracin, knn_shapley, data_oob, ...")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter, e.g. k=5; repeatable")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the method's random choices (default 0)")
    p.add_argument("--out", metavar="PATH.parquet", help="write the per-row values here as well")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_importance(args: argparse.Namespace) -> int:
    method = _configured(METHODS, get_method, args.method, args.param)
    store = _open_store()
    shown = [-1]

    def progress(fraction: float, message: str) -> None:
        if int(10 * fraction) > shown[0]:                 # a line per tenth, not per tree or block
            shown[0] = int(10 * fraction)
            print(f"{args.method} {fraction:4.0%} {message}", file=sys.stderr, flush=True)

    result = run_importance(store, args.run_id, method, seed=args.seed, progress=progress)
    out = cached_values_path(store, args.run_id, method, args.seed)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.values.to_parquet(out, index=False)
    if args.json:
        _print_json({**result.to_dict(), "out": str(out)})
        return 0
    print(f"{result.method} on run {result.run_id}: {len(result.values):,} rows valued in {result.seconds:.2f}s; "
          f"values in {out}")
    print(result.summary().to_string(index=False))
    for note in result.notes:
        print(f"note: {note}")
    return 0


COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "inspect": (_add_inspect, _cmd_inspect),
    "run": (_add_run, _cmd_run),
    "runs": (_add_runs, _cmd_runs),
    "strategies": (_add_strategies, _cmd_strategies),
    "apply": (_add_apply, _cmd_apply),
    "compare": (_add_compare, _cmd_compare),
    "synth": (_add_synth, _cmd_synth),
    "importance": (_add_importance, _cmd_importance),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="python -m recexp", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RecexpError, OSError, sqlite3.Error) as error:   # OSError: e.g. an output path on a full disk
        print(f"error: {sentence(error)}", file=sys.stderr)
        return 2
