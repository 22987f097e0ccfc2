"""The search space of a study, derived from the parameter specs (never listed by hand).

Every strategy's ``params`` spec (and, when asked, the model's and three training settings) becomes
Optuna distributions: an :class:`~recexp.params.Int` or :class:`~recexp.params.Float` a numeric range
(log-uniform where the spec says ``log=True``), a :class:`~recexp.params.Choice` or
:class:`~recexp.params.Bool` a categorical one. A :class:`~recexp.params.Union` or
:class:`~recexp.params.Optional` is conditional: a categorical ``<name>|kind`` picks the alternative,
and only that alternative's parameter is sampled (``<name>|<alternative>``). A
:class:`~recexp.params.Mapping` or :class:`~recexp.params.Text` has no range to search and keeps its
default, as does a parameter declared ``search=False`` (how to compute, e.g. the neighbour-search backend, or
a policy such as a privacy budget). With several strategies the strategy itself is a categorical ``strategy`` and each strategy's
parameters are conditional on it.

Names are ``<strategy>.<param>``, ``model.<param>`` and ``train.<setting>``. The analyst narrows the
space by name: ``fixed`` (a value: not searched), ``ranges`` (``(low, high)`` inside the spec's
bounds) and ``choices`` (a subset of a categorical's options).

>>> from recexp.tune.space import SearchSpace
>>> space = SearchSpace(["smote"], model="logreg")
>>> [d.name for d in space.dimensions()]                         # doctest: +NORMALIZE_WHITESPACE
['smote.sampling_strategy|kind', 'smote.sampling_strategy|choice', 'smote.sampling_strategy|float',
 'smote.k_neighbors']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.jobs import strategy_class
from recexp.models import MODELS, TrainConfig
from recexp.params import Bool, Choice, Float, Int, Optional, Param, Union

#: Training settings a study may search (``train.<name>``), with the range each one spans by default.
TRAIN_SPACE: dict[str, Param] = {
    "learning_rate": Float(1e-5, 1.0, log=True, help="AdamW step size."),
    "batch_size": Int(8, 4096, log=True, help="Rows per optimiser step."),
    "epochs": Int(1, 50, help="Passes over the training rows (an upper bound with early stopping)."),
}
#: An open upper bound is searched up to this many times the default (at least ``low + OPEN_SPAN``).
OPEN_FACTOR = 4
OPEN_SPAN = 10
#: The categorical that picks the strategy when a study searches several.
STRATEGY = "strategy"


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its Optuna name and distribution, and when it is sampled at all.

    ``condition`` is ``(name, value)`` of the categorical it depends on (``None``: always sampled).
    """

    name: str
    distribution: BaseDistribution
    condition: tuple[str, Any] | None = None
    help: str = ""
    default: Any = None                  # the parameter's default (for a ``|kind``, the label that holds it)

    def describe(self) -> str:
        """The range or the options, in words."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return "one of " + ", ".join(map(repr, d.choices))
        return f"{d.low} to {d.high}" + (" (log scale)" if d.log else "")


@dataclass(frozen=True)
class TrialConfig:
    """What one trial trains: a strategy with its parameters, the model's parameters, training settings."""

    strategy: str
    strategy_params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "strategy_params": dict(self.strategy_params),
                "model_params": dict(self.model_params), "train": dict(self.train)}


def _label(param: Param) -> str:
    return type(param).__name__.lower()


def _searchable(param: Param) -> bool:
    if not param.search:
        return False
    if isinstance(param, Optional):
        return _searchable(param.inner)
    if isinstance(param, Union):
        return any(_searchable(alt) for alt in param.alternatives)
    return isinstance(param, Int | Float | Bool | Choice)


def _alternatives(param: Param) -> dict[str, Param | None]:
    """Label -> alternative of a union or optional (``None`` stands for the value None)."""
    if isinstance(param, Optional):
        return {"none": None, _label(param.inner): param.inner}
    alternatives: dict[str, Param | None] = {}
    for alt in param.alternatives:
        if _searchable(alt):
            label = _label(alt)
            alternatives[label if label not in alternatives else f"{label}{len(alternatives)}"] = alt
    return alternatives


