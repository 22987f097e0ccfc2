"""Turn a raw table into a validated :class:`BehaviorLog` or :class:`FeatureTable`.

Logs: roles are mapped (:mod:`recexp.data.mapping`), ids become categoricals, behaviours are
normalised to the canonical funnel names (:data:`~recexp.data.log.BEHAVIOR_SYNONYMS`; unknown values
are kept as they are), timestamps become ``datetime64[ns, UTC]`` (epoch seconds / milliseconds /
microseconds / nanoseconds decided by magnitude; date-time strings without a zone are taken as UTC),
rows that cannot be used are dropped and counted per reason, and the frame is sorted by time
(stable). Tables: the label column is checked, numeric and categorical columns are told apart, row
numbers are left out, and rows with malformed numbers are dropped and reported.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recexp.data.log import (
    BEHAVIOR_SYNONYMS, FUNNEL, ROLE_COLUMNS, BehaviorLog, FeatureTable, ValidationReport, frame_fingerprint,
)
from recexp.data.mapping import (
    LABEL_NAMES, PROFILE_ROWS, RoleChoice, check_override, epoch_unit, infer_roles, normalise_name, require_roles,
)
from recexp.data.readers import RawRead
from recexp.errors import InvalidDataError, InvalidParameterError, LogMappingError
from recexp.i18n import N_, _

Progress = Callable[[float, str], None]

_NUMBER_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_DANGLING_POINT_RE = r"^[-+]?\d+\.$"
_INTEGER_RE = r"^-?\d{1,18}$"
_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_REASONS = {
    "user": N_("missing user id"), "item": N_("missing item id"), "behavior": N_("missing behaviour"),
    "timestamp": N_("missing timestamp"),
}
_FAR_OUTLIER_MARGIN = 0.1   # events further than this share of the central 98% span are outliers
_MIX = np.uint64(0x9E3779B97F4A7C15)   # odd 64-bit multiplier (golden ratio) for hashing codes


def _shown(value: object, limit: int = 40) -> str:
    """A value quoted in a message, cut to ``limit`` characters (a cell can be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value)):,} characters)"


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary, large and view string types as their plain value type."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
        column = column.cast(pa.string())
    return column


def _is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type)


