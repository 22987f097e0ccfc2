"""Privacy of generated rows: DP-SGD training within the budget, the membership-inference attack, id policies,
and the sentences for bad privacy input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from recexp.cli import main
from recexp.dataset import IS_SYNTHETIC, ITEM, USER
from recexp.errors import InvalidParameterError
from recexp.strategies import STRATEGIES, get_strategy
from recexp.synthesis import GAN, VAE, GaussianCopula, get_generator, quality_report
from recexp.synthesis.privacy import PrivateTraining
from recexp.synthesis.quality import membership_inference_auc
from recexp.synthesis.report import describe_fit, membership_reading

SMALL_GAN = {"hidden": 32, "noise_dim": 16, "batch_size": 50, "pac": 10}


@pytest.fixture(scope="module")
def private_vae(narrow_behavior_train):
    """A VAE trained for two epochs with epsilon 2 (DP-SGD) on about 400 real rows."""
    train = narrow_behavior_train
    return VAE(epochs=2, batch_size=100, hidden=32, latent_dim=8, eval_every=0, epsilon=2.0,
               random_state=0).fit(train.frame, train.schema)


def test_dp_vae_spends_at_most_the_requested_epsilon(private_vae, narrow_behavior_train):
    dp = private_vae.privacy_
    assert dp["epsilon_requested"] == 2.0
    assert 0.9 * 2.0 <= dp["epsilon"] <= 2.0               # noise calibrated to spend the budget, never more
    assert dp["delta"] == pytest.approx(1 / len(narrow_behavior_train.frame))
    assert dp["noise_multiplier"] > 0 and dp["epochs"] == 2
    assert dp["epsilon_by_epoch"] == sorted(dp["epsilon_by_epoch"]) and dp["epsilon_by_epoch"][-1] == dp["epsilon"]
    assert dp["steps"] == 2 * round(1 / dp["sample_rate"])
    rows = private_vae.sample(conditions={"buy": 30, "view": 20})
    classes = narrow_behavior_train.schema.classes
    assert rows["label"].value_counts().to_dict() == {classes.index("buy"): 30, classes.index("view"): 20}
    assert np.isfinite(rows[list(narrow_behavior_train.schema.numeric)].to_numpy(np.float64)).all()


def test_dp_gan_spends_at_most_the_requested_epsilon_and_keeps_the_last_epoch(narrow_behavior_train):
    train = narrow_behavior_train
    gan = GAN(epochs=2, eval_every=1, epsilon=5.0, random_state=0, **SMALL_GAN).fit(train.frame, train.schema)
    assert 4.5 <= gan.privacy_["epsilon"] <= 5.0
    assert gan.best_epoch_ == 2                           # choosing a checkpoint on real rows would spend privacy
    assert not hasattr(gan.discriminator_, "_module")     # the Opacus wrapper is gone after training
    rows = gan.sample(conditions={"buy": 25})
    assert (rows["label"] == train.schema.classes.index("buy")).all() and len(rows) == 25


def test_without_epsilon_there_is_no_privacy_record(narrow_behavior_train):
    train = narrow_behavior_train
    gan = GAN(epochs=1, eval_every=0, random_state=0, **SMALL_GAN).fit(train.frame, train.schema)
    assert gan.privacy_ is None
    report = describe_fit(gan, None, None, train.schema)
    assert report.epsilon is None and report.to_dict()["epsilon"] is None


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_training_stops_when_the_budget_is_spent():
    """Noise calibrated for one epoch: after that epoch the budget is spent (a second one would exceed it)."""
    module = torch.nn.Linear(3, 1)
    private = PrivateTraining.make(module, torch.optim.SGD(module.parameters(), lr=0.1), n_rows=200, batch_size=20,
                                   epochs=1, epsilon=1.0, delta=None, max_grad_norm=1.0, seed=0)
    assert not private.exhausted()
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    for rows in private.batches():
        loss = private.module(x[rows]).pow(2).sum() / max(len(rows), 1)
        private.optimizer.zero_grad()
        loss.backward()
        private.optimizer.step()
    assert private.exhausted() and 0.9 <= private.spent() <= 1.0
    assert private.summary()["steps"] == 10


# --- membership inference -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def thirds(behavior_train):
    """Three disjoint random thirds of about 3,000 real training rows (the same distribution)."""
    order = np.random.default_rng(0).permutation(len(behavior_train.frame))
    frame = behavior_train.frame
    return [frame.iloc[part].reset_index(drop=True) for part in np.array_split(order, 3)]


def _columns(schema):
    return list(schema.numeric), list(schema.categorical) + ["label"]


def test_membership_inference_is_a_coin_flip_for_independent_rows(thirds, behavior_train):
    members, non_members, independent = thirds
    auc = membership_inference_auc(members, non_members, independent, *_columns(behavior_train.schema))
    assert abs(auc - 0.5) < 0.06


def test_membership_inference_finds_a_generator_that_copies_its_training_rows(thirds, behavior_train):
    members, non_members, _ = thirds
    copied = members.sample(frac=1.0, random_state=1)
    auc = membership_inference_auc(members, non_members, copied, *_columns(behavior_train.schema))
    assert auc > 0.95
    report = quality_report(members, copied, behavior_train.schema, real_test=non_members, efficacy_test=False)
    assert report.membership_inference_auc > 0.95
    assert "recognisable" in membership_reading(report.membership_inference_auc)
    assert "no measurable leak" in membership_reading(0.5)


def test_membership_inference_needs_held_out_rows(thirds, behavior_train):
    members, _, independent = thirds
    report = quality_report(members, independent, behavior_train.schema, efficacy_test=False)
    assert np.isnan(report.membership_inference_auc)
    assert "held-out" in membership_reading(report.membership_inference_auc)


# --- ids ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def copula_results(small_behavior_train, behavior_valid):
    """The copula strategy's output with both id policies."""
    out = {}
    for ids in ("new", "hash"):
        strategy = get_strategy("gaussian_copula", ids=ids).with_holdout(behavior_valid)
        out[ids] = strategy.apply(small_behavior_train, seed=0)
    return out


