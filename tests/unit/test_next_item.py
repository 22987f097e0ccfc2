"""The next-item task: leave-last-out and last-buy splits that leak nothing, full-catalogue ranking metrics
against a numpy reference, the two ranking models, the sampled softmax, and which strategies / models apply."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recexp.data.samples import load_sample
from recexp.dataset import ITEM, TIME, USER
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.jobs import validate_spec
from recexp.metrics import next_item_metrics, next_item_row_scores, popularity_percentile
from recexp.models import MODELS, SASRec, TrainConfig, TwoTower, load_checkpoint, models_for, rank_items, save_checkpoint, train
from recexp.models.trainer import negative_proposal, per_sample_loss
from recexp.spec import RunSpec
from recexp.strategies import strategies_for
from recexp.tasks import HOLDOUT, SplitSpec, build_dataset, split_dataset

LOO = SplitSpec(method="leave_last_out")


@pytest.fixture(scope="module")
def small_log():
    """The events of the Taobao sample's first 60 users (about 6,800 events), as loaded."""
    log = load_sample("taobao")
    users = log.frame["user_id"].drop_duplicates().iloc[:60]
    frame = log.frame[log.frame["user_id"].isin(users)].reset_index(drop=True)
    frame["user_id"] = frame["user_id"].cat.remove_unused_categories()
    return replace(log, frame=frame, fingerprint="small-taobao")


@pytest.fixture(scope="module")
def built(small_log):
    dataset = build_dataset(small_log, "next_item", split=LOO, sequence_length=5, max_vocab=100_000)
    return dataset, split_dataset(dataset, LOO)


def _events(log) -> pd.DataFrame:
    """The log's events in the task's order: by user, then time (stable), with their position per user."""
    frame = log.frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame = frame.iloc[np.argsort(frame["user_id"].cat.codes.to_numpy(), kind="stable")]
    return frame


def test_leave_last_out_holds_out_each_users_last_event_and_the_one_before(small_log, built):
    dataset, split = built
    frame = dataset.frame
    last = _events(small_log).groupby("user_id", observed=True).tail(1)
    test = frame.iloc[split.test]
    assert len(test) == test[USER].nunique() == len(last)          # every user has >= 4 events in the sample
    expected = last.set_index("user_id")[["item_id", "timestamp"]]
    got = test.set_index(USER)[[ITEM, TIME]]
    assert (got[ITEM].astype(str) == expected.loc[got.index, "item_id"].astype(str)).all()
    assert (got[TIME] == expected.loc[got.index, "timestamp"]).all()
    valid = frame.iloc[split.valid]
    assert set(valid[USER]) == set(test[USER])
    for user, rows in frame.groupby(USER, observed=True):            # train < valid < test in time, per user
        parts = rows[HOLDOUT].to_numpy()
        times = rows[TIME].to_numpy()
        assert times[parts == 0].max() <= times[parts == 1].min() <= times[parts == 2].min(), user
    assert np.isin(split.train, np.flatnonzero(frame[HOLDOUT] == 0)).all()


def test_no_leakage_changing_every_test_target_changes_no_feature_and_no_training_row(small_log, built):
    """Rebuild from a log whose held-out targets are replaced by an unseen item: only test labels move."""
    dataset, split = built
    events = small_log.frame
    order = _events(small_log).index
    last = pd.Series(order).groupby(events.loc[order, "user_id"].to_numpy(), observed=True).last().to_numpy()
    probed = events.copy()
    probed["item_id"] = probed["item_id"].cat.add_categories(["LEAK"])
    probed.loc[last, "item_id"] = "LEAK"
    rebuilt = build_dataset(replace(small_log, frame=probed, fingerprint="probe"), "next_item", split=LOO,
                            sequence_length=5, max_vocab=100_000)
    features = list(dataset.schema.feature_columns)
    pd.testing.assert_frame_equal(rebuilt.frame[features], dataset.frame[features])
    assert rebuilt.schema.vocabulary == dataset.schema.vocabulary        # test targets never enter a vocabulary
    keep = np.setdiff1d(np.arange(len(dataset)), split.test)
    assert (rebuilt.y[keep] == dataset.y[keep]).all()
    assert (rebuilt.y[split.test] == 0).all()                            # an unseen item: a miss, code 0


