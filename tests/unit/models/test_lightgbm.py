"""LightGBM as a recexp model, on the yeast_me2 benchmark (binary, 3% minority) and the Taobao behaviour task."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from recexp.compare import compare
from recexp.dataset import SAMPLE_WEIGHT
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.jobs import execute
from recexp.metrics import classification_metrics
from recexp.models import (LightGBM, TrainConfig, evaluate, input_spec, load_checkpoint, predict_proba, save_checkpoint,
                           to_tensors, train)
from recexp.models.lightgbm import tree_features
from recexp.runs import FINISHED, RUNNING, SQLiteRunStore
from recexp.spec import RunSpec, prepare_data
from recexp.strategies import STRATEGIES

YEAST = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                model="lightgbm", train={"epochs": 10, "device": "cpu"})
CONFIG = TrainConfig(epochs=10, record_sample_stats=False)


@pytest.fixture(scope="module")
def yeast():
    """(train, valid, test) of yeast_me2: 1,484 rows, 8 numeric features, 51 rows of class '1'."""
    dataset, split = prepare_data(YEAST)
    return dataset.subset(split.train), dataset.subset(split.valid), dataset.subset(split.test)


def _minority_recall(test_set, proba) -> float:
    minority = test_set.y == 1
    return float((proba[minority].argmax(axis=1) == 1).mean())


def test_beats_the_class_prior_on_yeast(yeast):
    train_set, valid_set, test_set = yeast
    result = train(LightGBM(), train_set, valid_set, CONFIG)
    proba = predict_proba(result.module, test_set)
    assert proba.shape == (len(test_set), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    scores = classification_metrics(test_set.y, proba)
    prior = np.bincount(train_set.y, minlength=2) / len(train_set)        # a majority predictor's best probabilities
    baseline = classification_metrics(test_set.y, np.tile(prior, (len(test_set), 1)))
    assert scores["roc_auc"] > 0.8, scores
    assert scores["log_loss"] < baseline["log_loss"] - 0.02, (scores, baseline)


def test_an_epoch_is_a_block_of_rounds_and_the_best_epoch_is_kept(yeast):
    train_set, valid_set, _ = yeast
    seen = []
    config = TrainConfig(epochs=30, patience=3, seed=0)
    result = train(LightGBM(rounds_per_epoch=5), train_set, valid_set, config,
                   callback=lambda epoch, metrics: seen.append((epoch, metrics["valid_loss"])))
    history = result.history
    assert result.stopped_early and len(history) < 30                       # yeast overfits within a few epochs
    assert [epoch for epoch, _ in seen] == list(history["epoch"])
    best = int(history["valid_loss"].idxmin()) + 1
    assert result.best_epoch == best and len(history) == best + 3
    assert result.module.booster.current_iteration() == 5 * best
    # The kept model is the best epoch's: its validation loss is the one history recorded then.
    loss, _ = evaluate(result.module, valid_set)
    assert loss == pytest.approx(history["valid_loss"].iloc[best - 1], rel=1e-5)
    stats = result.sample_stats
    assert len(stats) == len(history) * len(train_set) and set(stats["epoch"]) == set(history["epoch"])
    first = stats[stats["epoch"] == 1]
    assert first["correct"].mean() == pytest.approx(history["train_accuracy"].iloc[0])
    assert stats.groupby("epoch")["loss"].mean().is_monotonic_decreasing    # boosting fits the rows ever closer


def test_a_weighting_strategys_sample_weight_changes_the_fit(yeast):
    train_set, valid_set, test_set = yeast
    weighted = STRATEGIES["class_weights"]().apply(train_set, seed=0).dataset
    assert weighted.frame[SAMPLE_WEIGHT].nunique() == 2
    plain = predict_proba(train(LightGBM(), train_set, valid_set, CONFIG).module, test_set)
    reweighted = predict_proba(train(LightGBM(), weighted, valid_set, CONFIG).module, test_set)
    assert reweighted[:, 1].mean() > 2 * plain[:, 1].mean()                  # minority rows count more


def test_class_weighting_raises_minority_recall(yeast):
    train_set, valid_set, test_set = yeast
    plain = predict_proba(train(LightGBM(), train_set, valid_set, CONFIG).module, test_set)
    balanced = predict_proba(train(LightGBM(class_weight="balanced"), train_set, valid_set, CONFIG).module, test_set)
    assert _minority_recall(test_set, balanced) > _minority_recall(test_set, plain) + 0.2
    # The training setting loss='weighted' is the same weighting.
    weighted_loss = train(LightGBM(), train_set, valid_set, replace(CONFIG, loss="weighted"))
    np.testing.assert_allclose(predict_proba(weighted_loss.module, test_set), balanced, atol=1e-7)


def test_seeds_reproduce_and_differ_only_where_rows_or_features_are_sampled(yeast):
    train_set, valid_set, test_set = yeast

    def proba(seed, **params):
        return predict_proba(train(LightGBM(**params), train_set, valid_set, replace(CONFIG, seed=seed)).module,
                             test_set)

    sampled = {"bagging_fraction": 0.7, "feature_fraction": 0.7}
    np.testing.assert_array_equal(proba(3, **sampled), proba(3, **sampled))
    assert np.abs(proba(3, **sampled) - proba(4, **sampled)).max() > 1e-3
    np.testing.assert_array_equal(proba(3), proba(4))                         # nothing random to seed


def test_focal_loss_is_refused_with_a_sentence(yeast):
    train_set, valid_set, _ = yeast
    with pytest.raises(InvalidParameterError, match="LightGBM has no focal loss"):
        train(LightGBM(), train_set, valid_set, replace(CONFIG, loss="focal"))


def test_an_unfitted_module_says_so(behavior_data):
    dataset, split = behavior_data
    module = LightGBM().build(dataset.subset(split.train[:100]))
    with pytest.raises(InvalidDataError, match="holds no trees"):
        predict_proba(module, dataset.subset(split.test[:10]))


def test_sequence_features_count_history_and_matches_with_the_rows_own_item(behavior_data):
    dataset, split = behavior_data
    data = to_tensors(dataset.subset(split.train[:500]))
    spec = input_spec(dataset.schema)
    numeric, categorical, sequence = data.inputs
    counts, counts_categorical = tree_features(*data.inputs, spec, "counts")
    positions, positions_categorical = tree_features(*data.inputs, spec, "positions")
    none, _ = tree_features(*data.inputs, spec, "none")
    n_numeric, n_categorical = numeric.shape[1], categorical.shape[1]
    assert none.shape[1] == n_numeric + n_categorical
    assert counts_categorical == list(range(n_numeric, n_numeric + n_categorical))
    np.testing.assert_array_equal(counts[:, n_numeric:n_numeric + n_categorical], categorical.numpy())
    # hist_item: length, matches with item; hist_category: length, matches with category;
    # hist_behavior: length, a count per behaviour (4)
    assert counts.shape[1] == none.shape[1] + 2 + 2 + 5
    history = sequence.numpy()
    item_length, item_matches = counts[:, none.shape[1]], counts[:, none.shape[1] + 1]
    np.testing.assert_array_equal(item_length, (history[:, 0] != 0).sum(axis=1))
    own_item = categorical.numpy()[:, :1]
    np.testing.assert_array_equal(item_matches, ((history[:, 0] == own_item) & (history[:, 0] != 0)).sum(axis=1))
    assert item_matches.max() > 0                                             # users do come back to an item
    behaviour_counts = counts[:, -4:]
    np.testing.assert_array_equal(behaviour_counts.sum(axis=1), (history[:, 2] != 0).sum(axis=1))
    assert positions.shape[1] == counts.shape[1] + history.shape[1] * history.shape[2]
    assert len(positions_categorical) == n_categorical + history.shape[1] * history.shape[2]


def test_checkpoint_holds_the_booster_as_a_tensor_and_predicts_the_same(behavior_data, tmp_path):
    dataset, split = behavior_data
    result = train(LightGBM(num_leaves=15), dataset.subset(split.train), dataset.subset(split.valid),
                   TrainConfig(epochs=3, record_sample_stats=False))
    state = result.module.state_dict()
    assert list(state) == ["_extra_state"] and state["_extra_state"].dtype == torch.uint8
    path = save_checkpoint(tmp_path / "model.pt", result.model, result.module, result.input_spec,
                           extra={"classes": list(dataset.schema.classes)})
    payload = torch.load(path, weights_only=True)                             # no pickled objects inside
    assert payload["model"] == "lightgbm" and payload["params"]["num_leaves"] == 15
    model, module, _ = load_checkpoint(path)
    assert model.get_params() == result.model.get_params()
    test_set = dataset.subset(split.test)
    np.testing.assert_array_equal(predict_proba(module, test_set), predict_proba(result.module, test_set))


# --- through the run store, Compare and importance -----------------------------------------------

@pytest.fixture(scope="module")
def yeast_runs(tmp_path_factory):
    """A store with one experiment: LightGBM (rows bagged) after no strategy and after SMOTE, seeds 0-2."""
    store = SQLiteRunStore(tmp_path_factory.mktemp("lightgbm-store"))
    data = prepare_data(YEAST)
    experiment = store.create_experiment("yeast: lightgbm, none vs smote")
    runs = {}
    for strategy in ("none", "smote"):
        for seed in (0, 1, 2):
            spec = replace(YEAST, strategy=strategy, seed=seed, fingerprint=data[0].fingerprint,
                           model_params={"bagging_fraction": 0.8})
            run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status=RUNNING)
            execute(spec, store, run.id, data=data)
            runs[strategy, seed] = run.id
    return store, runs


def test_runs_execute_and_store_what_compare_and_importance_read(yeast_runs):
    store, runs = yeast_runs
    run = store.get_run(runs["smote", 0])
    assert run.status == FINISHED and run.error is None
    assert run.info["short_training_warning"] is None                        # optimiser steps: not a tree's concern
    assert 1 <= run.epochs_done <= run.epochs_total == 10
    predictions = store.read_table(run.id, "predictions")
    assert len(predictions) == run.info["rows"]["test"]
    assert run.metrics["roc_auc"] > 0.8
    stats = store.read_table(run.id, "sample_stats")
    assert len(stats) == run.metrics["epochs_run"] * run.info["rows"]["train_after_strategy"]
    assert stats["is_synthetic"].any()                                       # SMOTE's rows were trained on
    assert torch.load(store.artifact_dir(run.id) / "model.pt", weights_only=True)["model"] == "lightgbm"


def test_compare_reloads_the_boosters_and_pairs_smote_with_none(yeast_runs):
    store, runs = yeast_runs
    stored = {key: store.read_table(run_id, "valid_predictions") for key, run_id in runs.items()}
    comparison = compare(store, experiment="yeast: lightgbm, none vs smote", n_bootstrap=200)
    assert comparison.groups == ["none", "smote"] and len(comparison.per_run) == 6
    assert set(comparison.per_run["model"]) == {"lightgbm"}
    # Compare rebuilt the validation predictions from model.pt: the same numbers the run stored.
    for key, run_id in runs.items():
        rebuilt = store.read_table(run_id, "valid_predictions")
        pd.testing.assert_frame_equal(rebuilt, stored[key].loc[:, list(rebuilt.columns)], atol=1e-6)
    smote = comparison.summary.query("group == 'smote' and metric == 'roc_auc'")
    assert len(smote) == 1 and np.isfinite(smote["delta"].iloc[0])
    assert comparison.per_run.groupby("group")["seed"].nunique().eq(3).all()


def test_compare_pairs_a_torch_model_with_the_tree_reference_on_the_same_split(yeast_runs):
    store, runs = yeast_runs
    data = prepare_data(YEAST)
    experiment = store.create_experiment("yeast: mlp")
    mlp_runs = []
    for seed in (0, 1, 2):
        spec = replace(YEAST, model="mlp", seed=seed, fingerprint=data[0].fingerprint,
                       train={"epochs": 5, "batch_size": 128, "learning_rate": 0.01, "device": "cpu"})
        run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status=RUNNING)
        execute(spec, store, run.id, data=data)
        mlp_runs.append(run.id)
    trees = [runs["none", seed] for seed in (0, 1, 2)]
    comparison = compare(store, run_ids=trees + mlp_runs, baseline="none / lightgbm", n_bootstrap=200)
    assert comparison.groups == ["none / lightgbm", "none / mlp"]
    mlp = comparison.summary.query("group == 'none / mlp' and metric == 'roc_auc'").iloc[0]
    trees_auc = comparison.per_run.query("group == 'none / lightgbm'")["roc_auc"].mean()
    mlp_auc = comparison.per_run.query("group == 'none / mlp'")["roc_auc"].mean()
    assert mlp["delta"] == pytest.approx(mlp_auc - trees_auc, abs=1e-9)      # paired seed by seed on one test split
