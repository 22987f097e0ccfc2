"""Small real datasets for the generator tests: the bundled samples through recexp's own builders."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recexp.data.samples import load_sample
from recexp.dataset import Dataset
from recexp.strategies import stratified_sample
from recexp.tasks import build_dataset, split_dataset


@pytest.fixture(scope="session")
def behavior_split():
    """The Taobao sample's behaviour task (view/cart/fav/buy) with recexp's default split."""
    dataset = build_dataset(load_sample("taobao"), "behavior")
    return dataset, split_dataset(dataset)


@pytest.fixture(scope="session")
def behavior_train(behavior_split) -> Dataset:
    """About 3,000 training rows of the behaviour task, every class present."""
    dataset, split = behavior_split
    return stratified_sample(dataset.subset(split.train), 3000, min_per_class=60)


@pytest.fixture(scope="session")
def small_behavior_train(behavior_split) -> Dataset:
    """About 1,200 training rows of the behaviour task, every class present."""
    dataset, split = behavior_split
    return stratified_sample(dataset.subset(split.train), 1200, seed=2, min_per_class=40)


@pytest.fixture(scope="session")
def tiny_behavior_train(behavior_split) -> Dataset:
    """About 400 training rows of the behaviour task, every class present (for repeated fits)."""
    dataset, split = behavior_split
    return stratified_sample(dataset.subset(split.train), 400, seed=3, min_per_class=30)


@pytest.fixture(scope="session")
def narrow_behavior_train(tiny_behavior_train) -> Dataset:
    """The tiny training rows with a narrower schema (6 numeric columns, both categoricals, the
    sequences): every code path of the generators, for tests that fit many times."""
    schema = tiny_behavior_train.schema
    numeric = ("user_view_count", "item_view_count", "user_hours_since_prev", "user_item_hours_since_prev",
               "hour", "weekday")
    assert set(numeric) <= set(schema.numeric)
    return replace(tiny_behavior_train, schema=replace(schema, numeric=numeric))


@pytest.fixture(scope="session")
def behavior_valid(behavior_split) -> Dataset:
    """About 1,000 validation rows of the behaviour task (real rows no generator trains on)."""
    dataset, split = behavior_split
    return stratified_sample(dataset.subset(split.valid), 1000, seed=1, min_per_class=60)


@pytest.fixture(scope="session")
def criteo_train() -> Dataset:
    """The 200-row Criteo sample as a table task: 13 numeric and 26 categorical columns, many missing."""
    return build_dataset(load_sample("criteo"), "table")


@pytest.fixture(scope="session")
def criteo_vae(criteo_train):
    """A VAE fitted (briefly) on the Criteo sample, whose cells are often missing."""
    from recexp.synthesis import VAE

    return VAE(epochs=2, batch_size=100, eval_every=0, random_state=0).fit(criteo_train.frame, criteo_train.schema)