def test_no_leakage_rebuilding_from_a_truncated_log_keeps_every_earlier_row(small_log, built):
    """Drop each user's last event: the rows that remain have the same history and target, as item ids."""
    dataset, split = built
    order = _events(small_log).index
    users = small_log.frame.loc[order, "user_id"].to_numpy()
    last = pd.Series(order).groupby(users, observed=True).last().to_numpy()
    truncated = replace(small_log, frame=small_log.frame.drop(index=last).reset_index(drop=True), fingerprint="cut")
    rebuilt = build_dataset(truncated, "next_item", split=LOO, sequence_length=5, max_vocab=100_000)
    assert len(rebuilt) == len(dataset) - len(split.test)

    def decoded(ds, rows):
        columns = ds.schema.sequences["hist_item"]
        ids = np.column_stack([ds.schema.decode(c, ds.frame[c].to_numpy()[rows]) for c in columns])
        return ids, ds.frame[ITEM].astype(str).to_numpy()[rows]

    old_ids, old_items = decoded(dataset, np.setdiff1d(np.arange(len(dataset)), split.test))
    new_ids, new_items = decoded(rebuilt, np.arange(len(rebuilt)))
    assert (old_items == new_items).all()
    comparable = (old_ids != "rare/missing") & (new_ids != "rare/missing")
    assert comparable.mean() > 0.5 and (old_ids[comparable] == new_ids[comparable]).all()
    # the held-out part moved one event back: the new test targets are old validation targets (a user left with
    # fewer than three events with history trains only)
    old_valid = set(zip(dataset.frame[USER].iloc[split.valid], dataset.frame[TIME].iloc[split.valid]))
    new_test = rebuilt.frame[rebuilt.frame[HOLDOUT] == 2]
    assert len(split.valid) - 3 <= len(new_test) and set(zip(new_test[USER], new_test[TIME])) <= old_valid


def test_last_buy_holds_out_each_buyers_last_buy_and_drops_what_follows(small_log):
    dataset = build_dataset(small_log, "next_item", split=LOO, sequence_length=5, target="buy", max_vocab=100_000)
    split = split_dataset(dataset, LOO)
    events = _events(small_log)
    buys = events[events["behavior"] == "buy"]
    last_buy = buys.groupby("user_id", observed=True)["timestamp"].max()
    test = dataset.frame.iloc[split.test].set_index(USER)
    assert 0 < len(test) <= len(last_buy)
    assert (test[TIME] == last_buy.loc[test.index]).all()
    after = dataset.frame[dataset.frame[USER].isin(test.index)]
    assert (after[TIME].to_numpy() <= last_buy.loc[after[USER]].to_numpy()).all()     # nothing after the buy
    with pytest.raises(InvalidParameterError, match="leave-last-out"):
        build_dataset(small_log, "next_item", split=SplitSpec(method="temporal"), target="buy")


def test_temporal_cut_and_refused_methods(small_log):
    spec = SplitSpec(method="temporal", test_size=0.2)
    dataset = build_dataset(small_log, "next_item", split=spec, sequence_length=5)
    split = split_dataset(dataset, spec)
    times = dataset.frame[TIME]
    assert times.iloc[split.train].max() < times.iloc[split.test].min()
    with pytest.raises(InvalidParameterError, match="does not fit the 'next_item' task"):
        split_dataset(dataset, SplitSpec(method="stratified"))


# --- metrics ---------------------------------------------------------------------------------------------

def _reference(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float, float]:
    """HR@k, NDCG@k and MRR by sorting every row's item scores (items 1..K-1; label 0 is a miss)."""
    hr = ndcg = mrr = 0.0
    for row, label in zip(scores, labels):
        if label == 0:
            continue
        order = np.argsort(-row[1:], kind="stable") + 1
        rank = int(np.flatnonzero(order == label)[0]) + 1
        hr += rank <= k
        ndcg += 1 / math.log2(rank + 1) if rank <= k else 0.0
        mrr += 1 / rank
    return hr / len(labels), ndcg / len(labels), mrr / len(labels)


