"""Fixtures shared by the whole suite: paths to the bundled real samples and an isolated workspace."""

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The repository's bundled real samples (see data/README.md for provenance)."""
    return DATA


@pytest.fixture(scope="session")
def taobao_csv() -> Path:
    """80k rows of Taobao UserBehavior, no header, with its real defects (truncated last line...)."""
    return DATA / "taobao_userbehavior" / "UserBehavior_sample.csv"


@pytest.fixture(scope="session")
def taobao_head_file(taobao_csv, tmp_path_factory):
    """``taobao_head_file(n)``: a file with the first ``n`` events of the Taobao sample (what a worker loads)."""
    made: dict[int, Path] = {}

    def head(n_events: int) -> Path:
        if n_events not in made:
            path = tmp_path_factory.mktemp("taobao-head") / f"taobao_head_{n_events}.csv"
            with open(taobao_csv, encoding="utf-8") as source:
                path.write_text("".join(line for _, line in zip(range(n_events), source)), encoding="utf-8")
            made[n_events] = path
        return made[n_events]
    return head


@dataclass(frozen=True)
class YeastGrid:
    """The small real experiment the Compare tests share: yeast_me2 (an imbalanced benchmark), a logistic
    regression, 3 strategies x 3 seeds on one stratified split."""

    base: Any
    strategies: tuple[str, ...] = ("none", "random_over", "class_weights")
    seeds: tuple[int, ...] = (0, 1, 2)

    def build(self, home, name: str):
        """Run every strategy x seed in the foreground into a store at ``home``; returns the store."""
        from recexp.spec import prepare_data
        from recexp.jobs import execute
        from recexp.runs import SQLiteRunStore

        store = SQLiteRunStore(home)
        data = prepare_data(self.base)
        experiment = store.create_experiment(name)
        for strategy in self.strategies:
            for seed in self.seeds:
                spec = replace(self.base, strategy=strategy, seed=seed, fingerprint=data[0].fingerprint)
                run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
                execute(spec, store, run.id, data=data)
        return store


@pytest.fixture(scope="session")
def yeast_grid() -> YeastGrid:
    """The spec and builder of the shared yeast experiment (``yeast_grid.build(home, name)``)."""
    from recexp.spec import RunSpec

    return YeastGrid(RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                             model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256,
                                                    "device": "cpu"}))


@pytest.fixture(scope="session")
def retailrocket_csv() -> Path:
    """RetailRocket events of 1,500 visitors, header row, epoch-millisecond timestamps."""
    return DATA / "retailrocket" / "events_sample.csv"


@pytest.fixture(scope="session")
def criteo_csv() -> Path:
    """200 Criteo rows: a feature table with a `label` column."""
    return DATA / "criteo_sample" / "criteo_sample.csv"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Train in-process models with one intra-op thread: they are small, and on a busy 2-core CI box a
    second spinning thread makes torch many times slower rather than faster. Session scope, so it is in
    force before any session fixture fits a model or generator (worker processes set their own)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own run store folder, so no test sees another's runs."""
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path / "workspace"))


@pytest.fixture
def simulated_cuda_autocast(monkeypatch):
    """The trainer's autocast helper as on a CUDA machine (bfloat16 autocast when mixed precision is on),
    on the CPU: whatever runs under it computes in bf16, as it would on a GPU."""
    import torch

    from recexp.models import trainer

    def cpu_bf16(device, enabled):
        return (torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()), None

    monkeypatch.setattr(trainer, "_autocast", cpu_bf16)


@pytest.fixture
def forward_passes():
    """A list that receives ``(module in training mode, CPU autocast on)`` for every module's forward pass."""
    import torch

    seen: list[tuple[bool, bool]] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append((module.training, torch.is_autocast_enabled("cpu"))))
    yield seen
    handle.remove()
