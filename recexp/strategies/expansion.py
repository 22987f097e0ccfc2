"""Sample expansion: new training rows made by perturbing real ones.

Every expansion strategy adds, for each class, a number of new rows set by ``factor``: a number
``f`` adds ``round(f x rows of the class)`` to every class (``1.0`` doubles each class), ``"balance"``
adds to every class what it lacks to reach the largest class, and per-class factors
(``{"buy": 3.0}``) expand only the classes named. Each new row starts as a copy of one real row of its
class (the *seed*; seeds are used as evenly as possible: every real row once per whole multiple, then
a random subset), keeps the seed's label, meta columns (``user_id``, ``event_time``) and
``sample_weight``, and changes only the columns its method perturbs:

* :class:`GaussianNoise`: numeric features, plus Gaussian noise scaled to each feature's standard
  deviation over the training rows;
* :class:`FeatureMasking`: each numeric or categorical feature is masked with probability ``rate``;
* :class:`Mixup`: numeric features become ``lam x seed + (1 - lam) x partner`` with ``lam`` drawn from
  Beta(alpha, alpha) and folded to ``lam >= 0.5``. **Label rule**: mixup's soft label would be
  ``lam x seed label + (1 - lam) x partner label``; recexp keeps hard labels, so the new row takes the
  label of its dominant row, the seed (exact when ``partner="same_class"``, the default). Categorical,
  sequence and meta columns also come from the seed.
* :class:`SequenceCrop`, :class:`SequenceMask`, :class:`SequenceReorder` (CL4SRec, Xie et al. 2022):
  the behaviour-sequence groups, changed at the same event positions in every group (item, category,
  behaviour) so that each event stays aligned; only sequence columns change. Histories are most
  recent first with ``0`` as padding; a masked event becomes ``0`` (missing), as the schema reserves
  no separate mask code. Seeds are drawn from rows with at least two past events where the class has
  any.

:meth:`Expansion.perturb` applies the same operators to rows without adding any (test-time
augmentation, :mod:`recexp.tta`): every operator except mixup, which needs the row's label.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.params import Bool, Choice, Float, Mapping, Union
from recexp.strategies.base import Strategy, assemble, check_new_rows, class_codes, rows_by_class

FACTOR = Union((
    Float(0.0, 100.0, help="New rows per real row, in every class (1.0 doubles each class)."),
    Choice({"balance": "balance: fill every class up to the largest"}),
    Mapping(Float(0.0, 100.0), help="New rows per real row for the classes named; the others get none."),
), help="How many new rows to make per class.")


class Expansion(Strategy):
    """Shared flow: decide rows per class, draw seed rows, perturb copies (``_transform``)."""

    family = "expansion"
    exact_target = True

    #: Whether :meth:`perturb` may score evaluated rows with this operator (test-time augmentation): it
    #: must not look at the row's label or at other rows (mixup does both).
    test_time: ClassVar[bool] = True

    def _check_feasible(self, train: Dataset) -> None:
        self.check_columns(train)
        self.plan_ = self._plan(train)

    def check_columns(self, data: Dataset) -> None:
        """Raise :class:`InvalidParameterError` when ``data`` lacks the columns this operator perturbs."""

    def perturb(self, rows: Dataset, rng: np.random.Generator, reference: Dataset | None = None
                ) -> dict[str, np.ndarray]:
        """One perturbed copy of every row of ``rows``: the new values of the columns the operator changes.

        Test-time augmentation uses it on evaluated rows: nothing is added, labels are not read, and the
        statistics the operator needs (a feature's spread, range or median) come from ``reference`` (the
        training rows; default ``rows`` itself).

        Parameters
        ----------
        rows : Dataset
            Rows to perturb (e.g. the test split).
        rng : numpy.random.Generator
            Seeds every random choice.
        reference : Dataset, optional
            Rows the per-feature statistics are taken from.

        Raises
        ------
        InvalidParameterError
            A parameter is outside its spec, the operator needs labels or partner rows (mixup), or
            ``rows`` lack the columns it perturbs.
        """
        self.validate_params()
        if not self.test_time:
            raise InvalidParameterError(
                _("{title} blends each row with another row of its class, so it cannot augment rows whose label "
                  "is unknown at scoring time. Choose Gaussian noise, feature masking "
                  "or a sequence operator.").format(title=self.title))
        self.check_columns(rows)
        if len(rows) == 0:
            return {}
        return self._transform(rows, np.arange(len(rows)), rng, reference)

    def _plan(self, train: Dataset) -> np.ndarray:
        """New rows per class code."""
        current = self.class_counts_
        factor = self.factor
        if factor == "balance":
            wanted = current.max() - current
            wanted[current == 0] = 0
        elif isinstance(factor, dict):
            codes = class_codes(factor, train.schema.classes, self.title, "factor")
            wanted = np.zeros_like(current)
            for code, f in codes.items():
                wanted[code] = int(round(f * current[code]))
        else:
            wanted = np.rint(factor * current).astype(np.int64)
        check_new_rows(self.title, int(wanted.sum()), "factor")
        self.target_ = {name: int(c + w) for name, c, w in zip(train.schema.classes, current, wanted) if w > 0}
        empty = [train.schema.classes[c] for c in np.flatnonzero((current == 0))
                 if isinstance(factor, dict) and factor.get(train.schema.classes[c], 0) > 0]
        if empty:
            self.note(_("No rows to expand for {empty}: the class has no training "
                        "rows.").format(empty=', '.join(empty)))
        return wanted

    def _eligible(self, train: Dataset) -> np.ndarray | None:
        """Rows that make useful seeds (``None``: all)."""
        return None

    def _seeds(self, train: Dataset, rng: np.random.Generator) -> np.ndarray:
        eligible = self._eligible(train)
        seeds = []
        for code, rows in enumerate(rows_by_class(train.y, train.schema.n_classes)):
            n_new = int(self.plan_[code])
            if n_new == 0 or len(rows) == 0:
                continue
            if eligible is not None:
                useful = rows[eligible[rows]]
                if len(useful):
                    rows = useful
                else:
                    self.note(_("Class {classes!r} has no row with at least two past events; its new rows are "
                                "unchanged copies.").format(classes=train.schema.classes[code]))
            whole, rest = divmod(n_new, len(rows))
            seeds.append(np.concatenate([np.tile(rows, whole), rng.choice(rows, rest, replace=False)]))
        return np.concatenate(seeds) if seeds else np.arange(0)

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        rng = np.random.default_rng(seed)
        seeds = self._seeds(train, rng)
        values = self._transform(train, seeds, rng, None) if len(seeds) else {}
        return assemble(train, None, seeds, values)

    def _transform(self, train: Dataset, seeds: np.ndarray, rng: np.random.Generator,
                   reference: Dataset | None) -> dict[str, np.ndarray]:
        """New values of the perturbed columns for the copies of ``seeds``; statistics from ``reference``
        (``None``: ``train``)."""
        raise NotImplementedError


def _numeric(train: Dataset, rows: np.ndarray | None = None) -> np.ndarray:
    columns = list(train.schema.numeric)
    frame = train.frame if rows is None else train.frame.iloc[rows]
    return frame.loc[:, columns].to_numpy(dtype=np.float64, na_value=np.nan)


def _require(strategy: Strategy, train: Dataset, what: str) -> None:
    schema = train.schema
    ok = {"numeric": bool(schema.numeric), "features": bool(schema.numeric or schema.categorical),
          "sequences": bool(schema.sequences)}[what]
    if not ok:
        needs = {"numeric": "numeric features", "features": "numeric or categorical features",
                 "sequences": "behaviour-sequence features"}[what]
        raise InvalidParameterError(
            _("{title} perturbs {needs}, but this dataset has none (e.g. a feature table without a behaviour "
              "history). Choose another strategy or a task that builds "
              "them.").format(title=strategy.title, needs=needs))


class GaussianNoise(Expansion):
    """Copies of real rows with Gaussian noise on their numeric features."""

    title = "Gaussian noise"
    summary = "Copies real rows and adds Gaussian noise to numeric features, scaled to each feature's spread."
    params = {
        "factor": FACTOR,
        "scale": Float(0.0, 10.0, help="Noise standard deviation as a multiple of each feature's standard "
                                        "deviation over the training rows."),
        "clip": Bool(help="Keep each noisy value within the feature's observed training range."),
    }

    def __init__(self, factor=1.0, scale=0.1, clip=True):
        self.factor = factor
        self.scale = scale
        self.clip = clip

    def check_columns(self, data):
        _require(self, data, "numeric")

    def _transform(self, train, seeds, rng, reference):
        everything = _numeric(train)
        statistics = everything if reference is None else _numeric(reference)
        spread = np.nan_to_num(np.nanstd(statistics, axis=0))
        values = everything[seeds] + rng.standard_normal((len(seeds), everything.shape[1])) * (self.scale * spread)
        if self.clip:
            values = np.clip(values, np.nanmin(statistics, axis=0), np.nanmax(statistics, axis=0))
        return {name: values[:, j] for j, name in enumerate(train.schema.numeric)}


class FeatureMasking(Expansion):
    """Copies of real rows with random features masked (feature dropout)."""

    title = "Feature masking"
    summary = "Copies real rows and masks each numeric or categorical feature with a given probability."
    params = {
        "factor": FACTOR,
        "rate": Float(0.0, 1.0, help="Probability that each feature of a new row is masked."),
        "fill": Choice({"median": "median: numeric -> training median, categorical -> 0 (missing)",
                        "missing": "missing: numeric -> NaN, categorical -> 0",
                        "zero": "zero: numeric -> 0, categorical -> 0"}, help="What a masked feature becomes."),
    }

    def __init__(self, factor=1.0, rate=0.15, fill="median"):
        self.factor = factor
        self.rate = rate
        self.fill = fill

    def check_columns(self, data):
        _require(self, data, "features")

    def _transform(self, train, seeds, rng, reference):
        schema = train.schema
        values: dict[str, Any] = {}
        if schema.numeric:
            everything = _numeric(train)
            numeric = everything[seeds]
            mask = rng.random(numeric.shape) < self.rate
            if self.fill == "median":
                statistics = everything if reference is None else _numeric(reference)
                fill = np.nan_to_num(np.nanmedian(statistics, axis=0)) if np.isfinite(statistics).any() \
                    else np.zeros(everything.shape[1])
            else:
                fill = np.full(everything.shape[1], np.nan if self.fill == "missing" else 0.0)
            numeric = np.where(mask, fill, numeric)
            values.update({name: numeric[:, j] for j, name in enumerate(schema.numeric)})
        if schema.categorical:
            codes = train.frame.loc[:, list(schema.categorical)].to_numpy(dtype=np.int64)[seeds]
            codes = np.where(rng.random(codes.shape) < self.rate, 0, codes)
            values.update({name: codes[:, j] for j, name in enumerate(schema.categorical)})
        return values


class Mixup(Expansion):
    """Convex combinations of two real rows' numeric features (Zhang et al. 2018), hard-label rule."""

    title = "Mixup"
    summary = ("Blends the numeric features of a real row with a partner row; the new row keeps the label "
               "of the dominant (seed) row.")
    params = {
        "factor": FACTOR,
        "alpha": Float(0.0, None, low_open=True, log=True, help="Beta(alpha, alpha) draws the mixing weight; small "
                                                       "values keep new rows close to their seed."),
        "partner": Choice({"same_class": "same class: partner from the seed's class (label exact)",
                           "any_class": "any class: partner from any row (label of the dominant seed)"},
                          help="Where the partner row comes from."),
    }

    test_time = False

    def __init__(self, factor=1.0, alpha=0.4, partner="same_class"):
        self.factor = factor
        self.alpha = alpha
        self.partner = partner

    def check_columns(self, data):
        _require(self, data, "numeric")

    def _transform(self, train, seeds, rng, reference):
        everything = _numeric(train)
        if self.partner == "same_class":
            by_class = rows_by_class(train.y, train.schema.n_classes)
            partners = np.empty_like(seeds)
            seed_class = train.y[seeds]
            for code in np.unique(seed_class):
                where = np.flatnonzero(seed_class == code)
                partners[where] = rng.choice(by_class[code], len(where))
        else:
            partners = rng.integers(0, len(train), len(seeds))
        lam = rng.beta(self.alpha, self.alpha, len(seeds))
        lam = np.maximum(lam, 1.0 - lam)[:, None]
        own, other = everything[seeds], everything[partners]
        other = np.where(np.isnan(other), own, other)          # a missing partner value leaves the seed's
        mixed = lam * own + (1.0 - lam) * other
        return {name: mixed[:, j] for j, name in enumerate(train.schema.numeric)}