class _Fixed(nn.Module):
    """A 'model' whose logits are a fixed table indexed by the row's first history code."""

    def __init__(self, table: np.ndarray):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, numeric, categorical, sequence):
        return self.table[sequence[:, 0, 0]]


def test_ranking_metrics_equal_a_numpy_reference_over_the_full_item_set(built):
    dataset, split = built
    test = dataset.subset(split.test)
    rng = np.random.default_rng(0)
    n_classes = dataset.schema.n_classes
    table = rng.normal(size=(n_classes, n_classes)).astype(np.float32)     # distinct scores: no ties
    loss, ranks, top = rank_items(_Fixed(table), test, top_k=20)
    scores = table[test.frame["hist_item_0"].to_numpy(np.int64)]
    popularity = popularity_percentile(dataset.y[split.train], n_classes)
    metrics = next_item_metrics(ranks, top, popularity)
    for k in (5, 10, 20):
        hr, ndcg, mrr = _reference(scores, test.y, k)
        assert metrics[f"hr@{k}"] == pytest.approx(hr) and metrics[f"ndcg@{k}"] == pytest.approx(ndcg)
    assert metrics["mrr"] == pytest.approx(mrr)
    expected_top = np.argsort(-scores[:, 1:], axis=1)[:, :10] + 1
    assert (top[:, :10] == expected_top).all()
    assert metrics["coverage@10"] == pytest.approx(len(np.unique(expected_top)) / (n_classes - 1))
    assert metrics["popularity@10"] == pytest.approx(popularity[expected_top].mean())
    assert np.isinf(ranks[test.y == 0]).all()
    ce = -np.log(np.exp(scores - scores.max(1, keepdims=True)) / np.exp(scores - scores.max(1, keepdims=True))
                 .sum(1, keepdims=True))[np.arange(len(scores)), test.y]
    assert loss == pytest.approx(ce.mean(), rel=1e-4)


def test_hand_computed_scores_and_pessimistic_ties():
    scores = next_item_row_scores(np.array([1.0, 2.0, 11.0, np.inf]), ks=(10,))
    assert scores["hr@10"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert scores["ndcg@10"].tolist() == pytest.approx([1.0, 1 / math.log2(3), 0.0, 0.0])
    assert scores["mrr"].tolist() == pytest.approx([1.0, 0.5, 1 / 11, 0.0])
    constant = _Fixed(np.zeros((4, 4), dtype=np.float32))         # every item tied: the target ranks last
    from recexp.models.base import Inputs, TensorData
    data = TensorData(Inputs(torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.long), torch.ones(2, 1, 1, dtype=torch.long)),
                      torch.tensor([1, 3]), torch.ones(2), torch.zeros(2, dtype=torch.bool))
    _, ranks, _ = rank_items(constant, data)
    assert ranks.tolist() == [3.0, 3.0]
    assert popularity_percentile(np.array([1, 1, 2, 0]), 4).tolist()[1:] == pytest.approx([1.0, 2 / 3, 1 / 3])


def test_sampled_softmax_matches_its_definition():
    torch.manual_seed(0)
    logits = torch.randn(3, 6)
    labels = torch.tensor([1, 2, 5])
    proposal = negative_proposal(torch.bincount(torch.tensor([1, 1, 1, 2, 5, 5, 5, 5]), minlength=6), "popularity_sampled")
    assert proposal[0] == 0 and proposal.sum().item() == pytest.approx(1.0)
    log_q = torch.log(proposal.clamp_min(1e-30))
    negatives = torch.tensor([3, 2, 4])
    objective, ce = per_sample_loss(logits, labels, "popularity_sampled", 0.0, None, negatives, log_q)
    for row in range(3):
        target = logits[row, labels[row]] - log_q[labels[row]]
        others = [logits[row, j] - log_q[j] for j in negatives.tolist() if j != labels[row]]
        expected = -target + torch.logsumexp(torch.stack([target, *others]), dim=0)
        assert objective[row].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(ce, nn.functional.cross_entropy(logits, labels, reduction="none"))


