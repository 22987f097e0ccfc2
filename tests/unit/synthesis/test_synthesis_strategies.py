"""The generator strategies on the bundled data: exact target mix, flags, copied columns, imputation."""

from __future__ import annotations

import numpy as np
import pytest

from recexp.dataset import IS_SYNTHETIC, ITEM, LABEL, USER
from recexp.errors import InvalidParameterError
from recexp.strategies.synthesis import CopulaSynthesis, GANSynthesis, SynthesisStrategy, VAESynthesis
from recexp.synthesis.impute import missing_mask

FAST = {GANSynthesis: {"epochs": 1, "eval_every": 0, "quality_report": False},
        VAESynthesis: {"epochs": 1, "eval_every": 0, "quality_report": False},
        CopulaSynthesis: {"quality_report": False}}


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
    # new rows copy the non-generated columns (time, sequences) from a real row of their class; never its ids
    source = result.source_rows[synthetic]
    real = tiny_behavior_train.frame
    assert (real[LABEL].to_numpy()[source] == frame.loc[synthetic, LABEL].to_numpy()).all()
    assert not set(frame.loc[synthetic, USER]) & set(real[USER])
    sequence = list(tiny_behavior_train.schema.sequence_columns)
    assert np.array_equal(real[sequence].to_numpy()[source], frame.loc[synthetic, sequence].to_numpy())
    same = [c for c in real.columns if c not in (USER, ITEM)]           # id columns gain the new ids' categories
    assert list(frame.dtypes[same]) == list(real.dtypes[same])
    assert all(frame[c].cat.categories.dtype == real[c].cat.categories.dtype for c in (USER, ITEM))


def test_per_class_counts_and_errors(tiny_behavior_train):
    counts = tiny_behavior_train.class_counts()
    result = CopulaSynthesis(sampling_strategy={"buy": counts["buy"] + 25}, quality_report=False).apply(
        tiny_behavior_train, seed=1)
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
    result = CopulaSynthesis(impute_missing=True, quality_report=False).apply(criteo_train, seed=0)
    frame = result.dataset.frame
    real = ~frame[IS_SYNTHETIC].to_numpy()
    assert not missing_mask(frame.loc[real], criteo_train.schema).to_numpy().any()
    note = " ".join(result.report.notes)
    cells = int(missing_mask(criteo_train.frame, criteo_train.schema).to_numpy().sum())
    assert f"filled {cells:,} missing cells" in note and "mean/mode" in note
    assert result.report.after["0"] == result.report.after["1"] == criteo_train.class_counts()["0"]


def _no_torch_inside(value, seen=None) -> None:
    """Walk containers and dataclasses; fail on any torch object."""
    import dataclasses

    import torch

    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    assert not isinstance(value, torch.nn.Module | torch.Tensor | torch.Generator), type(value)
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _no_torch_inside(getattr(value, f.name), seen)
    elif isinstance(value, dict):
        for v in value.values():
            _no_torch_inside(v, seen)
    elif isinstance(value, list | tuple):
        for v in value:
            _no_torch_inside(v, seen)


@pytest.mark.parametrize("cls", [CopulaSynthesis, VAESynthesis, GANSynthesis])
def test_result_carries_the_synthesis_report(cls, tiny_behavior_train):
    import json
    import pickle

    params = {**FAST[cls], "quality_report": True,
              **({"epochs": 2, "eval_every": 1} if cls is not CopulaSynthesis else {})}
    result = cls(**params).apply(tiny_behavior_train, seed=0)
    report = result.synthesis
    assert report is not None and report.generator == cls.generator_class.__name__
    if cls is CopulaSynthesis:
        assert report.history is None and report.best_epoch is None
    else:
        assert list(report.history["epoch"]) == [1, 2]
        assert report.history["quality"].between(0, 1).all()
        assert report.best_epoch in (1, 2)
        assert report.best_quality == pytest.approx(report.history["quality"].max())
    quality = report.quality
    assert 0 <= quality.score <= 1 and 0 <= quality.overall.detection["auc"] <= 1
    assert quality.minority is not None and quality.minority_class in tiny_behavior_train.schema.classes
    # scored on equal rows per class: a stratified sample of real rows and as many generated ones
    assert (report.real["label"].value_counts().sort_index()
            .equals(report.synthetic["label"].value_counts().sort_index()))
    scores = report.scores()
    assert scores.loc[["Quality score", "Column shapes", "Pair trends", "Detection AUC"]].iloc[:, 0].between(0, 1).all()
    assert set(report.columns) == set(report.real.columns)
    _no_torch_inside(result)
    assert pickle.loads(pickle.dumps(result)).synthesis.quality.score == quality.score
    json.dumps(report.to_dict(), allow_nan=False)


