"""The importance contract: one base class, one public method, one result.

An importance method gives every training row of a finished run a value. **Higher means more
valuable** (the row helped the model); the lowest values are the rows that hurt or that the model
could not learn (likely mislabelled, or off the real data). Methods whose natural score runs the
other way (loss, EL2N, GraNd, forgetting events) return its negative, so every method ranks alike::

    class MeanLoss(ImportanceMethod):
        params = {"epochs": Optional(Int(1, None))}

        def __init__(self, epochs=None):
            self.epochs = epochs

        def _compute(self, run, seed, progress):
            return -run.matrix("loss")[:, : self.epochs].mean(axis=1)

:meth:`ImportanceMethod.compute` validates the parameters, calls ``_compute`` and wraps the values
with each row's class, origin (real or synthetic) and dataset row in an :class:`ImportanceResult`.
:func:`run_importance` caches results among the run's artifacts.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.importance.run import SOURCE_ROW, TrainedRun
from recexp.params import Parametrized

#: ``progress(fraction_done, message)``, called by long methods.
Progress = Callable[[float, str], None]

#: Columns of :attr:`ImportanceResult.values`.
VALUE_COLUMNS = ("row", "value", "label", "class", "is_synthetic", SOURCE_ROW)


@dataclass(frozen=True)
class HarmfulRows:
    """Which rows a method's values mark as hurting the model (or as not learned), in its own sign convention.

    Attributes
    ----------
    below : float or None
        Rows valued below this count; ``None`` where the method's scale has no meaningful threshold
        (e.g. a gradient norm), so its values are read by rank only.
    label : str
        What the share of those rows is, in words (the heading of the summary's ``share_harmful``).
    meaning : str
        The sign convention and the threshold in a sentence, for the page and the CLI.
    """

    below: float | None
    label: str
    meaning: str


@dataclass
class ImportanceResult:
    """Values of one method for every training row of one run.

    Attributes
    ----------
    run_id, method : str
    params : dict
        The method's parameters (as stored in the cache key).
    seed : int
    values : pandas.DataFrame
        One row per training row: ``row`` (position in the run's training frame), ``value`` (higher =
        more valuable), ``label`` (code), ``class`` (name), ``is_synthetic`` and ``source_row``
        (dataset position; shared real rows of two runs on the same split have the same one).
    seconds : float
        Time the method took (0 when read back from the cache is not re-timed: the stored figure).
    notes : list of str
        Sentences for the analyst (approximations made, rows skipped, ...).
    harmful : HarmfulRows, optional
        The method's rule for the rows that hurt (``None`` for a score of unknown convention).
    """

    run_id: str
    method: str
    params: dict[str, Any]
    seed: int
    values: pd.DataFrame
    seconds: float
    notes: list[str] = field(default_factory=list)
    harmful: HarmfulRows | None = None

    @classmethod
    def for_run(cls, run: TrainedRun, values: np.ndarray, method: str, params: dict[str, Any] | None = None,
                seed: int = 0, seconds: float = 0.0, notes: list[str] | None = None,
                harmful: HarmfulRows | None = None) -> ImportanceResult:
        """Wrap one value per training row of ``run`` (training order) with each row's class, origin and source row.

        :meth:`ImportanceMethod.compute` builds its result with it; it also turns any other per-row score
        (e.g. cleanlab's label quality) into a result the stability functions and charts accept.
        """
        labels = run.labels
        frame = pd.DataFrame({"row": np.arange(len(values)), "value": np.asarray(values, dtype=np.float64),
                              "label": labels, "class": np.asarray(run.train.schema.classes, dtype=object)[labels],
                              "is_synthetic": run.is_synthetic, SOURCE_ROW: run.source_rows})
        return cls(run_id=run.run_id, method=method, params=dict(params or {}), seed=int(seed), values=frame,
                   seconds=seconds, notes=list(notes or []), harmful=harmful)

    def summary(self) -> pd.DataFrame:
        """Per group (each class, real and synthetic rows, all rows): rows, mean, median and ``share_harmful``.

        ``share_harmful`` is the share of rows valued below the method's threshold (:attr:`harmful`, whose
        ``label`` says what they are); NaN where the method has none.
        """
        frame = self.values
        below = self.harmful.below if self.harmful else None
        groups = [("class", name, part) for name, part in frame.groupby("class", sort=False, observed=True)]
        groups += [("origin", "synthetic" if flag else "real", part)
                   for flag, part in frame.groupby("is_synthetic", sort=True)]
        groups.append(("all", "all rows", frame))
        return pd.DataFrame([{"group": kind, "name": name, "rows": len(part), "mean": part["value"].mean(),
                              "median": part["value"].median(),
                              "share_harmful": math.nan if below is None else float((part["value"] < below).mean())}
                             for kind, name, part in groups])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (CLI output): method, parameters, seconds, notes, the per-group summary (a share
        the method has no threshold for is ``None``) and the rule its ``share_harmful`` follows."""
        summary = self.summary()
        return {"run_id": self.run_id, "method": self.method, "params": self.params, "seed": self.seed,
                "rows": len(self.values), "seconds": self.seconds, "notes": list(self.notes),
                "summary": summary.astype(object).where(summary.notna(), None).to_dict(orient="records"),
                "harmful": asdict(self.harmful) if self.harmful else None}


class ImportanceMethod(Parametrized):
    """Base of every importance method. Subclasses declare ``params``, write ``__init__`` and ``_compute``.

    Class attributes: ``title`` and ``summary`` describe the method for the dashboard and the CLI;
    ``needs`` names what it reads from the run: ``"stats"`` (per-epoch loss and correctness only),
    ``"states"`` (model states kept during training) or ``"features"`` (the training and validation
    features); ``harmful`` says which values mark a row that hurts, in the method's sign convention.
    """

    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    needs: ClassVar[str] = "stats"
    harmful: ClassVar[HarmfulRows | None] = None
    #: Kinds of task (:attr:`recexp.tasks.Task.kind`) where the method is well defined. For the next-item task
    #: (ranking) only the loss dynamics of each training row, i.e. each history prefix, are; gradient,
    #: representation and neighbour methods assume a small class head.
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)

    @property
    def name(self) -> str:
        """The registry name of this method's class."""
        from recexp.importance import METHODS

        return next(key for key, cls in METHODS.items() if cls is type(self))

    def compute(self, run: TrainedRun, seed: int = 0, progress: Progress | None = None) -> ImportanceResult:
        """Value every training row of ``run``.

        Parameters
        ----------
        run : TrainedRun
        seed : int
            Seeds every random choice (bootstrap samples, random projections...).
        progress : callable, optional
            ``progress(fraction_done, message)`` while the method works.

        Returns
        -------
        ImportanceResult

        Raises
        ------
        InvalidParameterError
            A parameter is outside its spec, or cannot work on this run (e.g. an epoch it did not keep).
        """
        start = time.perf_counter()
        self.validate_params()
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidParameterError(_("The seed must be a non-negative integer, but got {seed!r}. Pass e.g. "
                                          "seed=0.").format(seed=seed))
        self.notes_: list[str] = []
        values = np.asarray(self._compute(run, int(seed), progress or (lambda fraction, message: None)),
                            dtype=np.float64)
        assert values.shape == (len(run.train),), (values.shape, len(run.train))
        if not np.isfinite(values).all():
            raise InvalidDataError(
                _("{title} gave {count:,} rows no finite value on run {run_id}. Try another method or other "
                  "parameters.").format(
                  title=self.title, count=int((~np.isfinite(values)).sum()), run_id=run.run_id))
        return ImportanceResult.for_run(run, values, self.name, self.get_params(), seed,
                                        time.perf_counter() - start, self.notes_, self.harmful)

    def note(self, sentence: str) -> None:
        """Record a sentence for the analyst on the result."""
        self.notes_.append(sentence)

    def _compute(self, run: TrainedRun, seed: int, progress: Progress) -> np.ndarray:
        """One value per training row of ``run`` (higher = more valuable)."""
        raise NotImplementedError


def cache_key(method: ImportanceMethod, seed: int) -> str:
    """File stem under which ``method``'s values for a run are cached: name, short hash of params and seed."""
    blob = json.dumps(method.get_params(), sort_keys=True, default=str)
    return f"{method.name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}-s{seed}"
