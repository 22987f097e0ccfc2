"""``python -m recexp.worker RUN_ID``: execute one queued run of the workspace's run store.

Started by :class:`recexp.jobs.JobRunner` in its own process (and session); reads the run's spec from
the store (``$RECEXP_HOME``), so what it does is exactly what was stored. On a Ray node (``--relay``) it
reads the spec from the run's artifacts instead and prints its store writes (see :mod:`recexp.executors`);
``--data`` points it at the node's copy of the run's data. Exit code 0 when the run
finished, 1 when it failed (the store has the reason; stderr, i.e. the worker log, where the store
could not be used), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys

import torch

from recexp.data.source import workspace
from recexp.errors import RecexpError
from recexp.executors import SPEC_FILE, RelayStore
from recexp.jobs import execute
from recexp.process import exit_process
from recexp.runs import RUNNING, SQLiteRunStore
from recexp.spec import RunSpec


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, limit torch's threads, execute the run."""
    parser = argparse.ArgumentParser(prog="python -m recexp.worker", description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--home", default=None, help="workspace folder (default: $RECEXP_HOME or ./workspace)")
    parser.add_argument("--relay", action="store_true",
                        help="on a Ray node: read the spec from the run's artifacts and print every run-store write "
                             "for the job runner to apply (see recexp.executors)")
    parser.add_argument("--data", default=None,
                        help="with --relay: read the run's data from this file or folder (its copy on this node) "
                             "instead of the spec's path")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    try:
        if args.relay:
            store = RelayStore(Path(args.home).resolve() if args.home else workspace())
            spec = json.loads((store.artifact_dir(args.run_id) / SPEC_FILE).read_text())
            if args.data:
                spec["source"] = {**spec["source"], "path": str(args.data)}
        else:
            store = SQLiteRunStore.open(args.home)
            run = store.get_run(args.run_id)
            if run.status != RUNNING:
                print(f"run {run.id} is {run.status}, not running; nothing to do", file=sys.stderr)
                return 0 if run.status != "queued" else 2
            store.update(run.id, pid=os.getpid())
            spec = run.spec
    except (RecexpError, OSError, ValueError) as error:   # a damaged store, a full disk: the runner reports the exit
        print(f"run {args.run_id} not started: {error}", file=sys.stderr)
        return 1
    print(f"worker {os.getpid()} executing run {args.run_id} in the workspace {store.home}"
          + (f", reading its data from {args.data}" if args.data else ""), flush=True)
    try:
        metrics = execute(RunSpec.from_dict(spec), store, args.run_id,
                          on_epoch=lambda epoch, m: print(f"epoch {epoch}: " + ", ".join(
                              f"{k}={v:.4g}" for k, v in m.items()), flush=True))
    except RecexpError as error:
        print(f"run failed: {error}", file=sys.stderr)
        return 1
    except Exception:
        import traceback

        traceback.print_exc()
        return 1
    print("test metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
    return 0


if __name__ == "__main__":
    exit_process(main())
