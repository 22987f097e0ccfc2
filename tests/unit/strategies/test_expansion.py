"""Sample expansion: each method changes only what it says, the way it says."""

from __future__ import annotations

import numpy as np
import pytest

from recexp.dataset import IS_SYNTHETIC
from recexp.strategies import get_strategy


def _new_and_seeds(result, train):
    frame = result.dataset.frame
    new = np.flatnonzero(frame[IS_SYNTHETIC].to_numpy())
    return frame.iloc[new].reset_index(drop=True), train.frame.iloc[result.source_rows[new]].reset_index(drop=True)


def _history(frame, schema):
    return np.stack([frame[list(cols)].to_numpy() for cols in schema.sequences.values()], axis=1)


def _lengths(history):
    used = (history != 0).any(axis=1)
    return np.where(used.any(axis=1), used.shape[1] - np.argmax(used[:, ::-1], axis=1), 0)


@pytest.fixture(scope="module")
def train(small_train):
    return small_train["behavior"]


def test_gaussian_noise_touches_numeric_features_only_at_the_set_scale(train):
    schema = train.schema
    new, seeds = _new_and_seeds(get_strategy("gaussian_noise", scale=0.2, clip=False).apply(train, seed=0), train)
    others = [c for c in train.frame.columns if c not in schema.numeric]
    assert new[others].equals(seeds[others])
    noise = (new[list(schema.numeric)] - seeds[list(schema.numeric)]).to_numpy(np.float64)
    spread = train.frame[list(schema.numeric)].to_numpy(np.float64).std(axis=0)
    varying = spread > 0
    ratio = noise[:, varying].std(axis=0) / spread[varying]
    assert np.all(np.abs(ratio - 0.2) < 0.03), ratio
    assert np.all(noise[:, ~varying] == 0)
    clipped, _ = _new_and_seeds(get_strategy("gaussian_noise", scale=3.0).apply(train, seed=0), train)
    for column in schema.numeric:
        assert clipped[column].min() >= train.frame[column].min() and clipped[column].max() <= train.frame[column].max()
    copies, seeds = _new_and_seeds(get_strategy("gaussian_noise", scale=0.0).apply(train, seed=0), train)
    assert copies[list(train.frame.columns)].equals(seeds)


def test_feature_masking_rate_and_fill(train):
    schema = train.schema
    new, seeds = _new_and_seeds(get_strategy("feature_masking", rate=1.0, fill="median").apply(train, seed=0), train)
    medians = train.frame[list(schema.numeric)].median()
    assert np.allclose(new[list(schema.numeric)].to_numpy(), np.broadcast_to(medians.to_numpy(), (len(new), len(medians))))
    assert (new[list(schema.categorical)] == 0).all().all()
    assert new[list(schema.sequence_columns)].equals(seeds[list(schema.sequence_columns)])
    new, seeds = _new_and_seeds(get_strategy("feature_masking", rate=0.3, fill="missing").apply(train, seed=0), train)
    masked = new[list(schema.numeric)].isna().to_numpy()
    assert abs(masked.mean() - 0.3) < 0.03
    kept = ~masked
    assert (new[list(schema.numeric)].to_numpy()[kept] == seeds[list(schema.numeric)].to_numpy()[kept]).all()


def test_mixup_blends_towards_a_same_class_partner_and_keeps_the_seed_label(train):
    schema = train.schema
    result = get_strategy("mixup", alpha=0.4).apply(train, seed=0)
    new, seeds = _new_and_seeds(result, train)
    assert (new["label"] == seeds["label"]).all()
    X = train.frame[list(schema.numeric)].to_numpy(np.float64)
    points = new[list(schema.numeric)].to_numpy(np.float64)
    origin = seeds[list(schema.numeric)].to_numpy(np.float64)
    # the seed dominates: each new row is at most half-way to some same-class row
    for i in range(0, len(new), 97):
        partners = X[train.y == seeds["label"][i]]
        offset, direction = points[i] - origin[i], partners - origin[i]
        lam = direction @ offset / np.maximum((direction ** 2).sum(axis=1), 1e-12)
        fits = np.linalg.norm(offset[None] - lam[:, None] * direction, axis=1) < 1e-3 * (1 + np.linalg.norm(direction, axis=1))
        assert np.any(fits & (lam >= -1e-6) & (lam <= 0.5 + 1e-6)), i
    assert new[list(schema.sequence_columns)].equals(seeds[list(schema.sequence_columns)])


def test_sequence_crop_keeps_a_contiguous_window_in_every_group(train):
    ratio = 0.5
    new, seeds = _new_and_seeds(get_strategy("sequence_crop", ratio=ratio).apply(train, seed=0), train)
    after, before = _history(new, train.schema), _history(seeds, train.schema)
    lengths = _lengths(before)
    assert (lengths >= 2).all(), "seeds are rows with at least two past events"
    expected = np.maximum(1, np.floor(ratio * lengths)).astype(int)
    assert (_lengths(after) <= expected).all()
    for i in range(0, len(new), 53):
        keep = expected[i]
        window = after[i, :, :keep]
        starts = [s for s in range(lengths[i] - keep + 1) if np.array_equal(before[i, :, s:s + keep], window)]
        assert starts, i
        assert (after[i, :, keep:] == 0).all()


def test_sequence_mask_hides_events_in_all_groups_at_once(train):
    new, seeds = _new_and_seeds(get_strategy("sequence_mask", ratio=0.5).apply(train, seed=0), train)
    after, before = _history(new, train.schema), _history(seeds, train.schema)
    lengths = _lengths(before)
    hidden = (after == 0).all(axis=1) & (before != 0).any(axis=1)
    assert (hidden.sum(axis=1) <= np.maximum(1, np.floor(0.5 * lengths))).all()
    assert hidden.sum() > 0.4 * np.floor(0.5 * lengths).sum()
    untouched = ~(after == 0).all(axis=1)
    assert (after[np.repeat(untouched[:, None, :], after.shape[1], axis=1)]
            == before[np.repeat(untouched[:, None, :], after.shape[1], axis=1)]).all()


def test_sequence_reorder_permutes_whole_events(train):
    new, seeds = _new_and_seeds(get_strategy("sequence_reorder", ratio=0.6).apply(train, seed=0), train)
    after, before = _history(new, train.schema), _history(seeds, train.schema)
    changed = 0
    for i in range(len(new)):
        events_after = sorted(map(tuple, after[i].T.tolist()))
        events_before = sorted(map(tuple, before[i].T.tolist()))
        assert events_after == events_before, i          # the same (item, category, behaviour) events
        changed += not np.array_equal(after[i], before[i])
    assert changed > 0.3 * len(new)
