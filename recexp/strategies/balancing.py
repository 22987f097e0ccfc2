"""Balancing: imbalanced-learn's samplers behind the strategy contract (nothing re-implemented).

What each sampler sees
    The *sampler space* is the numeric features (``float32``). SMOTE switches to imbalanced-learn's
    ``SMOTENC`` when the dataset has categorical features with at most ``MAX_NOMINAL_CODES`` distinct
    codes, which then enter the space as nominal columns (id-like features such as item ids stay out:
    SMOTENC one-hot encodes them, which takes memory in proportion to new rows x codes, and "the most
    frequent neighbour item" is no better than the seed row's item); ``SMOTEN`` works on the categorical
    features alone. NaN in a numeric feature is filled
    with that feature's median over the training rows (the only rows a strategy sees) before a
    sampler that needs finite values runs; real rows keep their NaN in the output, new rows carry
    values interpolated from the filled ones. The report says which columns were filled.

What new rows get
    Columns the sampler generated (the space) come from imbalanced-learn, unchanged: the rows are
    exactly those of the same call made directly. Every other column of a new row (behaviour-sequence
    ids, categorical codes the sampler did not see, ``user_id``, ``event_time``, ``sample_weight``...)
    is copied from one real row of the same class, so interpolation never produces a fractional
    category code or sequence id:

    * the row it was made from, where that is known: the drawn row for ``RandomOverSampler``; the
      *seed* row for the SMOTE family (SMOTE, SMOTENC, BorderlineSMOTE, SVMSMOTE, KMeansSMOTE and the
      SMOTE step of SMOTEENN / SMOTETomek), i.e. the real row the new one was interpolated from
      towards a neighbour, recorded as imbalanced-learn generates it; and for ADASYN the seed too,
      from the neighbour queries ADASYN makes and its rule for how many rows each seed gets;
    * otherwise (SMOTEN, ClusterCentroids' centroids, or if a trace ever fails) the nearest training
      row of the same class in the sampler space (Euclidean; Hamming for SMOTEN).

    ``StrategyResult.source_rows`` names that row for every output row. Random samplers never look at
    feature values, so RandomUnderSampler (and RandomOverSampler without shrinkage) are given row
    numbers instead of the feature matrix and every column is copied from the row they pick.

Target mix
    ``sampling_strategy`` takes what imbalanced-learn takes: a preset (``"auto"``, ``"minority"``,
    ``"not minority"``, ``"not majority"``, ``"all"``, ``"majority"``), a ratio (two classes only),
    or per-class row counts keyed by class *name* (``{"buy": 5000}``), converted to label codes here.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from imblearn import combine, over_sampling, under_sampling
from imblearn.base import BaseSampler
from imblearn.utils import check_sampling_strategy
from sklearn.base import clone
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import HasMethods

from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError, RecexpError
from recexp.i18n import _, ngettext
from recexp.params import Bool, Choice, Float, Int, Mapping, Optional, Union
from recexp.strategies.base import REFERENCE_ROWS, Strategy, assemble, check_new_rows, class_codes
from recexp.strategies.neighbours import KNN_BACKEND, Neighbours, Search, backend_problem, describe_searches

#: Categorical features with more codes than this stay out of SMOTENC's space (copied from the seed row).
MAX_NOMINAL_CODES = 100


def nominal_features(train: Dataset) -> tuple[str, ...]:
    """Categorical features few-valued enough for SMOTENC to treat as nominal columns."""
    return tuple(c for c in train.schema.categorical
                 if train.schema.cardinality.get(c, MAX_NOMINAL_CODES + 1) <= MAX_NOMINAL_CODES)


def sampler_labels(train: Dataset) -> np.ndarray:
    """The label codes as ``int16`` (``int64`` past 32,768 classes), the type imbalanced-learn checks fastest.

    imbalanced-learn validates ``y`` with several ``np.unique`` passes over every row (target type, class
    counts, sampling target). Measured with numpy 2.4 on 1M labels, one plain and one counting pass take
    5.3 ms on ``int16`` codes, 12.4 ms on ``uint8`` and 17.4 ms on the dataset's ``int64``.
    """
    wide = train.schema.n_classes > np.iinfo(np.int16).max + 1
    return train.y.astype(np.int64 if wide else np.int16)


def _smote_space(train: Dataset) -> str:
    return "numeric+categorical" if nominal_features(train) else "numeric"

OVER, UNDER, CLEAN = "over-sampling", "under-sampling", "clean-sampling"

_OVER_PRESETS = Choice({
    "auto": "auto: every class but the largest",
    "minority": "minority: the smallest class only",
    "not minority": "not minority: every class but the smallest",
    "not majority": "not majority: every class but the largest",
    "all": "all classes",
}, help="Which classes to over-sample up to the size of the largest class.")
_UNDER_PRESETS = Choice({
    "auto": "auto: every class but the smallest",
    "majority": "majority: the largest class only",
    "not minority": "not minority: every class but the smallest",
    "not majority": "not majority: every class but the largest",
    "all": "all classes",
}, help="Which classes to under-sample down to the size of the smallest class.")

OVER_SAMPLING_STRATEGY = Union((
    _OVER_PRESETS,
    Float(0.0, 1.0, low_open=True, help="Two classes only: rows of the minority class after resampling "
                                         "divided by rows of the majority class."),
    Mapping(Int(0, None), help="Rows wanted per class after resampling (at least what it has now)."),
), help="The class mix to reach: a preset, a minority/majority ratio (two classes), or rows per class.")
UNDER_SAMPLING_STRATEGY = Union((
    _UNDER_PRESETS,
    Float(0.0, 1.0, low_open=True, help="Two classes only: rows of the minority class divided by rows of "
                                         "the majority class after resampling."),
    Mapping(Int(1, None), help="Rows wanted per class after resampling (at most what it has now)."),
), help="The class mix to reach: a preset, a minority/majority ratio (two classes), or rows per class.")
CLEANING_STRATEGY = Choice({
    "auto": "auto: clean every class but the smallest",
    "majority": "majority: the largest class only",
    "not minority": "not minority: every class but the smallest",
    "not majority": "not majority: every class but the largest",
    "all": "all classes",
}, help="Which classes the cleaning rule may remove rows from.")

_K_NEIGHBORS = Int(1, None, help="Same-class neighbours each new row is interpolated towards; every class "
                                  "being over-sampled needs more rows than this.")


class _SeedTracer:
    """Records the real row each new row of imbalanced-learn's SMOTE family was interpolated from.

    The SMOTE family (SMOTE, SMOTENC, BorderlineSMOTE, SVMSMOTE, KMeansSMOTE) makes every new row in
    ``_generate_samples(X, nn_data, nn_num, rows, ...)`` from the seed rows ``X[rows]``. A subclass made
    by :meth:`traced` notes those seeds and then runs imbalanced-learn's own method unchanged, so the
    samples are exactly those of a direct call. ``X`` is either all rows of the class (SMOTE, SMOTENC;
    then ``rows`` index them) or a subset (border, support-vector or cluster rows), matched back to the
    class's rows by their exact values.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y
        self.seeds: list[np.ndarray] = []
        self._class_rows: dict[int, np.ndarray] = {}
        self._index: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def traced(self, cls: type) -> type:
        """A subclass of the imbalanced-learn sampler ``cls`` that reports its seeds here."""
        tracer = self

        def _generate_samples(sampler, X, nn_data, nn_num, rows, cols, steps, y_type=None, y=None):
            tracer.record(X, rows, y_type)
            return cls._generate_samples(sampler, X, nn_data, nn_num, rows, cols, steps, y_type, y)

        return type(cls.__name__, (cls,), {"_generate_samples": _generate_samples, "__module__": cls.__module__})

    def rows_of(self, code: int) -> np.ndarray:
        if code not in self._class_rows:
            self._class_rows[code] = np.flatnonzero(self.y == code)
        return self._class_rows[code]

    def record(self, X, rows: np.ndarray, code) -> None:
        class_rows = self.rows_of(code)
        if X.shape[0] == len(class_rows):
            # A subset as large as the class is the class itself: imbalanced-learn keeps row order.
            self.seeds.append(class_rows[rows])
        elif isinstance(X, np.ndarray) and X.shape[1] == self.X.shape[1]:
            self.seeds.append(self._match(np.ascontiguousarray(X[rows]), code))
        else:
            self.seeds.append(np.full(len(rows), -1, dtype=np.int64))

    def _match(self, values: np.ndarray, code: int) -> np.ndarray:
        """Positions of the class rows equal to ``values`` (-1 where none is)."""
        if code not in self._index:
            hashes = _row_hash(np.ascontiguousarray(self.X[self.rows_of(code)]))
            order = np.argsort(hashes, kind="stable")
            self._index[code] = (hashes[order], self.rows_of(code)[order])
        sorted_hashes, positions = self._index[code]
        wanted = _row_hash(values)
        at = np.minimum(np.searchsorted(sorted_hashes, wanted), len(sorted_hashes) - 1)
        found = positions[at]
        same = (sorted_hashes[at] == wanted) & np.all(self.X[found] == values, axis=1)
        return np.where(same, found, -1)

    def result(self, n_new: int | None = None) -> np.ndarray | None:
        """Seeds of the new rows in output order, or ``None`` if the trace does not cover them."""
        seeds = np.concatenate(self.seeds) if self.seeds else np.arange(0)
        return seeds if n_new is None or len(seeds) == n_new else None


