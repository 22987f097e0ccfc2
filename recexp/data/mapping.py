"""Which source column plays which role in a behaviour log: inferred from names, then from values.

Roles are ``user``, ``item``, ``category`` (optional), ``behavior`` and ``timestamp`` (see
:data:`recexp.data.log.ROLES`). Inference, in order:

1. **names**: a column whose normalised name (lower case, letters and digits of any script, so
   ``"User ID"`` -> ``userid`` and ``"用户ID"`` -> ``用户id``) is a known English or Chinese synonym of a
   role (``user_id``/``uid``/``用户ID`` ...; see :data:`ROLE_NAMES`), provided its values fit the role
   (see ``_value_concern``); a column whose values do not fit is left to step 2;
2. **values**, for roles still open (files without a header, or unusual names):

   * ``timestamp``: a date-time column, a text column of dates, or integers whose magnitude is a
     plausible epoch in seconds, milliseconds, microseconds or nanoseconds (1990-2100) and whose
     spread is that of a log (under 30 years);
   * ``behavior``: the low-cardinality text column (at most 64 distinct values) whose values are most
     often known behaviour names (``pv``, ``view``, ``cart``, ``buy``, ``浏览``, ``购买`` ...);
   * ``item`` and ``category``: the id pair where the second is (almost always) determined by the
     first, as items are nested in categories (at least 98% of repeated items have one category);
   * ``user``: of the remaining id columns, the one whose values come in longer consecutive runs
     (logs are usually grouped by user or session); when that is not clear, the one with fewer
     distinct values.

   Columns of words (category names, product titles) are taken for ``user`` or ``item`` only when
   no column of ids is left.

Each choice gets a confidence in [0, 1] and the evidence behind it (:class:`RoleChoice`); a role
chosen with a confidence below :data:`GUESS` is reported as a guess, in a sentence that says how to
change it. An explicit mapping fixes roles before inference (confidence 1), which then fills the
others from the columns left.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from itertools import permutations

import numpy as np
import pandas as pd

from recexp.data.log import BEHAVIOR_SYNONYMS, REQUIRED_ROLES, ROLES
from recexp.errors import InvalidDataError, InvalidParameterError, LogMappingError
from recexp.i18n import _

#: Column names that name each role, best first (compared in :func:`normalise_name` form): the
#: English spellings of public logs and the Chinese ones of Taobao/JD/Tmall-style shop exports.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "userid", "user", "visitorid", "visitor_id", "visitor", "uid", "customer_id",
             "customer", "member_id", "buyer_id", "client_id",
             "用户ID", "用户编号", "用户", "会员ID", "会员编号", "买家ID", "客户ID", "客户编号", "访客ID"),
    "item": ("item_id", "itemid", "item", "sku", "sku_id", "product_id", "product", "goods_id", "iid", "asin",
             "offer_id",
             "商品ID", "商品编号", "商品编码", "商品", "物品ID", "宝贝ID", "货品ID", "SKU编号"),
    "category": ("category_id", "categoryid", "category", "cate_id", "cate", "cat_id", "cat", "item_category",
                 "category_code",
                 "商品类目ID", "类目ID", "商品类目", "类目", "品类ID", "品类", "类别ID", "分类ID", "商品分类ID",
                 "商品类别", "类别", "分类"),
    "behavior": ("behavior_type", "behavior", "behaviour_type", "behaviour", "event", "event_type", "action",
                 "action_type", "btag", "type", "interaction", "interaction_type",
                 "行为类型", "行为", "事件类型", "事件", "操作类型", "操作", "行为方式", "动作", "类型"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "event_time", "time_stamp", "unix_time",
                  "created_at", "event_timestamp", "time_ms",
                  "时间戳", "时间", "事件时间", "行为时间", "发生时间", "操作时间", "日期时间", "日期", "创建时间"),
}
#: Column names a feature table's label column often has (compared in :func:`normalise_name` form).
LABEL_NAMES = ("label", "target", "class", "y", "click", "clicked", "is_click", "outcome",
               "标签", "目标", "是否点击", "是否购买")

MAX_BEHAVIORS = 64          # a behaviour column has at most this many distinct values
FD_SHARE = 0.98             # share of repeated items with a single category for item -> category
PROFILE_ROWS = 200_000      # rows looked at for value-based inference
GUESS = 0.7                 # a role chosen with less confidence than this is reported as a guess
MAX_LABEL_VALUES = 20       # a label column of a headerless table has at most this many distinct values
_EPOCH_SECONDS = (6.3e8, 4.2e9)                      # 1990 .. 2100
_EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_MAX_SPREAD_S = 30 * 365.25 * 86400
_DATE = re.compile(r"^\s*\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}")
_ID = r"[A-Za-z0-9][A-Za-z0-9_\-.:#/]*"               # ASCII letters, digits and separators ...
_HAS_DIGIT = re.compile(r"\d")                         # ... with at least one digit


def normalise_name(name: object) -> str:
    """Lower-case letters and digits of a column name, any script (``"User ID"`` -> ``"userid"``,
    ``"用户ID"`` -> ``"用户id"``; full-width forms are folded first)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", str(name)).lower())


