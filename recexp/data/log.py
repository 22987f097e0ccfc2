"""The normalised behaviour log and the feature table: what every reader returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Column roles a behaviour log can have; ``category`` is optional.
ROLES = ("user", "item", "category", "behavior", "timestamp")
REQUIRED_ROLES = ("user", "item", "behavior", "timestamp")

#: Normalised column name of each role in ``BehaviorLog.frame``.
ROLE_COLUMNS = {
    "user": "user_id",
    "item": "item_id",
    "category": "category_id",
    "behavior": "behavior",
    "timestamp": "timestamp",
}

#: Canonical funnel stages, in funnel order, and the raw values that mean them.
FUNNEL = ("view", "cart", "fav", "buy")
BEHAVIOR_SYNONYMS = {
    "pv": "view", "view": "view", "click": "view", "clk": "view", "impression": "view",
    "cart": "cart", "addtocart": "cart", "add_to_cart": "cart", "add-to-cart": "cart",
    "fav": "fav", "favorite": "fav", "favourite": "fav", "like": "fav", "wishlist": "fav",
    "buy": "buy", "purchase": "buy", "transaction": "buy", "order": "buy", "alipay": "buy",
    # Chinese platforms' exports (often GBK-encoded)
    "浏览": "view", "点击": "view", "加购": "cart", "加入购物车": "cart", "收藏": "fav", "购买": "buy", "下单": "buy",
}


@dataclass
class ValidationReport:
    """What the reader found and did, so defects are reported rather than hidden."""

    rows_read: int                                   # data rows in the source (after header)
    rows_kept: int                                   # rows in the normalised frame
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> rows dropped
    duplicates: int = 0                              # exact duplicate events (kept, reported)
    nulls: dict[str, int] = field(default_factory=dict)     # column -> null cells in the source
    behavior_values: dict[str, int] = field(default_factory=dict)  # raw value -> count (logs only)
    time_range: tuple[str, str] | None = None        # ISO min, max of kept timestamps
    warnings: list[str] = field(default_factory=list)  # sentences for the analyst
    unused_columns: list[str] = field(default_factory=list)  # source columns no role/feature uses
    timestamp_outliers: int = 0                      # kept events outside the stated/main time window
    read_as: str = ""                                # how the source was read (format, encoding, ...)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> column, confidence, evidence (logs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the CLI and the run store)."""
        return {
            "rows_read": self.rows_read, "rows_kept": self.rows_kept, "dropped": dict(self.dropped),
            "duplicates": self.duplicates, "nulls": dict(self.nulls),
            "behavior_values": dict(self.behavior_values),
            "time_range": list(self.time_range) if self.time_range else None,
            "warnings": list(self.warnings), "unused_columns": list(self.unused_columns),
            "timestamp_outliers": self.timestamp_outliers, "read_as": self.read_as,
            "roles": {role: dict(choice) for role, choice in self.roles.items()},
        }


@dataclass
class BehaviorLog:
    """A normalised user-behaviour log.

    ``frame`` has the columns ``user_id``, ``item_id`` (categoricals), optionally ``category_id``
    (categorical), ``behavior`` (categorical of canonical stage names: view/cart/fav/buy, or the raw
    value when it maps to none of them) and ``timestamp`` (``datetime64[ns, UTC]``), sorted by
    timestamp (stable). ``mapping`` records which source column fed each role.
    """

    frame: pd.DataFrame
    mapping: dict[str, str]
    report: ValidationReport
    source: str = ""
    fingerprint: str = ""

    kind: str = "log"

    @property
    def behaviors(self) -> list[str]:
        """Behaviour values present, funnel stages first in funnel order."""
        seen = set(self.frame["behavior"].astype(str).unique())
        return [b for b in FUNNEL if b in seen] + sorted(seen - set(FUNNEL))


@dataclass
class FeatureTable:
    """Rows that already carry features and a label (CTR-style, e.g. Criteo).

    ``frame`` holds the feature columns and the label column named ``label_column``;
    ``numeric`` and ``categorical`` name the feature columns by type.
    """

    frame: pd.DataFrame
    label_column: str
    numeric: list[str]
    categorical: list[str]
    report: ValidationReport
    source: str = ""
    fingerprint: str = ""

    kind: str = "table"


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """A stable content hash of a frame (column names, dtypes and values), 16 hex digits.

    Value-based and one pass of SHA-256 over each column's bytes: a categorical column is hashed as
    its categories (sorted, so their listed order does not matter) and its codes into them; date-times
    and numbers as their raw 64-bit values; other columns as pandas' per-value hashes. Two frames
    that hold the same values in the same rows, columns and dtypes get the same fingerprint, whichever
    file format or category order they came from. Unused categories count, as part of the dtype.

    Examples
    --------
    >>> a = pd.DataFrame({"x": pd.Categorical(["b", "a"], categories=["b", "a"])})
    >>> frame_fingerprint(a) == frame_fingerprint(a.astype({"x": pd.CategoricalDtype(["a", "b"])}))
    True
    """
    digest = hashlib.sha256(b"recexp-frame-fingerprint-v2")
    for name in frame.columns:
        series = frame[name]
        digest.update(f"\n{name}:{series.dtype}:{len(series)}\n".encode())
        for part in _column_parts(series):
            digest.update(memoryview(np.ascontiguousarray(part)).cast("B"))
    return digest.hexdigest()[:16]


def _column_parts(series: pd.Series) -> list[np.ndarray]:
    """Arrays whose bytes stand for the values of ``series`` (see :func:`frame_fingerprint`)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories, codes = dtype.categories, series.cat.codes.to_numpy()
        if not categories.is_monotonic_increasing:
            try:
                order = categories.argsort()
            except TypeError:                    # categories of mixed types: hash each value instead
                return [pd.util.hash_pandas_object(series, index=False).to_numpy()]
            rank = np.empty(len(order) + 1, dtype=codes.dtype)
            rank[order] = np.arange(len(order), dtype=codes.dtype)
            rank[-1] = -1                        # missing values keep code -1
            categories, codes = categories[order], rank[codes]
        return [pd.util.hash_pandas_object(categories, index=False).to_numpy(), codes]
    if isinstance(series.array, (pd.arrays.DatetimeArray, pd.arrays.TimedeltaArray)):
        return [series.array.asi8]
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return [series.to_numpy()]
    return [pd.util.hash_pandas_object(series, index=False).to_numpy()]
