"""``python -m recexp strategies``: every strategy and its parameter spec."""

from __future__ import annotations

import argparse

from recexp.cli.common import print_json
from recexp.strategies import describe_strategies


def run(args: argparse.Namespace) -> int:
    listing = describe_strategies()
    if args.json:
        print_json(listing)
        return 0
    for entry in listing:
        print(f"{entry['name']:28s} {entry['family']:10s} {entry['summary']}")
        for name, spec in entry["params"].items():
            print(f"    {name} = {spec['default']!r}  ({spec['type']}) {spec.get('help', '')}")
    return 0

