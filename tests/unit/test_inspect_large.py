"""``python -m recexp inspect LOG --task T`` on a log too large to load (issue #22, item 5): the log is not
loaded and no feature dataset is built in memory; the classes are counted on the task's dataset built out
of core, with the progress line of ``apply``, and the counts equal the in-memory ones."""

from __future__ import annotations

import json

import pytest

import recexp.data.inspect as inspect_module
from recexp import cli, outofcore
from recexp.data.inspect import inspect_source
from recexp.data.synthetic import generate_log
from recexp.tasks import BehaviorTask, PurchaseTask


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inspect_large") / "events.csv"
    generate_log(20_000, seed=3).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("task", ["purchase", "behavior"])
def test_inspect_counts_a_large_log_out_of_core(log_file, task, monkeypatch, capsys):
    expected = inspect_source(str(log_file), task=task)["imbalance"]["class_counts"]     # in memory, for reference
    # The in-memory build of any task would "need" 20 GB: over the 256 MB setting, so the log counts as large
    # while DuckDB still has room to build it.
    monkeypatch.setenv("RECEXP_MEMORY_LIMIT", "256MB")
    monkeypatch.setattr(outofcore, "IN_MEMORY_BYTES_PER_EVENT", {"behavior": 10**6, "purchase": 10**6})

    def refuse(*args, **kwargs):
        raise AssertionError("the in-memory path was taken")

    for builder in (BehaviorTask, PurchaseTask):
        monkeypatch.setattr(builder, "build", refuse)
        monkeypatch.setattr(builder, "class_counts", refuse)
    whole_file_reads = []
    real_load = inspect_module.load
    monkeypatch.setattr(inspect_module, "load", lambda source, **kw: (
        whole_file_reads.append(source) if not isinstance(source, tuple) else None) or real_load(source, **kw))

    assert cli.main(["inspect", str(log_file), "--task", task, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert whole_file_reads == []                                 # only the first lines were read by load
    assert result["imbalance"]["class_counts"] == expected
    assert result["validation"]["scope"] == "first lines" and result["mapping"]["behavior"] == "behavior_type"
    assert result["rows"] == sum(result["out_of_core"]["rows"].values())
    assert "built on disk" in captured.err
    assert "reading: 20,000 rows, 100% done, peak memory" in captured.err       # apply's progress line

    assert cli.main(["inspect", str(log_file), "--task", task]) == 0             # the text form, the build reused
    text = capsys.readouterr().out
    assert f"dataset built out of core in {result['out_of_core']['folder']}" in text
    assert f"classes ({task} task): " in text
