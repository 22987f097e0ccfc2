"""The strategy contract: one base class, one public method, one result.

A strategy turns a training :class:`~recexp.dataset.Dataset` into a new one; it never sees the
validation or test rows. Every concrete strategy is a small class with a declarative parameter spec
(:mod:`recexp.params`) and a private hook::

    class RandomOverSampler(Strategy):
        params = {"sampling_strategy": OVER_SAMPLING_STRATEGY}

        def __init__(self, sampling_strategy="auto"):
            self.sampling_strategy = sampling_strategy

        def _apply(self, train, seed):
            ...                                   # returns a Dataset with the two flag columns

:meth:`Strategy.apply` validates the parameters (spec, then feasibility on the data), adds the flag
columns ``is_synthetic`` (False) and ``sample_weight`` (1.0) when the input lacks them, calls
``_apply`` and measures what changed into a :class:`StrategyReport`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from pandas.api.internals import create_dataframe_from_blocks

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import N_, _, format_decimal, format_integer
from recexp.memory import MEMORY_LIMIT_ENV, memory_limit
from recexp.params import Parametrized

if TYPE_CHECKING:                      # annotation only: the base stays free of the torch-backed generators
    from recexp.synthesis.report import SynthesisReport

#: ``progress(fraction_done, message)``: how far a long strategy (a generator's epochs) has got.
Progress = Callable[[float, str], None]

#: The most rows a strategy may add in one call (a guard against a mistyped factor or target count).
MAX_NEW_ROWS = 50_000_000

#: The training rows at which ``Strategy.seconds_per_row`` is measured (the Strategy Lab's default preview size).
REFERENCE_ROWS = 10_000

#: Strategy families, in the order the dashboard lists them.
FAMILIES = {
    "baseline": N_("No change (the baseline every comparison needs)"),
    "balancing": N_("Balancing with imbalanced-learn samplers"),
    "weighting": N_("Re-weighting rows or the loss"),
    "expansion": N_("Sample expansion (augmentation of real rows)"),
    "synthesis": N_("Generative synthesis (GAN, VAE, Gaussian copula)"),
    "importance": N_("Importance-based pruning or weighting (by a finished run's sample values)"),
}
#: A family -> its short name in a strategy's label (:func:`recexp.strategies.strategy_label`; translated there).
FAMILY_NAMES = {"baseline": N_("baseline"), "balancing": N_("balancing"), "weighting": N_("weighting"),
                "expansion": N_("expansion"), "synthesis": N_("synthesis"), "importance": N_("importance")}


@dataclass
class StrategyReport:
    """What a strategy did to the training rows, per class.

    ``added`` counts rows flagged ``is_synthetic`` in the output that were not in the input;
    ``removed`` counts real (non-synthetic) input rows absent from the output. ``target`` is the
    class mix the strategy aimed for (``None`` for classes it does not steer, or for strategies without
    a target such as cleaning samplers and weighting).
    """

    strategy: str
    params: dict[str, Any]
    seed: int
    before: dict[str, int]                      # rows per class in the input
    after: dict[str, int]                       # rows per class in the output
    added: dict[str, int]                       # new (synthetic) rows per class
    removed: dict[str, int]                     # real rows dropped per class
    seconds: float                              # wall time of apply(), validation included
    target: dict[str, int] | None = None        # rows per class the strategy aimed for, where it has one
    class_weights: dict[str, float] | None = None  # mean sample_weight per class after, when not all 1.0
    notes: list[str] = field(default_factory=list)  # sentences for the analyst (imputation, fallbacks, ...)

    @property
    def rows_before(self) -> int:
        return sum(self.before.values())

    @property
    def rows_after(self) -> int:
        return sum(self.after.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (CLI output, run store)."""
        return {
            "strategy": self.strategy, "params": _jsonable(self.params), "seed": self.seed,
            "rows_before": self.rows_before, "rows_after": self.rows_after,
            "before": dict(self.before), "after": dict(self.after), "added": dict(self.added),
            "removed": dict(self.removed), "target": dict(self.target) if self.target is not None else None,
            "class_weights": dict(self.class_weights) if self.class_weights is not None else None,
            "seconds": self.seconds, "notes": list(self.notes),
        }

    def table(self) -> pd.DataFrame:
        """One row per class: before, after, added, removed and target."""
        frame = pd.DataFrame({"before": self.before, "after": self.after, "added": self.added,
                              "removed": self.removed})
        if self.target is not None:
            frame["target"] = pd.Series(self.target, dtype="Int64")
        if self.class_weights is not None:
            frame["weight"] = pd.Series(self.class_weights)
        frame.index.name = "class"
        return frame


