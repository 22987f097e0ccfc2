"""``python -m recexp.tune STUDY --storage URL --trials N``: one worker process of a study (see :func:`launch`).

Started as a command of a :class:`recexp.jobs.JobRunner` by :func:`recexp.tune.launch`; runs its share
of trials of an existing study with the study's stored settings, beside other workers sharing the same
storage. SIGTERM (the runner's cancel) stops it like Ctrl-C: its running trial is failed with
:data:`recexp.tune.STOPPED` (see :class:`recexp.tune.study.WorkerStop`). Exit code 0 when its trials ran (failed trials included: they are recorded
in the study), 1 when the study could not be used, 130 when it was stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from recexp.errors import RecexpError
from recexp.process import exit_process
from recexp.tune.study import WORKER_STOP, work


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run this worker's trials."""
    parser = argparse.ArgumentParser(prog="python -m recexp.tune", description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--storage", required=True, help="the study's Optuna storage URL")
    parser.add_argument("--trials", type=int, required=True, help="trials this worker runs")
    parser.add_argument("--worker", type=int, default=0, help="this worker's number (offsets the sampler seed)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--until", type=float, default=None, help="start no trial after this Unix time")
    parser.add_argument("--home", default=None, help="workspace folder (default: $RECEXP_HOME or ./workspace)")
    args = parser.parse_args(argv)
    if args.home:
        os.environ["RECEXP_HOME"] = args.home
    signal.signal(signal.SIGTERM, WORKER_STOP.arrived)
    signal.signal(signal.SIGINT, WORKER_STOP.arrived)
    print(f"tune worker {os.getpid()}: {args.trials} trial(s) of study {args.study}", flush=True)
    try:
        study = work(args.study, args.trials, args.storage, worker=args.worker, until=args.until,
                     threads=args.threads)
    except RecexpError as error:
        print(f"tune worker stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        print(f"tune worker {os.getpid()}: stopped ({stop or 'SIGINT'})", file=sys.stderr, flush=True)
        return 130
    print(f"tune worker {os.getpid()}: done; the study has {len(study.trials)} trial(s)", flush=True)
    return 0


if __name__ == "__main__":
    exit_process(main())
