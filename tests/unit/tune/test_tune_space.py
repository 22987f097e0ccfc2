"""The search space comes from the parameter specs: ranges, log scale, conditionals, narrowing, bad input."""

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from recexp.errors import InvalidParameterError
from recexp.params import Float, Int
from recexp.strategies import STRATEGIES
from recexp.tune import STRATEGY, SearchSpace, narrowing, space_table


def _dims(space):
    return {d.name: d for d in space.dimensions()}


def test_every_strategy_with_parameters_gets_a_space_and_its_samples_pass_its_own_spec():
    searchable = 0
    for name, cls in STRATEGIES.items():
        try:
            space = SearchSpace([name], model="logreg")
        except InvalidParameterError as error:
            assert "nothing to search" in str(error)
            assert not any(isinstance(p, Int | Float) for p in cls.params.values()), name
            continue
        searchable += 1
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for _ in range(8):
            trial = study.ask()
            config = space.sample(trial)
            assert config.strategy == name
            cls(**config.strategy_params).validate_params()           # every sampled value is allowed by the spec
            assert space.config(trial.params) == config              # params -> the same configuration
            study.tell(trial, 0.0)
    assert searchable >= 20


def test_ranges_log_scale_and_conditionals_follow_the_spec():
    dims = _dims(SearchSpace(["smote", "mixup"], model="logreg"))
    assert dims[STRATEGY].distribution == CategoricalDistribution(["smote", "mixup"])
    k = dims["smote.k_neighbors"]
    assert isinstance(k.distribution, IntDistribution) and k.distribution.low == 1   # the spec's Int(1, None)
    assert k.condition == (STRATEGY, "smote")
    alpha = dims["mixup.alpha"].distribution                         # Float(0, None, low_open=True, log=True)
    assert isinstance(alpha, FloatDistribution) and alpha.log and alpha.low > 0
    # a union is conditional: which alternative, then that alternative's own range
    assert dims["smote.sampling_strategy|kind"].distribution.choices == ("choice", "float")
    assert dims["smote.sampling_strategy|float"].condition == ("smote.sampling_strategy|kind", "float")
    assert "auto" in dims["smote.sampling_strategy|choice"].distribution.choices
    assert not any(name.endswith("|mapping") for name in dims)         # rows per class: nothing to range over
    assert "smote.knn_backend" not in dims         # how neighbours are found (Choice(search=False)): not searched


def test_a_generators_privacy_policy_is_never_searched():
    """epsilon, delta, clipping and the id policy are the analyst's privacy decision: a study that searched them
    would trade privacy away for its score (epsilon None = no DP would simply win)."""
    dims = _dims(SearchSpace(["gan"]))
    assert "gan.epochs" in dims
    assert not [name for name in dims if name.split(".")[1].split("|")[0] in ("epsilon", "delta", "max_grad_norm",
                                                                             "ids")]


def test_model_and_training_settings_can_be_searched():
    dims = _dims(SearchSpace(["smote"], model="mlp", search_model=True, search_train=["learning_rate", "epochs"]))
    assert dims["train.learning_rate"].distribution.log
    assert dims["model.hidden_dim"].distribution.log                  # HIDDEN_DIM says log=True
    assert isinstance(dims["model.dropout"].distribution, FloatDistribution)
    assert dims["model.dropout"].distribution.high < 1                # [0, 1) excludes 1


def test_narrowing_fixes_and_narrows_dimensions():
    space = SearchSpace(["smote"], model="logreg", fixed={"smote.sampling_strategy": "minority"},
                        ranges={"smote.k_neighbors": (2, 4)})
    dims = _dims(space)
    assert list(dims) == ["smote.k_neighbors"]
    assert (dims["smote.k_neighbors"].distribution.low, dims["smote.k_neighbors"].distribution.high) == (2, 4)
    config = space.config({"smote.k_neighbors": 3})
    assert config.strategy_params == {"sampling_strategy": "minority", "k_neighbors": 3, "knn_backend": "auto"}
    narrowed = _dims(SearchSpace(["smote"], model="logreg", choices={"smote.sampling_strategy|kind": ["choice"]}))
    assert "smote.sampling_strategy|kind" not in narrowed and "smote.sampling_strategy|float" not in narrowed


@pytest.mark.parametrize("kwargs, words", [
    ({"strategies": ["none"]}, "nothing to search"),
    ({"strategies": ["smote"], "fixed": {"smote.k_neighbors": 3, "smote.sampling_strategy": "auto"}},
     "nothing to search"),
    ({"strategies": ["smote"], "ranges": {"smote.k_neighbors": (0, 4)}}, "infeasible"),
    ({"strategies": ["smote"], "ranges": {"smote.k_neighbors": (8, 4)}}, "infeasible"),
    ({"strategies": ["smote"], "ranges": {"smote.neighbours": (1, 4)}}, "no such parameter"),
    ({"strategies": ["smote"], "choices": {"smote.sampling_strategy|choice": ["everything"]}}, "subset"),
    ({"strategies": ["smote"], "search_train": ["weight_decay"]}, "cannot be searched"),
    ({"strategies": []}, "at least one strategy"),
    ({"strategies": ["smote", "smote"]}, "twice"),
    ({"strategies": ["smote"], "model": "transformer"}, "Unknown model"),
])
def test_bad_spaces_are_refused_with_a_sentence(kwargs, words):
    with pytest.raises(InvalidParameterError, match=words):
        SearchSpace(**{"model": "logreg", **kwargs})


def test_the_page_table_lists_the_space_and_its_edits_narrow_it():
    space = SearchSpace(["smote"], model="logreg")
    table = space_table(space)
    assert list(table["dimension"]) == [d.name for d in space.dimensions()]
    row = table.index[table["dimension"] == "smote.k_neighbors"][0]
    assert (table.at[row, "low"], table.at[row, "high"]) == (1, 20)
    assert narrowing(space, table) == {"fixed": {}, "ranges": {}, "choices": {}}     # unedited: nothing narrowed
    table.at[row, "low"], table.at[row, "high"] = 2, 6
    kinds = table.index[table["dimension"] == "smote.sampling_strategy|kind"][0]
    table.at[kinds, "fix"] = "choice"
    presets = table.index[table["dimension"] == "smote.sampling_strategy|choice"][0]
    table.at[presets, "choices"] = "auto, minority"
    narrowed = narrowing(space, table)
    assert narrowed == {"fixed": {"smote.sampling_strategy|kind": "choice"}, "ranges": {"smote.k_neighbors": (2, 6)},
                        "choices": {"smote.sampling_strategy|choice": ["auto", "minority"]}}
    dims = {d.name: d for d in SearchSpace(["smote"], model="logreg", **narrowed).dimensions()}
    assert set(dims) == {"smote.sampling_strategy|choice", "smote.k_neighbors"}
    table.at[row, "high"] = None
    with pytest.raises(InvalidParameterError, match="both a low and a high"):
        narrowing(space, table)
