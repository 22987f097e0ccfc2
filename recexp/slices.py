"""Slices of a log task's test rows: who and what a recommender serves worst (cold start, the long tail, categories).

Every test row of a log task (``behavior``, ``purchase``) gets one label per slice dimension:

``user``
    ``new`` when its user has no training row, else ``returning``.
``item``
    ``new`` when its item has no training row, else ``known``.
``popularity``
    The item's popularity decile among the items of the training rows: ``D<d>`` with ``d = ceil(10 * F)``,
    ``F`` the share of training items with at most as many training rows (ties share a decile, so a long
    tail of single-row items fills one decile and leaves lower ones empty); ``unseen`` without training rows.
``category``
    One of the ``top_categories`` categories with the most training rows, else ``other`` (rare, missing,
    or a category first seen after the training rows).
``activity``
    The user's activity segment by training rows: ``light`` / ``medium`` / ``heavy`` by the same
    rounded-up share over the users of the training rows (thirds), ``none`` without training rows.

Every boundary (which items are known, the deciles, the top categories, the segments) is learned from the
training rows only (:meth:`Slicer.fit`), so nothing in the test period moves a slice boundary; the test rows
are only labelled (:meth:`Slicer.transform`). Labels carry their ranges, e.g. ``"D10 (14-97 rows)"``.

Example
-------
>>> from recexp.spec import RunSpec, prepare_data
>>> dataset, split = prepare_data(RunSpec(source={"sample": "taobao"}, task="behavior"))
>>> slices = Slicer().fit(dataset, split.train).transform(dataset, split.test)
>>> list(slices.columns)
['user', 'item', 'popularity', 'category', 'activity']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recexp.dataset import ITEM, USER, Dataset
from recexp.errors import InvalidDataError, InvalidParameterError
from recexp.i18n import N_, _

#: The slice dimensions and what each one says, in display order.
DIMENSIONS = {
    "user": N_("new user (no training rows) vs returning user"),
    "item": N_("new item (no training rows) vs known item"),
    "popularity": N_("the item's popularity decile among training items (D10: the most popular)"),
    "category": N_("the categories with the most training rows, the rest as 'other'"),
    "activity": N_("the user's activity segment by training rows (thirds of the training users)"),
}
#: Label of a category outside the top categories.
OTHER = "other"
_SEGMENTS = ("light", "medium", "heavy")


def _rank_bins(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin ``1..n_bins`` of each positive count: ``ceil(n_bins * F(count))``, F the empirical CDF of ``counts``."""
    ordered = np.sort(counts)
    share = np.searchsorted(ordered, counts, side="right") / len(ordered)
    return np.clip(np.ceil(np.round(n_bins * share, 9)).astype(np.int64), 1, n_bins)


def _bin_ranges(counts: np.ndarray, bins: np.ndarray, n_bins: int) -> dict[int, tuple[int, int]]:
    """Bin -> (fewest, most) training rows of its members, for the bins that have members."""
    return {b: (int(counts[bins == b].min()), int(counts[bins == b].max())) for b in range(1, n_bins + 1)
            if (bins == b).any()}


def _range_label(name: str, span: tuple[int, int]) -> str:
    low, high = span
    return f"{name} ({low} row{'s' if high != 1 else ''})" if low == high else f"{name} ({low}-{high} rows)"


