"""How imbalanced is the data? Numbers only (numpy / pandas); the figures live in :mod:`recexp.charts`.

* :func:`class_balance`: class counts and shares, imbalance ratio, normalised-entropy balance;
* :func:`gini`, :func:`lorenz_curve`, :func:`long_tail`: the long tail of item and user activity;
* :func:`class_mix_by_category`: the class mix inside the top categories;
* :func:`feature_distributions`: summary quantiles of each numeric feature per class;
* :func:`funnel`: the view -> cart/fav -> buy funnel, overall, per category, per user-activity
  segment and per day, counted over users or user-item pairs.

Every function takes what the dashboard has at hand (a :class:`~recexp.dataset.Dataset`, a
:class:`~recexp.data.log.BehaviorLog`, a :class:`~recexp.data.log.FeatureTable` or plain labels) and
returns plain Python / pandas objects.

>>> from recexp.data.samples import load_sample
>>> balance = class_balance(load_sample("taobao"))
>>> balance["class_counts"]
{'view': 71898, 'cart': 4307, 'fav': 2228, 'buy': 1673}
>>> round(balance["imbalance_ratio"], 1)
43.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recexp.data.log import BehaviorLog, FeatureTable
from recexp.dataset import USER, Dataset
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _

_Labelled = Dataset | BehaviorLog | FeatureTable | Mapping[str, int] | pd.Series | np.ndarray | Sequence


# --- class balance --------------------------------------------------------------------------------


def _class_counts(data: _Labelled) -> dict[str, int]:
    """Label name -> count, in the data's own class order (funnel order for logs)."""
    if isinstance(data, Mapping):
        return {str(name): int(count) for name, count in data.items()}
    if isinstance(data, Dataset):
        return data.class_counts()
    if isinstance(data, BehaviorLog):
        counts = data.frame["behavior"].astype(str).value_counts()
        return {name: int(counts.get(name, 0)) for name in data.behaviors}
    if isinstance(data, FeatureTable):
        data = data.frame[data.label_column]
    labels = pd.Series(np.asarray(data) if not isinstance(data, pd.Series) else data)
    missing = int(labels.isna().sum())
    if missing:
        raise InvalidDataError(_("{missing:,} labels are missing. Drop or fill them before measuring the class "
                                 "balance.").format(missing=missing))
    counts = labels.value_counts()
    order = sorted(counts.index, key=lambda v: (isinstance(v, str), v))
    return {str(value): int(counts[value]) for value in order}


def class_balance(data: _Labelled) -> dict[str, Any]:
    """Class counts, shares, imbalance ratio and normalised-entropy balance.

    Parameters
    ----------
    data : Dataset, BehaviorLog, FeatureTable, mapping or array-like of labels
        A dataset (its schema's classes, zero counts included), a log (its behaviours), a feature
        table (its label column), counts already made (label -> count, in class order, e.g.
        :meth:`recexp.tasks.Task.class_counts`) or the labels themselves.

    Returns
    -------
    dict
        JSON-able plain Python values:

        ``class_counts``
            label name -> number of rows;
        ``shares``
            label name -> share of rows (sums to 1);
        ``imbalance_ratio``
            largest count / smallest non-zero count (``None`` with fewer than two non-empty classes);
        ``normalised_entropy``
            Shannon entropy of the shares divided by ``log K`` over the ``K`` listed classes: 1 for
            perfectly balanced classes, towards 0 as one class takes everything (``None`` if ``K < 2``);
        ``n_samples``, ``n_classes``, ``majority``, ``minority``, ``empty_classes``.

    Examples
    --------
    >>> class_balance(["a", "a", "a", "b"])["imbalance_ratio"]
    3.0
    >>> class_balance(["a", "b", "c"])["normalised_entropy"]
    1.0
    """
    counts = _class_counts(data)
    total = sum(counts.values())
    if total == 0:
        raise InvalidDataError(_("There are no labelled rows to measure. Load data with at least one row."))
    shares = {name: count / total for name, count in counts.items()}
    present = {name: count for name, count in counts.items() if count > 0}
    majority = max(present, key=present.get)
    minority = min(present, key=present.get)
    ratio = present[majority] / present[minority] if len(present) >= 2 else None
    k = len(counts)
    if k >= 2:
        entropy = -sum(p * math.log(p) for p in shares.values() if p > 0)
        balance = min(1.0, round(entropy / math.log(k), 12))     # 1.0 exactly when uniform
    else:
        balance = None
    return {
        "class_counts": counts,
        "shares": shares,
        "imbalance_ratio": ratio,
        "normalised_entropy": balance,
        "n_samples": total,
        "n_classes": k,
        "majority": majority,
        "minority": minority,
        "empty_classes": [name for name, count in counts.items() if count == 0],
    }


