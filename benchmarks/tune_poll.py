"""Tune page: what one poll of the live study costs, reading the study once (a snapshot) against reading it per use.

A study of ``--trials`` finished trials (5 reported epochs each) and two running ones is written to a SQLite
Optuna storage in a temporary workspace, without training (the values are random: only the reading is measured).
One poll is what the page's live fragment computes: the summary, the trial table, Optuna's figures and the best
configurations. Two ways, alternating, ``--repeats`` times:

- **reference**: each of them is handed the study opened from the storage (what the page did before): each reads
  the trials through Optuna's storage cache, the figures several times;
- **snapshot**: the study opened from the storage is copied to memory once (:func:`recexp.tune.snapshot`) and
  every part reads the copy.

Reported: the storage reads of trials per poll (calls of Optuna's remote read), this process's CPU seconds per
poll (robust to other processes on a shared machine) and the wall seconds (where waiting on the database shows,
but so does every other process on the machine), each with the ratio snapshot / reference per repeat.

    python benchmarks/tune_poll.py                 # 300 trials, 7 repeats: about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optuna.storages._cached_storage import _CachedStorage  # noqa: E402

from recexp.charts.tune import study_figures  # noqa: E402
from recexp.spec import RunSpec  # noqa: E402
from recexp.tune import TuneSpec, best_configs, open_study, prepare, snapshot, summary, trials_frame  # noqa: E402


def _poll(study) -> None:
    summary(study)
    trials_frame(study)
    study_figures(study)
    best_configs(study, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='tune-poll-')) / 'optuna.db'}"
    base = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"}, model="logreg",
                   train={"epochs": 5})
    spec, _ = prepare(TuneSpec(base, ("smote",), fixed={"smote.sampling_strategy": "auto"}))
    study = open_study("poll", spec, url)
    rng = random.Random(0)
    for _ in range(args.trials):
        trial = study.ask()
        trial.suggest_int("smote.k_neighbors", 1, 20)
        for epoch in range(1, 6):
            trial.report(rng.random(), epoch)
        study.tell(trial, rng.random())
    for _ in range(2):
        study.ask().suggest_int("smote.k_neighbors", 1, 20)           # running trials

    reads = []
    original = _CachedStorage._read_trials_from_remote_storage

    def counting(self, study_id):
        reads.append(study_id)
        return original(self, study_id)

    _CachedStorage._read_trials_from_remote_storage = counting
    ways = {"reference": lambda: _poll(open_study("poll", url=url)),
            "snapshot": lambda: _poll(snapshot(open_study("poll", url=url)))}
    seconds = {(name, clock): [] for name in ways for clock in ("CPU", "wall")}
    counts = {name: set() for name in ways}
    for repeat in range(args.repeats):
        for name in (list(ways) if repeat % 2 == 0 else list(reversed(ways))):
            reads.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            ways[name]()
            seconds[name, "CPU"].append(time.process_time() - cpu)
            seconds[name, "wall"].append(time.perf_counter() - wall)
            counts[name].add(len(reads))
    print(f"{args.trials} finished + 2 running trials, {args.repeats} repeats (seconds per poll)")
    for name in ways:
        print(f"  {name:<9} reads of the trials per poll: {sorted(counts[name])}")
    for clock in ("CPU", "wall"):
        for name in ways:
            values = seconds[name, clock]
            print(f"  {clock:>4} s {name:<9} median {statistics.median(values):.3f} (min {min(values):.3f}, "
                  f"max {max(values):.3f})")
        ratios = [s / r for s, r in zip(seconds["snapshot", clock], seconds["reference", clock])]
        print(f"  {clock:>4} snapshot / reference: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
