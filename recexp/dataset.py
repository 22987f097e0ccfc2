"""The supervised dataset every strategy, model and metric works on.

A :class:`Dataset` is one frame with one row per sample. Its columns are the features named by the
:class:`FeatureSchema`, the integer label column ``label`` (codes into ``schema.classes``) and, where
the source has them, the meta columns ``user_id`` (for grouped splits and per-user ranking),
``item_id`` (the row's item as the log names it, for slices such as new vs known items) and
``event_time`` (UTC datetime, for temporal splits). After a strategy has run, the training frame also
carries ``is_synthetic`` (bool) and ``sample_weight`` (float).

Feature encoding (so that samplers, generators and models all see numbers):

* numeric features are ``float32`` (NaN allowed where the source had missing values);
* categorical features are integer codes, ``0`` meaning missing or unseen, with their vocabulary
  size in ``schema.cardinality`` and the source value (id or name) of each code in
  ``schema.vocabulary`` (:meth:`FeatureSchema.decode` turns codes back into source values);
* a behaviour sequence is a group of integer columns (``<name>_0`` ... ``<name>_{L-1}``, most
  recent first, ``0`` = padding), one group per attribute (item, category, behaviour), listed in
  ``schema.sequences``; their vocabulary sizes are in ``schema.cardinality`` under the group name.

Code columns are stored in the narrowest signed integer type that holds their vocabulary cap
(:func:`code_dtype` of the task's ``max_vocab``: ``int16`` for the default 20,000 items or
categories, ``int8`` for behaviours), so any subset of a log gets the same dtypes; this keeps a
frame of ten-step sequences at a third of its ``int64`` size; consumers that need ``int64`` (embedding
look-ups, generators) convert on the way out. The label is ``int64``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

LABEL = "label"
USER = "user_id"
ITEM = "item_id"
TIME = "event_time"
IS_SYNTHETIC = "is_synthetic"
SAMPLE_WEIGHT = "sample_weight"


def code_dtype(n_codes: int) -> np.dtype:
    """The narrowest signed integer type that holds the codes ``0 .. n_codes`` (0 = missing / padding)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_codes <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass(frozen=True)
class FeatureSchema:
    """Which columns are features, of what type, and what the label codes mean."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    classes: tuple[str, ...]                                   # label code i means classes[i]
    sequences: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> its columns
    cardinality: dict[str, int] = field(default_factory=dict)  # categorical column / group -> vocab size
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column / group -> source value of code i+1

    def decode(self, column: str, codes: np.ndarray) -> np.ndarray:
        """The source values (ids or names, as text) that ``column``'s integer codes stand for.

        Code ``0`` (missing, or rarer than the vocabulary cap) becomes ``"rare/missing"``; a sequence
        column (``hist_item_3``) is decoded with its group's vocabulary. A column without a vocabulary
        comes back as the text of its values.

        Examples
        --------
        >>> schema = FeatureSchema(numeric=(), categorical=("category",), classes=("view", "buy"),
        ...                        vocabulary={"category": ("4756105", "2355072")})
        >>> schema.decode("category", np.array([1, 0, 2])).tolist()
        ['4756105', 'rare/missing', '2355072']
        """
        group = next((g for g, cols in self.sequences.items() if column in cols), column)
        codes = np.asarray(codes)
        if group not in self.vocabulary:
            return codes.astype(str).astype(object)
        names = np.array(["rare/missing", *self.vocabulary[group]], dtype=object)
        return names[np.where((codes > 0) & (codes < len(names)), codes, 0)]

    @property
    def sequence_columns(self) -> tuple[str, ...]:
        """All sequence columns, group after group."""
        return tuple(c for cols in self.sequences.values() for c in cols)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Every feature column: numeric, categorical, then sequence."""
        return self.numeric + self.categorical + self.sequence_columns

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class Dataset:
    """A supervised dataset: ``frame`` plus its schema, the task that built it and a fingerprint."""

    frame: pd.DataFrame
    schema: FeatureSchema
    task: str
    fingerprint: str                # of the source data; with task and split params, fixes the split

    @property
    def X(self) -> pd.DataFrame:
        """Feature columns only."""
        return self.frame.loc[:, list(self.schema.feature_columns)]

    @property
    def y(self) -> np.ndarray:
        """Integer label codes."""
        return self.frame[LABEL].to_numpy()

    def subset(self, index: np.ndarray) -> Dataset:
        """The rows at the given positions, as a new Dataset with a fresh 0..n-1 index."""
        return replace(self, frame=self.frame.iloc[index].reset_index(drop=True))

    def class_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Rows per class label (every class listed, zero included), of all rows or of the positions ``rows``."""
        labels = self.y if rows is None else self.y[rows]
        counts = np.bincount(labels, minlength=self.schema.n_classes)
        return {name: int(c) for name, c in zip(self.schema.classes, counts)}

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class Split:
    """Row positions of the three parts; ``valid`` is carved from the non-test rows only."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
