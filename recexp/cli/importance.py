"""``python -m recexp importance``: per-row importance values of a finished run."""

from __future__ import annotations

import argparse
import sys

from recexp.cli.common import configured, open_store, output_file, print_json, writing
from recexp.importance import METHODS, cached_values_path, get_method, run_importance


def run(args: argparse.Namespace) -> int:
    method = configured(METHODS, get_method, args.method, args.param)
    store = open_store()
    shown = [-1]

    def progress(fraction: float, message: str) -> None:
        if int(10 * fraction) > shown[0]:                 # a line per tenth, not per tree or block
            shown[0] = int(10 * fraction)
            print(f"{args.method} {fraction:4.0%} {message}", file=sys.stderr, flush=True)

    requested = output_file(args.out, "--out") if args.out else None      # before the work
    result = run_importance(store, args.run_id, method, seed=args.seed, progress=progress)
    out = cached_values_path(store, args.run_id, method, args.seed)
    if requested is not None:
        out = requested
        with writing(out, "--out"):
            result.values.to_parquet(out, index=False)
    if args.json:
        print_json({**result.to_dict(), "out": str(out)})
        return 0
    print(f"{result.method} on run {result.run_id}: {len(result.values):,} rows valued in {result.seconds:.2f}s; "
          f"values in {out}")
    print(result.summary().rename(columns={"share_harmful": result.harmful.label}).to_string(index=False))
    print(f"{result.harmful.label}: {result.harmful.meaning}")
    for note in result.notes:
        print(f"note: {note}")
    return 0

