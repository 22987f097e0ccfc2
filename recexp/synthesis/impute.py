"""Filling missing feature values of the training split by conditional sampling from a fitted generator.

A cell is *missing* when a numeric feature is NaN or a categorical feature has code 0 (recexp's
"missing or unseen" code). :func:`impute_missing` draws every missing cell from the generator's
distribution given the row's observed cells and its class
(:meth:`~recexp.synthesis.base.Generator.conditional_sample`: the exact conditional normal for the
Gaussian copula, a nearest match among class-conditional candidates for the GAN and the VAE).
:func:`mean_mode_impute` is the simple baseline: the column mean for numeric cells, the most
frequent non-missing code for categorical cells.

:func:`imputation_report` compares the two honestly, on cells whose true value is known: it hides a
share of the *observed* cells of every column that has missing values (or of every column when none
has), imputes them both ways and scores each column:

* ``error``: for numeric columns the root-mean-square error divided by the column's range, for
  categorical columns the share of wrong codes (lower is better);
* ``shape``: similarity of the imputed values' distribution to the hidden true values (KS or total
  variation complement, as in :mod:`recexp.synthesis.quality`; higher is better). Mean/mode
  imputation collapses a column onto one value, which this score exposes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from recexp.dataset import LABEL, FeatureSchema
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.synthesis.base import Generator
from recexp.synthesis.quality import ks_complement, tv_complement


def missing_mask(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """True where a numeric feature is NaN or a categorical feature is code 0."""
    mask = {c: frame[c].isna().to_numpy() for c in schema.numeric}
    mask |= {c: frame[c].to_numpy(np.int64, na_value=0) == 0 for c in schema.categorical}
    return pd.DataFrame(mask, index=frame.index)


def mean_mode_impute(frame: pd.DataFrame, schema: FeatureSchema, missing: pd.DataFrame | None = None,
                     reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fill flagged cells with the column mean (numeric) or most frequent non-zero code (categorical).

    ``reference`` (default ``frame``) supplies the means and modes, over its unflagged cells.
    """
    missing = missing_mask(frame, schema) if missing is None else missing
    reference = frame if reference is None else reference
    reference_missing = missing if reference is frame else missing_mask(reference, schema)
    out = frame.copy()
    for c in schema.numeric:
        observed = reference[c].to_numpy(np.float64, na_value=np.nan)[~reference_missing[c].to_numpy()]
        observed = observed[~np.isnan(observed)]
        fill = float(observed.mean()) if len(observed) else 0.0
        out.loc[missing[c].to_numpy(), c] = np.asarray(fill, dtype=frame[c].dtype)
    for c in schema.categorical:
        observed = reference[c].to_numpy(np.int64, na_value=0)[~reference_missing[c].to_numpy()]
        observed = observed[observed != 0]
        fill = int(pd.Series(observed).mode().iloc[0]) if len(observed) else 0
        out.loc[missing[c].to_numpy(), c] = fill
    return out


