"""Tune: search a strategy's parameters (and the model's) with Optuna, on the validation split only.

The search space comes from the parameter specs (:mod:`recexp.tune.space`); a study scores each trial
on the validation split, prunes hopeless trials from their per-epoch validation score, and lives in an
Optuna RDB storage so it can be continued and shared (:mod:`recexp.tune.study`). The best
configurations then go to an ordinary experiment, trained with seeds and compared on the test split.

>>> from recexp.spec import RunSpec
>>> from recexp.tune import TuneSpec, run_study, summary                     # doctest: +SKIP
>>> base = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified"},
...                model="logreg", train={"epochs": 3})                     # doctest: +SKIP
>>> study = run_study(TuneSpec(base, ("smote",)), "smote-yeast", n_trials=10)   # doctest: +SKIP
>>> summary(study)["best_params"]                                            # doctest: +SKIP
"""

from recexp.tune.space import STRATEGY, TRAIN_SPACE, Dimension, SearchSpace, TrialConfig, narrowing, space_table
from recexp.tune.study import (
    PRUNERS, SAMPLERS, STOPPED, STORAGE_ENV, TRIAL_COLUMNS, TRIAL_STATES, TrialData, TuneSpec, best_configs,
    best_trials, cancel, check_feasible, fail_trials_of, launch, objective, open_study, prepare, primary_scorer, resolve_primary,
    run_study, run_workers, score_config, shown_url, snapshot, storage_url, study_names, study_spec, summary,
    trial_rows, trials_frame, validation_data, work, worker_group,
)

__all__ = ["STRATEGY", "TRAIN_SPACE", "Dimension", "SearchSpace", "TrialConfig", "narrowing", "space_table", "PRUNERS",
           "SAMPLERS", "STOPPED", "STORAGE_ENV", "TRIAL_COLUMNS", "TRIAL_STATES", "TrialData", "TuneSpec",
           "best_configs", "best_trials", "cancel", "check_feasible", "fail_trials_of", "launch", "objective", "open_study", "prepare",
           "primary_scorer", "resolve_primary", "run_study", "run_workers", "score_config", "shown_url", "snapshot",
           "storage_url", "study_names", "study_spec", "summary", "trial_rows", "trials_frame", "validation_data",
           "work", "worker_group"]