#: Every known role and label name in normalised form (evidence of a header row).
KNOWN_NAMES = frozenset(normalise_name(n) for names in ROLE_NAMES.values() for n in names) | frozenset(
    normalise_name(n) for n in LABEL_NAMES)
_LABEL_KEYS = frozenset(normalise_name(n) for n in LABEL_NAMES)


@dataclass(frozen=True)
class RoleChoice:
    """The column chosen for one role, how sure inference is (0-1) and why.

    ``confidence`` is 1 for a role given explicitly, about 0.95 for a known header name whose values
    fit the role, and lower for choices made from values alone; below :data:`GUESS` the choice is a
    guess. ``evidence`` says what the choice rests on, as a phrase (``"header name; values fit"``).
    """

    column: str
    confidence: float
    evidence: str

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"column": self.column, "confidence": round(self.confidence, 2), "evidence": self.evidence}


def epoch_unit(values: np.ndarray) -> str | None:
    """``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` when the numbers look like epoch times of a log, else None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    median = float(np.median(finite))
    for unit, scale in _EPOCH_UNITS.items():
        if _EPOCH_SECONDS[0] * scale <= median <= _EPOCH_SECONDS[1] * scale:
            low, high = np.percentile(finite, [1, 99])
            return unit if (high - low) / scale <= _MAX_SPREAD_S else None
    return None


class _Profile:
    """What value-based inference needs to know about one column (computed on a sample, on first use)."""

    def __init__(self, name: str, series: pd.Series):
        self.name = name
        self.series = series

    @cached_property
    def _non_null(self) -> pd.Series:
        return self.series.dropna()

    @property
    def rows(self) -> int:
        return len(self._non_null)

    @cached_property
    def null_share(self) -> float:
        return 1.0 - len(self._non_null) / max(len(self.series), 1)

    @cached_property
    def nunique(self) -> int:
        return int(self._non_null.nunique())

    @cached_property
    def _typed(self) -> tuple[str, np.ndarray | None, pd.Series | None]:
        """``(kind, numbers, text)``: kind ``datetime``, ``int``, ``float``, ``string`` or ``other``; the
        values as float64 when numeric; the trimmed text when ``string``."""
        series, non_null = self.series, self._non_null
        if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
            return "datetime", None, None
        if pd.api.types.is_bool_dtype(series):
            return "other", None, None
        if pd.api.types.is_numeric_dtype(series):
            numbers = non_null.to_numpy(dtype=np.float64)
            integral = pd.api.types.is_integer_dtype(series) or bool(np.all(np.mod(numbers, 1) == 0))
            return ("int" if integral else "float"), numbers, None
        text = non_null.astype(str).str.strip()
        if self.nunique <= MAX_BEHAVIORS:              # parse each of a few distinct values once
            distinct = pd.Series(text.unique())
            numbers = text.map(dict(zip(distinct, pd.to_numeric(distinct, errors="coerce"))))
        else:
            numbers = pd.to_numeric(text, errors="coerce")
        if len(text) and numbers.notna().mean() >= 0.99:
            numbers = numbers.dropna().to_numpy(dtype=np.float64)
            return ("int" if bool(np.all(np.mod(numbers, 1) == 0)) else "float"), numbers, None
        return "string", None, text

    @property
    def kind(self) -> str:
        return self._typed[0]

    @property
    def numbers(self) -> np.ndarray | None:
        return self._typed[1]

    @cached_property
    def _text_shares(self) -> tuple[float, float, str]:
        """``(date_share, id_share, example)`` of a text column's first 500 values: the share that start
        like a date, the share written like ids (codes with a digit), and a value that is not an id."""
        text = self._typed[2]
        example = str(self._non_null.iloc[0]) if self.rows else ""
        if text is None or not len(text):
            return 0.0, 1.0, example
        head = text.head(500)
        ids = head.str.fullmatch(_ID) & head.str.contains(_HAS_DIGIT)
        words = head[~ids]
        return float(head.str.match(_DATE).mean()), float(ids.mean()), str(words.iloc[0]) if len(words) else example

    @property
    def date_share(self) -> float:
        return self._text_shares[0]

    @property
    def id_share(self) -> float:
        return self._text_shares[1]

    @property
    def example(self) -> str:
        return self._text_shares[2]

    @cached_property
    def synonym_share(self) -> float:
        """Share of values that are known behaviour names (0 for a column of many distinct values)."""
        text = self._typed[2]
        if text is None or self.nunique > MAX_BEHAVIORS:
            return 0.0
        return float(text.str.lower().isin(BEHAVIOR_SYNONYMS).mean())

    @property
    def run_length(self) -> float:
        """Mean length of runs of equal consecutive values (long when the log is grouped by this column)."""
        values = self.series.dropna().to_numpy()
        if values.size < 2:
            return 1.0
        return values.size / (1 + int(np.count_nonzero(values[1:] != values[:-1])))

    @property
    def is_id(self) -> bool:
        return self.kind in ("int", "string") and self.null_share < 0.5 and self.date_share < 0.5

    @property
    def is_words(self) -> bool:
        """Mostly words (category names, product titles), not ids."""
        return self.kind == "string" and self.id_share < 0.5

    @property
    def is_time(self) -> bool:
        """Date-times, date text, or epoch numbers of a log."""
        if self.kind == "datetime":
            return True
        if self.kind == "string":
            head = self.series.dropna().astype(str).head(200)
            parsed = pd.to_datetime(head, errors="coerce", format="mixed", utc=True)
            return self.date_share >= 0.9 or (len(head) > 0 and parsed.notna().mean() >= 0.9)
        return self.numbers is not None and epoch_unit(self.numbers) is not None


def _value_concern(role: str, profile: _Profile) -> str | None:
    """Why the values of ``profile``'s column do not fit ``role`` (a phrase), or None when they fit.

    ``user`` and ``item`` need ids (not words, not decimals); a ``user`` column of a few distinct
    values that are not grouped together, or an ``item`` column of a few distinct values, in 50 times
    as many rows, holds categories rather than ids. ``timestamp`` needs times; ``behavior`` few distinct values.
    """
    few = profile.nunique <= MAX_BEHAVIORS and profile.rows >= 50 * max(profile.nunique, 1)
    if role in ("user", "item", "category"):
        if profile.kind in ("float", "datetime", "other"):
            return _("its values are decimals") if profile.kind == "float" else _("its values are not ids")
        if role == "category":
            return None
        if profile.is_words and few:
            return _("its values are words (e.g. '{example}') with only {nunique} distinct values in {rows:,} rows, "
                     "like category names").format(example=profile.example, nunique=profile.nunique, rows=profile.rows)
        if profile.is_words:
            return _("its values are words (e.g. '{example}'), not ids").format(example=profile.example)
        grouped = profile.run_length >= 0.5 * profile.rows / max(profile.nunique, 1)
        if few and (role == "item" or not grouped):
            return _("it has only {nunique} distinct values in {rows:,} rows, like a category").format(
                nunique=profile.nunique, rows=profile.rows)
        return None
    if role == "timestamp":
        return None if profile.is_time else _("its values (e.g. '{example}') are not times").format(
            example=profile.example)
    if role == "behavior":
        if profile.kind == "float":
            return _("its values are decimals")
        if profile.nunique > MAX_BEHAVIORS:
            return _("it has {nunique:,} distinct values; behaviours have a few").format(nunique=profile.nunique)
    return None


def _functional_share(frame: pd.DataFrame, a: str, b: str) -> tuple[float, int]:
    """Share of repeated ``a`` values that always come with the same ``b``; and how many were repeated."""
    pairs = frame[[a, b]].dropna()
    grouped = pairs.groupby(a, observed=True, sort=False)[b].agg(["nunique", "size"])
    repeated = grouped[grouped["size"] >= 2]
    if repeated.empty:
        return 0.0, 0
    return float((repeated["nunique"] == 1).mean()), len(repeated)


def infer_roles(frame: pd.DataFrame, fixed: dict[str, str | None] | None = None
                ) -> tuple[dict[str, RoleChoice], list[str]]:
    """Role -> :class:`RoleChoice` for every role that could be inferred, plus warnings on the guesses.

    Parameters
    ----------
    frame : pandas.DataFrame
        The source table (or a sample of its first rows).
    fixed : dict, optional
        Roles already decided (role -> column, or None for "no column"); their columns are not
        considered for other roles, and they get confidence 1.

    Returns
    -------
    (dict, list of str)
        The choices, and one sentence per role chosen with a confidence below :data:`GUESS` (what it
        rests on and how to change it).

    Examples
    --------
    >>> frame = pd.DataFrame({"用户ID": [7, 7, 8], "商品ID": [5, 6, 5], "行为类型": ["浏览", "购买", "浏览"],
    ...                       "时间戳": [1511578835, 1511579875, 1511579921]})
    >>> choices, warnings = infer_roles(frame)
    >>> {role: choice.column for role, choice in choices.items()}
    {'user': '用户ID', 'item': '商品ID', 'behavior': '行为类型', 'timestamp': '时间戳'}
    """
    mapping: dict[str, str | None] = dict(fixed or {})
    choices = {role: RoleChoice(column, 1.0, "chosen explicitly")
               for role, column in mapping.items() if column is not None}
    sample = frame.head(PROFILE_ROWS)
    profiles = {c: _Profile(str(c), sample[c]) for c in frame.columns if c not in mapping.values()}
    _infer(profiles, sample, mapping, choices)
    warnings = []
    for role in ROLES:
        choice = choices.get(role)
        if choice is not None and choice.confidence < GUESS:
            warnings.append(
                _("The {role} role is a guess: column '{column}' ({evidence}; confidence {confidence:.0%}). "
                  "Check it in the Column mapping panel (command line: --map {role}=COLUMN).").format(
                  role=role, column=choice.column, evidence=choice.evidence, confidence=choice.confidence))
    return choices, warnings


def _choose(role: str, profile: _Profile, confidence: float, evidence: str,
            mapping: dict[str, str | None], choices: dict[str, RoleChoice], profiles: dict[str, _Profile]) -> None:
    """Record ``profile``'s column for ``role``; a choice whose values do not fit the role is a guess."""
    concern = _value_concern(role, profile)
    if concern is not None:
        confidence, evidence = min(confidence, 0.4), _("{evidence}, but {concern}").format(evidence=evidence,
                                                                                            concern=concern)
    mapping[role] = profile.name
    choices[role] = RoleChoice(profile.name, confidence, evidence)
    profiles.pop(profile.name, None)


