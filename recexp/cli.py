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


COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {}


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
