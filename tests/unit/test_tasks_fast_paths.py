"""The purchase task's vocabulary helper agrees with its plain definition on the bundled Taobao log."""

import numpy as np
import pandas as pd
import pytest

from recexp.data import load
from recexp.tasks import _log_arrays, _vocabulary


@pytest.fixture(scope="module")
def arrays(taobao_csv):
    return _log_arrays(load(taobao_csv))


@pytest.mark.parametrize("max_vocab", [10, 1_000, 10**6])
def test_vocabulary_keeps_the_most_frequent_numbered_by_first_appearance(arrays, max_vocab):
    codes = arrays.category.copy()
    codes[::7] = -1                                              # missing values map to 0
    lookup, k = _vocabulary(codes, arrays.n_categories, max_vocab)
    valid = codes[codes >= 0]
    counts = pd.Series(valid).value_counts(sort=False)
    first = pd.Series(np.arange(len(valid)), index=valid).groupby(level=0).min()
    ranked = pd.DataFrame({"count": counts, "first": first}).sort_values(["count", "first"],
                                                                         ascending=[False, True])
    kept = ranked.head(max_vocab).sort_values("first").index.to_numpy()
    assert k == len(kept) == min(max_vocab, len(counts))
    assert np.array_equal(lookup[kept], np.arange(1, k + 1))
    assert lookup[-1] == 0 and np.count_nonzero(lookup) == k
