"""The model family base, dataset -> tensor conversion and checkpoints.

A model is a small :class:`Model` class with a declarative parameter spec (like the strategies); its
:meth:`Model.build` validates the parameters and returns a plain ``nn.Module`` sized for a training
set's schema, with numeric imputation and standardisation fitted on that training set only.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from recexp.dataset import IS_SYNTHETIC, LABEL, SAMPLE_WEIGHT, Dataset, FeatureSchema
from recexp.errors import InvalidDataError
from recexp.i18n import _
from recexp.models.modules import InputSpec, NumericNormalizer
from recexp.params import Parametrized


class Inputs(NamedTuple):
    """The three feature tensors every model's ``forward`` takes (see :mod:`recexp.models.modules`)."""

    numeric: torch.Tensor       # float32 (N, P), NaN = missing
    categorical: torch.Tensor   # int64 (N, C), 0 = missing / unseen
    sequence: torch.Tensor      # int64 (N, G, L), 0 = padding

    def to(self, device: torch.device | str) -> Inputs:
        return Inputs(*(t.to(device, non_blocking=True) for t in self))

    def take(self, index: torch.Tensor) -> Inputs:
        """Rows at ``index`` (a gather on whatever device the tensors live on)."""
        return Inputs(self.numeric[index], self.categorical[index], self.sequence[index])


@dataclass
class TensorData:
    """A whole dataset as tensors: inputs, label codes, per-row weights and the synthetic flag."""

    inputs: Inputs
    labels: torch.Tensor        # int64 (N,)
    weights: torch.Tensor       # float32 (N,), 1 where the frame has no ``sample_weight``
    synthetic: torch.Tensor     # bool (N,)

    def to(self, device: torch.device | str) -> TensorData:
        return TensorData(self.inputs.to(device), self.labels.to(device), self.weights.to(device),
                          self.synthetic.to(device))

    def __len__(self) -> int:
        return len(self.labels)


def input_spec(schema: FeatureSchema) -> InputSpec:
    """Embedding table sizes and sequence shape for ``schema`` (codes ``0 .. cardinality`` are valid)."""
    def size(name: str) -> int:
        if name not in schema.cardinality:
            raise InvalidDataError(
                _("The schema gives no vocabulary size for '{name}'. Rebuild the dataset with "
                  "recexp.tasks.").format(name=name))
        return int(schema.cardinality[name]) + 1

    lengths = {len(cols) for cols in schema.sequences.values()}
    if len(lengths) > 1:
        raise InvalidDataError(
            _("Behaviour-sequence groups have different lengths {lengths}; every group must have the same number "
              "of positions. Rebuild the dataset with one sequence length.").format(lengths=sorted(lengths)))
    categorical_sizes = tuple(size(c) for c in schema.categorical)
    sequence_sizes = tuple(size(g) for g in schema.sequences)
    return InputSpec(
        n_numeric=len(schema.numeric),
        categorical_sizes=categorical_sizes,
        sequence_sizes=sequence_sizes,
        sequence_length=lengths.pop() if lengths else 0,
        n_classes=schema.n_classes,
        sequence_targets=tuple(_target_column(group, size, schema.categorical, categorical_sizes)
                               for group, size in zip(schema.sequences, sequence_sizes)),
    )


def _target_column(group: str, size: int, categorical: tuple[str, ...], sizes: tuple[int, ...]) -> int:
    """Index of the categorical column that is the sample's own value of a sequence attribute, or -1.

    A group ``hist_<name>`` (or ``<name>``) matches the categorical column ``<name>`` when both have
    the same vocabulary size, i.e. the same codes (as ``recexp.tasks`` builds ``item`` / ``hist_item``).
    """
    base = group.removeprefix("hist_")
    for index, (column, column_size) in enumerate(zip(categorical, sizes)):
        if column == base and column_size == size:
            return index
    return -1


