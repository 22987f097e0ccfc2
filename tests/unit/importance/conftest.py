"""Finished runs on the head of the bundled Taobao sample, shared by the importance tests.

Session scope: each run trains once (a small MLP, a few epochs) into a store of its own, and the
tests only read it.
"""

from __future__ import annotations

import pytest

from recexp.data.source import DataSource
from recexp.importance.evaluation import flip_labels
from recexp.spec import RunSpec, prepare_data
from recexp.jobs import execute
from recexp.runs import RUNNING, SQLiteRunStore

N_EVENTS = 6000
EPOCHS = 5


@pytest.fixture(scope="session")
def events_file(taobao_head_file):
    """The first 6,000 events of the bundled Taobao sample, as a file the run spec names."""
    return taobao_head_file(N_EVENTS)


@pytest.fixture(scope="session")
def run_store(tmp_path_factory):
    """A run store of its own (the per-test workspace changes with every test)."""
    return SQLiteRunStore(tmp_path_factory.mktemp("importance-store"))


@pytest.fixture(scope="session")
def run_epochs() -> int:
    """Epochs every fixture run trains for (no early stopping)."""
    return EPOCHS


@pytest.fixture(scope="session")
def make_spec(events_file):
    """``make_spec(strategy=..., model=..., seed=..., **train)``: a small behaviour-task run spec."""
    def make(strategy: str = "none", strategy_params: dict | None = None, model: str = "mlp", seed: int = 0,
             **train) -> RunSpec:
        return RunSpec(source=DataSource(str(events_file)).to_dict(), task="behavior",
                       task_params={"sequence_length": 5}, strategy=strategy, strategy_params=strategy_params or {},
                       model=model, model_params={"hidden_dim": 32, "embedding_dim": 8} if model != "logreg" else {},
                       train={"epochs": EPOCHS, "batch_size": 256, "learning_rate": 3e-3, "device": "cpu",
                              "patience": None, **train}, seed=seed)
    return make


@pytest.fixture(scope="session")
def make_run(run_store, make_spec):
    """``make_run(**spec_changes)``: id of a finished run of that spec in ``run_store`` (trained once)."""
    finished: dict[str, str] = {}

    def make(**changes) -> str:
        spec = make_spec(**changes)
        key = repr(sorted(spec.to_dict().items()))
        if key not in finished:
            run = run_store.create_run(run_store.create_experiment(spec.label()).id, spec.to_dict(), status=RUNNING)
            execute(spec, run_store, run.id)
            finished[key] = run.id
        return finished[key]
    return make


@pytest.fixture(scope="session")
def plain_run(make_run):
    """Run id of a finished MLP run without a strategy (real rows only)."""
    return make_run()


@pytest.fixture(scope="session")
def oversampled_run(make_run):
    """Run id of a finished MLP run after random over-sampling (real and synthetic rows)."""
    return make_run(strategy="random_over")


@pytest.fixture(scope="session")
def noisy_run(run_store, make_spec):
    """``(run_id, flipped)``: an MLP run whose training labels were 10% flipped (seed 0) before training.

    ``flipped`` are the dataset positions (``source_row``) of the flipped rows; validation and test
    rows keep their labels.
    """
    spec = make_spec()
    dataset, split = prepare_data(spec)
    noisy, flipped = flip_labels(dataset, split.train, 0.1, seed=0)
    run = run_store.create_run(run_store.create_experiment("noisy").id, spec.to_dict(), status=RUNNING)
    execute(spec, run_store, run.id, data=(noisy, split))
    return run.id, flipped