def _infer(profiles: dict[str, _Profile], sample: pd.DataFrame, mapping: dict[str, str | None],
           choices: dict[str, RoleChoice]) -> None:
    """Fill the roles missing from ``mapping`` (names first, then values); ``profiles`` are the free columns."""
    # 1. names, where the values fit the role (a named column whose values do not is the last resort)
    misfits: dict[str, _Profile] = {}
    for role in ROLES:
        if role in mapping:
            continue
        by_name = {normalise_name(c): p for c, p in reversed(profiles.items())}
        for synonym in ROLE_NAMES[role]:
            profile = by_name.get(normalise_name(synonym))
            if profile is not None and _value_concern(role, profile) is None:
                _choose(role, profile, 0.95, _("header name '{name}'; values fit").format(name=profile.name), mapping, choices, profiles)
                break
            if profile is not None:
                misfits.setdefault(role, profile)
    _infer_from_values(profiles, sample, mapping, choices)
    for role, profile in misfits.items():
        if role not in mapping and profile.name in profiles:
            _choose(role, profile, 0.95, _("header name '{name}'").format(name=profile.name), mapping, choices, profiles)
        elif mapping.get(role) == profile.name:          # the values chose the named column after all
            choice = choices[role]
            choices[role] = RoleChoice(choice.column, choice.confidence,
                                       _("header name '{name}'; {evidence}").format(name=profile.name,
                                                                                     evidence=choice.evidence))


