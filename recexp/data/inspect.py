"""What ``python -m recexp inspect`` prints: mapping, validation report and class balance of a source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recexp.data import load
from recexp.data.log import BehaviorLog, FeatureTable
from recexp.data.samples import SAMPLES
from recexp.imbalance import class_balance
from recexp.tasks import get_task


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


def class_balance_summary(loaded: BehaviorLog | FeatureTable, task: str | None = None,
                          task_params: dict[str, str] | None = None) -> dict[str, Any]:
    """Class balance of the supervised dataset ``task`` builds from ``loaded``.

    Uses :meth:`recexp.tasks.Task.class_counts` (default task: ``behavior`` for logs, ``table`` for tables;
    ``task_params`` are ``KEY=VALUE`` strings as on the command line) and
    :func:`recexp.imbalance.class_balance`; returns the latter's dict plus ``task`` and ``task_params``.
    """
    task = task or ("behavior" if loaded.kind == "log" else "table")
    builder = get_task(task).from_strings(dict(task_params or {}))
    return {"task": task, "task_params": builder.get_params(), **class_balance(builder.class_counts(loaded))}


def inspect_source(
    source: str,
    *,
    kind: str | None = None,
    mapping: dict[str, str] | None = None,
    label_column: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
    task: str | None = None,
    task_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``source`` and summarise it as one JSON-able dict.

    ``source`` may also be the name of a bundled sample (``taobao``, ``criteo`` ...); a bundled file
    given by path is read with its registered settings (e.g. Taobao's stated time window). Explicit
    arguments win over those settings.

    Returns
    -------
    dict
        ``source``, ``kind``, ``rows``, ``fingerprint``, ``mapping``, ``confidence`` (role -> 0..1) and
        ``roles`` (role -> column, confidence, evidence) for logs, or ``label_column``, ``numeric``,
        ``categorical`` for tables; ``validation`` (the report), ``warnings`` (the report's sentences,
        guessed roles among them) and ``imbalance``
        (``task`` plus :func:`recexp.imbalance.class_balance` of the task's dataset: ``class_counts``,
        ``imbalance_ratio``, ``shares``, ``normalised_entropy`` ...).
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
        result["confidence"] = {role: choice["confidence"] for role, choice in loaded.report.roles.items()}
        result["roles"] = {role: dict(choice) for role, choice in loaded.report.roles.items()}
    else:
        result.update(label_column=loaded.label_column, numeric=list(loaded.numeric),
                      categorical=list(loaded.categorical))
    result["validation"] = loaded.report.to_dict()
    result["warnings"] = list(loaded.report.warnings)
    result["imbalance"] = class_balance_summary(loaded, task, task_params)
    return result
