"""recexp.compare on real runs: 3 strategies x 3 seeds of a logistic regression on the yeast_me2 benchmark.

The runs are made once per session with the real pipeline (recexp.jobs.execute) in their own workspace.
"""

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from recexp.charts.compare import capture_curve, curves, loss_distributions, report_figures, run_colours
from recexp.charts.importance import importance_by_strategy
from recexp.cli import main
from recexp.compare import (Comparison, RunPredictions, capture_at, compare, sample_importance, sample_losses,
                            seed_interval)
from recexp.compare.comparison import _bootstrap_deltas
from recexp.compare.stats import bootstrap_p_value, paired_seed_test
from recexp.errors import InvalidDataError, InvalidParameterError, JobError
from recexp.spec import RunSpec, prepare_data
from recexp.jobs import execute
from recexp.metrics import evaluation_metrics, f1_optimal_threshold
from recexp.runs import Run, SQLiteRunStore

STRATEGIES = ("none", "random_over", "class_weights")
SEEDS = (0, 1, 2)
BASE = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
               model="logreg", train={"epochs": 3, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


def build_experiment(home, name="yeast: 3 strategies x 3 seeds"):
    """Run every strategy x seed in the foreground into the store at ``home``; returns the store."""
    store = SQLiteRunStore(home)
    data = prepare_data(BASE)
    experiment = store.create_experiment(name)
    for strategy in STRATEGIES:
        for seed in SEEDS:
            spec = replace(BASE, strategy=strategy, seed=seed, fingerprint=data[0].fingerprint)
            run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
            execute(spec, store, run.id, data=data)
    return store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    return build_experiment(tmp_path_factory.mktemp("compare_workspace"))


@pytest.fixture(scope="session")
def comparison(store) -> Comparison:
    return compare(store, experiment="yeast: 3 strategies x 3 seeds", n_bootstrap=300)


def test_scores_are_the_metrics_of_the_stored_predictions(store, comparison):
    assert len(comparison.per_run) == 9
    assert comparison.groups == list(STRATEGIES) and comparison.baseline == "none"
    assert comparison.classes == ("-1", "1")
    for item in comparison.predictions:
        stored = store.read_table(item.run.id, "predictions")
        expected = evaluation_metrics(stored["label"].to_numpy(), stored[["proba_-1", "proba_1"]].to_numpy(),
                                      comparison.classes, threshold=0.5)
        row = comparison.per_run.set_index("run_id").loc[item.run.id]
        for key in ("balanced_accuracy", "f1_macro", "roc_auc", "recall[1]", "pr_auc[1]", "log_loss", "mcc"):
            assert row[key] == pytest.approx(expected[key]), key
        # the stored run's own ROC-AUC (computed by the trainer's pipeline) agrees
        assert row["roc_auc"] == pytest.approx(item.run.metrics["roc_auc"])


def test_summary_over_seeds_and_deltas_vs_baseline(comparison):
    summary = comparison.summary.set_index(["group", "metric"])
    runs = comparison.per_run
    for group in STRATEGIES:
        values = runs[runs["group"] == group].sort_values("seed")["balanced_accuracy"].to_numpy()
        cell = summary.loc[(group, "balanced_accuracy")]
        assert cell["n_seeds"] == 3 and cell["mean"] == pytest.approx(values.mean())
        assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
        if group == "none":
            assert math.isnan(cell["delta"]) and math.isnan(cell["p_value"])
            continue
        base = runs[runs["group"] == "none"].sort_values("seed")["balanced_accuracy"].to_numpy()
        assert cell["delta"] == pytest.approx((values - base).mean())
        test = paired_seed_test(values, base)                       # the seed is the unit: a paired t-test
        assert cell["p_value"] == pytest.approx(test.p_value) and cell["n_pairs"] == 3
        assert (cell["delta_low"], cell["delta_high"]) == pytest.approx((test.low, test.high))
        assert 0 < cell["p_rows"] <= 1                              # the row bootstrap, kept apart
        assert cell["adjustment"] == "bh" and cell["p_adjusted"] >= cell["p_value"]   # exploratory: pr_auc[1] is primary
        assert cell["significant"] == (cell["p_adjusted"] < 0.05)
    assert comparison.primary == "pr_auc[1]"
    table = comparison.table(["balanced_accuracy", "recall[1]"])
    assert list(table.index) == ["pr_auc[1] (primary)", "balanced_accuracy", "recall[1]"]
    assert list(table.columns) == ["none", "random_over", "Δ random_over", "class_weights", "Δ class_weights"]
    assert re.fullmatch(r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]( °)? \(p BH \d\.\d{3}, 3 seeds; P\(better\) \d\.\d{2}\)",
                        table.loc["balanced_accuracy", "Δ random_over"])
    assert re.fullmatch(r"[+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]( \*)? \(p Holm \d\.\d{3}, 3 seeds; P\(better\) \d\.\d{2}\)",
                        table.loc["pr_auc[1] (primary)", "Δ random_over"])


