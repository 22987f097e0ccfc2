"""``python -m recexp.worker RUN_ID``: execute one queued run of the workspace's run store.

Started by :class:`recexp.jobs.JobRunner` in its own process (and session); reads the run's spec from
the store (``$RECEXP_HOME``), so what it does is exactly what was stored. Exit code 0 when the run
finished, 1 when it failed (the store has the reason; stderr, i.e. the worker log, where the store
could not be used), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from recexp.errors import RecexpError
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
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    try:
        store = SQLiteRunStore.open(args.home)
        run = store.get_run(args.run_id)
        if run.status != RUNNING:
            print(f"run {run.id} is {run.status}, not running; nothing to do", file=sys.stderr)
            return 0 if run.status != "queued" else 2
        store.update(run.id, pid=os.getpid())
    except RecexpError as error:                  # e.g. a damaged store or a full disk: the runner reports the exit
        print(f"run {args.run_id} not started: {error}", file=sys.stderr)
        return 1
    print(f"worker {os.getpid()} executing run {run.id}: {run.name}", flush=True)
    try:
        metrics = execute(RunSpec.from_dict(run.spec), store, run.id,
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