def _codes(frame, columns: tuple[str, ...], sizes: tuple[int, ...]) -> np.ndarray:
    if not columns:
        return np.zeros((len(frame), 0), dtype=np.int64)
    codes = frame.loc[:, list(columns)].to_numpy(dtype=np.int64, na_value=0)
    limit = np.asarray(sizes, dtype=np.int64)
    return np.where((codes < 0) | (codes >= limit), 0, codes)


def to_tensors(dataset: Dataset) -> TensorData:
    """Convert a dataset to CPU tensors (one copy, no per-row Python objects).

    Categorical and sequence codes outside the schema's vocabulary become ``0`` (unseen).
    """
    schema, frame = dataset.schema, dataset.frame
    spec = input_spec(schema)
    numeric = frame.loc[:, list(schema.numeric)].to_numpy(dtype=np.float32, na_value=np.nan) \
        if schema.numeric else np.zeros((len(frame), 0), dtype=np.float32)
    categorical = _codes(frame, schema.categorical, spec.categorical_sizes)
    groups = [_codes(frame, cols, (size,) * len(cols))
              for cols, size in zip(schema.sequences.values(), spec.sequence_sizes)]
    sequence = np.stack(groups, axis=1) if groups else np.zeros((len(frame), 0, 0), dtype=np.int64)
    labels = frame[LABEL].to_numpy(dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= schema.n_classes):
        raise InvalidDataError(
            _("Label codes must be between 0 and {n_classes}, but the data has {labels}..{labels2}. Rebuild the "
              "dataset so labels index schema.classes.").format(
              n_classes=schema.n_classes - 1, labels=labels.min(), labels2=labels.max()))
    weights = frame[SAMPLE_WEIGHT].to_numpy(dtype=np.float32) if SAMPLE_WEIGHT in frame \
        else np.ones(len(frame), dtype=np.float32)
    if not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise InvalidDataError(
            _("sample_weight must be finite and non-negative for every row; fix the strategy that set it."))
    synthetic = frame[IS_SYNTHETIC].to_numpy(dtype=bool) if IS_SYNTHETIC in frame \
        else np.zeros(len(frame), dtype=bool)
    return TensorData(Inputs(_tensor(numeric), _tensor(categorical), _tensor(sequence)),
                      _tensor(labels), _tensor(weights), _tensor(synthetic))


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory, or a copy's when ``array`` is not contiguous or is read-only
    (pandas' copy-on-write hands out read-only views, which torch must not write through)."""
    return torch.from_numpy(np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"]))


class Model(Parametrized):
    """Base of every model: a parameter spec plus :meth:`build`, which returns an ``nn.Module``.

    Subclasses set ``name`` (their registry key), declare ``params``, write ``__init__`` (storing
    the arguments only) and ``_build(spec) -> nn.Module``. The module's ``forward(numeric,
    categorical, sequence)`` returns one logit per class, shape ``(B, K)``; a binary task has two.

    A model fitted without gradients (gradient-boosted trees) sets ``differentiable = False`` and
    also writes ``fit(train_set, valid_set, config, callback) -> TrainResult``, which
    :func:`recexp.models.train` calls instead of its gradient-descent loop; importance methods that
    need gradients refuse its runs.
    """

    name: ClassVar[str] = ""
    #: Shown in the UI and the CLI listing.
    description: ClassVar[str] = ""
    #: True when the model cannot work without a behaviour sequence (DIN).
    requires_sequence: ClassVar[bool] = False
    #: False for a model with no gradients to descend or take (LightGBM): it trains in its own ``fit``.
    differentiable: ClassVar[bool] = True
    #: Kinds of task (:attr:`recexp.tasks.Task.kind`) the model serves: classifiers of a row's class, or rankers of
    #: a catalogue's items (the next-item task); see :func:`recexp.tasks.applies_to`.
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)

    def build(self, train: Dataset) -> nn.Module:
        """Validate the parameters and build a module for ``train``'s schema.

        Numeric imputation (median) and standardisation statistics are fitted on the real
        (non-synthetic) rows of ``train`` and live in the module's buffers, so the saved
        ``state_dict`` is all a prediction needs.

        Parameters
        ----------
        train : Dataset
            The training split (after any strategy); never the validation or test split.

        Returns
        -------
        torch.nn.Module
        """
        data = to_tensors(train)
        real = ~data.synthetic
        return self.build_for(train.schema, data.inputs.numeric[real] if bool(real.any()) else data.inputs.numeric)

    def build_for(self, schema: FeatureSchema, numeric: torch.Tensor) -> nn.Module:
        """Validate the parameters and build a module for ``schema``, its numeric statistics fitted on ``numeric``.

        What :meth:`build` does once it has the real training rows' numeric features ``(N, P)``; training
        from disk passes those of a sample of rows (:meth:`recexp.models.shards.ShardSet.real_numeric`).
        """
        self.validate_params()
        spec = input_spec(schema)
        if self.requires_sequence and spec.n_groups == 0:
            raise InvalidDataError(
                _("The {name} model attends over the behaviour sequence, but this dataset has no sequence "
                  "features (a feature table, or a task built without history). Choose "
                  "another model.").format(name=self.name))
        module = self._build(spec)
        for sub in module.modules():
            if isinstance(sub, NumericNormalizer):
                sub.fit(numeric)
        return module

    def _build(self, spec: InputSpec) -> nn.Module:
        raise NotImplementedError


def save_checkpoint(path: str | Path, model: Model, module: nn.Module, spec: InputSpec,
                    extra: dict[str, Any] | None = None, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``state_dict`` + config (model name, parameters, input spec) with ``torch.save``.

    ``state`` saves another state of the same module (e.g. an earlier epoch's) instead of its current
    one. Everything in the file is tensors and plain Python values, so it loads with ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": model.name, "params": model.get_params(), "input_spec": spec.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in (state if state is not None else module.state_dict()).items()},
               "extra": extra or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)                  # serialised in memory: a full disk raises OSError below, not a
    tmp = path.with_suffix(path.suffix + ".part")   # torch RuntimeError halfway through the file
    try:
        tmp.write_bytes(buffer.getbuffer())
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[Model, nn.Module, dict[str, Any]]:
    """Rebuild ``(model, module, extra)`` from :func:`save_checkpoint`'s file (``weights_only=True``).

    Raises
    ------
    InvalidDataError
        The file is missing, unreadable, truncated, not a recexp checkpoint, or does not fit the model
        it names: a sentence naming the file, never a ``KeyError`` or an unpickling error.
    """
    from recexp.models import MODELS

    path = Path(path)
    damaged = f"The checkpoint {path} is damaged or not a recexp checkpoint"
    try:
        with warnings.catch_warnings():       # junk bytes draw a "pickle protocol" UserWarning before they fail
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise InvalidDataError(_("The checkpoint {path} is missing; train the run again.").format(path=path)) from error
    except Exception as error:                # torch reports junk as pickle, zip, EOF or runtime errors alike
        raise InvalidDataError(_("{damaged} ({name}); train the run again.").format(
                                 damaged=damaged, name=type(error).__name__)) from error
    if not isinstance(payload, dict) or not {"model", "params", "input_spec", "state_dict"} <= set(payload):
        raise InvalidDataError(_("{damaged} (it lacks the model, its parameters or its weights); train the run "
                                 "again.").format(damaged=damaged))
    model_cls = MODELS.get(payload["model"])
    if model_cls is None:
        raise InvalidDataError(_("The checkpoint {path} names an "
                                 "unknown model '{model}'.").format(path=path, model=payload['model']))
    try:
        model = model_cls(**payload["params"])
        module = model._build(InputSpec.from_dict(payload["input_spec"]))
        module.load_state_dict(payload["state_dict"])
    except (TypeError, KeyError, ValueError, RuntimeError) as error:
        raise InvalidDataError(_("{damaged} (its weights do not fit the {model} model it names: {name}); train "
                                 "the run again.").format(
                                 damaged=damaged, model=payload['model'], name=type(error).__name__)) from error
    module.eval()
    return model, module, payload.get("extra", {})