def test_balancing_raises_minority_recall_on_real_data(comparison):
    """Oversampling the 1-in-29 class must lift its recall over no strategy: a real effect the page shows."""
    summary = comparison.summary.set_index(["group", "metric"])
    assert summary.loc[("random_over", "recall[1]"), "delta"] > 0
    assert summary.loc[("random_over", "recall[1]"), "mean"] > summary.loc[("none", "recall[1]"), "mean"]


def test_f1_optimal_threshold_is_chosen_on_validation(store, comparison):
    item = comparison.predictions[0]
    valid = store.read_table(item.run.id, "valid_predictions")
    assert not set(valid["row"]) & set(item.rows)                    # validation rows are not test rows
    threshold = f1_optimal_threshold(valid["label"].to_numpy(), valid["proba_1"].to_numpy())
    row = comparison.per_run.set_index("run_id").loc[item.run.id]
    assert row["threshold_tuned"] == pytest.approx(threshold)
    assert row["f1[1]_tuned"] == pytest.approx(skm.f1_score(item.y, item.proba[:, 1] >= threshold))


def test_runs_on_another_test_split_are_refused(store, comparison):
    data = prepare_data(replace(BASE, split={"method": "stratified", "seed": 1}))
    spec = replace(BASE, split={"method": "stratified", "seed": 1}, fingerprint=data[0].fingerprint)
    other = store.create_experiment("other split")
    run = store.create_run(other.id, spec.to_dict(), name="other split", status="running")
    execute(spec, store, run.id, data=data)
    with pytest.raises(InvalidDataError, match="different test splits"):
        compare(store, run_ids=[comparison.predictions[0].run.id, run.id], n_bootstrap=0)


def test_selection_errors_are_sentences(store):
    with pytest.raises(InvalidParameterError, match="experiment or give run ids"):
        compare(store)
    with pytest.raises(JobError, match="no experiment 'nope'"):
        compare(store, experiment="nope")


def test_capture_in_business_terms(comparison):
    positive = np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 0], dtype=bool)
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.05, 0.0, 0.4, 0.6])
    top = capture_at(positive, score, top_fraction=0.3)
    assert (top["selected"], top["captured"], top["positives"]) == (3, 2, 3)
    assert top["captured_per_1000"] == pytest.approx(200) and top["recall"] == pytest.approx(2 / 3)
    assert top["lift"] == pytest.approx((2 / 3) / 0.3)
    users = np.array(["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"])
    by_user = capture_at(positive, score, threshold=0.65, groups=users)
    assert by_user["unit"] == "user" and by_user["scored"] == 5 and by_user["positives"] == 3
    assert (by_user["selected"], by_user["captured"]) == (2, 2)           # a (0.9, buyer) and b (0.7, buyer)
    by_threshold = comparison.capture("1", threshold=0.5)
    for group, expected in zip(STRATEGIES, by_threshold["captured_per_1000"]):
        hits = [1000 * np.sum((p.proba[:, 1] >= 0.5) & (p.y == 1)) / len(p.y) for p in comparison.predictions
                if p.group == group]
        assert expected == pytest.approx(np.mean(hits))
    frame = comparison.capture("1", 0.2)
    assert list(frame["group"]) == list(STRATEGIES)
    assert frame["statement"].str.contains("per 1,000 rows scored").all()


def test_sample_losses_show_real_and_synthetic_rows(store, comparison):
    losses = sample_losses(store, comparison)
    assert set(losses["group"]) == set(STRATEGIES)
    oversampled = losses[losses["group"] == "random_over"]
    assert oversampled["is_synthetic"].any() and (~oversampled["is_synthetic"]).any()
    assert not losses[losses["group"] == "none"]["is_synthetic"].any()
    assert (losses["loss"] >= 0).all()
    sampled = sample_losses(store, comparison, max_rows_per_run=50)
    assert len(sampled) == 9 * 50 and sampled.attrs["total_rows"] == len(losses) > len(sampled)
    assert loss_distributions(sampled).layout.title.text.endswith(f"(450 of {len(losses):,} rows shown)")
    assert "shown" not in loss_distributions(losses).layout.title.text


