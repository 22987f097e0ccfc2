"""The generator family: fit a model of the training rows, then sample new rows, class by class.

Every generator models the schema's numeric and categorical features jointly with the label and
samples **class-conditionally by construction** (the class is an input of the model, never a filter
on its output), so filling a rare class costs the same as filling a common one.

Behaviour-sequence columns are not modelled. A synthetic row takes the sequence columns of the real
training row of the same class that is nearest to it in the standardised numeric features (missing
values read as the column mean); without numeric features, of a random real row of the same class.
The sequences are therefore real histories, re-attached to synthetic feature vectors; that row is
the generated row's *source* (``sample(..., return_sources=True)``), from which a strategy also copies
meta columns such as ``user_id``.

Example
-------
>>> from recexp.synthesis import GENERATORS
>>> gen = GENERATORS["gaussian_copula"](random_state=0).fit(train.frame, train.schema)   # doctest: +SKIP
>>> gen.sample(conditions={"buy": 500})["label"].value_counts()                           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import KDTree

from recexp.dataset import IS_SYNTHETIC, LABEL, FeatureSchema
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import _
from recexp.models.device import DEVICE_CHOICES, resolve_device
from recexp.params import Choice, Float, Int, Optional, Parametrized
from recexp.synthesis.privacy import (ID_COLUMNS, PrivateTraining, fresh_salt, hashed_ids, id_floor, integer_ids,
                                      new_ids, refuse_privacy)
from recexp.synthesis.quality import quality_score
from recexp.synthesis.transformer import DataTransformer

#: ``progress(epoch, metrics)`` after every epoch, like the model trainer's callback.
Progress = Callable[[int, dict[str, float]], None]

#: Real rows (at most) that the quality score during training compares with.
EVAL_ROWS = 2000
#: Generated candidates per row in the base rule of :meth:`Generator.conditional_sample`.
CANDIDATES = 32
#: Rows generated and decoded at a time.
SAMPLE_CHUNK = 8192


class Generator(Parametrized):
    """Base of every generator: ``fit(frame, schema)`` then ``sample(n, conditions)``.

    Subclasses set ``name`` and ``description``, declare ``params``, write ``__init__`` (storing the
    arguments only), ``_fit(frame, schema, progress)`` and ``_sample(labels) -> DataFrame`` (numeric
    and categorical feature columns for the given label codes, in that order).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Whether the generator can train with differential privacy (``epsilon``; neural generators).
    private_training: ClassVar[bool] = False
    params = {
        "ids": Choice({"new": "new: a fresh id for every generated row",
                       "hash": "hash: salted hashes of the source rows' ids"}, search=False,
                      help="User and item ids of generated rows; never the real ids."),
        "random_state": Optional(Int(0, None), help="Seed of every random draw; None: a fresh one each fit."),
    }

    @classmethod
    def from_strings(cls, pairs: dict[str, str], **fixed: Any) -> Generator:
        """:meth:`Parametrized.from_strings`, with a sentence for DP parameters given to a generator that
        cannot train privately."""
        if not cls.private_training:
            refuse_privacy(cls.__name__, {**pairs, **fixed})
        return super().from_strings(pairs, **fixed)

    # --- public API ---------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, schema: FeatureSchema, progress: Progress | None = None) -> Generator:
        """Validate the parameters and the data, then learn the joint distribution of the rows.

        Parameters
        ----------
        frame : DataFrame
            Training rows with the schema's feature columns and ``label``; rows flagged
            ``is_synthetic`` are ignored.
        schema : FeatureSchema
            Numeric, categorical and sequence columns and the class names.
        progress : callable, optional
            ``progress(epoch, metrics)`` after every training epoch (neural generators).

        Returns
        -------
        self
        """
        self.validate_params()
        self._fit_ids(frame)
        frame, self.real_positions_ = self._check_frame(frame, schema)
        self.schema_ = schema
        labels = frame[LABEL].to_numpy(np.int64)
        self.class_counts_ = np.bincount(labels, minlength=schema.n_classes)
        seeds = np.random.SeedSequence(self.random_state).spawn(3)
        self.fit_rng_ = np.random.default_rng(seeds[0])
        self.rng_ = np.random.default_rng(seeds[1])
        self.torch_seed_ = int(seeds[2].generate_state(1, dtype=np.uint64)[0] >> 1)
        self._fit_neighbours(frame, schema)
        model_frame = frame.loc[:, list(schema.numeric) + list(schema.categorical) + [LABEL]].reset_index(drop=True)
        self._fit(model_frame, schema, progress)
        return self

    def sample(self, n: int | None = None, conditions: dict[str, int] | None = None, *,
               return_sources: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
        """Generate rows.

        Parameters
        ----------
        n : int, optional
            Rows to generate with the training class mix (classes drawn multinomially). May be
            omitted when ``conditions`` is given; if both are given ``n`` must equal their sum.
        conditions : dict, optional
            Class name -> number of rows of that class. Generation is conditioned on the class.
        return_sources : bool
            Also return, for every generated row, the position (in the frame given to ``fit``) of
            the real row of its class that its sequence columns come from (see the module docstring).

        Returns
        -------
        DataFrame or (DataFrame, ndarray)
            The schema's feature columns (numeric ``float32``, categorical and sequence ``int64``)
            and ``label`` (``int64``), rows grouped by class.
        """
        if not hasattr(self, "schema_"):
            raise InvalidParameterError(_("{name} is not fitted yet. Call "
                                          "fit(frame, schema) first.").format(name=type(self).__name__))
        labels = self._labels(n, conditions)
        if len(labels):
            generated = self._sample(labels).reset_index(drop=True)
        else:
            generated = pd.DataFrame({c: np.zeros(0) for c in self.schema_.numeric + self.schema_.categorical})
        frame, sources = self._finish(generated, labels)
        return (frame, sources) if return_sources else frame

    def synthetic_ids(self, sources: np.ndarray) -> dict[str, np.ndarray]:
        """User and item ids for generated rows whose source rows are ``sources`` (from
        ``sample(..., return_sources=True)``), by the ``ids`` policy: never the real ids.

        Returns a dict from each id column the training frame had (``user_id``, ``item_id``) to one id per
        row: ``synthetic-user-<k>`` (integer ids: counted down from below the real ones) numbered on across
        calls (``ids="new"``), or the salted hash of the source row's id (``ids="hash"``; see
        :mod:`recexp.synthesis.privacy`).
        """
        sources = np.asarray(sources, dtype=np.int64)
        if self.ids == "hash":
            return {c: hashes[sources] for c, hashes in self.hashed_ids_.items()}
        start, self.ids_issued_ = self.ids_issued_, self.ids_issued_ + len(sources)
        return {c: new_ids(c, start, len(sources), self.id_floors_.get(c)) for c in self.id_columns_}

    def conditional_sample(self, frame: pd.DataFrame, missing: pd.DataFrame) -> pd.DataFrame:
        """Draw the cells flagged in ``missing`` given each row's other cells and its class.

        The base rule, for generators without a closed-form conditional: generate ``CANDIDATES``
        rows of the row's class (class-conditional generation) and take the flagged cells from the
        candidate closest to the row on its unflagged cells (the DCR distance of
        :mod:`recexp.synthesis.quality`), among candidates whose flagged cells are not missing
        themselves. This is a nearest-match approximation of sampling from the conditional.

        Parameters
        ----------
        frame : DataFrame
            Rows with the schema's numeric and categorical columns and ``label``.
        missing : DataFrame of bool
            True where a cell must be drawn (over the numeric and categorical columns).

        Returns
        -------
        DataFrame
            The numeric and categorical columns of ``frame`` with the flagged cells drawn.
        """
        schema = self.schema_
        columns = list(schema.numeric) + list(schema.categorical)
        out = frame[columns].copy()
        flags = missing[columns].to_numpy(dtype=bool)
        rows = np.flatnonzero(flags.any(axis=1))
        if len(rows) == 0:
            return out
        real_num = frame[list(schema.numeric)].to_numpy(np.float64, na_value=np.nan)
        ranges = np.array([np.nanmax(c) - np.nanmin(c) if not np.isnan(c).all() else 0.0 for c in real_num.T])
        ranges = np.where(ranges > 0, ranges, 1.0)
        step = max(1, SAMPLE_CHUNK // CANDIDATES)
        for start in range(0, len(rows), step):
            self._fill_from_candidates(frame, out, flags, rows[start:start + step], columns, ranges)
        return out

    def _fill_from_candidates(self, frame: pd.DataFrame, out: pd.DataFrame, flags: np.ndarray, rows: np.ndarray,
                              columns: list[str], ranges: np.ndarray) -> None:
        """The base rule of :meth:`conditional_sample` for one block of rows (writes into ``out``)."""
        schema = self.schema_
        k = CANDIDATES
        labels = frame[LABEL].to_numpy(np.int64)[rows]
        candidates = self._sample(np.repeat(labels, k)).reset_index(drop=True)
        is_cat = np.array([False] * len(schema.numeric) + [True] * len(schema.categorical))
        have = frame[columns].iloc[rows]
        distance = np.zeros((len(rows), k))
        bad = np.zeros((len(rows), k), dtype=bool)
        for j, (c, cat) in enumerate(zip(columns, is_cat)):
            cand = candidates[c].to_numpy(np.float64, na_value=np.nan).reshape(len(rows), k)
            mine = have[c].to_numpy(np.float64, na_value=np.nan)[:, None]
            cand_missing = (cand == 0) if cat else np.isnan(cand)
            bad |= flags[rows, j][:, None] & cand_missing
            if cat:
                d = (cand != mine).astype(np.float64)
            else:
                d = np.minimum(np.abs(cand - mine) / ranges[j], 1.0)
                d = np.where(np.isnan(cand) | np.isnan(mine), (np.isnan(cand) ^ np.isnan(mine)).astype(float), d)
            distance += np.where(flags[rows, j][:, None], 0.0, d)
        distance = np.where(bad, np.inf, distance)
        best = np.argmin(distance, axis=1)
        chosen = best + np.arange(len(rows)) * k
        usable = np.isfinite(distance[np.arange(len(rows)), best])
        for j, c in enumerate(columns):
            target = flags[rows, j] & usable
            if target.any():
                values = candidates[c].to_numpy()[chosen[target]]
                out.iloc[rows[target], j] = values.astype(out.dtypes.iloc[j])

    # --- hooks --------------------------------------------------------------------------------
    def _fit(self, frame: pd.DataFrame, schema: FeatureSchema, progress: Progress | None) -> None:
        raise NotImplementedError

    def _sample(self, labels: np.ndarray) -> pd.DataFrame:
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------------------------
    def _fit_ids(self, frame: pd.DataFrame) -> None:
        """Which id columns the rows have and, for ``ids="hash"``, their salted hashes (the salt is not kept)."""
        self.id_columns_ = [c for c in ID_COLUMNS if isinstance(frame, pd.DataFrame) and c in frame.columns]
        self.ids_issued_ = 0
        self.id_floors_ = {c: id_floor(frame[c]) for c in self.id_columns_ if integer_ids(frame[c])}
        self.hashed_ids_ = {}
        if self.ids == "hash":
            salt = fresh_salt()
            self.hashed_ids_ = {c: hashed_ids(frame[c], salt) for c in self.id_columns_}

    @staticmethod
    def _check_frame(frame: pd.DataFrame, schema: FeatureSchema) -> tuple[pd.DataFrame, np.ndarray]:
        if not isinstance(frame, pd.DataFrame):
            raise InvalidDataError(_("fit expects a pandas DataFrame, but got "
                                     "{name}. Pass a Dataset's frame.").format(name=type(frame).__name__))
        needed = list(schema.feature_columns) + [LABEL]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InvalidDataError(
                _("The training frame lacks the column(s) {missing}{value} named by the schema. Build it with "
                  "recexp.tasks.").format(
                  missing=', '.join(missing[:5]), value=' ...' if len(missing) > 5 else ''))
        positions = np.arange(len(frame))
        if IS_SYNTHETIC in frame.columns:
            positions = np.flatnonzero(~frame[IS_SYNTHETIC].to_numpy(dtype=bool))
            frame = frame.iloc[positions]
        if len(frame) < 2:
            raise InvalidDataError(
                _("A generator needs at least 2 real training rows, but got {n_frame}. Use a larger training "
                  "split.").format(n_frame=len(frame)))
        labels = frame[LABEL].to_numpy()
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= schema.n_classes:
            raise InvalidDataError(
                _("Labels must be integer codes 0..{n_classes} (schema.classes), but the frame has "
                  "{labels!r}..{labels2!r}. Rebuild the dataset with recexp.tasks.").format(
                  n_classes=schema.n_classes - 1, labels=labels.min(), labels2=labels.max()))
        if schema.numeric:
            values = frame[list(schema.numeric)].to_numpy(np.float64, na_value=np.nan)
            if np.isinf(values).any():
                bad = [c for c, col in zip(schema.numeric, values.T) if np.isinf(col).any()]
                raise InvalidDataError(
                    _("Numeric column(s) {bad} hold infinite values. Replace them with missing values or finite "
                      "numbers before synthesising.").format(bad=', '.join(bad)))
        return frame.reset_index(drop=True), positions

    def _labels(self, n: int | None, conditions: dict[str, int] | None) -> np.ndarray:
        classes = self.schema_.classes
        if conditions is not None:
            if not isinstance(conditions, dict):
                raise InvalidParameterError(
                    _("conditions must be a dict from class name to row count, but "
                      "got {conditions!r}.").format(conditions=conditions))
            unknown = [c for c in conditions if c not in classes]
            if unknown:
                raise InvalidParameterError(
                    _("conditions name unknown class(es) {repr}; the classes are {classes}.").format(
                      repr=', '.join(map(repr, unknown)), classes=', '.join(classes)))
            for name, count in conditions.items():
                if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                    raise InvalidParameterError(
                        _("conditions[{name!r}] must be a whole number of rows >= "
                          "0, but got {count!r}.").format(name=name, count=count))
                if count and self.class_counts_[classes.index(name)] == 0:
                    raise InvalidParameterError(
                        _("Class {name!r} has no real training rows, so there is nothing to learn it from. Drop "
                          "it from conditions.").format(name=name))
            total = int(sum(conditions.values()))
            if n is not None and n != total:
                raise InvalidParameterError(
                    _("n ({n}) must equal the sum of conditions ({total}) when both are "
                      "given. Give one of them.").format(n=n, total=total))
            return np.concatenate([np.full(int(conditions.get(name, 0)), code, dtype=np.int64)
                                   for code, name in enumerate(classes)]) if total else np.zeros(0, np.int64)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise InvalidParameterError(_("n must be a whole number of rows >= 0, but got {n!r}. Pass n or "
                                          "conditions.").format(n=n))
        mix = self.class_counts_ / self.class_counts_.sum()
        counts = self.rng_.multinomial(int(n), mix)
        return np.repeat(np.arange(len(classes), dtype=np.int64), counts)

    def _fit_neighbours(self, frame: pd.DataFrame, schema: FeatureSchema) -> None:
        """Index the real rows of each class by their standardised numeric features."""
        self.sequence_columns_ = list(schema.sequence_columns)
        numeric = frame[list(schema.numeric)].to_numpy(np.float64, na_value=np.nan) if schema.numeric \
            else np.zeros((len(frame), 0))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)        # all-missing columns: centre 0, scale 1
            center = np.nanmean(numeric, axis=0) if numeric.shape[1] else np.zeros(0)
            spread = np.nanstd(numeric, axis=0) if numeric.shape[1] else np.zeros(0)
        self.neighbour_center_ = np.nan_to_num(center)
        self.neighbour_scale_ = np.where(np.nan_to_num(spread) > 0, np.nan_to_num(spread), 1.0)
        sequences = frame[self.sequence_columns_].to_numpy(np.int64, na_value=0) if self.sequence_columns_ \
            else np.zeros((len(frame), 0), dtype=np.int64)
        labels = frame[LABEL].to_numpy(np.int64)
        self.neighbours_ = {}
        for code in np.unique(labels):
            rows = np.flatnonzero(labels == code)
            points = self._neighbour_points(numeric[rows])
            tree = KDTree(points) if points.shape[1] else None
            self.neighbours_[int(code)] = (rows, sequences[rows], tree)

    def _neighbour_points(self, numeric: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(numeric), self.neighbour_center_, numeric)
        return (filled - self.neighbour_center_) / self.neighbour_scale_

    def _finish(self, generated: pd.DataFrame, labels: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        schema = self.schema_
        out = {}
        for c in schema.numeric:
            out[c] = generated[c].to_numpy(np.float32, na_value=np.nan)
        for c in schema.categorical:
            out[c] = generated[c].to_numpy(np.int64, na_value=0)
        numeric = np.column_stack([out[c] for c in schema.numeric]).astype(np.float64) if schema.numeric \
            else np.zeros((len(labels), 0))
        sources = np.zeros(len(labels), dtype=np.int64)
        sequences = np.zeros((len(labels), len(self.sequence_columns_)), dtype=np.int64)
        for code in np.unique(labels):
            rows = np.flatnonzero(labels == code)
            positions, bank, tree = self.neighbours_[int(code)]
            if tree is not None:
                nearest = tree.query(self._neighbour_points(numeric[rows]), k=1, return_distance=False)[:, 0]
            else:
                nearest = self.rng_.integers(len(positions), size=len(rows))
            sources[rows] = self.real_positions_[positions[nearest]]
            sequences[rows] = bank[nearest]
        for j, c in enumerate(self.sequence_columns_):
            out[c] = sequences[:, j]
        out[LABEL] = labels.astype(np.int64)
        return pd.DataFrame(out, index=pd.RangeIndex(len(labels))), sources


class NeuralGenerator(Generator):
    """Shared training loop of the torch generators (GAN, VAE).

    Subclasses implement ``_build(data, categories, labels)`` (networks and optimisers on
    ``self.device_``), ``_train_epoch() -> dict`` of mean losses, ``_generate(labels) -> ndarray``
    (activated output, one row per label) and ``_modules() -> dict`` of the modules whose
    ``state_dict`` forms a checkpoint.

    Every ``eval_every`` epochs (and after the last) a quality score (:func:`quality_score`: the mean of
    column-shape and pair-trend similarity, SDMetrics' QualityReport definition) compares freshly
    generated rows with up to ``EVAL_ROWS`` real training rows of the same class mix; the checkpoint
    with the best score is the one kept (``best_epoch_``). ``history_`` has one row per epoch: the
    losses, ``quality`` (NaN where not computed) and ``seconds`` (training plus scoring);
    ``timing_`` sums the seconds spent on preprocessing, training steps and scoring.

    With ``epsilon`` set, the networks that read real rows train with DP-SGD (Opacus; see
    :mod:`recexp.synthesis.privacy`): the subclass's ``_build`` hands that module and its optimizer to
    :meth:`_privatize`, and ``_train_epoch`` takes its steps' rows from ``private_.batches()``. Training
    stops when the budget is spent; the *last* checkpoint is kept (choosing one by its quality on real
    rows would spend privacy the accountant does not count); ``privacy_`` holds the accountant's
    figures (``None`` without DP).
    """

    private_training = True
    params = {
        **Generator.params,
        "epsilon": Optional(Float(0, None, low_open=True), search=False,
                            help="Differential privacy: the budget of DP-SGD training (Opacus); smaller is more "
                                 "private. None trains without DP."),
        "delta": Optional(Float(0, 1, low_open=True, high_open=True), search=False,
                          help="Differential privacy: the chance the epsilon guarantee fails; None: 1 / training "
                               "rows."),
        "max_grad_norm": Float(0, None, low_open=True, search=False,
                               help="Differential privacy: each row's gradient is clipped to this norm."),
        "epochs": Int(1, None, help="Passes over the training rows."),
        "batch_size": Int(2, None, help="Rows per optimiser step."),
        "eval_every": Int(0, None, help="Score the samples every this many epochs and keep the best "
                                        "checkpoint; 0 keeps the last epoch."),
        "max_categories": Int(2, None, help="One-hot slots per categorical column; rarer codes share one."),
        "device": Choice({d: d for d in DEVICE_CHOICES}, help="Where to train: auto (cuda > mps > cpu)."),
    }

    # --- hooks for subclasses -------------------------------------------------------------------
    def _check_params(self) -> None:
        """Raise :class:`InvalidParameterError` for parameter combinations the spec cannot express."""

    def _build(self, data: torch.Tensor, categories: torch.Tensor, labels: torch.Tensor) -> None:
        raise NotImplementedError

    def _train_epoch(self) -> dict[str, float]:
        raise NotImplementedError

    def _generate(self, labels: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def _modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def _privatize(self, module: str, optimizer: str) -> None:
        """Wrap the attributes named ``module`` and ``optimizer`` for DP-SGD (called by ``_build`` when
        ``epsilon`` is set); the wrapped module is unwrapped again when training ends."""
        self.private_ = PrivateTraining.make(
            getattr(self, module), getattr(self, optimizer), n_rows=self.n_rows_, batch_size=self.batch_size,
            epochs=self.epochs, epsilon=self.epsilon, delta=self.delta, max_grad_norm=self.max_grad_norm,
            seed=self.torch_seed_)
        self.private_attributes_ = (module, optimizer)
        setattr(self, module, self.private_.module)
        setattr(self, optimizer, self.private_.optimizer)

    # --- the loop -----------------------------------------------------------------------------
    def _fit(self, frame: pd.DataFrame, schema: FeatureSchema, progress: Progress | None) -> None:
        started = time.perf_counter()
        self._check_params()
        self.device_ = resolve_device(self.device)
        self.torch_generator_ = torch.Generator(device=self.device_).manual_seed(self.torch_seed_)
        self.transformer_ = DataTransformer(max_categories=self.max_categories).fit(
            frame, schema.numeric, schema.categorical, self.fit_rng_)
        matrix, categories = self.transformer_.transform(frame, self.fit_rng_)
        labels = np.array(frame[LABEL].to_numpy(np.int64))       # a writable copy for torch
        self.n_rows_ = len(frame)
        self.private_, self.privacy_ = None, None
        self._build(torch.from_numpy(matrix).to(self.device_), torch.from_numpy(categories).to(self.device_),
                    torch.from_numpy(labels).to(self.device_))

        eval_index = np.sort(self.fit_rng_.choice(len(frame), min(EVAL_ROWS, len(frame)), replace=False))
        eval_real = frame.iloc[eval_index].reset_index(drop=True)
        eval_labels = eval_real[LABEL].to_numpy(np.int64)
        numeric, categorical = list(schema.numeric), list(schema.categorical) + [LABEL]

        self.timing_ = {"preprocess": time.perf_counter() - started, "train": 0.0, "evaluate": 0.0}
        history: list[dict[str, float]] = []
        best_quality, best_state, self.best_epoch_ = -math.inf, None, self.epochs
        spent: list[float] = []
        for epoch in range(1, self.epochs + 1):
            if self.private_ is not None and self.private_.exhausted():
                break                                           # the privacy budget is spent
            started = time.perf_counter()
            for module in self._modules().values():
                module.train()
            with warnings.catch_warnings():
                # Opacus' per-row gradient hooks fire on module outputs when the inputs need no gradient: as meant
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                losses = self._train_epoch()
            if self.device_.type == "cuda":
                torch.cuda.synchronize(self.device_)
            trained = time.perf_counter()
            self.timing_["train"] += trained - started
            quality = math.nan
            if self.eval_every and (epoch % self.eval_every == 0 or epoch == self.epochs):
                synthetic = self._sample(eval_labels)
                synthetic[LABEL] = eval_labels
                quality = quality_score(eval_real, synthetic, numeric, categorical)
                if self.private_ is not None:
                    best_quality, self.best_epoch_ = quality, epoch         # the last one: see the docstring
                elif quality > best_quality:
                    best_quality, self.best_epoch_ = quality, epoch
                    best_state = {k: copy.deepcopy(m.state_dict()) for k, m in self._modules().items()}
                self.timing_["evaluate"] += time.perf_counter() - trained
            row = {**losses, "quality": quality, "seconds": time.perf_counter() - started}
            history.append({"epoch": epoch, **row})
            if self.private_ is not None:
                spent.append(self.private_.spent())
                self.best_epoch_ = epoch
            if progress is not None:
                progress(epoch, row)
        if self.private_ is not None:
            self.privacy_ = {**self.private_.summary(), "epsilon_by_epoch": spent}
            module, optimizer = self.private_attributes_
            setattr(self, module, self.private_.release())
            setattr(self, optimizer, getattr(self, optimizer).original_optimizer)   # without the accountant's hook
            self.private_ = None
        if best_state is not None:
            for key, module in self._modules().items():
                module.load_state_dict(best_state[key])
        self.best_quality_ = best_quality if best_quality > -math.inf else math.nan
        self.history_ = pd.DataFrame(history)

    def _sample(self, labels: np.ndarray) -> pd.DataFrame:
        for module in self._modules().values():
            module.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(labels), SAMPLE_CHUNK):        # decoded chunk by chunk: bounded memory
                chunk = torch.from_numpy(np.array(labels[start:start + SAMPLE_CHUNK])).to(self.device_)
                parts.append(self.transformer_.inverse_transform(self._generate(chunk), self.rng_))
        if not parts:
            return self.transformer_.inverse_transform(np.zeros((0, self.transformer_.output_dim_), np.float32),
                                                       self.rng_)
        return pd.concat(parts, ignore_index=True)


def linear(in_features: int, out_features: int, generator: torch.Generator, device: torch.device) -> torch.nn.Linear:
    """An ``nn.Linear`` initialised like PyTorch's default but from ``generator``.

    The layer is built on the CPU (PyTorch's constructor draws its default weights from the global
    RNG, whose state is saved and restored around it), moved to ``device`` and re-drawn from
    ``generator``, which lives on ``device``.
    """
    state = torch.random.get_rng_state()
    try:
        layer = torch.nn.Linear(in_features, out_features)
    finally:
        torch.random.set_rng_state(state)
    layer = layer.to(device)
    bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


class SeededDropout(torch.nn.Module):
    """Dropout whose masks come from a given ``torch.Generator`` instead of the global one."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * keep / (1 - self.p)


class SpanLayout:
    """Index tensors that let all softmax groups of the output be handled in one padded gather."""

    def __init__(self, spans, output_dim: int, device: torch.device):
        softmax = [s for s in spans if s.kind != "value"]
        self.value_columns = torch.tensor([s.start for s in spans if s.kind == "value"], dtype=torch.long,
                                          device=device)
        width = max((s.dim for s in softmax), default=1)
        index = torch.zeros((len(softmax), width), dtype=torch.long)
        mask = torch.zeros((len(softmax), width), dtype=torch.bool)
        for i, s in enumerate(softmax):
            index[i, :s.dim] = torch.arange(s.start, s.stop)
            mask[i, :s.dim] = True
        self.index, self.mask = index.to(device), mask.to(device)
        self.softmax_columns = self.index[self.mask]
        order = torch.cat([self.value_columns, self.softmax_columns])
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(output_dim, device=device)
        self.span_of = {(s.column, s.kind): i for i, s in enumerate(softmax)}

    def padded(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, groups, width)`` logits of every softmax group, padding at ``-inf``."""
        return logits[:, self.index].masked_fill(~self.mask, float("-inf"))

    def activate(self, logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
        """``tanh`` on value dimensions, Gumbel-softmax on every one-hot group, in output order."""
        values = torch.tanh(logits[:, self.value_columns])
        groups = self.padded(logits)
        uniform = torch.rand(groups.shape, generator=generator, device=logits.device).clamp_(1e-10, 1 - 1e-10)
        soft = torch.softmax((groups - torch.log(-torch.log(uniform))) / tau, dim=-1)
        return torch.cat([values, soft[:, self.mask]], dim=1)[:, self.inverse]
