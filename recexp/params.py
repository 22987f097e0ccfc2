"""Declarative parameter specs shared by every family (strategies, generators, models, importance).

A class declares its parameters once, as data::

    class SMOTE(Strategy):
        params = {**Strategy.params,
                  "k_neighbors": Int(1, None, help="Neighbours used to interpolate new rows.")}

        def __init__(self, sampling_strategy="auto", k_neighbors=5, random_state=None):
            self.sampling_strategy = sampling_strategy
            self.k_neighbors = k_neighbors
            self.random_state = random_state

The same spec validates values (``validate_params``), parses ``KEY=VALUE`` strings from the CLI
(``from_strings``), generates Streamlit widgets (``recexp.ui``) and is stored in run specs
(``describe``). Defaults come from the constructor signature, as in scikit-learn.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from recexp.errors import InvalidParameterError
from recexp.i18n import _


class Param:
    """One parameter's type and help text; subclasses define ``check`` and ``parse``.

    ``search`` (on :class:`Float`, :class:`Choice` and :class:`Optional`): ``False`` keeps the parameter at its
    default in a tuning study (:mod:`recexp.tune.space`): a choice of *how* to compute (a neighbour-search
    backend) or a policy the analyst sets (a privacy budget), not a knob to optimise for a score.
    """

    help: str = ""
    search: bool = True

    def check(self, value: Any) -> bool:
        """Whether ``value`` is allowed."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """Convert a command-line string into a value (not yet checked)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What values are allowed, in words, for messages and help."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description of the spec (for ``--json`` listings and run specs)."""
        raise NotImplementedError


def param_label(name: str) -> str:
    """A parameter's label on a widget: ``k_neighbors`` -> ``K neighbors``."""
    return name.replace("_", " ").capitalize()


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f"at least {low}"
    if high is not None:
        return f"at most {high}"
    return "any value"


