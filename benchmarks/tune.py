"""Tune: TPE against random search at the same budget, and the trial time pruning saves.

On a bundled imbalanced task (yeast_me2, 28:1, stratified split) every study searches the same space:
four strategies (SMOTE, random under-sampling, class weights, focal loss) with their parameters from
the specs plus the learning rate, for a logistic regression, scored by the task's primary score
(PR-AUC of the minority class) on the validation split.

1. **Sampler**: ``--trials`` trials with Optuna's TPE sampler against ``--trials`` trials with its
   RandomSampler, no pruning, for each of ``--repeats`` sampler seeds. Reported: the best validation
   score each found (mean, spread over seeds, per-seed wins).
2. **Pruning**: the same TPE study (same seeds) with the median pruner against none. Reported: the CPU
   seconds of the whole study (this process's CPU time: robust to other processes on a shared machine,
   unlike wall time), the epochs trained over all trials, their ratios pruned / unpruned, and the best
   score of each.

Every study runs in this process, one after the other for each seed (the order of the arms alternates),
on one torch thread.

    python benchmarks/tune.py                          # 5 seeds x 12 trials, 10 epochs: about 4 minutes on 2 cores
    python benchmarks/tune.py --repeats 3 --trials 8   # quicker

Goal (issue 18): pruning saves >= 30% of trial time at an equal best score.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
import torch  # noqa: E402

from recexp.spec import RunSpec  # noqa: E402
from recexp.tune import TuneSpec, objective, open_study, prepare  # noqa: E402

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"learning_rate": 0.05, "batch_size": 128, "device": "cpu"})
STRATEGIES = ("smote", "random_under", "class_weights", "focal_loss")


def study_run(spec: TuneSpec, data, name: str, url: str, trials: int) -> tuple[float, float, int, dict[str, int]]:
    """(best value, CPU seconds, epochs trained, trials per state) of one study of ``trials`` trials."""
    study = open_study(name, spec, url)
    cpu = time.process_time()
    study.optimize(objective(spec, data), n_trials=trials, catch=(Exception,), gc_after_trial=False)
    seconds = time.process_time() - cpu
    epochs = sum(t.last_step or 0 for t in study.trials)
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    done = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value == t.value]
    return (max(done) if done else float("nan")), seconds, epochs, states


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {sd:.4f} (min {min(values):.4f}, max {max(values):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = replace(BASE, train={**BASE.train, "epochs": args.epochs, "patience": args.epochs})
    common = dict(search_train=("learning_rate",), ranges={"train.learning_rate": (1e-3, 0.3)})
    tpe = TuneSpec(base, STRATEGIES, sampler="tpe", pruner="none", **common)
    tpe, data = prepare(tpe)
    folder = tempfile.mkdtemp(prefix="recexp-tune-bench-")
    url = f"sqlite:///{folder}/bench.db"
    print(f"yeast_me2: {len(data.train)} training / {len(data.valid)} validation rows; primary {tpe.primary}; "
          f"{args.trials} trials x {args.repeats} seeds; {args.epochs} epochs per trial; 1 torch thread")
    results = {"tpe": [], "random": [], "pruned": []}
    started = time.perf_counter()
    for seed in range(args.repeats):
        arms = {"tpe": replace(tpe, sampler_seed=seed),
                "random": replace(tpe, sampler="random", sampler_seed=seed),
                "pruned": replace(tpe, pruner="median", sampler_seed=seed)}
        order = list(arms) if seed % 2 == 0 else list(reversed(arms))
        for arm in order:
            best, seconds, epochs, states = study_run(arms[arm], data, f"{arm}-{seed}", url, args.trials)
            results[arm].append((best, seconds, epochs, states))
            print(f"seed {seed} {arm:<7} best {best:.4f}  CPU {seconds:6.1f} s  {epochs:4d} epochs  {states}", flush=True)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")

    best = {arm: [r[0] for r in rows] for arm, rows in results.items()}
    seconds = {arm: [r[1] for r in rows] for arm, rows in results.items()}
    wins = sum(t > r for t, r in zip(best["tpe"], best["random"]))
    ties = sum(t == r for t, r in zip(best["tpe"], best["random"]))
    print(f"\n1. best validation {tpe.primary} after {args.trials} trials (mean ± sd over {args.repeats} seeds)")
    print(f"   TPE            {spread(best['tpe'])}")
    print(f"   RandomSampler  {spread(best['random'])}")
    print(f"   TPE - random: {statistics.fmean(best['tpe']) - statistics.fmean(best['random']):+.4f}; "
          f"TPE better on {wins}/{args.repeats} seeds, tied on {ties}")
    epochs = {arm: [r[2] for r in rows] for arm, rows in results.items()}
    ratios = [p / u for p, u in zip(seconds["pruned"], seconds["tpe"])]
    epoch_ratios = [p / u for p, u in zip(epochs["pruned"], epochs["tpe"])]
    pruned_trials = [r[3].get("pruned", 0) for r in results["pruned"]]
    print("\n2. median pruner vs none (TPE, same seeds)")
    print(f"   CPU seconds, no pruning    {spread(seconds['tpe'])}")
    print(f"   CPU seconds, pruning       {spread(seconds['pruned'])}  ({statistics.fmean(pruned_trials):.1f} trials "
          f"pruned per study)")
    print(f"   CPU ratio pruned/unpruned  {spread(ratios)}  -> {100 * (1 - statistics.fmean(ratios)):.0f}% less CPU time")
    print(f"   epochs ratio               {spread(epoch_ratios)}  -> {100 * (1 - statistics.fmean(epoch_ratios)):.0f}% "
          "fewer epochs trained")
    print(f"   best, no pruning           {spread(best['tpe'])}")
    print(f"   best, pruning              {spread(best['pruned'])}")
    print(f"   best pruned - unpruned: {statistics.fmean(best['pruned']) - statistics.fmean(best['tpe']):+.4f}")


if __name__ == "__main__":
    main()
