"""A small behaviour-classification Dataset built from the bundled Taobao sample, for model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.dataset import LABEL, Dataset, FeatureSchema, Split

SEQ_LEN = 5
CLASSES = ("view", "cart", "fav", "buy")


def _behavior_dataset(csv_path, n_rows: int) -> Dataset:
    raw = pd.read_csv(csv_path, header=None, names=["user", "item", "category", "behavior", "ts"],
                      on_bad_lines="skip").dropna()
    raw = raw.head(n_rows)
    raw = raw.sort_values(["user", "ts"], kind="stable").reset_index(drop=True)
    label = raw["behavior"].map({"pv": 0, "cart": 1, "fav": 2, "buy": 3}).to_numpy()
    time = pd.to_datetime(raw["ts"].astype("int64"), unit="s", utc=True)
    by_user = raw.groupby("user", sort=False)
    frame = pd.DataFrame({
        "hour": time.dt.hour.astype("float32"),
        "weekday": time.dt.day_of_week.astype("float32"),
        "user_events": by_user.cumcount().astype("float32"),
        "user_item_events": raw.groupby(["user", "item"], sort=False).cumcount().astype("float32"),
    })
    top = raw["category"].value_counts().index[:100]
    cat_codes = {c: i + 1 for i, c in enumerate(top)}
    frame["category"] = raw["category"].map(cat_codes).fillna(0).astype("int64")
    items = {c: i + 1 for i, c in enumerate(raw["item"].unique())}
    item_code = raw["item"].map(items).to_numpy()
    cat_all = raw["category"].map(cat_codes).fillna(0).astype("int64").to_numpy()
    user = raw["user"].to_numpy()
    sequences = {}
    for name, values, vocab in (("hist_item", item_code, len(items)), ("hist_category", cat_all, len(top)),
                                ("hist_behavior", label + 1, 4)):
        cols = []
        for lag in range(1, SEQ_LEN + 1):
            shifted = np.zeros(len(raw), dtype=np.int64)
            shifted[lag:] = values[:-lag]
            same = np.zeros(len(raw), dtype=bool)
            same[lag:] = user[lag:] == user[:-lag]
            frame[f"{name}_{lag - 1}"] = np.where(same, shifted, 0)
            cols.append(f"{name}_{lag - 1}")
        sequences[name] = (tuple(cols), vocab)
    frame[LABEL] = label
    frame["user_id"] = user
    schema = FeatureSchema(
        numeric=("hour", "weekday", "user_events", "user_item_events"), categorical=("category",), classes=CLASSES,
        sequences={k: v[0] for k, v in sequences.items()},
        cardinality={"category": len(top), **{k: v[1] for k, v in sequences.items()}})
    return Dataset(frame=frame, schema=schema, task="behavior", fingerprint="test")


def _split(dataset: Dataset, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    n_test, n_valid = len(order) // 5, len(order) // 10
    return Split(train=np.sort(order[n_test + n_valid:]), valid=np.sort(order[n_test:n_test + n_valid]),
                 test=np.sort(order[:n_test]))


@pytest.fixture(scope="session")
def behavior_data(taobao_csv):
    """(Dataset, Split) of 6,000 Taobao events, behaviour classification (view/cart/fav/buy)."""
    dataset = _behavior_dataset(taobao_csv, 6000)
    return dataset, _split(dataset)
