"""Studies on real data (yeast_me2, logistic regression, 1-2 epochs): validation only, resume, pruning,
failed trials and bad input (parallel workers: test_tune_jobs.py)."""

import signal
import time

import numpy as np
import optuna
import pytest

import recexp.tune.study as tune_study
from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError
from recexp.spec import RunSpec, prepare_data
from recexp.tune import (
    STOPPED, TrialConfig, TuneSpec, best_configs, objective, open_study, prepare, run_study, score_config, summary,
    trial_rows,
)
from recexp.tune.study import WorkerStop

BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 128, "device": "cpu"})
SMOTE = TuneSpec(BASE, ("smote",), fixed={"smote.sampling_strategy": "auto"}, ranges={"smote.k_neighbors": (1, 6)})


def test_trials_never_touch_the_test_split(monkeypatch):
    _, split = prepare_data(BASE)
    n_rows = len(split.train) + len(split.valid) + len(split.test)
    taken: list[np.ndarray] = []                                     # positions taken out of the whole dataset
    original = Dataset.subset

    def spy(self, index):
        if len(self) == n_rows:
            taken.append(np.asarray(index))
        return original(self, index)

    evaluated: list[int] = []
    real_evaluate = tune_study.evaluate

    def counting_evaluate(module, data, **kwargs):
        evaluated.append(len(data))
        return real_evaluate(module, data, **kwargs)

    monkeypatch.setattr(Dataset, "subset", spy)
    monkeypatch.setattr(tune_study, "evaluate", counting_evaluate)
    study = run_study(SMOTE, "no-test", n_trials=2)
    assert [r["state"] for r in trial_rows(study)] == ["complete", "complete"]
    assert [len(rows) for rows in taken] == [len(split.train), len(split.valid)]
    assert not any(np.isin(split.test, rows).any() for rows in taken)
    assert evaluated and set(evaluated) == {len(split.valid)}       # every score is on the validation rows
    assert summary(study)["split"] == "validation"


def test_the_data_check_refuses_overlapping_rows(monkeypatch):
    dataset, split = prepare_data(BASE)
    leaky = type(split)(train=np.concatenate([split.train, split.test[:1]]), valid=split.valid, test=split.test)
    monkeypatch.setattr(tune_study, "prepare_data", lambda spec: (dataset, leaky))
    with pytest.raises(AssertionError, match="test split"):
        tune_study.validation_data(BASE)


def test_a_study_continues_under_its_name_and_refuses_other_settings():
    first = run_study(SMOTE, "resume", n_trials=2)
    assert len(first.trials) == 2
    again = run_study(SMOTE, "resume", n_trials=1)
    assert [t.number for t in again.trials] == [0, 1, 2]
    assert all(r["state"] == "complete" for r in trial_rows(again))
    other = TuneSpec(BASE, ("smote",), ranges={"smote.k_neighbors": (1, 3)})
    with pytest.raises(InvalidParameterError, match="other settings"):
        run_study(other, "resume", n_trials=1)


def test_a_trial_whose_process_died_is_failed_when_the_study_continues(monkeypatch):
    monkeypatch.setattr(tune_study, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(tune_study, "GRACE_SECONDS", 1)
    study = run_study(SMOTE, "crash", n_trials=1)
    orphan = study.ask()                                             # a trial a killed worker left running
    study._storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.5)
    again = run_study(SMOTE, "crash", n_trials=1)
    rows = trial_rows(again)
    assert [r["state"] for r in rows] == ["complete", "fail", "complete"]
    assert "process stopped" in rows[1]["error"]


def test_every_epoch_reports_the_validation_score_and_a_pruner_can_stop_the_trial():
    spec, data = prepare(SMOTE)

    class Trial:
        def __init__(self, prune_after):
            self.reports, self.prune_after = [], prune_after

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return len(self.reports) >= self.prune_after

    config = TrialConfig("smote", {"sampling_strategy": "auto", "k_neighbors": 3})
    full = Trial(prune_after=99)
    value = score_config(config, spec, data, trial=full)
    assert [step for step, _ in full.reports] == [1, 2]
    assert all(0 <= v <= 1 for _, v in full.reports) and 0 <= value <= 1
    stopped = Trial(prune_after=1)
    with pytest.raises(optuna.TrialPruned):
        score_config(config, spec, data, trial=stopped)
    assert [step for step, _ in stopped.reports] == [1]


