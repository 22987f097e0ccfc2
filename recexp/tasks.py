"""From a behaviour log or a feature table to a supervised :class:`~recexp.dataset.Dataset`, and its split.

Four tasks are registered in :data:`TASKS` under stable names:

``"behavior"``
    One sample per event; the label is the event's behaviour (multi-class over the behaviours the
    log has: view / cart / fav / buy, in funnel order).
``"purchase"``
    One sample per (user, item) pair active in a feature window before an anchor time; the label is
    whether the pair converts (has a ``buy``) in the label window ``[anchor, anchor + label_window)``.
    Several anchors, one label window apart and ending at the log's last event, give a temporal
    split several time points.
``"table"``
    A :class:`~recexp.data.log.FeatureTable` as it is: label values become codes, numbers ``float32``,
    categories integer codes (``0`` = missing or rare, vocabulary capped; stored in the narrowest type
    of the cap, see :func:`recexp.dataset.code_dtype`).
``"next_item"``
    A ranking task: one sample per event with history, the label is the event's item (see
    :class:`NextItemTask`: leave-last-out or temporal protocol, label space = the item vocabulary).

Features of log tasks come from history only: for the behaviour task from events **strictly
earlier in time** than the sample's event (events in the same second are not history), for the
purchase task from the feature window ``[anchor - feature_window, anchor)``. They are, per behaviour,
the counts of earlier events of the user, the item, the item's category, the user in that category
and the user with that item (``<scope>_<behaviour>_count``); the hours since the user's previous
event and since the user last touched the item (behaviour task: since the log began when there is
none; purchase task: up to the anchor); the item's share of all earlier events (``item_popularity``);
the hour and weekday (of the event; purchase task: hour of the pair's last event, weekday of the
anchor); the item and category as capped-vocabulary codes; and the user's ``sequence_length`` most
recent earlier events (purchase task: inside the feature window) as sequence groups ``hist_item``,
``hist_category`` (when the log has categories) and ``hist_behavior`` (behaviour code + 1), most recent
first, ``0`` = padding. Numeric features have no missing values.

Vocabularies (which items / categories get their own code) are chosen by frequency over the events
before the test cut of the split the dataset is built for (``build_dataset(..., split=...)``; for a
temporal split, the time at which its test part starts), so no item gets a code, or displaces another,
for being frequent in the test period; an item first seen in the test period gets code 0, like a rare
one. The behaviour task reads every event before the cut, the purchase task those of its windows
before it. A stratified split has no test period (its test rows are drawn from the whole time range),
and without a split the whole log is read; both choose from every event the task reads. Codes are
numbered by first appearance, so as long as the cap does not bind, a code does not depend on later events.

Everything is vectorised numpy over the log's categorical codes (counts by ``bincount`` and prefix
sums over a stable sort by key); no Python loop runs over rows.

>>> from recexp.data.samples import load_sample
>>> spec = SplitSpec(method="temporal", test_size=0.2)
>>> dataset = build_dataset(load_sample("taobao"), "behavior", split=spec, sequence_length=5)
>>> dataset.schema.classes
('view', 'cart', 'fav', 'buy')
>>> split = split_dataset(dataset, spec)
"""

from __future__ import annotations

import hashlib
import json
import re
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recexp.data.log import FUNNEL, BehaviorLog, FeatureTable, frame_fingerprint
from recexp.dataset import ITEM, LABEL, SAMPLE_WEIGHT, IS_SYNTHETIC, TIME, USER, Dataset, FeatureSchema, Split, code_dtype
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import N_, _, format_integer
from recexp.memory import memory_limit
from recexp.params import Bool, Choice, Float, Int, Optional, Param, Parametrized

NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR
SEQUENCE_GROUPS = ("hist_item", "hist_category", "hist_behavior")
#: Meta column of the next-item task: each row's leave-last-out part (0 train, 1 validation, 2 test).
HOLDOUT = "holdout"
#: The split method that holds out each user's last events (next-item task).
LEAVE_LAST_OUT = "leave_last_out"
_RESERVED = {LABEL, USER, TIME, IS_SYNTHETIC, SAMPLE_WEIGHT}


# --- reading a log into arrays --------------------------------------------------------------------


