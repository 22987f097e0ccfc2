"""Imputation by conditional sampling from a generator, against mean/mode imputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.dataset import LABEL, FeatureSchema
from recexp.errors import InvalidParameterError
from recexp.synthesis import GaussianCopula
from recexp.synthesis.impute import imputation_report, impute_missing, mean_mode_impute, missing_mask


def test_missing_mask_counts_nan_and_code_zero(criteo_train):
    schema = criteo_train.schema
    mask = missing_mask(criteo_train.frame, schema)
    frame = criteo_train.frame
    for c in schema.numeric:
        assert mask[c].sum() == frame[c].isna().sum()
    for c in schema.categorical:
        assert mask[c].sum() == (frame[c] == 0).sum()
    assert mask.to_numpy().sum() > 0


def test_mean_mode_by_hand():
    schema = FeatureSchema(numeric=("x",), categorical=("c",), classes=("a", "b"))
    frame = pd.DataFrame({"x": np.array([1.0, np.nan, 3.0, np.nan], dtype=np.float32), "c": [2, 2, 0, 5],
                          LABEL: [0, 1, 0, 1]})
    filled = mean_mode_impute(frame, schema)
    assert filled["x"].tolist() == [1.0, 2.0, 3.0, 2.0] and filled["x"].dtype == np.float32
    assert filled["c"].tolist() == [2, 2, 2, 5]


def test_copula_imputation_uses_the_observed_cells():
    """y is almost x: drawing a hidden y given x beats filling in the mean of y by far."""
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x.astype(np.float32), "y": (x + rng.normal(0, 0.1, n)).astype(np.float32),
                          LABEL: rng.integers(0, 2, n)})
    schema = FeatureSchema(numeric=("x", "y"), categorical=(), classes=("a", "b"))
    hidden = rng.random(n) < 0.2
    holed = frame.copy()
    holed.loc[hidden, "y"] = np.nan
    copula = GaussianCopula(random_state=0).fit(holed, schema)
    drawn = impute_missing(holed, schema, copula)
    assert drawn["y"].notna().all()
    assert (drawn.loc[~hidden, ["x", "y"]] == frame.loc[~hidden, ["x", "y"]]).all().all()
    error = np.abs(drawn.loc[hidden, "y"] - frame.loc[hidden, "y"]).mean()
    baseline = np.abs(mean_mode_impute(holed, schema).loc[hidden, "y"] - frame.loc[hidden, "y"]).mean()
    assert error < 0.3 * baseline


@pytest.mark.parametrize("name", ["gaussian_copula", "vae"])
def test_impute_fills_every_missing_cell_of_real_data(name, criteo_train, criteo_vae):
    schema = criteo_train.schema
    generator = GaussianCopula(random_state=0).fit(criteo_train.frame, schema) if name == "gaussian_copula" \
        else criteo_vae
    before = missing_mask(criteo_train.frame, schema)
    filled = impute_missing(criteo_train.frame, schema, generator)
    assert not missing_mask(filled, schema).to_numpy().any()
    observed = ~before.to_numpy()
    columns = list(before.columns)
    assert np.array_equal(filled[columns].to_numpy(np.float64)[observed],
                          criteo_train.frame[columns].to_numpy(np.float64, na_value=np.nan)[observed])
    assert filled[LABEL].equals(criteo_train.frame[LABEL])
    assert list(filled.dtypes) == list(criteo_train.frame.dtypes)


def test_imputation_report_compares_with_mean_mode(criteo_train):
    schema = criteo_train.schema
    copula = GaussianCopula(random_state=0).fit(criteo_train.frame, schema)
    report = imputation_report(criteo_train.frame, schema, copula, mask_fraction=0.2)
    table = pd.DataFrame(report["columns"])
    assert set(table["method"]) == {"generator", "mean_mode"}
    assert report["missing_cells"] == missing_mask(criteo_train.frame, schema).to_numpy().sum()
    assert report["hidden_cells"] == table.loc[table["method"] == "generator", "cells"].sum() > 0
    # columns with missing values only; mean/mode collapses each onto one value, so its shape score is lower
    assert set(table["column"]) <= {c for c in missing_mask(criteo_train.frame, schema) if
                                    missing_mask(criteo_train.frame, schema)[c].any()}
    assert report["summary"]["generator"]["shape"] > report["summary"]["mean_mode"]["shape"]
    with pytest.raises(InvalidParameterError, match="mask_fraction"):
        imputation_report(criteo_train.frame, schema, copula, mask_fraction=1.5)


def test_impute_needs_a_fitted_generator(criteo_train):
    with pytest.raises(InvalidParameterError, match="fitted"):
        impute_missing(criteo_train.frame, criteo_train.schema, GaussianCopula())
