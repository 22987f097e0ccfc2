"""``python -m recexp``: everything the dashboard does, from the shell.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares its arguments, ``_cmd_<name>(args)``
runs it and returns the exit code. A :class:`RecexpError` becomes a one-line message on stderr and
exit code 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from recexp.errors import RecexpError


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
    from recexp.data.inspect import inspect_source

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
          + f"; imbalance ratio {balance['imbalance_ratio']:.1f}")
    return 0


COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "inspect": (_add_inspect, _cmd_inspect),
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
    except RecexpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
