"""Tune: search strategies' parameters with Optuna on the validation split; send the best to the Train grid."""

import streamlit as st

from recexp.charts.tune import study_figures
from recexp.compare import metric_title
from recexp.errors import RecexpError
from recexp.i18n import _, format_decimal, format_integer, ngettext
from recexp.jobs import available_strategies, max_jobs, usable_cores
from recexp.metrics import default_primary, primary_choices
from recexp.models import MODELS
from recexp.spec import RunSpec
from recexp.strategies import strategy_label
from recexp.tune import (
    PRUNERS, SAMPLERS, TRAIN_SPACE, TRIAL_COLUMNS, TRIAL_STATES, SearchSpace, TuneSpec, best_configs, cancel, launch,
    narrowing, open_study, snapshot, space_table, storage_url, study_names, study_spec, summary, trials_frame, worker_group,
)
from recexp.ui.state import active_choice, add_to_grid, job_runner, require_dataset

POLL_SECONDS = 2.0

st.title(_("Tune"))
st.caption(_("Search a strategy's parameters (and the model's) with Optuna. Every trial applies a configuration to "
             "the training split, trains, and is scored on the validation split: the test split is never loaded. Send "
             "the best configurations to the Train grid to compare them on test, with seeds."))

runner = job_runner()
choice = active_choice()
dataset, split = require_dataset()
classes = list(dataset.schema.classes)
st.caption(_("Data: **{source}**, task **{task}**; trials train on {train} rows and are scored on {valid} validation "
             "rows.").format(source=choice.source.name, task=choice.task, train=format_integer(len(split.train)),
                             valid=format_integer(len(split.valid))))

# --- the space ------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader(_("Space"), divider=False)
    strategies = st.multiselect(_("Strategies to search (several: the strategy itself is a choice)"),
                                list(available_strategies()), default=["smote"], key="tune_strategies",
                                format_func={n: strategy_label(n) for n in available_strategies()}.get)
    left, right = st.columns(2)
    model = left.selectbox(_("Model"), list(MODELS), index=list(MODELS).index("mlp"), key="tune_model",
                           format_func={n: f"{n}: {_(MODELS[n].description)}" for n in MODELS}.get)
    search_model = left.checkbox(_("Search the model's parameters too"), key="tune_search_model")
    search_train = right.multiselect(_("Search training settings too"), list(TRAIN_SPACE), key="tune_search_train")
    table, space_error = None, None
    try:
        space = SearchSpace(strategies, model=model, search_model=search_model, search_train=search_train)
        st.caption(_("Narrow the space: change a range's low / high, shorten a list of choices, or type a value under "
                     "'fix' to leave a parameter out of the search. Ranges and log scales come from the parameter "
                     "specs."))
        shown_space = space_table(space)
        shown_space["help"] = [_(text) for text in shown_space["help"]]          # the specs' help, translated
        headings = {"dimension": _("dimension"), "low": _("low"), "high": _("high"), "log": _("log scale"),
                    "choices": _("choices"), "fix": _("fix"), "when": _("when"), "help": _("help")}
        table = st.data_editor(shown_space, hide_index=True, key="tune_space", disabled=["dimension", "log",
                               "when", "help"], width="stretch",
                               column_config={column: st.column_config.Column(heading)
                                              for column, heading in headings.items()})
    except RecexpError as error:
        space_error = str(error)
        st.warning(space_error, icon=":material/block:")

# --- budget and search settings -------------------------------------------------------------------
with st.container(border=True):
    st.subheader(_("Budget"), divider=False)
    left, middle, right = st.columns(3)
    trials = left.number_input(_("Trials"), 1, 10_000, 20, key="tune_trials")
    minutes = middle.number_input(_("Minutes at most (0: no limit)"), 0.0, 10_000.0, 0.0, key="tune_minutes")
    workers = right.number_input(_("Processes sharing the study"), 1, usable_cores(), max_jobs(), key="tune_workers",
                                 help=_("Trials run at once, one per process, all writing to one Optuna storage. Each "
                                        "process is a job of the job runner, which runs at most {limit} at once, "
                                        "training runs included (RECEXP_MAX_JOBS).").format(
                                     limit=format_integer(runner.max_concurrent)))
    epochs = left.number_input(_("Epochs per trial (at most)"), 1, 500, 5, key="tune_epochs")
    sampler = middle.selectbox(_("Sampler"), list(SAMPLERS), format_func={k: _(v) for k, v in SAMPLERS.items()}.get,
                               key="tune_sampler")
    sampler_seed = right.number_input(_("Sampler seed"), 0, 2**31 - 1, 0, key="tune_sampler_seed")
    pruner = left.selectbox(_("Pruner"), list(PRUNERS), format_func={k: _(v) for k, v in PRUNERS.items()}.get,
                            key="tune_pruner")
    scores = primary_choices(classes)
    primary = middle.selectbox(_("Score to optimise (on validation)"), scores,
                               index=scores.index(default_primary(classes)),
                               format_func={m: f"{_(metric_title(m))} · {m}" for m in scores}.get, key="tune_primary")
    name = right.text_input(_("Study name (an existing one is continued)"),
                            f"{'-'.join(strategies) or 'tune'}-{choice.source.name}-{choice.task}", key="tune_name")

