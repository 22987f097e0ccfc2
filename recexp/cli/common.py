"""What several commands share: reading KEY=VALUE options, naming the data, opening the store, printing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recexp.data.samples import SAMPLES, sample_source
from recexp.data.source import DataSource
from recexp.errors import InvalidDataError, InvalidParameterError, RecexpError, os_error_sentence
from recexp.i18n import _
from recexp.outofcore import DiskDataset, Sampling, build_on_disk, choose_path, down_sample, sample_log, throttled
from recexp.runs import SQLiteRunStore
from recexp.tasks import SplitSpec, build_dataset, get_task, split_dataset, split_methods

def output_file(value: str, option: str) -> Path:
    """The file an option names for writing, its folder made now, before any work: a path that cannot be
    written fails at once, in a sentence naming the option and the path."""
    out = Path(value)
    if out.parent.exists() and not out.parent.is_dir():
        raise InvalidParameterError(_("{option}: {parent} is a file, "
                                      "not a folder. Give a path inside a folder.").format(option=option, parent=out.parent))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidParameterError(_("{option}: {error}").format(
                                      option=option, error=os_error_sentence(error, 'create', out.parent))) from None
    return out


@contextmanager
def writing(out: Path, option: str):
    """Turn a failed write of ``out`` into a sentence naming the option and the path (pyarrow's errors
    name neither)."""
    try:
        yield out
    except OSError as error:
        raise InvalidParameterError(_("{option}: {error}").format(
                                      option=option, error=os_error_sentence(error, 'write', out))) from None


def open_store() -> SQLiteRunStore:
    """The workspace's run store, its runs whose process is gone marked failed first (``fail_orphans``)."""
    store = SQLiteRunStore.open()
    store.fail_orphans()
    return store


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str, allow_nan=False))


def key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, str]:
    """Parse repeated ``KEY=VALUE`` arguments into a dict of strings."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RecexpError(_("{flag} expects KEY=VALUE, but got {pair!r}. Write "
                                "it as {flag} name=value.").format(flag=flag, pair=pair))
        result[key.strip()] = value.strip()
    return result


def configured(registry: dict, lookup, name: str, pairs: Sequence[str] | None, **fixed: Any):
    """``registry[name]`` built from ``--param KEY=VALUE`` strings (plus ``fixed``) and validated.

    ``lookup(name)`` raises the sentence that lists the registered names when ``name`` is unknown.
    """
    if name not in registry:
        lookup(name)
    instance = registry[name].from_strings(key_values(pairs, "--param"), **fixed)
    instance.validate_params()
    return instance


def source_for(args: argparse.Namespace):
    """A DataSource for FILE: a path on disk, else the name of a bundled sample."""
    if Path(args.file).exists():
        return DataSource(str(Path(args.file).resolve()), kind=args.kind or "log",
                          mapping=key_values(args.map, "--map"), label_column=args.label,
                          header={"auto": None, "yes": True, "no": False}[args.header])
    if args.file in SAMPLES:
        return sample_source(args.file)
    raise InvalidDataError(_("There is no file {file!r}, and it is not a bundled sample ({samples}). Give a path "
                             "to a data file or folder.").format(
                             file=args.file, samples=', '.join(SAMPLES)))


def task_and_split(args: argparse.Namespace):
    """(task parameters, SplitSpec) from ``--task-param`` / ``--split-param``, both validated."""

    task_params = get_task(args.task).from_strings(key_values(args.task_param, "--task-param")).get_params()
    split = {"method": split_methods(args.task)[0], **key_values(args.split_param, "--split-param")}
    return task_params, SplitSpec.from_strings(split)


def sampling_of(args: argparse.Namespace) -> Sampling:
    """The build-time sampling ``--sample-users`` (a percentage) and ``--negative-rate`` ask for, validated."""
    users = getattr(args, "sample_users", None)
    rate = getattr(args, "negative_rate", None)
    if users is not None and not 0 < users <= 100:
        raise InvalidParameterError(_("--sample-users must be a percentage in (0, 100], but got {value}. Give e.g. "
                                      "10 to keep a tenth of the users.").format(value=users))
    sampling = Sampling(users=1.0 if users is None else users / 100, negative_rate=1.0 if rate is None else rate)
    sampling.validate()
    return sampling


def load_and_split(args: argparse.Namespace):
    """(Dataset, Split) of FILE for ``--task``, built as the dashboard builds it (with the build-time sampling
    the command's options ask for)."""

    task_params, split_spec = task_and_split(args)
    sampling = sampling_of(args)
    source = source_for(args).load()
    if sampling.users < 1:
        source = sample_log(source, sampling.users)
    dataset = build_dataset(source, args.task, split=split_spec, **task_params)
    return down_sample(dataset, split_dataset(dataset, split_spec), sampling.negative_rate)


def build_large(args: argparse.Namespace, progress=None) -> DiskDataset | None:
    """FILE's dataset built out of core when ``--out-of-core`` says so (``auto``: when the in-memory build would
    pass the memory limit); ``None`` when the in-memory path builds it."""
    choice = getattr(args, "out_of_core", "no")
    path = Path(args.file)
    if choice == "no" or not path.is_file() or (args.kind or "log") != "log":
        if choice == "yes":
            raise InvalidParameterError(_("--out-of-core yes needs a behaviour log file on disk, but {file!r} is not "
                                          "one.").format(file=args.file))
        return None
    if choice == "auto" and not choose_path(path, args.task).on_disk:
        return None
    task_params, split_spec = task_and_split(args)
    return build_on_disk(path, args.task, split_spec, sampling=sampling_of(args),
                         header={"auto": None, "yes": True, "no": False}[args.header],
                         mapping=key_values(args.map, "--map") or None, progress=progress, **task_params)


def build_progress():
    """A progress line on stderr for an out-of-core build: phase, rows, share done and peak memory."""
    return throttled(lambda line: print(line, file=sys.stderr, flush=True))


def finite_or_none(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if isinstance(v, float) and v == v and abs(v) != float("inf") else
                None if isinstance(v, float) else v) for k, v in values.items()}


def progress_bar(label: str, total_epochs: int, position: str):
    """A per-epoch progress line on stderr (redrawn in place on a terminal)."""
    tty = sys.stderr.isatty()

    def show(epoch: int, metrics: dict[str, float]) -> None:
        done = int(20 * epoch / max(total_epochs, 1))
        line = (f"{position} {label} [{'#' * done}{'.' * (20 - done)}] epoch {epoch}/{total_epochs} "
                f"train_loss={metrics.get('train_loss', float('nan')):.4f} "
                f"valid_loss={metrics.get('valid_loss', float('nan')):.4f}")
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show

