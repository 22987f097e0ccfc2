"""What ``python -m recexp inspect`` prints: mapping, validation report and class balance of a source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recexp.data import load
from recexp.data.log import BehaviorLog, FeatureTable
from recexp.data.samples import SAMPLES


def _sample_settings(source: str) -> tuple[str, dict[str, Any]]:
    """A bundled sample's path and reader settings when ``source`` names one (by name or by path)."""
    if source in SAMPLES and not Path(source).exists():
        sample = SAMPLES[source]
        return str(sample.path), {"kind": sample.kind, **sample.loader}
    resolved = Path(source).resolve()
    for sample in SAMPLES.values():
        if sample.path.resolve() == resolved:
            return source, {"kind": sample.kind, **sample.loader}
    return source, {}


def class_balance_summary(loaded: BehaviorLog | FeatureTable, task: str | None = None) -> dict[str, Any]:
    """Class counts and imbalance ratio (largest class / smallest class) of the learning task's labels."""
    task = task or ("behavior" if loaded.kind == "log" else "table")
    if loaded.kind == "log":
        counts = loaded.frame["behavior"].value_counts(sort=False)
        class_counts = {str(k): int(v) for k, v in counts.items() if v}
    else:
        counts = loaded.frame[loaded.label_column].value_counts()
        class_counts = {str(k): int(v) for k, v in counts.sort_index().items()}
    ratio = max(class_counts.values()) / min(class_counts.values())
    return {"task": task, "class_counts": class_counts, "imbalance_ratio": ratio}


def inspect_source(
    source: str,
    *,
    kind: str | None = None,
    mapping: dict[str, str] | None = None,
    label_column: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    """Load ``source`` and summarise it as one JSON-able dict.

    ``source`` may also be the name of a bundled sample (``taobao``, ``criteo`` ...); a bundled file
    given by path is read with its registered settings (e.g. Taobao's stated time window). Explicit
    arguments win over those settings.

    Returns
    -------
    dict
        ``source``, ``kind``, ``rows``, ``fingerprint``, ``mapping`` (logs) or ``label_column``,
        ``numeric``, ``categorical`` (tables), ``validation`` (the report) and ``imbalance``
        (``task``, ``class_counts``, ``imbalance_ratio``).
    """
    path, settings = _sample_settings(source)
    explicit = {"kind": kind, "mapping": mapping, "label_column": label_column, "header": header,
                "encoding": encoding}
    settings.update({k: v for k, v in explicit.items() if v is not None})
    loaded = load(path, **settings)
    result: dict[str, Any] = {"source": str(source), "kind": loaded.kind, "rows": loaded.report.rows_kept,
                              "fingerprint": loaded.fingerprint}
    if loaded.kind == "log":
        result["mapping"] = dict(loaded.mapping)
    else:
        result.update(label_column=loaded.label_column, numeric=list(loaded.numeric),
                      categorical=list(loaded.categorical))
    result["validation"] = loaded.report.to_dict()
    result["imbalance"] = class_balance_summary(loaded, task)
    return result