def test_generated_rows_never_carry_real_ids_by_default(copula_results, small_behavior_train):
    result = copula_results["new"]
    frame = result.dataset.frame
    added = frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    assert added.sum() > 0
    for column in (USER, ITEM):                  # the bundled log's ids are integers: new ids count down from -1
        real = small_behavior_train.frame[column]
        new = frame.loc[added, column].astype(np.int64)
        assert not (set(new) & set(real)) and new.is_unique
        assert sorted(new) == list(range(-int(added.sum()), 0))
        assert frame.loc[~added, column].tolist() == real.tolist()
    assert result.synthesis.ids == "new"
    assert any("new ids" in note for note in result.synthesis.privacy_notes())
    assert 0.0 <= result.synthesis.membership_inference_auc <= 1.0


def test_hashed_ids_are_salted_pseudonyms_of_the_source_rows(copula_results, small_behavior_train):
    result = copula_results["hash"]
    frame = result.dataset.frame
    added = frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    hashed = frame.loc[added, USER].astype(np.int64)
    assert (hashed < 0).all() and hashed.nunique() > 1
    assert not (set(hashed) & set(small_behavior_train.frame[USER]))
    sources = small_behavior_train.frame[USER].to_numpy()[result.source_rows[added]]
    pairs = set(zip(sources, hashed))                         # one pseudonym per real user, one user per pseudonym
    assert len({s for s, _ in pairs}) == len(pairs) == len({h for _, h in pairs})
    assert result.synthesis.ids == "hash"