def test_csv_and_self_contained_html(tmp_path, store, comparison):
    frame = pd.read_csv(pd.io.common.StringIO(comparison.to_csv(tmp_path / "c.csv")))
    assert {"group", "metric", "mean", "ci_low", "ci_high", "delta", "p_value", "p_adjusted", "p_rows",
            "prob_improvement", "effect_size"} <= set(frame.columns)
    assert (tmp_path / "c.csv").exists()
    text = comparison.to_html(tmp_path / "r.html", sample_losses=sample_losses(store, comparison))
    scripts = _script_tags(text)
    assert scripts and not [attrs for attrs in scripts if "src" in attrs]    # nothing loaded from elsewhere
    assert "plotly.js v" in text
    assert text.count('class="plotly-graph-div"') >= 9
    assert "In business terms" in text and "Per-sample training loss" in text
    assert "Verdicts on PR-AUC of 1" in text and "Paired t-test over per-seed differences" in text
    assert "These trained models" in text


def _script_tags(text: str) -> list[dict]:
    from html.parser import HTMLParser

    found = []

    class Scripts(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "script":
                found.append(dict(attrs))

    Scripts().feed(text)
    return found


def test_cli_compare_json_and_html(tmp_path, store, monkeypatch, capsys):
    monkeypatch.setenv("RECEXP_HOME", str(store.home))
    html_path = tmp_path / "report.html"
    code = main(["compare", "--experiment", "yeast: 3 strategies x 3 seeds", "--json", "--bootstrap", "100",
                 "--html", str(html_path)])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert [g["strategy"] for g in payload["groups"]] == list(STRATEGIES)
    assert payload["groups"][1]["seeds"] == [0, 1, 2] and len(payload["groups"][1]["runs"]) == 3
    assert payload["primary"] == "pr_auc[1]" and "per-seed differences" in payload["inference"]
    assert [g["is_aa"] for g in payload["groups"]] == [False, False, False]
    for metric in ("f1_macro", "pr_auc[1]"):
        cell = payload["groups"][1]["metrics"][metric]
        assert {"p_value", "p_adjusted", "prob_improvement", "prob_improvement_low", "prob_improvement_high",
                "significant", "delta", "delta_low", "delta_high", "p_rows"} <= set(cell)
        assert cell["significant"] == (cell["p_adjusted"] is not None and cell["p_adjusted"] < 0.05)
        assert cell["prob_improvement_low"] <= cell["prob_improvement"] <= cell["prob_improvement_high"]
    assert payload["groups"][1]["metrics"]["pr_auc[1]"]["adjustment"] == "holm"
    assert payload["groups"][1]["verdict"].startswith(("No detectable difference", "random_over raises",
                                                       "random_over lowers"))
    assert html_path.stat().st_size > 1_000_000                      # plotly.js is inside
    ids = [r for r in payload["groups"][0]["runs"]] + payload["groups"][2]["runs"]
    assert main(["compare", *ids, "--bootstrap", "0"]) == 0
    assert "class_weights" in capsys.readouterr().out
    assert main(["compare"]) == 2
    assert "Name an experiment" in capsys.readouterr().err


# --- the intervals cover the truth ------------------------------------------------------------------------

def test_seed_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = [low <= 0.7 <= high for low, high in
            (seed_interval(rng.normal(0.7, 0.05, size=3))[1:] for _ in range(4000))]
    assert 0.935 <= np.mean(hits) <= 0.965


def _simulated_pair(rng, n, p_base, p_other, seed=0):
    """Two binary 'runs' on the same n test rows whose accuracies are p_base and p_other in expectation."""
    y = rng.integers(0, 2, n)

    def run(group, p):
        correct = rng.random(n) < p
        predicted = np.where(correct, y, 1 - y)
        proba = np.where(predicted[:, None] == np.arange(2), 0.8, 0.2)
        spec = {"strategy": group, "seed": seed, "model": "logreg"}
        return RunPredictions(Run(f"{group}{seed}", "e", group, spec, "finished", ""), group, ("0", "1"),
                              np.arange(n), y, proba)
    return [run("none", p_base), run("other", p_other)]


def test_paired_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(1)
    covered, rejections = [], []
    for i in range(120):
        predictions = _simulated_pair(rng, 400, 0.75, 0.80)
        deltas = _bootstrap_deltas(predictions, "none", 200, random_state=i)[("other", "accuracy")]
        low, high = np.quantile(deltas, [0.025, 0.975])
        covered.append(low <= 0.05 <= high)
        null = _simulated_pair(rng, 400, 0.75, 0.75)
        rejections.append(bootstrap_p_value(_bootstrap_deltas(null, "none", 200, random_state=i)
                                            [("other", "accuracy")]) < 0.05)
    assert np.mean(covered) >= 0.88                   # nominal 95%; 120 simulations leave about 2% noise
    assert np.mean(rejections) <= 0.12                # about 5% false alarms under no difference


def test_purchase_runs_get_per_user_ranking_scores(tmp_path):
    """On the Taobao purchase task every user's candidate items at an anchor are ranked: HR@K and NDCG@K."""
    from recexp.dataset import TIME, USER
    from recexp.metrics import ranking_metrics

    store = SQLiteRunStore(tmp_path / "purchase")
    base = RunSpec(source={"sample": "taobao"}, task="purchase", model="logreg",
                   train={"epochs": 1, "learning_rate": 0.05, "batch_size": 1024, "device": "cpu"})
    dataset, split = data = prepare_data(base)
    experiment = store.create_experiment("purchase")
    for strategy in ("none", "class_weights"):
        spec = replace(base, strategy=strategy, fingerprint=dataset.fingerprint)
        run = store.create_run(experiment.id, spec.to_dict(), name=strategy, status="running")
        execute(spec, store, run.id, data=data)
    result = compare(store, experiment="purchase", n_bootstrap=50)
    test = dataset.frame.iloc[split.test]
    queries = test[USER].astype(str).to_numpy() + "|" + test[TIME].astype(str).to_numpy()
    buy = list(result.classes).index("buy")
    for item in result.predictions:
        expected = ranking_metrics(item.y == buy, item.proba[:, buy], queries, ks=(5, 10))
        row = result.per_run.set_index("run_id").loc[item.run.id]
        for key, value in expected.items():
            assert row[key] == pytest.approx(value), key
        assert 0 < row["hr@10"] <= 1 and row["hr@5"] <= row["hr@10"]
    statements = result.capture("buy", 0.1)["statement"]
    assert statements.str.contains("buyers per 1,000 users scored").all()


def test_a_run_without_checkpoint_is_compared_without_tuned_scores(tmp_path):
    store = SQLiteRunStore(tmp_path / "no_checkpoint")
    data = prepare_data(BASE)
    experiment = store.create_experiment("lost checkpoint")
    spec = replace(BASE, train={**BASE.train, "epochs": 1}, fingerprint=data[0].fingerprint)
    run = store.create_run(experiment.id, spec.to_dict(), name="none", status="running")
    execute(spec, store, run.id, data=data)
    (store.artifact_dir(run.id) / "model.pt").unlink()
    result = compare(store, experiment="lost checkpoint", n_bootstrap=0)
    assert any("could not be rebuilt" in note and "no model checkpoint" in note for note in result.notes)
    assert "threshold_tuned" not in result.per_run.columns
    stored = store.get_run(run.id).metrics
    assert result.per_run.loc[0, "balanced_accuracy"] == pytest.approx(stored["balanced_accuracy"])


def test_confusion_charts_are_row_normalised_and_the_difference_is_against_the_baseline(comparison):
    from recexp.charts.compare import confusion_difference, confusion_matrices

    matrices = {trace.xaxis: np.asarray(trace.z, dtype=float) for trace in confusion_matrices(comparison).data}
    assert len(matrices) == len(comparison.groups)
    for matrix in matrices.values():
        rows = matrix.sum(axis=1)
        assert np.allclose(rows[np.isfinite(rows)], 1.0)
    differences = confusion_difference(comparison).data
    assert len(differences) == len(comparison.groups) - 1
    by_group = dict(zip(comparison.groups, matrices.values()))
    others = [g for g in comparison.groups if g != comparison.baseline]
    for trace, group in zip(differences, others):
        assert np.allclose(np.asarray(trace.z, dtype=float), by_group[group] - by_group[comparison.baseline],
                           equal_nan=True)
        assert trace.zmin == -trace.zmax


def test_importance_of_the_compared_runs_loads_their_data_once(store, comparison, monkeypatch):
    import recexp.compare.loading

    loads = []
    real = recexp.compare.loading.prepare_data
    monkeypatch.setattr(recexp.compare.loading, "prepare_data", lambda spec: loads.append(spec) or real(spec))
    frame = sample_importance(store, comparison, "el2n")
    assert set(frame["run_id"]) == set(comparison.per_run["run_id"]) and not frame.attrs["notes"]
    assert len(loads) == 1                           # nine runs on one data spec: one load, not nine
    assert sample_importance(store, comparison, "el2n").equals(frame) and len(loads) == 1   # then from the cache
    sampled = sample_importance(store, comparison, "el2n", max_rows_per_run=40)
    assert len(sampled) == 9 * 40 and sampled.attrs["total_rows"] == len(frame)
    assert importance_by_strategy(sampled, "EL2N").layout.title.text.endswith(f"(360 of {len(frame):,} rows shown)")


def test_runs_trained_with_few_optimiser_steps_are_flagged(store, comparison):
    """The yeast runs take 3 epochs of 256-row batches: 15 to 27 optimiser steps, which Compare must say."""
    steps = {}
    for group in STRATEGIES:
        run = next(p.run for p in comparison.predictions if p.group == group)
        rows = run.info["rows"]["train_after_strategy"]
        steps[group] = 3 * math.ceil(rows / 256)
        note = next(n for n in comparison.notes if n.startswith(f"{group}: ") and "optimiser steps" in n)
        assert f"only {steps[group]:,} optimiser steps ({rows:,} training rows in batches of 256, 3 epochs)" in note
    assert steps["none"] < steps["random_over"] < 50      # over-sampling adds rows, hence steps


def test_runs_with_enough_optimiser_steps_get_no_such_note(tmp_path):
    store = SQLiteRunStore(tmp_path / "enough_steps")
    data = prepare_data(BASE)
    experiment = store.create_experiment("enough steps")
    spec = replace(BASE, train={**BASE.train, "epochs": 1, "batch_size": 16}, fingerprint=data[0].fingerprint)
    run = store.create_run(experiment.id, spec.to_dict(), name="none", status="running")
    execute(spec, store, run.id, data=data)
    assert store.get_run(run.id).info["short_training_warning"] is None
    assert not any("optimiser steps" in note for note in compare(store, experiment="enough steps", n_bootstrap=0).notes)


def test_recall_at_a_precision_no_run_reaches_is_said_not_drawn_empty():
    from recexp.charts.compare import recall_at_precision_bars

    frame = pd.DataFrame({"group": ["none", "smote"], "recall": [math.nan, 0.4], "ci_low": [math.nan, 0.3],
                          "ci_high": [math.nan, 0.5], "threshold": [math.nan, 0.7]})
    bar = recall_at_precision_bars(frame, "1", 0.9).data[0]
    assert list(bar.text) == ["no run reaches this precision", ""]
    assert list(bar.y) == [0.0, 0.4]


def test_no_label_is_written_over_the_curves(store, comparison):
    """Every text annotation of the Compare figures (report and page) lies above the plot area (titles of
    panels); the base rate and the top fraction are legend entries, not labels on the lines."""
    run_ids = list(comparison.per_run["run_id"])
    figures = report_figures(comparison, ["balanced_accuracy", "f1_macro"], "1",
                             epoch_metrics=store.epoch_metrics(run_ids), sample_losses=sample_losses(store, comparison))
    assert "Training curves" in figures
    for title, figure in figures.items():
        for note in figure.layout.annotations:
            assert note.yref == "paper" and note.y >= 1 and note.yanchor == "bottom", (title, note.text)
    base_rate = float(np.mean(comparison.predictions[0].y == 1))
    pr = curves(comparison, "1", "pr")
    assert f"base rate {base_rate:.3f} (random ranking)" in {trace.name for trace in pr.data}
    capture = capture_curve(comparison, "1", 0.1)
    assert "acting on the top 10%" in {trace.name for trace in capture.data} and not capture.layout.annotations


def test_a_strategy_has_one_colour_on_every_compare_chart(store, comparison):
    """The colour of a strategy's bars is the colour of its ROC, PR, capture and training lines."""
    figures = report_figures(comparison, ["balanced_accuracy"], "1",
                             epoch_metrics=store.epoch_metrics(list(comparison.per_run["run_id"])))
    bars = {trace.name: trace.marker.color for trace in figures["Scores with 95% intervals"].data}
    assert set(bars) == set(STRATEGIES) and len(set(bars.values())) == len(STRATEGIES)
    for title in ("ROC curves (1)", "Precision-recall curves (1)", "Capture of '1'"):
        lines = {trace.name: trace.line.color for trace in figures[title].data if trace.name in bars}
        assert lines == bars, title
    group_of = {item.run.id: item.group for item in comparison.predictions}
    assert run_colours(comparison) == {run_id: bars[group] for run_id, group in group_of.items()}
    labels = {item.label: item.group for item in comparison.predictions}
    training = [trace for trace in figures["Training curves"].data if trace.showlegend]
    assert len(training) == 9 and all(trace.line.color == bars[labels[trace.name]] for trace in training)