class SearchSpace:
    """The space of one study: strategies' specs, optionally the model's and training settings, narrowed.

    Parameters
    ----------
    strategies : list of str
        Registered strategy names; with several, the strategy is itself searched.
    model : str
        The model every trial trains.
    search_model : bool
        Also search the model's own parameters (``model.<param>``).
    search_train : sequence of str
        Training settings to search, from :data:`TRAIN_SPACE` (``train.<name>``).
    fixed, ranges, choices : dict
        Narrowing by dimension name (see the module docstring).

    Raises
    ------
    InvalidParameterError
        An unknown strategy, model or setting; a narrowing that names no dimension, leaves the spec's
        bounds or is empty; or a space with nothing to search.
    """

    def __init__(self, strategies, model: str = "mlp", search_model: bool = False, search_train=(),
                 fixed: dict[str, Any] | None = None, ranges: dict[str, Any] | None = None,
                 choices: dict[str, Any] | None = None):
        if not strategies:
            raise InvalidParameterError(_("Choose at least one strategy to tune."))
        if len(set(strategies)) != len(strategies):
            raise InvalidParameterError(_("A strategy is named twice in "
                                          "{strategies}; name each one once.").format(strategies=list(strategies)))
        if model not in MODELS:
            raise InvalidParameterError(_("Unknown model "
                                          "{model!r}; choose one of {models}.").format(model=model, models=', '.join(MODELS)))
        unknown = sorted(set(search_train) - set(TRAIN_SPACE))
        if unknown:
            raise InvalidParameterError(_("Training setting(s) {unknown} cannot be searched; choose from "
                                          "{train_space}.").format(
                                          unknown=unknown, train_space=', '.join(TRAIN_SPACE)))
        self.strategies = {name: strategy_class(name) for name in strategies}
        self.model = model
        self.search_model = bool(search_model)
        self.search_train = tuple(search_train)
        self.fixed = dict(fixed or {})
        self.ranges = {k: tuple(v) for k, v in (ranges or {}).items()}
        self.choices = {k: list(v) for k, v in (choices or {}).items()}
        self._check_narrowing()
        if not self.dimensions():
            raise InvalidParameterError(
                _("This space has nothing to search: every parameter of {strategies} is fixed or has no range (a "
                  "strategy without parameters, such as 'none', has none). Choose a strategy with parameters, "
                  "add another strategy, search the model or "
                  "training settings, or free a fixed parameter.").format(strategies=', '.join(self.strategies)))

    # --- the groups of parameters --------------------------------------------------------------

    def _groups(self) -> list[tuple[str, dict[str, Param], dict[str, Any], tuple[str, Any] | None]]:
        """(prefix, spec, defaults, condition) of every group of parameters in the space."""
        several = len(self.strategies) > 1
        groups = [(name, cls.params, cls.defaults(), (STRATEGY, name) if several else None)
                  for name, cls in self.strategies.items()]
        if self.search_model:
            groups.append(("model", MODELS[self.model].params, MODELS[self.model].defaults(), None))
        if self.search_train:
            groups.append(("train", {k: TRAIN_SPACE[k] for k in self.search_train}, TrainConfig().to_dict(), None))
        return groups

    # --- listing -------------------------------------------------------------------------------

    def dimensions(self) -> list[Dimension]:
        """Every dimension the space can sample, conditional ones included, in a stable order."""
        dims: list[Dimension] = []
        if len(self.strategies) > 1 and STRATEGY not in self.fixed:
            dims.append(self._categorical(STRATEGY, list(self.strategies), None, _("The strategy a trial applies."), None))
        for prefix, spec, defaults, condition in self._groups():
            if condition is not None and STRATEGY in self.fixed and self.fixed[STRATEGY] != condition[1]:
                continue
            for name, param in spec.items():
                dims += self._dims(f"{prefix}.{name}", param, defaults.get(name), condition)
        return dims

    def _dims(self, path: str, param: Param, default: Any, condition) -> list[Dimension]:
        if path in self.fixed or not _searchable(param):
            return []
        if isinstance(param, Union | Optional):
            alternatives = _alternatives(param)
            kind = f"{path}|kind"
            holder = next((label for label, alt in alternatives.items()
                           if (alt is None and default is None) or (alt is not None and alt.check(default))), None)
            if kind in self.fixed:
                if self.fixed[kind] not in alternatives:
                    raise InvalidParameterError(_("{kind} must be one of {alternatives}, but is fixed to "
                                                  "{fixed!r}. Fix it to one of those.").format(
                                                  kind=kind, alternatives=list(alternatives),
                                                  fixed=self.fixed[kind]))
                picked = {self.fixed[kind]: alternatives[self.fixed[kind]]}
                dims = []
            else:
                head = self._categorical(kind, list(alternatives), condition,
                                         _("Which kind of value {path} takes.").format(path=path), holder)
                picked = {label: alternatives[label] for label in head.distribution.choices}
                dims = [head] if len(picked) > 1 else []
            for label, alt in picked.items():
                if alt is not None:
                    inner_condition = (kind, label) if len(picked) > 1 else condition
                    dims += self._dims(f"{path}|{label}", alt, default if alt.check(default) else None,
                                       inner_condition)
            return dims
        if isinstance(param, Choice | Bool):
            options = list(param.options) if isinstance(param, Choice) else [False, True]
            return [self._categorical(path, options, condition, param.help, default)]
        return [Dimension(path, self._numeric(path, param, default), condition, param.help, default)]

    def _categorical(self, path: str, options: list, condition, help: str, default: Any) -> Dimension:
        if path in self.choices:
            wanted = self.choices[path]
            outside = [c for c in wanted if c not in options]
            if outside or not wanted:
                raise InvalidParameterError(
                    _("The choices for {path} must be a non-empty subset of {options}, but got {wanted}. Pick "
                      "among the listed options.").format(path=path, options=options, wanted=wanted))
            options = [o for o in options if o in wanted]
        return Dimension(path, CategoricalDistribution(options), condition, help, default)

    def _numeric(self, path: str, param: Int | Float, default: Any) -> BaseDistribution:
        is_int = isinstance(param, Int)
        low, high = self._default_range(param, default)
        if path in self.ranges:
            wanted = self.ranges[path]
            if len(wanted) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in wanted):
                raise InvalidParameterError(_("The range for {path} must be two numbers (low, high), but got "
                                              "{wanted}.").format(path=path, wanted=wanted))
            low, high = wanted
            if low > high or not (param.check(low) and param.check(high)):
                raise InvalidParameterError(
                    _("The range {low} to {high} for {path} is infeasible: {path} must be {param}, and the low "
                      "end at most the high end. Narrow it inside those bounds.").format(
                      low=low, high=high, path=path, param=param.describe()))
            if param.log and low <= 0:
                raise InvalidParameterError(_("{path} is searched on a log scale, so its range must be above 0, "
                                              "but it starts at {low}. Start it above "
                                              "0.").format(path=path, low=low))
        if is_int:
            return IntDistribution(int(low), int(high), log=param.log)
        return FloatDistribution(float(low), float(high), log=param.log)

    @staticmethod
    def _default_range(param: Int | Float, default: Any) -> tuple[float, float]:
        """The spec's bounds, closed: an open upper end spans :data:`OPEN_FACTOR` times the default, an
        excluded end steps in by a thousandth of the span, a log scale starts above 0."""
        number = default if isinstance(default, int | float) and not isinstance(default, bool) else None
        low = param.low if param.low is not None else (min(0.0, number or 0.0) if number is not None else 0.0)
        high = param.high
        if high is None:
            high = max(low + OPEN_SPAN, OPEN_FACTOR * number) if number else low + OPEN_SPAN
        if isinstance(param, Float):
            step = (high - low) * 1e-3
            if param.low_open or (param.log and low <= 0):
                low = max(low + step, high * 1e-3) if param.log else low + step
            if param.high_open:
                high -= step
        elif param.log and low < 1:
            low = 1
        return low, high

    # --- sampling ------------------------------------------------------------------------------

    def sample(self, trial) -> TrialConfig:
        """Draw one configuration for an Optuna ``trial`` (only the dimensions its choices make relevant)."""
        dims = {d.name: d for d in self.dimensions()}
        return self._config(lambda name: _suggest(trial, name, dims[name].distribution))

    def config(self, params: dict[str, Any]) -> TrialConfig:
        """The configuration a finished trial's ``params`` stand for (e.g. the best trial's, for a grid)."""
        return self._config(lambda name: params[name])

    def _config(self, pick, strategy: str | None = None) -> TrialConfig:
        if strategy is None:
            searched = self._searched_strategies()
            strategy = searched[0] if len(searched) == 1 else pick(STRATEGY)
        values: dict[str, dict[str, Any]] = {}
        for prefix, spec, defaults, condition in self._groups():
            if condition is not None and condition[1] != strategy:
                continue
            values[prefix] = {name: self._value(f"{prefix}.{name}", param, defaults.get(name), pick)
                              for name, param in spec.items()}
        return TrialConfig(strategy, values[strategy], values.get("model", {}), values.get("train", {}))

    def _value(self, path: str, param: Param, default: Any, pick) -> Any:
        if path in self.fixed:
            value = self.fixed[path]
            if not param.check(value):
                raise InvalidParameterError(_("The fixed value {value!r} of {path} is not allowed: it must be "
                                              "{param}. Fix it to an allowed value.").format(
                                              value=value, path=path, param=param.describe()))
            return value
        if not _searchable(param):
            return default
        if isinstance(param, Union | Optional):
            alternatives = _alternatives(param)
            kind = f"{path}|kind"
            allowed = self.choices.get(kind, list(alternatives))
            label = self.fixed.get(kind) or (allowed[0] if len(allowed) == 1 else pick(kind))
            alt = alternatives[label]
            if alt is None:
                return None
            return self._value(f"{path}|{label}", alt, default if alt.check(default) else None, pick)
        value = pick(path)
        if isinstance(param, Int):
            return int(value)
        if isinstance(param, Float):
            return float(value)
        return value

    def _check_narrowing(self) -> None:
        """Every narrowed name must be a dimension (or a fixed parameter) of this space."""
        names = {STRATEGY} if len(self.strategies) > 1 else set()
        for prefix, spec, defaults, condition in self._groups():
            for name, param in spec.items():
                names |= self._all_names(f"{prefix}.{name}", param)
        for label, narrowing in (("fix", self.fixed), ("range", self.ranges), ("choices", self.choices)):
            unknown = sorted(set(narrowing) - names)
            if unknown:
                raise InvalidParameterError(
                    _("Cannot {label} {unknown}: no such parameter in this space. Its parameters: {names}.").format(
                      label=label, unknown=', '.join(unknown), names=', '.join(sorted(names))))
        if STRATEGY in self.fixed and self.fixed[STRATEGY] not in self.strategies:
            raise InvalidParameterError(_("The fixed strategy {fixed!r} is not one of the strategies searched "
                                          "({strategies}).").format(
                                          fixed=self.fixed[STRATEGY], strategies=', '.join(self.strategies)))

    def _all_names(self, path: str, param: Param) -> set[str]:
        names = {path}
        if isinstance(param, Union | Optional):
            names.add(f"{path}|kind")
            for label, alt in _alternatives(param).items():
                if alt is not None:
                    names |= self._all_names(f"{path}|{label}", alt)
        return names

    def corners(self, end: str = "low") -> list[TrialConfig]:
        """For each strategy searched, its configuration at the ``low`` (or ``high``) end of every numeric range,
        every categorical at the parameter's default where allowed (else its first option).

        Feasibility is usually monotone in a parameter (neighbour counts and clusters are most feasible low,
        ratios high), so a strategy whose two corners both fail on the training split has no feasible
        configuration in this space (:func:`recexp.tune.study.check_feasible`).
        """
        dims = {d.name: d for d in self.dimensions()}

        def pick(name: str) -> Any:
            d = dims[name]
            if isinstance(d.distribution, CategoricalDistribution):
                return d.default if d.default in d.distribution.choices else d.distribution.choices[0]
            return d.distribution.low if end == "low" else d.distribution.high

        return [self._config(pick, strategy) for strategy in self._searched_strategies()]

    def _searched_strategies(self) -> list[str]:
        return [self.fixed[STRATEGY]] if STRATEGY in self.fixed else list(self.strategies)


