"""The normalised behaviour log and the feature table: what every reader returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the CLI and the run store)."""
        return {
            "rows_read": self.rows_read, "rows_kept": self.rows_kept, "dropped": dict(self.dropped),
            "duplicates": self.duplicates, "nulls": dict(self.nulls),
            "behavior_values": dict(self.behavior_values),
            "time_range": list(self.time_range) if self.time_range else None,
            "warnings": list(self.warnings), "unused_columns": list(self.unused_columns),
            "timestamp_outliers": self.timestamp_outliers, "read_as": self.read_as,
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


def frame_fingerprint(frame: pd.DataFrame, row_hashes: pd.Series | None = None) -> str:
    """A stable content hash of a frame (columns, dtypes and values), 16 hex digits.

    ``row_hashes`` may pass ``pd.util.hash_pandas_object(frame, index=False)`` when the caller has
    already computed it (it is the expensive part on large frames).
    """
    digest = hashlib.sha256()
    digest.update(",".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    if row_hashes is None:
        row_hashes = pd.util.hash_pandas_object(frame, index=False)
    digest.update(row_hashes.to_numpy().tobytes())
    return digest.hexdigest()[:16]
