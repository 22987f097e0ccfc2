"""Real datasets for strategy tests: the bundled Taobao sample through the real task builders.

Both tasks (``behavior``: view/cart/fav/buy; ``purchase``: no_buy/buy) are built once per session and
split with the default (temporal) split. Strategy tests work on a stratified sample of the training
split that keeps every class (at least 100 rows each where the class has them), so neighbour-based
samplers run on every class and the whole folder stays fast on two cores.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from recexp.data.samples import load_sample
from recexp.strategies import stratified_sample
from recexp.tasks import build_dataset, split_dataset

TASKS = ("behavior", "purchase")
SAMPLE_ROWS = 1500


@pytest.fixture(scope="session")
def taobao_log():
    return load_sample("taobao")


@pytest.fixture(scope="session")
def task_data(taobao_log):
    """task name -> (Dataset, Split) of the bundled Taobao sample."""
    result = {}
    for task in TASKS:
        dataset = build_dataset(taobao_log, task)
        result[task] = (dataset, split_dataset(dataset))
    return result


@pytest.fixture(scope="session")
def small_train(task_data):
    """task name -> a stratified sample of the training split (every class kept)."""
    return {task: stratified_sample(dataset.subset(split.train), SAMPLE_ROWS, seed=0, min_per_class=100)
            for task, (dataset, split) in task_data.items()}


@pytest.fixture(scope="session")
def numeric_only():
    """``numeric_only(dataset)``: the same rows with categorical features left out of the schema."""
    return lambda dataset: replace(dataset, schema=replace(dataset.schema, categorical=()))


@pytest.fixture(scope="session")
def frame_hash():
    """``frame_hash(frame)``: a content hash of values and index, to prove a frame was not modified."""
    return lambda frame: int(pd.util.hash_pandas_object(frame, index=True).sum())
