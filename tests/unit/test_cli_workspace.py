"""The CLI on a workspace in trouble: a killed run, a damaged or empty store, a full disk, a read-only folder,
a junk checkpoint. Each case: a one-line message, a non-zero exit, no traceback, and the store still lists
every earlier run."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from recexp.runs import FAILED, FINISHED, RUNNING, SQLiteRunStore

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, home=None, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **({"RECEXP_HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "recexp", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, **kwargs)


def _one_line_error(done, *fragments: str) -> str:
    """The CLI failed with exit 2 and one ``error:`` line (the last on stderr, after any progress lines)
    naming every fragment, and no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and done.stderr.strip().splitlines()[-1] == errors[0], done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def _listed(home) -> dict:
    done = _cli("runs", "--json", home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def earlier(tmp_path, yeast_grid):
    """A workspace with an earlier experiment: one finished yeast run (with its artifacts) and one failed run."""
    from recexp.jobs import execute
    from recexp.spec import prepare_data

    home = tmp_path / "ws"
    store = SQLiteRunStore(home)
    experiment = store.create_experiment("earlier")
    data = prepare_data(yeast_grid.base)
    spec = replace(yeast_grid.base, strategy="none", seed=0, fingerprint=data[0].fingerprint)
    finished = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status=RUNNING)
    execute(spec, store, finished.id, data=data)
    failed = store.create_run(experiment.id, spec.to_dict(), name="broken", status=RUNNING)
    store.finish(failed.id, FAILED, error="an earlier failure")
    return home, [finished.id, failed.id]


def test_a_run_killed_with_sigkill_reads_failed_on_the_next_runs(taobao_head_file, tmp_path):
    home = tmp_path / "ws"
    command = [sys.executable, "-m", "recexp", "run", taobao_head_file(5000), "--task", "behavior",
               "--task-param", "sequence_length=5", "--model", "logreg", "--seeds", 3, "--epochs", 400,
               "--patience", 400, "--device", "cpu"]
    child = subprocess.Popen(list(map(str, command)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(home)})
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (home / "runs.sqlite").exists():
                running = SQLiteRunStore(home).list_runs(statuses=[RUNNING])
                if running and running[0].epochs_done >= 1:
                    break
            assert child.poll() is None, "the CLI ended before it could be killed"
            time.sleep(0.2)
        else:
            raise AssertionError("the CLI run never got through an epoch")
        assert running[0].pid == child.pid
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    runs = _listed(home)["runs"]
    killed = next(r for r in runs if r["id"] == running[0].id)
    assert killed["status"] == "failed"
    assert f"(pid {child.pid}) is gone" in killed["error"]
    assert all(r["status"] not in ("queued", "running") for r in runs)      # nothing of the grid is left active


@pytest.mark.parametrize("content, what", [(b"", "is empty (0 bytes)"),
                                           (b"not a database at all " * 200, "is damaged (file is not a database)")])
def test_an_empty_or_damaged_store_is_reported_by_every_command_and_left_alone(earlier, content, what):
    home, _ = earlier
    (home / "runs.sqlite").write_bytes(content)
    for command in (["runs"], ["runs", "--json"], ["compare", "--experiment", "earlier"],
                    ["importance", "abcdef123456", "--method", "mean_loss"]):
        _one_line_error(_cli(*command, home=home), f"The run store at {home / 'runs.sqlite'} {what}",
                        "1 artifact folders exist", "Restore runs.sqlite from a backup, or move it away")
    assert (home / "runs.sqlite").read_bytes() == content                   # never replaced by a fresh store


def test_a_junk_checkpoint_is_a_sentence(earlier):
    home, (finished, _) = earlier
    (home / "artifacts" / finished / "model.pt").write_bytes(b"\x80\x02junk that is not a checkpoint")
    _one_line_error(_cli("importance", finished, "--method", "knn_shapley", "--param", "space=embedding", home=home),
                    "model.pt is damaged or not a recexp checkpoint", "train the run again")
    assert [r["status"] for r in _listed(home)["runs"]] == [FINISHED, FAILED]


def test_a_full_disk_fails_a_new_run_in_a_sentence_and_the_store_stays_readable(earlier, small_disk):
    home, ids = earlier
    disk = small_disk("30m")
    subprocess.run(["cp", "-a", str(home), str(disk.path / "ws")], check=True)
    home = disk.path / "ws"
    ballast = disk.fill()
    listed = _listed(home)                                                  # while full
    assert [r["id"] for r in listed["runs"]] == ids and listed["runs"][0]["status"] == FINISHED
    _one_line_error(_cli("run", "yeast_me2", "--task", "table", "--model", "logreg", "--seeds", 1, "--epochs", 1,
                         "--device", "cpu", home=home), "is full", "Free some space")
    ballast.unlink()
    runs = _listed(home)["runs"]
    assert [r["id"] for r in runs][:2] == ids
    assert all(r["status"] not in ("queued", "running") for r in runs)


def test_a_read_only_workspace_is_listed_and_a_run_there_is_refused_in_a_sentence(earlier, small_disk):
    home, ids = earlier
    disk = small_disk("30m")
    subprocess.run(["cp", "-a", str(home), str(disk.path / "ws")], check=True)
    home = disk.path / "ws"
    disk.remount("ro")
    assert [r["id"] for r in _listed(home)["runs"]] == ids
    _one_line_error(_cli("run", "yeast_me2", "--task", "table", "--model", "logreg", "--seeds", 1, "--epochs", 1,
                         "--device", "cpu", home=home), f"The workspace {home} is read-only")


def test_an_output_path_that_cannot_be_written_is_one_line(earlier, tmp_path):
    home, _ = earlier
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _cli("apply", "yeast_me2", "--task", "table", "--strategy", "none", "--out", blocker / "x.parquet",
                home=home)
    _one_line_error(done, f"--out: {blocker} is a file, not a folder.")
    # every command that writes a file checks its path the same way (recexp.cli.common.output_file)
    _one_line_error(_cli("compare", "--experiment", "earlier", "--html", blocker / "r.html", home=home),
                    f"--html: {blocker} is a file, not a folder.")
    _one_line_error(_cli("compare", "--experiment", "earlier", "--csv", "/proc/nope.csv", home=home),
                    "--csv: Could not write /proc/nope.csv")
