"""Where an attention model looks in the behaviour sequence: position, past behaviour and category.

A DIN-style model (``din``) weighs each past behaviour of the sequence against the target; the
weights of one row sum to 1 over its non-padding positions. :func:`attention_profile` averages them
over a run's rows three ways, so an analyst can see whether the model leans on the most recent
events, on past purchases rather than views, or on a few categories.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import torch

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.importance.run import TrainedRun
from recexp.models.base import to_tensors

#: Sequence groups the profile reads (see ``recexp.tasks.SEQUENCE_GROUPS``).
BEHAVIOR_GROUP, CATEGORY_GROUP = "hist_behavior", "hist_category"
#: Columns of :func:`attention_profile`'s frame.
PROFILE_COLUMNS = ("by", "key", "mean_weight", "share", "positions")


@torch.no_grad()
def attention_weights(run: TrainedRun, rows: int | None = None, split: str = "train", seed: int = 0,
                      batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Attention weights ``(n, L)`` of the run's kept model and the sequence codes ``(n, G, L)`` they weigh.

    ``rows`` (a seeded random subset) limits the work on a large split; ``split`` is ``"train"``
    (the rows trained on, synthetic ones included) or ``"valid"``.

    Raises
    ------
    InvalidParameterError
        The run's model has no attention over the sequence, or ``split`` / ``rows`` is invalid.
    """
    if split not in ("train", "valid"):
        raise InvalidParameterError(_("'split' must be 'train' or 'valid', but got "
                                      "{split!r}. Pick one of them.").format(split=split))
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1):
        raise InvalidParameterError(_("'rows' must be a positive integer or None (all rows), "
                                      "but got {rows!r}.").format(rows=rows))
    _model, module = run.model_at(None)
    if "return_attention" not in inspect.signature(module.forward).parameters:
        raise InvalidParameterError(
            _("Run {run_id} trained a {model} model, which has no attention over the behaviour sequence; "
              "attention weights exist only for attention models "
              "(din). Choose a din run.").format(run_id=run.run_id, model=run.spec.model))
    dataset = run.train if split == "train" else run.valid
    if rows is not None and rows < len(dataset):
        dataset = dataset.subset(np.sort(np.random.default_rng(seed).choice(len(dataset), rows, replace=False)))
    inputs = to_tensors(dataset).inputs
    weights = [module(*inputs.take(torch.arange(start, min(start + batch_size, len(dataset)))),
                      return_attention=True)[1] for start in range(0, len(dataset), batch_size)]
    return (torch.cat(weights).double().numpy() if weights else np.zeros((0, inputs.sequence.shape[-1])),
            inputs.sequence.numpy())


def attention_profile(run: TrainedRun, rows: int | None = None, split: str = "train", top_categories: int = 20,
                      seed: int = 0) -> pd.DataFrame:
    """Mean attention weight per sequence position, past behaviour type and (top) category.

    Parameters
    ----------
    run : TrainedRun
        A finished run of an attention model (``din``).
    rows : int, optional
        Profile a seeded random subset of this many rows (default: every row of the split).
    split : {"train", "valid"}
        The rows trained on, or the validation rows.
    top_categories : int
        Categories listed one by one (those with the most attention); the rest are one ``other`` row.
    seed : int
        Seeds the subset of ``rows``.

    Returns
    -------
    pandas.DataFrame
        One row per key, columns ``by`` (``"position"``, ``"behavior"`` or ``"category"``), ``key``
        (position ``0`` = most recent event; a behaviour name; the source's category id, or ``other``), ``mean_weight`` (mean weight of the non-padding positions with that
        key), ``share`` (share of all attention; it sums to 1 within each ``by``) and ``positions``
        (how many non-padding positions have that key). Groups the dataset lacks are left out.
        ``attrs["rows"]`` is the number of rows profiled and ``attrs["total_rows"]`` the split's.

    Examples
    --------
    >>> profile = attention_profile(TrainedRun.load(store, din_run_id), rows=5000)    # doctest: +SKIP
    >>> profile[profile["by"] == "behavior"]                                          # doctest: +SKIP
    """
    if isinstance(top_categories, bool) or not isinstance(top_categories, int | np.integer) or top_categories < 1:
        raise InvalidParameterError(
            _("'top_categories' must be a positive integer, but got "
              "{top_categories!r}. Pass e.g. 20.").format(top_categories=top_categories))
    weights, sequence = attention_weights(run, rows, split, seed)
    groups = list(run.train.schema.sequences)
    present = (sequence != 0).any(axis=1)                       # non-padding positions, as the model masks them
    total = weights.sum()
    parts = []

    def profile(by: str, keys: np.ndarray, names) -> pd.DataFrame:
        frame = pd.DataFrame({"key": keys[present], "weight": weights[present]})
        table = frame.groupby("key")["weight"].agg(["mean", "sum", "size"])
        return pd.DataFrame({"by": by, "key": [names(k) for k in table.index], "mean_weight": table["mean"].to_numpy(),
                             "share": table["sum"].to_numpy() / total if total > 0 else 0.0,
                             "positions": table["size"].to_numpy()})

    positions = np.broadcast_to(np.arange(weights.shape[1]), weights.shape)
    parts.append(profile("position", positions, str))
    schema = run.train.schema

    def source_value(group: str):
        return lambda code: str(schema.decode(group, np.array([code]))[0])

    if BEHAVIOR_GROUP in groups:
        parts.append(profile("behavior", sequence[:, groups.index(BEHAVIOR_GROUP)], source_value(BEHAVIOR_GROUP)))
    if CATEGORY_GROUP in groups:
        codes = sequence[:, groups.index(CATEGORY_GROUP)]
        mass = pd.Series(weights[present]).groupby(codes[present]).sum().sort_values(ascending=False)
        top = set(mass.index[:top_categories])
        categories = profile("category", np.where(np.isin(codes, list(top)), codes, -1),
                             lambda code: "other" if code == -1 else source_value(CATEGORY_GROUP)(code))
        parts.append(categories.sort_values("share", ascending=False, key=lambda share: share.where(
            categories["key"] != "other", -1.0)))
    result = pd.concat(parts, ignore_index=True).loc[:, list(PROFILE_COLUMNS)]
    result.attrs.update(rows=len(weights), total_rows=len(run.train if split == "train" else run.valid))
    return result