def space_table(space: SearchSpace) -> pd.DataFrame:
    """The space as an editable table: one row per dimension with ``low`` / ``high`` (numeric) or ``choices``
    (categorical, comma-separated), an empty ``fix`` column and the help text (see :func:`narrowing`)."""
    rows = []
    for d in space.dimensions():
        numeric = not isinstance(d.distribution, CategoricalDistribution)
        rows.append({"dimension": d.name, "low": d.distribution.low if numeric else None,
                     "high": d.distribution.high if numeric else None, "log": bool(numeric and d.distribution.log),
                     "choices": "" if numeric else ", ".join(map(str, d.distribution.choices)), "fix": "",
                     "when": "" if d.condition is None else f"{d.condition[0]} = {d.condition[1]}", "help": d.help})
    return pd.DataFrame(rows, columns=["dimension", "low", "high", "log", "choices", "fix", "when", "help"])


def narrowing(space: SearchSpace, table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``fixed``, ``ranges`` and ``choices`` from a :func:`space_table` the analyst edited.

    A ``fix`` cell fixes its dimension (read as JSON where it parses, e.g. ``3`` or ``true``, else as
    text); a changed ``low`` / ``high`` narrows a range; a shorter ``choices`` list narrows a categorical.
    """
    dims = {d.name: d for d in space.dimensions()}
    result: dict[str, dict[str, Any]] = {"fixed": {}, "ranges": {}, "choices": {}}
    for row in table.to_dict("records"):
        d = dims.get(row["dimension"])
        if d is None:
            continue
        fix = str(row.get("fix") or "").strip()
        if fix:
            result["fixed"][d.name] = _typed(fix, d.distribution)
        elif isinstance(d.distribution, CategoricalDistribution):
            wanted = [c.strip() for c in str(row.get("choices") or "").split(",") if c.strip()]
            if wanted != [str(c) for c in d.distribution.choices]:
                result["choices"][d.name] = [_typed(c, d.distribution) for c in wanted]
        elif (row["low"], row["high"]) != (d.distribution.low, d.distribution.high):
            result["ranges"][d.name] = (_number(row["low"], d.name), _number(row["high"], d.name))
    return result


def _typed(text: str, distribution: BaseDistribution) -> Any:
    """A cell's text as the option it names (categoricals) or as JSON where it parses, else the text."""
    if isinstance(distribution, CategoricalDistribution):
        for option in distribution.choices:
            if str(option) == text:
                return option
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _number(value: Any, name: str) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InvalidParameterError(_("The range of {name} needs both a low and a high end; "
                                      "one is empty.").format(name=name))
    return int(value) if float(value).is_integer() else float(value)


def _suggest(trial, name: str, d: BaseDistribution) -> Any:
    """``trial.suggest_*`` for a distribution of the space."""
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, log=d.log)
    return trial.suggest_float(name, d.low, d.high, log=d.log)


__all__ = ["Dimension", "SearchSpace", "TrialConfig", "TRAIN_SPACE", "STRATEGY", "space_table", "narrowing"]
