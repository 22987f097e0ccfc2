"""Importance charts that draw a sample of the training rows say how many of how many they show."""

import pytest

from recexp.charts.importance import value_distributions, value_histogram, value_vs_loss
from recexp.importance import run_importance
from recexp.importance.explore import stacked_values, with_losses


@pytest.fixture(scope="module")
def result(run_store, plain_run):
    return run_importance(run_store, plain_run, "mean_loss")


def test_value_charts_state_the_sample_of_every_run(run_store, result):
    rows = len(result.values)
    everything = stacked_values([result])
    assert everything.attrs["total_rows"] == rows
    for figure in (value_distributions(everything, "class"), value_histogram(everything)):
        assert "shown" not in figure.layout.title.text
    sampled = stacked_values([result, result], {result.run_id: "plain"}, max_rows_per_run=400)
    note = f"(800 of {2 * rows:,} rows shown)"
    assert len(sampled) == 800 and sampled.attrs["total_rows"] == 2 * rows
    assert value_distributions(sampled, "class").layout.title.text.endswith(note)
    assert value_distributions(sampled, "origin").layout.title.text.endswith(note)
    assert value_histogram(sampled).layout.title.text.endswith(note)


def test_value_against_loss_states_its_sample(run_store, result):
    frame = with_losses(run_store, result)
    figure = value_vs_loss(frame, max_points=300)
    assert sum(len(trace.x) for trace in figure.data) == 300
    assert figure.layout.title.text == f"Value against the row's mean training loss (300 of {len(frame):,} rows shown)"
    assert value_vs_loss(frame).layout.title.text == "Value against the row's mean training loss"   # all rows