@dataclass
class StrategyResult:
    """The new training set, what changed, and what the trainer must know.

    Attributes
    ----------
    dataset : Dataset
        The new training rows with ``is_synthetic`` (bool) and ``sample_weight`` (float) columns.
    report : StrategyReport
    source_rows : numpy.ndarray
        For every output row, a position in the input training frame: the row itself for real rows;
        for new rows the input row whose non-generated columns (sequences, meta columns, ...) it copies
        (the row it was made from, or the nearest real row of its class; see each family's rules).
    loss : dict, optional
        The loss the trainer should use instead of cross-entropy, as ``{"name": "focal", "gamma": 2.0}``.
        ``None`` means "keep the trainer's setting". :meth:`train_overrides` maps it onto
        :class:`recexp.models.trainer.TrainConfig` fields.
    synthesis : SynthesisReport, optional
        Generative strategies only: the generator's training history, the kept epoch, the quality
        report of its rows against real training rows and the imputation comparison (plain data,
        no torch modules; see :mod:`recexp.synthesis.report`).
    """

    dataset: Dataset
    report: StrategyReport
    source_rows: np.ndarray
    loss: dict[str, Any] | None = None
    synthesis: SynthesisReport | None = None

    def train_overrides(self) -> dict[str, Any]:
        """``TrainConfig`` fields implied by the strategy, e.g. ``{"loss": "focal", "focal_gamma": 2.0}``."""
        return _overrides(self.loss)


def _overrides(loss: dict[str, Any] | None) -> dict[str, Any]:
    """The ``TrainConfig`` fields of a strategy's loss (:attr:`StrategyResult.loss`)."""
    if loss is None:
        return {}
    if loss["name"] == "focal":
        return {"loss": "focal", "focal_gamma": float(loss["gamma"])}
    if "negatives" in loss:                              # a sampled softmax (next-item task)
        return {"loss": loss["name"], "negatives": int(loss["negatives"])}
    return {"loss": loss["name"]}


