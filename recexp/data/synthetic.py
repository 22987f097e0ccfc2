"""A seeded generator of synthetic e-commerce behaviour logs, for scale tests and benchmarks.

The logs look like Taobao's UserBehavior (same column names as :data:`SYNTHETIC_COLUMNS`, behaviour
values from the canonical funnel) but are **synthetic**: the frames carry ``attrs["synthetic"] =
True`` and every file :func:`write_log` writes is named ``synthetic_*``. What makes them realistic
enough to exercise the pipeline:

* long tails: user activity and item popularity follow Zipf-like laws, so a few users and items
  account for most events;
* items are nested in categories (every item has exactly one category; category sizes are skewed);
* events come in sessions: a user opens a session at a time of day drawn from a diurnal profile,
  browses mostly inside one category, with exponential gaps between events;
* the funnel: views dominate, some viewed items are added to the cart or favourited, and most
  purchases follow a cart event of the same user and item (a few are direct buys).

Everything is vectorised numpy driven by one :class:`numpy.random.Generator` seeded from ``seed``;
10 million rows take a few seconds and well under 2 GB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recexp.errors import InvalidParameterError
from recexp.i18n import _

#: Columns of a generated log, in order (names the readers recognise without a mapping).
SYNTHETIC_COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")

# Funnel probabilities per viewed event (chosen so the class mix resembles Taobao's: about
# 90% views, 5% carts, 3% favourites, 2% purchases, most purchases preceded by a cart).
_P_CART = 0.06
_P_FAV = 0.03
_P_BUY_AFTER_CART = 0.30
_P_DIRECT_BUY = 0.004
_MEAN_SESSION_EVENTS = 8.0
_MEAN_GAP_S = 45.0            # between consecutive views of a session
_MEAN_CART_DELAY_S = 40.0     # view -> cart / fav of the same item
_MEAN_BUY_DELAY_S = 900.0     # cart -> buy of the same item
_IN_CATEGORY_SHARE = 0.8      # events of a session that stay in its focus category
# Relative session starts per hour of the day (UTC): quiet nights, busy evenings.
_DIURNAL = np.array([2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 8, 8, 7, 7, 8, 9, 10, 11, 12, 11, 8, 4], float)


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Weights proportional to 1 / rank**exponent, assigned to the ``n`` entities in random order."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    rng.shuffle(weights)
    return weights / weights.sum()


def _draw(cumulative: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn with probability proportional to their weight, each inside its own [low, high).

    ``cumulative`` is the running sum of the weights; ``low``/``high`` are per-draw index bounds.
    """
    base = np.where(low > 0, cumulative[np.maximum(low - 1, 0)], 0.0)
    top = cumulative[high - 1]
    picks = np.searchsorted(cumulative, base + rng.random(len(low)) * (top - base), side="right")
    return np.clip(picks, low, high - 1)


