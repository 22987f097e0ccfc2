"""Which source column plays which role in a behaviour log: inferred from names, then from values.

Roles are ``user``, ``item``, ``category`` (optional), ``behavior`` and ``timestamp`` (see
:data:`recexp.data.log.ROLES`). Inference, in order:

1. **names**: a column whose lower-case alphanumeric name is a known synonym of a role
   (``user_id``/``userid``/``visitorid``/``uid`` ...; see :data:`ROLE_NAMES`);
2. **values**, for roles still open (files without a header, or unusual names):

   * ``timestamp``: a date-time column, a text column of dates, or integers whose magnitude is a
     plausible epoch in seconds, milliseconds, microseconds or nanoseconds (1990-2100) and whose
     spread is that of a log (under 30 years);
   * ``behavior``: the low-cardinality text column (at most 64 distinct values) whose values are most
     often known behaviour names (``pv``, ``view``, ``cart``, ``buy`` ...);
   * ``item`` and ``category``: the id pair where the second is (almost always) determined by the
     first, as items are nested in categories (at least 98% of repeated items have one category);
   * ``user``: of the remaining id columns, the one whose values come in longer consecutive runs
     (logs are usually grouped by user or session); when that is not clear, the one with fewer
     distinct values (a note says it was a guess).

An explicit mapping fixes roles before inference, which then fills the others from the columns left.
"""

from __future__ import annotations

import re
from itertools import permutations

import numpy as np
import pandas as pd

from recexp.data.log import BEHAVIOR_SYNONYMS, REQUIRED_ROLES, ROLES
from recexp.errors import InvalidDataError, InvalidParameterError

#: Column names (lower case, non-alphanumerics removed when compared) that name each role, best first.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "userid", "user", "visitorid", "visitor_id", "visitor", "uid", "customer_id",
             "customer", "member_id", "buyer_id", "client_id"),
    "item": ("item_id", "itemid", "item", "sku", "sku_id", "product_id", "product", "goods_id", "iid", "asin",
             "offer_id"),
    "category": ("category_id", "categoryid", "category", "cate_id", "cate", "cat_id", "cat", "item_category",
                 "category_code"),
    "behavior": ("behavior_type", "behavior", "behaviour_type", "behaviour", "event", "event_type", "action",
                 "action_type", "btag", "type", "interaction", "interaction_type"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "event_time", "time_stamp", "unix_time",
                  "created_at", "event_timestamp", "time_ms"),
}
#: Column names a feature table's label column often has (compared case-insensitively).
LABEL_NAMES = ("label", "target", "class", "y", "click", "clicked", "is_click", "outcome")

