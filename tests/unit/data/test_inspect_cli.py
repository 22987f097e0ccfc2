"""``python -m recexp inspect``: one JSON object on success, a one-line message and non-zero exit on bad input."""

import json
import subprocess
import sys
from pathlib import Path

from recexp.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_inspect_taobao_json(taobao_csv, capsys):
    assert main(["inspect", str(taobao_csv), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mapping"] == {"user": "c0", "item": "c1", "category": "c2", "behavior": "c3", "timestamp": "c4"}
    assert result["rows"] == 80_106
    assert result["validation"]["dropped"] == {"truncated row (4 of 5 fields)": 1}
    assert result["validation"]["timestamp_outliers"] == 34    # the bundled file keeps its stated window
    counts = result["imbalance"]["class_counts"]
    assert counts == {"view": 71_898, "cart": 4_307, "fav": 2_228, "buy": 1_673}
    assert abs(result["imbalance"]["imbalance_ratio"] - 71_898 / 1_673) < 1e-9


def test_inspect_with_mapping_and_table_options(retailrocket_csv, data_dir, capsys):
    assert main(["inspect", str(retailrocket_csv), "--map", "user=itemid", "--map", "item=visitorid", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mapping"]["user"] == "itemid" and result["mapping"]["item"] == "visitorid"

    raw = data_dir / "criteo_sample" / "criteo_1k_raw.tsv"
    assert main(["inspect", str(raw), "--kind", "table", "--header", "no", "--label", "c0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label_column"] == "c0" and len(result["numeric"]) == 13
    assert result["imbalance"]["class_counts"] == {"0": 795, "1": 205}


def test_inspect_plain_text_by_sample_name(capsys):
    assert main(["inspect", "page_blocks0"]) == 0
    out = capsys.readouterr().out
    assert "5,471 rows kept of 5,472 read" in out and "dangling decimal point" in out


def test_inspect_bad_input_exits_non_zero_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["inspect", str(empty), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is empty" in lines[0]

    assert main(["inspect", str(empty.parent / "missing.csv")]) == 2
    assert main(["inspect", str(ROOT / "data" / "criteo_sample" / "criteo_sample.csv"), "--kind", "table",
                 "--label", "nope"]) == 2
    assert "Columns: label, I1" in capsys.readouterr().err


def test_inspect_subprocess(retailrocket_csv, tmp_path):
    completed = subprocess.run([sys.executable, "-m", "recexp", "inspect", str(retailrocket_csv), "--json"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["rows"] == 2_771 and result["validation"]["unused_columns"] == ["transactionid"]
    assert result["imbalance"]["class_counts"]["buy"] == 14

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    failed = subprocess.run([sys.executable, "-m", "recexp", "inspect", str(garbage)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().startswith("error: ") and len(failed.stderr.strip().splitlines()) == 1


def test_inspect_task_and_parameters(taobao_csv, capsys):
    args = ["inspect", str(taobao_csv), "--task", "purchase", "--param", "n_windows=2", "--json"]
    assert main(args) == 0
    balance = json.loads(capsys.readouterr().out)["imbalance"]
    assert balance["task"] == "purchase" and balance["task_params"]["n_windows"] == 2
    assert set(balance["class_counts"]) == {"no_buy", "buy"}
    assert balance["imbalance_ratio"] == balance["class_counts"]["no_buy"] / balance["class_counts"]["buy"] > 10
    assert 0 < balance["normalised_entropy"] < 1

    assert main(["inspect", str(taobao_csv), "--task", "purchase", "--param", "nope=1"]) == 2
    assert "no parameter 'nope'" in capsys.readouterr().err