def _scattered_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct positive ids in random order, spread over about ``50 * n`` values."""
    ids = np.arange(n, dtype=np.int64) * 50 + rng.integers(1, 50, n)
    rng.shuffle(ids)
    return ids


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(_("{name} must be a positive integer, but got {value!r}. Pass a number like "
                                      "1000.").format(name=name, value=value))
    return int(value)


def generate_log(
    n_rows: int,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    n_categories: int | None = None,
    seed: int = 0,
    start: str = "2017-11-25",
    days: int = 9,
) -> pd.DataFrame:
    """Generate a synthetic behaviour log of exactly ``n_rows`` events.

    Parameters
    ----------
    n_rows : int
        Number of events.
    n_users, n_items, n_categories : int, optional
        Population sizes; default to ``n_rows // 100``, ``n_rows // 15`` and ``n_items // 20``
        (at least 1, 10 and 2), a Taobao-like ratio.
    seed : int
        Seed of the random generator; the same arguments give the same frame.
    start : str
        First day (UTC) of the log.
    days : int
        Length of the log in days.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``item_id``, ``category_id`` (int64), ``behavior_type`` (categorical of
        ``view``/``cart``/``fav``/``buy``) and ``timestamp`` (int64 epoch seconds), sorted by
        timestamp, with ``attrs["synthetic"] = True``.

    Examples
    --------
    >>> log = generate_log(1000, seed=1)
    >>> len(log), log.attrs["synthetic"]
    (1000, True)
    """
    n_rows = _check_positive("n_rows", n_rows)
    n_users = _check_positive("n_users", n_users if n_users is not None else max(1, n_rows // 100))
    n_items = _check_positive("n_items", n_items if n_items is not None else max(10, n_rows // 15))
    n_categories = _check_positive(
        "n_categories", n_categories if n_categories is not None else max(2, n_items // 20))
    days = _check_positive("days", days)
    if n_categories > n_items:
        raise InvalidParameterError(
            _("n_categories ({n_categories}) must not exceed n_items ({n_items}): every category needs an item. "
              "Lower n_categories or raise n_items.").format(
              n_categories=n_categories, n_items=n_items))
    try:
        origin = int(pd.Timestamp(start, tz="UTC").timestamp())
    except (ValueError, TypeError) as error:
        raise InvalidParameterError(_("start must be a date like '2017-11-25', but got "
                                      "{start!r}.").format(start=start)) from error
    rng = np.random.default_rng(seed)

    # Catalogue: every category gets at least one item, the rest by skewed category sizes; items are
    # stored sorted by category so a category is a contiguous index range.
    category_share = _zipf_weights(n_categories, 1.0, rng)
    extra = rng.multinomial(n_items - n_categories, category_share)
    category_size = extra + 1
    category_hi = np.cumsum(category_size)
    category_lo = category_hi - category_size
    item_category = np.repeat(np.arange(n_categories), category_size)
    item_weight = _zipf_weights(n_items, 1.05, rng)
    item_cumulative = np.cumsum(item_weight)
    category_weight = np.add.reduceat(item_weight, category_lo)

    # Views, grouped into sessions. The funnel adds follow-up events per view, so draw fewer views.
    follow_ups = _P_CART * (1 + _P_BUY_AFTER_CART) + _P_FAV + _P_DIRECT_BUY
    n_views = max(1, int(np.ceil(n_rows / (1 + follow_ups) * 1.01)))
    n_sessions = max(1, int(np.ceil(n_views / _MEAN_SESSION_EVENTS)))
    user_weight = _zipf_weights(n_users, 0.75, rng)
    session_user = rng.choice(n_users, size=n_sessions, p=user_weight)
    session_category = rng.choice(n_categories, size=n_sessions, p=category_weight / category_weight.sum())
    hour = rng.choice(24, size=n_sessions, p=_DIURNAL / _DIURNAL.sum())
    session_start = (origin + rng.integers(0, days, n_sessions) * 86400 + hour * 3600
                     + rng.integers(0, 3600, n_sessions))
    session_of_view = np.sort(rng.integers(0, n_sessions, n_views))
    first_of_session = np.r_[True, session_of_view[1:] != session_of_view[:-1]]
    gaps = rng.exponential(_MEAN_GAP_S, n_views)
    gaps[first_of_session] = 0.0
    elapsed = np.cumsum(gaps)
    session_origin = np.maximum.accumulate(np.where(first_of_session, elapsed, 0.0))
    view_time = session_start[session_of_view] + (elapsed - session_origin)

    in_category = rng.random(n_views) < _IN_CATEGORY_SHARE
    focus = session_category[session_of_view]
    low = np.where(in_category, category_lo[focus], 0)
    high = np.where(in_category, category_hi[focus], n_items)
    view_item = _draw(item_cumulative, low, high, rng)
    view_user = session_user[session_of_view]

    # Funnel: cart / fav shortly after a view of the same item, buy mostly after a cart.
    outcome = rng.random(n_views)
    carted = outcome < _P_CART
    faved = (outcome >= _P_CART) & (outcome < _P_CART + _P_FAV)
    direct = (outcome >= _P_CART + _P_FAV) & (outcome < _P_CART + _P_FAV + _P_DIRECT_BUY)
    cart_time = view_time[carted] + rng.exponential(_MEAN_CART_DELAY_S, carted.sum())
    bought = rng.random(carted.sum()) < _P_BUY_AFTER_CART
    buy_time = cart_time[bought] + rng.exponential(_MEAN_BUY_DELAY_S, bought.sum())
    fav_time = view_time[faved] + rng.exponential(_MEAN_CART_DELAY_S, faved.sum())
    direct_time = view_time[direct] + rng.exponential(_MEAN_CART_DELAY_S, direct.sum())
    cart_index = np.flatnonzero(carted)

    users = np.concatenate([view_user, view_user[carted], view_user[cart_index[bought]],
                            view_user[faved], view_user[direct]])
    items = np.concatenate([view_item, view_item[carted], view_item[cart_index[bought]],
                            view_item[faved], view_item[direct]])
    codes = np.concatenate([np.zeros(n_views, np.int8), np.ones(carted.sum(), np.int8),
                            np.full(bought.sum(), 3, np.int8), np.full(faved.sum(), 2, np.int8),
                            np.full(direct.sum(), 3, np.int8)])
    times = np.concatenate([view_time, cart_time, buy_time, fav_time, direct_time])

    # Exactly n_rows: drop surplus views at random (never a cart, fav or buy), or top up with views.
    surplus = len(times) - n_rows
    if surplus > 0:
        drop = rng.choice(n_views, size=min(surplus, n_views), replace=False)
        keep = np.ones(len(times), bool)
        keep[drop] = False
        users, items, codes, times = users[keep], items[keep], codes[keep], times[keep]
    users, items, codes, times = users[:n_rows], items[:n_rows], codes[:n_rows], times[:n_rows]
    if len(times) < n_rows:  # tiny logs: the funnel draw came out short
        missing = n_rows - len(times)
        pick = rng.integers(0, n_views, missing)
        users = np.r_[users, view_user[pick]]
        items = np.r_[items, view_item[pick]]
        codes = np.r_[codes, np.zeros(missing, np.int8)]
        times = np.r_[times, view_time[pick] + rng.exponential(_MEAN_GAP_S, missing)]

    seconds = np.floor(times).astype(np.int64)
    order = np.argsort(seconds, kind="stable")
    # Ids look like real ones: large, unordered, and not equal to popularity ranks.
    user_ids, item_ids, category_ids = (_scattered_ids(n, rng) for n in (n_users, n_items, n_categories))
    frame = pd.DataFrame({
        "user_id": user_ids[users[order]],
        "item_id": item_ids[items[order]],
        "category_id": category_ids[item_category[items[order]]],
        "behavior_type": pd.Categorical.from_codes(codes[order], categories=["view", "cart", "fav", "buy"]),
        "timestamp": seconds[order],
    })
    frame.attrs["synthetic"] = True
    return frame


def write_log(frame: pd.DataFrame, directory: str | Path, *, format: str = "csv", name: str | None = None) -> Path:
    """Write a generated log as ``<directory>/synthetic_<name>.<csv|parquet>``; returns the path.

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame from :func:`generate_log`.
    directory : str or Path
        Folder to write into (created if missing).
    format : {"csv", "parquet"}
        CSV has a header row; both are written with pyarrow.
    name : str, optional
        Middle part of the file name; defaults to ``<rows>rows``. The ``synthetic_`` prefix is
        always added, so a generated file cannot pass for real data.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if format not in ("csv", "parquet"):
        raise InvalidParameterError(_("format must be 'csv' or 'parquet', but got "
                                      "{format!r}.").format(format=format))
    stem = name or f"{len(frame)}rows"
    if stem.startswith("synthetic_"):
        stem = stem[len("synthetic_"):]
    target = Path(directory) / f"synthetic_{stem}.{format}"
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if format == "csv":
        table = table.set_column(table.schema.get_field_index("behavior_type"), "behavior_type",
                                 table["behavior_type"].cast(pa.string()))
        tmp = target.with_suffix(".csv.part")
        pa_csv.write_csv(table, tmp, write_options=pa_csv.WriteOptions(quoting_style="none"))
    else:
        tmp = target.with_suffix(".parquet.part")
        pq.write_table(table, tmp)
    tmp.replace(target)
    return target