# --- long tail ------------------------------------------------------------------------------------


def _nonnegative(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise InvalidDataError(_("There are no values to measure; pass at least one count."))
    if not np.all(np.isfinite(array)) or (array < 0).any():
        raise InvalidDataError(_("Counts must be finite and not negative (e.g. events per item)."))
    return array


def gini(values: Any) -> float:
    """Gini coefficient of non-negative values (e.g. events per item).

    The standard definition, the mean absolute difference over twice the mean,
    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``, computed from the sorted values as
    ``G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n`` (``i`` from 1). ``0``: everyone has the same;
    ``(n - 1) / n``: one holds everything (so ``[0, 0, 0, 1]`` gives 0.75). All zeros give 0.

    Examples
    --------
    >>> gini([1, 1, 1, 1]), gini([0, 0, 0, 1])
    (0.0, 0.75)
    """
    x = np.sort(_nonnegative(values))
    n, total = x.size, x.sum()
    if total == 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(max(0.0, 2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n))


def lorenz_curve(values: Any, max_points: int = 201) -> pd.DataFrame:
    """Points of the Lorenz curve: the poorest ``population_share`` holds ``value_share`` of the total.

    Parameters
    ----------
    values : array-like
        Non-negative amounts (events per item or per user).
    max_points : int
        At most this many points (evenly spaced in population share, always with both ends), so long
        tails of millions of entities still plot quickly.

    Returns
    -------
    pandas.DataFrame
        ``population_share`` and ``value_share``, from ``(0, 0)`` to ``(1, 1)``.
    """
    if max_points < 2:
        raise InvalidParameterError(_("max_points must be at least 2, but got "
                                      "{max_points!r}.").format(max_points=max_points))
    x = np.sort(_nonnegative(values))
    total = x.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(x) / total if total > 0 else np.linspace(0, 1, x.size)])
    population = np.linspace(0.0, 1.0, x.size + 1)
    if len(population) > max_points:
        keep = np.unique(np.round(np.linspace(0, x.size, max_points)).astype(np.int64))
        population, cumulative = population[keep], cumulative[keep]
    return pd.DataFrame({"population_share": population, "value_share": cumulative})


@dataclass
class LongTail:
    """How concentrated activity is over the items (or users)."""

    entity: str                          # "item" or "user"
    n_entities: int                      # entities with at least one event
    n_events: int
    gini: float
    lorenz: pd.DataFrame                 # population_share, value_share
    top_shares: dict[str, float] = field(default_factory=dict)   # "top 1%" -> share of events
    behavior: str | None = None          # counted behaviour (None: all)


