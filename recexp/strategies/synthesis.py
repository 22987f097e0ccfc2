"""Generative synthesis as strategies: fit a generator on the training split, fill classes with its rows.

Each strategy fits one generator of :mod:`recexp.synthesis` on the real training rows, then
generates, class-conditionally, exactly the rows each class lacks to reach the target mix
(``sampling_strategy``, the same presets, ratio or per-class counts as the over-samplers). New rows
get ``is_synthetic=True``; the columns a generator does not model (behaviour sequences, ``user_id``,
``event_time``, ``sample_weight``) are copied from the nearest real row of the same class in the
standardised numeric features, which ``StrategyResult.source_rows`` names.

``impute_missing=True`` first fills missing feature values of the real training rows (NaN numeric,
code 0 categorical) by conditional sampling from the fitted generator
(:func:`recexp.synthesis.impute.impute_missing`); the report notes how many cells were filled and
how the draw compares with mean/mode imputation on hidden observed cells.

``quality_report=True`` (the default) also scores the generator once it is fitted: it generates as
many rows per class as a stratified sample of at most ``REPORT_ROWS`` real training rows has, and
compares the two with :func:`recexp.synthesis.quality.quality_report` (a few seconds). Its machine-learning
efficacy and privacy figures need real rows the generator never saw: :meth:`SynthesisStrategy.with_holdout`
hands the strategy the validation split for that (``recexp.jobs.bind_strategy`` does, for runs and the
Strategy Lab; never the test split). Without it, they fall back on part of the training rows. The result,
with the generator's training history and the imputation comparison, is
``StrategyResult.synthesis`` (a :class:`recexp.synthesis.report.SynthesisReport`); the rows the
strategy adds are not changed by it.

Privacy: ``epsilon`` (and ``delta``, ``max_grad_norm``) train the neural generators with differential
privacy (DP-SGD, :mod:`recexp.synthesis.privacy`); the report carries the epsilon Opacus' accountant
spent and a membership-inference AUC. The ``user_id`` / ``item_id`` of added rows are never the real ids
(``ids``: new ids or salted hashes); their other unmodelled columns still come from the source row.

Defaults are small (10 epochs for the neural generators) so the dashboard answers in seconds on a
few thousand rows; raise ``epochs`` for real use. Training runs on the GPU when there is one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from imblearn.utils import check_sampling_strategy

from recexp.dataset import IS_SYNTHETIC, LABEL, Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import _, format_decimal, ngettext
from recexp.models.device import DEVICE_CHOICES
from recexp.params import Bool, Choice, Int
from recexp.strategies.balancing import OVER_SAMPLING_STRATEGY
from recexp.strategies.base import Progress, Strategy, StrategyResult, assemble, class_codes, stratified_sample
from recexp.synthesis.base import Generator, NeuralGenerator
from recexp.synthesis.copula import GaussianCopula
from recexp.synthesis.gan import GAN
from recexp.synthesis.impute import imputation_report, impute_missing, missing_mask
from recexp.synthesis.privacy import refuse_privacy, replace_ids
from recexp.synthesis.report import REPORT_ROWS, describe_fit
from recexp.synthesis.vae import VAE

_EPOCHS = Int(1, None, help="Training passes of the generator over the real training rows.")
_EVAL_EVERY = Int(0, None, help="Score generated rows every this many epochs and keep the best checkpoint "
                                "(0: keep the last).")
_DEVICE = Choice({d: d for d in DEVICE_CHOICES}, help="Where the generator trains: auto (cuda > mps > cpu).")
_IMPUTE = Bool(help="Fill missing feature values of the real rows by conditional sampling from the generator.")
_REPORT = Bool(help="Score the generator's rows against real training rows once it is fitted (fidelity, "
                    "detection, efficacy, privacy; a few seconds).")


class SynthesisStrategy(Strategy):
    """Shared flow: resolve the target mix, fit the generator, impute (optionally), generate, assemble.

    Subclasses write ``__init__`` and ``_generator(seed) -> Generator``.
    """

    family = "synthesis"
    exact_target = True
    needs_all_rows = True
    generator_class: ClassVar[type[Generator]] = Generator
    #: The work besides training, per training row: fitting the column transforms, indexing the nearest
    #: real rows, generating the new rows (measured with ``benchmarks/preview_seconds.py``).
    seconds_per_row = 8e-4
    #: CPU seconds of the quality report (it scores at most ``REPORT_ROWS`` real rows, so it hardly
    #: grows with the split).
    report_seconds: ClassVar[float] = 3.5

    @classmethod
    def from_strings(cls, pairs: dict[str, str], **fixed: Any) -> SynthesisStrategy:
        """:meth:`Parametrized.from_strings`, with a sentence for DP parameters given to a strategy whose
        generator cannot train privately."""
        if not cls.generator_class.private_training:
            refuse_privacy(cls.title, {**pairs, **fixed})
        return super().from_strings(pairs, **fixed)

    def _generator(self, seed: int) -> Generator:
        raise NotImplementedError

    def _check_feasible(self, train: Dataset) -> None:
        classes = train.schema.classes
        real = ~train.frame[IS_SYNTHETIC].to_numpy(dtype=bool)
        y = train.y[real]
        current = np.bincount(y, minlength=len(classes))
        present = np.flatnonzero(current)
        if len(present) < 2:
            raise InvalidParameterError(
                _("{title}: the training split has only one class ({classes}), so there is no class mix to "
                  "change. Check the task and the split.").format(
                  title=self.title, classes=classes[present[0]]))
        value = self.sampling_strategy
        if isinstance(value, float) and len(present) != 2:
            raise InvalidParameterError(
                _("{title}: a ratio for 'sampling_strategy' only works with two classes, but this training split "
                  "has {n_present}. Give rows per class "
                  "instead, or a preset such as 'auto'.").format(title=self.title, n_present=len(present)))
        if isinstance(value, dict):
            codes = class_codes(value, classes, self.title, "sampling_strategy")
            for code, wanted in codes.items():
                name, have = classes[code], int(current[code])
                if have == 0:
                    raise InvalidParameterError(
                        _("{title}: class {name!r} has no real training rows, so the generator has nothing to "
                          "learn it from. Leave {name!r} out of "
                          "'sampling_strategy'.").format(title=self.title, name=name))
                if wanted < have:
                    raise InvalidParameterError(
                        _("{title}: the target for class {name!r} is {wanted:,} rows, fewer than the {have:,} it "
                          "already has, and synthesis only adds rows. Set it to at least {have:,}, or use an "
                          "under-sampler.").format(
                          title=self.title, name=name, wanted=wanted, have=have))
            value = codes
        try:
            resolved = check_sampling_strategy(value, y, "over-sampling")
        except ValueError as error:
            raise InvalidParameterError(
                _("{title}: sampling_strategy={sampling_strategy!r} is not possible on this training split "
                  "({error}). Choose another preset or per-class counts.").format(
                  title=self.title, sampling_strategy=self.sampling_strategy, error=error)) from None
        self.new_rows_ = {classes[c]: int(n) for c, n in resolved.items() if n > 0}
        self.target_ = {name: int(current[classes.index(name)] + n) for name, n in self.new_rows_.items()}

    def _estimated_seconds(self, n_rows: int) -> float:
        return self.seconds_per_row * n_rows + (self.report_seconds if self.quality_report else 0.0)

    def with_holdout(self, rows: Dataset) -> SynthesisStrategy:
        """Score the quality report's efficacy and privacy on ``rows``: real rows the generator never trains on.

        Pass the validation split (never the test split). Returns the strategy itself.
        """
        self.holdout_ = rows
        return self

    def apply(self, train: Dataset, seed: int = 0, progress: Progress | None = None) -> StrategyResult:
        """:meth:`Strategy.apply`, with the generator's :class:`~recexp.synthesis.report.SynthesisReport`
        as ``synthesis`` on the result; ``progress`` hears of every training epoch of a neural generator."""
        self.synthesis_ = None
        result = super().apply(train, seed, progress)
        return replace(result, synthesis=self.synthesis_)

    def _apply(self, train: Dataset, seed: int) -> tuple[Dataset, np.ndarray]:
        started = time.perf_counter()
        generator = self._generator(seed).fit(train.frame, train.schema, progress=self._epoch_progress)
        fit_seconds = time.perf_counter() - started
        self.generator_ = generator
        self.imputation_ = None
        if self.impute_missing:
            train = replace(train, frame=self._impute(train, generator))
        rows, sources = generator.sample(conditions=self.new_rows_, return_sources=True)
        columns = list(train.schema.feature_columns)
        new_values = {c: rows[c].to_numpy() for c in columns}
        privacy = getattr(generator, "privacy_", None)
        if privacy is not None:
            self.note(ngettext(
                "{generator}: trained with differential privacy (DP-SGD, Opacus) for {epochs} epoch: epsilon {spent} "
                "spent of {budget} (delta {delta}); the last epoch is kept.",
                "{generator}: trained with differential privacy (DP-SGD, Opacus) for {epochs} epochs: epsilon "
                "{spent} spent of {budget} (delta {delta}); the last epoch is kept.", privacy["epochs"]).format(
                generator=generator.__class__.__name__, epochs=privacy["epochs"],
                spent=format_decimal(privacy["epsilon"], 3), budget=format_decimal(privacy["epsilon_requested"], 3),
                delta=f"{privacy['delta']:.2g}"))
        elif hasattr(generator, "best_epoch_"):
            self.note(_("{name}: kept the checkpoint of epoch {best_epoch} of {epochs} (best quality score "
                        "{best_quality:.3f}).").format(
                        name=generator.__class__.__name__, best_epoch=generator.best_epoch_,
                        epochs=generator.epochs, best_quality=generator.best_quality_))
        real, synthetic = self._report_rows(train, generator, seed) if self.quality_report else (None, None)
        present = np.flatnonzero(generator.class_counts_)
        smallest = train.schema.classes[present[np.argmin(generator.class_counts_[present])]]
        holdout = getattr(self, "holdout_", None)
        self.synthesis_ = describe_fit(generator, real, synthetic, train.schema, minority=smallest,
                                       real_test=holdout.frame if holdout is not None else None,
                                       imputation=self.imputation_, fit_seconds=fit_seconds, random_state=seed)
        out, take = assemble(train, None, sources, new_values, new_labels=rows[LABEL].to_numpy())
        added = np.arange(len(train.frame), len(out.frame))
        return replace(out, frame=replace_ids(out.frame, added, generator.synthetic_ids(sources))), take

    def _epoch_progress(self, epoch: int, metrics: dict[str, float]) -> None:
        """Pass a generator's epoch on to the caller's ``progress`` as a fraction of the epochs."""
        epochs = getattr(self, "epochs", None)
        if epochs is None:                                  # the copula fits in one pass
            self.progress_(1.0, _("generator fitted"))
            return
        losses = ", ".join(f"{name.replace('_', ' ')} {value:.3f}" for name, value in metrics.items()
                           if name not in ("epoch", "seconds") and value == value)
        done = _("epoch {epoch} of {epochs}").format(epoch=epoch, epochs=epochs)
        self.progress_(min(epoch / epochs, 1.0), _("{done}: {losses}").format(done=done, losses=losses) if losses
                       else done)

    @staticmethod
    def _report_rows(train: Dataset, generator: Generator, seed: int):
        """A stratified sample of the real rows and as many generated rows of each class (the
        minority class scored alone is the smallest in the whole training split, not in the sample).

        Drawn after the strategy's own rows, so scoring never changes what the strategy adds.
        """
        real = train.subset(np.flatnonzero(~train.frame[IS_SYNTHETIC].to_numpy(dtype=bool)))
        real = stratified_sample(real, REPORT_ROWS, seed=seed)
        wanted = {name: n for name, n in real.class_counts().items() if n}
        return real.frame, generator.sample(conditions=wanted)

    def _impute(self, train: Dataset, generator: Generator):
        frame = train.frame
        real = ~frame[IS_SYNTHETIC].to_numpy(dtype=bool)
        missing = missing_mask(frame, train.schema)
        missing.loc[~real] = False
        cells = int(missing.to_numpy().sum())
        if cells == 0:
            self.note(_("impute_missing: the real training rows have no missing feature values; nothing imputed."))
            return frame
        filled = impute_missing(frame, train.schema, generator, missing)
        self.imputation_ = {**imputation_report(frame.loc[real], train.schema, generator), "filled_cells": cells}
        comparison = self.imputation_["summary"]
        text = ""
        if {"generator", "mean_mode"} <= set(comparison):
            g, m = comparison["generator"], comparison["mean_mode"]
            text = _(" On hidden observed cells the generator's draws had mean error {error:.3f} and distribution "
                     "similarity {shape:.3f}, mean/mode imputation {mean_error:.3f} and {mean_shape:.3f}.").format(
                     error=g["error"], shape=g["shape"], mean_error=m["error"], mean_shape=m["shape"])
        self.note(_("impute_missing: filled {cells:,} missing cells of the real rows by conditional sampling "
                    "from {name}.{text}").format(
                    cells=cells, name=generator.__class__.__name__, text=text))
        return filled


class NeuralSynthesis(SynthesisStrategy):
    """A strategy around a neural generator (``generator_class``): epochs, checkpoint scoring, device."""

    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY, "epochs": _EPOCHS, "eval_every": _EVAL_EVERY,
              "epsilon": NeuralGenerator.params["epsilon"], "delta": NeuralGenerator.params["delta"],
              "max_grad_norm": NeuralGenerator.params["max_grad_norm"], "ids": Generator.params["ids"],
              "device": _DEVICE, "impute_missing": _IMPUTE, "quality_report": _REPORT}
    #: CPU seconds per training row and epoch of training.
    seconds_per_row_epoch: ClassVar[float] = 0.0
    #: CPU seconds of one checkpoint scoring (every ``eval_every`` epochs, and after the last).
    eval_seconds: ClassVar[float] = 0.4
    #: Training time with DP-SGD (``epsilon`` set) over training without it (``benchmarks/privacy.py``).
    private_cost: ClassVar[float] = 1.0

    def __init__(self, sampling_strategy="auto", epochs=10, eval_every=5, epsilon=None, delta=None, max_grad_norm=1.0,
                 ids="new", device="auto", impute_missing=False, quality_report=True):
        self.sampling_strategy = sampling_strategy
        self.epochs = epochs
        self.eval_every = eval_every
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.ids = ids
        self.device = device
        self.impute_missing = impute_missing
        self.quality_report = quality_report

    def _generator(self, seed: int) -> Generator:
        return self.generator_class(epochs=self.epochs, eval_every=self.eval_every, epsilon=self.epsilon,
                                    delta=self.delta, max_grad_norm=self.max_grad_norm, ids=self.ids,
                                    device=self.device, random_state=seed)

    def _estimated_seconds(self, n_rows: int) -> float:
        scorings = -(-self.epochs // self.eval_every) if self.eval_every else 0      # ceil: the last one too
        training = self.seconds_per_row_epoch * n_rows * self.epochs
        if self.epsilon is not None:
            training *= self.private_cost
        return super()._estimated_seconds(n_rows) + training + self.eval_seconds * scorings


class GANSynthesis(NeuralSynthesis):
    """Fill classes with rows from a conditional tabular GAN (CTGAN-style)."""

    title = "Conditional GAN"
    summary = ("Trains a class-conditional tabular GAN (mode-specific normalisation, PacGAN, WGAN-GP) on the "
               "training rows and generates the rows each class lacks.")
    generator_class = GAN
    seconds_per_row_epoch = 2.6e-4
    private_cost = 3.0           # DP-SGD drops the gradient penalty's second backward pass: ~2.6-3.2x


class VAESynthesis(NeuralSynthesis):
    """Fill classes with rows from a conditional tabular VAE (TVAE-style)."""

    title = "Conditional VAE"
    summary = ("Trains a class-conditional tabular variational autoencoder on the training rows and decodes "
               "the rows each class lacks.")
    generator_class = VAE
    seconds_per_row_epoch = 7.5e-5
    private_cost = 10.0          # per-row gradients of every layer: ~8.6-10.2x


class CopulaSynthesis(SynthesisStrategy):
    """Fill classes with rows from a Gaussian copula fitted per class."""

    title = "Gaussian copula"
    summary = ("Fits a Gaussian copula to each class (empirical marginals, shrunk correlation) and draws the "
               "rows each class lacks; fast baseline for the neural generators.")
    generator_class = GaussianCopula
    seconds_per_row = 1e-4             # fitted in one pass, without training epochs
    params = {"sampling_strategy": OVER_SAMPLING_STRATEGY, "ids": Generator.params["ids"], "impute_missing": _IMPUTE,
              "quality_report": _REPORT}

    def __init__(self, sampling_strategy="auto", ids="new", impute_missing=False, quality_report=True):
        self.sampling_strategy = sampling_strategy
        self.ids = ids
        self.impute_missing = impute_missing
        self.quality_report = quality_report

    def _generator(self, seed: int) -> Generator:
        return GaussianCopula(ids=self.ids, random_state=seed)
