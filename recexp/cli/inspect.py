"""``python -m recexp inspect``: a log or table's column mapping, validation report and class balance."""

from __future__ import annotations

import argparse

from recexp.cli.common import key_values, print_json
from recexp.data.inspect import inspect_source


def run(args: argparse.Namespace) -> int:
    result = inspect_source(
        args.file, kind=args.kind, mapping=key_values(args.map, "--map") or None, label_column=args.label,
        header={"auto": None, "yes": True, "no": False}[args.header], encoding=args.encoding, task=args.task,
        task_params=key_values(args.param, "--param"))
    if args.json:
        print_json(result)
        return 0
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