def test_held_out_rows_score_efficacy_and_privacy(tiny_behavior_train, behavior_valid):
    """Bound to the validation split, the report tests its efficacy models on those rows and compares privacy
    distances with them; unbound, both fall back on the training rows and the report says so."""
    bound = CopulaSynthesis().with_holdout(behavior_valid).apply(tiny_behavior_train, seed=0)
    unbound = CopulaSynthesis().apply(tiny_behavior_train, seed=0)
    report = bound.synthesis
    assert report.quality.efficacy["holdout"] == "real_test"
    assert report.quality.efficacy["test_rows"] == len(behavior_valid)
    assert report.quality.overall.privacy["baseline"] == "real_test"
    assert report.held_out == f"{len(behavior_valid):,} held-out real rows the generator never saw"
    assert report.to_dict()["held_out"] == report.held_out
    assert all(np.isfinite(report.efficacy_table()["f1_macro"]))
    fallback = unbound.synthesis
    assert fallback.quality.efficacy["test_rows"] < len(tiny_behavior_train)
    assert fallback.quality.overall.privacy["baseline"].startswith("real-to-real")
    assert "the generator saw them" in fallback.held_out
    assert bound.dataset.frame.equals(unbound.dataset.frame)          # scoring never changes the rows added


def test_quality_report_off_leaves_the_output_unchanged(tiny_behavior_train):
    with_report = CopulaSynthesis().apply(tiny_behavior_train, seed=4)
    without = CopulaSynthesis(quality_report=False).apply(tiny_behavior_train, seed=4)
    assert with_report.dataset.frame.equals(without.dataset.frame)
    assert without.synthesis.quality is None and without.synthesis.real is None
    assert without.synthesis.scores().empty


def test_imputation_comparison_is_carried(criteo_train):
    result = CopulaSynthesis(impute_missing=True, quality_report=False).apply(criteo_train, seed=0)
    imputation = result.synthesis.imputation
    assert imputation["filled_cells"] == int(missing_mask(criteo_train.frame, criteo_train.schema).to_numpy().sum())
    summary = result.synthesis.imputation_summary()
    assert list(summary.index) == ["GaussianCopula (conditional sampling)", "mean / mode"]
    assert list(summary.columns) == ["error", "shape"]
    table = result.synthesis.imputation_table()
    assert set(table["method"]) == {"generator", "mean_mode"} and len(table) > 0


def test_progress_hears_every_generator_epoch(tiny_behavior_train):
    heard = []
    VAESynthesis(epochs=3, eval_every=0, quality_report=False).apply(
        tiny_behavior_train, seed=0, progress=lambda done, message: heard.append((done, message)))
    assert [done for done, _ in heard] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert [message.split(":")[0] for _, message in heard] == ["epoch 1 of 3", "epoch 2 of 3", "epoch 3 of 3"]
    assert "loss" in heard[-1][1]
    heard.clear()
    CopulaSynthesis(quality_report=False).apply(tiny_behavior_train, seed=0,
                                                progress=lambda done, message: heard.append((done, message)))
    assert heard == [(1.0, "generator fitted")]


def test_a_run_with_a_generator_keeps_its_synthesis_report_and_shows_its_epochs(taobao_head_file, tmp_path):
    import json

    from recexp.data.source import DataSource
    from recexp.spec import RunSpec
    from recexp.runs import SYNTHESIS_REPORT
    from recexp.jobs import execute
    from recexp.runs import RUNNING, SQLiteRunStore

    store = SQLiteRunStore(tmp_path / "store")
    spec = RunSpec(source=DataSource(str(taobao_head_file(4000))).to_dict(), task="behavior",
                   task_params={"sequence_length": 5}, strategy="vae",
                   strategy_params={"epochs": 2, "eval_every": 1, "sampling_strategy": "minority"}, model="logreg",
                   train={"epochs": 1, "device": "cpu"})
    run = store.create_run(store.create_experiment("vae").id, spec.to_dict(), status=RUNNING)
    messages = []
    update = store.update
    store.update = lambda run_id, **values: (messages.append(values.get("message")), update(run_id, **values))[1]
    execute(spec, store, run.id)
    assert "applying strategy vae: epoch 2 of 2" in " | ".join(m for m in messages if m)
    report = json.loads((store.artifact_dir(run.id) / SYNTHESIS_REPORT).read_text())
    assert report["best_epoch"] in (1, 2) and len(report["history"]) == 2
    assert 0 <= report["quality"]["score"] <= 1
    # efficacy and privacy scored on the run's validation split (held out from the generator and the model)
    valid_rows = store.get_run(run.id).info["rows"]["valid"]
    assert report["held_out"] == f"{valid_rows:,} held-out real rows the generator never saw"
    assert report["quality"]["efficacy"]["test_rows"] == valid_rows