# --- models ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [TwoTower(embedding_dim=16, hidden_dim=16), SASRec(embedding_dim=16, n_layers=1)])
def test_ranking_models_train_and_round_trip_a_checkpoint(model, built, tmp_path):
    dataset, split = built
    config = TrainConfig(epochs=2, batch_size=256, kept_states=0, patience=None, loss="sampled_softmax", negatives=50)
    result = train(model, dataset.subset(split.train), dataset.subset(split.valid), config)
    assert result.history["train_loss"].is_monotonic_decreasing
    assert np.isfinite(result.history["valid_loss"]).all()
    test = dataset.subset(split.test)
    _, ranks, top = rank_items(result.module, test)
    assert top.shape == (len(test), 20) and (top > 0).all()
    path = save_checkpoint(tmp_path / "m.pt", model, result.module, result.input_spec)
    _, module, _ = load_checkpoint(path)
    assert np.array_equal(rank_items(module, test)[1], ranks)


def test_sasrec_rejects_heads_that_do_not_divide_the_width(built):
    dataset, split = built
    with pytest.raises(InvalidParameterError, match="n_heads"):
        SASRec(embedding_dim=10, n_heads=3).build(dataset.subset(split.train))


# --- what is offered for the task --------------------------------------------------------------------------

def test_only_the_ranking_models_and_strategies_are_offered_for_next_item():
    assert sorted(models_for("next_item")) == ["sasrec", "two_tower"]
    assert "sasrec" not in models_for("behavior") and "mlp" in models_for("behavior")
    assert set(strategies_for("next_item")) == {"none", "sequence_crop", "sequence_mask", "sequence_reorder",
                                                "popularity_negatives", "long_tail_weighting"}
    assert "popularity_negatives" not in strategies_for("purchase")
    base = RunSpec(source={"sample": "taobao"}, task="next_item", model="two_tower")
    validate_spec(base)
    with pytest.raises(InvalidParameterError, match="model 'mlp' does not apply to the 'next_item' task"):
        validate_spec(replace(base, model="mlp"))
    with pytest.raises(InvalidParameterError, match="strategy 'smote' does not apply.*long_tail_weighting"):
        validate_spec(replace(base, strategy="smote"))
    with pytest.raises(InvalidParameterError, match="does not apply to the 'behavior' task"):
        validate_spec(replace(base, task="behavior"))
    assert MODELS["two_tower"].task_kinds == ("ranking",)


def test_ranking_strategies_change_the_loss_or_the_weights(built):
    dataset, split = built
    train_set = dataset.subset(split.train)
    result = strategies_for("next_item")["popularity_negatives"](negatives=30).apply(train_set, seed=0)
    assert result.train_overrides() == {"loss": "popularity_sampled", "negatives": 30}
    weighted = strategies_for("next_item")["long_tail_weighting"](alpha=1.0).apply(train_set, seed=0).dataset
    weights = weighted.frame["sample_weight"].to_numpy()
    counts = np.bincount(train_set.y)[train_set.y]
    assert weights.mean() == pytest.approx(1.0)
    assert np.allclose(weights * counts, (weights * counts)[0])          # 1 / count, up to the scale
    crop = strategies_for("next_item")["sequence_crop"]().apply(train_set, seed=0).dataset
    assert len(crop) > len(train_set) and (crop.y[len(train_set):] > -1).all()


def test_a_log_without_buys_cannot_hold_out_a_last_buy(small_log):
    frame = small_log.frame[small_log.frame["behavior"] != "buy"].reset_index(drop=True)
    with pytest.raises(InvalidDataError, match="no 'buy' events"):
        build_dataset(replace(small_log, frame=frame), "next_item", split=LOO, target="buy")


def test_training_rows_never_target_an_item_outside_the_vocabulary(small_log):
    dataset = build_dataset(small_log, "next_item", split=LOO, sequence_length=5, max_vocab=300)
    split = split_dataset(dataset, LOO)
    assert (dataset.y[split.train] > 0).all() and (dataset.y[split.valid] > 0).all()
    assert (dataset.y[split.test] == 0).any()                  # rare test targets stay: they are misses
