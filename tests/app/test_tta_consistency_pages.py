"""Pages under AppTest: TTA on the Train page, the consistency check in the Strategy Lab and on Compare."""

import json
from dataclasses import replace

from recexp.jobs import execute
from recexp.runs import SQLiteRunStore
from recexp.spec import RunSpec, prepare_data
from recexp.ui.i18n import LANGUAGE_KEY
from tests.app.conftest import rerun_until


def test_train_page_launches_a_run_with_tta_and_states_its_cost(app, open_page):
    at = open_page(app, "train")
    at.selectbox(key="train_model").set_value("logreg")
    at.number_input(key="train_seeds").set_value(1)
    at.number_input(key="train_epochs").set_value(1)
    at.selectbox(key="train_device").set_value("cpu")
    at.selectbox(key="train_tta").set_value("feature_masking").run()
    at.number_input(key="train_tta_copies").set_value(2).run()
    assert any("Cost: 3 forward passes per evaluated row" in c.value for c in at.caption)
    tta_widgets = [w.key for kind in ("radio", "number_input", "slider") for w in at.get(kind)
                   if w.key and w.key.startswith("train_tta_FeatureMasking")]
    assert tta_widgets and not any("factor" in k for k in tta_widgets)           # no 'factor' at test time
    at.button(key="train_launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = SQLiteRunStore.open()
    rerun_until(at, lambda a: all(r.status == "finished" for r in store.list_runs()) and store.list_runs())
    (run,) = store.list_runs()
    assert run.spec["tta"] == "feature_masking" and run.spec["tta_copies"] == 2
    assert run.info["tta"]["forward_passes"] == 3 and 0 <= run.info["tta"]["metrics"]["accuracy"] <= 1
    assert (store.artifact_dir(run.id) / "tta_predictions.parquet").exists()


def test_train_page_refuses_a_sequence_operator_the_model_does_not_read(app, open_page):
    at = open_page(app, "train")
    at.selectbox(key="train_model").set_value("logreg").run()
    at.checkbox(key="train_LogisticRegression_use_sequence").uncheck()
    at.selectbox(key="train_tta").set_value("sequence_crop").run()
    at.button(key="train_launch").click().run()
    assert not at.exception, at.exception
    assert any("use_sequence=False" in e.value for e in at.error)
    assert not SQLiteRunStore.open().list_runs()


def test_lab_shows_whether_the_new_rows_look_real(lab):
    lab.selectbox(key="lab_strategy").set_value("smote").run()
    assert not lab.exception, lab.exception
    assert any(s.value == "Do the new rows look real?" for s in lab.subheader)
    lines = [box.value for box in [*lab.warning, *lab.success] if "rows are" in box.value and "AUC" in box.value]
    assert len(lines) == 1 and "new cart rows are" in lines[0]
    table = next(d.value for d in lab.dataframe if "detection AUC" in d.value.columns)
    assert list(table["class"]) == ["cart", "fav", "buy"]
    lab.selectbox(key="lab_strategy").set_value("class_weights").run()      # adds no rows: no check
    assert not any(s.value == "Do the new rows look real?" for s in lab.subheader)


def test_lab_check_reads_in_chinese(lab):
    lab.session_state[LANGUAGE_KEY] = "zh"
    lab.selectbox(key="lab_strategy").set_value("smote").run()
    assert not lab.exception, lab.exception
    assert any(s.value == "新行看起来真实吗？" for s in lab.subheader)
    lines = [box.value for box in [*lab.warning, *lab.success] if "AUC" in box.value]
    assert len(lines) == 1 and lines[0].startswith("新的 cart 行") and lines[0].endswith("。")
    table = next(d for d in lab.dataframe if "detection AUC" in d.value.columns)
    assert list(table.value["class"]) == ["cart", "fav", "buy"]                      # data stays as it is
    assert json.loads(table.proto.columns)["detection AUC"]["label"] == "检测 AUC"


def test_compare_summarises_the_check_per_strategy_and_shows_the_tta_arm(app, open_page, tmp_path, monkeypatch):
    home = tmp_path / "compare_home"
    store = SQLiteRunStore(home)
    spec = RunSpec(source={"sample": "yeast_me2"}, task="table", split={"method": "stratified", "seed": 0},
                   model="logreg", train={"epochs": 1, "batch_size": 64, "device": "cpu"})
    data = prepare_data(spec)
    experiment = store.create_experiment("tta page")
    for strategy in ("none", "smote"):
        run_spec = replace(spec, strategy=strategy, tta="gaussian_noise", tta_copies=2, fingerprint=data[0].fingerprint)
        run = store.create_run(experiment.id, run_spec.to_dict(), name=run_spec.label(), status="running")
        execute(run_spec, store, run.id, data=data)
    monkeypatch.setenv("RECEXP_HOME", str(home))
    at = open_page(app, "compare")
    assert not at.error, [e.value for e in at.error]
    assert list(at.dataframe[0].value.columns)[:3] == ["none", "smote", "Δ smote"]
    assert "smote + TTA" in at.dataframe[0].value.columns and "none + TTA" in at.dataframe[0].value.columns
    checks = next(d.value for d in at.dataframe if "detection_auc" in d.value.columns)
    assert list(checks["group"]) == ["smote"] and 0.0 <= checks["detection_auc"].iloc[0] <= 1.0
