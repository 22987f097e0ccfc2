"""Test-time augmentation: K = 0 is plain evaluation exactly, copies are seeded, bad input is a sentence."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recexp.compare import TTA_ARM, compare
from recexp.data.samples import load_sample
from recexp.errors import InvalidParameterError
from recexp.jobs import execute, validate_spec
from recexp.metrics import classification_metrics
from recexp.models import MODELS, TrainConfig, evaluate, train
from recexp.runs import SQLiteRunStore
from recexp.spec import RunSpec, prepare_data
from recexp.tasks import build_dataset, split_dataset
from recexp.tta import TTA_OPERATORS, check_applies, tta_operator, tta_proba

ROOT = Path(__file__).resolve().parents[2]
YEAST = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                model="logreg", train={"epochs": 2, "learning_rate": 0.05, "batch_size": 256, "device": "cpu"})


@pytest.fixture(scope="module")
def yeast():
    """(train, valid, test) of the bundled yeast_me2 table and a logistic regression trained on it."""
    dataset, split = prepare_data(YEAST)
    parts = [dataset.subset(rows) for rows in (split.train, split.valid, split.test)]
    config = TrainConfig.from_dict({**YEAST.train, "seed": 0})
    result = train(MODELS["logreg"](), parts[0], parts[1], config)
    return (*parts, result.module)


@pytest.fixture(scope="module")
def taobao():
    """(train, test) of the bundled Taobao behaviour task (with behaviour histories)."""
    dataset = build_dataset(load_sample("taobao"), "behavior", sequence_length=5)
    split = split_dataset(dataset)
    return dataset.subset(split.train[:3000]), dataset.subset(split.test[:2000])


def test_zero_copies_is_plain_evaluation_exactly(yeast):
    train_set, _, test_set, module = yeast
    _, plain = evaluate(module, test_set)
    tta = tta_proba(module, test_set, tta_operator("gaussian_noise", {"scale": 0.5}), 0, seed=3, reference=train_set)
    assert tta.dtype == plain.dtype and np.array_equal(tta, plain)


def test_copies_are_reproducible_by_seed_and_average_k_plus_one_passes(yeast):
    train_set, _, test_set, module = yeast
    operator = tta_operator("gaussian_noise", {"scale": 0.5})
    passes = []
    handle = module.register_forward_pre_hook(lambda m, args: passes.append(len(args[0])))
    try:
        first = tta_proba(module, test_set, operator, 3, seed=7, reference=train_set)
    finally:
        handle.remove()
    assert passes == [len(test_set)] * 4                             # K + 1 passes over every row
    again = tta_proba(module, test_set, operator, 3, seed=7, reference=train_set)
    other = tta_proba(module, test_set, operator, 3, seed=8, reference=train_set)
    _, plain = evaluate(module, test_set)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other) and not np.allclose(first, plain)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    # The mean of the plain pass and three perturbed copies drawn from the same stream.
    rng = np.random.default_rng([7, 0])
    total = plain.astype(np.float64)
    for _ in range(3):
        values = operator.perturb(test_set, rng, train_set)
        total += evaluate(module, replace(test_set, frame=test_set.frame.assign(**values)))[1]
    np.testing.assert_allclose(first, total / 4, rtol=1e-5, atol=1e-6)


def test_perturbation_takes_its_statistics_from_the_reference_and_never_reads_labels(yeast):
    train_set, _, test_set, _ = yeast
    operator = tta_operator("gaussian_noise", {"scale": 1.0, "clip": True})
    values = operator.perturb(test_set, np.random.default_rng(0), train_set)
    assert set(values) == set(test_set.schema.numeric)
    column = test_set.schema.numeric[0]
    low, high = train_set.frame[column].min(), train_set.frame[column].max()
    assert low <= values[column].min() and values[column].max() <= high   # clipped to the training range
    flipped = replace(test_set, frame=test_set.frame.assign(label=1 - test_set.frame["label"]))
    again = operator.perturb(flipped, np.random.default_rng(0), train_set)
    assert all(np.array_equal(values[c], again[c]) for c in values)


def test_sequence_operators_perturb_only_the_history(taobao):
    train_set, test_set = taobao
    operator = tta_operator("sequence_mask", {"ratio": 0.5})
    check_applies(operator, test_set, {"use_sequence": True})
    values = operator.perturb(test_set, np.random.default_rng(0), train_set)
    sequence_columns = {c for cols in test_set.schema.sequences.values() for c in cols}
    assert set(values) == sequence_columns
    before = np.stack([test_set.frame[c].to_numpy() for c in sorted(sequence_columns)])
    after = np.stack([values[c] for c in sorted(sequence_columns)])
    assert (after != before).any() and ((after == before) | (after == 0)).all()      # masked events become 0


@pytest.mark.parametrize("name, params, copies, needle", [
    ("mixup", {}, 2, "not an operator on single rows"),
    ("smote", {}, 2, "not an operator on single rows"),
    ("blur", {}, 2, "Unknown test-time augmentation 'blur'"),
    ("gaussian_noise", {"factor": 2.0}, 2, "no 'factor'"),
    ("gaussian_noise", {"sigma": 2.0}, 2, "has no parameter(s) ['sigma']"),
    ("gaussian_noise", {"scale": -1.0}, 2, "scale"),
    ("gaussian_noise", {}, -1, "from 0 to 64, but got -1"),
    ("gaussian_noise", {}, 1000, "from 0 to 64"),
])
def test_bad_settings_are_sentences_before_anything_runs(name, params, copies, needle):
    with pytest.raises(InvalidParameterError, match=None) as caught:
        validate_spec(replace(YEAST, tta=name, tta_params=params, tta_copies=copies))
    assert needle in str(caught.value)


def test_an_operator_that_cannot_apply_is_refused_with_a_sentence(yeast, taobao):
    _, _, test_set, _ = yeast
    with pytest.raises(InvalidParameterError, match="behaviour-sequence features, but this dataset has none"):
        check_applies(tta_operator("sequence_crop"), test_set)
    with pytest.raises(InvalidParameterError, match="use_sequence=False"):
        check_applies(tta_operator("sequence_reorder"), taobao[1], {"use_sequence": False})
    assert set(TTA_OPERATORS) == {"gaussian_noise", "feature_masking", "sequence_crop", "sequence_mask",
                                  "sequence_reorder"}


def test_a_run_stores_plain_and_tta_predictions_and_k0_matches_plain(tmp_path):
    store = SQLiteRunStore(tmp_path / "home")
    data = prepare_data(YEAST)
    experiment = store.create_experiment("tta")
    results = {}
    for copies in (0, 3):
        spec = replace(YEAST, strategy="smote", tta="gaussian_noise", tta_copies=copies, tta_params={"scale": 0.3},
                       fingerprint=data[0].fingerprint)
        run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
        plain = execute(spec, store, run.id, data=data)
        results[copies] = (store.get_run(run.id), plain)
    for copies, (run, plain) in results.items():
        tta = run.info["tta"]
        assert tta["forward_passes"] == copies + 1 and tta["operator"] == "gaussian_noise"
        predictions = store.read_table(run.id, "predictions")
        augmented = store.read_table(run.id, "tta_predictions")
        assert list(augmented.columns) == list(predictions.columns)
        scores = classification_metrics(augmented["label"].to_numpy(),
                                        augmented.filter(like="proba_").to_numpy())
        assert tta["metrics"] == pytest.approx({**scores, "test_loss": tta["metrics"]["test_loss"]})
        assert set(tta["metrics"]) <= set(plain)                   # the plain metrics' names
        if copies == 0:
            pd.testing.assert_frame_equal(augmented, predictions)
            pd.testing.assert_frame_equal(store.read_table(run.id, "tta_valid_predictions"),
                                          store.read_table(run.id, "valid_predictions"))
            assert tta["metrics"] == {k: plain[k] for k in tta["metrics"]}
        else:
            assert not augmented.equals(predictions)
    assert (store.artifact_dir(results[3][0].id) / "consistency.json").exists()


def test_compare_shows_the_tta_arm_paired_by_seed(tmp_path):
    store = SQLiteRunStore(tmp_path / "home")
    data = prepare_data(YEAST)
    experiment = store.create_experiment("tta arm")
    for strategy, tta in (("none", None), ("random_over", "gaussian_noise")):
        for seed in (0, 1, 2):
            spec = replace(YEAST, strategy=strategy, seed=seed, tta=tta, tta_copies=2 if tta else 0,
                           tta_params={"scale": 0.3} if tta else {}, fingerprint=data[0].fingerprint)
            run = store.create_run(experiment.id, spec.to_dict(), name=spec.label(), status="running")
            execute(spec, store, run.id, data=data)
    result = compare(store, experiment="tta arm", n_bootstrap=20)
    arm = "random_over" + TTA_ARM
    assert list(dict.fromkeys(result.per_run["group"])) == ["none", "random_over", arm]
    tta_rows = result.per_run[result.per_run["group"] == arm]
    assert sorted(tta_rows["pair"]) == [0, 1, 2]
    plain_rows = result.per_run[result.per_run["group"] == "random_over"]
    assert list(tta_rows["run_id"]) == list(plain_rows["run_id"])     # the same runs, scored with TTA
    for run_id, accuracy in zip(tta_rows["run_id"], tta_rows["accuracy"]):
        assert accuracy == pytest.approx(store.get_run(run_id).info["tta"]["metrics"]["accuracy"])
    assert arm in set(result.summary["group"])
    assert "random_over" in result.verdicts and arm in result.verdicts


def _cli(tmp_path, *arguments):
    return subprocess.run([sys.executable, "-m", "recexp", *arguments], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "RECEXP_HOME": str(tmp_path / "h")})


def test_cli_run_json_has_plain_metrics_and_a_tta_object(tmp_path):
    completed = _cli(tmp_path, "run", "yeast_me2", "--task", "table", "--model", "logreg", "--epochs", "1",
                     "--seeds", "1", "--device", "cpu", "--tta", "feature_masking", "--tta-copies", "2",
                     "--tta-param", "rate=0.2", "--json")
    assert completed.returncode == 0, completed.stderr
    run = json.loads(completed.stdout)["runs"][0]
    assert set(run["tta"]) <= set(run["metrics"]) and {"accuracy", "balanced_accuracy", "f1_macro"} <= set(run["tta"])
    assert run["tta_settings"]["forward_passes"] == 3 and run["tta_settings"]["params"]["rate"] == 0.2


@pytest.mark.parametrize("arguments, needle", [
    (["--tta", "gaussian_noise", "--tta-copies", "-1"], "from 0 to 64, but got -1"),
    (["--tta", "mixup"], "Unknown test-time augmentation 'mixup'"),
    (["--tta", "sequence_crop"], "Test-time augmentation: Sequence crop perturbs behaviour-sequence features"),
    (["--tta-param", "scale=0.1"], "name one with --tta NAME"),
])
def test_cli_bad_tta_input_is_a_sentence(tmp_path, arguments, needle):
    completed = _cli(tmp_path, "run", "yeast_me2", "--task", "table", "--model", "logreg", "--epochs", "1",
                     "--seeds", "1", "--device", "cpu", *arguments)
    assert completed.returncode != 0
    assert needle in completed.stderr and "Traceback" not in completed.stderr
