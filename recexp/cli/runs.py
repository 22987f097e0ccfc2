"""``python -m recexp runs``: list the experiments and runs of the workspace."""

from __future__ import annotations

import argparse

from recexp.cli.common import open_store, print_json


def run(args: argparse.Namespace) -> int:
    store = open_store()
    runs = store.list_runs(args.experiment, args.status)
    if args.json:
        print_json({"workspace": str(store.home),
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

