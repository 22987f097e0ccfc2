"""EL2N, GraNd, TracIn and Data-OOB on the fixture runs: finite values, one per row, the right direction."""

import numpy as np
import pytest
import torch

from recexp.errors import InvalidParameterError
from recexp.importance import TrainedRun, get_method
from recexp.importance.representations import last_layer, last_layer_outputs, residuals
from recexp.models.base import to_tensors


@pytest.fixture(scope="module")
def plain(run_store, plain_run):
    return TrainedRun.load(run_store, plain_run)


def finally_correct(run: TrainedRun) -> np.ndarray:
    return run.matrix("correct")[:, -1] > 0.5


@pytest.mark.parametrize("name", ["el2n", "grand", "tracin", "data_oob"])
def test_values_are_finite_one_per_row_and_lower_for_misclassified_rows(plain, name):
    params = {"n_estimators": 20} if name == "data_oob" else {}
    progress = []
    result = get_method(name, **params).compute(plain, seed=0, progress=lambda f, m: progress.append(f))
    values = result.values["value"].to_numpy()
    assert values.shape == (len(plain.train),) and np.isfinite(values).all()
    assert progress and progress[-1] == 1.0
    if name != "tracin":            # TracIn ranks by help to the validation loss, not by training error
        correct = finally_correct(plain)
        assert values[~correct].mean() < values[correct].mean()


def test_el2n_is_the_early_models_prediction_error(plain):
    epoch = plain.kept_epochs[0]
    values = get_method("el2n").compute(plain).values["value"].to_numpy()
    _, module = plain.model_at(epoch)
    with torch.no_grad():
        data = to_tensors(plain.train)
        proba = torch.softmax(module(*data.inputs), dim=1).numpy()
    onehot = np.eye(proba.shape[1])[plain.labels]
    assert np.allclose(values, -np.linalg.norm(proba - onehot, axis=1), atol=1e-5)


def test_grand_equals_the_autograd_norm_of_the_last_layer_gradient(plain):
    epoch = plain.kept_epochs[1]
    values = get_method("grand", epoch=epoch).compute(plain).values["value"].to_numpy()
    _, module = plain.model_at(epoch)
    layer = last_layer(module)
    data = to_tensors(plain.train.subset(np.arange(5)))
    for row in range(5):
        module.zero_grad()
        logits = module(*data.inputs.take(torch.tensor([row])))
        torch.nn.functional.cross_entropy(logits, data.labels[row:row + 1]).backward()
        norm = torch.sqrt(layer.weight.grad.pow(2).sum() + layer.bias.grad.pow(2).sum()).item()
        assert -values[row] == pytest.approx(norm, rel=1e-4)


def test_an_epoch_that_was_not_kept_is_refused_with_a_sentence(plain):
    for name in ("el2n", "grand"):
        with pytest.raises(InvalidParameterError, match="kept the model only after epoch"):
            get_method(name, epoch=99).compute(plain)


def test_tracin_sums_lr_times_gradient_products_with_the_validation_rows(plain):
    values = get_method("tracin").compute(plain).values["value"].to_numpy()
    # Training on the rows lowers the validation loss overall: the influences sum to a positive number.
    assert values.sum() > 0
    # Recomputed from per-row gradients for a few rows at the first kept state only.
    first = get_method("tracin", checkpoints=1).compute(plain)
    assert first.notes and "first 1 of" in first.notes[0]
    _, module = plain.model_at(plain.kept_epochs[0])
    proba, hidden = last_layer_outputs(module, plain.train)
    valid_proba, valid_hidden = last_layer_outputs(module, plain.valid)

    def gradients(p, h, y):                     # (rows, K * (d + 1)) explicit outer products
        return np.einsum("ik,id->ikd", residuals(p, y), np.hstack([h, np.ones((len(h), 1))])).reshape(len(h), -1)

    validation = gradients(valid_proba, valid_hidden, plain.valid.y.astype(np.int64)).sum(axis=0)
    expected = plain.spec.train["learning_rate"] * gradients(proba[:20], hidden[:20], plain.labels[:20]) @ validation
    assert np.allclose(first.values["value"].to_numpy()[:20], expected)


def test_data_oob_is_seeded_and_groups_copies_with_their_seed_row(run_store, oversampled_run, plain):
    method = get_method("data_oob", n_estimators=10)
    first, again = method.compute(plain, seed=3), method.compute(plain, seed=3)
    assert np.array_equal(first.values["value"], again.values["value"])
    assert not np.array_equal(first.values["value"], method.compute(plain, seed=4).values["value"])
    values = first.values["value"].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    # Over-sampled copies are bagged with their seed row, so they do not vouch for it out of bag.
    oversampled = TrainedRun.load(run_store, oversampled_run)
    oob = get_method("data_oob", n_estimators=20).compute(oversampled).values
    real = oob[~oob["is_synthetic"]].set_index("source_row")["value"]
    copies = oob[oob["is_synthetic"]].groupby("source_row")["value"].mean()
    assert np.allclose(real.loc[copies.index], copies)
