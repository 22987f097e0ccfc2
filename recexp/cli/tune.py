"""``python -m recexp tune``: search strategies' parameters with Optuna on the validation split."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import asdict
from typing import Any

from recexp.cli.common import key_values, print_json, source_for, task_and_split
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.models import MODELS
from recexp.spec import RunSpec
from recexp.tune import TuneSpec, run_study, run_workers, storage_url, summary


def _value(text: str) -> Any:
    """A value from the command line: JSON where it parses (numbers, true, null), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _ranges(pairs: dict[str, str]) -> dict[str, tuple[float, float]]:
    ranges = {}
    for name, text in pairs.items():
        low, sep, high = text.partition(":")
        try:
            ranges[name] = (_value(low), _value(high)) if sep else ()
            float(low), float(high)
        except ValueError:
            ranges[name] = ()
        if len(ranges[name]) != 2:
            raise InvalidParameterError(_("--range expects NAME=LOW:HIGH with two numbers, but got "
                                          "{name}={text}. Write it as e.g. --range "
                                          "smote.k_neighbors=2:8.").format(name=name, text=text))
    return ranges


def spec_from_args(args: argparse.Namespace) -> TuneSpec:
    """The study's settings from the command line."""
    if args.model not in MODELS:
        raise InvalidParameterError(_("Unknown model {model!r}; choose one of {models}.").format(
                                      model=args.model, models=', '.join(MODELS)))
    task_params, split = task_and_split(args)
    train = {"epochs": args.epochs, "device": args.device}
    for key in ("batch_size", "learning_rate"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    model_params = MODELS[args.model].from_strings(key_values(args.model_param, "--model-param")).get_params()
    base = RunSpec(source=source_for(args).to_dict(), task=args.task, task_params=task_params, split=asdict(split),
                   model=args.model, model_params=model_params, train=train, seed=args.seed)
    return TuneSpec(base, tuple(args.strategy), primary=args.primary or "", search_model=args.search_model,
                    search_train=tuple(dict.fromkeys(args.search_train or ())),
                    fixed={k: _value(v) for k, v in key_values(args.fix, "--fix").items()},
                    ranges=_ranges(key_values(args.range, "--range")),
                    choices={k: [_value(c) for c in v.split(",")] for k, v in key_values(args.choices, "--choices").items()},
                    sampler=args.sampler, sampler_seed=args.sampler_seed, pruner=args.pruner)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    name = args.study or f"tune-{'-'.join(spec.strategies)}-{time.strftime('%Y%m%d-%H%M%S')}"
    url = storage_url()
    print(f"study {name}: {args.trials} trial(s) on the validation split...", file=sys.stderr, flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, stop)       # SIGTERM stops the study as Ctrl-C does
    try:
        if args.workers > 1:
            study = run_workers(spec, name, args.trials, args.workers, minutes=args.minutes, url=url)
        else:
            study = run_study(spec, name, args.trials, minutes=args.minutes, url=url)
    except KeyboardInterrupt as interrupt:
        print(f"\nerror: stopped ({interrupt or 'SIGINT'}); the running trials are marked failed and the finished ones "
              f"kept: run the same command with --study {name} to continue it.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    result = summary(study, url)
    if args.json:
        print_json(result)
    else:
        print(f"study {result['study']} ({result['storage']}), {result['primary']} on the validation split, "
              f"{len(result['trials'])} trials: " + ", ".join(f"{n} {s}" for s, n in result["counts"].items() if n))
        for trial in result["trials"]:
            value = "-" if trial["value"] is None else f"{trial['value']:.4f}"
            print(f"  #{trial['number']:<4} {trial['state']:<9} {value:>8}  {trial['params']}"
                  + (f"  ({trial['error']})" if trial["error"] else ""))
        if result["best_params"] is not None:
            print(f"best: {result['best_value']:.4f} with {result['best_config']}")
    return 0 if result["best_params"] is not None else 1
