"""The training loop: device choice, seeding, losses, weights, early stopping, per-sample statistics."""

import dataclasses
import random

import numpy as np
import pytest
import torch

from recexp.dataset import IS_SYNTHETIC, SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidParameterError
from recexp.metrics import classification_metrics
from recexp.models import MLP, LogisticRegression, TrainConfig, evaluate, predict_proba, resolve_device, train
from recexp.models.trainer import EPOCH_METRICS, carve_validation

QUICK = TrainConfig(epochs=2, batch_size=256, learning_rate=5e-3, patience=None)


def _parts(behavior_data):
    dataset, split = behavior_data
    return dataset.subset(split.train), dataset.subset(split.valid), dataset.subset(split.test)


def _with_columns(dataset: Dataset, **columns) -> Dataset:
    frame = dataset.frame.copy()
    for name, values in columns.items():
        frame[name] = values
    return dataclasses.replace(dataset, frame=frame)


def test_device_resolution():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device().type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InvalidParameterError, match="must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameterError, match="no usable CUDA GPU"):
            resolve_device("cuda")


def test_config_rejects_bad_settings():
    for bad in ({"epochs": 0}, {"batch_size": 1.5}, {"learning_rate": -1.0}, {"loss": "hinge"},
                {"patience": 0}, {"monitor": "auc"}, {"valid_fraction": 1.0}, {"mixed_precision": "yes"}):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            dataclasses.replace(TrainConfig(), **bad).validate()
    with pytest.raises(InvalidParameterError, match="Unknown training setting"):
        TrainConfig.from_dict({"epochz": 3})


def test_same_seed_same_numbers_and_another_seed_differs(behavior_data):
    train_set, valid_set, test_set = _parts(behavior_data)
    runs = [train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, seed=seed)) for seed in (7, 7, 8)]
    a, b, c = (predict_proba(r.module, test_set) for r in runs)
    np.testing.assert_array_equal(a, b)
    assert np.array_equal(runs[0].history["train_loss"], runs[1].history["train_loss"])
    assert not np.allclose(a, c)


def test_history_callback_and_device(behavior_data):
    train_set, valid_set, _ = _parts(behavior_data)
    seen = []
    result = train(LogisticRegression(), train_set, valid_set, QUICK, callback=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == [1, 2]
    assert set(seen[0][1]) == set(EPOCH_METRICS)
    assert list(result.history.columns) == ["epoch", *EPOCH_METRICS]
    assert result.device.startswith(resolve_device().type)
    assert result.train_rows == len(train_set) and result.valid_rows == len(valid_set)
    assert result.samples_per_second > 0 and not result.module.training


def test_per_sample_statistics_cover_every_row_every_epoch(behavior_data):
    train_set, valid_set, _ = _parts(behavior_data)
    synthetic = np.zeros(len(train_set), dtype=bool)
    synthetic[::10] = True
    train_set = _with_columns(train_set, **{IS_SYNTHETIC: synthetic})
    result = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, epochs=3))
    stats = result.sample_stats
    assert len(stats) == 3 * len(train_set)
    assert (stats.groupby("epoch")["row"].nunique() == len(train_set)).all()
    first = stats[stats["epoch"] == 1].sort_values("row")
    np.testing.assert_array_equal(first["is_synthetic"].to_numpy(), synthetic)
    np.testing.assert_array_equal(first["label"].to_numpy(), train_set.y)
    assert (stats["loss"] >= 0).all() and stats["loss"].notna().all()
    # Unweighted cross-entropy: the rows' mean loss in an epoch is the epoch's training loss.
    per_epoch = stats.groupby("epoch")["loss"].mean().to_numpy()
    np.testing.assert_allclose(per_epoch, result.history["train_loss"].to_numpy(), rtol=1e-4)
    per_epoch_acc = stats.groupby("epoch")["correct"].mean().to_numpy()
    np.testing.assert_allclose(per_epoch_acc, result.history["train_accuracy"].to_numpy(), rtol=1e-6)


def test_weighted_loss_recovers_minority_classes(behavior_data):
    train_set, valid_set, test_set = _parts(behavior_data)
    scores = {}
    for loss in ("cross_entropy", "weighted", "focal"):
        result = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, epochs=3, loss=loss))
        scores[loss] = classification_metrics(test_set.y, predict_proba(result.module, test_set))
    assert scores["weighted"]["balanced_accuracy"] > scores["cross_entropy"]["balanced_accuracy"] + 0.05
    assert np.isfinite(scores["focal"]["log_loss"])


def test_sample_weights_steer_the_model(behavior_data):
    train_set, valid_set, test_set = _parts(behavior_data)
    buy = train_set.y == 3
    predicted_buys = []
    for weight_on_buy in (1.0, 30.0):
        weighted = _with_columns(train_set, **{SAMPLE_WEIGHT: np.where(buy, weight_on_buy, 1.0).astype("float32")})
        result = train(MLP(), weighted, valid_set, dataclasses.replace(QUICK, epochs=3))
        predicted_buys.append(int((predict_proba(result.module, test_set).argmax(axis=1) == 3).sum()))
    assert predicted_buys[1] > predicted_buys[0] + 10, predicted_buys