def test_generator_ids_follow_the_policy(tiny_behavior_train):
    train = tiny_behavior_train
    copula = GaussianCopula(random_state=0).fit(train.frame, train.schema)
    _, sources = copula.sample(5, return_sources=True)
    first, second = copula.synthetic_ids(sources), copula.synthetic_ids(sources)
    assert set(first) == {USER, ITEM}
    assert list(first[USER]) == [-1, -2, -3, -4, -5]                  # integer ids, below every real one
    assert list(second[USER]) == [-6, -7, -8, -9, -10]                # numbered on, never reused
    salted = [GaussianCopula(ids="hash", random_state=0).fit(train.frame, train.schema).synthetic_ids(sources)[USER]
              for _ in range(2)]
    assert list(salted[0]) != list(salted[1])                 # a fresh secret salt every fit


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("params, words", [
    ({"epsilon": 0.0}, "epsilon"), ({"epsilon": -1.0}, "epsilon"), ({"delta": 0.0, "epsilon": 1.0}, "delta"),
    ({"delta": 1.5, "epsilon": 1.0}, "delta"), ({"delta": 0.2, "epsilon": 1.0}, "1 / training rows"),
    ({"epsilon": 1e-9}, "too small a budget"), ({"max_grad_norm": 0.0, "epsilon": 1.0}, "max_grad_norm"),
    ({"ids": "copy"}, "ids"),
])
def test_bad_privacy_parameters_are_sentences(tiny_behavior_train, params, words):
    train = tiny_behavior_train
    with pytest.raises(InvalidParameterError, match=words):
        VAE(epochs=1, batch_size=100, eval_every=0, random_state=0, **params).fit(train.frame, train.schema)


def test_text_ids_become_named_new_ids_or_hex_hashes(tiny_behavior_train):
    train = tiny_behavior_train
    frame = train.frame.assign(**{USER: train.frame[USER].astype(str).map("u{}".format)})
    for ids, pattern in (("new", r"^synthetic-user-\d+$"), ("hash", r"^h-[0-9a-f]{16}$")):
        copula = GaussianCopula(ids=ids, random_state=0).fit(frame, train.schema)
        _, sources = copula.sample(20, return_sources=True)
        made = pd.Series(copula.synthetic_ids(sources)[USER])
        assert made.str.match(pattern).all() and not set(made) & set(frame[USER])


def test_dp_on_a_generator_without_a_neural_network_is_a_sentence(tmp_path, capsys):
    with pytest.raises(InvalidParameterError, match="no neural generator.*differential privacy"):
        GaussianCopula.from_strings({"epsilon": "1"})
    with pytest.raises(InvalidParameterError, match="no neural generator.*differential privacy"):
        STRATEGIES["gaussian_copula"].from_strings({"epsilon": "1"})
    with pytest.raises(InvalidParameterError, match="no neural generator.*differential privacy"):
        get_generator("gaussian_copula", epsilon=1.0)
    code = main(["synth", "yeast_me2", "--task", "table", "--split-param", "method=stratified", "--method",
                 "gaussian_copula", "--param", "epsilon=1", "--report", str(tmp_path / "r.json")])
    assert code == 2 and "differential privacy" in capsys.readouterr().err
    code = main(["apply", "yeast_me2", "--task", "table", "--split-param", "method=stratified", "--strategy",
                 "gaussian_copula", "--param", "delta=0.001", "--out", str(tmp_path / "x.parquet")])
    assert code == 2 and "differential privacy" in capsys.readouterr().err


def test_synth_cli_reports_the_epsilon_spent_and_the_membership_inference_auc(tmp_path, capsys):
    """The CLI contract: ``synth FILE --task T --method gan --param epsilon=E --report PATH``."""
    report = tmp_path / "report.json"
    code = main(["synth", "yeast_me2", "--task", "table", "--split-param", "method=stratified", "--method", "gan",
                 "--param", "epsilon=3", "--param", "epochs=1", "--param", "hidden=32", "--param", "noise_dim=16",
                 "--report", str(report)])
    assert code == 0
    payload = json.loads(report.read_text())
    assert 2.7 <= payload["epsilon"] <= 3.0 and payload["epsilon_requested"] == 3.0
    assert 0.0 <= payload["membership_inference_auc"] <= 1.0
    assert payload["ids"] == "none" and payload["out"] is None          # yeast_me2 has no ids; no --out given
    assert payload["rows"] == payload["training_rows"]
    assert "differential privacy: epsilon" in capsys.readouterr().out