def long_tail(source: BehaviorLog | Dataset | Any, entity: str = "item", behavior: str | None = None,
              max_points: int = 201) -> LongTail:
    """Gini coefficient, Lorenz curve and top shares of activity per item or per user.

    Parameters
    ----------
    source : BehaviorLog, Dataset or array-like of counts
        A log (events per ``item_id`` / ``user_id``), a dataset (rows per ``user_id``; ``entity``
        must be ``"user"``) or the counts themselves.
    entity : {"item", "user"}
    behavior : str, optional
        Count only this behaviour (logs only), e.g. ``"buy"`` for the tail of purchases.
    max_points : int
        Resolution of the Lorenz curve.

    Returns
    -------
    LongTail
    """
    if entity not in ("item", "user"):
        raise InvalidParameterError(_("entity must be 'item' or 'user', but got {entity!r}.").format(entity=entity))
    if isinstance(source, BehaviorLog):
        frame = source.frame
        if behavior is not None:
            if behavior not in source.behaviors:
                raise InvalidParameterError(
                    _("The log has no behaviour {behavior!r}; it has {behaviors}.").format(
                      behavior=behavior, behaviors=', '.join(source.behaviors)))
            frame = frame[frame["behavior"] == behavior]
        codes = frame[f"{entity}_id"]
        codes = codes.cat.codes.to_numpy() if isinstance(codes.dtype, pd.CategoricalDtype) else pd.factorize(codes)[0]
        counts = np.bincount(codes[codes >= 0]) if len(codes) else np.zeros(0)
        counts = counts[counts > 0]
    elif isinstance(source, Dataset):
        if entity != "user" or USER not in source.frame.columns:
            raise InvalidParameterError(
                _("A dataset's long tail is measured over users (entity='user') and needs a user_id column; for "
                  "items, pass the behaviour log."))
        counts = source.frame[USER].value_counts().to_numpy()
        counts = counts[counts > 0]
    else:
        counts = _nonnegative(source)
    if len(counts) == 0:
        raise InvalidDataError(_("There are no {behavior} events to measure a long tail over.").format(behavior=behavior)
                               if behavior else _("There are no events to measure a long tail over."))
    ordered = np.sort(counts)[::-1]
    total = float(ordered.sum())
    top_shares = {}
    for share in (0.01, 0.1, 0.2):
        k = max(1, int(math.ceil(share * len(ordered))))
        top_shares[f"top {share:.0%}"] = float(ordered[:k].sum() / total) if total else 0.0
    return LongTail(entity=entity, n_entities=int(len(counts)), n_events=int(total), gini=gini(counts),
                    lorenz=lorenz_curve(counts, max_points), top_shares=top_shares, behavior=behavior)


def target_popularity(dataset: Dataset, rows: np.ndarray | None = None) -> LongTail:
    """How concentrated a ranking task's targets are over its items: the long tail of rows per target item.

    A next-item dataset's classes are the catalogue's items, so its class mix is this tail (``rows``: the
    positions counted, e.g. the training split's; default every row)."""
    labels = dataset.y if rows is None else dataset.y[rows]
    return long_tail(np.bincount(labels), behavior=_("targets"))


# --- class mix per category -----------------------------------------------------------------------


def class_mix_by_category(source: BehaviorLog | Dataset, top: int = 10, column: str | None = None,
                          other: bool = True) -> pd.DataFrame:
    """Class counts and shares inside the ``top`` categories with the most rows.

    Parameters
    ----------
    source : BehaviorLog or Dataset
        A log (behaviour per ``category_id``) or a dataset (label per value of ``column``).
    top : int
        How many categories to show, largest first.
    column : str, optional
        Dataset column holding the category codes; default ``"category"``.
    other : bool
        Add an ``"other"`` row aggregating the remaining categories.

    Returns
    -------
    pandas.DataFrame
        Long format: ``category`` (str: the source's category id or name, never an internal code;
        ``"rare/missing"`` for rows beyond the vocabulary cap), ``class``, ``count``, ``share`` (within
        the category), ``category_rows``; categories ordered by size, classes in class order.
    """
    if not isinstance(top, int) or top < 1:
        raise InvalidParameterError(_("top must be a positive integer, but got {top!r}.").format(top=top))
    if isinstance(source, BehaviorLog):
        if "category_id" not in source.frame.columns:
            raise InvalidDataError(_("The log has no category column, so there is no class mix per category. Map "
                                     "the category role when loading the log."))
        categories = source.frame["category_id"].astype(str).to_numpy()
        classes = list(source.behaviors)
        labels = source.frame["behavior"].astype(str).to_numpy()
    elif isinstance(source, Dataset):
        column = column or "category"
        if column not in source.frame.columns:
            raise InvalidParameterError(_("The dataset has no column {column!r}; name the column holding "
                                          "categories.").format(column=column))
        values = source.frame[column].to_numpy()
        categories = source.schema.decode(column, values) if column in source.schema.categorical \
            else values.astype(str)
        classes = list(source.schema.classes)
        labels = np.asarray(classes, dtype=object)[source.y]
    else:
        raise InvalidParameterError(_("class_mix_by_category takes a BehaviorLog or a Dataset."))
    table = pd.crosstab(pd.Series(categories, name="category"), pd.Series(labels, name="class"))
    table = table.reindex(columns=classes, fill_value=0)
    sizes = table.sum(axis=1).sort_values(ascending=False, kind="stable")
    shown = table.loc[sizes.index[:top]]
    if other and len(sizes) > top:
        shown = pd.concat([shown, table.loc[sizes.index[top:]].sum().to_frame("other").T])
    long = shown.rename_axis("category").reset_index().melt(id_vars="category", var_name="class", value_name="count")
    long["category_rows"] = long.groupby("category", sort=False)["count"].transform("sum")
    long["share"] = long["count"] / long["category_rows"]
    order = {name: i for i, name in enumerate(shown.index)}
    long = long.sort_values(["category", "class"], key=lambda s: s.map(order) if s.name == "category"
                            else s.map({c: i for i, c in enumerate(classes)}), kind="stable")
    return long.reset_index(drop=True).astype({"category": str, "class": str, "count": np.int64})


