"""Sample importance: a value for every training row of a finished run, and what to do with it.

>>> from recexp.importance import METHODS, run_importance
>>> sorted(METHODS)                                            # doctest: +SKIP
>>> result = run_importance(store, run_id, "mean_loss")        # doctest: +SKIP
>>> result.summary()                                           # doctest: +SKIP

Adding a method is one :class:`ImportanceMethod` subclass (``params``, ``__init__``, ``_compute``) and
one entry in :data:`METHODS`; the dashboard and the CLI pick it up from here.

The methods live by what they read: :mod:`~recexp.importance.dynamics` (per-epoch loss and
correctness), :mod:`~recexp.importance.gradients` (EL2N, GraNd, TracIn from kept model states),
:mod:`~recexp.importance.shapley` (KNN-Shapley) and :mod:`~recexp.importance.oob` (Data-OOB). Beside
them: :mod:`~recexp.importance.attention` (where a DIN model looks in the behaviour sequence),
:mod:`~recexp.importance.stability` (agreement across methods and runs, cleanlab cross-check) and
:mod:`~recexp.importance.evaluation` (planted label noise and how well values find it).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from recexp.errors import InvalidParameterError
from recexp.i18n import _, dumps_text, loads_text
from recexp.importance.base import HarmfulRows, ImportanceMethod, ImportanceResult, Progress, cache_key
from recexp.importance.dynamics import ForgettingEvents, MeanLoss
from recexp.importance.gradients import EL2N, GraNd, TracIn
from recexp.importance.oob import DataOOB
from recexp.importance.run import SOURCE_ROW, TrainedRun
from recexp.importance.shapley import KNNShapley
from recexp.runs import RunStore
from recexp.tasks import applies_to

#: Stable name -> method class. Names are stored with cached values: never rename one.
METHODS: dict[str, type[ImportanceMethod]] = {
    "mean_loss": MeanLoss,
    "forgetting": ForgettingEvents,
    "el2n": EL2N,
    "grand": GraNd,
    "tracin": TracIn,
    "knn_shapley": KNNShapley,
    "data_oob": DataOOB,
}

#: Artifact sub-folder of a run where computed values are cached.
CACHE_FOLDER = "importance"


def methods_for(task: str) -> dict[str, type[ImportanceMethod]]:
    """The methods well defined for ``task`` (:func:`recexp.tasks.applies_to`): all for class tasks, the loss
    dynamics (per-sequence loss and forgetting over epochs) for the next-item task."""
    return {name: cls for name, cls in METHODS.items() if applies_to(cls, task)}


def get_method(name: str, **params: Any) -> ImportanceMethod:
    """An instance of the method registered as ``name`` (parameters are validated on use)."""
    if name not in METHODS:
        raise InvalidParameterError(_("Unknown importance method "
                                      "{name!r}; choose one of {methods}.").format(name=name, methods=', '.join(METHODS)))
    return METHODS[name](**params)


def cached_values_path(store: RunStore, run_id: str, method: ImportanceMethod, seed: int) -> Path:
    """The Parquet file among run ``run_id``'s artifacts where :func:`run_importance` keeps ``method``'s values."""
    return store.artifact_dir(run_id) / CACHE_FOLDER / f"{cache_key(method, seed)}.parquet"


def run_importance(store: RunStore, run_id: str, method: str | ImportanceMethod, seed: int = 0,
                   progress: Progress | None = None, run: TrainedRun | None = None) -> ImportanceResult:
    """Values of ``method`` for run ``run_id``, computed once and then read from the run's artifacts.

    Parameters
    ----------
    store : RunStore
    run_id : str
    method : str or ImportanceMethod
        A registry name (default parameters) or a configured instance.
    seed : int
    progress : callable, optional
        ``progress(fraction_done, message)`` while computing.
    run : TrainedRun, optional
        The opened run, when the caller has it (saves reloading the data).
    """
    method = get_method(method) if isinstance(method, str) else method
    method.validate_params()
    task = run.spec.task if run is not None else str(store.get_run(run_id).spec.get("task", "behavior"))
    if not applies_to(type(method), task):
        raise InvalidParameterError(_(
            "{method} is not defined for the '{task}' task (it assumes a small class head); methods for it: "
            "{methods}.").format(method=method.title, task=task, methods=", ".join(methods_for(task))))
    values_path = cached_values_path(store, run_id, method, seed)
    meta_path = values_path.with_suffix(".json")
    if values_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["notes"] = [loads_text(note) for note in meta.get("notes", [])]        # in the reader's language
        return ImportanceResult(run_id=run_id, values=pd.read_parquet(values_path), harmful=method.harmful, **meta)
    result = method.compute(run or TrainedRun.load(store, run_id), seed=seed, progress=progress)
    meta = {"method": result.method, "params": result.params, "seed": result.seed, "seconds": result.seconds,
            "notes": [dumps_text(note) for note in result.notes]}
    _write_atomically(values_path, lambda tmp: result.values.to_parquet(tmp, index=False))
    _write_atomically(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, default=str)))
    return result


def _write_atomically(path: Path, write) -> None:
    """``write(tmp)`` beside ``path``, then rename: a reader never sees a half-written cache file.

    Where the cache cannot be written (a full or read-only disk) it is skipped, leaving no partial
    file: the values are returned all the same and computed again next time.
    """
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):                  # a read-only disk refuses even that
            tmp.unlink(missing_ok=True)

__all__ = ["METHODS", "methods_for", "CACHE_FOLDER", "HarmfulRows", "ImportanceMethod", "ImportanceResult", "TrainedRun", "SOURCE_ROW",
           "get_method", "run_importance", "cached_values_path"]
