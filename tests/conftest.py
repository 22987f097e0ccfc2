"""Fixtures shared by the whole suite: paths to the bundled real samples and an isolated workspace."""

from pathlib import Path

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
