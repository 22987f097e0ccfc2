"""`python -m recexp strategies` and `python -m recexp apply` on the bundled data."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recexp.cli import main
from recexp.strategies import STRATEGIES


def test_strategies_json_lists_every_strategy_with_its_spec(capsys):
    assert main(["strategies", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listing] == list(STRATEGIES)
    by_name = {entry["name"]: entry for entry in listing}
    assert by_name["smote"]["params"]["k_neighbors"] == {"type": "int", "low": 1, "high": None, "log": False,
                                                          "help": STRATEGIES["smote"].params["k_neighbors"].help,
                                                          "default": 5}
    assert by_name["focal_loss"]["family"] == "weighting"
    assert by_name["smote"]["task_kinds"] == ["classification"]
    assert by_name["long_tail_weighting"]["task_kinds"] == ["ranking"]
    assert main(["strategies"]) == 0
    assert "sequence_crop" in capsys.readouterr().out


def test_apply_writes_the_new_training_split_and_prints_counts(tmp_path, capsys, task_data):
    out = tmp_path / "train.parquet"
    code = main(["apply", "taobao", "--task", "purchase", "--strategy", "random_over",
                 "--param", "sampling_strategy=buy:500", "--seed", "3", "--out", str(out), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    dataset, split = task_data["purchase"]
    before = dataset.subset(split.train).class_counts()
    assert payload["class_counts_before"] == before
    assert payload["class_counts_after"] == {**before, "buy": 500}
    assert payload["locked"]["test"] == dataset.subset(split.test).class_counts()
    written = pd.read_parquet(out)
    assert len(written) == payload["rows_after"] == sum(before.values()) + 500 - before["buy"]
    assert written["is_synthetic"].sum() == 500 - before["buy"]
    assert written.groupby("label").size().to_dict() == {0: before["no_buy"], 1: 500}


def test_apply_prints_a_table_without_json(tmp_path, capsys):
    code = main(["apply", "taobao", "--task", "behavior", "--strategy", "class_weights", "--param",
                 "scheme=inverse_sqrt", "--out", str(tmp_path / "w.parquet")])
    assert code == 0
    text = capsys.readouterr().out
    assert "class_weights on the behavior training split" in text and "buy" in text
    assert pd.read_parquet(tmp_path / "w.parquet")["sample_weight"].nunique() == 4


def test_apply_errors_are_sentences(tmp_path, capsys):
    out = str(tmp_path / "x.parquet")
    assert main(["apply", "taobao", "--task", "purchase", "--strategy", "smote", "--param", "k_neighbors=0",
                 "--out", out]) == 2
    assert "'k_neighbors' must be an integer at least 1, but got 0" in capsys.readouterr().err
    assert main(["apply", "taobao", "--task", "purchase", "--strategy", "smote", "--param", "k_neighbors=5000",
                 "--out", out]) == 2
    err = capsys.readouterr().err
    assert "class 'buy'" in err and "Lower k_neighbors" in err and "Traceback" not in err
    assert main(["apply", "taobao", "--task", "purchase", "--strategy", "smoot", "--out", out]) == 2
    assert "no strategy called 'smoot'" in capsys.readouterr().err


def test_apply_on_a_feature_table_splits_it_stratified_by_default(tmp_path, capsys):
    """A feature table has no event times, so without --split-param the CLI splits it as the Data page does
    (stratified) instead of refusing the temporal default."""
    out = tmp_path / "criteo.parquet"
    code = main(["apply", "criteo", "--task", "table", "--strategy", "random_over", "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    before, after = payload["class_counts_before"], payload["class_counts_after"]
    assert sum(before.values()) == 144 and len(set(after.values())) == 1        # balanced
    test = payload["locked"]["test"]
    assert test["1"] / sum(test.values()) == pytest.approx(49 / 200, abs=0.03)  # stratified: the class share kept
    assert main(["apply", "criteo", "--task", "table", "--strategy", "none", "--split-param", "method=temporal",
                 "--out", str(out)]) == 2
    assert "needs event times" in capsys.readouterr().err