def test_pruned_and_failed_trials_are_recorded_as_such_and_the_study_goes_on():
    spec = TuneSpec(BASE, ("smote",), ranges={"smote.k_neighbors": (1, 6)}, pruner="none")
    spec, data = prepare(spec)
    study = open_study("states", spec)
    # a ratio below the minority's share now (yeast: 37 / 1,032 training rows) cannot be reached: that trial fails
    study.enqueue_trial({"smote.sampling_strategy|kind": "float", "smote.sampling_strategy|float": 0.01,
                         "smote.k_neighbors": 3})
    study.enqueue_trial({"smote.sampling_strategy|kind": "choice", "smote.sampling_strategy|choice": "auto",
                         "smote.k_neighbors": 3})
    study.optimize(objective(spec, data), n_trials=2, catch=(Exception,))
    study.pruner = optuna.pruners.ThresholdPruner(lower=2.0)        # every reported score is below 2: pruned
    study.optimize(objective(spec, data), n_trials=1, catch=(Exception,))
    rows = trial_rows(study)
    assert [r["state"] for r in rows] == ["fail", "complete", "pruned"]
    assert "sampling_strategy" in rows[0]["error"] and "Traceback" not in rows[0]["error"]
    assert rows[2]["epochs"] == 1
    result = summary(study)
    assert result["counts"] == {"complete": 1, "pruned": 1, "fail": 1, "running": 0}
    assert result["best_params"]["smote.k_neighbors"] == 3
    assert best_configs(study)[0].strategy_params == {"sampling_strategy": "auto", "k_neighbors": 3,
                                                         "knn_backend": "auto"}



def test_a_stop_landing_in_optunas_bookkeeping_is_held_and_fails_the_next_trial_with_the_stopped_sentence(monkeypatch):
    """A worker's SIGTERM that arrives while Optuna samples a trial's parameters must not leave a trial failed
    without a sentence (CI saw that as "no heartbeat"): the stop is held and lands in the trial's own work."""
    spec, data = prepare(SMOTE)
    study = open_study("held-stop", spec)
    stop = WorkerStop()
    sampler = study.sampler

    class SignalWhileSampling(optuna.samplers.BaseSampler):
        def infer_relative_search_space(self, study, trial):
            return sampler.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return sampler.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, name, distribution):
            if trial.number == 1:
                stop.arrived(signal.SIGTERM)                    # lands in Optuna's bookkeeping: held
            return sampler.sample_independent(study, trial, name, distribution)

    study.sampler = SignalWhileSampling()
    monkeypatch.setattr(tune_study, "WORKER_STOP", stop)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), stop.held():
        study.optimize(objective(spec, data), n_trials=3, catch=(Exception,))
    rows = trial_rows(study)
    assert [r["state"] for r in rows] == ["complete", "fail"]
    assert rows[1]["error"] == STOPPED and rows[1]["config"] is not None


def test_outside_a_worker_a_stop_lands_at_once():
    stop = WorkerStop()
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        stop.arrived(signal.SIGINT)
    with stop.held():
        stop.arrived(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"), stop.open():
            pass
        assert stop.pending is None and stop.holding

@pytest.mark.parametrize("change, words", [
    ({"n_trials": 0}, "at least 1 trial"),
    ({"minutes": 0}, "positive number of minutes"),
    ({"spec": TuneSpec(BASE, ("none",))}, "nothing to search"),
    ({"spec": TuneSpec(BASE, ("smote",), ranges={"smote.k_neighbors": (40, 60)})}, "infeasible"),
    ({"spec": TuneSpec(BASE, ("smote",), primary="recall[nope]")}, "not a score of this task"),
    ({"spec": TuneSpec(BASE, ("smote",), sampler="grid")}, "Unknown sampler"),
])
def test_bad_input_is_a_sentence_before_any_trial(change, words, workspace):
    arguments = {"spec": SMOTE, "name": "bad", "n_trials": 2, **change}
    with pytest.raises(InvalidParameterError, match=words):
        run_study(**arguments)


def test_the_minority_count_bounds_an_infeasible_neighbour_range():
    with pytest.raises(InvalidParameterError) as error:
        prepare(TuneSpec(BASE, ("smote",), ranges={"smote.k_neighbors": (40, 60)}))
    assert "class '1' has 37 training rows" in str(error.value)
