"""``python -m recexp importance``: JSON summary, Parquet values, and one-sentence errors with exit code 2."""

import json

import pandas as pd
import pytest

from recexp.cli import main


@pytest.fixture
def workspace(run_store, monkeypatch):
    """Point the CLI's workspace at the store holding the fixture runs."""
    monkeypatch.setenv("RECEXP_HOME", str(run_store.home))
    return run_store


def test_importance_prints_the_summary_as_json_and_writes_parquet(workspace, plain_run, tmp_path, capsys):
    out = tmp_path / "values.parquet"
    code = main(["importance", plain_run, "--method", "knn_shapley", "--param", "k=3", "--seed", "1",
                 "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    payload = json.loads(captured.out)
    assert payload["method"] == "knn_shapley" and payload["params"] == {"k": 3, "space": "features"}
    assert payload["seed"] == 1 and payload["out"] == str(out)
    groups = {(row["group"], row["name"]) for row in payload["summary"]}
    assert ("origin", "real") in groups and ("all", "all rows") in groups
    values = pd.read_parquet(out)
    assert list(values.columns) == ["row", "value", "label", "class", "is_synthetic", "source_row"]
    assert len(values) == payload["rows"]
    assert "knn_shapley" in captured.err                               # progress on stderr


def test_the_share_of_harmful_rows_is_named_and_null_without_a_threshold(workspace, plain_run, capsys):
    assert main(["importance", plain_run, "--method", "tracin", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["harmful"]["label"] == "share that raise the validation loss"
    assert all(0 <= row["share_harmful"] <= 1 for row in payload["summary"])
    assert main(["importance", plain_run, "--method", "grand", "--json"]) == 0     # no threshold: JSON null
    payload = json.loads(capsys.readouterr().out)
    assert payload["harmful"]["below"] is None and all(row["share_harmful"] is None for row in payload["summary"])
    assert main(["importance", plain_run, "--method", "mean_loss"]) == 0
    printed = capsys.readouterr().out
    assert "share the model fits badly (loss > ln 2)" in printed and "minus the mean cross-entropy loss" in printed


def test_without_out_the_cached_values_file_is_named(workspace, plain_run, capsys):
    assert main(["importance", plain_run, "--method", "el2n"]) == 0
    printed = capsys.readouterr().out
    path = printed.split("values in ", 1)[1].splitlines()[0]
    assert path.endswith(".parquet") and len(pd.read_parquet(path)) > 0
    assert "real" in printed


@pytest.mark.parametrize("argv,message", [
    (["importance", "nosuchrun", "--method", "el2n"], "There is no run 'nosuchrun'"),
    (["importance", "{run}", "--method", "nosuch"], "Unknown importance method 'nosuch'"),
    (["importance", "{run}", "--method", "el2n", "--param", "epoch=99"], "kept the model only after epoch"),
    (["importance", "{run}", "--method", "knn_shapley", "--param", "k=zero"], "parameter 'k' must be"),
])
def test_errors_are_one_sentence_on_stderr_with_exit_code_2(workspace, plain_run, capsys, argv, message):
    code = main([arg.format(run=plain_run) for arg in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1
