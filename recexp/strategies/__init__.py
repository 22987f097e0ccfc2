"""Strategies: ways to expand, balance or re-weight the training rows, behind one contract.

>>> from recexp.strategies import STRATEGIES, get_strategy
>>> sorted(STRATEGIES)[:3]
['adasyn', 'borderline_smote', 'class_weights']
>>> strategy = get_strategy("smote", k_neighbors=3)
>>> result = strategy.apply(train, seed=0)            # doctest: +SKIP
>>> result.report.after, result.dataset.frame["is_synthetic"].sum()   # doctest: +SKIP

Adding a strategy is one class (a :class:`Strategy` subclass with its ``params`` spec, ``__init__``
and ``_apply``) and one entry in :data:`STRATEGIES`; the dashboard and the CLI pick it up from here.
"""

from __future__ import annotations

from typing import Any

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.tasks import applies_to
from recexp.strategies.balancing import (
    ADASYN, SMOTE, SMOTEENN, SMOTEN, SMOTENC, SVMSMOTE, BorderlineSMOTE, ClusterCentroids, EditedNearestNeighbours,
    KMeansSMOTE, NearMiss, RandomOverSampler, RandomUnderSampler, SMOTETomek, TomekLinks,
)
from recexp.strategies.base import FAMILIES, FAMILY_NAMES, Strategy, StrategyReport, StrategyResult, stratified_sample
from recexp.strategies.baseline import NoStrategy
from recexp.strategies.expansion import (
    FeatureMasking, GaussianNoise, Mixup, SequenceCrop, SequenceMask, SequenceReorder,
)
from recexp.strategies.importance import ImportanceWeighting
from recexp.strategies.ranking import LongTailWeighting, PopularityNegatives
from recexp.strategies.synthesis import CopulaSynthesis, GANSynthesis, VAESynthesis
from recexp.strategies.weighting import ClassWeights, FocalLoss, class_weights

#: Stable name -> strategy class. Names are stored in run specs: never rename one.
STRATEGIES: dict[str, type[Strategy]] = {
    "none": NoStrategy,
    # balancing: over-sampling
    "random_over": RandomOverSampler,
    "smote": SMOTE,
    "smotenc": SMOTENC,
    "smoten": SMOTEN,
    "borderline_smote": BorderlineSMOTE,
    "svm_smote": SVMSMOTE,
    "kmeans_smote": KMeansSMOTE,
    "adasyn": ADASYN,
    # balancing: under-sampling and cleaning
    "random_under": RandomUnderSampler,
    "near_miss": NearMiss,
    "cluster_centroids": ClusterCentroids,
    "tomek_links": TomekLinks,
    "edited_nearest_neighbours": EditedNearestNeighbours,
    # balancing: combined
    "smote_enn": SMOTEENN,
    "smote_tomek": SMOTETomek,
    # weighting
    "class_weights": ClassWeights,
    "focal_loss": FocalLoss,
    # sample expansion
    "gaussian_noise": GaussianNoise,
    "feature_masking": FeatureMasking,
    "mixup": Mixup,
    "sequence_crop": SequenceCrop,
    "sequence_mask": SequenceMask,
    "sequence_reorder": SequenceReorder,
    # generative synthesis (recexp.synthesis generators)
    "gan": GANSynthesis,
    "vae": VAESynthesis,
    "gaussian_copula": CopulaSynthesis,
    # importance-based pruning and weighting (recexp.importance values of a finished run)
    "importance_weighting": ImportanceWeighting,
    # the next-item task's balancing: negatives and the long tail of items
    "popularity_negatives": PopularityNegatives,
    "long_tail_weighting": LongTailWeighting,
}


def _registered(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidParameterError(
            _("There is no strategy called {name!r}. Strategies: {strategies}.").format(
              name=name, strategies=', '.join(STRATEGIES))) from None


def get_strategy(name: str, **params: Any) -> Strategy:
    """An instance of the registered strategy ``name`` with ``params`` (validated when applied)."""
    cls = _registered(name)
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        raise InvalidParameterError(
            _("{title} has no parameter {repr}; its parameters are: {value}.").format(
              title=cls.title, repr=', '.join(map(repr, unknown)), value=', '.join(cls.param_names()) or _('none')))
    return cls(**params)


def strategy_name(strategy: Strategy | type[Strategy]) -> str:
    """The registry name of a strategy instance or class."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    for name, registered in STRATEGIES.items():
        if registered is cls:
            return name
    raise InvalidParameterError(_("{name} is not a registered strategy.").format(name=cls.__name__))


def strategy_label(name: str) -> str:
    """The one name a registered strategy goes by on every page: title, id and family.

    The title is for reading (translated where the catalog has it), the id (the registry key) is what run
    specs, the CLI and the Compare page store, and the family groups the picker, so the Lab and Train pages
    show the same text.

    Examples
    --------
    >>> strategy_label("smote")
    'SMOTE (smote) · balancing'
    """
    cls = _registered(name)
    return _("{title} ({name}) · {family}").format(title=_(cls.title), name=name,
                                                   family=_(FAMILY_NAMES.get(cls.family, cls.family)))


def strategies_by_family(task: str | None = None) -> dict[str, list[str]]:
    """Registered strategy ids grouped by family: families in :data:`FAMILIES` order (those with a
    registered strategy only), ids in registry order; with ``task``, only the strategies for it
    (:func:`strategies_for`).

    Examples
    --------
    >>> strategies_by_family("behavior")["weighting"]
    ['class_weights', 'focal_loss']
    """
    groups: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for name, cls in (STRATEGIES if task is None else strategies_for(task)).items():
        groups[cls.family].append(name)
    return {family: names for family, names in groups.items() if names}


def strategies_for(task: str) -> dict[str, type[Strategy]]:
    """The registered strategies that make sense for ``task`` (:func:`recexp.tasks.applies_to`), in registry order.

    >>> sorted(strategies_for("next_item"))[:3]
    ['long_tail_weighting', 'none', 'popularity_negatives']
    """
    return {name: cls for name, cls in STRATEGIES.items() if applies_to(cls, task)}


def describe_strategies() -> list[dict[str, Any]]:
    """Every registered strategy with its family, summary and parameter spec (JSON-able)."""
    return [{"name": name, **cls.describe()} for name, cls in STRATEGIES.items()]


__all__ = ["FAMILIES", "FAMILY_NAMES", "STRATEGIES", "Strategy", "StrategyReport", "StrategyResult", "class_weights",
           "describe_strategies", "get_strategy", "strategies_by_family", "strategies_for", "strategy_label", "strategy_name",
           "stratified_sample", *(cls.__name__ for cls in STRATEGIES.values())]