class Slicer:
    """Slice definitions learned from training rows, applied to test rows (scikit-learn's fit / transform).

    Parameters
    ----------
    top_categories : int
        Categories named on their own (those with the most training rows); the rest is ``"other"``.
    n_deciles : int
        Popularity bins of the items (10: deciles).

    Attributes (after :meth:`fit`)
    ------------------------------
    item_counts_, user_counts_ : Series
        Training rows per item / per user (only those with at least one).
    popularity_bins_ : Series
        Item -> its popularity bin ``1..n_deciles``.
    popularity_ranges_ : dict
        Bin -> (fewest, most) training rows of its items.
    activity_bins_ : Series
        User -> its segment ``1..3``; ``activity_ranges_`` as for popularity.
    categories_ : list of str
        The top categories, most training rows first (empty when the dataset has no categories), and
        ``category_codes_`` their codes in the dataset's ``category`` column.
    """

    def __init__(self, top_categories: int = 5, n_deciles: int = 10):
        self.top_categories = top_categories
        self.n_deciles = n_deciles

    @staticmethod
    def _check(dataset: Dataset) -> None:
        missing = [c for c in (USER, ITEM) if c not in dataset.frame.columns]
        if missing:
            raise InvalidDataError(
                _("Slices need each row's user and item, but the '{task}' dataset has no {missing} column: "
                  "slices are defined for log tasks (behavior, purchase), not for feature tables.").format(
                  task=dataset.task, missing=' or '.join(missing)))

    def fit(self, dataset: Dataset, train_rows: np.ndarray) -> Slicer:
        """Learn every boundary from the rows at positions ``train_rows`` (the training split) only."""
        if not isinstance(self.top_categories, int) or self.top_categories < 1:
            raise InvalidParameterError(_("top_categories must be a "
                                          "positive integer, but got {top_categories!r}.").format(top_categories=self.top_categories))
        if not isinstance(self.n_deciles, int) or self.n_deciles < 2:
            raise InvalidParameterError(_("n_deciles must be an integer of at "
                                          "least 2, but got {n_deciles!r}.").format(n_deciles=self.n_deciles))
        self._check(dataset)
        train = dataset.frame.iloc[np.asarray(train_rows)]
        if not len(train):
            raise InvalidDataError(_("Slices are learned from the training rows, but there are none."))
        self.item_counts_ = train[ITEM].value_counts(sort=False).pipe(lambda s: s[s > 0])
        self.user_counts_ = train[USER].value_counts(sort=False).pipe(lambda s: s[s > 0])
        items, users = self.item_counts_.to_numpy(), self.user_counts_.to_numpy()
        self.popularity_bins_ = pd.Series(_rank_bins(items, self.n_deciles), index=self.item_counts_.index)
        self.popularity_ranges_ = _bin_ranges(items, self.popularity_bins_.to_numpy(), self.n_deciles)
        self.activity_bins_ = pd.Series(_rank_bins(users, len(_SEGMENTS)), index=self.user_counts_.index)
        self.activity_ranges_ = _bin_ranges(users, self.activity_bins_.to_numpy(), len(_SEGMENTS))
        self.categories_: list[str] = []
        self.category_codes_: list[int] = []
        if "category" in dataset.frame.columns:
            codes = train["category"].to_numpy(np.int64)
            counts = np.bincount(codes[codes > 0])
            top = [int(c) for c in np.argsort(-counts, kind="stable")[:self.top_categories] if counts[c] > 0]
            self.categories_ = [str(n) for n in dataset.schema.decode("category", np.array(top, dtype=np.int64))]
            self.category_codes_ = top
        return self

    def transform(self, dataset: Dataset, rows: np.ndarray) -> pd.DataFrame:
        """The slice labels of the rows at positions ``rows``: one ordered categorical column per dimension.

        The frame is indexed by the row positions; ``category`` is left out for a log without categories.
        """
        self._check(dataset)
        frame = dataset.frame.iloc[np.asarray(rows)]
        users, items = frame[USER].astype(object), frame[ITEM].astype(object)
        known_user = users.isin(self.user_counts_.index).to_numpy()
        known_item = items.isin(self.item_counts_.index).to_numpy()
        columns: dict[str, pd.Categorical] = {
            "user": pd.Categorical(np.where(known_user, "returning", "new"), categories=["new", "returning"],
                                   ordered=True),
            "item": pd.Categorical(np.where(known_item, "known", "new"), categories=["new", "known"], ordered=True),
        }
        decile_names = {b: _range_label(f"D{b}", span) for b, span in self.popularity_ranges_.items()}
        bins = items.map(self.popularity_bins_).fillna(0).to_numpy(np.int64)
        names = ["unseen", *decile_names.values()]
        columns["popularity"] = pd.Categorical(np.array(["unseen", *(decile_names.get(b, "") for b in range(
            1, self.n_deciles + 1))], dtype=object)[bins], categories=names, ordered=True)
        if self.categories_:
            codes = frame["category"].to_numpy(np.int64)
            labels = np.full(len(frame), OTHER, dtype=object)
            for code, name in zip(self.category_codes_, self.categories_):
                labels[codes == code] = name
            columns["category"] = pd.Categorical(labels, categories=[*self.categories_, OTHER], ordered=True)
        segment_names = {b: _range_label(_SEGMENTS[b - 1], span) for b, span in self.activity_ranges_.items()}
        segments = users.map(self.activity_bins_).fillna(0).to_numpy(np.int64)
        columns["activity"] = pd.Categorical(
            np.array(["none", *(segment_names.get(b, "") for b in range(1, len(_SEGMENTS) + 1))],
                     dtype=object)[segments], categories=["none", *segment_names.values()], ordered=True)
        return pd.DataFrame(columns, index=pd.Index(np.asarray(rows), name="row"))


def slice_test_rows(dataset: Dataset, split, top_categories: int = 5, n_deciles: int = 10) -> pd.DataFrame:
    """The slice labels of ``split.test``, learned from ``split.train`` (see :class:`Slicer`)."""
    return Slicer(top_categories, n_deciles).fit(dataset, split.train).transform(dataset, split.test)


__all__ = ["DIMENSIONS", "OTHER", "Slicer", "slice_test_rows"]
