"""Attention profile of a DIN run: shares sum to one per view, and non-attention models are refused."""

import numpy as np
import pytest

from recexp.charts.importance import attention_profile_figure
from recexp.data.source import DataSource
from recexp.errors import InvalidParameterError
from recexp.importance import TrainedRun
from recexp.importance.attention import attention_profile, attention_weights


@pytest.fixture(scope="module")
def din(run_store, make_run):
    return TrainedRun.load(run_store, make_run(model="din"))


def test_profile_shares_sum_to_one_by_position_behaviour_and_category(din):
    profile = attention_profile(din, top_categories=3)
    assert list(profile.columns) == ["by", "key", "mean_weight", "share", "positions"]
    assert set(profile["by"]) == {"position", "behavior", "category"}
    assert np.allclose(profile.groupby("by")["share"].sum(), 1.0)
    positions = profile[profile["by"] == "position"]
    assert positions["key"].tolist() == ["0", "1", "2", "3", "4"]          # sequence_length 5, most recent first
    assert set(profile.loc[profile["by"] == "behavior", "key"]) <= {"view", "cart", "fav", "buy"}
    categories = profile[profile["by"] == "category"]
    assert len(categories) == 4 and categories["key"].iloc[-1] == "other"
    log_categories = set(DataSource.from_dict(din.spec.source).load().frame["category_id"].astype(str))
    assert set(categories["key"].iloc[:-1]) <= log_categories               # the log's ids, not internal codes
    # Every row's weights sum to 1 over its history (0 without one): the mean weight is at most 1.
    weights, sequence = attention_weights(din, rows=200, seed=1)
    has_history = (sequence != 0).any(axis=(1, 2))
    assert np.allclose(weights.sum(axis=1), has_history.astype(float), atol=1e-5)
    assert ((profile["mean_weight"] > 0) & (profile["mean_weight"] <= 1)).all()


def test_profile_on_a_subset_of_validation_rows(din):
    profile = attention_profile(din, rows=50, split="valid")
    assert profile.loc[profile["by"] == "position", "positions"].sum() <= 50 * 5
    assert profile.attrs == {"rows": 50, "total_rows": len(din.valid)}
    title = attention_profile_figure(profile).layout.title.text
    assert title == f"Attention over the behaviour sequence (50 of {len(din.valid):,} rows shown)"
    everything = attention_profile(din, split="valid")
    assert "shown" not in attention_profile_figure(everything).layout.title.text


def test_a_model_without_attention_is_refused_with_a_sentence(run_store, plain_run):
    with pytest.raises(InvalidParameterError, match="no attention over the behaviour sequence"):
        attention_profile(TrainedRun.load(run_store, plain_run))