def _infer_from_values(profiles: dict[str, _Profile], sample: pd.DataFrame, mapping: dict[str, str | None],
                       choices: dict[str, RoleChoice]) -> None:
    """Fill the roles missing from ``mapping`` from the values of the free columns (``profiles``)."""
    if all(role in mapping for role in ROLES):
        return

    if "timestamp" not in mapping:
        ranked = []
        for p in profiles.values():
            if p.kind == "datetime":
                ranked.append((3, p.nunique, p.name))
            elif p.kind == "string" and p.date_share >= 0.9:
                ranked.append((2, p.nunique, p.name))
            elif p.kind in ("int", "float") and p.numbers is not None and epoch_unit(p.numbers):
                ranked.append((1, p.nunique, p.name))
        if ranked:
            best = max(ranked)
            evidence = {3: _("values are date-times"), 2: _("values are date text"),
                        1: _("values are epoch times")}[best[0]]
            if len(ranked) > 1:
                evidence = _("{evidence}; {n} columns hold times").format(evidence=evidence, n=len(ranked))
            _choose("timestamp", profiles[best[2]], 0.85 if len(ranked) == 1 else 0.6, evidence, mapping, choices,
                    profiles)

    if "behavior" not in mapping:
        strings = [p for p in profiles.values() if p.kind == "string" and 1 <= p.nunique <= MAX_BEHAVIORS]
        if strings:
            best = max(strings, key=lambda p: (p.synonym_share, -p.nunique))
            if best.synonym_share >= 0.5:
                _choose("behavior", best, 0.9, _("values are behaviour names"), mapping, choices, profiles)
            elif best.synonym_share > 0:
                _choose("behavior", best, 0.7, _("{synonym_share:.0%} "
                                                 "of its values are behaviour names").format(synonym_share=best.synonym_share),
                        mapping, choices, profiles)
            else:
                _choose("behavior", best, 0.4, _("the text column with the fewest distinct values; none is a "
                                                 "known behaviour name"), mapping, choices, profiles)
        else:
            codes = [p for p in profiles.values() if p.kind == "int" and 2 <= p.nunique <= 10 and p.null_share < 0.5
                     and p.numbers is not None and p.numbers.min() >= 0 and p.numbers.max() <= 20]
            if codes:
                best = min(codes, key=lambda p: p.nunique)
                _choose("behavior", best, 0.4, _("a column of {nunique} integer "
                                                 "codes").format(nunique=best.nunique), mapping, choices,
                        profiles)

    open_roles = [r for r in ("user", "item", "category") if r not in mapping]
    candidates = [p for p in profiles.values() if p.is_id]
    ids = [p for p in candidates if not p.is_words] or candidates   # words only when no ids are left
    if "category" in open_roles:
        if "item" in mapping:
            pairs = [(mapping["item"], p.name) for p in candidates]
        elif "item" in open_roles:
            pairs = [(a.name, b.name) for a, b in permutations(candidates, 2) if a in ids]
        else:
            pairs = []
        found = []
        for a, b in pairs:
            if a == b or b not in profiles:
                continue
            n_a = profiles[a].nunique if a in profiles else sample[a].nunique()
            if profiles[b].nunique >= n_a:
                continue
            share, repeated = _functional_share(sample, a, b)
            if share >= FD_SHARE and repeated >= 20:
                # category ids before names; on a tie, the column not grouped in runs (a small sample
                # of a log sorted by user can nest items in users too)
                found.append((not profiles[b].is_words, share, n_a, -profiles[b].run_length, a, b))
        if found:
            *_rest, item, category = max(found)
            if "item" not in mapping:
                _choose("item", profiles[item], 0.75, _("values are ids, each nested in one category"), mapping,
                        choices, profiles)
            _choose("category", profiles[category], 0.75, _("each item has one value of it"), mapping, choices,
                    profiles)
            ids = [p for p in ids if p.name not in (item, category)]
    open_ids = [r for r in ("user", "item") if r not in mapping]
    if open_ids == ["user", "item"] and len(ids) >= 2:
        first, second = sorted(ids[:2], key=lambda p: p.nunique)
        runs_first, runs_second = first.run_length, second.run_length
        if runs_second >= 1.5 * runs_first:
            first, second = second, first
        if max(runs_first, runs_second) >= 1.5 * min(runs_first, runs_second):
            user_evidence, confidence = _("values are ids grouped in runs, as a log sorted by user is"), 0.75
        else:
            user_evidence, confidence = (_("told from the item column only by its fewer distinct values "
                                           "({fewer:,} against {more:,})").format(fewer=first.nunique,
                                                                                  more=second.nunique)), 0.5
        _choose("user", first, confidence, user_evidence, mapping, choices, profiles)
        _choose("item", second, confidence, _("values are ids") if confidence > 0.5 else
                _("values are ids; told from the user column only by its more distinct values"), mapping, choices,
                profiles)
    elif open_ids == ["user"] and ids:
        _choose("user", max(ids, key=lambda p: p.run_length), 0.6, _("the id column left with the longest runs"),
                mapping, choices, profiles)
    elif open_ids == ["item"] and ids:
        _choose("item", max(ids, key=lambda p: p.nunique), 0.6, _("the id column left with the most distinct "
                                                                  "values"),
                mapping, choices, profiles)