def impute_missing(frame: pd.DataFrame, schema: FeatureSchema, generator: Generator,
                   missing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Draw every missing cell from ``generator`` given the row's observed cells and its class.

    Parameters
    ----------
    frame : DataFrame
        Rows with the schema's feature columns and ``label`` (e.g. a training split's frame).
    schema : FeatureSchema
    generator : Generator
        Fitted on the training split (generators accept missing values).
    missing : DataFrame of bool, optional
        Which cells to draw; default :func:`missing_mask`.

    Returns
    -------
    DataFrame
        A copy of ``frame`` with the flagged cells filled; other columns untouched.
    """
    if not hasattr(generator, "schema_"):
        raise InvalidParameterError(_("impute_missing needs a fitted generator. Call generator.fit(frame, "
                                      "schema) first."))
    missing = missing_mask(frame, schema) if missing is None else missing
    out = frame.copy()
    if not missing.to_numpy().any():
        return out
    drawn = generator.conditional_sample(frame.reset_index(drop=True), missing.reset_index(drop=True))
    for c in list(schema.numeric) + list(schema.categorical):
        out[c] = drawn[c].to_numpy().astype(frame[c].dtype)
    still = missing_mask(out, schema).to_numpy() & missing.to_numpy()
    if still.any():           # no usable candidate for a few cells: fall back to mean / mode
        out = mean_mode_impute(out, schema, pd.DataFrame(still, columns=missing.columns, index=out.index),
                               reference=frame)
    return out


def imputation_report(frame: pd.DataFrame, schema: FeatureSchema, generator: Generator, *,
                      mask_fraction: float = 0.1, random_state: int = 0) -> dict[str, Any]:
    """Generator imputation against mean/mode imputation on hidden observed cells (see module docstring).

    Returns
    -------
    dict
        ``columns``: one record per (column, method) with ``error`` and ``shape``; ``summary``: the
        mean of each per method; ``hidden_cells``; ``missing_cells`` in ``frame``.
    """
    if not 0 < mask_fraction < 1:
        raise InvalidParameterError(_("mask_fraction must be between 0 and 1 (exclusive), but got "
                                      "{mask_fraction!r}.").format(mask_fraction=mask_fraction))
    rng = np.random.default_rng(random_state)
    frame = frame.reset_index(drop=True)
    missing = missing_mask(frame, schema)
    columns = [c for c in missing.columns if missing[c].any()] or list(missing.columns)
    hidden = pd.DataFrame(False, index=frame.index, columns=missing.columns)
    for c in columns:
        observed = np.flatnonzero(~missing[c].to_numpy())
        take = int(round(len(observed) * mask_fraction))
        if take:
            hidden.loc[rng.choice(observed, take, replace=False), c] = True
    masked = frame.copy()
    for c in columns:
        rows = hidden[c].to_numpy()
        masked.loc[rows, c] = np.nan if c in schema.numeric else 0
    both = missing | hidden
    by_generator = generator.conditional_sample(masked, hidden)
    by_mean = mean_mode_impute(masked, schema, hidden, reference=masked.loc[:, list(frame.columns)])
    records = []
    for c in columns:
        rows = hidden[c].to_numpy()
        if not rows.any():
            continue
        truth = frame.loc[rows, c].to_numpy(np.float64, na_value=np.nan)
        numeric = c in schema.numeric
        observed = frame[c].to_numpy(np.float64, na_value=np.nan)[~both[c].to_numpy()]
        span = float(np.nanmax(observed) - np.nanmin(observed)) if numeric and len(observed) else 1.0
        for method, imputed in (("generator", by_generator), ("mean_mode", by_mean)):
            values = imputed.loc[rows, c].to_numpy(np.float64, na_value=np.nan)
            if numeric:
                ok = ~np.isnan(values)
                error = float(np.sqrt(np.mean((values[ok] - truth[ok]) ** 2)) / (span or 1.0)) if ok.any() else math.nan
                shape = ks_complement(truth, values)
            else:
                error = float(np.mean(values != truth))
                shape = tv_complement(truth, values)
            records.append({"column": c, "type": "numeric" if numeric else "categorical", "method": method,
                            "error": error, "shape": shape, "cells": int(rows.sum())})
    table = pd.DataFrame(records, columns=["column", "type", "method", "error", "shape", "cells"])
    summary = {m: {"error": float(g["error"].mean()), "shape": float(g["shape"].mean())}
               for m, g in table.groupby("method")} if len(table) else {}
    return {"missing_cells": int(missing.to_numpy().sum()), "hidden_cells": int(hidden.to_numpy().sum()),
            "mask_fraction": mask_fraction, "generator": type(generator).__name__,
            "columns": table.to_dict(orient="records"), "summary": summary}


__all__ = ["imputation_report", "impute_missing", "mean_mode_impute", "missing_mask", "LABEL"]
