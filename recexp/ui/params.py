"""Streamlit widgets generated from a parameter spec (:mod:`recexp.params`).

One call renders one widget per parameter of a :class:`~recexp.params.Parametrized` class and returns
the chosen values, ready for the class's constructor::

    values = param_widgets(SMOTE, prefix="lab", classes=dataset.schema.classes, class_counts=counts)
    strategy = SMOTE(**values)

How each spec type renders: ``Int`` -> ``number_input`` (step 1); ``Float`` -> ``slider`` when both
bounds are closed, else ``number_input``; ``Choice`` -> ``selectbox`` labelled by the option texts;
``Bool`` -> ``checkbox``; ``Text`` -> ``text_input``; ``Optional`` -> a ``toggle`` ("set") plus the inner
widget when on; ``Union`` -> a ``radio`` over the alternatives plus the chosen alternative's widget;
``Mapping`` -> one ``number_input`` per class. Widget keys are ``<prefix>_<Class>_<param>`` (inner widgets add a suffix),
so two classes with a parameter of the same name never share a widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from recexp.i18n import N_, _
from recexp.params import (Bool, Choice, Float, Int, Mapping, Optional, Param, Parametrized, Text, Union,
                           param_label)

_OPEN = 1e-6          # distance kept from an open bound (e.g. "greater than 0")
_ALTERNATIVE_LABELS = {Choice: N_("preset"), Float: N_("ratio"), Int: N_("number"), Mapping: N_("per class"),
                       Bool: N_("on / off")}


def widget_key(prefix: str, owner: type, name: str, *suffix: str) -> str:
    """The session-state key of a parameter's widget."""
    return "_".join((prefix, owner.__name__, name, *suffix))