def test_early_stopping_restores_the_best_epoch(behavior_data):
    train_set, valid_set, _ = _parts(behavior_data)
    config = TrainConfig(epochs=40, batch_size=128, learning_rate=0.03, patience=2, record_sample_stats=False)
    result = train(MLP(hidden_dim=256, dropout=0.0), train_set, valid_set, config)
    history = result.history
    assert result.stopped_early and len(history) < 40
    assert len(history) == result.best_epoch + 2
    assert result.best_epoch == int(history.loc[history["valid_loss"].idxmin(), "epoch"])
    loss, _ = evaluate(result.module, valid_set)
    assert loss == pytest.approx(history["valid_loss"].min(), rel=1e-5)


def test_validation_is_carved_from_real_training_rows_when_not_given(behavior_data):
    train_set, _, _ = _parts(behavior_data)
    synthetic = np.zeros(len(train_set), dtype=bool)
    synthetic[: len(train_set) // 2] = True
    marked = _with_columns(train_set, **{IS_SYNTHETIC: synthetic})
    kept, valid = carve_validation(marked, 0.2, seed=0)
    assert len(kept) + len(valid) == len(marked)
    assert not valid.frame[IS_SYNTHETIC].any()
    assert len(valid) == pytest.approx(0.2 * (~synthetic).sum(), abs=4)
    assert set(valid.y) == set(train_set.y)                                   # stratified: every class
    result = train(LogisticRegression(), marked, None, dataclasses.replace(QUICK, epochs=1, valid_fraction=0.2))
    assert result.valid_rows == len(valid) and result.train_rows == len(kept)


def test_short_training_warning_counts_optimiser_steps_and_suggests_a_batch_size_that_gives_enough():
    config = TrainConfig(epochs=10, batch_size=512)
    assert config.short_training_warning(57_676) is None                        # 1,130 steps
    text = config.short_training_warning(144)                                   # the Criteo sample: 10 steps
    assert "only 10 optimiser steps" in text and "144 training rows" in text
    suggested = int(text.split("(e.g. ")[1].split(")")[0])
    assert TrainConfig(epochs=10, batch_size=suggested).short_training_warning(144) is None
    assert TrainConfig(epochs=1, batch_size=1).short_training_warning(10) is not None   # 10 rows cannot give 50


def test_mixed_precision_is_for_training_steps_only(behavior_data, simulated_cuda_autocast, forward_passes):
    """Validation and predictions are float32 even when the training steps run under bf16 autocast."""
    train_set, valid_set, test_set = _parts(behavior_data)
    result = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, mixed_precision=True))
    seen = forward_passes
    assert {autocast for training, autocast in seen if training} == {True}        # the training steps
    assert {autocast for training, autocast in seen if not training} == {False}   # validation, every epoch
    seen.clear()
    _, proba = evaluate(result.module, test_set)
    assert seen and not any(autocast for _, autocast in seen)
    assert proba.dtype == np.float32
    assert len(np.unique(proba[:, 0])) > 0.9 * len(test_set)        # no bf16 ties among the scores


def test_training_leaves_the_global_random_state_alone_and_one_seed_gives_one_model(behavior_data):
    train_set, valid_set, test_set = _parts(behavior_data)
    config = dataclasses.replace(QUICK, seed=3)
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    first = train(MLP(dropout=0.3), train_set, valid_set, config)
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))
    assert torch.equal(torch.get_rng_state(), torch_state)
    torch.manual_seed(12345)                                            # another global state: same model
    np.random.seed(54321)
    second = train(MLP(dropout=0.3), train_set, valid_set, config)
    np.testing.assert_array_equal(predict_proba(first.module, test_set), predict_proba(second.module, test_set))
    timings = ["epoch_seconds", "samples_per_second"]
    assert first.history.drop(columns=timings).equals(second.history.drop(columns=timings))


def test_history_records_plain_cross_entropy_beside_a_weighted_focal_objective(behavior_data):
    """``train_cross_entropy`` is the unweighted cross-entropy of the rows (the loss ``valid_loss`` is), while
    ``train_loss`` is the objective trained on."""
    train_set, valid_set, _ = _parts(behavior_data)
    result = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, epochs=3, loss="focal"))
    history, stats = result.history, result.sample_stats
    per_epoch = stats.groupby("epoch")["loss"].mean().to_numpy()          # per-row cross-entropy
    np.testing.assert_allclose(history["train_cross_entropy"].to_numpy(), per_epoch, rtol=1e-4)
    assert (history["train_loss"] < 0.8 * history["train_cross_entropy"]).all()   # focal down-weights easy rows
    weighted = train(MLP(), train_set, valid_set, dataclasses.replace(QUICK, loss="weighted"))
    per_epoch = weighted.sample_stats.groupby("epoch")["loss"].mean().to_numpy()
    np.testing.assert_allclose(weighted.history["train_cross_entropy"].to_numpy(), per_epoch, rtol=1e-4)
    assert not np.allclose(weighted.history["train_loss"], weighted.history["train_cross_entropy"], rtol=0.05)
