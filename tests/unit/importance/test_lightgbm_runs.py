"""Sample importance of a LightGBM run: the methods that need no gradients value its rows, the others refuse."""

from dataclasses import replace

import numpy as np
import pytest

from recexp.errors import InvalidParameterError
from recexp.importance import METHODS, TrainedRun, get_method, run_importance
from recexp.jobs import execute
from recexp.runs import RUNNING


@pytest.fixture(scope="module")
def lightgbm_run(run_store, make_spec):
    """Id of a finished LightGBM run (rows bagged) after random over-sampling, on the Taobao head."""
    spec = replace(make_spec(strategy="random_over"), model="lightgbm", model_params={"bagging_fraction": 0.8})
    run = run_store.create_run(run_store.create_experiment("lightgbm").id, spec.to_dict(), status=RUNNING)
    execute(spec, run_store, run.id)
    return run.id


@pytest.mark.parametrize("method", ["mean_loss", "forgetting", "knn_shapley", "data_oob"])
def test_methods_without_gradients_value_every_row(method, run_store, lightgbm_run, run_epochs):
    run = TrainedRun.load(run_store, lightgbm_run)
    assert run.sample_stats["epoch"].max() == run_epochs                   # one statistic per block of rounds
    params = {"n_estimators": 10} if method == "data_oob" else {}
    result = run_importance(run_store, lightgbm_run, get_method(method, **params), run=run)
    values = result.values
    assert len(values) == len(run.train) and np.isfinite(values["value"]).all()
    assert values["value"].nunique() > 1 and values["is_synthetic"].any()


def test_mean_loss_ranks_rows_the_trees_got_wrong_lowest(run_store, lightgbm_run):
    run = TrainedRun.load(run_store, lightgbm_run)
    values = run_importance(run_store, lightgbm_run, "mean_loss", run=run).values["value"].to_numpy()
    first_epoch = run.matrix("correct")[:, 0] > 0.5
    assert 0 < first_epoch.mean() < 1
    assert values[~first_epoch].mean() < values[first_epoch].mean()


@pytest.mark.parametrize("method, params", [("el2n", {}), ("grand", {}), ("tracin", {}),
                                            ("knn_shapley", {"space": "embedding"})])
def test_methods_that_need_a_network_refuse_with_a_sentence(method, params, run_store, lightgbm_run):
    assert method in METHODS
    with pytest.raises(InvalidParameterError, match=r"lightgbm model \(gradient-boosted trees\), which has neither\. "
                                                    r"Value its rows with the mean loss"):
        run_importance(run_store, lightgbm_run, get_method(method, **params))
