"""Checks every registered strategy passes (imbalanced-learn's common-estimator-checks idea)."""

from __future__ import annotations

import inspect
import json

import pytest

from recexp.errors import InvalidParameterError
from recexp.params import Bool, Choice, Float, Int, Mapping, Optional, Param, Union
from recexp.strategies import FAMILIES, STRATEGIES, Strategy, describe_strategies, get_strategy, strategy_name
from recexp.strategies import balancing, expansion

NAMES = list(STRATEGIES)


def bad_values(spec: Param) -> list:
    """Values the spec must reject, one per way a user can get it wrong."""
    candidates = ["not-a-valid-value", -(10**9), 10**9 + 0.5, True, {"no-such-class": -1}, [1, 2]]
    found = [value for value in candidates if not spec.check(value)]
    assert found, f"no bad value for {spec}"
    return found


def test_registry_holds_concrete_strategies_only():
    bases = {Strategy, balancing.ImbalancedLearnStrategy, expansion.Expansion, expansion.SequenceAugmentation}
    assert not bases & set(STRATEGIES.values())
    assert len(set(STRATEGIES.values())) == len(STRATEGIES)
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, Strategy)
        assert strategy_name(cls) == name
    for required in ("none", "smote", "smotenc", "smoten", "adasyn", "random_over", "borderline_smote", "svm_smote",
                     "kmeans_smote", "random_under", "tomek_links", "edited_nearest_neighbours", "near_miss",
                     "cluster_centroids", "smote_enn", "smote_tomek", "class_weights", "focal_loss",
                     "gaussian_noise", "feature_masking", "mixup", "sequence_crop", "sequence_mask",
                     "sequence_reorder"):
        assert required in STRATEGIES


@pytest.mark.parametrize("name", NAMES)
def test_spec_matches_constructor_and_describes_itself(name):
    cls = STRATEGIES[name]
    assert set(cls.params) == set(cls.param_names()), "spec keys must equal constructor arguments"
    assert cls.family in FAMILIES and cls.title and cls.summary
    for param, default in cls.defaults().items():
        assert default is not inspect.Parameter.empty, f"{param} needs a default"
        assert cls.params[param].check(default), f"default of {param} fails its own spec"
    instance = cls()
    assert instance.get_params() == cls.defaults()
    json.dumps(cls.describe(), allow_nan=False)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_only_stores_arguments(name):
    cls = STRATEGIES[name]
    marker = object()
    instance = cls(**{param: marker for param in cls.param_names()})   # no logic may run on the values
    assert all(value is marker for value in instance.get_params().values())


@pytest.mark.parametrize("name", [n for n in NAMES if STRATEGIES[n].params])
def test_every_parameter_rejects_bad_values(name, small_train):
    cls = STRATEGIES[name]
    for param, spec in cls.params.items():
        for value in bad_values(spec):
            with pytest.raises(InvalidParameterError, match=rf"'{param}'"):
                cls(**{param: value}).apply(small_train["purchase"], seed=0)


@pytest.mark.parametrize("name", [n for n in NAMES if STRATEGIES[n].params])
def test_cli_strings_parse_back_to_the_defaults(name):
    cls = STRATEGIES[name]
    for param, default in cls.defaults().items():
        if isinstance(default, dict):
            continue
        text = "none" if default is None else str(default)
        parsed = cls.from_strings({param: text})
        assert getattr(parsed, param) == default


def test_get_strategy_and_listing():
    assert type(get_strategy("smote", k_neighbors=3)) is STRATEGIES["smote"]
    with pytest.raises(InvalidParameterError, match="no strategy called 'smoke'"):
        get_strategy("smoke")
    with pytest.raises(InvalidParameterError, match="has no parameter 'k'"):
        get_strategy("smote", k=3)
    listing = describe_strategies()
    assert [entry["name"] for entry in listing] == NAMES
    smote = next(entry for entry in listing if entry["name"] == "smote")
    assert smote["params"]["k_neighbors"]["default"] == 5
    assert smote["params"]["sampling_strategy"]["type"] == "union"


def test_spec_types_cover_every_widget_kind():
    kinds = {type(spec) for cls in STRATEGIES.values() for spec in cls.params.values()}
    inner = {type(alt) for cls in STRATEGIES.values() for spec in cls.params.values() if isinstance(spec, Union)
             for alt in spec.alternatives}
    assert {Int, Float, Choice, Bool, Optional, Union} <= kinds
    assert Mapping in inner
