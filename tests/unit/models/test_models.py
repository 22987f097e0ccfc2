"""Common checks over the model registry, run on the bundled Taobao data."""

import inspect

import numpy as np
import pytest
import torch

from recexp.dataset import FeatureSchema
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.metrics import classification_metrics
from recexp.models import (MODELS, Model, TrainConfig, load_checkpoint, models_for, predict_proba, save_checkpoint,
                           to_tensors, train)
from recexp.params import Bool, Float, Int

FAST = TrainConfig(epochs=3, batch_size=256, learning_rate=5e-3, loss="weighted", patience=None,
                   record_sample_stats=False)


def _bad_values(spec):
    if isinstance(spec, Int):
        yield "three"
        yield 2.5
        if spec.low is not None:
            yield spec.low - 1
        if spec.high is not None:
            yield spec.high + 1
    elif isinstance(spec, Float):
        yield "half"
        yield float("nan")
        if spec.low is not None:
            yield spec.low - 0.5
        if spec.high is not None:
            yield spec.high + (0.0 if spec.high_open else 0.5)
    elif isinstance(spec, Bool):
        yield "yes"
        yield 1


def test_registry_holds_concrete_models_under_their_names():
    assert set(MODELS) == {"logreg", "mlp", "wide_deep", "deepfm", "dcn_v2", "din", "lightgbm", "two_tower", "sasrec"}
    for name, cls in MODELS.items():
        assert cls is not Model and issubclass(cls, Model)
        assert cls.name == name and cls.description


@pytest.mark.parametrize("name", sorted(MODELS))
def test_spec_matches_constructor(name):
    cls = MODELS[name]
    assert set(cls.params) == set(cls.param_names())
    for key, default in cls.defaults().items():
        assert default is not inspect.Parameter.empty, f"{name}.{key} needs a default"
        assert cls.params[key].check(default), f"{name}.{key} default {default!r} violates its own spec"
    described = cls.describe_params()
    assert set(described) == set(cls.params)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_each_parameter_rejects_a_bad_value(name, behavior_data):
    dataset, split = behavior_data
    train_set = dataset.subset(split.train[:200])
    cls = MODELS[name]
    for key, spec in cls.params.items():
        for bad in _bad_values(spec):
            with pytest.raises(InvalidParameterError, match=key):
                cls(**{key: bad}).build(train_set)


@pytest.mark.parametrize("name", sorted(models_for("behavior")))   # the rankers: tests/unit/test_next_item.py
def test_model_beats_majority_baseline_on_balanced_accuracy(name, behavior_data):
    dataset, split = behavior_data
    train_set, valid_set, test_set = (dataset.subset(split.train), dataset.subset(split.valid),
                                      dataset.subset(split.test))
    result = train(MODELS[name](), train_set, valid_set, FAST)
    proba = predict_proba(result.module, test_set)
    assert proba.shape == (len(test_set), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    scores = classification_metrics(test_set.y, proba)
    majority = np.full(len(test_set), np.bincount(train_set.y).argmax())
    baseline = classification_metrics(test_set.y, np.eye(4)[majority])["balanced_accuracy"]
    assert baseline == pytest.approx(0.25)
    assert scores["balanced_accuracy"] > baseline + 0.05, scores
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]


def test_din_returns_attention_weights_over_the_sequence(behavior_data):
    dataset, split = behavior_data
    train_set = dataset.subset(split.train)
    module = MODELS["din"]().build(train_set).eval()
    first_events = np.flatnonzero(dataset.frame["hist_item_0"].to_numpy() == 0)[:100]   # users' first events
    later_events = np.flatnonzero(dataset.frame["hist_item_4"].to_numpy() != 0)[:200]   # full histories
    assert len(first_events) >= 20
    data = to_tensors(dataset.subset(np.concatenate([first_events, later_events])))
    n = len(first_events) + 200
    with torch.no_grad():
        logits, weights = module(*data.inputs, return_attention=True)
    assert logits.shape == (n, 4) and weights.shape == (n, 5)
    has_history = (data.inputs.sequence != 0).any(dim=1)               # (B, L)
    assert torch.all(weights[~has_history] == 0)
    rows_with_history = has_history.any(dim=1)
    assert int(rows_with_history.sum()) == 200
    torch.testing.assert_close(weights[rows_with_history].sum(dim=1),
                               torch.ones(int(rows_with_history.sum())))
    assert torch.all(weights[~rows_with_history] == 0)


