"""Figure builders of recexp.charts.synthesis on real rows and a real quality report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recexp.charts.synthesis import column_histograms, pair_difference_heatmap, training_curves
from recexp.dataset import LABEL
from recexp.errors import InvalidParameterError
from recexp.synthesis import GaussianCopula
from recexp.synthesis.quality import pair_trends, quality_report


@pytest.fixture(scope="module")
def copula_rows(small_behavior_train):
    generator = GaussianCopula(random_state=0).fit(small_behavior_train.frame, small_behavior_train.schema)
    return generator.sample(conditions=small_behavior_train.class_counts())


def test_histograms_show_real_and_synthetic_shares(small_behavior_train, copula_rows):
    schema = small_behavior_train.schema
    columns = ["hour", "category", LABEL]
    figure = column_histograms(small_behavior_train.frame, copula_rows, schema, columns=columns)
    assert len(figure.data) == 2 * len(columns)
    assert [trace.name for trace in figure.data[:2]] == ["real", "synthetic"]
    for trace in figure.data:
        assert sum(trace.y) == pytest.approx(1.0)
    # the hour panel has one bar per hour; the label panel names the classes in real frequency order
    assert len(figure.data[0].x) == small_behavior_train.frame["hour"].nunique()
    assert list(figure.data[4].x) == ["view", "cart", "fav", "buy"]
    real_share = small_behavior_train.frame[LABEL].value_counts(normalize=True).sort_index().to_numpy()
    assert list(figure.data[4].y) == pytest.approx(real_share)
    # the category panel names the source's category ids (code 0: rare/missing), on a category axis
    codes = small_behavior_train.frame["category"].value_counts().index[:len(figure.data[2].x)]
    assert list(figure.data[2].x[:3]) == list(schema.decode("category", codes.to_numpy()[:3]))
    assert all(x == "rare/missing" or len(x) >= 5 for x in figure.data[2].x[:-1])       # Taobao ids
    assert figure.layout.xaxis2.type == "category"
    with pytest.raises(InvalidParameterError, match="missing"):
        column_histograms(small_behavior_train.frame, copula_rows, schema, columns=["nope"])


def test_heatmap_shows_association_difference():
    real = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 4], "c": [0, 0, 1, 1]})
    synthetic = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [4.0, 3, 2, 1], "c": [0, 1, 0, 1]})
    table = pair_trends(real, synthetic, ["x", "y"], ["c"])
    figure = pair_difference_heatmap(table)
    z = np.array(figure.data[0].z, dtype=float)
    assert list(figure.data[0].x) == ["x", "y", "c"]
    assert z[0, 1] == pytest.approx(-2.0) and z[1, 0] == pytest.approx(-2.0)        # r: -1 minus 1
    assert np.isnan(z[0, 0])
    assert z[0, 2] == pytest.approx(table.iloc[1]["synthetic_association"] - table.iloc[1]["real_association"])


def test_heatmap_from_a_report(small_behavior_train, copula_rows):
    report = quality_report(small_behavior_train.frame, copula_rows, small_behavior_train.schema,
                            efficacy_test=False)
    figure = pair_difference_heatmap(report)
    n = len(small_behavior_train.schema.numeric) + len(small_behavior_train.schema.categorical) + 1
    assert np.array(figure.data[0].z).shape == (n, n)
    with pytest.raises(InvalidParameterError):
        pair_difference_heatmap(pd.DataFrame({"a": [1]}))


def test_training_curves_plot_losses_quality_and_best_epoch():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "generator_loss": [2.0, 1.5, 1.2, 1.1],
                            "discriminator_loss": [-0.5, -0.7, -0.6, -0.4],
                            "quality": [np.nan, 0.8, np.nan, 0.85], "seconds": [1.0] * 4})
    figure = training_curves(history, best_epoch=4)
    names = [trace.name for trace in figure.data]
    assert names == ["generator loss", "discriminator loss", "quality score", "kept: epoch 4"]
    assert list(figure.data[2].x) == [2, 4] and list(figure.data[2].y) == [0.8, 0.85]
    assert figure.layout.shapes[0].x0 == 4
    assert not figure.layout.annotations                 # the kept epoch is named in the legend, not on the curves
    with pytest.raises(InvalidParameterError):
        training_curves(pd.DataFrame({"loss": [1.0]}))
