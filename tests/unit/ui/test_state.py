"""The active dataset choice as query parameters: what a link carries, and that reading it back checks it
as the Data page would."""

from __future__ import annotations

import pytest

from recexp.data.links import remember_source
from recexp.data.samples import sample_source
from recexp.data.source import DataSource, save_upload
from recexp.errors import InvalidParameterError
from recexp.tasks import TASKS, SplitSpec
from recexp.ui.state import DatasetChoice, choice_from_params, choice_params, default_choice


def test_the_default_choice_is_three_short_parameters():
    params = choice_params(default_choice())
    assert params == {"dataset": "taobao", "task": "behavior", "split": "temporal"}
    back = choice_from_params(params)
    assert (back.source, back.task, back.split) == (sample_source("taobao"), "behavior", SplitSpec())
    assert back.task_params == TASKS["behavior"].defaults()


def test_an_upload_with_task_and_split_settings_round_trips(retailrocket_csv):
    source = DataSource(str(save_upload("events.csv", retailrocket_csv.read_bytes())), kind="log")
    remember_source(source)
    choice = DatasetChoice(source=source, task="purchase",
                           task_params={**TASKS["purchase"].defaults(), "label_window_days": 2.5},
                           split=SplitSpec(method="stratified", test_size=0.3, group_by_user=True, seed=4))
    params = choice_params(choice)
    assert params == {"dataset": params["dataset"], "task": "purchase", "split": "stratified",
                      "task.label_window_days": "2.5", "split.test_size": "0.3", "split.group_by_user": "true",
                      "split.seed": "4"}
    assert str(source.path) not in "".join(params.values())            # the link never names the file
    assert choice_from_params(params) == choice


def test_build_time_sampling_round_trips():
    choice = DatasetChoice(source=sample_source("taobao"), task_params=TASKS["behavior"].defaults(),
                           sampling={"users": 0.25, "negative_rate": 0.1})
    params = choice_params(choice)
    assert params["sample.users"] == "0.25" and params["sample.negative_rate"] == "0.1"
    assert choice_from_params(params) == choice
    assert "sample.users" not in choice_params(DatasetChoice(source=sample_source("taobao"), sampling={"users": 1.0}))


@pytest.mark.parametrize("params, message", [
    ({"dataset": "taobao", "sample.users": "0"}, "Sampling 'users' must be a share"),
    ({"dataset": "taobao", "sample.negative_rate": "many"}, "sampling .* is not understood"),
    ({"dataset": "taobao", "sample.other": "0.5"}, "sampling .* is not understood"),
    ({"dataset": "criteo", "task": "behavior"}, "cannot make; its tasks: table"),
    ({"dataset": "criteo", "task": "table", "split": "temporal"}, "'temporal' split"),
    ({"dataset": "taobao", "split.test_size": "1.5"}, "'test_size' must be"),
    ({"dataset": "taobao", "task.sequence_length": "-1"}, "'sequence_length' must be"),
    ({"dataset": "taobao", "task.no_such": "1"}, "no parameter 'no_such'"),
    ({"dataset": "/etc/passwd"}, "neither a bundled sample"),
])
def test_a_link_that_does_not_fit_is_refused_with_a_sentence(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        choice_from_params(params)