def test_din_needs_a_sequence(behavior_data):
    dataset, split = behavior_data
    flat = dataset.subset(split.train[:100])
    flat.schema = FeatureSchema(numeric=dataset.schema.numeric, categorical=dataset.schema.categorical,
                                classes=dataset.schema.classes, cardinality=dataset.schema.cardinality)
    with pytest.raises(InvalidDataError, match="no sequence features"):
        MODELS["din"]().build(flat)
    MODELS["mlp"]().build(flat)                                            # the others work without one


def test_standardisation_is_fitted_on_the_training_rows_only(behavior_data):
    dataset, split = behavior_data
    train_set = dataset.subset(split.train)
    module = MODELS["mlp"]().build(train_set)
    normalizer = module.features.normalizer
    values = train_set.frame.loc[:, list(dataset.schema.numeric)].to_numpy(np.float64)
    values = np.where(np.isnan(values), np.nanmedian(values, axis=0), values)
    np.testing.assert_allclose(normalizer.mean.numpy(), values.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(normalizer.std.numpy(), values.std(axis=0), rtol=1e-4)
    whole = dataset.frame.loc[:, list(dataset.schema.numeric)].to_numpy(np.float64)
    whole = np.where(np.isnan(whole), np.nanmedian(whole, axis=0), whole)
    assert not np.allclose(normalizer.mean.numpy(), whole.mean(axis=0), rtol=1e-3)


def test_missing_numbers_are_imputed_with_the_training_median(behavior_data):
    dataset, split = behavior_data
    train_set = dataset.subset(split.train)
    frame = train_set.frame.copy()
    frame.loc[frame.index[::3], "user_view_count"] = np.nan
    train_set = type(train_set)(frame, train_set.schema, train_set.task, train_set.fingerprint)
    module = MODELS["logreg"]().build(train_set)
    column = list(dataset.schema.numeric).index("user_view_count")
    assert module.normalizer.median[column].item() == pytest.approx(float(np.nanmedian(frame["user_view_count"])))
    proba = predict_proba(module, train_set)
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("name", ["deepfm", "din"])
def test_checkpoint_loads_with_weights_only_and_predicts_the_same(name, behavior_data, tmp_path):
    dataset, split = behavior_data
    result = train(MODELS[name](hidden_dim=32), dataset.subset(split.train), dataset.subset(split.valid),
                   TrainConfig(epochs=1, record_sample_stats=False))
    path = save_checkpoint(tmp_path / "model.pt", result.model, result.module, result.input_spec,
                           extra={"classes": list(dataset.schema.classes)})
    payload = torch.load(path, weights_only=True)                          # no pickled objects inside
    assert payload["model"] == name and payload["params"]["hidden_dim"] == 32
    model, module, extra = load_checkpoint(path)
    assert model.get_params() == result.model.get_params() and extra["classes"][0] == "view"
    test_set = dataset.subset(split.test)
    np.testing.assert_allclose(predict_proba(module, test_set), predict_proba(result.module, test_set), atol=1e-6)


def test_a_junk_checkpoint_is_a_sentence_without_torch_warnings(tmp_path, recwarn):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80junk" * 50)                 # torch read this as "pickle protocol 106" and warned first
    with pytest.raises(InvalidDataError, match="model.pt is damaged or not a recexp checkpoint"):
        load_checkpoint(path)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
