"""The dashboard's background out-of-core build (recexp.diskbuild, recexp.ui.builds): progress written as it
goes, the same request found again, a cancel in the middle that leaves no staging folder and no dataset, a
killed process cleaned up after, and the raw class mix of a down-sampled dataset from its metadata."""

from __future__ import annotations

import json
import os
import time

import pytest

from recexp.data.synthetic import generate_log
from recexp.diskbuild import (BuildRequest, build_folder, build_state, class_mix, prepare_build, preview, process_ended,
                              work)
from recexp.jobs import JobRunner
from recexp.outofcore import down_sample, open_on_disk, sampled_class_mix
from recexp.runs import SQLiteRunStore
from recexp.data import load
from recexp.tasks import SplitSpec, build_dataset, split_dataset
from recexp.ui.builds import cancel_build, launch_build, state_of


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("diskbuild") / "events.csv"
    generate_log(12_000, seed=5).to_csv(path, index=False)
    return path


def _wait(folder, runner, until, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll()
        state = build_state(folder)
        if until(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"timed out; state {build_state(folder)}")


def test_a_build_runs_in_a_process_and_is_found_again(log_file):
    runner = JobRunner(SQLiteRunStore.open(), max_concurrent=1, runs=False)
    request = BuildRequest(path=str(log_file), task="behavior", split={"method": "temporal"},
                           sampling={"users": 1.0, "negative_rate": 0.25})
    folder = launch_build(request, runner)
    assert folder == build_folder(request.key()) and build_state(folder).status in ("queued", "running")
    state = _wait(folder, runner, lambda s: not s.active)
    assert state.status == "finished" and state.phase == "writing" and state.fraction == 1.0
    assert state.pid != os.getpid() and 0 < state.peak_memory < 1 << 31 and state.elapsed > 0
    disk = open_on_disk(state.dataset)
    assert state.rows == len(disk) and disk.sampling == {"users": 1.0, "negative_rate": 0.25}
    _wait(folder, runner, lambda s: runner.commands(f"diskbuild:{folder}") == (0, 0))   # its process reaped
    assert launch_build(request, runner) == folder and runner.commands(f"diskbuild:{folder}") == (0, 0)   # reused
    assert preview(disk, rows=50).num_rows == 50

    # the raw (weighted) mix from the metadata equals the in-memory path's weighted counts
    whole = build_dataset(load(str(log_file)), "behavior", split=SplitSpec())
    dataset, _split = down_sample(whole, split_dataset(whole, SplitSpec()), 0.25)
    assert class_mix(disk) == {key: {c: float(v) for c, v in counts.items()}
                               for key, counts in sampled_class_mix(dataset).items()}


def test_a_cancel_in_the_middle_leaves_nothing(tmp_path):
    path = tmp_path / "big.csv"
    generate_log(300_000, seed=6).to_csv(path, index=False)
    runner = JobRunner(SQLiteRunStore.open(), max_concurrent=1, runs=False, cancel_grace=10)
    folder = launch_build(BuildRequest(path=str(path), task="behavior", split={"method": "temporal"}), runner)
    datasets = tmp_path / "workspace" / "datasets"
    _wait(folder, runner, lambda s: s.status == "running" and s.phase in ("features", "writing"))
    assert [p.name.startswith("staging-") for p in datasets.iterdir()] == [True]     # work under way
    cancel_build(runner, folder)
    assert build_state(folder).status == "cancelled"
    _wait(folder, runner, lambda s: runner.commands(f"diskbuild:{folder}") == (0, 0))
    state = build_state(folder)
    assert state.status == "cancelled" and state.error == "Cancelled by the user." and state.dataset is None
    assert list(datasets.iterdir()) == []                      # the process removed its staging folder itself


def test_a_killed_build_is_failed_and_cleaned_up(tmp_path):
    folder = build_folder("0123456789abcdef")
    folder.mkdir(parents=True)
    staging = tmp_path / "workspace" / "datasets" / "staging-424242-1"
    staging.mkdir(parents=True)
    (folder / "state.json").write_text('{"status": "running", "pid": 424242}')
    process_ended(folder, 424242, "Killed by signal SIGKILL.")
    state = build_state(folder)
    assert state.status == "failed" and state.error == "Killed by signal SIGKILL." and not staging.exists()


def test_a_failure_is_a_sentence(tmp_path):
    path = tmp_path / "nobuy.csv"
    frame = generate_log(5_000, seed=7)
    frame[frame["behavior_type"].astype(str) != "buy"].to_csv(path, index=False)
    request = BuildRequest(path=str(path), task="purchase", split={"method": "temporal"})
    folder = build_folder(request.key())
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps(request.__dict__))
    assert work(folder) == 1                                    # in this process: the build's own refusal
    state = build_state(folder)
    assert state.status == "failed" and state.error.startswith("The log has no 'buy' events")


def test_a_state_whose_process_is_gone_is_failed(tmp_path):
    folder = build_folder("fedcba9876543210")
    folder.mkdir(parents=True)
    (folder / "state.json").write_text('{"status": "running", "pid": 2147480000}')
    state = build_state(folder)
    assert state.status == "failed" and "ended without finishing" in state.error


def test_a_build_left_waiting_by_a_restarted_app_is_launched_again(log_file):
    request = BuildRequest(path=str(log_file), task="behavior", split={"method": "temporal"})
    folder = prepare_build(request)                             # queued on a runner that is gone
    runner = JobRunner(SQLiteRunStore.open(), max_concurrent=1, runs=False)
    assert build_state(folder).status == "queued" and state_of(runner, folder) is None
    assert launch_build(request, runner) == folder
    assert runner.commands(f"diskbuild:{folder}") != (0, 0)
    assert _wait(folder, runner, lambda s: not s.active).status == "finished"