@dataclass
class _LogArrays:
    """A behaviour log as flat numpy arrays in time order (codes into the log's categories)."""

    user: np.ndarray            # integer codes 0..n_users-1 (the categorical's own width: no copy)
    item: np.ndarray            # integer codes 0..n_items-1
    category: np.ndarray        # integer codes 0..n_categories-1, -1 = missing (all -1 without a category)
    behavior: np.ndarray        # int8 codes into ``classes``
    time: np.ndarray            # int64 nanoseconds since the epoch, UTC, non-decreasing
    classes: tuple[str, ...]    # behaviours present: funnel stages in funnel order, then others sorted
    users: pd.Index             # user id of each user code
    items: pd.Index             # item id of each item code
    categories: pd.Index        # category id of each category code

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    def __len__(self) -> int:
        return len(self.time)

    def int64(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """``user, item, category, behavior`` of events ``start:stop`` as int64 (for key arithmetic)."""
        return tuple(np.asarray(a[start:stop], dtype=np.int64)
                     for a in (self.user, self.item, self.category, self.behavior))


def _codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (``-1`` = missing) and the values they stand for."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), pd.Index(series.cat.categories)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def _time_ns(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 UTC nanoseconds (naive date-times are taken as UTC)."""
    if series.dtype == pd.DatetimeTZDtype("ns", "UTC"):             # what recexp.data.load gives: no copy
        values = series.array.asi8
        missing = int(np.count_nonzero(values == np.iinfo(np.int64).min))      # NaT
        if missing:
            raise InvalidDataError(
                _("The log has {missing:,} events without a timestamp. Drop them "
                  "(recexp.data.load does).").format(missing=missing))
        return values
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        series = series.dt.tz_localize("UTC")
    else:
        raise InvalidDataError(
            _("The log's 'timestamp' column has type {dtype}, not date-times. Read the file with "
              "recexp.data.load, which converts epoch numbers and date-time text to "
              "UTC date-times.").format(dtype=series.dtype))
    if series.isna().any():
        raise InvalidDataError(
            _("The log has {series:,} events without a timestamp. Drop "
              "them (recexp.data.load does).").format(series=int(series.isna().sum())))
    return series.dt.as_unit("ns").array.asi8.astype(np.int64, copy=False)


def _behavior_classes(present: set[str]) -> tuple[str, ...]:
    """The behaviours present as classes: funnel stages in funnel order, then the others sorted."""
    return tuple([s for s in FUNNEL if s in present] + sorted(present - set(FUNNEL)))


def _log_arrays(log: BehaviorLog) -> _LogArrays:
    frame = log.frame
    missing = [c for c in ("user_id", "item_id", "behavior", "timestamp") if c not in frame.columns]
    if missing:
        raise InvalidDataError(
            _("The behaviour log lacks the column(s) {missing}. Read it with recexp.data.load, which maps the "
              "file's columns to user_id, item_id, behavior and timestamp.").format(missing=', '.join(missing)))
    if len(frame) == 0:
        raise InvalidDataError(_("The behaviour log has no events. Load a file with at least a few hundred "
                                 "events."))
    time = _time_ns(frame["timestamp"])
    order = None
    if len(time) > 1 and bool(np.any(time[1:] < time[:-1])):
        order = np.argsort(time, kind="stable")
        time = time[order]

    def take(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    user, users = _codes(frame["user_id"])
    item, items = _codes(frame["item_id"])
    if (user < 0).any() or (item < 0).any():
        raise InvalidDataError(
            _("Some events have no user or no item id. Drop them before building a task (recexp.data.load does)."))
    if "category_id" in frame.columns:
        category, categories = _codes(frame["category_id"])
    else:
        category, categories = np.full(len(frame), -1, dtype=np.int8), pd.Index([])
    raw_behavior, names = _codes(frame["behavior"].astype("string") if not isinstance(
        frame["behavior"].dtype, pd.CategoricalDtype) else frame["behavior"])
    if (raw_behavior < 0).any():
        raise InvalidDataError(
            _("{count:,} events have no behaviour. Drop them "
              "(recexp.data.load does).").format(count=int((raw_behavior < 0).sum())))
    if len(names) <= 16:            # a few passes over small codes beat one bincount (which widens them to int64)
        present = {str(names[k]) for k in range(len(names)) if np.any(raw_behavior == k)}
    else:
        present = {str(names[k]) for k in np.flatnonzero(np.bincount(raw_behavior, minlength=len(names)))}
    classes = _behavior_classes(present)
    lookup = np.array([classes.index(str(name)) if str(name) in present else -1 for name in names], dtype=np.int8)
    return _LogArrays(
        user=take(user), item=take(item), category=take(category), behavior=take(lookup[raw_behavior]),
        time=time, classes=classes, users=users, items=items, categories=categories,
    )


def _vocabulary(codes: np.ndarray, n_values: int, max_vocab: int, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Capped vocabulary codes for ``codes`` (time-ordered, ``-1`` = missing): ``1..k``, ``0`` = missing/rare.

    Chosen from ``codes[:stop]`` (the events before the test cut; all when ``stop`` is None): the
    ``max_vocab`` most frequent values there are kept (ties: earlier first appearance wins) and numbered
    by first appearance; values not seen before ``stop`` get ``0``. Returns a lookup of length
    ``n_values + 1`` (index ``-1`` gives ``0``) and ``k``.
    """
    seen = codes[:stop]
    valid = seen >= 0
    values = seen if valid.all() else seen[valid]
    first_seen = pd.unique(values)                   # in order of first appearance
    if len(first_seen) > max_vocab:
        counts = np.bincount(values, minlength=n_values)
        top = first_seen[np.argsort(-counts[first_seen], kind="stable")[:max_vocab]]   # stable: earlier wins ties
        chosen = np.zeros(n_values, dtype=bool)
        chosen[top] = True
        first_seen = first_seen[chosen[first_seen]]
    lookup = np.zeros(n_values + 1, dtype=code_dtype(max_vocab))     # by the cap: the same for any subset
    lookup[first_seen] = np.arange(1, len(first_seen) + 1)
    return lookup, len(first_seen)


def _code_names(lookup: np.ndarray, values: pd.Index, n_codes: int) -> tuple[str, ...]:
    """The source value of each vocabulary code ``1..n_codes`` of a :func:`_vocabulary` lookup, as text."""
    names = np.empty(n_codes, dtype=object)
    codes = lookup[:len(values)]
    kept = codes > 0
    names[codes[kept] - 1] = values[kept].astype(str)
    return tuple(names)


def _test_start(row_times: np.ndarray, split: SplitSpec | None) -> int | None:
    """When ``split``'s test part starts (ns) on rows at ``row_times``, as :func:`split_dataset` will cut it.

    ``None`` when there is no test period: no split given, or a stratified one.
    """
    if split is None or split.method != "temporal" or len(row_times) == 0:
        return None
    split.validate()
    return int(row_times[_temporal_cut(row_times, split.test_size, "test")].min())


def _slug(name: str) -> str:
    return re.sub(r"\W+", "_", str(name)).strip("_").lower() or "value"


def _fingerprint(source: BehaviorLog | FeatureTable) -> str:
    return source.fingerprint or frame_fingerprint(source.frame)


def _hour_weekday(time_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour of day (0-23) and weekday (Monday = 0) as float32."""
    days = time_ns // NS_PER_DAY
    hour = (time_ns - days * NS_PER_DAY) // NS_PER_HOUR
    return hour.astype(np.float32), ((days + 3) % 7).astype(np.float32)   # 1970-01-01 was a Thursday


class _History:
    """Per-key history of each event: what happened to the same key strictly earlier in time.

    Events are stably sorted by key (they arrive in time order, so each key's events stay in time
    order); ``group_start`` is the first position of the event's key, ``block_start`` the first
    position of the events of the same key *and the same timestamp*. Everything before
    ``block_start`` within the group is strictly earlier history.
    """

    def __init__(self, key: np.ndarray, time: np.ndarray):
        n = len(key)
        position_type = np.int32 if n < 2**31 else np.int64     # positions: half the memory of a large log's
        self.order = np.argsort(key, kind="stable").astype(position_type, copy=False)
        sorted_key, sorted_time = key[self.order], time[self.order]
        positions = np.arange(n, dtype=position_type)
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = sorted_key[1:] != sorted_key[:-1]
        new_block = new_group.copy()
        new_block[1:] |= sorted_time[1:] != sorted_time[:-1]
        self.group_start = np.maximum.accumulate(np.where(new_group, positions, 0))
        self.block_start = np.maximum.accumulate(np.where(new_block, positions, 0))
        self.sorted_time = sorted_time

    def _unsort(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out

    def counts(self, codes: np.ndarray, n_codes: int) -> np.ndarray:
        """``(n, n_codes)`` float32: earlier events of the same key with each code."""
        sorted_codes = codes[self.order]
        out = np.empty((len(codes), n_codes), dtype=np.float32)
        for code in range(n_codes):
            hit = (sorted_codes == code).astype(np.int64)
            before = np.cumsum(hit) - hit                   # events of this code at earlier positions
            out[self.order, code] = before[self.block_start] - before[self.group_start]
        return out

    def total(self) -> np.ndarray:
        """Earlier events of the same key (any code), as int64."""
        return self._unsort(self.block_start - self.group_start)

    def hours_since_previous(self, fallback_ns: np.ndarray) -> np.ndarray:
        """Hours since the key's latest strictly earlier event; ``fallback_ns`` (in ns) where there is none."""
        has_previous = self.block_start > self.group_start
        previous = self.sorted_time[np.maximum(self.block_start - 1, 0)]
        gap = np.where(has_previous, self.sorted_time - previous, fallback_ns[self.order])
        return self._unsort((gap / NS_PER_HOUR).astype(np.float32))

    def sequence(self, values: np.ndarray, length: int) -> np.ndarray:
        """``(n, length)``, ``values``' dtype: the key's latest strictly earlier events, most recent first."""
        sorted_values = values[self.order]
        out = np.zeros((len(values), length), dtype=values.dtype)
        for lag in range(length):
            index = self.block_start - 1 - lag
            valid = index >= self.group_start
            out[self.order, lag] = np.where(valid, sorted_values[np.maximum(index, 0)], 0)
        return out


def _sequence_columns(length: int, has_category: bool) -> dict[str, tuple[str, ...]]:
    """Column names of each sequence group (no ``hist_category`` when the log has no categories)."""
    groups = [g for g in SEQUENCE_GROUPS if has_category or g != "hist_category"]
    return {group: tuple(f"{group}_{j}" for j in range(length)) for group in groups} if length else {}


# --- tasks ----------------------------------------------------------------------------------------


class Task(Parametrized):
    """Base of every task builder: ``build(source)`` validates, then calls ``_build``.

    Subclasses set ``name``, ``description``, ``input_kinds`` (``"log"`` and/or ``"table"``) and
    ``params``, write an ``__init__`` that only stores its keyword arguments, and ``_build``.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_kinds: ClassVar[tuple[str, ...]] = ()
    #: "classification" (a label per row, scored as classes) or "ranking" (the label is an item of a catalogue,
    #: scored by ranking all items); strategies and models declare which kinds they apply to.
    kind: ClassVar[str] = "classification"
    params: ClassVar[dict[str, Param]] = {
        "max_vocab": Int(1, None, help="Largest number of distinct ids (items, categories, category values) "
                                       "that get their own code; rarer ones share code 0."),
    }

    def build(self, source: BehaviorLog | FeatureTable, split: SplitSpec | None = None) -> Dataset:
        """Turn ``source`` into a :class:`~recexp.dataset.Dataset`.

        Parameters
        ----------
        source : BehaviorLog or FeatureTable
            What :func:`recexp.data.load` returned.
        split : SplitSpec, optional
            The split the dataset will be split with: log tasks choose their vocabularies from the events
            before its test cut (see the module docstring). Without it, from the whole log.

        Returns
        -------
        Dataset
            Features, integer ``label`` and (for logs) ``user_id`` / ``item_id`` / ``event_time`` meta columns.

        Raises
        ------
        InvalidParameterError
            A parameter is outside its spec, or infeasible for this data.
        InvalidDataError
            The data cannot make this task (e.g. a single behaviour, no purchases).
        """
        self._check_source(source)
        return self._build(source, split)

    def class_counts(self, source: BehaviorLog | FeatureTable) -> dict[str, int]:
        """Rows per class (in class order) of the dataset :meth:`build` makes from ``source``.

        This builds the dataset; a task whose labels need no features overrides it to count them
        without building (a large log's features take gigabytes; its labels a few bytes).
        """
        return self.build(source).class_counts()

    def _check_source(self, source: BehaviorLog | FeatureTable) -> None:
        """Validate the parameters, and that ``source`` is an input kind this task takes."""
        self.validate_params()
        kind = getattr(source, "kind", None)
        if kind not in self.input_kinds:
            raise InvalidParameterError(
                _("The '{name}' task needs a {input_kinds} ({kind_name}), but got {given}. Tasks for this input: "
                  "{tasks}.").format(
                  name=self.name, input_kinds=' or '.join(self.input_kinds),
                  kind_name=_('behaviour log') if 'log' in self.input_kinds else _('feature table'),
                  given=_('a behaviour log') if kind == 'log' else _('a feature table') if kind == 'table' else type(source).__name__,
                  tasks=', '.join(n for n, t in TASKS.items() if kind in t.input_kinds) or _('none')))

    def _build(self, source: Any, split: SplitSpec | None) -> Dataset:
        raise NotImplementedError


class BehaviorTask(Task):
    """Behaviour-type classification: one sample per event, label = its behaviour (view/cart/fav/buy)."""

    name = "behavior"
    description = "Which behaviour is each event (view / cart / fav / buy)? One sample per event."
    input_kinds = ("log",)
    params = {
        **Task.params,
        "sequence_length": Int(0, 200, help="How many of the user's previous events form the behaviour "
                                            "sequence (0: no sequence features)."),
    }

    def __init__(self, sequence_length: int = 10, max_vocab: int = 20_000):
        self.sequence_length = sequence_length
        self.max_vocab = max_vocab

    def class_counts(self, log: BehaviorLog) -> dict[str, int]:
        """Events per behaviour: the labels are the behaviours, so nothing is built."""
        self._check_source(log)
        counts = log.frame["behavior"].value_counts(dropna=True)
        counts = {str(name): int(count) for name, count in counts.items() if count > 0}
        self._check_classes(tuple(counts))
        return {name: counts[name] for name in _behavior_classes(set(counts))}

    @staticmethod
    def _check_classes(classes: tuple[str, ...]) -> None:
        if len(classes) < 2:
            raise InvalidDataError(
                _("The log has a single behaviour {classes!r}; behaviour classification needs at least two. Map "
                  "the behaviour role to the column that tells event types apart, or use the 'purchase' task on "
                  "a log with purchases.").format(classes=classes[0]))

    def _build(self, log: BehaviorLog, split: SplitSpec | None) -> Dataset:
        data = _log_arrays(log)
        self._check_classes(data.classes)
        n_classes = len(data.classes)
        user, item, category, behavior = data.int64()
        time = data.time
        category = category + 1                          # 0 = missing category
        has_category = data.n_categories > 0
        columns: dict[str, np.ndarray] = {}
        numeric: list[str] = []

        def add(name: str, values: np.ndarray) -> None:
            columns[name] = values.astype(np.float32, copy=False)
            numeric.append(name)

        names = [_slug(c) for c in data.classes]
        user_history = _History(user, time)
        item_history = _History(item, time)
        pair_history = _History(user * data.n_items + item, time)
        scopes = [("user", lambda: user_history), ("item", lambda: item_history)]
        if has_category:              # made when counted, and let go then (a history holds 20 bytes an event)
            scopes += [("category", lambda: _History(category, time)),
                       ("user_category", lambda: _History(user * (data.n_categories + 1) + category, time))]
        scopes.append(("user_item", lambda: pair_history))
        for scope, history in scopes:
            counts = history().counts(behavior, n_classes)
            if scope in ("category", "user_category"):
                counts[category == 0] = 0.0              # no category: nothing to count
            for k, name in enumerate(names):
                add(f"{scope}_{name}_count", counts[:, k])

        since_start = time - time[0]                     # no previous event: time since the log began
        add("user_hours_since_prev", user_history.hours_since_previous(since_start))
        add("user_item_hours_since_prev", pair_history.hours_since_previous(since_start))
        earlier_events = np.searchsorted(time, time, side="left")
        add("item_popularity", item_history.total() / np.maximum(earlier_events, 1))
        hour, weekday = _hour_weekday(time)
        add("hour", hour)
        add("weekday", weekday)

        test_start = _test_start(time, split)           # one sample per event: the events are the rows
        stop = None if test_start is None else int(np.searchsorted(time, test_start, side="left"))
        item_lookup, n_item_codes = _vocabulary(data.item, data.n_items, self.max_vocab, stop)
        category_lookup, n_category_codes = _vocabulary(data.category, data.n_categories, self.max_vocab, stop)
        item_codes = item_lookup[data.item]
        category_codes = category_lookup[data.category]
        categorical = ["item", "category"] if has_category else ["item"]
        columns["item"] = item_codes
        if has_category:
            columns["category"] = category_codes
        cardinality = {"item": n_item_codes, "category": n_category_codes}
        vocabulary = {"item": _code_names(item_lookup, data.items, n_item_codes),
                      "category": _code_names(category_lookup, data.categories, n_category_codes)}
        vocabulary.update(hist_item=vocabulary["item"], hist_category=vocabulary["category"],
                          hist_behavior=data.classes)

        sequences = _sequence_columns(self.sequence_length, has_category)
        if self.sequence_length:
            for group, values, size in (("hist_item", item_codes, n_item_codes),
                                        ("hist_category", category_codes, n_category_codes),
                                        ("hist_behavior", (behavior + 1).astype(code_dtype(n_classes)),
                                         n_classes)):
                if group not in sequences:
                    continue
                block = user_history.sequence(values, self.sequence_length)
                for j, column in enumerate(sequences[group]):
                    columns[column] = block[:, j]
                cardinality[group] = size

        columns[LABEL] = behavior
        frame = pd.DataFrame(columns, copy=False)     # one block per column: no consolidating copy
        frame[USER] = pd.Categorical.from_codes(user, categories=data.users)
        frame[ITEM] = pd.Categorical.from_codes(data.item, categories=data.items)
        frame[TIME] = pd.DatetimeIndex(time.view("M8[ns]")).tz_localize("UTC")
        schema = FeatureSchema(numeric=tuple(numeric), categorical=tuple(categorical), classes=data.classes,
                               sequences=sequences, cardinality={k: v for k, v in cardinality.items()
                                                                 if k in categorical or k in sequences},
                               vocabulary={k: v for k, v in vocabulary.items() if k in categorical or k in sequences})
        return Dataset(frame=frame, schema=schema, task=self.name, fingerprint=_fingerprint(log))


class PurchaseTask(Task):
    """Purchase prediction: does a (user, item) pair active before an anchor buy in the label window?"""

    name = "purchase"
    description = ("Will a user buy an item they interacted with? One sample per user-item pair and anchor; "
                   "label: a buy in the next label window.")
    input_kinds = ("log",)
    params = {
        **Task.params,
        "label_window_days": Float(0, None, low_open=True,
                                   help="Length of the window after each anchor in which a buy counts (days)."),
        "feature_window_days": Optional(Float(0, None, low_open=True),
                                        help="How far back before each anchor behaviour is used for features and "
                                             "candidate pairs (days); None: all earlier history."),
        "n_windows": Int(1, 100, help="Number of anchors, one label window apart, ending at the log's last event."),
        "sequence_length": Int(0, 200, help="How many of the user's events before the anchor form the behaviour "
                                            "sequence (0: no sequence features)."),
    }

    def __init__(self, label_window_days: float = 1.0, feature_window_days: float | None = 1.0,
                 n_windows: int = 5, sequence_length: int = 5, max_vocab: int = 20_000):
        self.label_window_days = label_window_days
        self.feature_window_days = feature_window_days
        self.n_windows = n_windows
        self.sequence_length = sequence_length
        self.max_vocab = max_vocab

    def _anchors(self, time: np.ndarray) -> tuple[np.ndarray, int, int | None]:
        window = int(round(self.label_window_days * NS_PER_DAY))
        history = None if self.feature_window_days is None else int(round(self.feature_window_days * NS_PER_DAY))
        end = (int(time[-1]) // 10**9 + 1) * 10**9        # whole seconds; the last window holds the last event
        anchors = end - window * np.arange(self.n_windows, 0, -1, dtype=np.int64)
        if anchors[0] <= time[0]:
            span = (end - int(time[0])) / NS_PER_DAY
            raise InvalidParameterError(
                _("n_windows={n_windows} label windows of label_window_days={label_window_days} reach back "
                  "{n_windows2:g} days, but the log spans only {span:.2f} days, so the first anchor has no "
                  "history before it. Lower n_windows or label_window_days.").format(
                  n_windows=self.n_windows, label_window_days=self.label_window_days,
                  n_windows2=self.n_windows * self.label_window_days, span=span))
        return anchors, window, history

    def _build(self, log: BehaviorLog, split: SplitSpec | None) -> Dataset:
        data = _log_arrays(log)
        if "buy" not in data.classes:
            raise InvalidDataError(
                _("The log has no 'buy' events (its behaviours: {classes}); the purchase task needs purchases to "
                  "label. Map the behaviour role to the right column, or "
                  "use the 'behavior' task.").format(classes=', '.join(data.classes)))
        anchors, window, history = self._anchors(data.time)
        buy = data.classes.index("buy")
        n_classes = len(data.classes)
        starts = np.full(len(anchors), data.time[0]) if history is None else anchors - history
        lo = np.searchsorted(data.time, starts, side="left")
        mid = np.searchsorted(data.time, anchors, side="left")
        hi = np.searchsorted(data.time, anchors + window, side="left")
        first, last = int(lo.min()), int(hi.max())
        label_buys = int(np.count_nonzero(data.behavior[int(mid.min()):last] == buy))
        if label_buys == 0:
            raise InvalidDataError(
                _("The label windows leave no buy events: the {n_windows} window(s) of {label_window_days:g} "
                  "days before the log's last event hold no purchase. Lengthen label_window_days or n_windows, "
                  "or use a log with purchases in its last days.").format(
                  n_windows=self.n_windows, label_window_days=self.label_window_days))

        # Only the range covered by some feature or label window is read; pairs are factorised once.
        user, item, category, behavior = data.int64(first, last)
        time = data.time[first:last]
        lo, mid, hi = lo - first, mid - first, hi - first
        n_users, n_items, n_cats = len(data.users), data.n_items, data.n_categories
        pair_key = user * n_items
        pair_key += item
        pair, pair_keys = pd.factorize(pair_key)
        del pair_key
        pair_user, pair_item = pair_keys // n_items, pair_keys % n_items
        n_pairs = len(pair_keys)
        windows = []                                     # (anchor, start, anchor index, label end, candidates)
        for k, anchor in enumerate(anchors):
            s, e, h = int(lo[k]), int(mid[k]), int(hi[k])
            if e > s:
                windows.append((int(anchor), s, e, h, np.flatnonzero(np.bincount(pair[s:e], minlength=n_pairs))))
        n_rows = sum(len(w[4]) for w in windows)

        names = [_slug(c) for c in data.classes]
        scopes = ["user", "item"] + (["category", "user_category"] if n_cats else []) + ["user_item"]
        numeric = [f"{scope}_{name}_count" for scope in scopes for name in names]
        numeric += ["user_hours_since_prev", "user_item_hours_since_prev", "item_popularity", "hour", "weekday"]
        categorical = ["item", "category"] if n_cats else ["item"]
        length = self.sequence_length
        sequences = _sequence_columns(length, n_cats > 0)
        integer = categorical + [c for cols in sequences.values() for c in cols]
        at = {name: i for i, name in enumerate(numeric)}
        at.update({name: i for i, name in enumerate(integer)})
        # The rows are the candidates of each anchor, stamped with the anchor's time.
        test_start = _test_start(np.repeat([w[0] for w in windows], [len(w[4]) for w in windows]), split)
        stop = None if test_start is None else int(np.searchsorted(time, test_start, side="left"))
        item_lookup, n_item_codes = _vocabulary(item, n_items, self.max_vocab, stop)
        category_lookup, n_category_codes = _vocabulary(category, n_cats, self.max_vocab, stop)
        numbers = np.empty((len(numeric), n_rows), dtype=np.float32)     # pandas' block layout: no copy later
        integers = np.empty((len(integer), n_rows), dtype=np.result_type(   # every code column, one block
            item_lookup, category_lookup, code_dtype(n_classes)))
        labels = np.empty(n_rows, dtype=np.int64)
        user_codes = np.empty(n_rows, dtype=np.int64)
        item_codes = np.empty(n_rows, dtype=np.int64)
        anchor_times = np.empty(n_rows, dtype=np.int64)
        if n_cats:                                       # user-category ids, over the feature windows only
            feature_end = int(mid.max())
            user_cat_key = user[:feature_end] * (n_cats + 1)
            user_cat_key += category[:feature_end] + 1
            user_cat, user_cat_keys = pd.factorize(user_cat_key)
            del user_cat_key
            n_user_cats = len(user_cat_keys)
        if length:
            history = {"hist_item": item_lookup[item], "hist_category": category_lookup[category],
                       "hist_behavior": behavior + 1}
            history = {group: values for group, values in history.items() if group in sequences}
        positions = np.arange(len(time))
        local = np.empty(max(n_pairs, n_user_cats if n_cats else 0), dtype=np.int64)   # id -> row in a window
        offset = 0
        for anchor, s, e, h, candidates in windows:
            n_cand = len(candidates)
            rows = slice(offset, offset + n_cand)
            offset += n_cand
            b = behavior[s:e]

            def write_counts(scope: str, keys: np.ndarray, size: int, take: np.ndarray,
                             blank: np.ndarray | None = None) -> None:
                """Per-behaviour event counts of each candidate's ``take`` id, one feature row each."""
                index = keys * n_classes
                index += b
                counts = np.bincount(index, minlength=size * n_classes).reshape(size, n_classes)
                first_column = at[f"{scope}_{names[0]}_count"]
                block = numbers[first_column:first_column + n_classes, rows]    # one column per behaviour
                block[:] = counts[take].T
                if blank is not None:
                    block[:, blank] = 0

            local[candidates] = np.arange(n_cand)
            row_of_event = local[pair[s:e]]
            last_event = np.full(n_cand, -1, dtype=np.int64)
            np.maximum.at(last_event, row_of_event, positions[s:e])
            cand_user, cand_item = pair_user[candidates], pair_item[candidates]
            cand_cat = category[last_event]              # the item's category at the pair's last event
            write_counts("user", user[s:e], n_users, cand_user)
            write_counts("item", item[s:e], n_items, cand_item)
            if n_cats:
                no_cat = cand_cat < 0
                write_counts("category", category[s:e] + 1, n_cats + 1, cand_cat + 1, no_cat)
                groups = user_cat[s:e]
                present = np.flatnonzero(np.bincount(groups, minlength=n_user_cats))
                local[present] = np.arange(len(present))
                write_counts("user_category", local[groups], len(present), local[user_cat[last_event]], no_cat)
            write_counts("user_item", row_of_event, n_cand, np.arange(n_cand))

            user_last = np.full(n_users, -1, dtype=np.int64)
            np.maximum.at(user_last, user[s:e], positions[s:e])
            numbers[at["user_hours_since_prev"], rows] = (anchor - time[user_last[cand_user]]) / NS_PER_HOUR
            numbers[at["user_item_hours_since_prev"], rows] = (anchor - time[last_event]) / NS_PER_HOUR
            numbers[at["item_popularity"], rows] = np.bincount(item[s:e], minlength=n_items)[cand_item] / (e - s)
            numbers[at["hour"], rows] = _hour_weekday(time[last_event])[0]
            numbers[at["weekday"], rows] = _hour_weekday(np.array([anchor]))[1][0]
            integers[at["item"], rows] = item_lookup[cand_item]
            if n_cats:
                integers[at["category"], rows] = category_lookup[cand_cat]
            if length:
                self._sequences(integers, at, rows, history, user[s:e], positions[s:e], user_last, cand_user)
            buyers = pair[e:h][behavior[e:h] == buy]
            labels[rows] = np.isin(candidates, buyers)
            user_codes[rows] = cand_user
            item_codes[rows] = cand_item
            anchor_times[rows] = anchor

        if not labels.any():
            raise InvalidDataError(
                _("No candidate pair converts: the label windows hold {label_buys:,} buy event(s), but none is "
                  "by a user-item pair active in the feature window before its anchor. Lengthen "
                  "feature_window_days (or set it to None) or label_window_days.").format(label_buys=label_buys))
        frame = pd.concat([pd.DataFrame(numbers.T, columns=numeric, copy=False),
                           pd.DataFrame(integers.T, columns=integer, copy=False)], axis=1)
        frame[LABEL] = labels
        frame[USER] = pd.Categorical.from_codes(user_codes, categories=data.users)
        frame[ITEM] = pd.Categorical.from_codes(item_codes, categories=data.items)
        frame[TIME] = pd.DatetimeIndex(anchor_times.view("M8[ns]")).tz_localize("UTC")
        cardinality = {"item": n_item_codes, "category": n_category_codes, "hist_item": n_item_codes,
                       "hist_category": n_category_codes, "hist_behavior": n_classes}
        item_names = _code_names(item_lookup, data.items, n_item_codes)
        category_names = _code_names(category_lookup, data.categories, n_category_codes)
        vocabulary = {"item": item_names, "category": category_names, "hist_item": item_names,
                      "hist_category": category_names, "hist_behavior": data.classes}
        schema = FeatureSchema(numeric=tuple(numeric), categorical=tuple(categorical), classes=("no_buy", "buy"),
                               sequences=sequences,
                               cardinality={k: v for k, v in cardinality.items() if k in categorical or k in sequences},
                               vocabulary={k: v for k, v in vocabulary.items() if k in categorical or k in sequences})
        return Dataset(frame=frame, schema=schema, task=self.name, fingerprint=_fingerprint(log))

    def _sequences(self, integers: np.ndarray, at: dict[str, int], rows: slice, values: dict[str, np.ndarray],
                   window_user: np.ndarray, window_positions: np.ndarray, user_last: np.ndarray,
                   cand_user: np.ndarray) -> None:
        """Write each candidate's user's latest events of the window, most recent first (0 = padding).

        Round ``j`` finds every user's ``j``-th latest event as the largest position before the previous
        round's; events already used fall out, so each round only scans what is left.
        """
        latest = user_last.copy()                        # -1: the user has no more events in the window
        remaining_user, remaining_position = window_user, window_positions
        for j in range(self.sequence_length):
            found = latest[cand_user]
            valid = found >= 0
            for group, column_values in values.items():
                integers[at[f"{group}_{j}"], rows] = np.where(valid, column_values[np.maximum(found, 0)], 0)
            if j + 1 == self.sequence_length:
                break
            keep = remaining_position < latest[remaining_user]
            remaining_user, remaining_position = remaining_user[keep], remaining_position[keep]
            latest = np.full_like(latest, -1)
            np.maximum.at(latest, remaining_user, remaining_position)


class TableTask(Task):
    """A feature table as it is: label values become classes, numbers float32, categories capped codes."""

    name = "table"
    description = "A feature table as it is (e.g. Criteo clicks): its label column is the class."
    input_kinds = ("table",)
    params = dict(Task.params)

    def __init__(self, max_vocab: int = 10_000):
        self.max_vocab = max_vocab

    def _build(self, table: FeatureTable, split: SplitSpec | None) -> Dataset:
        # A table has no times: it splits stratified only, so there is no test period to keep out of the
        # vocabularies (they count every row).
        frame = table.frame
        if table.label_column not in frame.columns:
            raise InvalidDataError(
                _("The feature table has no label column "
                  "{label_column!r}. Name the column that holds the class.").format(label_column=table.label_column))
        labels = frame[table.label_column]
        known = labels.dropna()
        if len(known) < len(labels):
            raise InvalidDataError(
                _("{n_labels:,} rows have no label in '{label_column}'. Drop them (recexp.data.load does) or "
                  "fill them in.").format(
                  n_labels=len(labels) - len(known), label_column=table.label_column))
        values = sorted(pd.unique(known.to_numpy()), key=lambda v: (isinstance(v, str), v))
        if len(values) < 2:
            only = f"a single value ({values[0]!r})" if values else "no value"
            raise InvalidDataError(
                _("The label column '{label_column}' has {only} in every row; there are no classes to learn. "
                  "Name the column that holds the class.").format(
                  label_column=table.label_column, only=only))
        classes = tuple(str(v) for v in values)
        codes = pd.Categorical(labels, categories=values).codes.astype(np.int64)

        def column_name(name: str) -> str:
            return f"feature_{name}" if name in _RESERVED else str(name)

        columns: dict[str, np.ndarray] = {}
        cardinality: dict[str, int] = {}
        vocabulary: dict[str, tuple[str, ...]] = {}
        for name in table.numeric:
            columns[column_name(name)] = pd.to_numeric(frame[name], errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan)
        for name in table.categorical:
            column_codes, uniques = _codes(frame[name])
            counts = np.bincount(column_codes[column_codes >= 0], minlength=len(uniques))
            ranked = np.lexsort((np.arange(len(uniques)), -counts))[: min(self.max_vocab, int((counts > 0).sum()))]
            lookup = np.zeros(len(uniques) + 1, dtype=code_dtype(self.max_vocab))
            lookup[ranked] = np.arange(1, len(ranked) + 1)        # most frequent value first; 0 = missing/rare
            columns[column_name(name)] = lookup[column_codes]
            cardinality[column_name(name)] = len(ranked)
            vocabulary[column_name(name)] = tuple(uniques[ranked].astype(str))
        columns[LABEL] = codes
        schema = FeatureSchema(
            numeric=tuple(column_name(n) for n in table.numeric),
            categorical=tuple(column_name(n) for n in table.categorical),
            classes=classes, cardinality=cardinality, vocabulary=vocabulary)
        return Dataset(frame=pd.DataFrame(columns), schema=schema, task=self.name, fingerprint=_fingerprint(table))


# --- next item (ranking) ------------------------------------------------------------------------


#: Label of code 0 of the item vocabulary: an item rarer than the cap, or first seen as a test target.
RARE = "rare/missing"
#: ``holdout`` values.
TRAIN, VALID, TEST = 0, 1, 2


class NextItemTask(Task):
    """Next-item prediction: one sample per event with history, label = the event's item (ranking).

    Features are the user's ``sequence_length`` most recent **strictly earlier** events (sequence groups
    ``hist_item``, ``hist_category`` when the log has categories, ``hist_behavior``; most recent first, ``0`` =
    padding); the label is the event's item as a vocabulary code, so the label space is the item vocabulary
    (``classes[0]`` is :data:`RARE`) and a model scores every item of the catalogue (a softmax over items).

    Protocols (the split's ``method``): ``leave_last_out`` (the field's protocol, the default): per user, events
    in time order, the last event with history is the test target, the one before it validation, the rest
    training (users with fewer than three such events train only); with ``target="buy"`` the test target is the
    user's last buy, the event before it validation, and the user's events after that buy are not used at all.
    ``temporal``: one cut in time for every user (:func:`split_dataset`).

    Vocabularies come from training-side events only: for ``leave_last_out`` every event before each user's test
    target, for ``temporal`` the events before the test period; an item first seen as a test target gets code 0
    and is a miss in every metric. With ``leave_last_out``, training and validation rows whose target is outside
    the vocabulary (rarer than the cap) are left out, since they teach (and check) nothing about ranking the
    catalogue: early stopping would otherwise watch a loss on items no model can learn. Test rows keep them (they
    are misses), and their events stay in later rows' histories. Meta columns, not features: ``holdout`` (0
    train, 1 validation, 2 test; what ``split_dataset`` reads for ``leave_last_out``) and ``category`` (the
    target's category code, for slices).
    """

    name = "next_item"
    kind = "ranking"
    description = ("Which item does the user touch next? One sample per event with history; label: its item, "
                   "scored by ranking the whole catalogue.")
    input_kinds = ("log",)
    params = {
        **Task.params,
        "sequence_length": Int(1, 200, help="How many of the user's previous events form the history."),
        "target": Choice({"any": "the last interaction of each user is the test target",
                          "buy": "the last buy of each user is the test target (leave-last-out only)"},
                         help="Which event of a user is held out for testing."),
    }

    def __init__(self, sequence_length: int = 20, target: str = "any", max_vocab: int = 20_000):
        self.sequence_length = sequence_length
        self.target = target
        self.max_vocab = max_vocab

    def _build(self, log: BehaviorLog, split: SplitSpec | None) -> Dataset:
        method = split.method if split is not None else LEAVE_LAST_OUT
        if self.target == "buy" and method != LEAVE_LAST_OUT:
            raise InvalidParameterError(_(
                "target='buy' holds out each user's last buy, which is a leave-last-out protocol; with the split "
                "method {method!r} use target='any', or split with method='leave_last_out'.").format(method=method))
        data = _log_arrays(log)
        if self.target == "buy" and "buy" not in data.classes:
            raise InvalidDataError(_(
                "target='buy' holds out each user's last buy, but the log has no 'buy' events (its behaviours: "
                "{behaviors}). Use target='any', or map the behaviour role to the right column.").format(
                behaviors=", ".join(data.classes)))
        user, item, category, behavior = data.int64()
        time = data.time
        history = _History(user, time)
        holdout, kept = self._holdout(history, data, behavior)
        rows = np.flatnonzero(kept)                                  # event positions (time order) of the samples
        if method == LEAVE_LAST_OUT:
            vocabulary_events = self._before_test(history, holdout, len(time))
        else:
            start = _test_start(time[rows], split)
            vocabulary_events = np.arange(len(time)) if start is None else np.flatnonzero(time < start)
        item_lookup, n_items = _vocabulary(data.item[vocabulary_events], data.n_items, self.max_vocab)
        category_lookup, n_categories = _vocabulary(data.category[vocabulary_events], data.n_categories,
                                                    self.max_vocab)
        has_category = data.n_categories > 0
        item_codes = item_lookup[data.item]
        category_codes = category_lookup[data.category]
        if method == LEAVE_LAST_OUT:        # a target outside the vocabulary teaches (and validates) no item's rank
            rows = rows[(holdout[rows] == TEST) | (item_codes[rows] > 0)]
        n_behaviors = len(data.classes)
        sequences = _sequence_columns(self.sequence_length, has_category)
        columns: dict[str, np.ndarray] = {}
        for group, values in (("hist_item", item_codes), ("hist_category", category_codes),
                              ("hist_behavior", (behavior + 1).astype(code_dtype(n_behaviors)))):
            if group in sequences:
                block = history.sequence(values, self.sequence_length)[rows]
                for j, column in enumerate(sequences[group]):
                    columns[column] = block[:, j]
        columns[LABEL] = item_codes[rows].astype(np.int64)
        columns["category"] = category_codes[rows]
        columns[HOLDOUT] = holdout[rows]
        frame = pd.DataFrame(columns, copy=False)
        frame[USER] = pd.Categorical.from_codes(user[rows], categories=data.users)
        frame[ITEM] = pd.Categorical.from_codes(data.item[rows], categories=data.items)
        frame[TIME] = pd.DatetimeIndex(time[rows].view("M8[ns]")).tz_localize("UTC")
        item_names = _code_names(item_lookup, data.items, n_items)
        category_names = _code_names(category_lookup, data.categories, n_categories)
        cardinality = {"hist_item": n_items, "hist_category": n_categories, "hist_behavior": n_behaviors}
        vocabulary = {"hist_item": item_names, "hist_category": category_names, "hist_behavior": data.classes,
                      "category": category_names}
        schema = FeatureSchema(numeric=(), categorical=(), classes=(RARE, *item_names), sequences=sequences,
                               cardinality={k: v for k, v in cardinality.items() if k in sequences},
                               vocabulary={k: v for k, v in vocabulary.items() if k in sequences or k == "category"})
        return Dataset(frame=frame, schema=schema, task=self.name, fingerprint=_fingerprint(log))

    def _holdout(self, history: _History, data, behavior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per event (time order): its leave-last-out part (0/1/2) and whether it is a sample at all."""
        n = len(behavior)
        order = history.order
        position = np.arange(n)
        group = np.cumsum(history.group_start == position) - 1         # user index of each sorted event
        eligible = history.block_start > history.group_start            # the event has strictly earlier history
        n_groups = int(group[-1]) + 1 if n else 0
        part = np.full(n, TRAIN, dtype=np.int8)
        kept = eligible.copy()
        if self.target == "any":
            count = np.bincount(group, weights=eligible, minlength=n_groups).astype(np.int64)
            seen = np.cumsum(eligible) - np.r_[0, np.cumsum(eligible)][history.group_start]   # eligible so far
            after = count[group] - seen                                  # eligible events after this one
            enough = count[group] >= 3
            part[eligible & enough & (after == 0)] = TEST
            part[eligible & enough & (after == 1)] = VALID
        else:
            buy = behavior[order] == data.classes.index("buy")
            last_buy = np.full(n_groups, -1, dtype=np.int64)
            np.maximum.at(last_buy, group[eligible & buy], position[eligible & buy])
            before = eligible & (position < last_buy[group])
            previous = np.full(n_groups, -1, dtype=np.int64)
            np.maximum.at(previous, group[before], position[before])
            has_test = (last_buy >= 0) & (previous >= 0)
            part[has_test[group] & (position == last_buy[group])] = TEST
            part[has_test[group] & (position == previous[group])] = VALID
            kept &= ~(has_test[group] & (position > last_buy[group]))    # after the held-out buy: never used
        out_part, out_kept = np.empty_like(part), np.empty_like(kept)
        out_part[order], out_kept[order] = part, kept
        return out_part, out_kept

    @staticmethod
    def _before_test(history: _History, holdout: np.ndarray, n: int) -> np.ndarray:
        """Event positions (time order) before each user's test target: what vocabularies may count."""
        sorted_part = holdout[history.order]
        position = np.arange(n)
        group = np.cumsum(history.group_start == position) - 1
        n_groups = int(group[-1]) + 1 if n else 0
        test_at = np.full(n_groups, n, dtype=np.int64)
        np.minimum.at(test_at, group[sorted_part == TEST], position[sorted_part == TEST])
        allowed = np.zeros(n, dtype=bool)
        allowed[history.order] = position < test_at[group]
        return np.flatnonzero(allowed)


#: Registered task builders by stable name.
TASKS: dict[str, type[Task]] = {task.name: task for task in (BehaviorTask, PurchaseTask, TableTask, NextItemTask)}


def get_task(name: str) -> type[Task]:
    """The registered task class called ``name``."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            _("There is no task called {name!r}. Tasks: {tasks}.").format(name=name, tasks=', '.join(TASKS))) from None


def task_kind(task: str) -> str:
    """``"classification"`` or ``"ranking"``: the kind of the registered task ``task`` (see :attr:`Task.kind`)."""
    return get_task(task).kind


def applies_to(component: type, task: str) -> bool:
    """Whether a strategy or model class serves ``task``: its ``task_kinds`` holds the task's kind.

    >>> from recexp.models import MODELS
    >>> applies_to(MODELS["sasrec"], "next_item"), applies_to(MODELS["mlp"], "next_item")
    (True, False)
    """
    return task_kind(task) in getattr(component, "task_kinds", ("classification",))


def require_fit(kind: str, name: str, registry: dict[str, type], task: str) -> None:
    """Refuse ``registry[name]`` (a model or strategy; ``kind`` says which, in words) when it does not serve
    ``task``, with a sentence naming the ones that do."""
    if not applies_to(registry[name], task):
        raise InvalidParameterError(_(
            "The {kind} {name!r} does not apply to the '{task}' task ({task_kind}); choose one of: {names}.").format(
            kind=kind, name=name, task=task, task_kind=task_kind(task),
            names=", ".join(n for n, cls in registry.items() if applies_to(cls, task))))


def build_dataset(source: BehaviorLog | FeatureTable, task: str, split: SplitSpec | None = None,
                  **params: Any) -> Dataset:
    """Build the supervised dataset of ``task`` from a loaded log or table.

    Parameters
    ----------
    source : BehaviorLog or FeatureTable
        What :func:`recexp.data.load` returned.
    task : str
        A key of :data:`TASKS`: ``"behavior"``, ``"purchase"`` or ``"table"``.
    split : SplitSpec, optional
        The split the dataset is built for (pass the one given to :func:`split_dataset`): vocabularies
        come from the events before its test cut. Omit it only for statistics that train nothing (class
        balance); the vocabularies then come from the whole log, test period included.
    **params
        The task's parameters (see ``TASKS[task].describe_params()``); the rest keep their defaults.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidParameterError
        Unknown task or parameter, a value outside its spec, or a value the data cannot satisfy.
    InvalidDataError
        The data cannot make this task.

    Examples
    --------
    >>> from recexp.data.samples import load_sample
    >>> dataset = build_dataset(load_sample("retailrocket"), "behavior", sequence_length=3)
    >>> dataset.schema.classes
    ('view', 'cart', 'buy')
    """
    cls = get_task(task)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise InvalidParameterError(
            _("The '{task}' task has no parameter {repr}; its parameters are: {cls}.").format(
              task=task, repr=', '.join(map(repr, unknown)), cls=', '.join(cls.param_names())))
    try:
        return cls(**params).build(source, split)
    except MemoryError:                 # numpy's _ArrayMemoryError too: a sentence, never an allocation traceback
        raise InvalidDataError(_(
            "Building the {task} dataset of {rows} rows in memory ran out of memory. Build it out of core (python -m "
            "recexp apply FILE --out-of-core yes, or recexp.outofcore.build_on_disk), or sample users "
            "(--sample-users).").format(task=task, rows=format_integer(len(source.frame)))) from None


#: Sources up to this many rows are built whole to estimate; larger ones from a sample of users this large.
ESTIMATE_SAMPLE_ROWS = 50_000
#: Memory a build holds at its peak besides the loaded source, as a multiple of the finished dataset's
#: (measured: the behaviour task on 5.0M Taobao events, a 0.83 GB dataset, 1.9 GB peak with the 0.7 GB log).
BUILD_PEAK_FACTOR = 1.5


@dataclass(frozen=True)
class DatasetEstimate:
    """What building a task's dataset takes, judged before building it (:func:`estimate_dataset`)."""

    rows: int               # samples the dataset will have
    dataset_bytes: int      # memory of the finished dataset
    peak_bytes: int         # memory the build holds at its peak, besides the loaded source
    exact: bool             # True: built whole; False: scaled up from a sample

    def fits_in_memory(self) -> bool:
        """Whether the build (its peak plus the finished dataset) stays within the memory setting
        (:func:`recexp.memory.memory_limit`)."""
        return self.dataset_bytes + self.peak_bytes <= memory_limit()


def estimate_dataset(source: BehaviorLog | FeatureTable, task: str, **params: Any) -> DatasetEstimate:
    """Rows and memory of the dataset :func:`build_dataset` would make, at the cost of a small build.

    A source of up to :data:`ESTIMATE_SAMPLE_ROWS` rows is built whole. From a larger log, the whole
    histories of every k-th user are built (a table: every k-th row), about that many rows, and the
    dataset's rows and bytes are scaled by the share of the source's rows in the sample.

    Raises
    ------
    RecexpError
        What building the sample raised (e.g. the purchase task on a sample without purchases).
    """
    total = len(source.frame)
    step = max(1, math.ceil(total / ESTIMATE_SAMPLE_ROWS))
    if step > 1:
        keys = _codes(source.frame["user_id"])[0] if source.kind == "log" else np.arange(total)
        source = replace(source, frame=source.frame[keys % step == 0].reset_index(drop=True))
    dataset = build_dataset(source, task, **params)
    scale = total / max(len(source.frame), 1)
    dataset_bytes = int(dataset.frame.memory_usage(index=False).sum() * scale)
    return DatasetEstimate(rows=round(len(dataset) * scale), dataset_bytes=dataset_bytes,
                           peak_bytes=int(dataset_bytes * BUILD_PEAK_FACTOR), exact=step == 1)


# --- splits ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitSpec:
    """How to split a dataset into train / validation / test (validated by :func:`split_dataset`)."""

    method: str = "temporal"      # "temporal": latest rows by time; "stratified": random per class; "leave_last_out"
    test_size: float = 0.2        # share of all rows in the test part
    valid_size: float = 0.1       # share of the non-test rows held out for validation
    group_by_user: bool = False   # no user on two sides (stratified only)
    seed: int = 0                 # with the dataset fingerprint and task, fixes the split

    params: ClassVar[dict[str, Param]] = {
        "method": Choice({"temporal": "by time: the latest rows are the test set",
                          "stratified": "random, keeping each class's share",
                          LEAVE_LAST_OUT: "per user: the last event is the test set, the one before it validation "
                                          "(next-item task)"}, help="How rows are assigned."),
        "test_size": Float(0, 1, low_open=True, high_open=True, help="Share of rows in the test set."),
        "valid_size": Float(0, 1, high_open=True, help="Share of the non-test rows used for validation."),
        "group_by_user": Bool(help="Keep all rows of a user on the same side (stratified only)."),
        "seed": Int(0, None, help="Seed of the split."),
    }

    @classmethod
    def from_strings(cls, pairs: dict[str, str]) -> SplitSpec:
        """A validated spec from ``KEY=VALUE`` strings (the CLI's ``--split-param``); the rest keep defaults."""
        unknown = sorted(set(pairs) - set(cls.params))
        if unknown:
            raise InvalidParameterError(
                _("Unknown split setting(s) {unknown}; settings: {params}.").format(
                  unknown=unknown, params=', '.join(cls.params)))
        spec = cls(**{key: cls.params[key].parse(value) for key, value in pairs.items()})
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise :class:`InvalidParameterError` when a field is outside its spec."""
        for name, spec in self.params.items():
            value = getattr(self, name)
            if not spec.check(value):
                raise InvalidParameterError(
                    _("Split parameter '{name}' must be {spec}, but got {value!r}. Change '{name}' to an allowed "
                      "value.").format(
                      name=name, spec=spec.describe(), value=value))


def _rng(dataset: Dataset, spec: SplitSpec, part: str) -> np.random.Generator:
    """A generator that depends only on the dataset fingerprint, task, split parameters and seed."""
    fields: dict[str, Any] = {"fingerprint": dataset.fingerprint, "task": dataset.task, "rows": len(dataset),
                              "method": spec.method, "test_size": spec.test_size,
                              "group_by_user": spec.group_by_user, "seed": spec.seed, "part": part}
    if part == "valid":                         # the test part must not move when valid_size does
        fields["valid_size"] = spec.valid_size
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _temporal_cut(times: np.ndarray, share: float, what: str) -> np.ndarray:
    """Mask of the latest rows: all rows at or after a cutoff time, the cutoff chosen among distinct
    times so the late share is closest to ``share`` while both sides keep rows (ties never straddle)."""
    distinct, counts = np.unique(times, return_counts=True)
    return times >= _cut_time(distinct, counts, share, what)


def _cut_time(distinct: np.ndarray, counts: np.ndarray, share: float, what: str) -> int:
    """The cutoff of :func:`_temporal_cut`, from the sorted distinct times and the rows at each (what an
    out-of-core build counts without holding the rows)."""
    if len(distinct) < 2:
        raise InvalidDataError(
            _("All {n_rows:,} rows share one time, so a temporal split cannot set aside the {what} part. Use "
              "method='stratified', or (purchase task) raise n_windows.").format(n_rows=int(counts.sum()), what=what))
    late_rows = np.cumsum(counts[::-1])[::-1][1:]              # rows at or after distinct[1], distinct[2], ...
    cut = int(np.argmin(np.abs(late_rows - share * int(counts.sum())))) + 1
    return int(distinct[cut])


def _stratified_take(labels: np.ndarray, share: float, rng: np.random.Generator, keep_one: bool) -> np.ndarray:
    """Positions taken at random, ``share`` of each class (rounded), leaving at least one row of every
    class behind; with ``keep_one`` also taking at least one of every class with two rows or more."""
    taken = []
    for code in np.unique(labels):
        rows = np.flatnonzero(labels == code)
        n = len(rows)
        count = int(round(share * n))
        count = min(max(count, 1 if keep_one and n >= 2 else 0), n - 1)
        taken.append(rng.permutation(rows)[:count])
    return np.sort(np.concatenate(taken)) if taken else np.array([], dtype=np.int64)


def _grouped_take(labels: np.ndarray, groups: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Positions of whole groups (users) taken so about ``share`` of the rows of each stratum are taken.

    A group's stratum is the rarest class it has rows of (so every user with a purchase is in the
    "buy" stratum). Within each stratum, groups are shuffled and the prefix whose row count is closest
    to ``share`` of the stratum's rows is taken (at least one group, and never all of them, when the
    stratum has two or more).
    """
    group_codes, _ = pd.factorize(groups)
    classes, label_codes = np.unique(labels, return_inverse=True)
    n_groups, n_classes = int(group_codes.max()) + 1, len(classes)
    per_group = np.bincount(group_codes * n_classes + label_codes, minlength=n_groups * n_classes)
    per_group = per_group.reshape(n_groups, n_classes)
    rarest_first = np.argsort(per_group.sum(axis=0), kind="stable")
    stratum = rarest_first[np.argmax(per_group[:, rarest_first] > 0, axis=1)]
    rows = per_group.sum(axis=1)
    chosen = np.zeros(n_groups, dtype=bool)
    for code in np.unique(stratum):
        members = rng.permutation(np.flatnonzero(stratum == code))
        if len(members) < 2:
            continue
        cumulative = np.cumsum(rows[members])
        take = int(np.argmin(np.abs(cumulative - share * cumulative[-1]))) + 1
        chosen[members[:min(take, len(members) - 1)]] = True
    return np.flatnonzero(chosen[group_codes])


#: The split methods' names on the pages (the ids themselves in English, translated in other languages).
SPLIT_METHOD_NAMES = {"temporal": N_("temporal"), "stratified": N_("stratified"), "leave_last_out": N_("leave_last_out")}


def split_method_name(method: str) -> str:
    """A split method as the pages name it, in the language shown (the id itself when it has no name)."""
    return _(SPLIT_METHOD_NAMES[method]) if method in SPLIT_METHOD_NAMES else method


def split_methods(task: str) -> tuple[str, ...]:
    """The split methods that work for ``task``'s datasets, the default first.

    Tasks built from a behaviour log split by time by default; a feature table has no event times, so
    its datasets can only be split stratified. The next-item task holds out each user's last events
    (leave-last-out) by default, or cuts at one time for all users.
    """
    cls = get_task(task)
    if cls.kind == "ranking":
        return (LEAVE_LAST_OUT, "temporal")
    return ("temporal", "stratified") if "log" in cls.input_kinds else ("stratified",)


def split_dataset(dataset: Dataset, spec: SplitSpec | None = None) -> Split:
    """Split ``dataset`` into train / validation / test row positions.

    The split is a pure function of the dataset's fingerprint, task and row count, the split
    parameters and ``spec.seed``: the generator is derived from a hash of those, never from global
    state, so every run on the same data and spec gets the same test rows (the test part does not
    depend on ``valid_size`` either).

    ``temporal``: the test part is every row at or after a cutoff time chosen among the rows' distinct
    times so its share is closest to ``test_size`` (rows with the same time are never split apart);
    validation is carved the same way from the latest non-test rows. ``stratified``: rows are drawn at
    random within each class (``test_size`` of each class, at least one row of a class with two or
    more); with ``group_by_user`` whole users are assigned instead, stratified by the rarest class each
    user has rows of, so no user is on two sides and class shares hold approximately.

    Parameters
    ----------
    dataset : Dataset
    spec : SplitSpec, optional
        Defaults to ``SplitSpec()``.

    Returns
    -------
    Split
        Sorted row positions of train, valid and test.

    Raises
    ------
    InvalidParameterError
        A field of ``spec`` is out of range, or the dataset cannot support the method (no time or no
        users, as for feature tables).
    InvalidDataError
        A class is too small to be split, or would be missing from the training part.
    """
    spec = spec or SplitSpec()
    spec.validate()
    frame = dataset.frame
    labels = dataset.y
    n = len(frame)
    if n < 3:
        raise InvalidDataError(_("The dataset has {n} row(s); a split needs at least 3 (train, "
                                 "validation, test).").format(n=n))
    if spec.group_by_user and USER not in frame.columns:
        raise InvalidParameterError(
            _("group_by_user=True needs user ids, but the '{task}' dataset has none (feature tables have no "
              "users). Set group_by_user=False.").format(task=dataset.task))
    ranking = get_task(dataset.task).kind == "ranking" if dataset.task in TASKS else False
    if (spec.method == LEAVE_LAST_OUT and HOLDOUT not in frame.columns) or (ranking and spec.method == "stratified"):
        raise InvalidParameterError(_(
            "The split method {method!r} does not fit the '{task}' task; its methods are: {methods}.").format(
            method=spec.method, task=dataset.task, methods=", ".join(split_methods(dataset.task))))
    if spec.method == LEAVE_LAST_OUT:
        part = frame[HOLDOUT].to_numpy()
        test_mask = part == 2
        valid = np.flatnonzero(part == 1) if spec.valid_size > 0 else np.zeros(0, dtype=np.int64)
    elif spec.method == "temporal":
        if TIME not in frame.columns:
            raise InvalidParameterError(
                _("method='temporal' needs event times, but the '{task}' dataset has none (feature tables have "
                  "no time). Use method='stratified'.").format(task=dataset.task))
        if spec.group_by_user:
            raise InvalidParameterError(
                _("method='temporal' with group_by_user=True is not supported: the users active in the test "
                  "period are nearly all users, so keeping them out of training would leave almost nothing to "
                  "train on. Use method='temporal' alone (the test set is in the future), or method='stratified' "
                  "with group_by_user."))
        times = frame[TIME].dt.as_unit("ns").array.asi8
        test_mask = _temporal_cut(times, spec.test_size, "test")
        rest = np.flatnonzero(~test_mask)
        valid = rest[_temporal_cut(times[rest], spec.valid_size, "validation")] if spec.valid_size > 0 else rest[:0]
    elif spec.group_by_user:
        users = frame[USER].to_numpy()
        test_rows = _grouped_take(labels, users, spec.test_size, _rng(dataset, spec, "test"))
        test_mask = np.zeros(n, dtype=bool)
        test_mask[test_rows] = True
        rest = np.flatnonzero(~test_mask)
        valid = (rest[_grouped_take(labels[rest], users[rest], spec.valid_size, _rng(dataset, spec, "valid"))]
                 if spec.valid_size > 0 else rest[:0])
    else:
        counts = np.bincount(labels, minlength=dataset.schema.n_classes)
        too_small = [dataset.schema.classes[k] for k in np.flatnonzero((counts > 0) & (counts < 2))]
        if too_small:
            raise InvalidDataError(
                _("Class(es) {repr} have a single row; a stratified split needs at least 2 per class so the "
                  "class is in both train and test. Collect more "
                  "rows of it, or build a task without it.").format(repr=', '.join(map(repr, too_small))))
        test_mask = np.zeros(n, dtype=bool)
        test_mask[_stratified_take(labels, spec.test_size, _rng(dataset, spec, "test"), keep_one=True)] = True
        rest = np.flatnonzero(~test_mask)
        valid = (rest[_stratified_take(labels[rest], spec.valid_size, _rng(dataset, spec, "valid"), keep_one=False)]
                 if spec.valid_size > 0 else rest[:0])
    valid_mask = np.zeros(n, dtype=bool)
    valid_mask[valid] = True
    train = np.flatnonzero(~test_mask & ~valid_mask)
    split = Split(train=train, valid=np.flatnonzero(valid_mask), test=np.flatnonzero(test_mask))
    if ranking:        # items first seen late are expected there: they are misses, not a broken split
        _check_parts(split)
    else:
        _check_classes(dataset, split, spec)
    return split


def _check_parts(split: Split) -> None:
    if len(split.train) == 0 or len(split.test) == 0:
        raise InvalidDataError(
            _("The split leaves {n_train} training and {n_test} test rows. Lower test_size / valid_size or use "
              "more data.").format(n_train=len(split.train), n_test=len(split.test)))


def _check_classes(dataset: Dataset, split: Split, spec: SplitSpec) -> None:
    present = np.bincount(dataset.y, minlength=dataset.schema.n_classes) > 0
    in_train = np.bincount(dataset.y[split.train], minlength=dataset.schema.n_classes) > 0
    missing = [dataset.schema.classes[k] for k in np.flatnonzero(present & ~in_train)]
    _check_parts(split)
    if missing:
        hint = (_("its rows all fall in the test or validation period; use method='stratified' or lower test_size")
                if spec.method == "temporal" else
                _("its rows all went to other parts; use more data or a different seed"))
        raise InvalidDataError(
            _("Class(es) {repr} would have no training rows: {hint}.").format(
              repr=', '.join(map(repr, missing)), hint=hint))
