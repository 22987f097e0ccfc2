"""`python -m recexp tune`: the JSON contract, continuing a study, bad input as one sentence, and Ctrl-C stopping
its worker processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recexp.cli import main

ROOT = Path(__file__).resolve().parents[3]
TUNE = ["tune", "yeast_me2", "--task", "table", "--strategy", "smote", "--model", "logreg", "--epochs", "1",
        "--device", "cpu", "--range", "smote.k_neighbors=1:5"]


def test_json_contract_and_continuing_a_study(capsys):
    assert main([*TUNE, "--trials", "2", "--study", "cli", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["study"] == "cli" and first["split"] == "validation"
    assert first["primary"] == "pr_auc[1]" and first["direction"] == "maximize"
    assert set(first["best_params"]) <= {"smote.sampling_strategy|kind", "smote.sampling_strategy|choice",
                                         "smote.sampling_strategy|float", "smote.k_neighbors"}
    assert 1 <= first["best_params"]["smote.k_neighbors"] <= 5
    assert 0 <= first["best_value"] <= 1
    assert [t["number"] for t in first["trials"]] == [0, 1]
    for trial in first["trials"]:
        assert set(trial) >= {"number", "state", "params", "value"}
    best = max(t["value"] for t in first["trials"] if t["state"] == "complete")
    assert first["best_value"] == best
    assert main([*TUNE, "--trials", "1", "--study", "cli", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [t["number"] for t in again["trials"]] == [0, 1, 2]
    assert again["trials"][:2] == first["trials"]


def test_several_strategies_make_the_strategy_a_choice(capsys):
    assert main(["tune", "yeast_me2", "--task", "table", "--strategy", "random_under", "--strategy", "focal_loss",
                 "--model", "logreg", "--epochs", "1", "--device", "cpu", "--trials", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["study"].startswith("tune-random_under-focal_loss-")
    assert all(t["params"]["strategy"] in ("random_under", "focal_loss") for t in result["trials"])


@pytest.mark.parametrize("extra, words", [
    (["--trials", "0"], "at least 1 trial"),
    (["--trials", "2", "--range", "smote.k_neighbors=40:60"], "infeasible"),
    (["--trials", "2", "--fix", "smote.k_neighbors=3", "--fix", "smote.sampling_strategy=auto"], "nothing to search"),
    (["--trials", "2", "--range", "smote.k_neighbors=a:b"], "LOW:HIGH"),
])
def test_bad_input_is_one_sentence_and_exit_code_2(extra, words, workspace):
    completed = subprocess.run([sys.executable, "-m", "recexp", *TUNE, *extra], capture_output=True, text=True,
                               timeout=300, cwd=workspace,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(workspace)})
    assert completed.returncode == 2, completed.stderr
    assert words in completed.stderr and "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith("error: ")


def test_ctrl_c_stops_the_workers_fails_their_running_trials_and_says_how_to_continue(workspace):
    from recexp.errors import InvalidParameterError
    from recexp.tune import STOPPED, open_study, trial_rows

    command = [sys.executable, "-m", "recexp", *TUNE, "--epochs", "25", "--fix", "smote.sampling_strategy=auto",
               "--trials", "40", "--workers", "2", "--study", "interrupted", "--json"]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workspace,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(workspace)})

    def running_trials():
        try:
            return [r for r in trial_rows(open_study("interrupted")) if r["state"] == "running"]
        except InvalidParameterError:                          # not created yet
            return []

    deadline = time.monotonic() + 240
    while not running_trials() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running_trials(), "no trial started"
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    assert "--study interrupted to continue" in err and "Traceback" not in err and out == ""
    rows = trial_rows(open_study("interrupted"))
    assert rows and not [r for r in rows if r["state"] == "running"] and len(rows) < 40
    failed = [r["error"] for r in rows if r["state"] == "fail"]
    assert failed and all(e == STOPPED or e.startswith("Cancelled by the user.") for e in failed), failed
    workers = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).startswith(f"{sys.executable} -m recexp.tune "
                                                                                    "interrupted")]
    assert workers == []                                        # no worker outlives the command


def _cmdline(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
