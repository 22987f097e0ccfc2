"""Train: choose strategies to compare, a model and its settings; launch the grid; watch it live."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from recexp.charts.training import final_scores, training_curves
from recexp.errors import RecexpError
from recexp.i18n import _, format_integer, format_timestamp, ngettext
from recexp.spec import RunSpec, arm_name
from recexp.strategies import strategies_for, strategy_label
from recexp.compare import MIN_SEEDS, metric_title
from recexp.metrics import METRIC_NAMES, NEXT_ITEM_METRICS, NEXT_ITEM_PROTOCOL, task_scores
from recexp.models import LOSSES, TrainConfig, models_for
from recexp.models.trainer import SAMPLED_LOSSES
from recexp.models.device import available_devices
from recexp.ui.params import param_widgets
from recexp.tasks import TASKS, task_kind
from recexp.tta import MAX_COPIES, TTA_OPERATORS, check_applies, tta_operator
from recexp.ui.state import (active_choice, job_runner, large_log, require_dataset, require_disk_dataset,
                             set_active_choice, set_strategy_grid, sharing_toggle, strategy_grid)

POLL_SECONDS = 1.0


runner = job_runner()
store = runner.store

st.title(_("Train"))
st.caption(_("Compare strategies on one model: every strategy x seed becomes a run in the background, trained on "
             "the training split after the strategy and scored on the untouched test split."))

choice = active_choice()
tasks = [name for name, cls in TASKS.items() if choice.source.kind in cls.input_kinds]
task = st.selectbox(_("Task"), tasks, index=tasks.index(choice.task) if choice.task in tasks else 0, key="train_task",
                    format_func={n: f"{n}: {_(TASKS[n].description)}" for n in tasks}.get,
                    help=_("The learning task on the active data (its parameters and the split are set on the Data "
                           "page)."))
if task != choice.task:
    set_active_choice(replace(choice, task=task, task_params={}))
    choice = active_choice()
disk = require_disk_dataset(choice) if large_log(choice) is not None else None
if disk is not None:                    # larger than memory: only its metadata is read here
    dataset = None
    schema, rows, train_counts, fingerprint = disk.schema, disk.rows, disk.class_counts("train"), disk.fingerprint
else:
    dataset, split = require_dataset()
    schema, fingerprint = dataset.schema, dataset.fingerprint
    rows = {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}
    train_counts = dataset.class_counts(split.train)
st.caption(_("Data: **{name}**, task **{task}**, {classes} classes; {train} train / {valid} validation / {test} test "
             "rows.").format(name=choice.source.name, task=choice.task, classes=schema.n_classes,
                             train=format_integer(rows["train"]), valid=format_integer(rows["valid"]),
                             test=format_integer(rows["test"])))
if disk is not None:
    st.info(_("{name} is larger than memory: every run reads the dataset built on disk with these settings (in "
              "{folder}), or builds it there first if it is gone; the sampling chosen on the Data page goes into each "
              "run's spec.").format(name=choice.source.name, folder=disk.folder), icon=":material/hard_drive:")
ranking = task_kind(choice.task) == "ranking"
if ranking:
    st.caption(_(NEXT_ITEM_PROTOCOL))

# --- what to compare ------------------------------------------------------------------------------
strategies = strategies_for(choice.task)            # only the strategies that make sense for this task
grid = strategy_grid()                   # the session's grid: what the Strategy Lab added, what was chosen here
with st.container(border=True):
    st.subheader(_("Strategies"), divider=False)
    chosen = st.multiselect(_("Strategies to compare (each one is trained with every seed)"), list(strategies),
                            default=[name for name in grid if name in strategies], key="train_strategies",
                            format_func={n: strategy_label(n) for n in strategies}.get,
                            help=_("Tune a strategy in the Strategy Lab and press 'Add to grid' to bring it here "
                                   "with its parameters."))
    classes = list(schema.classes)
    strategy_params: dict[str, dict] = {}
    for name in chosen:
        if strategies[name].params:
            with st.expander(_("Parameters of {name}").format(name=strategy_label(name))):
                strategy_params[name] = param_widgets(strategies[name], prefix="train", classes=classes,
                                                      class_counts=train_counts, values=grid.get(name))
        else:
            strategy_params[name] = {}
    set_strategy_grid(strategy_params)

with st.container(border=True):
    st.subheader(_("Model"), divider=False)
    models = models_for(choice.task)
    if st.session_state.get("train_model") not in models:
        st.session_state["train_model"] = "mlp" if "mlp" in models else next(iter(models))
    model_name = st.selectbox(_("Model"), list(models), key="train_model",
                              format_func={n: f"{n}: {_(models[n].description)}" for n in models}.get)
    with st.expander(_("Parameters of {name}").format(name=model_name)):
        model_params = param_widgets(models[model_name], prefix="train")

with st.container(border=True):
    st.subheader(_("Training"), divider=False)
    defaults = TrainConfig()
    left, middle, right = st.columns(3)
    seeds = left.number_input(_("Seeds per strategy"), 1, 20, 3, key="train_seeds",
                              help=_("Runs per strategy with seeds 0, 1, ...; more seeds give tighter intervals."))
    epochs = middle.number_input(_("Epochs (at most)"), 1, 500, 5, key="train_epochs")
    patience = right.number_input(_("Early-stopping patience (epochs)"), 1, 100, defaults.patience,
                                  key="train_patience")
    batch_size = left.number_input(_("Batch size"), 1, 1 << 16, defaults.batch_size, key="train_batch_size")
    learning_rate = middle.number_input(_("Learning rate"), 1e-6, 1.0, defaults.learning_rate, format="%.5f",
                                        key="train_learning_rate")
    losses = [k for k in LOSSES if k == "cross_entropy" or (k in SAMPLED_LOSSES) == ranking]
    if st.session_state.get("train_loss") not in losses:
        st.session_state["train_loss"] = "cross_entropy"
    loss = right.selectbox(_("Loss"), losses, format_func={k: _(v) for k, v in LOSSES.items()}.get,
                           key="train_loss",
                           help=_("A weighting strategy that asks for a loss (e.g. focal) overrides this."))
    device = left.selectbox(_("Device"), available_devices(), key="train_device",
                            help=_("auto: CUDA GPU if present, then Apple MPS, then CPU."))

with st.container(border=True):
    st.subheader(_("Evidence"), divider=False)
    left, right = st.columns(2)
    default_score, scores = task_scores(task_kind(choice.task), classes)
    primary = left.selectbox(
        _("Primary score (declared before training)"), scores, index=scores.index(default_score),
        format_func={m: f"{metric_title(m)} · {m}" for m in scores}.get, key="train_primary",
        help=_("The one score whose verdict counts on Compare: its p-values are Holm-adjusted across the strategies, "
               "every other score is exploratory. Choose it now, before seeing results."))
    aa = right.checkbox(_("Add an A/A arm"), key="train_aa", disabled="none" not in chosen,
                        help=_("The baseline 'none' trained again under disjoint seeds. It must come out 'no "
                               "difference' on Compare; if it does not, the comparison is noisier than its intervals "
                               "say."))
    if int(seeds) < MIN_SEEDS:
        st.info(ngettext("With {n} seed per strategy Compare shows no verdict: it needs at least {min} paired seeds.",
                         "With {n} seeds per strategy Compare shows no verdict: it needs at least {min} paired "
                         "seeds.", int(seeds)).format(n=int(seeds), min=MIN_SEEDS), icon=":material/info:")

with st.container(border=True):
    st.subheader(_("Test-time augmentation"), divider=False)
    tta_name = st.selectbox(_("Operator"), ["off", *([] if ranking else TTA_OPERATORS)], key="train_tta",
                            format_func={"off": _("off: plain evaluation"),
                                         **{n: op.title for n, op in TTA_OPERATORS.items()}}.get,
                            help=_("Score each validation and test row as the mean prediction over the row and K "
                                   "copies perturbed by this expansion operator (seeded). Compare shows it as its own "
                                   "arm."))
    tta = {}
    if tta_name != "off":
        copies = st.number_input(_("Copies per row (K)"), 0, MAX_COPIES, 4, key="train_tta_copies")
        tta = {"tta": tta_name, "tta_copies": int(copies),
               "tta_params": param_widgets(TTA_OPERATORS[tta_name], prefix="train_tta", exclude=("factor",))}
        st.caption(_("Cost: {passes} forward passes per evaluated row instead of 1.").format(
            passes=format_integer(int(copies) + 1)))

short = TrainConfig(epochs=int(epochs), batch_size=int(batch_size)).short_training_warning(rows["train"])
if short:
    st.warning(short, icon=":material/speed:")
if st.button(_("Launch"), type="primary", key="train_launch", disabled=not chosen, icon=":material/play_arrow:"):
    # A large log's runs reuse the dataset the Data page built on disk (its build has the key a run's build
    # has, and the spec carries that dataset's fingerprint); other sources keep the in-memory path.
    base = RunSpec(source=choice.source.to_dict(), task=choice.task, task_params=dict(choice.task_params),
                   sampling=dict(choice.sampling), out_of_core="yes" if disk is not None else "auto",
                   split=choice.to_dict()["split"], model=model_name, model_params=model_params,
                   train={"epochs": int(epochs), "batch_size": int(batch_size), "learning_rate": float(learning_rate),
                          "loss": loss, "patience": int(patience), "device": device},
                   fingerprint=fingerprint, **tta)
    try:
        if tta and dataset is not None:          # refused here, not in every run, when it cannot apply
            check_applies(tta_operator(tta["tta"], tta["tta_params"]), dataset, model_params)
        experiment, launched = runner.launch_grid(
            base, [(name, strategy_params[name]) for name in chosen], seeds=list(range(int(seeds))),
            name=f"{', '.join(chosen)} on {model_name} x {int(seeds)} seeds ({choice.source.name}, {choice.task})",
            primary=primary, aa=bool(aa and "none" in chosen))
    except RecexpError as error:
        st.error(str(error))
    else:
        st.session_state["train_experiment"] = experiment.id
        st.toast(ngettext("Queued {n} run.", "Queued {n} runs.", len(launched)).format(n=len(launched)),
                 icon=":material/schedule:")

# --- runs -----------------------------------------------------------------------------------------
experiments = list(reversed(store.list_experiments()))
if not experiments:
    st.info(_("No runs yet: pick strategies and press Launch."))
    st.stop()
ids = [e.id for e in experiments]
if st.session_state.get("train_experiment") not in ids:
    st.session_state["train_experiment"] = ids[0]
names = {e.id: f"{e.name} · {format_timestamp(e.created_at)} UTC" for e in experiments}
experiment_id = st.selectbox(_("Experiment"), ids, format_func=names.get, key="train_experiment")
sharing_toggle(store, experiment_id, prefix="train")
started_active = any(r.is_active for r in store.list_runs(experiment_id))


def _status_icon(status: str) -> str:
    # Plain text symbols: emoji need a font that Debian's Chromium (and many servers) do not have.
    return {"queued": _("… queued"), "running": _("▶ running"), "finished": _("✓ finished"),
            "failed": _("✗ failed"), "cancelled": _("■ cancelled")}.get(status, status)


@st.fragment(run_every=POLL_SECONDS if started_active else None)
def live_runs() -> None:
    runs = store.list_runs(experiment_id)
    ranked = bool(runs) and task_kind(str(runs[0].spec.get("task", "behavior"))) == "ranking"
    shown = ("hr@10", "ndcg@10", "mrr") if ranked else ("balanced_accuracy", "f1_macro", "accuracy")
    counts = pd.Series([r.status for r in runs]).value_counts()
    states = {"queued": _("queued"), "running": _("running"), "finished": _("finished"), "failed": _("failed"),
              "cancelled": _("cancelled")}
    st.markdown(_("Runs: {counts}").format(counts=" · ".join(
        f"**{counts.get(s, 0)} {word}**" for s, word in states.items() if counts.get(s, 0))))
    devices_used = sorted({r.device for r in runs if r.device})
    if devices_used:
        st.caption(_("Device used: {devices}").format(devices=", ".join(devices_used)))
    table = pd.DataFrame([{
        "run": r.id, "strategy": arm_name(r.spec), "model": r.spec.get("model"), "seed": r.spec.get("seed"),
        "status": _status_icon(r.status), "device": r.device or "", "progress": r.epochs_done / (r.epochs_total or 1),
        "epochs": f"{r.epochs_done}/{r.epochs_total or '?'}", "step": r.message,
        "seconds": round(r.seconds, 1) if r.seconds is not None else None,
        **{m: r.metrics.get(m) for m in shown},
    } for r in runs])
    st.dataframe(table, hide_index=True, key="train_runs_table", column_config={
        "progress": st.column_config.ProgressColumn(_("progress"), min_value=0.0, max_value=1.0),
        "balanced_accuracy": st.column_config.NumberColumn(_("test balanced acc."), format="%.4f"),
        "f1_macro": st.column_config.NumberColumn(_("test macro F1"), format="%.4f"),
        "accuracy": st.column_config.NumberColumn(_("test accuracy"), format="%.4f"),
        **{m: st.column_config.NumberColumn(_("test {score}").format(score=m), format="%.4f")
           for m in ("hr@10", "ndcg@10", "mrr")}})

    active = [r for r in runs if r.is_active]
    for run in active:
        cols = st.columns([4, 1])
        where = _("on {device}").format(device=run.device) if run.device else _("waiting for a worker")
        cols[0].caption(f"{run.name}: {_status_icon(run.status)} {where}" + (f" · {run.message}" if run.message else ""))
        if cols[1].button(_("Cancel"), key=f"train_cancel_{run.id}", icon=":material/stop:"):
            runner.cancel(run.id)
            st.rerun(scope="fragment")
    for run in runs:
        if run.status == "failed":
            st.error(_("{run} failed: {reason}").format(
                run=run.name, reason=run.error.splitlines()[0] if run.error else _("no reason recorded")))
            if run.error and "\n" in run.error:
                with st.expander(_("Details")):
                    st.code(run.error)

    curves = store.epoch_metrics([r.id for r in runs])
    if len(curves):
        st.plotly_chart(training_curves(curves, {r.id: r.name for r in runs}), key="train_curves")
    finished = [r for r in runs if r.status == "finished"]
    if finished:
        scores = pd.DataFrame([{"strategy": arm_name(r.spec), "model": r.spec["model"], "seed": r.spec["seed"],
                                **r.metrics} for r in finished])
        names = list(NEXT_ITEM_METRICS if ranked else METRIC_NAMES)
        if st.session_state.get("train_score_metric") not in names:
            st.session_state["train_score_metric"] = "ndcg@10" if ranked else "balanced_accuracy"
        metric = st.selectbox(_("Test score"), names, key="train_score_metric")
        st.plotly_chart(final_scores(scores, metric), key="train_scores")
    if started_active and not active:
        st.rerun()                       # every run ended: redraw the page once and stop polling


live_runs()