def _ids(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Ids with a stable value type: integral floats and all-digit strings become int64, text is trimmed."""
    column = _plain(column)
    if pa.types.is_floating(column.type):
        values = column.drop_null()
        if len(values) == 0 or pc.all(pc.equal(values, pc.floor(values))).as_py():
            column = column.cast(pa.int64())
    elif _is_text(column):
        column = pc.utf8_trim_whitespace(column)
        valid = column.drop_null()
        if len(valid) and pc.all(pc.match_substring_regex(valid, _INTEGER_RE)).as_py():
            column = column.cast(pa.int64())
    elif pa.types.is_boolean(column.type):
        column = column.cast(pa.string())
    return column


def _null_mask(column: pa.ChunkedArray) -> np.ndarray | None:
    """Where ``column`` is null, or ``None`` when it has no nulls (the common case: no pass over the rows)."""
    return column.is_null().to_numpy() if column.null_count else None


def _code_dtype(n_values: int) -> np.dtype:
    """The integer width pandas uses for the codes of a categorical with ``n_values`` categories."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_values < np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _integer_chunks(column: pa.ChunkedArray, keep: np.ndarray | None):
    """``(values, valid)`` numpy pairs chunk by chunk, kept rows only (``valid`` is ``None`` without nulls).

    Chunk-sized pieces stay in the CPU cache and spare the page faults of fresh full-length arrays.
    """
    start = 0
    for chunk in column.chunks:
        size = len(chunk)
        values = (chunk if chunk.null_count == 0 else chunk.fill_null(0)).to_numpy()
        valid = None if chunk.null_count == 0 else chunk.is_valid().to_numpy(zero_copy_only=False)
        if keep is not None:
            rows = keep[start:start + size]
            values, valid = values[rows], None if valid is None else valid[rows]
        start += size
        yield values, valid


def _encode_ids(column: pa.ChunkedArray, keep: np.ndarray | None, n_kept: int) -> tuple[np.ndarray, pd.Index]:
    """Codes (``-1`` = missing) of the kept rows of ``column`` into its distinct values, sorted.

    Integer ids whose range is not much wider than the number of rows are encoded by direct
    addressing (a presence table over ``min..max``: two linear passes, chunk by chunk, no hashing or
    sorting); other ids go through Arrow's dictionary encoding, with the dictionary sorted afterwards.
    Sorted categories make the codes themselves a canonical form of the values (see
    :func:`~recexp.data.log.frame_fingerprint`).
    """
    if pa.types.is_integer(column.type):
        extremes = pc.min_max(column).as_py()       # over every row: a dropped row can only widen the range
        if extremes["min"] is None:
            return np.full(n_kept, -1, dtype=np.int8), pd.Index([], dtype=np.int64)
        low = extremes["min"]
        span = extremes["max"] - low + 1
        if span <= 4 * n_kept + (1 << 20):
            seen = np.zeros(span, dtype=bool)
            for values, valid in _integer_chunks(column, keep):
                offsets = np.subtract(values, low, dtype=np.int64)
                seen[offsets if valid is None else offsets[valid]] = True
            categories = np.flatnonzero(seen) + low
            dtype = _code_dtype(categories.size)
            lookup = np.cumsum(seen, dtype=dtype)
            lookup -= 1
            codes = np.empty(n_kept, dtype=dtype)
            start = 0
            for values, valid in _integer_chunks(column, keep):
                out = codes[start:start + values.size]
                np.take(lookup, np.subtract(values, low, dtype=np.int64), out=out)
                if valid is not None:
                    out[~valid] = -1
                start += values.size
            return codes, pd.Index(categories)
        pieces = list(_integer_chunks(column, keep))
        values = np.concatenate([v for v, _ in pieces]).astype(np.int64, copy=False)
        valid = np.concatenate([np.ones(v.size, bool) if m is None else m for v, m in pieces])
        categories, inverse = np.unique(values[valid], return_inverse=True)
        codes = np.full(n_kept, -1, dtype=_code_dtype(categories.size))
        codes[valid] = inverse
        return codes, pd.Index(categories)
    if keep is not None:
        column = column.filter(pa.array(keep))
    encoded = pc.dictionary_encode(column.combine_chunks())
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    dtype = _code_dtype(order.size)
    rank = np.empty(order.size + 1, dtype=dtype)
    rank[order] = np.arange(order.size, dtype=dtype)
    rank[-1] = -1                                                   # nulls
    indices = encoded.indices
    positions = (indices if indices.null_count == 0 else pc.fill_null(indices, order.size)).to_numpy()
    return rank[positions], pd.Index(encoded.dictionary.take(pa.array(order)).to_pandas())


def _behavior_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Codes of each row's behaviour (``-1``: missing or blank) into the distinct trimmed raw values.

    Also returns the rows per code, with the missing ones last. Works chunk by chunk on the (small)
    dictionary of distinct values, so millions of rows are never trimmed or compared as strings;
    the CSV reader already delivers low-cardinality text dictionary-encoded, one dictionary per block.
    """
    position: dict[str, int] = {}
    codes = np.empty(len(column), dtype=np.int32)
    chunk_counts: list[tuple[np.ndarray, np.ndarray]] = []
    start = 0
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(_plain(pa.chunked_array([chunk])).cast(pa.string()).combine_chunks())
        values = chunk.dictionary.to_pylist()
        trimmed = [("" if v is None else str(v).strip()) for v in values]
        remap = np.array([position.setdefault(t, len(position)) if t else -1 for t in trimmed] + [-1],
                         dtype=np.int32)                                # last slot: null
        indices = chunk.indices
        indices = (indices if indices.null_count == 0 else pc.fill_null(indices, len(values))).to_numpy()
        np.take(remap, indices, out=codes[start:start + len(chunk)])
        chunk_counts.append((remap, np.bincount(indices, minlength=len(remap))))
        start += len(chunk)
    counts = np.zeros(len(position) + 1, dtype=np.int64)      # slot -1: missing or blank
    for remap, chunk_count in chunk_counts:
        np.add.at(counts, remap, chunk_count)
    return codes, list(position), counts


def _timestamps(column: pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """UTC nanoseconds since the epoch, where they parsed (``None``: everywhere), and how they were read.

    Integer epochs within range take a numpy fast path (one multiplication per chunk); everything
    else is converted by Arrow. Values that did not parse are 0 in the returned array.
    """
    column = _plain(column)
    if pa.types.is_integer(column.type):
        unit = _epoch_unit(column, name)
        limit = np.iinfo(np.int64).max // _NS[unit]
        extremes = pc.min_max(column).as_py()
        if extremes["min"] is None or (-limit <= extremes["min"] and extremes["max"] <= limit):
            nanos = np.empty(len(column), dtype=np.int64)
            start = 0
            for values, _ in _integer_chunks(column, None):
                np.multiply(values, np.int64(_NS[unit]), out=nanos[start:start + values.size], dtype=np.int64)
                start += values.size
            valid = None if column.null_count == 0 else column.is_valid().to_numpy()
            return nanos, valid, f"epoch {unit}"
    parsed, time_format = _timestamps_arrow(column, name)
    parsed = parsed.cast(pa.int64())
    valid = None if parsed.null_count == 0 else parsed.is_valid().to_numpy()
    return (parsed if valid is None else parsed.fill_null(0)).to_numpy(), valid, time_format


def _epoch_unit(column: pa.ChunkedArray, name: str) -> str:
    """The epoch unit of a numeric timestamp column (decided on its first rows), or a clear error."""
    values = column.slice(0, PROFILE_ROWS).drop_null().to_numpy().astype(np.float64)
    unit = epoch_unit(values) or ("s" if values.size == 0 else None)
    if unit is None:
        raise InvalidDataError(
            _("The timestamp column '{name}' holds numbers that are not epoch times of a log (median "
              "{values:,.0f}; epoch seconds of 1990-2100 lie between 6.3e8 and 4.2e9, milliseconds 1000 times "
              "more). Map the timestamp role to the right column, or convert it to epoch seconds or ISO 8601 "
              "text.").format(name=name, values=np.median(values)))
    return unit


def _timestamps_arrow(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, str]:
    """UTC nanosecond timestamps (null where a value does not parse) and how they were read."""
    if pa.types.is_timestamp(column.type):
        zone = column.type.tz
        if zone is None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        return column.cast(pa.timestamp("ns", tz="UTC")), "date-times" + ("" if zone else " (taken as UTC)")
    if pa.types.is_date(column.type):
        return column.cast(pa.timestamp("s")).cast(pa.timestamp("ns", tz="UTC")), "dates (taken as UTC)"
    if _is_text(column):
        trimmed = pc.utf8_trim_whitespace(column)
        numeric = pc.match_substring_regex(trimmed, _NUMBER_RE)
        valid = numeric.drop_null()
        if len(valid) and pc.mean(valid.cast(pa.int8())).as_py() >= 0.5:
            column = pc.if_else(numeric, trimmed, None).cast(pa.float64())
        else:
            parsed = pd.to_datetime(trimmed.to_pandas(), utc=True, errors="coerce", format="ISO8601")
            share = parsed.notna().sum() / max(len(valid), 1)
            if share < 0.9:
                parsed = pd.to_datetime(trimmed.to_pandas(), utc=True, errors="coerce", format="mixed")
            return pa.chunked_array([pa.array(parsed.astype("datetime64[ns, UTC]"))]), "date-time text (UTC unless zoned)"
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        unit = _epoch_unit(column, name)
        limit = np.iinfo(np.int64).max // _NS[unit]
        in_range = pc.less_equal(pc.abs(column), limit)   # beyond year 2262 in nanoseconds: unparseable
        if pa.types.is_integer(column.type):
            nanos = pc.multiply(pc.if_else(in_range, column.cast(pa.int64()), None), _NS[unit])
        else:
            nanos = pc.multiply(pc.if_else(in_range, column, None), float(_NS[unit])).cast(pa.int64(), safe=False)
        return nanos.cast(pa.timestamp("ns", tz="UTC")), f"epoch {unit}"
    raise InvalidDataError(
        _("The timestamp column '{name}' has type {type}, which is not a time. Map the timestamp role to a "
          "column of epoch numbers or date-time text.").format(name=name, type=column.type))


def _normalise_behavior(raw: str) -> str:
    return BEHAVIOR_SYNONYMS.get(raw.lower(), raw)


def _iso(value: pd.Timestamp) -> str:
    return value.isoformat()



def _outlier_warning(times: np.ndarray, time_window: tuple | None) -> tuple[int, str | None]:
    """Count events outside the stated window, or far outside the central 98% of the log.

    ``times`` are sorted int64 nanoseconds since the epoch (UTC).
    """
    if times.size == 0:
        return 0, None
    if time_window is not None:
        try:
            start, end = (pd.Timestamp(t) for t in time_window)
        except (TypeError, ValueError) as error:
            raise InvalidParameterError(
                _("time_window must be two date-times (start, end), but got "
                  "{time_window!r}.").format(time_window=time_window)) from error
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        end = end.tz_localize("UTC") if end.tzinfo is None else end
        low, high = start.value, end.value
        outside = (times < low) | (times >= high)
        count = int(outside.sum())
        if not count:
            return 0, None
        stray = pd.to_datetime(times[outside], utc=True)
        return count, _("Events outside the stated window {start} to {end}: {count:,} (earliest {earliest}, latest "
                        "{latest}). They are kept; filter them if they should not count.").format(
            start=start.isoformat(), end=end.isoformat(), count=count, earliest=_iso(stray.min()),
            latest=_iso(stray.max()))
    # ``times`` is sorted, so the percentiles are just positions.
    p1, p99 = (float(times[int(round(q * (times.size - 1)))]) for q in (0.01, 0.99))
    margin = max(_FAR_OUTLIER_MARGIN * (p99 - p1), 3600e9)
    outside = (times < p1 - margin) | (times > p99 + margin)
    count = int(outside.sum())
    if not count:
        return 0, None
    stray = pd.to_datetime(times[outside], utc=True)
    core = pd.to_datetime(np.array([p1, p99], dtype=np.int64), utc=True).floor("s")
    return count, _("Events far outside the main activity window ({start} to {end}, where 98% of events fall): "
                    "{count:,} (earliest {earliest}, latest {latest}). They are kept; check the source's clock or "
                    "filter them.").format(start=_iso(core[0]), end=_iso(core[1]), count=count,
                                           earliest=_iso(stray.min()), latest=_iso(stray.max()))


def count_duplicates(frame: pd.DataFrame, row_hashes: pd.Series | None = None) -> int:
    """Rows that repeat an earlier row, counted by their 64-bit row hash.

    Uses ``row_hashes`` from :func:`pandas.util.hash_pandas_object` when given. Sorting hashes is
    several times faster than :meth:`pandas.DataFrame.duplicated` on millions of rows; two different
    rows share a hash with probability about ``n**2 / 2**65`` (under 1e-5 at ten million rows).
    """
    if len(frame) < 2:
        return 0
    hashes = np.sort((pd.util.hash_pandas_object(frame, index=False) if row_hashes is None else row_hashes).to_numpy())
    return int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def _duplicate_events(codes: list[np.ndarray], times: np.ndarray) -> int:
    """Events that repeat an earlier event in every column (``codes``: integer codes, ``times``: sorted).

    Duplicates share their timestamp, so only events inside a run of equal timestamps are compared:
    each gets a 64-bit key with its run's number in the high bits and a hash of its codes in the
    remaining (at least 32) bits. The keys are then already sorted except inside runs, which a
    stable sort (timsort) fixes in near-linear time, and equal neighbours are counted. Two different
    events of one run share a key with probability about ``run_length / 2**bits``.
    """
    n = times.size
    if n < 2:
        return 0
    same_time = times[1:] == times[:-1]
    if not same_time.any():
        return 0
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.logical_not(same_time, out=starts[1:])
    in_run = ~starts                                # shares the time of the event before it ...
    in_run[:-1] |= same_time                        # ... or of the one after it
    rows = slice(None) if np.count_nonzero(in_run) > n // 2 else np.flatnonzero(in_run)
    del same_time, in_run
    # Full-length work arrays are reused in place: fresh ones cost page faults on large logs.
    key = np.zeros(n if isinstance(rows, slice) else rows.size, dtype=np.uint64)
    for values in codes:
        key *= _MIX
        np.bitwise_xor(key, values[rows], out=key, dtype=np.uint64, casting="unsafe")   # -1 wraps, as wanted
    work = np.right_shift(key, np.uint64(32))
    key ^= work
    key *= _MIX
    np.right_shift(key, np.uint64(29), out=work)
    key ^= work
    if isinstance(rows, slice):
        run = np.cumsum(starts, dtype=np.uint64, out=work)
    else:
        del work
        run = np.cumsum(starts, dtype=np.uint64)[rows]
    run_bits = max(int(run[-1]).bit_length(), 1)
    key >>= np.uint64(run_bits)
    run <<= np.uint64(64 - run_bits)
    key |= run
    del run
    key.sort(kind="stable")
    return int(np.count_nonzero(key[1:] == key[:-1]))


def build_log(raw: RawRead, *, mapping: dict[str, str] | None = None, time_window: tuple | None = None,
              progress: Progress | None = None) -> BehaviorLog:
    """Map, convert, validate and sort a raw table into a :class:`BehaviorLog` (see module docstring).

    Raises :class:`~recexp.errors.LogMappingError` (with the columns and the roles found) when a
    required role has no column or the mapped columns do not make a log.
    """
    columns = raw.table.column_names
    fixed = check_override(mapping, columns)
    sample = raw.table.slice(0, PROFILE_ROWS).to_pandas()
    choices, notes = infer_roles(sample, fixed)
    inferred = {role: choice.column for role, choice in choices.items()}
    require_roles(inferred, sample)
    try:
        return _mapped_log(raw, choices, notes, time_window, progress)
    except LogMappingError:
        raise
    except InvalidDataError as error:
        raise LogMappingError(str(error), columns=columns, mapping=inferred, missing=[]) from error


def _mapped_log(raw: RawRead, choices: dict[str, RoleChoice], notes: list[str], time_window: tuple | None,
                progress: Progress | None) -> BehaviorLog:
    """Convert, validate and sort the columns ``choices`` name into a :class:`BehaviorLog`."""
    table = raw.table
    columns = table.column_names
    inferred = {role: choice.column for role, choice in choices.items()}
    for role, column in inferred.items():
        kind = table.schema.field(column).type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind):
            raise InvalidDataError(
                _("Column '{column}' (mapped to the {role} role) holds {kind} values, not plain numbers or text. "
                  "Map the {role} role to a column of plain values "
                  "(--map {role}=COLUMN) or flatten the data.").format(column=column, role=role, kind=kind))
    if progress is not None:
        progress(0.65, _("Converting columns"))

    dropped: Counter = Counter(raw.dropped)
    warnings = list(raw.warnings) + notes
    converted = {role: _ids(table[inferred[role]]) for role in ("user", "item", "category") if role in inferred}
    behavior_codes, behavior_names, behavior_counts = _behavior_codes(table[inferred["behavior"]])
    times, parsed, time_format = _timestamps(table[inferred["timestamp"]], inferred["timestamp"])

    missing = {role: _null_mask(converted[role]) for role in ("user", "item")}
    missing["behavior"] = behavior_codes < 0 if behavior_counts[-1] else None
    missing["timestamp"] = _null_mask(table[inferred["timestamp"]])
    keep: np.ndarray | None = None                  # None: every row so far
    for role, invalid in missing.items():           # each dropped row is counted under its first reason
        if invalid is None:
            continue
        count = int(np.count_nonzero(invalid if keep is None else invalid & keep))
        if count:
            dropped[_(_REASONS[role])] += count
            keep = ~invalid if keep is None else keep & ~invalid
    unparsed = None if parsed is None else ~parsed if keep is None else keep & ~parsed
    n_unparsed = 0 if unparsed is None else int(np.count_nonzero(unparsed))
    if n_unparsed:
        n_candidates = table.num_rows if keep is None else int(np.count_nonzero(keep))
        source_times = _plain(table[inferred["timestamp"]]).cast(pa.string())
        examples = pc.unique(source_times.filter(pa.array(unparsed))).to_pylist()[:3]
        if n_unparsed > 0.5 * n_candidates:
            raise InvalidDataError(
                _("The timestamp column '{timestamp}' does not parse: {n_unparsed:,} of {n_candidates:,} values "
                  "are neither epoch numbers nor date-times (e.g. {shown}). Map the timestamp role to the right "
                  "column (--map timestamp=COLUMN) or convert it to ISO 8601 text or epoch seconds.").format(
                  timestamp=inferred['timestamp'], n_unparsed=n_unparsed, n_candidates=n_candidates,
                  shown=', '.join(map(_shown, examples))))
        dropped[_("timestamp does not parse")] += n_unparsed
        warnings.append(_("Timestamps that did not parse: {n_unparsed:,} (e.g. {shown}). Those rows were dropped.").format(
                          n_unparsed=n_unparsed, shown=', '.join(map(_shown, examples))))
        keep = ~unparsed if keep is None else keep & ~unparsed

    if progress is not None:
        progress(0.75, _("Validating"))
    n_kept = table.num_rows if keep is None else int(np.count_nonzero(keep))
    if n_kept == 0:
        raise InvalidDataError(
            _("No usable rows are left in '{name}' after dropping rows without {value}. Check the column mapping.").format(
              name=raw.name, value=', '.join(dropped) or _('values')))
    if keep is not None:
        behavior_codes, times = behavior_codes[keep], times[keep]
        behavior_counts = np.bincount(behavior_codes, minlength=len(behavior_names))

    # Encode the ids in parallel (numpy and Arrow release the GIL in the heavy parts).
    with ThreadPoolExecutor(max_workers=min(len(converted), os.cpu_count() or 1)) as pool:
        encoded = dict(zip(converted, pool.map(lambda role: _encode_ids(converted[role], keep, n_kept), converted)))
    behavior_values = {behavior_names[i]: int(behavior_counts[i])
                       for i in np.argsort(-behavior_counts[:len(behavior_names)], kind="stable") if behavior_counts[i]}
    canonical = {raw_value: _normalise_behavior(raw_value) for raw_value in behavior_values}
    stages = set(canonical.values())
    if len(stages) < 2:
        only = next(iter(behavior_values))
        raise InvalidDataError(
            _("The behaviour column '{behavior}' has a single value ({only}) in all {n_kept:,} usable rows, so "
              "there are no classes to learn. Map the behaviour role to the column that tells event types apart, "
              "or use a log with at least two behaviours.").format(
              behavior=inferred['behavior'], only=_shown(only), n_kept=n_kept))
    unknown = sorted(v for v, c in canonical.items() if c == v and c not in FUNNEL)
    if unknown:
        warnings.append(_("Behaviour values outside the view/cart/fav/buy funnel were kept as they are: "
                          "{values}.").format(values=", ".join(unknown[:10]) + ("..." if len(unknown) > 10 else "")))
    stage_names = [s for s in FUNNEL if s in stages] + sorted(stages - set(FUNNEL))
    targets = np.array([stage_names.index(canonical[v]) if v in canonical else -1 for v in behavior_names],
                       dtype=np.int8)
    behavior_codes = targets[behavior_codes]

    order = None if times.size < 2 or bool(np.all(times[1:] >= times[:-1])) else np.argsort(times, kind="stable")
    if order is not None:
        times, behavior_codes = times[order], behavior_codes[order]
        encoded = {role: (codes[order], categories) for role, (codes, categories) in encoded.items()}
    data: dict[str, object] = {
        ROLE_COLUMNS[role]: pd.Categorical.from_codes(codes, categories=categories, validate=False)
        for role, (codes, categories) in encoded.items()}
    data["behavior"] = pd.Categorical.from_codes(behavior_codes, categories=stage_names, validate=False)
    data["timestamp"] = pa.array(times, type=pa.timestamp("ns", tz="UTC")).to_pandas()
    frame = pd.DataFrame(data, copy=False)

    if progress is not None:
        progress(0.85, _("Checking duplicates and time range, fingerprinting"))
    with ThreadPoolExecutor(max_workers=1) as pool:    # hashing releases the GIL: overlap it with the counting
        fingerprint = pool.submit(frame_fingerprint, frame)
        duplicates = _duplicate_events([codes for codes, _ in encoded.values()] + [behavior_codes], times)
        fingerprint = fingerprint.result()
    if duplicates:
        warnings.append(_("Exact duplicate events (same user, item, behaviour and time as an earlier one): "
                          "{duplicates:,}. They are kept.").format(duplicates=duplicates))
    outliers, outlier_warning = _outlier_warning(times, time_window)
    if outlier_warning:
        warnings.append(outlier_warning)
    mapping_used = {role: inferred[role] for role in ("user", "item", "category", "behavior", "timestamp")
                    if role in inferred}
    report = ValidationReport(
        rows_read=raw.rows_read, rows_kept=len(frame), dropped=dict(dropped), duplicates=duplicates,
        nulls={c: int(table[c].null_count) for c in columns}, behavior_values=behavior_values,
        time_range=(_iso(frame["timestamp"].iloc[0]), _iso(frame["timestamp"].iloc[-1])),
        warnings=warnings, unused_columns=[c for c in columns if c not in mapping_used.values()],
        timestamp_outliers=outliers, read_as=f"{raw.read_as}; timestamps as {time_format}",
        roles={role: choices[role].to_dict() for role in mapping_used},
    )
    return BehaviorLog(frame=frame, mapping=mapping_used, report=report, source=raw.name,
                       fingerprint=fingerprint)


# --- feature tables ---------------------------------------------------------------------------------


def _label_column(label_column: str | None, columns: list[str]) -> str:
    if label_column is not None:
        if label_column in columns:
            return label_column
        folded = [c for c in columns if c.lower() == str(label_column).lower()]
        if len(folded) == 1:
            return folded[0]
        raise InvalidDataError(
            _("The label column {label_column!r} is not in the table. Columns: {columns}. Name one of them "
              "(files without a header row have columns c0, c1, ... by position).").format(
              label_column=label_column, columns=', '.join(columns)))
    for name in LABEL_NAMES:
        found = [c for c in columns if normalise_name(c) == normalise_name(name)]
        if found:
            return found[0]
    raise InvalidDataError(
        _("A feature table needs a label column, and none is named like one ({label_names}). Columns: {columns}. "
          "Name the label column: in the Label column box on the Data page, with --label COLUMN on the command "
          "line, or label_column=... in Python.").format(
          label_names=', '.join(LABEL_NAMES), columns=', '.join(columns)))


def _numbers(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray | None, int, pa.ChunkedArray | None]:
    """For a text column that is (at least 99%) numbers: float values, count of non-numbers read as
    missing, and a mask of numbers written with a dangling decimal point. ``(None, 0, None)`` otherwise."""
    trimmed = pc.utf8_trim_whitespace(column)
    non_null = len(column) - column.null_count
    if non_null == 0:
        return None, 0, None
    numeric = pc.match_substring_regex(trimmed, _NUMBER_RE)
    n_numeric = pc.sum(numeric).as_py() or 0
    if n_numeric < 0.99 * non_null:
        return None, 0, None
    values = pc.if_else(numeric, trimmed, None).cast(pa.float64())
    dangling = pc.fill_null(pc.match_substring_regex(trimmed, _DANGLING_POINT_RE), False)
    n_dangling = pc.sum(dangling).as_py() or 0
    # A form used by a handful of cells only is a slip (e.g. "18.,500" for "18,.500"); a file that
    # writes every number that way is just its style.
    return values, non_null - n_numeric, dangling if 0 < n_dangling < 0.01 * non_null else None


def _is_row_number(values: pa.ChunkedArray) -> bool:
    array = values.to_numpy()
    if array.size == 0 or np.isnan(array).any():
        return False
    return bool(np.array_equal(array, np.arange(array[0], array[0] + array.size))) and array[0] in (0, 1)


def build_table(raw: RawRead, *, label_column: str | None = None, progress: Progress | None = None) -> FeatureTable:
    """Check and type a raw feature table into a :class:`FeatureTable` (see module docstring)."""
    table = raw.table
    columns = table.column_names
    label = _label_column(label_column, columns)
    dropped: Counter = Counter(raw.dropped)
    warnings = list(raw.warnings)
    unused: list[str] = []
    numeric: list[str] = []
    categorical: list[str] = []
    values: dict[str, pa.ChunkedArray] = {}
    bad_rows = pa.chunked_array([pa.array(np.zeros(table.num_rows, dtype=bool))])
    dangling_columns: list[str] = []
    if progress is not None:
        progress(0.65, _("Typing columns"))
    for name in columns:
        column = _plain(table[name])
        if name == label:
            continue
        if len(column) == column.null_count:
            unused.append(name)
            warnings.append(_("Column '{name}' is empty in every row and was left out.").format(name=name))
            continue
        if _is_text(column):
            numbers, junk, dangling = _numbers(column)
            if numbers is None:
                values[name] = pc.utf8_trim_whitespace(column)
                categorical.append(name)
                continue
            if junk:
                warnings.append(_("Column '{name}' is numeric but has {junk:,} cells that are not numbers; they "
                                  "were read as missing.").format(name=name, junk=junk))
            if dangling is not None:
                bad_rows = pc.or_(bad_rows, dangling)
                dangling_columns.append(name)
            column = numbers
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
            column = column.cast(pa.float64())
            if name.lower().startswith(("unnamed", "index")) and _is_row_number(column):
                unused.append(name)
                warnings.append(_("Column '{name}' holds the row numbers and was left out of "
                                  "the features.").format(name=name))
                continue
            values[name] = column
            numeric.append(name)
        else:
            unused.append(name)
            warnings.append(_("Column '{name}' has type {type}, which is neither a number nor a category; it was "
                              "left out.").format(name=name, type=column.type))

    n_bad = pc.sum(bad_rows).as_py() or 0
    if n_bad:
        reason = _("number with a dangling decimal point (e.g. '18.'), a sign of a misplaced separator")
        dropped[reason] += n_bad
        shown = table.filter(bad_rows).slice(0, 3).to_pylist()
        rows = "; ".join(",".join("" if v is None else str(v) for v in row.values()) for row in shown)
        warnings.append(_("Rows dropped for a number with a dangling decimal point in {dangling_columns}: "
                          "{n_bad:,} ({rows}).").format(
                          dangling_columns=', '.join(dangling_columns), n_bad=n_bad, rows=rows))

    label_values = pc.utf8_trim_whitespace(_plain(table[label]).cast(pa.string()))
    missing_label = pc.is_null(label_values)
    n_missing = pc.sum(pc.and_(missing_label, pc.invert(bad_rows))).as_py() or 0
    if n_missing:
        dropped[_("missing label")] += n_missing
    keep = pc.invert(pc.or_(bad_rows, missing_label))
    kept_labels = label_values.filter(keep)
    if len(kept_labels) == 0:
        raise InvalidDataError(_("The label column '{label}' is empty in every row. Name the column that holds "
                                 "the class.").format(label=label))
    numeric_label = pc.all(pc.match_substring_regex(kept_labels, _NUMBER_RE)).as_py()
    if numeric_label:
        label_array = kept_labels.cast(pa.float64())
        if pc.all(pc.equal(label_array, pc.floor(label_array))).as_py():
            label_array = label_array.cast(pa.int64())
    else:
        label_array = kept_labels
    n_classes = len(pc.unique(label_array))
    if n_classes < 2:
        raise InvalidDataError(
            _("The label column '{label}' has a single value ({kept_labels!r}) in every row, so there are no "
              "classes to learn. Name the column that holds the class.").format(
              label=label, kept_labels=kept_labels[0].as_py()))

    data: dict[str, object] = {}
    for name in columns:
        if name == label:
            data[name] = label_array.to_pandas()
        elif name in numeric:
            data[name] = values[name].filter(keep).to_numpy()
        elif name in categorical:
            data[name] = pd.Categorical(values[name].filter(keep).to_pandas())
    frame = pd.DataFrame(data)
    duplicates = count_duplicates(frame)
    if duplicates:
        warnings.append(_("Exact duplicate rows: {duplicates:,}. They are kept.").format(duplicates=duplicates))
    report = ValidationReport(
        rows_read=raw.rows_read, rows_kept=len(frame), dropped=dict(dropped), duplicates=duplicates,
        nulls={c: int(table[c].null_count) for c in columns}, warnings=warnings, unused_columns=unused,
        read_as=raw.read_as,
    )
    if progress is not None:
        progress(0.95, _("Fingerprinting"))
    return FeatureTable(frame=frame, label_column=label, numeric=numeric, categorical=categorical, report=report,
                        source=raw.name, fingerprint=frame_fingerprint(frame))

