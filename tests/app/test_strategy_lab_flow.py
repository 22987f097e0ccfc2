"""The Strategy Lab in the analyst's flow: a picker grouped by family with the names the Train page uses,
"Add to grid" that hands a tuned strategy to the Train page, and slow previews that start on a click, run
in the background with progress, and can be cancelled."""

from __future__ import annotations

from recexp.runs import SQLiteRunStore
from recexp.data.source import workspace
from recexp.strategies import STRATEGIES, strategies_by_family, strategies_for, strategy_label
from recexp.ui.params import widget_key
from tests.app.conftest import rerun_until

WAIT = 300                    # seconds a test waits at most for background work (a guard against a hang)


def _metric(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def test_the_picker_groups_by_family_with_the_names_of_the_train_page(lab):
    picker = lab.selectbox(key="lab_strategy")
    in_family_order = [name for names in strategies_by_family("behavior").values() for name in names]
    assert picker.options == [strategy_label(name) for name in in_family_order]
    assert "SMOTE (smote) · balancing" in picker.options

    lab.pills(key="lab_family").set_value("synthesis").run()              # the strategy moves into the family
    assert not lab.exception, lab.exception
    assert lab.selectbox(key="lab_strategy").options == [strategy_label(n) for n in ("gan", "vae", "gaussian_copula")]
    assert lab.selectbox(key="lab_strategy").value == "gan"
    lab.selectbox(key="lab_strategy").set_value("gaussian_copula").run()
    lab.pills(key="lab_family").set_value(None).run()                      # all families again; the choice stays
    assert lab.selectbox(key="lab_strategy").value == "gaussian_copula"
    assert len(lab.selectbox(key="lab_strategy").options) == len(strategies_for("behavior")) < len(STRATEGIES)


def test_add_to_grid_hands_the_tuned_strategy_and_its_parameters_to_the_train_page(lab, open_page):
    smote = STRATEGIES["smote"]
    lab.selectbox(key="lab_strategy").set_value("smote").run()
    lab.number_input(key=widget_key("lab", smote, "k_neighbors")).set_value(3)
    lab.selectbox(key=widget_key("lab", smote, "sampling_strategy", "0")).set_value("minority")
    lab.run()
    lab.button(key="lab_add_to_grid").click().run()
    assert not lab.exception, lab.exception
    assert any(c.value == "Train page grid: No strategy (baseline) (none) · baseline, SMOTE (smote) · balancing"
               for c in lab.caption)

    train = open_page(lab, "train")
    picked = train.multiselect(key="train_strategies")
    assert picked.value == ["none", "smote"]
    assert "SMOTE (smote) · balancing" in picked.options                     # one name on both pages
    assert train.number_input(key=widget_key("train", smote, "k_neighbors")).value == 3
    assert train.radio(key=widget_key("train", smote, "sampling_strategy", "kind")).value == 0
    assert train.selectbox(key=widget_key("train", smote, "sampling_strategy", "0")).value == "minority"

    # what the analyst changes on the Train page survives a visit to another page
    train.number_input(key=widget_key("train", smote, "k_neighbors")).set_value(4).run()
    open_page(train, "imbalance")
    train = open_page(train, "train")
    assert train.multiselect(key="train_strategies").value == ["none", "smote"]
    assert train.number_input(key=widget_key("train", smote, "k_neighbors")).value == 4


def test_the_handed_over_parameters_are_the_ones_the_run_trains_with(app, open_page):
    """End to end on the Criteo sample (144 training rows): tuned in the Lab, launched on Train, stored in the run."""
    app.selectbox(key="data_sample").set_value("criteo").run()
    app.button(key="data_use").click().run()
    lab = open_page(app, "strategy_lab")
    smote = STRATEGIES["smote"]
    lab.selectbox(key="lab_strategy").set_value("smote").run()
    lab.number_input(key=widget_key("lab", smote, "k_neighbors")).set_value(2).run()
    lab.button(key="lab_add_to_grid").click().run()
    train = open_page(lab, "train")
    train.multiselect(key="train_strategies").set_value(["smote"])
    train.selectbox(key="train_model").set_value("logreg")
    train.number_input(key="train_seeds").set_value(1)
    train.number_input(key="train_epochs").set_value(1)
    train.selectbox(key="train_device").set_value("cpu")
    train.button(key="train_launch").click().run()
    assert not train.exception and not train.error, [e.value for e in train.error]
    store = SQLiteRunStore(workspace())
    rerun_until(train, lambda at: all(r.status == "finished" for r in store.list_runs(
        store.list_experiments()[-1].id)), timeout=WAIT)
    [run] = store.list_runs(store.list_experiments()[-1].id)
    assert run.spec["strategy"] == "smote" and run.spec["strategy_params"]["k_neighbors"] == 2


def test_a_generator_waits_for_run_preview_with_an_estimate_from_rows_and_epochs(lab, run_preview):
    lab.selectbox(key="lab_strategy").set_value("vae").run()
    assert not lab.exception, lab.exception
    assert not lab.metric and not lab.error                                  # nothing fitted yet
    rows = len(lab.session_state["lab_previews"]) if "lab_previews" in lab.session_state else 0
    note = next(i.value for i in lab.info if "waits for a click" in i.value)
    assert "for 10 epochs takes about" in note
    lab.number_input(key=widget_key("lab", STRATEGIES["vae"], "epochs")).set_value(2).run()
    note = next(i.value for i in lab.info if "waits for a click" in i.value)
    assert "for 2 epochs takes about" in note and not lab.metric

    run_preview(lab)
    assert not lab.error, [e.value for e in lab.error]
    assert _metric(lab, "Training rows after") > _metric(lab, "Training rows before")
    assert "Synthesis report" in [h.value for h in lab.subheader]
    assert len(lab.session_state["lab_previews"]) == rows + 1
    epochs = lab.number_input(key=widget_key("lab", STRATEGIES["vae"], "epochs"))
    epochs.set_value(3).run()                                                # other settings: another click
    assert not lab.metric and any(b.key == "lab_run_preview" for b in lab.button)
    epochs.set_value(2).run()                                                # a kept preview shows at once
    assert lab.metric and not any(b.key == "lab_run_preview" for b in lab.button)
    lab.selectbox(key="lab_strategy").set_value("smote").run()              # quick strategies stay live
    assert lab.metric and not any(b.key == "lab_run_preview" for b in lab.button)


def test_a_running_preview_shows_progress_keeps_the_page_and_can_be_cancelled(lab):
    vae = STRATEGIES["vae"]
    lab.selectbox(key="lab_strategy").set_value("vae").run()
    lab.number_input(key=widget_key("lab", vae, "epochs")).set_value(100_000)
    lab.number_input(key=widget_key("lab", vae, "eval_every")).set_value(0)
    lab.checkbox(key=widget_key("lab", vae, "quality_report")).uncheck()
    lab.run()
    lab.button(key="lab_run_preview").click().run()
    assert not lab.exception, lab.exception
    task = lab.session_state["lab_task"]
    assert task.status == "running"                                          # the script returned: no freeze
    rerun_until(lab, lambda at: "epoch" in task.message, timeout=WAIT)
    assert lab.get("progress") and lab.selectbox(key="lab_strategy")       # progress, and the page's widgets
    assert any("so far" in c.value for c in lab.caption)

    lab.button(key="lab_cancel_preview").click().run()
    assert not lab.exception, lab.exception
    assert any(i.value.startswith("Preview cancelled after") for i in lab.info)
    assert any(b.key == "lab_run_preview" for b in lab.button) and not lab.metric
    task.wait(WAIT)
    assert task.status == "cancelled" and task.ended_at is not None          # the thread stopped...
    done = int(task.message.split()[1])
    assert done < 100_000                                                    # ...long before its last epoch