def infer_mapping(frame: pd.DataFrame) -> dict[str, str]:
    """Infer which column of ``frame`` plays each role of a behaviour log.

    Parameters
    ----------
    frame : pandas.DataFrame
        A behaviour log as read from its source (headerless files have columns ``c0``, ``c1``, ...).

    Returns
    -------
    dict
        Role -> column name, for each role that was found (``category`` may be absent).

    Examples
    --------
    >>> frame = pd.DataFrame({"visitorid": [1, 2], "itemid": [5, 6], "event": ["view", "buy"],
    ...                       "timestamp": [1433221332117, 1433224214164]})
    >>> infer_mapping(frame)
    {'user': 'visitorid', 'item': 'itemid', 'behavior': 'event', 'timestamp': 'timestamp'}
    """
    return {role: choice.column for role, choice in infer_roles(frame)[0].items()}


def check_override(mapping: dict[str, str | None] | None, columns: list[str]) -> dict[str, str | None]:
    """Validate an explicit role -> column mapping against the source's columns.

    ``None`` (or ``""``) for the optional ``category`` role means "no column", so it is not inferred.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise InvalidParameterError(
            _("mapping must be a dict of role -> column, but got {name}. "
              "Pass e.g. {{'user': 'visitorid'}}.").format(name=type(mapping).__name__))
    checked: dict[str, str | None] = {}
    for role, column in mapping.items():
        if role not in ROLES:
            raise InvalidParameterError(
                _("mapping names an unknown role {role!r}. Roles are: "
                  "{roles}.").format(role=role, roles=', '.join(ROLES)))
        if column is None or column == "":
            if role in REQUIRED_ROLES:
                raise InvalidParameterError(
                    _("mapping leaves the required role '{role}' without a column. Map it to a column or leave "
                      "it out of the mapping to infer it.").format(role=role))
            checked[role] = None       # explicitly no column for this optional role
            continue
        if column not in columns:
            raise InvalidDataError(
                _("mapping sends role '{role}' to column {column!r}, which the source does not have. Columns: "
                  "{values}.").format(
                  role=role, column=column, values=', '.join(map(str, columns))))
        checked[role] = column
    used = [c for c in checked.values() if c is not None]
    duplicates = sorted({c for c in used if used.count(c) > 1})
    if duplicates:
        raise InvalidDataError(
            _("mapping sends several roles to the same column "
              "({duplicates}). Give each role its own column.").format(duplicates=', '.join(duplicates)))
    return checked


def table_label(frame: pd.DataFrame) -> str | None:
    """The column of ``frame`` that looks like a feature table's label, or None.

    A column named like a label (:data:`LABEL_NAMES`); in a file without a header row (columns
    ``c0``, ``c1``, ...), the first or last column when it holds 2 to :data:`MAX_LABEL_VALUES` distinct
    values (Criteo's raw files put the label first).
    """
    for column in frame.columns:
        if normalise_name(column) in _LABEL_KEYS:
            return str(column)
    columns = list(frame.columns)
    if len(columns) < 3 or columns != [f"c{i}" for i in range(len(columns))]:
        return None
    for column in (columns[0], columns[-1]):
        if 2 <= frame[column].head(PROFILE_ROWS).nunique() <= MAX_LABEL_VALUES:
            return column
    return None


def require_roles(mapping: dict[str, str], frame: pd.DataFrame) -> None:
    """Raise :class:`~recexp.errors.LogMappingError` naming the required roles no column of ``frame``
    was found for; when no column holds times and one looks like a label, the error says the source
    looks like a feature table (and names that column)."""
    missing = [r for r in REQUIRED_ROLES if r not in mapping]
    if not missing:
        return
    columns = [str(c) for c in frame.columns]
    label = table_label(frame) if "timestamp" in missing else None
    if label is not None:
        message = _("This looks like a feature table, not a behaviour log: no column holds times, and '{label}' looks "
                    "like a label column. Read it as a feature table (on the Data page choose 'Feature table' under "
                    "'What does the file hold?'; command line: --kind table --label {label}), or map the timestamp "
                    "role if it is a log.").format(label=label)
    else:
        found = ", ".join(f"{r}={mapping[r]}" for r in ROLES if r in mapping) or _("none")
        example = " ".join(f"--map {r}=COLUMN" for r in missing)
        message = _("No column was found for the required role(s) {missing}. Columns: {columns}; roles found: {found}. "
                    "Map each missing role to a column: in the Column mapping panel on the Data page, with {example} "
                    "on the command line, or mapping={python} in Python.").format(
            missing=", ".join(missing), columns=", ".join(columns), found=found, example=example,
            python="{" + ", ".join(repr(r) + ": COLUMN" for r in missing) + "}")
    raise LogMappingError(message, columns=columns, mapping=dict(mapping), missing=missing, label_column=label)
