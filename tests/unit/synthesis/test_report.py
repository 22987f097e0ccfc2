"""describe_fit: a fitted generator's history, quality report and imputation comparison as plain data."""

from __future__ import annotations

import json
import math

from recexp.synthesis import VAE, GaussianCopula, describe_fit


def test_neural_generator_report_reads_history_and_scores(narrow_behavior_train):
    train = narrow_behavior_train
    generator = VAE(epochs=2, eval_every=1, random_state=0).fit(train.frame, train.schema)
    rows = generator.sample(300)
    report = describe_fit(generator, train.frame, rows, train.schema, minority="buy", fit_seconds=1.5)
    assert report.generator == "VAE" and report.params == generator.get_params()
    assert report.history.equals(generator.history_) and report.history is not generator.history_
    assert report.best_epoch == generator.best_epoch_ and math.isclose(report.best_quality, generator.best_quality_)
    assert report.quality.minority_class == "buy"
    assert report.columns == list(train.schema.numeric) + list(train.schema.categorical) + ["label"]
    assert len(report.synthetic) == 300 and len(report.real) == len(train)
    scores = report.scores()
    assert list(scores.columns) == ["all classes", "minority class (buy)", "what good looks like"]
    assert scores.loc["Quality score", "all classes"] == report.quality.score
    assert scores.loc["Detection AUC", "all classes"] == report.quality.overall.detection["auc"]
    efficacy = report.efficacy_table()
    assert list(efficacy.index) == ["trained on real", "trained on synthetic", "trained on both"]
    # the keys the synth CLI writes, strict JSON
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert {"history", "best_epoch", "imputation", "quality"} <= set(payload)
    assert [r["epoch"] for r in payload["history"]] == [1, 2]


def test_without_rows_there_is_no_quality_report(narrow_behavior_train):
    train = narrow_behavior_train
    generator = GaussianCopula(random_state=0).fit(train.frame, train.schema)
    report = describe_fit(generator, None, None, train.schema)
    assert report.quality is None and report.history is None and report.best_epoch is None
    assert report.columns == [] and report.scores().empty and report.efficacy_table().empty
    assert report.imputation_summary().empty and report.imputation_table().empty
    assert report.to_dict()["quality"] is None
