"""Behaviour-classification data from the bundled Taobao sample, built with recexp's own readers and task."""

from __future__ import annotations

import pytest

from recexp.data import load
from recexp.tasks import SplitSpec, build_dataset, split_dataset

#: Consecutive events taken from the head of the Taobao sample: small enough for quick training.
N_EVENTS = 6000
SEQUENCE_LENGTH = 5


@pytest.fixture(scope="session")
def taobao_head(taobao_head_file):
    """The first 6,000 lines of the bundled Taobao sample, as a file (what a worker would load)."""
    return taobao_head_file(N_EVENTS)


@pytest.fixture(scope="session")
def behavior_data(taobao_head):
    """(Dataset, Split): behaviour task (view/cart/fav/buy) on 6,000 Taobao events, temporal split."""
    dataset = build_dataset(load(taobao_head), "behavior", sequence_length=SEQUENCE_LENGTH)
    return dataset, split_dataset(dataset, SplitSpec())
