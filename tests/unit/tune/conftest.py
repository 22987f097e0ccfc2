"""Every tuning test works in its own workspace, with the study storage in it (never a shared database)."""

import pytest


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A fresh ``RECEXP_HOME`` (its ``optuna.db`` included), with ``RECEXP_OPTUNA_STORAGE`` unset."""
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    monkeypatch.delenv("RECEXP_OPTUNA_STORAGE", raising=False)
    return tmp_path
