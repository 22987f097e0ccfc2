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
    LABEL_NAMES, PROFILE_ROWS, check_override, epoch_unit, infer_mapping_with_notes, require_roles,
)
from recexp.data.readers import RawRead
from recexp.errors import InvalidDataError, InvalidParameterError

Progress = Callable[[float, str], None]

_NUMBER_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_DANGLING_POINT_RE = r"^[-+]?\d+\.$"
_INTEGER_RE = r"^-?\d{1,18}$"
_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_REASONS = {
    "user": "missing user id", "item": "missing item id", "behavior": "missing behaviour",
    "timestamp": "missing timestamp",
}
_FAR_OUTLIER_MARGIN = 0.1   # events further than this share of the central 98% span are outliers


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


def _is_null(column: pa.ChunkedArray) -> np.ndarray:
    return column.is_null().to_numpy()


def _behavior_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Codes of each row's behaviour (``-1``: missing or blank) into the distinct trimmed raw values.

    Works on the (small) dictionary of distinct values, so millions of rows are never trimmed or
    compared as strings; the CSV reader already delivers low-cardinality text dictionary-encoded.
    """
    if pa.types.is_dictionary(column.type):
        encoded = pa.table({"b": column}).unify_dictionaries()["b"].combine_chunks()
    else:
        encoded = pc.dictionary_encode(_plain(column).cast(pa.string()).combine_chunks())
    trimmed = [("" if v is None else str(v).strip()) for v in encoded.dictionary.to_pylist()]
    names = list(dict.fromkeys(t for t in trimmed if t))
    position = {name: i for i, name in enumerate(names)}
    remap = np.array([position.get(t, -1) for t in trimmed] + [-1], dtype=np.int32)   # last slot: null
    return remap[pc.fill_null(encoded.indices, len(trimmed)).to_numpy()], names


def _timestamps(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, str]:
    """UTC nanosecond timestamps (null where a value does not parse) and how they were read."""
    column = _plain(column)
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
        values = column.slice(0, PROFILE_ROWS).drop_null().to_numpy().astype(np.float64)
        unit = epoch_unit(values) or ("s" if values.size == 0 else None)
        if unit is None:
            raise InvalidDataError(
                f"The timestamp column '{name}' holds numbers that are not epoch times of a log (median "
                f"{np.median(values):,.0f}; epoch seconds of 1990-2100 lie between 6.3e8 and 4.2e9, milliseconds "
                "1000 times more). Map the timestamp role to the right column, or convert it to epoch seconds "
                "or ISO 8601 text.")
        limit = np.iinfo(np.int64).max // _NS[unit]
        in_range = pc.less_equal(pc.abs(column), limit)   # beyond year 2262 in nanoseconds: unparseable
        if pa.types.is_integer(column.type):
            nanos = pc.multiply(pc.if_else(in_range, column.cast(pa.int64()), None), _NS[unit])
        else:
            nanos = pc.multiply(pc.if_else(in_range, column, None), float(_NS[unit])).cast(pa.int64(), safe=False)
        return nanos.cast(pa.timestamp("ns", tz="UTC")), f"epoch {unit}"
    raise InvalidDataError(
        f"The timestamp column '{name}' has type {column.type}, which is not a time. Map the timestamp role "
        "to a column of epoch numbers or date-time text.")


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
                f"time_window must be two date-times (start, end), but got {time_window!r}.") from error
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        end = end.tz_localize("UTC") if end.tzinfo is None else end
        low, high = start.value, end.value
        outside = (times < low) | (times >= high)
        count = int(outside.sum())
        if not count:
            return 0, None
        stray = pd.to_datetime(times[outside], utc=True)
        return count, (
            f"Events outside the stated window {start.isoformat()} to {end.isoformat()}: {count:,} (earliest "
            f"{_iso(stray.min())}, latest {_iso(stray.max())}). They are kept; filter them if they should not count.")
    # ``times`` is sorted, so the percentiles are just positions.
    p1, p99 = (float(times[int(round(q * (times.size - 1)))]) for q in (0.01, 0.99))
    margin = max(_FAR_OUTLIER_MARGIN * (p99 - p1), 3600e9)
    outside = (times < p1 - margin) | (times > p99 + margin)
    count = int(outside.sum())
    if not count:
        return 0, None
    stray = pd.to_datetime(times[outside], utc=True)
    core = pd.to_datetime(np.array([p1, p99], dtype=np.int64), utc=True).floor("s")
    return count, (
        f"Events far outside the main activity window ({_iso(core[0])} to {_iso(core[1])}, where 98% of events "
        f"fall): {count:,} (earliest {_iso(stray.min())}, latest {_iso(stray.max())}). They are kept; check the "
        "source's clock or filter them.")


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


def build_log(raw: RawRead, *, mapping: dict[str, str] | None = None, time_window: tuple | None = None,
              progress: Progress | None = None) -> BehaviorLog:
    """Map, convert, validate and sort a raw table into a :class:`BehaviorLog` (see module docstring)."""
    table = raw.table
    columns = table.column_names
    fixed = check_override(mapping, columns)
    sample = table.slice(0, PROFILE_ROWS).to_pandas()
    inferred, notes = infer_mapping_with_notes(sample, fixed)
    require_roles(inferred, columns)
    for role, column in inferred.items():
        kind = table.schema.field(column).type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind):
            raise InvalidDataError(
                f"Column '{column}' (mapped to the {role} role) holds {kind} values, not plain numbers or text. "
                f"Map the {role} role to a column of plain values (--map {role}=COLUMN) or flatten the data.")
    if progress is not None:
        progress(0.65, "Converting columns")

    dropped: Counter = Counter(raw.dropped)
    warnings = list(raw.warnings) + notes
    converted: dict[str, pa.ChunkedArray] = {}
    for role in ("user", "item", "category"):
        if role in inferred:
            converted[role] = _ids(table[inferred[role]])
    behavior_codes, behavior_names = _behavior_codes(table[inferred["behavior"]])
    timestamps, time_format = _timestamps(table[inferred["timestamp"]], inferred["timestamp"])

    missing = {role: _is_null(converted[role]) for role in ("user", "item")}
    missing["behavior"] = behavior_codes < 0
    missing["timestamp"] = _is_null(table[inferred["timestamp"]])
    keep = np.ones(table.num_rows, dtype=bool)
    for role, invalid in missing.items():           # each dropped row is counted under its first reason
        count = int(np.count_nonzero(invalid & keep))
        if count:
            dropped[_REASONS[role]] += count
            keep &= ~invalid
    unparsed = keep & _is_null(timestamps)
    n_unparsed, n_candidates = int(np.count_nonzero(unparsed)), int(np.count_nonzero(keep))
    if n_unparsed:
        source_times = _plain(table[inferred["timestamp"]]).cast(pa.string())
        examples = pc.unique(source_times.filter(pa.array(unparsed))).to_pylist()[:3]
        if n_unparsed > 0.5 * n_candidates:
            raise InvalidDataError(
                f"The timestamp column '{inferred['timestamp']}' does not parse: {n_unparsed:,} of {n_candidates:,} "
                f"values are neither epoch numbers nor date-times (e.g. {', '.join(map(repr, examples))}). Map the "
                "timestamp role to the right column (--map timestamp=COLUMN) or convert it to ISO 8601 text or "
                "epoch seconds.")
        dropped["timestamp does not parse"] += n_unparsed
        warnings.append(f"Timestamps that did not parse: {n_unparsed:,} (e.g. {', '.join(map(repr, examples))}). "
                        "Those rows were dropped.")
        keep &= ~unparsed

    if progress is not None:
        progress(0.75, "Validating")
    kept = pa.table({**{ROLE_COLUMNS[r]: converted[r] for r in ("user", "item", "category") if r in converted},
                     "timestamp": timestamps})
    n_kept = int(np.count_nonzero(keep))
    if n_kept < table.num_rows:
        kept = kept.filter(pa.array(keep))
        behavior_codes = behavior_codes[keep]
    if n_kept == 0:
        raise InvalidDataError(
            f"No usable rows are left in '{raw.name}' after dropping rows without {', '.join(dropped) or 'values'}. "
            "Check the column mapping.")

    # Dictionary-encode the ids in parallel (Arrow releases the GIL).
    id_columns = [c for c in kept.column_names if c != "timestamp"]
    with ThreadPoolExecutor(max_workers=min(3, os.cpu_count() or 1)) as pool:
        encoded = dict(zip(id_columns, pool.map(lambda c: pc.dictionary_encode(kept[c].combine_chunks()), id_columns)))
    raw_counts = np.bincount(behavior_codes, minlength=len(behavior_names))
    behavior_values = {behavior_names[i]: int(raw_counts[i]) for i in np.argsort(-raw_counts, kind="stable")
                       if raw_counts[i]}
    canonical = {raw_value: _normalise_behavior(raw_value) for raw_value in behavior_values}
    stages = set(canonical.values())
    if len(stages) < 2:
        only = next(iter(behavior_values))
        raise InvalidDataError(
            f"The behaviour column '{inferred['behavior']}' has a single value ({only!r}) in all {n_kept:,} "
            "usable rows, so there are no classes to learn. Map the behaviour role to the column that tells event "
            "types apart, or use a log with at least two behaviours.")
    unknown = sorted(v for v, c in canonical.items() if c == v and c not in FUNNEL)
    if unknown:
        warnings.append("Behaviour values outside the view/cart/fav/buy funnel were kept as they are: "
                        + ", ".join(unknown[:10]) + ("..." if len(unknown) > 10 else "") + ".")
    categories = [s for s in FUNNEL if s in stages] + sorted(stages - set(FUNNEL))
    targets = np.array([categories.index(canonical[v]) if v in canonical else -1 for v in behavior_names],
                       dtype=np.int8)
    behavior_codes = targets[behavior_codes]

    values = pc.cast(kept["timestamp"], pa.int64()).to_numpy()
    order = None if values.size < 2 or bool(np.all(values[1:] >= values[:-1])) else np.argsort(values, kind="stable")
    data: dict[str, object] = {}
    for name, dictionary_array in encoded.items():
        codes = pc.fill_null(dictionary_array.indices, -1).to_numpy()
        data[name] = pd.Categorical.from_codes(codes if order is None else codes[order],
                                               categories=dictionary_array.dictionary.to_pandas())
    data["behavior"] = pd.Categorical.from_codes(behavior_codes if order is None else behavior_codes[order],
                                                 categories=categories)
    ordered = values if order is None else values[order]
    data["timestamp"] = pd.DatetimeIndex(ordered.view("M8[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(data)

    if progress is not None:
        progress(0.85, "Checking duplicates and time range")
    row_hashes = pd.util.hash_pandas_object(frame, index=False)
    duplicates = count_duplicates(frame, row_hashes)
    if duplicates:
        warnings.append(f"Exact duplicate events (same user, item, behaviour and time as an earlier one): "
                        f"{duplicates:,}. They are kept.")
    outliers, outlier_warning = _outlier_warning(ordered, time_window)
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
    )
    if progress is not None:
        progress(0.95, "Fingerprinting")
    return BehaviorLog(frame=frame, mapping=mapping_used, report=report, source=raw.name,
                       fingerprint=frame_fingerprint(frame, row_hashes))


# --- feature tables ---------------------------------------------------------------------------------


def _label_column(label_column: str | None, columns: list[str]) -> str:
    if label_column is not None:
        if label_column in columns:
            return label_column
        folded = [c for c in columns if c.lower() == str(label_column).lower()]
        if len(folded) == 1:
            return folded[0]
        raise InvalidDataError(
            f"The label column {label_column!r} is not in the table. Columns: {', '.join(columns)}. Name one of "
            "them (files without a header row have columns c0, c1, ... by position).")
    for name in LABEL_NAMES:
        found = [c for c in columns if c.lower() == name]
        if found:
            return found[0]
    raise InvalidDataError(
        f"A feature table needs a label column, and none is named like one ({', '.join(LABEL_NAMES)}). "
        f"Columns: {', '.join(columns)}. Pass label_column=... (command line: --label COLUMN).")


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
        progress(0.65, "Typing columns")
    for name in columns:
        column = _plain(table[name])
        if name == label:
            continue
        if len(column) == column.null_count:
            unused.append(name)
            warnings.append(f"Column '{name}' is empty in every row and was left out.")
            continue
        if _is_text(column):
            numbers, junk, dangling = _numbers(column)
            if numbers is None:
                values[name] = pc.utf8_trim_whitespace(column)
                categorical.append(name)
                continue
            if junk:
                warnings.append(f"Column '{name}' is numeric but has {junk:,} cells that are not numbers; they "
                                "were read as missing.")
            if dangling is not None:
                bad_rows = pc.or_(bad_rows, dangling)
                dangling_columns.append(name)
            column = numbers
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
            column = column.cast(pa.float64())
            if name.lower().startswith(("unnamed", "index")) and _is_row_number(column):
                unused.append(name)
                warnings.append(f"Column '{name}' holds the row numbers and was left out of the features.")
                continue
            values[name] = column
            numeric.append(name)
        else:
            unused.append(name)
            warnings.append(f"Column '{name}' has type {column.type}, which is neither a number nor a category; "
                            "it was left out.")

    n_bad = pc.sum(bad_rows).as_py() or 0
    if n_bad:
        reason = "number with a dangling decimal point (e.g. '18.'), a sign of a misplaced separator"
        dropped[reason] += n_bad
        shown = table.filter(bad_rows).slice(0, 3).to_pylist()
        rows = "; ".join(",".join("" if v is None else str(v) for v in row.values()) for row in shown)
        warnings.append(f"Rows dropped for a number with a dangling decimal point in {', '.join(dangling_columns)}: "
                        f"{n_bad:,} ({rows}).")

    label_values = pc.utf8_trim_whitespace(_plain(table[label]).cast(pa.string()))
    missing_label = pc.is_null(label_values)
    n_missing = pc.sum(pc.and_(missing_label, pc.invert(bad_rows))).as_py() or 0
    if n_missing:
        dropped["missing label"] += n_missing
    keep = pc.invert(pc.or_(bad_rows, missing_label))
    kept_labels = label_values.filter(keep)
    if len(kept_labels) == 0:
        raise InvalidDataError(f"The label column '{label}' is empty in every row. Name the column that holds the class.")
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
            f"The label column '{label}' has a single value ({kept_labels[0].as_py()!r}) in every row, so there "
            "are no classes to learn. Name the column that holds the class.")

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
        warnings.append(f"Exact duplicate rows: {duplicates:,}. They are kept.")
    report = ValidationReport(
        rows_read=raw.rows_read, rows_kept=len(frame), dropped=dict(dropped), duplicates=duplicates,
        nulls={c: int(table[c].null_count) for c in columns}, warnings=warnings, unused_columns=unused,
        read_as=raw.read_as,
    )
    if progress is not None:
        progress(0.95, "Fingerprinting")
    return FeatureTable(frame=frame, label_column=label, numeric=numeric, categorical=categorical, report=report,
                        source=raw.name, fingerprint=frame_fingerprint(frame))

