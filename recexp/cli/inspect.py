"""``python -m recexp inspect``: a log or table's column mapping, validation report and class balance.

A log file too large to load (its task's in-memory build would pass the memory setting) is not loaded:
its first lines give the mapping and validation, and the classes are counted on the task's dataset built
out of core, with the progress line of ``apply`` (:func:`recexp.data.inspect.inspect_large`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recexp.cli.common import build_progress, key_values, print_json
from recexp.data.inspect import inspect_large, inspect_source
from recexp.i18n import _, format_integer
from recexp.outofcore import choose_path


def run(args: argparse.Namespace) -> int:
    mapping = key_values(args.map, "--map") or None
    header = {"auto": None, "yes": True, "no": False}[args.header]
    task_params = key_values(args.param, "--param")
    path = Path(args.file)
    large = path.is_file() and (args.kind or "log") == "log" and choose_path(path, args.task or "behavior")
    if large and large.on_disk:
        print(_("{file}: {reason}.").format(file=args.file, reason=large.reason), file=sys.stderr, flush=True)
        result = inspect_large(args.file, mapping=mapping, header=header, task=args.task, task_params=task_params,
                               progress=build_progress())
    else:
        result = inspect_source(args.file, kind=args.kind, mapping=mapping, label_column=args.label, header=header,
                                encoding=args.encoding, task=args.task, task_params=task_params)
    if args.json:
        print_json(result)
        return 0
    if "out_of_core" in result:
        print(_("{source}: {rows} rows in the {task} dataset built out of core in {folder}; mapping and validation "
                "from the first {head} rows ({read_as})").format(
            source=result["source"], rows=format_integer(result["rows"]), task=result["imbalance"]["task"],
            folder=result["out_of_core"]["folder"], head=format_integer(result["validation"]["rows_read"]),
            read_as=result["validation"]["read_as"]))
    else:
        print(f"{result['source']}: {result['rows']:,} rows kept of {result['validation']['rows_read']:,} read "
              f"({result['validation']['read_as']})")
    if "mapping" in result:
        print("mapping: " + ", ".join(f"{role}={column} ({result['confidence'][role]:.0%} sure)"
                                      for role, column in result["mapping"].items()))
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