class Strategy(Parametrized):
    """Base of every strategy. Subclasses declare ``params``, write ``__init__`` and ``_apply``.

    Class attributes ``title``, ``family`` (a key of :data:`FAMILIES`) and ``summary`` describe the
    strategy for the dashboard and ``python -m recexp strategies``. ``exact_target`` says whether the
    output class counts equal the requested target mix exactly (tests rely on it). ``seconds_per_row``
    is what :meth:`estimated_seconds` charges per training row.

    During :meth:`apply`, ``class_counts_`` holds the input's rows per class code (counted once, for the
    feasibility checks, the hooks and the report).
    """

    title: ClassVar[str] = ""
    family: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    exact_target: ClassVar[bool] = False
    #: CPU seconds per training row that :meth:`estimated_seconds` charges at :data:`REFERENCE_ROWS` rows,
    #: measured with one torch thread on the bundled Taobao sample (``benchmarks/preview_seconds.py``);
    #: ``None`` for strategies that take well under a second at the Strategy Lab's preview sizes.
    seconds_per_row: ClassVar[float | None] = None
    #: How the cost grows with the rows: as ``rows ** cost_exponent`` (1: linearly; neighbour searches
    #: over all rows grow faster).
    cost_exponent: ClassVar[float] = 1.0
    #: True for strategies that hold every training row in memory at once as a dense matrix (imbalanced-learn's
    #: samplers, generators): :meth:`check_feasible` refuses a training split past the memory setting.
    needs_all_rows: ClassVar[bool] = False
    #: Kinds of task (:attr:`recexp.tasks.Task.kind`) the strategy makes sense for; the pages and the CLI offer
    #: it only there (:func:`recexp.tasks.applies_to`). Class-mix strategies serve classification only.
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)

    def apply(self, train: Dataset, seed: int = 0, progress: Progress | None = None) -> StrategyResult:
        """Return the new training set and a report; the input is not modified.

        Parameters
        ----------
        train : Dataset
            The training split only (never pass validation or test rows).
        seed : int
            Seeds every random choice; the same seed gives the same output. The global RNGs of
            numpy, random and torch are not touched.
        progress : callable, optional
            ``progress(fraction_done, message)``, called by strategies with long work (a generator
            after each training epoch).

        Returns
        -------
        StrategyResult

        Raises
        ------
        InvalidParameterError
            A parameter is outside its spec, or infeasible for this training set (the message says
            which class and what to change).
        InvalidDataError
            The training set is empty or its labels are not valid codes.

        Examples
        --------
        >>> from recexp.strategies import STRATEGIES
        >>> result = STRATEGIES["smote"](k_neighbors=3).apply(train, seed=0)   # doctest: +SKIP
        >>> result.report.after                                                # doctest: +SKIP
        """
        start = time.perf_counter()
        self.validate_params()
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidParameterError(_("The seed must be a non-negative integer, but got {seed!r}. Pass e.g. "
                                          "seed=0.").format(seed=seed))
        self.progress_: Progress = progress or (lambda fraction, message: None)
        prepared = self.check_feasible(train)
        try:
            output, source_rows = self._apply(prepared, int(seed))
        except MemoryError:
            raise InvalidParameterError(
                _("{title} ran out of memory on {n_prepared:,} training rows with these parameters. Ask for "
                  "fewer new rows (a smaller target), preview on fewer rows, or choose a lighter strategy "
                  "(RandomOverSampler, SMOTE).").format(
                  title=self.title, n_prepared=len(prepared))) from None
        assert list(output.frame.columns[: len(prepared.frame.columns)]) == list(prepared.frame.columns)
        assert len(source_rows) == len(output)
        seconds = time.perf_counter() - start
        report = _report(self, prepared, output, source_rows, int(seed), seconds)
        return StrategyResult(dataset=output, report=report, source_rows=source_rows, loss=self._loss())

    def check_feasible(self, train: Dataset) -> Dataset:
        """Check, without applying, that these parameters can run on ``train``; return the prepared rows.

        Raises what :meth:`apply` raises before it starts working (``InvalidParameterError`` naming the
        class and what to change, e.g. more neighbours than a class has rows), so a search can refuse an
        infeasible range before its first trial.
        """
        self.validate_params()
        if self.needs_all_rows and isinstance(train, Dataset):
            _check_fits_in_memory(self.title, train)
        prepared = prepare_train(train)
        self.class_counts_ = np.bincount(prepared.y, minlength=prepared.schema.n_classes)
        self.notes_: list[str] = []
        self.target_: dict[str, int] | None = None
        self._check_feasible(prepared)
        return prepared

    def keeps_rows(self) -> bool:
        """Whether :meth:`apply` returns the training rows as they are, at most multiplying their weights by a
        factor per class (:meth:`class_multipliers`) and asking for a loss (:meth:`loss_overrides`): such a
        strategy also serves a training split too large for memory, trained from disk without being applied."""
        return False

    def class_multipliers(self, counts: np.ndarray) -> np.ndarray | None:
        """The factor :meth:`apply` multiplies each class's ``sample_weight`` by, given the training rows per class
        (``None``: weights unchanged); meaningful where :meth:`keeps_rows` is true."""
        return None

    def loss_overrides(self) -> dict[str, Any]:
        """The ``TrainConfig`` fields this strategy asks for (its loss), as :meth:`StrategyResult.train_overrides`."""
        self.validate_params()
        return _overrides(self._loss())

    def estimated_seconds(self, n_rows: int) -> float | None:
        """About how many seconds :meth:`apply` takes on ``n_rows`` training rows on an idle CPU core.

        A rough guide for deciding whether to wait (the Strategy Lab previews a strategy live only when
        it is quick): the measured cost per row (and epoch, for neural generators) of the bundled Taobao
        sample, times ``n_rows``. Wider data, a busy machine or a skewed class mix take longer; a GPU
        trains generators faster.

        Parameters
        ----------
        n_rows : int
            Training rows the strategy will see.

        Returns
        -------
        float or None
            Seconds, or ``None`` for a strategy that takes well under a second on a few tens of thousands
            of rows.

        Raises
        ------
        InvalidParameterError
            A parameter is outside its spec.

        Examples
        --------
        >>> from recexp.strategies import get_strategy
        >>> get_strategy("smote").estimated_seconds(10_000) is None
        True
        >>> get_strategy("vae", epochs=20).estimated_seconds(10_000) > get_strategy("vae").estimated_seconds(10_000)
        True
        """
        self.validate_params()
        return self._estimated_seconds(int(n_rows))

    # --- hooks ------------------------------------------------------------------------------------

    def _estimated_seconds(self, n_rows: int) -> float | None:
        """Seconds :meth:`apply` takes on ``n_rows`` rows (parameters already valid)."""
        if self.seconds_per_row is None:
            return None
        return self.seconds_per_row * REFERENCE_ROWS * (n_rows / REFERENCE_ROWS) ** self.cost_exponent

    def _check_feasible(self, train: Dataset) -> None:
        """Raise :class:`InvalidParameterError` when the parameters cannot work on ``train``."""

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        """Return ``(new training set, source_rows)``; ``train`` already has both flag columns."""
        raise NotImplementedError

    def _loss(self) -> dict[str, Any] | None:
        """The loss the trainer should use (``None``: unchanged)."""
        return None

    # --- description ------------------------------------------------------------------------------

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON-able description: title, family, summary, the task kinds it serves and the parameter spec."""
        return {"title": cls.title, "family": cls.family, "summary": cls.summary,
                "exact_target": cls.exact_target, "task_kinds": list(cls.task_kinds), "params": cls.describe_params()}

    def note(self, sentence: str) -> None:
        """Record a sentence for the report (imputation done, fallback taken, target missed...)."""
        self.notes_.append(sentence)


def matrix_bytes(train: Dataset) -> int:
    """Bytes of ``train``'s features as a dense float64 matrix, twice (the sampler's input and its output):
    what a strategy that needs every row at once holds at least."""
    return 2 * 8 * len(train) * max(1, len(train.schema.feature_columns))


def _check_fits_in_memory(title: str, train: Dataset) -> None:
    """Refuse, in a sentence naming the sampling options, a training split too large for a whole-data strategy."""
    needed, budget = matrix_bytes(train), memory_limit()
    if needed > budget:
        raise InvalidParameterError(_(
            "{title} needs every training row in memory at once (about {needed} GB for these {rows} rows), more "
            "than the memory setting allows ({budget} GB, {variable}). Sample users or down-sample negatives when "
            "building the dataset, or choose a strategy that works without the whole split in memory (none, class "
            "weights, focal loss).").format(title=title, needed=format_decimal(needed / 1e9, 1),
                                            rows=format_integer(len(train)),
                                            budget=format_decimal(budget / 1e9, 1), variable=MEMORY_LIMIT_ENV))


def prepare_train(train: Dataset) -> Dataset:
    """Check labels and add ``is_synthetic`` (False) and ``sample_weight`` (1.0) where missing."""
    if not isinstance(train, Dataset):
        raise InvalidDataError(_("A strategy needs a recexp Dataset, but got "
                                 "{name}.").format(name=type(train).__name__))
    if len(train) == 0:
        raise InvalidDataError(_("The training split is empty, so there is nothing to resample. Check the split "
                                 "settings on the Data page."))
    frame = train.frame
    missing = [c for c in (*train.schema.feature_columns, LABEL) if c not in frame.columns]
    if missing:
        raise InvalidDataError(_("The training frame lacks the column(s) {missing} that its schema names. "
                                 "Rebuild the dataset with "
                                 "recexp.tasks.build_dataset.").format(missing=', '.join(missing)))
    y = frame[LABEL].to_numpy()
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= train.schema.n_classes:
        raise InvalidDataError(_("Labels must be integer codes 0..{n_classes} ({classes}); rebuild the dataset "
                                 "with recexp.tasks.").format(
                                 n_classes=train.schema.n_classes - 1, classes=', '.join(train.schema.classes)))
    extra = {}
    if IS_SYNTHETIC not in frame.columns:
        extra[IS_SYNTHETIC] = np.zeros(len(frame), dtype=bool)
    if SAMPLE_WEIGHT not in frame.columns:
        extra[SAMPLE_WEIGHT] = np.ones(len(frame), dtype=np.float64)
    if not extra:
        return replace(train, frame=frame.reset_index(drop=True))
    return replace(train, frame=frame.reset_index(drop=True).assign(**extra))


def check_new_rows(owner: str, n_new: int, param: str) -> None:
    """Refuse to add more than :data:`MAX_NEW_ROWS` rows, with a sentence naming the parameter."""
    if n_new > MAX_NEW_ROWS:
        raise InvalidParameterError(
            _("{owner}: these settings would add {n_new:,} rows, more than the {max_new_rows:,} a strategy may "
              "add at once. Lower '{param}'.").format(
              owner=owner, n_new=n_new, max_new_rows=MAX_NEW_ROWS, param=param))


def counts(y: np.ndarray, classes: tuple[str, ...]) -> dict[str, int]:
    """Rows per class name (every class listed)."""
    return _by_class(np.bincount(y, minlength=len(classes)), classes)


def _by_class(values: np.ndarray, classes: tuple[str, ...]) -> dict[str, int]:
    return {name: int(v) for name, v in zip(classes, values)}


def _report(strategy: Strategy, before: Dataset, after: Dataset, source_rows: np.ndarray, seed: int,
            seconds: float) -> StrategyReport:
    classes = before.schema.classes
    y_in, y_out = before.y, after.y
    synthetic_in = before.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    synthetic_out = after.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
    any_synthetic_in = bool(synthetic_in.any())
    before_all = strategy.class_counts_
    # Real input rows per class, and the distinct real input rows the output keeps (an output row that
    # is not synthetic is an input row; marking positions counts each kept row once).
    before_real = np.bincount(y_in[~synthetic_in], minlength=len(classes)) if any_synthetic_in else before_all
    kept = np.zeros(len(before), dtype=bool)
    kept[source_rows[~synthetic_out]] = True
    kept_rows = np.flatnonzero(kept)
    if any_synthetic_in:
        kept_rows = kept_rows[~synthetic_in[kept_rows]]
    # (Over-samplers keep every input row: then nothing was removed, and the kept rows need no count.)
    removed = (before_real - np.bincount(y_in[kept_rows], minlength=len(classes)) if len(kept_rows) < len(before)
               else np.zeros(len(classes), dtype=np.int64))
    # One pass counts the output's (class, synthetic) pairs: column 0 real rows, column 1 synthetic ones.
    pair_codes = y_out * 2
    pair_codes += synthetic_out
    pairs = np.bincount(pair_codes, minlength=2 * len(classes)).reshape(len(classes), 2)
    after_all = pairs.sum(axis=1)
    added = np.maximum(0, pairs[:, 1] - (before_all - before_real))
    weights = after.frame[SAMPLE_WEIGHT].to_numpy(dtype=np.float64)
    class_weights = None
    if not np.all(weights == 1.0):
        class_weights = {c: float(weights[y_out == i].mean()) if after_all[i] else float("nan")
                         for i, c in enumerate(classes)}
    if strategy.target_ and not strategy.exact_target:
        missed = [f"{name} {int(after_all[classes.index(name)]):,} instead of {wanted:,}"
                  for name, wanted in strategy.target_.items() if after_all[classes.index(name)] != wanted]
        if missed:
            strategy.note(_("{title} did not reach the target mix exactly ({missed}): it decides per region of "
                            "the data how many rows to make or remove.").format(
                            title=strategy.title, missed='; '.join(missed)))
    emptied = [c for c, b, a in zip(classes, before_all, after_all) if b > 0 and a == 0]
    if emptied:
        strategy.note(_("No {repr} rows are left, so a model trained on this set never sees that class. Restrict "
                        "the classes this strategy may change "
                        "(sampling_strategy).").format(repr=', '.join(map(repr, emptied))))
    return StrategyReport(
        strategy=type(strategy).__name__, params=strategy.get_params(), seed=seed,
        before=_by_class(before_all, classes), after=_by_class(after_all, classes),
        added=_by_class(added, classes), removed=_by_class(removed, classes),
        seconds=seconds, target=strategy.target_, class_weights=class_weights, notes=list(strategy.notes_))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- helpers shared by the families -----------------------------------------------------------------


def class_codes(names: dict[str, Any], classes: tuple[str, ...], owner: str, param: str) -> dict[int, Any]:
    """Convert a class-name keyed mapping to label codes, with a sentence for unknown names."""
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise InvalidParameterError(
            _("{owner}: '{param}' names the class(es) {repr}, which this task does not have. Its classes are: "
              "{classes}.").format(
              owner=owner, param=param, repr=', '.join(map(repr, unknown)), classes=', '.join(classes)))
    return {classes.index(name): value for name, value in names.items()}


def rows_by_class(y: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Positions of each class's rows, in input order."""
    order = np.argsort(y, kind="stable")
    bounds = np.cumsum(np.bincount(y, minlength=n_classes))[:-1]
    return np.split(order, bounds)