class SequenceAugmentation(Expansion):
    """Shared part of the CL4SRec operators: the (rows, groups, positions) history array."""

    operator: ClassVar[str] = ""
    task_kinds = ("classification", "ranking")       # a next-item history is a behaviour sequence too

    def check_columns(self, data):
        _require(self, data, "sequences")
        lengths = {len(cols) for cols in data.schema.sequences.values()}
        if len(lengths) != 1:
            raise InvalidParameterError(
                _("{title} needs every behaviour-sequence group to have the same length, but they have "
                  "{lengths}. Rebuild the dataset with one "
                  "history length.").format(title=self.title, lengths=sorted(lengths)))

    def _history(self, train: Dataset, rows: np.ndarray | None = None) -> np.ndarray:
        frame = train.frame if rows is None else train.frame.iloc[rows]
        return np.stack([frame.loc[:, list(cols)].to_numpy(dtype=np.int64)
                         for cols in train.schema.sequences.values()], axis=1)

    def _eligible(self, train):
        return history_lengths(self._history(train)) >= 2

    def _transform(self, train, seeds, rng, reference):
        history = self._history(train, seeds)
        changed = self._operate(history, history_lengths(history), rng)
        values = {}
        for g, cols in enumerate(train.schema.sequences.values()):
            values.update({name: changed[:, g, j] for j, name in enumerate(cols)})
        return values

    def _operate(self, history: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def history_lengths(history: np.ndarray) -> np.ndarray:
    """Events in each row's history: one past the last position where any group is non-zero."""
    used = (history != 0).any(axis=1)                       # (rows, positions)
    last = history.shape[2] - np.argmax(used[:, ::-1], axis=1)
    return np.where(used.any(axis=1), last, 0)


class SequenceCrop(SequenceAugmentation):
    """CL4SRec item crop: keep a random contiguous part of the history."""

    title = "Sequence crop"
    summary = "Copies real rows and keeps a random contiguous window of their behaviour history (CL4SRec crop)."
    params = {"factor": FACTOR,
              "ratio": Float(0.0, 1.0, low_open=True, help="Share of the history's events the window keeps (eta).")}

    def __init__(self, factor=1.0, ratio=0.6):
        self.factor = factor
        self.ratio = ratio

    def _operate(self, history, lengths, rng):
        size = history.shape[2]
        keep = np.maximum(1, np.floor(self.ratio * lengths)).astype(np.int64)
        keep = np.minimum(keep, np.maximum(lengths, 1))
        start = np.floor(rng.random(len(lengths)) * (np.maximum(lengths, 1) - keep + 1)).astype(np.int64)
        positions = np.arange(size)[None, :]
        source = np.minimum(start[:, None] + positions, size - 1)
        cropped = np.take_along_axis(history, np.repeat(source[:, None, :], history.shape[1], axis=1), axis=2)
        return np.where((positions < keep[:, None])[:, None, :], cropped, 0)


class SequenceMask(SequenceAugmentation):
    """CL4SRec item mask: hide a random share of the history's events."""

    title = "Sequence mask"
    summary = "Copies real rows and masks a random share of the events in their behaviour history (CL4SRec mask)."
    params = {"factor": FACTOR,
              "ratio": Float(0.0, 1.0, low_open=True, help="Share of the history's events that are masked (gamma).")}

    def __init__(self, factor=1.0, ratio=0.3):
        self.factor = factor
        self.ratio = ratio

    def _operate(self, history, lengths, rng):
        size = history.shape[2]
        count = np.minimum(np.maximum(1, np.floor(self.ratio * lengths)), lengths).astype(np.int64)
        keys = rng.random((len(lengths), size))
        keys[np.arange(size)[None, :] >= lengths[:, None]] = np.inf
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        masked = rank < count[:, None]
        return np.where(masked[:, None, :], 0, history)


class SequenceReorder(SequenceAugmentation):
    """CL4SRec item reorder: shuffle a random contiguous part of the history."""

    title = "Sequence reorder"
    summary = "Copies real rows and shuffles a random window of their behaviour history (CL4SRec reorder)."
    params = {"factor": FACTOR,
              "ratio": Float(0.0, 1.0, low_open=True, help="Share of the history's events in the shuffled window (beta).")}

    def __init__(self, factor=1.0, ratio=0.3):
        self.factor = factor
        self.ratio = ratio

    def _operate(self, history, lengths, rng):
        size = history.shape[2]
        window = np.minimum(np.maximum(2, np.floor(self.ratio * lengths)), lengths).astype(np.int64)
        start = np.floor(rng.random(len(lengths)) * (lengths - window + 1)).astype(np.int64)
        positions = np.arange(size)[None, :].astype(np.float64)
        inside = (positions >= start[:, None]) & (positions < (start + window)[:, None])
        keys = np.where(inside, start[:, None] + rng.random((len(lengths), size)) * window[:, None], positions)
        order = np.argsort(keys, axis=1, kind="stable")
        return np.take_along_axis(history, np.repeat(order[:, None, :], history.shape[1], axis=1), axis=2)