@dataclass(frozen=True)
class Int(Param):
    """An integer in ``[low, high]``; ``None`` leaves a side open.

    ``log`` says the parameter acts on a log scale (a search samples it log-uniformly, see
    :mod:`recexp.tune`).
    """

    low: int | None = None
    high: int | None = None
    help: str = ""
    log: bool = False

    def check(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not value.is_integer():
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def parse(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            return text

    def describe(self) -> str:
        return f"an integer {_bounds_text(self.low, self.high)}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "help": self.help}


@dataclass(frozen=True)
class Float(Param):
    """A real number in ``[low, high]`` (open at a side when ``*_open`` is set); ``log``: acts on a log scale."""

    low: float | None = None
    high: float | None = None
    help: str = ""
    low_open: bool = False
    high_open: bool = False
    log: bool = False
    search: bool = True

    def check(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def parse(self, text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    def describe(self) -> str:
        text = f"a number {_bounds_text(self.low, self.high)}"
        if self.low_open or self.high_open:
            text += " (" + ", ".join(
                f"excluding {b}" for b, o in ((self.low, self.low_open), (self.high, self.high_open)) if o
            ) + ")"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "low_open": self.low_open,
                "high_open": self.high_open, "log": self.log, "help": self.help}


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed set of values; ``options`` maps each value to a short label.

    ``search=False``: see :class:`Param`.
    """

    options: dict[Any, str] = field(default_factory=dict)
    help: str = ""
    search: bool = True

    def check(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:
            return False

    def parse(self, text: str) -> Any:
        for option in self.options:
            if str(option) == text:
                return option
        return text

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def to_json(self) -> dict[str, Any]:
        return {"type": "choice", "options": {str(k): v for k, v in self.options.items()}, "help": self.help}


@dataclass(frozen=True)
class Bool(Param):
    """True or False."""

    help: str = ""

    def check(self, value: Any) -> bool:
        return isinstance(value, bool)

    def parse(self, text: str) -> Any:
        lowered = text.strip().lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        return text

    def describe(self) -> str:
        return "true or false"

    def to_json(self) -> dict[str, Any]:
        return {"type": "bool", "help": self.help}


@dataclass(frozen=True)
class Text(Param):
    """A string; with ``pattern``, one the whole of which matches that regular expression."""

    pattern: str = ""
    help: str = ""

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and (not self.pattern or re.fullmatch(self.pattern, value) is not None)

    def parse(self, text: str) -> Any:
        return text.strip()

    def describe(self) -> str:
        return f"a string matching {self.pattern!r}" if self.pattern else "a string"

    def to_json(self) -> dict[str, Any]:
        return {"type": "text", "pattern": self.pattern, "help": self.help}


@dataclass(frozen=True)
class Optional(Param):
    """``None`` or a value of ``inner``."""

    inner: Param = field(default_factory=Bool)
    help: str = ""
    search: bool = True

    def check(self, value: Any) -> bool:
        return value is None or self.inner.check(value)

    def parse(self, text: str) -> Any:
        return None if text.strip().lower() in {"none", "null", ""} else self.inner.parse(text)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "optional", "inner": self.inner.to_json(), "help": self.help or self.inner.help}


@dataclass(frozen=True)
class Union(Param):
    """A value allowed by any of ``alternatives`` (tried in order when parsing)."""

    alternatives: tuple[Param, ...] = ()
    help: str = ""

    def check(self, value: Any) -> bool:
        return any(alt.check(value) for alt in self.alternatives)

    def parse(self, text: str) -> Any:
        for alt in self.alternatives:
            value = alt.parse(text)
            if alt.check(value):
                return value
        return text

    def describe(self) -> str:
        return " or ".join(alt.describe() for alt in self.alternatives)

    def to_json(self) -> dict[str, Any]:
        return {"type": "union", "alternatives": [a.to_json() for a in self.alternatives], "help": self.help}


@dataclass(frozen=True)
class Mapping(Param):
    """A dict from class label (string) to a value of ``value``; CLI form ``a:10,b:20``."""

    value: Param = field(default_factory=lambda: Int(0, None))
    help: str = ""

    def check(self, value: Any) -> bool:
        return (isinstance(value, dict) and len(value) > 0
                and all(isinstance(k, str) and self.value.check(v) for k, v in value.items()))

    def parse(self, text: str) -> Any:
        text = text.strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        result: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition(":")
            if not sep:
                return text
            result[key.strip()] = self.value.parse(raw.strip())
        return result or text

    def describe(self) -> str:
        return f"a mapping from class label to {self.value.describe()} (e.g. buy:500,cart:300)"

    def to_json(self) -> dict[str, Any]:
        return {"type": "mapping", "value": self.value.to_json(), "help": self.help}


class Parametrized:
    """Base for every configurable family: a class-level ``params`` spec plus sklearn-style access.

    Constructors only store their keyword arguments under the same names. ``validate_params``
    checks every value against the spec and raises :class:`InvalidParameterError` with a sentence
    naming the parameter, what it must be, what was given and what to do.
    """

    params: ClassVar[dict[str, Param]] = {}

    @classmethod
    def param_names(cls) -> list[str]:
        """Constructor argument names, in signature order."""
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default value of every parameter, from the constructor signature."""
        signature = inspect.signature(cls.__init__)
        return {name: signature.parameters[name].default for name in cls.param_names()}

    def get_params(self) -> dict[str, Any]:
        """Current parameter values (what the constructor stored)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def validate_params(self) -> None:
        """Check every parameter against the spec; raise ``InvalidParameterError`` on the first bad one."""
        for name, value in self.get_params().items():
            spec = self.params.get(name)
            if spec is not None and not spec.check(value):
                raise InvalidParameterError(
                    _("{name}: parameter '{name2}' must be {spec}, but got {value!r}. Change '{name2}' to an "
                      "allowed value.").format(
                      name=type(self).__name__, name2=name, spec=spec.describe(), value=value)
                )

    @classmethod
    def from_strings(cls, pairs: dict[str, str], **fixed: Any):
        """Build an instance from ``KEY=VALUE`` strings (CLI), parsing each with its spec."""
        known = set(cls.param_names())
        unknown = sorted(set(pairs) - known)
        if unknown:
            raise InvalidParameterError(
                _("{name} has no parameter {repr}; its parameters are: {value}.").format(
                  name=cls.__name__, repr=', '.join(map(repr, unknown)), value=', '.join(sorted(known)) or _('none'))
            )
        values = {k: cls.params[k].parse(v) if k in cls.params else v for k, v in pairs.items()}
        return cls(**{**values, **fixed})

    @classmethod
    def describe_params(cls) -> dict[str, dict[str, Any]]:
        """JSON-able spec: for each parameter its type, bounds or choices, default and help."""
        defaults = cls.defaults()
        return {name: {**spec.to_json(), "default": defaults.get(name)} for name, spec in cls.params.items()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
