"""``python -m recexp synth`` on the bundled samples."""

from __future__ import annotations

import json

import pandas as pd

from recexp.cli import main
from recexp.dataset import LABEL


def test_synth_writes_rows_and_report(tmp_path, criteo_csv, capsys):
    out, report = tmp_path / "rows.parquet", tmp_path / "report.json"
    code = main(["synth", str(criteo_csv), "--kind", "table", "--label", "label", "--task", "table",
                 "--split-param", "method=stratified", "--method", "gaussian_copula", "--class", "1:80",
                 "--class", "0:20", "--impute", "--out", str(out), "--report", str(report)])
    assert code == 0
    rows = pd.read_parquet(out)
    assert len(rows) == 100 and rows[LABEL].value_counts().to_dict() == {1: 80, 0: 20}
    payload = json.loads(report.read_text())
    assert payload["method"] == "gaussian_copula" and payload["class_counts"] == {"0": 20, "1": 80}
    assert 0 < payload["quality"]["score"] <= 1
    assert {"overall", "minority", "efficacy"} <= set(payload["quality"])
    assert payload["imputation"]["filled_cells"] > 0
    assert set(payload["imputation"]["summary"]) == {"generator", "mean_mode"}
    assert "quality" in capsys.readouterr().out


def test_synth_neural_with_params_and_progress(tmp_path, capsys):
    out, report = tmp_path / "rows.parquet", tmp_path / "report.json"
    code = main(["synth", "yeast_me2", "--task", "table", "--split-param", "method=stratified", "--method", "vae",
                 "--param", "epochs=2", "--param", "eval_every=1", "--rows", "150", "--out", str(out),
                 "--report", str(report)])
    assert code == 0
    payload = json.loads(report.read_text())
    assert len(pd.read_parquet(out)) == 150 and len(payload["history"]) == 2
    assert payload["params"]["epochs"] == 2 and payload["best_epoch"] in (1, 2)
    assert "vae epoch 2" in capsys.readouterr().err


def test_synth_errors_are_sentences(tmp_path, capsys):
    base = ["synth", "yeast_me2", "--task", "table", "--split-param", "method=stratified",
            "--out", str(tmp_path / "x.parquet"), "--report", str(tmp_path / "x.json")]
    assert main(base + ["--method", "diffusion", "--rows", "5"]) == 2
    assert "no generator" in capsys.readouterr().err
    assert main(base + ["--method", "vae", "--param", "epochs=zero", "--rows", "5"]) == 2
    assert "epochs" in capsys.readouterr().err
    assert main(base + ["--method", "vae", "--rows", "0"]) == 2
    assert "--rows" in capsys.readouterr().err
    assert main(base + ["--method", "gaussian_copula", "--class", "2:10"]) == 2
    assert "unknown class" in capsys.readouterr().err