MAX_BEHAVIORS = 64          # a behaviour column has at most this many distinct values
FD_SHARE = 0.98             # share of repeated items with a single category for item -> category
PROFILE_ROWS = 200_000      # rows looked at for value-based inference
_EPOCH_SECONDS = (6.3e8, 4.2e9)                      # 1990 .. 2100
_EPOCH_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_MAX_SPREAD_S = 30 * 365.25 * 86400
_DATE = re.compile(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")


def normalise_name(name: object) -> str:
    """Lower-case alphanumeric form of a column name (``"User ID"`` -> ``"userid"``)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


#: Every known role and label name in normalised form (evidence of a header row).
KNOWN_NAMES = frozenset(normalise_name(n) for names in ROLE_NAMES.values() for n in names) | frozenset(
    normalise_name(n) for n in LABEL_NAMES)


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
    """What value-based inference needs to know about one column (computed on a sample)."""

    def __init__(self, name: str, series: pd.Series):
        self.name = name
        non_null = series.dropna()
        self.null_share = 1.0 - len(non_null) / max(len(series), 1)
        self.nunique = int(non_null.nunique())
        self.kind = "other"
        self.numbers: np.ndarray | None = None
        self.synonym_share = 0.0
        self.date_share = 0.0
        self.series = series
        if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
            self.kind = "datetime"
        elif pd.api.types.is_bool_dtype(series):
            self.kind = "other"
        elif pd.api.types.is_numeric_dtype(series):
            self.numbers = non_null.to_numpy(dtype=np.float64)
            integral = bool(np.all(np.mod(self.numbers, 1) == 0)) if self.numbers.size else True
            self.kind = "int" if integral else "float"
        else:
            text = non_null.astype(str).str.strip()
            numbers = pd.to_numeric(text, errors="coerce")
            if len(text) and numbers.notna().mean() >= 0.99:
                self.numbers = numbers.dropna().to_numpy(dtype=np.float64)
                integral = bool(np.all(np.mod(self.numbers, 1) == 0))
                self.kind = "int" if integral else "float"
            else:
                self.kind = "string"
                head = text.head(500)
                self.date_share = float(head.str.match(_DATE).mean()) if len(head) else 0.0
                if self.nunique <= MAX_BEHAVIORS:
                    self.synonym_share = float(text.str.lower().isin(BEHAVIOR_SYNONYMS).mean())

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


def _functional_share(frame: pd.DataFrame, a: str, b: str) -> tuple[float, int]:
    """Share of repeated ``a`` values that always come with the same ``b``; and how many were repeated."""
    pairs = frame[[a, b]].dropna()
    grouped = pairs.groupby(a, observed=True, sort=False)[b].agg(["nunique", "size"])
    repeated = grouped[grouped["size"] >= 2]
    if repeated.empty:
        return 0.0, 0
    return float((repeated["nunique"] == 1).mean()), len(repeated)


def infer_mapping_with_notes(frame: pd.DataFrame, fixed: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Role -> column for every role that could be inferred, plus notes on the guesses made.

    Parameters
    ----------
    frame : pandas.DataFrame
        The source table (or a sample of its first rows).
    fixed : dict, optional
        Roles already decided (role -> column, or None for "no column"); their columns are not
        considered for other roles.
    """
    mapping: dict[str, str | None] = dict(fixed or {})
    notes: list[str] = []
    _infer(frame, mapping, notes)
    return {role: column for role, column in mapping.items() if column is not None}, notes


def _infer(frame: pd.DataFrame, mapping: dict[str, str | None], notes: list[str]) -> None:
    """Fill the roles missing from ``mapping`` in place (names first, then values)."""
    free = [c for c in frame.columns if c not in mapping.values()]

    # 1. names
    for role in ROLES:
        if role in mapping:
            continue
        by_name = {normalise_name(c): c for c in reversed(free)}
        for synonym in ROLE_NAMES[role]:
            column = by_name.get(normalise_name(synonym))
            if column is not None:
                mapping[role] = column
                free.remove(column)
                break
    if all(role in mapping for role in ROLES):
        return

    # 2. values
    sample = frame.head(PROFILE_ROWS)
    profiles = {c: _Profile(c, sample[c]) for c in free}

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
            mapping["timestamp"] = max(ranked)[2]
            profiles.pop(mapping["timestamp"])

    if "behavior" not in mapping:
        strings = [p for p in profiles.values() if p.kind == "string" and 1 <= p.nunique <= MAX_BEHAVIORS]
        if strings:
            best = max(strings, key=lambda p: (p.synonym_share, -p.nunique))
            mapping["behavior"] = best.name
            if best.synonym_share == 0:
                notes.append(f"The behaviour role was guessed as '{best.name}' (the text column with the fewest "
                             "distinct values); map it explicitly if that is wrong.")
        else:
            codes = [p for p in profiles.values() if p.kind == "int" and 2 <= p.nunique <= 10 and p.null_share < 0.5
                     and p.numbers is not None and p.numbers.min() >= 0 and p.numbers.max() <= 20]
            if codes:
                best = min(codes, key=lambda p: p.nunique)
                mapping["behavior"] = best.name
                notes.append(f"The behaviour role was guessed as '{best.name}', a column of {best.nunique} integer "
                             "codes; map it explicitly if that is wrong.")
        if "behavior" in mapping:
            profiles.pop(mapping["behavior"])

    ids = [p for p in profiles.values() if p.is_id]
    open_roles = [r for r in ("user", "item", "category") if r not in mapping]
    if "category" in open_roles:
        if "item" in mapping:
            pairs = [(mapping["item"], p.name) for p in ids]
        elif "item" in open_roles:
            pairs = list(permutations([p.name for p in ids], 2))
        else:
            pairs = []
        found = []
        for a, b in pairs:
            if a == b or profiles.get(b) is None:
                continue
            n_a = profiles[a].nunique if a in profiles else sample[a].nunique()
            if profiles[b].nunique >= n_a:
                continue
            share, repeated = _functional_share(sample, a, b)
            if share >= FD_SHARE and repeated >= 20:
                found.append((share, n_a, a, b))
        if found:
            _, _, item, category = max(found)
            mapping.setdefault("item", item)
            mapping["category"] = category
            ids = [p for p in ids if p.name not in (item, category)]
    open_ids = [r for r in ("user", "item") if r not in mapping]
    if open_ids == ["user", "item"] and len(ids) >= 2:
        first, second = sorted(ids[:2], key=lambda p: p.nunique)
        runs_first, runs_second = first.run_length, second.run_length
        if runs_second >= 1.5 * runs_first:
            first, second = second, first
        elif runs_first < 1.5 * runs_second:
            notes.append(f"User and item columns were told apart only by their number of distinct values "
                         f"(user '{first.name}': {first.nunique:,}, item '{second.name}': {second.nunique:,}); "
                         "map them explicitly if that is wrong.")
        mapping["user"], mapping["item"] = first.name, second.name
    elif open_ids == ["user"] and ids:
        mapping["user"] = max(ids, key=lambda p: p.run_length).name
    elif open_ids == ["item"] and ids:
        mapping["item"] = max(ids, key=lambda p: p.nunique).name


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
    return infer_mapping_with_notes(frame)[0]


def check_override(mapping: dict[str, str | None] | None, columns: list[str]) -> dict[str, str | None]:
    """Validate an explicit role -> column mapping against the source's columns.

    ``None`` (or ``""``) for the optional ``category`` role means "no column", so it is not inferred.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise InvalidParameterError(
            f"mapping must be a dict of role -> column, but got {type(mapping).__name__}. "
            "Pass e.g. {'user': 'visitorid'}.")
    checked: dict[str, str | None] = {}
    for role, column in mapping.items():
        if role not in ROLES:
            raise InvalidParameterError(
                f"mapping names an unknown role {role!r}. Roles are: {', '.join(ROLES)}.")
        if column is None or column == "":
            if role in REQUIRED_ROLES:
                raise InvalidParameterError(
                    f"mapping leaves the required role '{role}' without a column. Map it to a column or leave it "
                    "out of the mapping to infer it.")
            checked[role] = None       # explicitly no column for this optional role
            continue
        if column not in columns:
            raise InvalidDataError(
                f"mapping sends role '{role}' to column {column!r}, which the source does not have. "
                f"Columns: {', '.join(map(str, columns))}.")
        checked[role] = column
    used = [c for c in checked.values() if c is not None]
    duplicates = sorted({c for c in used if used.count(c) > 1})
    if duplicates:
        raise InvalidDataError(
            f"mapping sends several roles to the same column ({', '.join(duplicates)}). Give each role its own column.")
    return checked


def require_roles(mapping: dict[str, str], columns: list[str]) -> None:
    """Raise :class:`InvalidDataError` naming the required roles no column was found for."""
    missing = [r for r in REQUIRED_ROLES if r not in mapping]
    if not missing:
        return
    found = ", ".join(f"{r}={mapping[r]}" for r in ROLES if r in mapping) or "none"
    example = " ".join(f"--map {r}=COLUMN" for r in missing)
    raise InvalidDataError(
        f"No column was found for the required role(s) {', '.join(missing)}. Columns: "
        f"{', '.join(map(str, columns))}; roles found: {found}. Map each missing role to a column: "
        f"mapping={{{', '.join(repr(r) + ': COLUMN' for r in missing)}}} in Python, {example} on the command "
        "line, or the Column mapping panel on the Data page.")
