"""Test-time augmentation (TTA): score each evaluated row as the mean over perturbed copies of it.

At evaluation, every validation and test row is scored ``K + 1`` times: as it is, and as ``K`` copies
perturbed by one of the expansion operators of :mod:`recexp.strategies.expansion` (Gaussian noise,
feature masking, sequence crop / mask / reorder: the very same code that makes training rows, here
applied to the evaluated rows only). The row's TTA probabilities are the mean of the ``K + 1``
predicted distributions. Cost: ``K + 1`` forward passes per evaluated row.

* The operators' statistics (a feature's spread, range or median) come from the training split, so
  the evaluated rows change only their own perturbed columns; labels are never read (mixup, which
  needs a partner of the same class, is not offered).
* The copies are seeded by the run's seed and the split, so the same run gives the same TTA
  predictions; ``K = 0`` gives exactly the plain predictions.

Example
-------
>>> operator = tta_operator("gaussian_noise", {"scale": 0.05})                    # doctest: +SKIP
>>> proba = tta_proba(module, test, operator, copies=4, seed=0, reference=train)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from torch import nn

from recexp.dataset import Dataset
from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.models import evaluate
from recexp.strategies import STRATEGIES
from recexp.strategies.expansion import Expansion, SequenceAugmentation

#: Operators TTA may use: the registered expansion strategies that perturb one row without its label.
TTA_OPERATORS: dict[str, type[Expansion]] = {
    name: cls for name, cls in STRATEGIES.items() if issubclass(cls, Expansion) and cls.test_time}

#: The most perturbed copies per evaluated row (each one is a forward pass over the whole split).
MAX_COPIES = 64

#: Random streams of the two evaluated splits, so that valid and test rows get independent copies.
STREAMS = {"test": 0, "valid": 1}


def tta_operator(name: str, params: dict[str, Any] | None = None, *, strings: bool = False) -> Expansion:
    """The expansion operator ``name`` with ``params`` (or ``KEY=VALUE`` strings with ``strings``), validated.

    ``factor`` (how many rows a strategy adds) means nothing at test time and is refused.

    Raises
    ------
    InvalidParameterError
        Unknown operator (with the list), a parameter it does not have, or a bad value.
    """
    if name not in TTA_OPERATORS:
        hint = (_(" {title} is not an operator on single rows.").format(title=STRATEGIES[name].title)
                if name in STRATEGIES else "")
        raise InvalidParameterError(_("Unknown test-time augmentation {name!r}.{hint} Choose one of "
                                      "{tta_operators}.").format(
                                      name=name, hint=hint, tta_operators=', '.join(TTA_OPERATORS)))
    params = dict(params or {})
    if "factor" in params:
        raise InvalidParameterError(_("Test-time augmentation adds no rows, so it has no 'factor'; set the "
                                      "number of copies instead (--tta-copies, or 'copies' on the Train page)."))
    cls = TTA_OPERATORS[name]
    operator = cls.from_strings(params) if strings else cls(**_unknown_checked(cls, params))
    operator.validate_params()
    return operator


def _unknown_checked(cls: type[Expansion], params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(cls.param_names()))
    if unknown:
        known = [p for p in cls.param_names() if p != "factor"]
        raise InvalidParameterError(_("{title} has no parameter(s) {unknown}; its parameters are {value}.").format(
                                      title=cls.title, unknown=unknown, value=', '.join(known) or _('none')))
    return params


def tta_params(operator: Expansion) -> dict[str, Any]:
    """The operator's parameters without ``factor`` (what a run spec stores)."""
    return {k: v for k, v in operator.get_params().items() if k != "factor"}


def check_copies(copies: Any) -> int:
    """``copies`` as an int in ``0 .. MAX_COPIES``, or a sentence."""
    if isinstance(copies, bool) or not isinstance(copies, int | np.integer) or not 0 <= copies <= MAX_COPIES:
        raise InvalidParameterError(
            _("The number of test-time augmentation copies must be an integer from 0 to {max_copies}, but got "
              "{copies!r}. Each copy is one more forward pass over "
              "the evaluated rows; 4 to 8 is usual.").format(max_copies=MAX_COPIES, copies=copies))
    return int(copies)


def check_applies(operator: Expansion, data: Dataset, model_params: dict[str, Any] | None = None) -> None:
    """Raise a sentence when ``operator`` cannot change what the model sees of ``data``.

    The data must have the columns the operator perturbs; a sequence operator needs a model that reads
    the behaviour sequence (``use_sequence`` not switched off).
    """
    try:
        operator.check_columns(data)
    except InvalidParameterError as error:
        raise InvalidParameterError(_("Test-time augmentation: {error} (here: choose another TTA operator, or "
                                      "leave TTA out).").format(error=error)) from None
    if isinstance(operator, SequenceAugmentation) and (model_params or {}).get("use_sequence") is False:
        raise InvalidParameterError(
            _("{title} perturbs the behaviour sequence, but this model is set not to read it "
              "(use_sequence=False), so every copy would score the same. Choose Gaussian noise or feature "
              "masking, or switch use_sequence on.").format(title=operator.title))


def tta_proba(module: nn.Module, rows: Dataset, operator: Expansion, copies: int, seed: int,
              reference: Dataset | None = None, stream: int = 0, plain: np.ndarray | None = None) -> np.ndarray:
    """Mean predicted probabilities over ``rows`` as they are and ``copies`` perturbed copies of them.

    Parameters
    ----------
    module : nn.Module
        A trained model module (as :func:`recexp.models.evaluate` takes it).
    rows : Dataset
        The evaluated rows (validation or test split).
    operator : Expansion
        From :func:`tta_operator`.
    copies : int
        ``K``: perturbed copies per row; ``K + 1`` forward passes in all. ``0`` returns the plain
        probabilities exactly.
    seed : int
        Seeds the copies (with ``stream``): the same arguments give the same probabilities.
    reference : Dataset, optional
        The training rows the operator's per-feature statistics come from (default ``rows``).
    stream : int
        Separates the random copies of different splits (:data:`STREAMS`).
    plain : numpy.ndarray, optional
        The plain probabilities when already computed (saves one forward pass).

    Returns
    -------
    numpy.ndarray
        ``(n, K)`` float32 probabilities.
    """
    copies = check_copies(copies)
    if plain is None:
        _, plain = evaluate(module, rows)
    total = plain.astype(np.float64)
    rng = np.random.default_rng([int(seed), int(stream)])
    for _ in range(copies):
        values = operator.perturb(rows, rng, reference)
        frame = rows.frame.assign(**{name: np.asarray(v).astype(rows.frame[name].dtype, copy=False)
                                     for name, v in values.items()})
        _, proba = evaluate(module, replace(rows, frame=frame))
        total += proba
    return (total / (copies + 1)).astype(plain.dtype)


__all__ = ["MAX_COPIES", "STREAMS", "TTA_OPERATORS", "check_applies", "check_copies", "tta_operator", "tta_params",
           "tta_proba"]