# --- feature distributions ------------------------------------------------------------------------


def feature_distributions(dataset: Dataset, features: Sequence[str] | None = None,
                          quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Summary of each numeric feature within each class.

    Parameters
    ----------
    dataset : Dataset
    features : sequence of str, optional
        Numeric features to summarise (default: all of ``dataset.schema.numeric``).
    quantiles : sequence of float
        Quantiles to report, each in [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per (feature, class): ``feature``, ``class``, ``count`` (non-missing), ``missing``,
        ``mean``, ``std``, ``min``, ``q05``/``q25``/... (named by percent), ``max``.
    """
    features = list(dataset.schema.numeric if features is None else features)
    unknown = [f for f in features if f not in dataset.schema.numeric]
    if unknown:
        raise InvalidParameterError(
            _("{repr} are not numeric features of this dataset; choose among {value}.").format(
              repr=', '.join(map(repr, unknown)), value=', '.join(dataset.schema.numeric) or _('none')))
    if any(not 0 <= q <= 1 for q in quantiles):
        raise InvalidParameterError(_("quantiles must lie in [0, 1], but got "
                                      "{quantiles}.").format(quantiles=list(quantiles)))
    if not features:
        return pd.DataFrame(columns=["feature", "class", "count", "missing", "mean", "std", "min", "max"])
    frame = dataset.frame.loc[:, features].astype(np.float64)
    labels = pd.Series(np.asarray(dataset.schema.classes, dtype=object)[dataset.y], name="class")
    grouped = frame.groupby(labels, sort=False)
    rows = []
    names = {q: f"q{round(q * 100):02d}" for q in quantiles}
    described = {
        "count": grouped.count(), "missing": frame.isna().groupby(labels, sort=False).sum(),
        "mean": grouped.mean(), "std": grouped.std(ddof=0), "min": grouped.min(), "max": grouped.max(),
        **{names[q]: grouped.quantile(q) for q in quantiles},
    }
    present = [c for c in dataset.schema.classes if c in set(labels)]
    for feature in features:
        for name in present:
            row = {"feature": feature, "class": name}
            row.update({stat: float(table.at[name, feature]) for stat, table in described.items()})
            rows.append(row)
    result = pd.DataFrame(rows)
    columns = ["feature", "class", "count", "missing", "mean", "std", "min",
               *[names[q] for q in sorted(quantiles)], "max"]
    return result.loc[:, columns].astype({"count": np.int64, "missing": np.int64})


# --- funnel ---------------------------------------------------------------------------------------

FUNNEL_BY = (None, "category", "segment", "day")


def funnel_stages(log: BehaviorLog) -> list[tuple[str, tuple[str, ...]]]:
    """The funnel stages a log supports: ``(label, behaviours)`` for view, cart/fav, buy (those present)."""
    present = set(log.behaviors)
    stages = []
    if "view" in present:
        stages.append(("view", ("view",)))
    middle = tuple(b for b in ("cart", "fav") if b in present)
    if middle:
        stages.append(("/".join(middle), middle))
    if "buy" in present:
        stages.append(("buy", ("buy",)))
    return stages


def _segments(user_codes: np.ndarray, n_segments: int) -> tuple[np.ndarray, list[str]]:
    """Activity segment of each event's user: quantile buckets of events per user, least active first.

    Users with the same number of events always share a segment (a tie is not split across two quantile
    buckets), so the segments' ranges never overlap; buckets left empty by a tie are dropped, and there may
    be fewer than ``n_segments`` segments (e.g. when most users have one event).
    """
    per_user = np.bincount(user_codes)
    active = np.flatnonzero(per_user)
    order = np.argsort(per_user[active], kind="stable")
    ordered = per_user[active][order]
    by_rank = (np.arange(len(active)) * n_segments) // len(active)
    bucket_by_rank = by_rank[np.searchsorted(ordered, ordered, side="left")]   # a tie joins its first member
    _, bucket_by_rank = np.unique(bucket_by_rank, return_inverse=True)         # 0, 1, ... without gaps
    bucket_of_active = np.empty(len(active), dtype=np.int64)
    bucket_of_active[order] = bucket_by_rank
    bucket = np.zeros(len(per_user), dtype=np.int64)
    bucket[active] = bucket_of_active
    labels = []
    for k in range(int(bucket_by_rank.max()) + 1):
        members = ordered[bucket_by_rank == k]
        low, high = int(members[0]), int(members[-1])
        labels.append(f"{low:,} event/user" if low == high == 1 else f"{low:,} events/user" if low == high
                      else f"{low:,}-{high:,} events/user")
    return bucket[user_codes], labels


def funnel(log: BehaviorLog, unit: str = "user", by: str | None = None, top: int = 10,
           n_segments: int = 4) -> pd.DataFrame:
    """The behaviour funnel: how many users (or user-item pairs) reach view, cart/fav and buy.

    Two counts per stage, which answer different questions:

    * ``units`` counts each stage on its own (independently): units with at least one event of the
      stage (within the group), whatever else they did. Many purchases skip the cart or the view, so a
      later stage may hold more units than an earlier one; these counts are not a funnel.
    * ``units_in_order`` is the sequential funnel: units that did every earlier stage and then this one,
      in the order of the stages (an event of stage ``k`` at or after one of stage ``k - 1``, which was
      at or after one of stage ``k - 2``, ...). It never increases from one stage to the next, and the
      conversions are computed from it.

    Parameters
    ----------
    log : BehaviorLog
    unit : {"user", "pair"}
        Count users, or (user, item) pairs.
    by : {None, "category", "segment", "day"}
        ``None``: overall (group ``"all"``). ``"category"``: within each of the ``top`` categories with
        most events (a user counts in a category through their events there). ``"segment"``: users
        bucketed into ``n_segments`` quantiles of their number of events (Q1 least active).
        ``"day"``: within each UTC calendar day.
    top : int
        Number of categories for ``by="category"``.
    n_segments : int
        Number of activity buckets for ``by="segment"``.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``stage``, ``stage_index``, ``units`` (independent count), ``units_in_order``
        (sequential count), ``conversion`` (``units_in_order`` / the group's first-stage units) and
        ``step_conversion`` (``units_in_order`` / the previous stage's ``units_in_order``).
    """
    if unit not in ("user", "pair"):
        raise InvalidParameterError(_("unit must be 'user' or 'pair', but got {unit!r}.").format(unit=unit))
    if by not in FUNNEL_BY:
        raise InvalidParameterError(_("by must be one of None, 'category', 'segment', 'day', but "
                                      "got {by!r}.").format(by=by))
    if not isinstance(top, int) or top < 1 or not isinstance(n_segments, int) or n_segments < 1:
        raise InvalidParameterError(_("top and n_segments must be positive integers, but got {top!r} and "
                                      "{n_segments!r}.").format(top=top, n_segments=n_segments))
    if not isinstance(log, BehaviorLog):
        raise InvalidParameterError(_("funnel takes a BehaviorLog (a behaviour log, not a feature table or "
                                      "dataset)."))
    stages = funnel_stages(log)
    if len(stages) < 2:
        raise InvalidDataError(
            _("The log's behaviours ({behaviors}) give fewer than two funnel stages of view, cart/fav and buy; a "
              "funnel needs at least two. Check the behaviour mapping.").format(behaviors=', '.join(log.behaviors)))
    frame = log.frame
    stage_of = {b: k for k, (_, members) in enumerate(stages) for b in members}
    behavior = frame["behavior"].astype(str).map(stage_of).to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(behavior)
    stage = behavior[keep].astype(np.int64)

    def codes(column: str) -> np.ndarray:
        series = frame[column]
        values = series.cat.codes.to_numpy() if isinstance(series.dtype, pd.CategoricalDtype) else pd.factorize(series)[0]
        return np.asarray(values, dtype=np.int64)[keep]

    user = codes("user_id")
    time = frame["timestamp"].dt.as_unit("ns").array.asi8[keep]
    unit_key = user if unit == "user" else user * (int(codes("item_id").max()) + 1) + codes("item_id")
    if by is None:
        group, names = np.zeros(len(stage), dtype=np.int64), ["all"]
    elif by == "category":
        if "category_id" not in frame.columns:
            raise InvalidDataError(_("The log has no category column; choose another breakdown (by='segment' or "
                                     "'day')."))
        category = codes("category_id")
        sizes = np.bincount(category[category >= 0])
        chosen = np.argsort(-sizes, kind="stable")[:top]
        chosen = chosen[sizes[chosen] > 0]
        rank = np.full(len(sizes) + 1, -1, dtype=np.int64)
        rank[chosen] = np.arange(len(chosen))
        group = rank[category]
        categories = frame["category_id"].cat.categories if isinstance(
            frame["category_id"].dtype, pd.CategoricalDtype) else pd.Index(pd.factorize(frame["category_id"])[1])
        names = [str(categories[c]) for c in chosen]
    elif by == "segment":
        group, names = _segments(user, n_segments)
    else:
        day_ns = 86_400 * 10**9
        days = time // day_ns                                  # asi8 of a tz-aware column is UTC
        group, first_days = pd.factorize(days, sort=True)
        group = np.asarray(group, dtype=np.int64)
        names = [str(pd.Timestamp(int(d) * day_ns, tz="UTC").date()) for d in first_days]
    inside = group >= 0
    keys = pd.MultiIndex.from_arrays([group[inside], unit_key[inside]])
    unit_codes, uniques = pd.factorize(keys)
    unit_group = np.asarray(uniques.get_level_values(0), dtype=np.int64)
    reached = np.zeros((len(uniques), len(stages)), dtype=bool)
    reached[unit_codes, stage[inside]] = True
    in_order = _reached_in_order(unit_codes, stage[inside], time[inside], len(uniques), len(stages))

    rows = []
    for g, name in enumerate(names):
        members = unit_group == g
        counts = reached[members].sum(axis=0)
        chain = in_order[members].sum(axis=0)
        for k, (label, _members) in enumerate(stages):
            rows.append({
                "group": name, "stage": label, "stage_index": k, "units": int(counts[k]),
                "units_in_order": int(chain[k]),
                "conversion": float(chain[k] / chain[0]) if chain[0] else math.nan,
                "step_conversion": float(chain[k] / chain[k - 1]) if k and chain[k - 1] else (1.0 if k == 0 else math.nan),
            })
    return pd.DataFrame(rows, columns=["group", "stage", "stage_index", "units", "units_in_order",
                                       "conversion", "step_conversion"])


def _reached_in_order(unit: np.ndarray, stage: np.ndarray, time: np.ndarray, n_units: int,
                      n_stages: int) -> np.ndarray:
    """``(n_units, n_stages)``: did the unit do stages 0..k in that order (each at or after the previous)?

    Greedy on the earliest time: the earliest stage-0 event, then the earliest stage-1 event at or after
    it, and so on; an ordered chain exists exactly when this one does.
    """
    never = np.iinfo(np.int64).max
    reached = np.zeros((n_units, n_stages), dtype=bool)
    previous = np.full(n_units, np.iinfo(np.int64).min)
    for k in range(n_stages):
        events = (stage == k) & (time >= previous[unit])
        earliest = np.full(n_units, never)
        np.minimum.at(earliest, unit[events], time[events])
        reached[:, k] = earliest != never
        previous = earliest
    return reached
