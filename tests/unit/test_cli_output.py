"""The CLI's stderr: progress and recexp's own sentences, never a library warning as such."""

import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from recexp import cli
from recexp.data.samples import load_sample
from recexp.models import to_tensors
from recexp.strategies import get_strategy
from recexp.tasks import build_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_training_run_prints_no_library_warning(tmp_path):
    """`run` used to print torch's 'non-writable NumPy array' UserWarning (with a source line) on every run
    after a resampling strategy."""
    completed = subprocess.run(
        [sys.executable, "-m", "recexp", "run", "yeast_me2", "--task", "table", "--model", "logreg", "--strategy",
         "smote", "--epochs", "1", "--seeds", "1", "--device", "cpu"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(tmp_path / "home")})
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert lines[0].startswith("loading ") and len(lines) > 1
    assert all(line.startswith(("loading ", "warning: ", "[1/1] ")) for line in lines), lines
    assert "Warning" not in completed.stderr and "tensor_numpy" not in completed.stderr


def test_tensors_do_not_write_through_to_the_frame():
    """The cause of that warning, fixed where it arose: a resampled frame holds its features in one block,
    pandas' copy-on-write hands out a read-only view of it, and a tensor made from that view wrote into
    the training frame."""
    dataset = build_dataset(load_sample("yeast_me2"), "table")
    resampled = get_strategy("smote").apply(dataset, seed=0).dataset
    column = resampled.schema.numeric[0]
    first = float(resampled.frame[column].iloc[0])
    tensors = to_tensors(resampled)
    tensors.inputs.numeric[0, 0] = first + 1000
    assert float(resampled.frame[column].iloc[0]) == first


class ConvergenceWarning(UserWarning):
    """Stands in for scikit-learn's (matched by name, so the CLI need not import scikit-learn)."""


def test_warnings_become_sentences_or_nothing(monkeypatch, capsys):
    def noisy(args) -> int:
        warnings.warn("The given NumPy array is not writable", UserWarning)
        warnings.warn("'force_all_finite' was renamed", FutureWarning)
        np.log(np.zeros(1))                                                  # RuntimeWarning: divide by zero
        warnings.warn("lbfgs failed to converge (status=1). Increase the number of iterations.", ConvergenceWarning)
        print("done")
        return 0

    monkeypatch.setattr(importlib.import_module("recexp.cli.runs"), "run", noisy)
    assert cli.main(["runs"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "done\n"
    assert captured.err.splitlines() == [
        "warning: an optimiser stopped at its iteration limit before converging (lbfgs failed to converge "
        "(status=1)); the numbers it gave may be rough."]
    assert warnings.showwarning is not cli._show_warning                       # restored after the command


@pytest.mark.parametrize("category", [UserWarning, RuntimeWarning, DeprecationWarning])
def test_library_noise_is_dropped(category):
    assert cli._warning_sentence("anything", category) is None
