"""The generator strategies on the bundled data: exact target mix, flags, copied columns, imputation."""

from __future__ import annotations

import numpy as np
import pytest

from recexp.dataset import IS_SYNTHETIC, LABEL, USER
from recexp.errors import InvalidParameterError
from recexp.strategies.synthesis import CopulaSynthesis, GANSynthesis, SynthesisStrategy, VAESynthesis
from recexp.synthesis.impute import missing_mask

FAST = {GANSynthesis: {"epochs": 1, "eval_every": 0}, VAESynthesis: {"epochs": 1, "eval_every": 0},
        CopulaSynthesis: {}}


@pytest.mark.parametrize("cls", [CopulaSynthesis, VAESynthesis, GANSynthesis])
def test_fills_minority_classes_to_the_majority(cls, tiny_behavior_train):
    result = cls(**FAST[cls]).apply(tiny_behavior_train, seed=0)
    before = tiny_behavior_train.class_counts()
    majority = max(before.values())
    assert result.report.after == {name: majority for name in before}
    assert result.report.target == {name: majority for name, n in before.items() if n < majority}
    frame = result.dataset.frame
    synthetic = frame[IS_SYNTHETIC].to_numpy()
    assert synthetic.sum() == sum(majority - n for n in before.values())
    assert not synthetic[:len(tiny_behavior_train)].any()
    # new rows copy the non-generated columns (user, time, sequences) from a real row of their class
    source = result.source_rows[synthetic]
    real = tiny_behavior_train.frame
    assert (real[LABEL].to_numpy()[source] == frame.loc[synthetic, LABEL].to_numpy()).all()
    assert (real[USER].to_numpy()[source] == frame.loc[synthetic, USER].to_numpy()).all()
    sequence = list(tiny_behavior_train.schema.sequence_columns)
    assert np.array_equal(real[sequence].to_numpy()[source], frame.loc[synthetic, sequence].to_numpy())
    assert list(frame.dtypes[: len(real.columns)]) == list(real.dtypes)


def test_per_class_counts_and_errors(tiny_behavior_train):
    counts = tiny_behavior_train.class_counts()
    result = CopulaSynthesis(sampling_strategy={"buy": counts["buy"] + 25}).apply(tiny_behavior_train, seed=1)
    assert result.report.added == {"view": 0, "cart": 0, "fav": 0, "buy": 25}
    with pytest.raises(InvalidParameterError, match="fewer than"):
        CopulaSynthesis(sampling_strategy={"buy": 1}).apply(tiny_behavior_train)
    with pytest.raises(InvalidParameterError, match="refund"):
        CopulaSynthesis(sampling_strategy={"refund": 10}).apply(tiny_behavior_train)
    with pytest.raises(InvalidParameterError, match="ratio"):
        CopulaSynthesis(sampling_strategy=0.5).apply(tiny_behavior_train)
    with pytest.raises(InvalidParameterError, match="epochs"):
        GANSynthesis(epochs=0).apply(tiny_behavior_train)


def test_strategy_specs_match_constructors():
    import inspect

    for cls in (GANSynthesis, VAESynthesis, CopulaSynthesis):
        assert issubclass(cls, SynthesisStrategy) and cls.family == "synthesis" and cls.exact_target
        assert set(cls.params) == set(inspect.signature(cls.__init__).parameters) - {"self"}


def test_impute_missing_fills_real_rows_and_reports_the_comparison(criteo_train):
    result = CopulaSynthesis(impute_missing=True).apply(criteo_train, seed=0)
    frame = result.dataset.frame
    real = ~frame[IS_SYNTHETIC].to_numpy()
    assert not missing_mask(frame.loc[real], criteo_train.schema).to_numpy().any()
    note = " ".join(result.report.notes)
    cells = int(missing_mask(criteo_train.frame, criteo_train.schema).to_numpy().sum())
    assert f"filled {cells:,} missing cells" in note and "mean/mode" in note
    assert result.report.after["0"] == result.report.after["1"] == criteo_train.class_counts()["0"]