def _row_hash(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes (rows of equal values hash equally)."""
    words = values.view(np.uint32) if values.dtype.itemsize == 4 else values.view(np.uint64)
    multipliers = np.random.default_rng(12345).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | 1
    with np.errstate(over="ignore"):
        mixed = words.astype(np.uint64) * multipliers
        mixed ^= mixed >> np.uint64(29)
        return mixed.sum(axis=1, dtype=np.uint64)


def _neighbour_recorder(records: list[tuple[int, np.ndarray]], base: type = NearestNeighbors) -> type:
    """A subclass of the neighbours estimator ``base`` (scikit-learn's or :class:`Neighbours`) that appends
    ``(rows fitted, neighbour indices)`` of every query."""

    def kneighbors(finder, X=None, n_neighbors=None, return_distance=True):
        result = base.kneighbors(finder, X, n_neighbors, return_distance)
        records.append((finder.n_samples_fit_, result[1] if return_distance else result))
        return result

    return type(base.__name__, (base,), {"kneighbors": kneighbors, "__module__": __name__})


def _searches(sampler: BaseSampler, seen: set[int] | None = None) -> list[Search]:
    """The :class:`Neighbours` searches a fitted sampler (and the samplers inside it) made."""
    seen = set() if seen is None else seen
    found: list[Search] = []
    for value in vars(sampler).values():
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Neighbours):
            found += getattr(value, "searches_", [])
        elif isinstance(value, BaseSampler):
            found += _searches(value, seen)
    return found


class _TomekLinks(under_sampling.TomekLinks):
    """imbalanced-learn's TomekLinks with its one neighbour query given to a chosen neighbours estimator.

    imbalanced-learn's TomekLinks builds its own ``NearestNeighbors(n_neighbors=2)`` and takes no estimator;
    this subclass makes the same query (each row's nearest other row) with ``n_neighbors`` and then applies
    imbalanced-learn's own rule, ``TomekLinks.is_tomek``.
    """

    _parameter_constraints = {**under_sampling.TomekLinks._parameter_constraints,
                              "n_neighbors": [HasMethods(["kneighbors", "kneighbors_graph"])]}

    def __init__(self, *, sampling_strategy="auto", n_jobs=None, n_neighbors=None):
        super().__init__(sampling_strategy=sampling_strategy, n_jobs=n_jobs)
        self.n_neighbors = n_neighbors

    def _fit_resample(self, X, y):
        self.nn_ = clone(self.n_neighbors).set_params(n_neighbors=2).fit(X)
        nns = self.nn_.kneighbors(X, return_distance=False)[:, 1]
        links = self.is_tomek(y, nns, self.sampling_strategy_)
        self.sample_indices_ = np.flatnonzero(np.logical_not(links))
        return X[self.sample_indices_], y[self.sample_indices_]


class ImbalancedLearnStrategy(Strategy):
    """Shared flow of every imbalanced-learn sampler: space, target, fit_resample, rebuild the frame.

    Subclasses set ``sampling_type`` and ``output`` (how rows of ``fit_resample``'s output map to the
    input: ``"appended"``: the input then new rows; ``"indices"``: a subset named by
    ``sample_indices_``; ``"combined"``: an over-sampler followed by a cleaner; ``"centroids"``:
    ClusterCentroids' per-class output) and write ``_sampler(train, seed)``.
    """

    family = "balancing"
    sampling_type: ClassVar[str] = OVER
    needs_all_rows = True
    output: ClassVar[str] = "appended"
    needs_finite: ClassVar[bool] = True       # neighbour-based samplers reject NaN
    space: ClassVar[str] = "numeric"          # "numeric", "numeric+categorical" or "categorical"
    every_categorical: ClassVar[bool] = False  # numeric+categorical: all categoricals, not only nominal ones
    neighbours: ClassVar[str | None] = None   # parameter that needs that many rows (+1) per resampled class
    sampler_class: ClassVar[type]             # the imbalanced-learn sampler
    traced: ClassVar[bool] = False            # a SMOTE-family sampler whose seed rows are recorded
    #: Sampler arguments that :meth:`_sampler` gives a neighbours estimator of the ``knn_backend`` parameter,
    #: with the neighbours imbalanced-learn adds to the count (the row itself).
    neighbour_arguments: ClassVar[dict[str, int]] = {}
    #: What :meth:`estimated_seconds` charges per ``knn_backend`` where that changes the cost: backend ->
    #: (CPU seconds per row at ``REFERENCE_ROWS`` rows, cost exponent), measured like ``seconds_per_row``
    #: (``benchmarks/knn.py --estimates``). Other backends are charged ``seconds_per_row`` / ``cost_exponent``,
    #: measured with scikit-learn's brute-force neighbours (the slowest).
    backend_costs: ClassVar[dict[str, tuple[float, float]]] = {}

    def _estimated_seconds(self, n_rows: int) -> float | None:
        cost = self.backend_costs.get(self.knn_backend) if "knn_backend" in self.params else None
        if cost is None:
            return super()._estimated_seconds(n_rows)
        per_row, exponent = cost
        return per_row * REFERENCE_ROWS * (n_rows / REFERENCE_ROWS) ** exponent

    # --- the sampler space ------------------------------------------------------------------------

    def _space_kind(self, train: Dataset) -> str:
        return self.space

    def _space_columns(self, train: Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(numeric columns, categorical columns) the sampler sees."""
        kind = self._space_kind(train)
        numeric = train.schema.numeric if "numeric" in kind else ()
        if "categorical" not in kind:
            categorical = ()
        elif "numeric" in kind and not self.every_categorical:
            categorical = nominal_features(train)
        else:
            categorical = train.schema.categorical
        return numeric, categorical

    def _check_space(self, train: Dataset) -> None:
        numeric, categorical = self._space_columns(train)
        kind = self._space_kind(train)
        if "numeric" in kind and not numeric:
            raise InvalidParameterError(
                _("{title} interpolates or measures distances on numeric features, but this dataset has none. "
                  "Choose RandomOverSampler, RandomUnderSampler or SMOTEN (categorical features), or a task with "
                  "numeric features.").format(title=self.title))
        if "categorical" in kind and not categorical:
            raise InvalidParameterError(
                _("{title} needs categorical features with at most {max_nominal_codes} distinct codes, but this "
                  "dataset has none (categorical: {value}). Use SMOTE instead.").format(
                  title=self.title, max_nominal_codes=MAX_NOMINAL_CODES,
                  value=', '.join(train.schema.categorical) or _('none')))

    def _matrix(self, train: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(sampler input X, finite numeric matrix for nearest-row look-ups)."""
        numeric, categorical = self._space_columns(train)
        frame = train.frame
        numeric_x = frame.loc[:, list(numeric)].to_numpy(dtype=np.float32, na_value=np.nan)
        filled = []
        # min() is NaN exactly when some value is, and unlike a mask it allocates nothing.
        self.filled_ = bool(self.needs_finite and numeric_x.size and np.isnan(numeric_x.min()))
        if self.filled_:
            missing = np.isnan(numeric_x)
            numeric_x = numeric_x.copy()                    # may be a view of the frame's block
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN columns: filled with 0 below
                medians = np.nanmedian(numeric_x, axis=0)
            medians = np.where(np.isnan(medians), 0.0, medians)
            for j in np.flatnonzero(missing.any(axis=0)):
                numeric_x[missing[:, j], j] = medians[j]
                filled.append(f"{numeric[j]} ({int(missing[:, j].sum()):,} rows)")
            self.note(_("Missing values filled with the training median before resampling: {filled}. Real rows "
                        "keep their missing values; new rows carry values made "
                        "from the filled ones.").format(filled=', '.join(filled)))
        if not categorical:
            return numeric_x, numeric_x
        codes = frame.loc[:, list(categorical)].to_numpy(dtype=np.int64)
        if not numeric:
            return codes, codes
        return np.hstack([numeric_x.astype(np.float64), codes.astype(np.float64)]), numeric_x

    # --- target mix ------------------------------------------------------------------------------

    def _target_codes(self, train: Dataset) -> Any:
        """``sampling_strategy`` with class names turned into label codes, checked against the class counts."""
        value = self.sampling_strategy
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)                            # a ratio of 1 given as an integer
        classes = train.schema.classes
        current = self.class_counts_
        present = np.flatnonzero(current)
        kind = self.sampling_type
        if len(present) < 2:
            raise InvalidParameterError(
                _("{title}: the training split has only one class ({classes}), so there is no class mix to "
                  "change. Check the task and the split.").format(
                  title=self.title, classes=classes[present[0]]))
        if isinstance(value, float) and len(present) != 2:
            example = min(present, key=lambda c: current[c])
            raise InvalidParameterError(
                _("{title}: a ratio for 'sampling_strategy' only works with two classes, but this training split "
                  "has {n_present} ({value}). Give rows per class instead, e.g. {{{classes!r}: {current:,}}}, or "
                  "a preset such as 'auto'.").format(
                  title=self.title, n_present=len(present), value=', '.join(classes[c] for c in present),
                  classes=classes[example], current=int(current.max())))
        if isinstance(value, float):
            minority, majority = sorted(present, key=lambda c: current[c])
            ratio_now = current[minority] / current[majority]
            if value < ratio_now:
                raise InvalidParameterError(
                    _("{title}: sampling_strategy={value} asks for fewer {classes!r} rows per {classes2!r} row "
                      "than the training split already has ({ratio_now:.4f}). Set a ratio of at least "
                      "{ratio_now2:.4f}.").format(
                      title=self.title, value=value, classes=classes[minority], classes2=classes[majority],
                      ratio_now=ratio_now, ratio_now2=np.ceil(ratio_now * 1e4) / 1e4))
        if isinstance(value, dict):
            codes = class_codes(value, classes, self.title, "sampling_strategy")
            for code, wanted in codes.items():
                have, name = int(current[code]), classes[code]
                if have == 0:
                    raise InvalidParameterError(
                        _("{title}: class {name!r} has no training rows, so there is nothing to resample it "
                          "from. Leave {name!r} out of 'sampling_strategy'.").format(title=self.title, name=name))
                if kind == OVER and wanted < have:
                    raise InvalidParameterError(
                        _("{title}: the target for class {name!r} is {wanted:,} rows, fewer than the {have:,} it "
                          "already has, and an over-sampler only adds rows. Set it to at least {have:,}, or use "
                          "an under-sampler to remove rows.").format(
                          title=self.title, name=name, wanted=wanted, have=have))
                if kind == UNDER and wanted > have:
                    raise InvalidParameterError(
                        _("{title}: the target for class {name!r} is {wanted:,} rows, more than the {have:,} it "
                          "has, and an under-sampler only removes rows. Set it to at most {have:,}, or use an "
                          "over-sampler to add rows.").format(
                          title=self.title, name=name, wanted=wanted, have=have))
            value = codes
        return value

    def _resolve_target(self) -> dict[int, int]:
        """The target mix as imbalanced-learn resolves it (``check_sampling_strategy``): label code ->
        rows to add (over-sampling) or rows to keep (under-sampling), or the classes to clean.

        ``fit_resample`` resolves it again and keeps it as ``sampling_strategy_``, so it is worked out
        beforehand (a few passes over the labels) only where a check needs it before the call: the
        over-samplers' bound on new rows and neighbour counts, and hooks that ask.
        """
        if self.resolved_target_ is None:
            try:
                self.resolved_target_ = check_sampling_strategy(self.target_codes_, self.labels_, self.sampling_type)
            except ValueError as error:
                raise InvalidParameterError(
                    _("{title}: sampling_strategy={sampling_strategy!r} is not possible on this training split "
                      "({error}). Choose another preset or per-class counts.").format(
                      title=self.title, sampling_strategy=self.sampling_strategy, error=error)) from None
        return self.resolved_target_

    def _record_target(self, train: Dataset, resolved: dict[int, int]) -> None:
        """``target_`` (rows per class name after resampling, for the report) from the resolved mix."""
        self.resolved_target_ = resolved
        classes, current = train.schema.classes, self.class_counts_
        if self.sampling_type == OVER:
            self.target_ = {classes[c]: int(current[c] + n) for c, n in resolved.items() if n > 0}
        elif self.sampling_type == UNDER:
            self.target_ = {classes[c]: int(n) for c, n in resolved.items()}

    def _check_neighbours(self, train: Dataset, resolved: Any) -> None:
        if self.neighbours is None:
            return
        k = getattr(self, self.neighbours)
        current = self.class_counts_
        for code, n_new in resolved.items():
            have = int(current[code])
            if n_new > 0 and have < k + 1:
                name = train.schema.classes[code]
                fix = (_("Lower {neighbours} to at most {most}").format(neighbours=self.neighbours, most=have - 1)
                       if have > 1 else _("Use RandomOverSampler for it"))
                raise InvalidParameterError(
                    ngettext("{title}: class {name!r} has {have:,} training row, but {neighbours}={k} needs at "
                             "least {k2} rows in every class it over-samples. {fix}, or leave {name!r} out of the "
                             "target mix (rows per class).",
                             "{title}: class {name!r} has {have:,} training rows, but {neighbours}={k} needs at "
                             "least {k2} rows in every class it over-samples. {fix}, or leave {name!r} out of the "
                             "target mix (rows per class).", have).format(
                      title=self.title, name=name, have=have, neighbours=self.neighbours, k=k, k2=k + 1, fix=fix))

    def _check_feasible(self, train: Dataset) -> None:
        problem = backend_problem(self.knn_backend) if "knn_backend" in self.params else None
        if problem:
            raise InvalidParameterError(_("{title}: {problem}").format(title=self.title, problem=problem))
        self._check_space(train)
        self.labels_ = sampler_labels(train)
        self.target_codes_ = self._target_codes(train)
        self.resolved_target_ = None
        if self.sampling_type == OVER:
            resolved = self._resolve_target()
            check_new_rows(self.title, int(sum(resolved.values())), "sampling_strategy")
            self._check_neighbours(train, resolved)
        self._check_more(train)

    def _check_more(self, train: Dataset) -> None:
        """Sampler-specific feasibility checks."""

    # --- running ----------------------------------------------------------------------------------

    def _sampler(self, train: Dataset, seed: int):
        """The imbalanced-learn sampler ``sampler_class`` with this strategy's parameters.

        Every parameter the sampler also takes goes to it under its own name (``sampling_strategy`` as
        resolved to label codes), plus ``random_state=seed`` where the sampler takes one;
        ``_sampler_arguments`` adds or replaces arguments where recexp's parameters differ from the sampler's.
        """
        cls = self.tracer_.traced(self.sampler_class) if self.traced else self.sampler_class
        accepted = inspect.signature(cls).parameters
        arguments = {name: value for name, value in self.get_params().items() if name in accepted}
        arguments["sampling_strategy"] = self.target_codes_
        if "random_state" in accepted:
            arguments["random_state"] = seed
        for name, extra in self.neighbour_arguments.items():
            if name in arguments:
                arguments[name] = self._neighbours(arguments[name], extra)
        return cls(**{**arguments, **self._sampler_arguments(train, seed)})

    def _neighbours(self, k: int, extra: int, recorder: list | None = None):
        """What a sampler gets for a neighbour count ``k`` (imbalanced-learn adds ``extra``): the count
        itself on the ``sklearn`` backend (imbalanced-learn's own estimator), else a :class:`Neighbours`;
        with ``recorder``, an estimator that records every query there."""
        if self.knn_backend == "sklearn" and recorder is None:
            return k
        base = NearestNeighbors if self.knn_backend == "sklearn" else Neighbours
        cls = _neighbour_recorder(recorder, base) if recorder is not None else base
        if base is NearestNeighbors:
            return cls(n_neighbors=k + extra)
        return cls(n_neighbors=k + extra, backend=self.knn_backend)

    def _sampler_arguments(self, train: Dataset, seed: int) -> dict[str, Any]:
        """Sampler arguments that differ from the parameters of the same name (or are not parameters)."""
        return {}

    def _reads_features(self) -> bool:
        """Whether the sampler looks at feature values (random samplers only look at labels)."""
        return True

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        y = self.labels_
        if self._reads_features():
            X, lookup = self._matrix(train)
        else:
            # The sampler's choice depends on the labels and the seed only, so it gets row numbers as its
            # one feature and every column of an output row is copied from the row it names.
            X = lookup = np.arange(len(y), dtype=np.float64)[:, None]
        self.tracer_ = _SeedTracer(X, y)
        sampler = self._sampler(train, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                X_res, y_res = sampler.fit_resample(X, y)
            except RecexpError:
                raise
            except (ValueError, RuntimeError, ZeroDivisionError) as error:
                raise InvalidParameterError(self._failure(error)) from None
        searches = describe_searches(_searches(sampler))
        if searches:
            self.note(searches)
        self._record_target(train, sampler.sampling_strategy_ if self.resolved_target_ is None
                            else self.resolved_target_)
        for message in dict.fromkeys(str(w.message).strip() for w in caught
                                     if issubclass(w.category, UserWarning | RuntimeWarning)):
            self.note(_("{title} warned: {message}").format(title=self.title, message=message))
        keep, new_positions, new_source = self._origins(sampler, X, y, X_res, y_res)
        y_res = np.asarray(y_res)
        if len(new_positions) and new_positions[-1] - new_positions[0] == len(new_positions) - 1:
            X_new, y_new = X_res[new_positions[0]: new_positions[-1] + 1], y_res[new_positions[0]: new_positions[-1] + 1]
        else:
            X_new, y_new = X_res[new_positions], y_res[new_positions]
        if new_source is None:
            new_source = np.full(len(y_new), -1, dtype=np.int64)
        unknown = np.flatnonzero(new_source < 0)
        if len(unknown):
            new_source = new_source.copy()
            new_source[unknown] = self._nearest(train, X if self.space == "categorical" else lookup, y,
                                                self._lookup_part(X_new[unknown], lookup), y_new[unknown])
        values: dict[str, np.ndarray] = {}
        matrix = whole = None
        if self._reads_features():
            numeric, categorical = self._space_columns(train)
            if numeric and self._output_is_frame_values(train, X_res, numeric, categorical):
                whole = (numeric, X_res)
            elif numeric:
                matrix = (numeric, X_new[:, : len(numeric)] if categorical else X_new)
            for j, name in enumerate(categorical):
                values[name] = np.rint(X_new[:, len(numeric) + j]).astype(np.int64)
        return assemble(train, keep, np.asarray(new_source, dtype=np.int64), values, new_labels=y_new,
                        new_matrix=matrix, output_matrix=whole)

    def _output_is_frame_values(self, train: Dataset, X_res: np.ndarray, numeric: tuple[str, ...],
                                categorical: tuple[str, ...]) -> bool:
        """Whether ``fit_resample``'s matrix holds, row for row, the output's values of the numeric features.

        True for an over-sampler that keeps every input row in order ("appended") on the numeric
        features alone, when no missing value was filled (real rows keep their NaN) and the features'
        dtype is the matrix's: the output frame then uses the matrix as it is (no copy).
        """
        return (self.output == "appended" and not categorical and not self.filled_
                and isinstance(X_res, np.ndarray) and X_res.ndim == 2 and X_res.shape[1] == len(numeric)
                and all(train.frame[name].dtype == X_res.dtype for name in numeric))

    def _failure(self, error: Exception) -> str:
        """A sentence for an error imbalanced-learn raised while resampling."""
        text = str(error)
        if "NaN" in text and "KMeansSMOTE" in type(self).__name__:
            text = _("every cluster it could use holds identical rows of the class (zero spread), so its "
                     "density weights are undefined")
        return _("{title} could not resample this training split with {params}: {reason}. Change the parameters "
                 "(e.g. fewer neighbours, more clusters or another target mix) or the "
                 "strategy.").format(title=self.title, params=self.get_params(), reason=text)

    def _lookup_part(self, X_new: np.ndarray, lookup: np.ndarray) -> np.ndarray:
        if self.space == "categorical":
            return X_new
        return X_new[:, : lookup.shape[1]].astype(np.float32, copy=False)

    def _origins(self, sampler, X, y, X_res, y_res) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(input rows kept in input order or ``None`` for all, positions of new rows in the output, their
        source rows or ``None``)."""
        n, n_out = len(y), len(y_res)
        if self.output == "appended":
            indices = getattr(sampler, "sample_indices_", None)
            source = np.asarray(indices)[n:] if indices is not None else self._seeds(sampler, y, n_out - n)
            return None, np.arange(n, n_out), source
        if self.output == "indices":
            return np.sort(sampler.sample_indices_), np.arange(0), np.arange(0)
        if self.output == "combined":
            cleaner = getattr(sampler, "enn_", None) or getattr(sampler, "tomek_")
            indices = np.asarray(cleaner.sample_indices_)
            seeds = self.tracer_.result()
            new_positions = np.flatnonzero(indices >= n)
            source = seeds[indices[new_positions] - n] if seeds is not None and indices.max() < n + len(seeds) \
                else None
            return np.sort(indices[indices < n]), new_positions, source
        if self.output == "centroids":
            keep, new_positions, start = [], [], 0
            for code in np.unique(y):
                rows = np.flatnonzero(y == code)
                size = sampler.sampling_strategy_.get(code, len(rows))
                block = np.arange(start, start + size)
                if code in sampler.sampling_strategy_:
                    new_positions.append(block)
                else:
                    keep.append(rows)
                start += size
            assert start == n_out
            cat = (lambda parts: np.concatenate(parts) if parts else np.arange(0))
            return np.sort(cat(keep)), cat(new_positions), None
        raise AssertionError(self.output)

    def _seeds(self, sampler, y: np.ndarray, n_new: int) -> np.ndarray | None:
        """Source row of each appended row, from the seed trace (``None``: not traced)."""
        return self.tracer_.result(n_new)

    def _nearest(self, train: Dataset, X_real: np.ndarray, y: np.ndarray, X_new: np.ndarray,
                 y_new: np.ndarray) -> np.ndarray:
        """For each new row, the nearest training row of the same class in the sampler space."""
        source = np.empty(len(y_new), dtype=np.int64)
        metric = "hamming" if self.space == "categorical" else "euclidean"
        for code in np.unique(y_new):
            rows = np.flatnonzero(y == code)
            queries = np.flatnonzero(y_new == code)
            finder = NearestNeighbors(n_neighbors=1, metric=metric).fit(X_real[rows])
            source[queries] = rows[finder.kneighbors(X_new[queries], return_distance=False)[:, 0]]
        return source


# --- over-samplers ----------------------------------------------------------------------------------


class RandomOverSampler(ImbalancedLearnStrategy):
    """Duplicate random rows of the classes to grow (optionally with a smoothed bootstrap)."""

    title = "RandomOverSampler"
    summary = "Repeats randomly drawn rows of the smaller classes; with shrinkage, jitters their numeric features."
    sampler_class = over_sampling.RandomOverSampler
    exact_target = True
    needs_finite = False
    params = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "shrinkage": Optional(Float(0.0, None), help="Smoothed bootstrap: jitter new rows' numeric features by "
                                                      "this multiple of each feature's spread (None: exact copies)."),
    }

    def __init__(self, sampling_strategy="auto", shrinkage=None):
        self.sampling_strategy = sampling_strategy
        self.shrinkage = shrinkage

    def _reads_features(self):
        return self.shrinkage is not None


class SMOTE(ImbalancedLearnStrategy):
    """SMOTE, or SMOTENC automatically when the dataset has categorical features."""

    title = "SMOTE"
    summary = ("Interpolates new rows between a real row and a same-class neighbour (Chawla et al. 2002); "
               "uses SMOTENC when the data has categorical features.")
    exact_target = True
    neighbours = "k_neighbors"
    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY, "k_neighbors": _K_NEIGHBORS, "knn_backend": KNN_BACKEND}

    def __init__(self, sampling_strategy="auto", k_neighbors=5, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.knn_backend = knn_backend

    def _space_kind(self, train):
        return _smote_space(train)

    def _sampler(self, train, seed):
        return _smote(train, self.target_codes_, self.k_neighbors, seed, self)


def _smote(train: Dataset, sampling_strategy, k_neighbors: int, seed: int, owner: ImbalancedLearnStrategy):
    nominal = owner._space_columns(train)[1]
    copied = [c for c in train.schema.categorical if c not in nominal]
    if copied:
        owner.note(_("Categorical features with over {max_nominal_codes} codes ({copied}) are copied from each "
                     "new row's seed row, not resampled.").format(
                     max_nominal_codes=MAX_NOMINAL_CODES, copied=', '.join(copied)))
    if nominal:
        owner.note(_("SMOTENC used because the data has categorical features ({nominal}): each new row takes the "
                     "most frequent category among its neighbours.").format(nominal=', '.join(nominal)))
        first = len(train.schema.numeric)
        return owner.tracer_.traced(over_sampling.SMOTENC)(categorical_features=list(range(first, first + len(nominal))),
                                     sampling_strategy=sampling_strategy, random_state=seed,
                                     k_neighbors=owner._neighbours(k_neighbors, 1))
    return owner.tracer_.traced(over_sampling.SMOTE)(sampling_strategy=sampling_strategy, random_state=seed,
                                                    k_neighbors=owner._neighbours(k_neighbors, 1))


class SMOTENC(SMOTE):
    """SMOTE for mixed numeric and categorical features (imbalanced-learn's SMOTENC), chosen explicitly."""

    title = "SMOTENC"
    summary = ("SMOTE on numeric features with the most frequent neighbour category for categorical ones; "
               "needs categorical features.")
    space = "numeric+categorical"
    every_categorical = True

    #: Largest one-hot matrix (bytes) SMOTENC may build for the new rows before we refuse.
    max_onehot_bytes: ClassVar[float] = 4e9

    def _space_kind(self, train):
        return "numeric+categorical"

    def _check_space(self, train):
        super()._check_space(train)
        new_rows = int(self.class_counts_.max()) * train.schema.n_classes - len(train)
        codes = sum(train.schema.cardinality.get(c, 1) for c in train.schema.categorical)
        if new_rows * codes * 8 > self.max_onehot_bytes:
            raise InvalidParameterError(
                _("SMOTENC would one-hot encode {codes:,} category codes for up to {new_rows:,} new rows (about "
                  "{new_rows2:.0f} GB). Use SMOTE, which interpolates the numeric features and copies id-like "
                  "categories from the seed row, or fewer training rows.").format(
                  codes=codes, new_rows=new_rows, new_rows2=new_rows * codes * 8 / 1e9))


class SMOTEN(ImbalancedLearnStrategy):
    """SMOTE for categorical features only (value difference metric)."""

    title = "SMOTEN"
    summary = ("Makes new rows from categorical features only (most frequent category among neighbours); "
               "numeric and sequence columns come from the nearest real row.")
    exact_target = True
    neighbours = "k_neighbors"
    sampler_class = over_sampling.SMOTEN
    space = "categorical"
    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY, "k_neighbors": _K_NEIGHBORS}

    def __init__(self, sampling_strategy="auto", k_neighbors=5):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors


class BorderlineSMOTE(ImbalancedLearnStrategy):
    """SMOTE restricted to rows near the class border (Han et al. 2005)."""

    title = "BorderlineSMOTE"
    summary = "SMOTE seeded only from rows in danger (most of their neighbours belong to other classes)."
    sampler_class = over_sampling.BorderlineSMOTE
    traced = True
    neighbours = "k_neighbors"
    neighbour_arguments = {"k_neighbors": 1, "m_neighbors": 1}
    params = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": _K_NEIGHBORS,
        "m_neighbors": Int(1, None, help="Neighbours (any class) used to decide whether a row is in danger."),
        "kind": Choice({"borderline-1": "borderline-1: interpolate towards the same class",
                        "borderline-2": "borderline-2: also towards other classes"}, help="Variant."),
        "knn_backend": KNN_BACKEND,
    }

    def __init__(self, sampling_strategy="auto", k_neighbors=5, m_neighbors=10, kind="borderline-1",
                 knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.m_neighbors = m_neighbors
        self.kind = kind
        self.knn_backend = knn_backend

    def _check_more(self, train):
        _check_total(self, train, "m_neighbors")


class SVMSMOTE(ImbalancedLearnStrategy):
    """SMOTE seeded from an SVM's support vectors (Nguyen et al. 2011)."""

    title = "SVMSMOTE"
    summary = "Fits an SVM and interpolates around the minority support vectors (slow on large data)."
    seconds_per_row = 3e-4
    cost_exponent = 1.45
    sampler_class = over_sampling.SVMSMOTE
    traced = True
    neighbours = "k_neighbors"
    params = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": _K_NEIGHBORS,
        "m_neighbors": Int(1, None, help="Neighbours (any class) used to decide whether a support vector is in danger."),
        "out_step": Float(0.0, 1.0, help="Step size when extrapolating away from safe support vectors."),
        "knn_backend": KNN_BACKEND,
    }
    neighbour_arguments = {"k_neighbors": 1, "m_neighbors": 1}

    def __init__(self, sampling_strategy="auto", k_neighbors=5, m_neighbors=10, out_step=0.5, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.m_neighbors = m_neighbors
        self.out_step = out_step
        self.knn_backend = knn_backend

    def _check_more(self, train):
        _check_total(self, train, "m_neighbors")


class KMeansSMOTE(ImbalancedLearnStrategy):
    """Cluster with k-means, then SMOTE inside clusters where the class is dense (Douzas et al. 2018)."""

    title = "KMeansSMOTE"
    summary = "Clusters the rows, then applies SMOTE within clusters where the class to grow is common enough."
    sampler_class = over_sampling.KMeansSMOTE
    traced = True
    neighbours = "k_neighbors"
    params = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": _K_NEIGHBORS,
        "n_clusters": Int(1, None, help="Clusters of the mini-batch k-means step."),
        "cluster_balance_threshold": Union((
            Choice({"class_share": "class share: the smallest over-sampled class's share of all rows",
                    "auto": "auto (imbalanced-learn): half the class's share of the rows to generate"}),
            Float(0.0, 1.0, help="Share of a cluster the class must reach for the cluster to be used.")),
            help="Which clusters are dense enough in the class to be over-sampled."),
        "density_exponent": Union((
            Choice({"auto": "auto: from the number of features"}),
            Float(0.0, None, low_open=True, help="Exponent of the cluster density.")),
            help="Weights sparse clusters up when spreading new rows over clusters."),
        "knn_backend": KNN_BACKEND,
    }
    neighbour_arguments = {"k_neighbors": 1}

    def __init__(self, sampling_strategy="auto", k_neighbors=2, n_clusters=20, cluster_balance_threshold="class_share",
                 density_exponent="auto", knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.n_clusters = n_clusters
        self.cluster_balance_threshold = cluster_balance_threshold
        self.density_exponent = density_exponent
        self.knn_backend = knn_backend

    def _check_more(self, train):
        if self.n_clusters > len(train):
            raise InvalidParameterError(
                _("KMeansSMOTE: n_clusters={n_clusters} is more than the {n_train:,} training rows. Set "
                  "n_clusters to at most {n_train:,}.").format(
                  n_clusters=self.n_clusters, n_train=len(train)))

    def _sampler_arguments(self, train, seed):
        threshold = self.cluster_balance_threshold
        if threshold == "class_share":
            # Clusters where a class is at least as common as overall always exist (the cluster shares
            # average to the overall share), so this threshold never leaves a class without clusters.
            current = self.class_counts_
            grown = [code for code, n in self.resolved_target_.items() if n > 0]
            threshold = float(min(current[grown]) / len(train)) if grown else "auto"
        return {"kmeans_estimator": MiniBatchKMeans(n_clusters=self.n_clusters, random_state=seed, n_init=3),
                "cluster_balance_threshold": threshold}


class ADASYN(ImbalancedLearnStrategy):
    """Adaptive synthetic sampling: more new rows where the class is harder to learn (He et al. 2008)."""

    title = "ADASYN"
    summary = "Like SMOTE, but makes more rows around real rows whose neighbours mostly belong to other classes."
    sampler_class = over_sampling.ADASYN
    neighbours = "n_neighbors"
    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY,
              "n_neighbors": Int(1, None, help="Neighbours used to measure difficulty and to interpolate."),
              "knn_backend": KNN_BACKEND}

    def __init__(self, sampling_strategy="auto", n_neighbors=5, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.n_neighbors = n_neighbors
        self.knn_backend = knn_backend

    def _sampler_arguments(self, train, seed):
        self.records_: list[tuple[int, np.ndarray]] = []
        return {"n_neighbors": self._neighbours(self.n_neighbors, 1, recorder=self.records_)}

    def _seeds(self, sampler, y, n_new):
        # ADASYN makes rint(share x rows to make) rows from each real row, in row order, where a row's share is
        # its fraction of other-class neighbours (normalised over the class). The neighbour queries it made
        # on all rows were recorded; the shares follow from them as in imbalanced-learn, checked by count.
        k = self.n_neighbors
        queries = iter(nns for fitted, nns in self.records_ if fitted == len(y))
        seeds = []
        for code, n_samples in sampler.sampling_strategy_.items():
            if n_samples == 0:
                continue
            rows = np.flatnonzero(y == code)
            ratio = np.sum(y[next(queries)[:, 1:]] != code, axis=1) / k
            per_row = np.rint(ratio / ratio.sum() * n_samples).astype(int)
            seeds.append(np.repeat(rows, per_row))
        seeds = np.concatenate(seeds) if seeds else np.arange(0)
        return seeds if len(seeds) == n_new else None


# --- under-samplers ---------------------------------------------------------------------------------


class RandomUnderSampler(ImbalancedLearnStrategy):
    """Drop random rows of the classes to shrink."""

    title = "RandomUnderSampler"
    summary = "Keeps a random subset of the larger classes."
    sampler_class = under_sampling.RandomUnderSampler
    sampling_type = UNDER
    output = "indices"
    needs_finite = False
    exact_target = True
    params = {"sampling_strategy": UNDER_SAMPLING_STRATEGY,
              "replacement": Bool(help="Draw the kept rows with replacement (rows may repeat).")}

    def __init__(self, sampling_strategy="auto", replacement=False):
        self.sampling_strategy = sampling_strategy
        self.replacement = replacement

    def _reads_features(self):
        return False


class NearMiss(ImbalancedLearnStrategy):
    """Keep the rows of the larger classes that are closest to the smallest class (Mani & Zhang 2003)."""

    title = "NearMiss"
    summary = "Keeps the majority rows nearest to (v1, v3) or on average closest to (v2) the minority class."
    sampler_class = under_sampling.NearMiss
    sampling_type = UNDER
    output = "indices"
    params = {
        "sampling_strategy": UNDER_SAMPLING_STRATEGY,
        "version": Choice({1: "NearMiss-1: smallest mean distance to the nearest minority rows",
                           2: "NearMiss-2: smallest mean distance to the farthest minority rows",
                           3: "NearMiss-3: neighbours of every minority row"}, help="Selection rule."),
        "n_neighbors": Int(1, None, help="Minority rows each candidate is compared with."),
        "n_neighbors_ver3": Int(1, None, help="NearMiss-3 only: candidates kept around each minority row."),
        "knn_backend": KNN_BACKEND,
    }
    neighbour_arguments = {"n_neighbors": 0, "n_neighbors_ver3": 0}

    def __init__(self, sampling_strategy="auto", version=1, n_neighbors=3, n_neighbors_ver3=3, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.version = version
        self.n_neighbors = n_neighbors
        self.n_neighbors_ver3 = n_neighbors_ver3
        self.knn_backend = knn_backend

    def _check_more(self, train):
        current = self.class_counts_
        present = np.flatnonzero(current)
        minority = present[np.argmin(current[present])]
        if self.version != 2 and current[minority] < self.n_neighbors:
            name = train.schema.classes[minority]
            raise InvalidParameterError(
                _("NearMiss: the smallest class {name!r} has {current:,} training rows, fewer than "
                  "n_neighbors={n_neighbors}. Lower n_neighbors to at most {current}.").format(
                  name=name, current=int(current[minority]), n_neighbors=self.n_neighbors))
        if self.version == 3:
            for code in self._resolve_target():
                if current[code] < self.n_neighbors_ver3:
                    raise InvalidParameterError(
                        _("NearMiss: class {classes!r} has {current:,} rows, fewer than "
                          "n_neighbors_ver3={n_neighbors_ver3}. Lower n_neighbors_ver3.").format(
                          classes=train.schema.classes[code], current=int(current[code]),
                          n_neighbors_ver3=self.n_neighbors_ver3))


class ClusterCentroids(ImbalancedLearnStrategy):
    """Replace the rows of each class to shrink by k-means centroids (or the real rows nearest them)."""

    title = "ClusterCentroids"
    summary = ("Shrinks a class to k-means centroids of its rows (soft voting: new rows) or to the real rows "
               "nearest those centroids (hard voting).")
    sampling_type = UNDER
    output = "centroids"
    sampler_class = under_sampling.ClusterCentroids
    exact_target = True
    params = {"sampling_strategy": UNDER_SAMPLING_STRATEGY,
              "voting": Choice({"soft": "soft: the centroids themselves (new rows)",
                                "hard": "hard: the real row nearest each centroid"}, help="What replaces a class.")}

    def __init__(self, sampling_strategy="auto", voting="soft"):
        self.sampling_strategy = sampling_strategy
        self.voting = voting

    def _sampler_arguments(self, train, seed):
        return {"estimator": KMeans(n_init=1, random_state=seed)}

    def _apply(self, train, seed):
        dataset, source_rows = super()._apply(train, seed)
        if self.voting == "hard":
            # Hard voting returns real rows; the nearest same-class row found for each of them is that row
            # itself (distance 0), so the output is exactly those input rows, flags included.
            frame = train.frame.take(source_rows).reset_index(drop=True)
            self.note(_("Hard voting keeps the real row nearest each centroid, so no rows are marked synthetic."))
            dataset = replace(dataset, frame=frame)
        return dataset, source_rows


# --- cleaning ---------------------------------------------------------------------------------------


class TomekLinks(ImbalancedLearnStrategy):
    """Remove rows that form Tomek links (mutual nearest neighbours of different classes)."""

    title = "TomekLinks"
    summary = "Removes rows of the cleaned classes that are each other's nearest neighbour across classes."
    sampler_class = under_sampling.TomekLinks
    sampling_type = CLEAN
    output = "indices"
    params = {"sampling_strategy": CLEANING_STRATEGY, "knn_backend": KNN_BACKEND}

    def __init__(self, sampling_strategy="auto", knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.knn_backend = knn_backend

    def _sampler(self, train, seed):
        return _tomek(self, self.target_codes_)


class EditedNearestNeighbours(ImbalancedLearnStrategy):
    """Remove rows whose neighbours disagree with their class (Wilson 1972)."""

    title = "EditedNearestNeighbours"
    summary = "Removes rows of the cleaned classes whose nearest neighbours mostly (or partly) belong elsewhere."
    sampler_class = under_sampling.EditedNearestNeighbours
    sampling_type = CLEAN
    output = "indices"
    params = {
        "sampling_strategy": CLEANING_STRATEGY,
        "n_neighbors": Int(1, None, help="Neighbours that vote on each row."),
        "kind_sel": Choice({"all": "all: remove unless every neighbour agrees",
                            "mode": "mode: remove unless most neighbours agree"}, help="Removal rule."),
        "knn_backend": KNN_BACKEND,
    }
    neighbour_arguments = {"n_neighbors": 1}

    def __init__(self, sampling_strategy="auto", n_neighbors=3, kind_sel="all", knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.n_neighbors = n_neighbors
        self.kind_sel = kind_sel
        self.knn_backend = knn_backend

    def _check_more(self, train):
        _check_total(self, train, "n_neighbors")


# --- combined ---------------------------------------------------------------------------------------


class SMOTEENN(ImbalancedLearnStrategy):
    """SMOTE (SMOTENC with categorical features), then Edited Nearest Neighbours over all classes."""

    title = "SMOTEENN"
    summary = "Over-samples with SMOTE, then removes rows (real or new) that their neighbours disagree with."
    seconds_per_row = 4e-4             # the cleaning step searches neighbours among all over-sampled rows
    cost_exponent = 1.75
    # a KD-tree (auto's choice on large searches): 0.28 CPU s at 10,000 rows, 1.53 s at 57,676
    backend_costs = {"auto": (2.8e-5, 1.1), "kdtree": (2.8e-5, 1.1)}
    sampling_type = OVER
    output = "combined"
    neighbours = "k_neighbors"
    params = {
        "sampling_strategy": OVER_SAMPLING_STRATEGY,
        "k_neighbors": _K_NEIGHBORS,
        "enn_n_neighbors": Int(1, None, help="Neighbours that vote on each row in the cleaning step."),
        "knn_backend": KNN_BACKEND,
    }

    def __init__(self, sampling_strategy="auto", k_neighbors=5, enn_n_neighbors=3, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.enn_n_neighbors = enn_n_neighbors
        self.knn_backend = knn_backend

    def _space_kind(self, train):
        return _smote_space(train)

    def _sampler(self, train, seed):
        enn = under_sampling.EditedNearestNeighbours(sampling_strategy="all",
                                                     n_neighbors=self._neighbours(self.enn_n_neighbors, 1))
        return combine.SMOTEENN(smote=_smote(train, self.target_codes_, self.k_neighbors, seed, self), enn=enn,
                                random_state=seed)


class SMOTETomek(ImbalancedLearnStrategy):
    """SMOTE (SMOTENC with categorical features), then removal of Tomek links over all classes."""

    title = "SMOTETomek"
    summary = "Over-samples with SMOTE, then removes Tomek-link pairs (real or new rows)."
    seconds_per_row = 4e-4
    cost_exponent = 1.75
    # a KD-tree (auto's choice on large searches): 0.15 CPU s at 10,000 rows, 1.15 s at 57,676
    backend_costs = {"auto": (1.5e-5, 1.15), "kdtree": (1.5e-5, 1.15)}
    sampling_type = OVER
    output = "combined"
    neighbours = "k_neighbors"
    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY, "k_neighbors": _K_NEIGHBORS, "knn_backend": KNN_BACKEND}

    def __init__(self, sampling_strategy="auto", k_neighbors=5, knn_backend="auto"):
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.knn_backend = knn_backend

    def _space_kind(self, train):
        return _smote_space(train)

    def _sampler(self, train, seed):
        return combine.SMOTETomek(smote=_smote(train, self.target_codes_, self.k_neighbors, seed, self),
                                  tomek=_tomek(self, "all"), random_state=seed)


def _tomek(owner: ImbalancedLearnStrategy, sampling_strategy):
    """imbalanced-learn's TomekLinks, or on another backend the same rule with that backend's query."""
    if owner.knn_backend == "sklearn":
        return under_sampling.TomekLinks(sampling_strategy=sampling_strategy)
    return _TomekLinks(sampling_strategy=sampling_strategy, n_neighbors=Neighbours(n_neighbors=2, backend=owner.knn_backend))


def _check_total(strategy: Strategy, train: Dataset, param: str) -> None:
    k = getattr(strategy, param)
    if k + 1 > len(train):
        raise InvalidParameterError(
            _("{title}: {param}={k} needs more than {k} training rows, but there are {n_train:,}. Lower {param} "
              "to at most {n_train2}.").format(
              title=strategy.title, param=param, k=k, n_train=len(train), n_train2=len(train) - 1))


__all__ = [name for name, value in dict(globals()).items()
           if isinstance(value, type) and issubclass(value, ImbalancedLearnStrategy)]