if st.button(_("Start"), type="primary", key="tune_start", icon=":material/play_arrow:", disabled=table is None):
    base = RunSpec(source=choice.source.to_dict(), task=choice.task, task_params=dict(choice.task_params),
                   sampling=dict(choice.sampling),
                   split=choice.to_dict()["split"], model=model, train={"epochs": int(epochs)},
                   fingerprint=dataset.fingerprint)
    try:
        spec = TuneSpec(base, tuple(strategies), primary=primary, search_model=search_model,
                        search_train=tuple(search_train), **narrowing(space, table), sampler=sampler,
                        sampler_seed=int(sampler_seed), pruner=pruner)
        launch(spec, name, int(trials), int(workers), runner, minutes=float(minutes) or None)
        st.session_state["tune_study"] = name
        processes = min(int(workers), int(trials))
        st.toast(ngettext("Study {name}: {trials} trials in {processes} process.",
                          "Study {name}: {trials} trials in {processes} processes.", processes).format(
                     name=name, trials=format_integer(trials), processes=format_integer(processes)),
                 icon=":material/schedule:")
    except RecexpError as error:
        st.error(str(error), icon=":material/error:")

# --- a study --------------------------------------------------------------------------------------
names = study_names()
if not names:
    st.info(_("No study yet: choose the space and budget, then press Start."))
    st.stop()
if st.session_state.get("tune_study") not in names:
    st.session_state["tune_study"] = names[-1]
shown = st.selectbox(_("Study"), names, key="tune_study", help=_("Studies in {storage}").format(storage=storage_url()))
workers_of_shown = worker_group(shown, storage_url())
active = any(runner.commands(workers_of_shown))


def worker_controls() -> None:
    """The study's worker processes (running, waiting for a slot) with a Cancel; else a Continue."""
    running, waiting = runner.commands(workers_of_shown)
    if running or waiting:
        left, right = st.columns([4, 1])
        left.caption(ngettext("Worker processes: {running} running, {waiting} waiting for a free slot (the job runner "
                              "runs at most {limit} job at once, training runs included).",
                              "Worker processes: {running} running, {waiting} waiting for a free slot (the job runner "
                              "runs at most {limit} jobs at once, training runs included).",
                              runner.max_concurrent).format(
            running=format_integer(running), waiting=format_integer(waiting),
            limit=format_integer(runner.max_concurrent)))
        if right.button(_("Cancel"), key="tune_cancel", icon=":material/stop:",
                        help=_("Stops the study's worker processes: their running trials are marked failed, the "
                               "finished ones are kept, and the study can be continued later.")):
            cancel(runner, shown)
            st.toast(_("Study {name} cancelled; its finished trials are kept.").format(name=shown),
                     icon=":material/stop:")
    elif st.button(ngettext("Continue this study: {trials} more trial", "Continue this study: {trials} more trials",
                            int(trials)).format(trials=format_integer(trials)), key="tune_continue",
                   icon=":material/play_arrow:", help=_("Runs more trials of the study with the settings it was "
                                                        "started with, and the budget above.")):
        try:
            launch(study_spec(open_study(shown)), shown, int(trials), int(workers), runner,
                   minutes=float(minutes) or None)
            st.rerun()                  # poll the study's workers from now on
        except RecexpError as error:
            st.error(str(error), icon=":material/error:")


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_study() -> None:
    worker_controls()
    study = snapshot(open_study(shown))               # every trial read once per poll
    spec = study_spec(study)
    result = summary(study)
    counts = result["counts"]
    ended = sum(n for state, n in counts.items() if state != "running")
    if result["target_trials"]:
        st.progress(min(1.0, ended / result["target_trials"]), text=_("{ended} of {target} trials ended").format(
            ended=format_integer(ended), target=format_integer(result["target_trials"])))
    directions = {"maximize": _("maximise"), "minimize": _("minimise")}
    st.markdown(_("**{trials} trials**: {counts} · {direction} validation {title} ({metric})").format(
        trials=format_integer(len(result["trials"])),
        counts=" · ".join(f"{format_integer(n)} {_(TRIAL_STATES.get(s, s))}" for s, n in counts.items() if n),
        direction=directions.get(spec.direction, spec.direction), title=_(metric_title(spec.primary)),
        metric=spec.primary))
    if result["best_value"] is not None:
        st.metric(_("Best validation {metric}").format(metric=spec.primary), format_decimal(result["best_value"], 4))
    trials = trials_frame(study)
    trials["state"] = [_(TRIAL_STATES.get(state, state)) for state in trials["state"]]
    st.dataframe(trials, hide_index=True, key="tune_trials_table", width="stretch",
                 column_config={c: _(title) for c, title in TRIAL_COLUMNS.items()})
    for title, figure in study_figures(study).items():
        if isinstance(figure, str):
            st.caption(_("{title}: {reason}").format(title=_(title), reason=figure))
        else:
            st.markdown(f"**{_(title)}**")
            st.plotly_chart(figure, key=f"tune_figure_{title}")
    best = best_configs(study, 3)
    if best:
        st.subheader(_("Best configurations"), divider=False)
        st.dataframe([{"rank": k + 1, **c.to_dict()} for k, c in enumerate(best)], hide_index=True,
                     key="tune_best_table", column_config={
                         "rank": _("rank"), "strategy": _("strategy"), "strategy_params": _("strategy parameters"),
                         "model_params": _("model parameters"), "train": _("training settings")})
        if st.button(_("Send the best 3 to the Train grid"), key="tune_send", icon=":material/playlist_add:",
                     help=_("Adds each strategy with its best parameters to the Train page's grid (one entry per "
                            "strategy: the best one wins). Model and training settings found are listed above.")):
            for config in reversed(best):
                add_to_grid(config.strategy, config.strategy_params)
            st.toast(_("The best configurations are in the Train page's grid."), icon=":material/playlist_add_check:")
    if active and not any(runner.commands(workers_of_shown)):
        st.rerun()                      # the workers ended: redraw once and stop polling


live_study()