_CHUNK = 65_536

#: Threads that copy columns at once (numpy releases the GIL while it copies or gathers).
COPY_THREADS = min(4, os.cpu_count() or 1)


def in_parallel(jobs: list[Callable[[], None]]) -> None:
    """Run independent jobs (column copies) on up to :data:`COPY_THREADS` threads; errors propagate."""
    if COPY_THREADS <= 1 or len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(min(COPY_THREADS, len(jobs))) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def assemble(train: Dataset, keep: np.ndarray | None, new_source: np.ndarray, new_values: dict[str, np.ndarray],
             new_labels: np.ndarray | None = None,
             new_matrix: tuple[tuple[str, ...], np.ndarray] | None = None,
             output_matrix: tuple[tuple[str, ...], np.ndarray] | None = None) -> tuple[Dataset, np.ndarray]:
    """Build an output dataset: the real rows ``keep``, then one new row per entry of ``new_source``.

    ``keep`` lists input positions in output order; ``None`` keeps every input row in order (copied
    whole, without a gather).

    A new row copies every column of the input row ``new_source[i]``, then takes the columns in
    ``new_values`` (arrays of the new rows' values) and in ``new_matrix`` (column names and a
    rows x columns matrix, e.g. a sampler's output), the label ``new_labels[i]`` (defaults to the source
    row's) and ``is_synthetic=True``.

    ``output_matrix`` (column names and a matrix with one row per *output* row, kept rows first, of
    those columns' dtype) becomes the output's values of these columns as it is, without a copy: an
    over-sampler's ``fit_resample`` output already holds the real rows followed by the new ones. The
    caller hands the matrix over (it must not change it afterwards).
    """
    matrix_columns, matrix = new_matrix if new_matrix is not None else ((), None)
    matrix_index = {name: j for j, name in enumerate(matrix_columns)}
    frame = train.frame
    keep_all = keep is None
    keep = np.arange(len(frame)) if keep_all else np.asarray(keep, dtype=np.int64)
    new_source = np.asarray(new_source, dtype=np.int64)
    take = np.concatenate([keep, new_source])
    n_keep, n_out = len(keep), len(take)
    assert n_out == 0 or (take.min() >= 0 and take.max() < len(frame))   # so take(mode="clip") never clips
    blocks: list[tuple[Any, np.ndarray]] = []
    shared: set[str] = set()
    if output_matrix is not None:
        columns, values = output_matrix
        assert values.shape == (n_out, len(columns))
        assert all(frame[name].dtype == values.dtype for name in columns)
        # A row-major matrix transposed is a valid pandas block (one row per column), so the frame
        # shares the sampler's memory; frame[columns].to_numpy() gives the row-major matrix back.
        blocks.append((values.T, np.array([frame.columns.get_loc(name) for name in columns])))
        shared = set(columns)
    # Other columns are gathered straight into one 2-D array per numpy dtype (pandas' own block layout),
    # so the output frame is built without a second, consolidating copy.
    by_dtype: dict[np.dtype, list[int]] = {}
    extension: dict[int, Any] = {}                              # categorical, tz-aware time, strings...
    for position, (name, dtype) in enumerate(frame.dtypes.items()):
        if name in shared:
            continue
        if isinstance(dtype, np.dtype):
            by_dtype.setdefault(dtype, []).append(position)
        else:
            extension[position] = frame.iloc[:, position].array
    taken: dict[int, Any] = {}

    def take_extension(position: int) -> None:
        taken[position] = extension[position].take(take)

    def fill(out: np.ndarray, original: np.ndarray, name: str) -> None:
        """One output column (a row of its block): kept rows, then the new rows' values."""
        if keep_all:
            out[:n_keep] = original                             # over-samplers keep every row in order
        else:
            np.take(original, keep, out=out[:n_keep], mode="clip")
        if name in matrix_index:
            return                                              # filled below, a chunk at a time
        if name in new_values or (name == LABEL and new_labels is not None):
            out[n_keep:] = new_values[name] if name in new_values else new_labels
        elif name == IS_SYNTHETIC:
            out[n_keep:] = True
        else:
            np.take(original, new_source, out=out[n_keep:], mode="clip")

    columns = []
    numpy_blocks = []
    for dtype, positions in by_dtype.items():
        block = np.empty((len(positions), n_out), dtype=dtype)
        columns += [(block[row], frame[frame.columns[p]].to_numpy(), frame.columns[p]) for row, p in enumerate(positions)]
        numpy_blocks.append((block, np.asarray(positions)))
    in_parallel([functools.partial(take_extension, p) for p in extension]
                + [functools.partial(fill, *column) for column in columns])
    blocks += [(taken[p], np.array([p])) for p in extension] + numpy_blocks
    for block, positions in numpy_blocks:
        from_matrix = [(row, matrix_index[frame.columns[p]]) for row, p in enumerate(positions)
                       if frame.columns[p] in matrix_index]
        if from_matrix:
            rows, sources = (np.array(v) for v in zip(*from_matrix))
            # Copy the row-major matrix into column rows in cache-sized chunks (a column at a time
            # would stride through the whole matrix once per column).
            for start in range(0, len(new_source), _CHUNK):
                stop = min(start + _CHUNK, len(new_source))
                block[rows, n_keep + start:n_keep + stop] = matrix[start:stop, sources].T
    out = create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n_out), columns=frame.columns)
    return replace(train, frame=out), take


def stratified_sample(dataset: Dataset, max_rows: int, seed: int = 0, min_per_class: int = 50) -> Dataset:
    """At most about ``max_rows`` rows, drawn per class in proportion, keeping small classes whole.

    Each class keeps ``max(its proportional share, min(its rows, min_per_class))`` rows, so a preview
    on a sample still shows every class (and can still run neighbour-based samplers on small ones).
    Rows keep their original order. Returns ``dataset`` itself when it is small enough.
    """
    if len(dataset) <= max_rows:
        return dataset
    rng = np.random.default_rng(seed)
    share = max_rows / len(dataset)
    picked = []
    for rows in rows_by_class(dataset.y, dataset.schema.n_classes):
        wanted = min(len(rows), max(int(round(len(rows) * share)), min(len(rows), min_per_class)))
        picked.append(rng.choice(rows, wanted, replace=False))
    return dataset.subset(np.sort(np.concatenate(picked)))
