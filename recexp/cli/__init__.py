"""``python -m recexp``: everything the dashboard does, from the shell.

:mod:`recexp.cli.parser` declares every command's arguments (argparse only); each command lives in its
own module, ``recexp.cli.<command>``, whose ``run(args)`` returns the exit code, and is imported only
when that command runs: ``runs`` or ``inspect`` do not wait for torch, LightGBM and the charts to load.
A :class:`RecexpError`, and a file-system or SQLite failure nothing below caught, becomes a one-line
message on stderr and exit code 2; never a traceback. Library warnings never reach stderr as they are
(see :func:`main`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
import warnings
from collections.abc import Sequence

from recexp.cli import parser as arguments
from recexp.errors import RecexpError, sentence

#: Command name -> the function that declares its arguments (its code is ``recexp.cli.<name>.run``).
COMMANDS = {
    "inspect": arguments.add_inspect,
    "run": arguments.add_run,
    "runs": arguments.add_runs,
    "strategies": arguments.add_strategies,
    "apply": arguments.add_apply,
    "compare": arguments.add_compare,
    "synth": arguments.add_synth,
    "importance": arguments.add_importance,
    "tune": arguments.add_tune,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="python -m recexp", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS.values():
        add(subparsers)
    return parser


def _warning_sentence(message: Warning | str, category: type[Warning]) -> str | None:
    """The sentence the CLI shows for a warning that reached it from a library, or None to drop it.

    recexp turns what matters for results into notes and report warnings of its own; what still reaches
    here is library noise (deprecations, internal hints), except an optimiser that did not converge.
    """
    if category.__name__ == "ConvergenceWarning":
        detail = " ".join(str(message).split()).split(". ")[0].rstrip(".")
        return (f"an optimiser stopped at its iteration limit before converging ({detail}); the numbers it gave "
                "may be rough.")
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: a sentence for a warning that matters, nothing for the rest."""
    sentence = _warning_sentence(message, category)
    if sentence is not None:
        print(f"warning: {sentence}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    Library warnings do not reach stderr as such: the few that matter are shown as one sentence
    (:func:`_warning_sentence`), the rest are dropped.
    """
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return importlib.import_module(f"recexp.cli.{args.command}").run(args)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RecexpError, OSError, sqlite3.Error) as error:   # OSError: e.g. an output path on a full disk
        print(f"error: {sentence(error)}", file=sys.stderr)
        return 2