def param_widgets(owner: type[Parametrized], *, prefix: str, classes: Sequence[str] = (),
                  class_counts: dict[str, int | float] | None = None, container=None,
                  values: dict[str, Any] | None = None, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Render a widget for every parameter of ``owner`` and return ``{name: value}``.

    Parameters
    ----------
    owner : type
        A :class:`~recexp.params.Parametrized` subclass (strategy, model, generator...).
    prefix : str
        The page's session-state prefix (e.g. ``"lab"``); every widget key starts with it.
    classes : sequence of str
        Class names, for ``Mapping`` parameters (one input per class).
    class_counts : dict, optional
        Starting value of each class's input in an integer ``Mapping`` (the current rows per class);
        real-valued mappings (factors) start at 1.0.
    container : optional
        Where to draw (a column, an expander, ``st.sidebar``); defaults to the page body.
    values : dict, optional
        Starting values that replace the constructor's defaults (e.g. parameters tuned on another page).
        Like every starting value, they count only when a widget is first drawn; afterwards the widget
        keeps what the analyst set.
    exclude : sequence of str
        Parameters drawn no widget and left out of the result (e.g. an expansion operator's ``factor``
        when it serves test-time augmentation).

    Returns
    -------
    dict
        Parameter name -> value (``None`` where an ``Optional`` is switched off).
    """
    where = container if container is not None else st
    starts = {**owner.defaults(), **(values or {})}
    chosen: dict[str, Any] = {}
    for name, spec in owner.params.items():
        if name in exclude:
            continue
        key = widget_key(prefix, owner, name)
        chosen[name] = _widget(where, spec, _(param_label(name)), key, starts.get(name), spec.help,
                               tuple(classes), class_counts or {})
    return chosen


def _widget(where, spec: Param, label: str, key: str, default: Any, help_text: str,
            classes: tuple[str, ...], class_counts: dict[str, Any]) -> Any:
    help_text = _(help_text or spec.help) or None
    if isinstance(spec, Bool):
        return where.checkbox(label, value=bool(default) if isinstance(default, bool) else False, key=key,
                              help=help_text)
    if isinstance(spec, Int):
        start = default if spec.check(default) else (spec.low if spec.low is not None else 0)
        return int(where.number_input(label, min_value=spec.low, max_value=spec.high, value=int(start), step=1,
                                      key=key, help=help_text))
    if isinstance(spec, Float):
        start = float(default) if spec.check(default) else _float_start(spec)
        if spec.low is not None and spec.high is not None and not (spec.low_open or spec.high_open):
            return float(where.slider(label, min_value=float(spec.low), max_value=float(spec.high), value=start,
                                      step=_step(spec), key=key, help=help_text))
        low = None if spec.low is None else float(spec.low) + (_OPEN if spec.low_open else 0.0)
        high = None if spec.high is None else float(spec.high) - (_OPEN if spec.high_open else 0.0)
        return float(where.number_input(label, min_value=low, max_value=high, value=start, step=_step(spec),
                                        format="%g", key=key, help=help_text))
    if isinstance(spec, Choice):
        options = list(spec.options)
        index = options.index(default) if default in spec.options else 0
        texts = {option: _(text) for option, text in spec.options.items()}   # translated while drawing
        return where.selectbox(label, options, index=index, format_func=texts.get, key=key,
                               help=help_text)
    if isinstance(spec, Text):
        return where.text_input(label, value=default if isinstance(default, str) else "", key=key,
                                help=help_text).strip()
    if isinstance(spec, Optional):
        enabled = where.toggle(_("Set {parameter}").format(parameter=label.lower()), value=default is not None,
                               key=f"{key}_set", help=help_text)
        if not enabled:
            return None
        inner_default = default if default is not None else None
        return _widget(where, spec.inner, label, f"{key}_value", inner_default, spec.inner.help, classes,
                       class_counts)
    if isinstance(spec, Union):
        labels = [_alternative_label(alt) for alt in spec.alternatives]
        index = next((i for i, alt in enumerate(spec.alternatives) if alt.check(default)), 0)
        chosen = where.radio(label, range(len(labels)), index=index, format_func=lambda i: labels[i],
                             horizontal=True, key=f"{key}_kind", help=help_text)
        alternative = spec.alternatives[chosen]
        inner_default = default if alternative.check(default) else None
        return _widget(where, alternative, f"{label} ({labels[chosen]})", f"{key}_{chosen}", inner_default,
                       alternative.help, classes, class_counts)
    if isinstance(spec, Mapping):
        return _mapping(where, spec, label, key, default, help_text, classes, class_counts)
    raise TypeError(f"No widget for parameter spec {type(spec).__name__}")


def _mapping(where, spec: Mapping, label: str, key: str, default: Any, help_text: str | None,
             classes: tuple[str, ...], class_counts: dict[str, Any]) -> dict[str, Any]:
    where.caption(label + (f": {help_text}" if help_text else ""))
    given = default if isinstance(default, dict) else {}
    result: dict[str, Any] = {}
    for name in classes:
        inner, item_key = spec.value, f"{key}_{_safe(name)}"
        if isinstance(inner, Int):
            start = given.get(name, class_counts.get(name))
            start = int(start) if start is not None and inner.check(int(start)) else (inner.low or 0)
            result[name] = int(where.number_input(name, min_value=inner.low, max_value=inner.high, value=start,
                                                  step=1, key=item_key))
        elif isinstance(inner, Float):
            start = given.get(name, 1.0)
            start = float(start) if inner.check(float(start)) else _float_start(inner)
            low = None if inner.low is None else float(inner.low) + (_OPEN if inner.low_open else 0.0)
            high = None if inner.high is None else float(inner.high) - (_OPEN if inner.high_open else 0.0)
            result[name] = float(where.number_input(name, min_value=low, max_value=high, value=start,
                                                    step=_step(inner), format="%g", key=item_key))
        else:
            result[name] = _widget(where, inner, name, item_key, given.get(name), "", classes, class_counts)
    return result


def _alternative_label(spec: Param) -> str:
    for kind, text in _ALTERNATIVE_LABELS.items():
        if isinstance(spec, kind):
            return _(text)
    return type(spec).__name__.lower()


def _float_start(spec: Float) -> float:
    if spec.low is not None and spec.high is not None:
        return (float(spec.low) + float(spec.high)) / 2
    if spec.low is not None:
        return float(spec.low) + (1.0 if spec.low_open else 0.0)
    if spec.high is not None:
        return float(spec.high) - (1.0 if spec.high_open else 0.0)
    return 0.0


def _step(spec: Float) -> float:
    if spec.low is not None and spec.high is not None and float(spec.high) - float(spec.low) <= 1:
        return 0.01
    return 0.1


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
