"""Importance: how much each training row helped or hurt, per class and real vs synthetic, and acting on it."""

import json
from dataclasses import replace

import streamlit as st

from recexp.charts.importance import (attention_profile_figure, rank_agreement_heatmap, removal_curve_figure,
                                      value_distributions, value_histogram, value_vs_loss)
from recexp.errors import RecexpError
from recexp.i18n import _, format_decimal, format_integer, format_percent, format_timestamp, ngettext
from recexp.importance import METHODS, TrainedRun, get_method, methods_for, run_importance
from recexp.importance.attention import attention_profile
from recexp.importance.explore import (extreme_rows, mark_label_issues, stacked_values, summary_table,
                                       with_losses)
from recexp.importance.removal import FRACTIONS, curve_settings, launch_removal_curve, removal_curve, removal_experiments
from recexp.importance.stability import consistently_harmful, cross_check, label_issue_flags, rank_agreement
from recexp.spec import RunSpec
from recexp.metrics import METRIC_NAMES
from recexp.runs import FINISHED, SQLiteRunStore
from recexp.ui.params import param_widgets
from recexp.ui.state import job_runner

POLL_SECONDS = 1.0
ATTENTION_ROWS = 5000


@st.cache_data(show_spinner=False, max_entries=16)
def schema_of(_store: SQLiteRunStore, home: str, run_id: str, finished_at: str):
    return TrainedRun.load(_store, run_id).train.schema


@st.cache_data(show_spinner=False, max_entries=32)
def extremes_of(_store: SQLiteRunStore, home: str, run_id: str, method: str, params_json: str, seed: int, n: int,
                _result, _schema):
    """Top and bottom rows with their features, codes shown as source ids (cached on the run, method,
    parameters and seed)."""
    return extreme_rows(_store, _result, n, _schema)


@st.cache_data(show_spinner=False, max_entries=32)
def losses_of(_store: SQLiteRunStore, home: str, run_id: str, method: str, params_json: str, seed: int, _result):
    return with_losses(_store, _result)


@st.cache_data(show_spinner=False, max_entries=16)
def label_flags_of(_store: SQLiteRunStore, home: str, run_id: str, finished_at: str):
    return label_issue_flags(TrainedRun.load(_store, run_id))


@st.cache_data(show_spinner=False, max_entries=8)
def attention_of(_store: SQLiteRunStore, home: str, run_id: str, finished_at: str):
    return attention_profile(TrainedRun.load(_store, run_id), rows=ATTENTION_ROWS)


runner = job_runner()
store = runner.store
home = str(store.home)

st.title(_("Importance"))
st.caption(_("How much each training row helped or hurt the model: values per class and for real vs synthetic rows, "
             "the rows at both ends, how stable the values are across seeds and strategies, and what happens when "
             "the lowest-valued rows are dropped and the model retrained. Higher values mean more valuable rows."))

finished = list(reversed(store.list_runs(statuses=[FINISHED])))
if not finished:
    st.info(_("No finished runs yet: train a model on the Train page, then value its training rows here."))
    st.page_link("pages/train.py", label=_("Go to Train"), icon=":material/model_training:")
    st.stop()
runs = {r.id: r for r in finished}
labels = {r.id: f"{r.name} · {r.id[:6]}" for r in finished}

# --- what to value ------------------------------------------------------------------------------------------
left, right = st.columns([2, 1])
chosen = left.multiselect(_("Runs"), list(runs), default=[finished[0].id], format_func=labels.get,
                          key="importance_runs",
                          help=_("One run, or several (seeds of one strategy, or strategies on the same split) to see "
                                 "their values side by side and how well they agree."))
tasks = {str(runs[r].spec.get("task", "behavior")) for r in chosen} or {"behavior"}
offered = [m for m in METHODS if all(m in methods_for(task) for task in tasks)]     # next-item: loss dynamics
if st.session_state.get("importance_method") not in offered:
    st.session_state["importance_method"] = offered[0]
method = right.selectbox(_("Method"), offered, format_func=lambda n: METHODS[n].title or n,
                         key="importance_method")
st.caption(f"**{METHODS[method].title}.** {_(METHODS[method].summary)}")
with st.expander(_("Parameters of {name}").format(name=METHODS[method].title or method)):
    params = param_widgets(METHODS[method], prefix="importance")
    seed = int(st.number_input(_("Seed"), min_value=0, value=0, step=1, key="importance_seed",
                               help=_("Seeds the method's random choices (bootstrap samples, projections...).")))
if not chosen:
    st.info(_("Choose at least one finished run."))
    st.stop()
params_json = json.dumps(params, sort_keys=True, default=str)
default_params = params == METHODS[method].defaults()


def compute(run_id: str, name: str, values: dict):
    """The values of ``name`` for a run (read from its artifacts once computed), with a progress bar meanwhile."""
    bar = st.progress(0.0, text=_("{run}: valuing its training rows with {method}...").format(
        run=labels[run_id], method=METHODS[name].title))

    def progress(done: float, message: str) -> None:
        bar.progress(min(max(float(done), 0.0), 1.0), text=f"{labels[run_id]}: {message}")

    try:
        return run_importance(store, run_id, get_method(name, **values), seed=seed, progress=progress)
    finally:
        bar.empty()


results = {}
for run_id in chosen:
    try:
        results[run_id] = compute(run_id, method, params)
    except RecexpError as error:
        st.error(f"{labels[run_id]}: {error}")
if not results:
    st.stop()
ordered = list(results.values())

# --- distributions --------------------------------------------------------------------------------------------
st.subheader(_("Distributions"))
stacked = stacked_values(ordered, {r: labels[r] for r in results})
st.plotly_chart(value_distributions(stacked, "class"), key="importance_by_class")
left, right = st.columns(2)
with left:
    st.plotly_chart(value_distributions(stacked, "origin"), key="importance_by_origin")
with right:
    st.plotly_chart(value_histogram(stacked), key="importance_histogram")
harm_rule = METHODS[method].harmful
st.dataframe(summary_table(ordered, {r: labels[r] for r in results}), hide_index=True, key="importance_summary",
             column_config={"share_harmful": st.column_config.NumberColumn(_(harm_rule.label), format="percent",
                                                                           help=_(harm_rule.meaning))})
st.caption("**{label}.** {meaning}".format(label=_(harm_rule.label).capitalize(), meaning=_(harm_rule.meaning)))
for run_id, result in results.items():
    for note in result.notes:
        st.caption(f"{labels[run_id]}: {note}")
    st.caption(_("{run}: {rows} training rows valued in {seconds} s.").format(
        run=labels[run_id], rows=format_integer(len(result.values)), seconds=format_decimal(result.seconds, 1)))

# --- rows ------------------------------------------------------------------------------------------------------
st.subheader(_("Rows at both ends"))
focus = st.selectbox(_("Run"), list(results), format_func=labels.get, key="importance_focus") if len(results) > 1 \
    else next(iter(results))
result = results[focus]
n_rows = st.slider(_("Rows at each end"), 5, 50, 10, key="importance_n_rows")
with st.spinner(_("Reading the run's data for its source ids...")):
    schema = schema_of(store, home, focus, runs[focus].finished_at or "")
st.dataframe(extremes_of(store, home, focus, method, params_json, seed, n_rows, result, schema),
             hide_index=True, key="importance_extremes")
st.caption(_("Top: the most valuable training rows; bottom: the least valuable (those that hurt, or that the model "
             "could not learn: likely mislabelled, or off the real data). `row` is the position in the run's training "
             "rows, `source_row` the dataset row it is (or, for a synthetic row, the real row it was made from)."))
st.plotly_chart(value_vs_loss(losses_of(store, home, focus, method, params_json, seed, result)),
                key="importance_value_vs_loss")

# --- stability --------------------------------------------------------------------------------------------------
st.subheader(_("Stability"))
others = st.multiselect(_("Also value the runs with"), [m for m in offered if m != method],
                        format_func=lambda n: METHODS[n].title or n, key="importance_other_methods",
                        help=_("Other methods (default parameters) to compare with, on the same runs."))
compared = list(ordered)
for name in others:
    for run_id in results:
        try:
            compared.append(compute(run_id, name, {}))
        except RecexpError as error:
            st.error(f"{labels[run_id]}, {METHODS[name].title}: {error}")
if len(compared) > 1:
    agreement = rank_agreement(compared).assign(
        run_a=lambda f: f["run_a"].map(labels), run_b=lambda f: f["run_b"].map(labels))
    st.plotly_chart(rank_agreement_heatmap(agreement), key="importance_agreement")
    st.caption(_("Spearman rank correlation of the values on the real rows both runs trained on (synthetic rows have "
                 "no counterpart). Near 1: the runs or methods agree on which rows matter; near 0: the values say "
                 "more about the seed, strategy or method than about the rows."))
else:
    st.info(_("Choose two or more runs (seeds of one strategy, or strategies on the same split), or another method "
              "above, to see how well the values agree."))
quantile = st.slider(_("Harmful: among the lowest share of every result"), 0.01, 0.5, 0.1, 0.01,
                     key="importance_quantile")
try:
    harmful = consistently_harmful(compared, quantile=quantile)
except RecexpError as error:
    st.error(str(error))
else:
    check = st.toggle(_("Cross-check with cleanlab's label-issue flags"), value=True, key="importance_cleanlab",
                      help=_("cleanlab's confident learning on out-of-sample probabilities of a cross-validated "
                             "logistic regression: a row it flags probably carries a wrong label."))
    if check:
        flags, overlaps = {}, []
        for run_id in results:
            try:
                with st.spinner(_("Cross-validating a label model for cleanlab...")):
                    flags[run_id] = label_flags_of(store, home, run_id, runs[run_id].finished_at or "")
            except RecexpError as error:
                st.error(f"{labels[run_id]}: {error}")
                continue
            overlaps.append({"run": labels[run_id], **cross_check(results[run_id], flags[run_id], quantile)})
        harmful = mark_label_issues(harmful, compared, flags)
        if overlaps:
            st.dataframe(overlaps, hide_index=True, key="importance_cleanlab_overlap")
            st.caption(_("Per run: rows cleanlab flags, rows in the lowest {share} of the values, how many are "
                         "both, and the lift over chance (overlap / expected overlap).").format(
                share=format_percent(quantile)))
    st.markdown(ngettext("**{rows} real rows** are in the lowest {share} of the {n} result.",
                         "**{rows} real rows** are in the lowest {share} of every one of the {n} results.",
                         len(compared)).format(rows=format_integer(len(harmful)), share=format_percent(quantile),
                                               n=len(compared)))
    st.dataframe(harmful, hide_index=True, key="importance_harmful")

# --- attention ---------------------------------------------------------------------------------------------------
attention_runs = [r for r in results if runs[r].spec.get("model") == "din"]
if attention_runs:
    st.subheader(_("Attention over the behaviour sequence"))
    attention_run = st.selectbox(_("Attention model run"), attention_runs, format_func=labels.get,
                                 key="importance_attention_run") if len(attention_runs) > 1 else attention_runs[0]
    try:
        with st.spinner(_("Reading the attention weights of the model...")):
            profile = attention_of(store, home, attention_run, runs[attention_run].finished_at or "")
    except RecexpError as error:
        st.error(str(error))
    else:
        st.plotly_chart(attention_profile_figure(profile), key="importance_attention")
        st.caption(_("Mean attention of the model over the past behaviours of {rows} of its {total} training rows: by "
                     "position in the sequence, by the behaviour type and by category.").format(
            rows=format_integer(profile.attrs["rows"]), total=format_integer(profile.attrs["total_rows"])))
        with st.expander(_("Attention profile table")):
            st.dataframe(profile, hide_index=True, key="importance_attention_table")

# --- act on it: prune and retrain -----------------------------------------------------------------------------------
st.subheader(_("Prune and retrain"))
source = runs[focus]
source_spec = RunSpec.from_dict(source.spec)
n_synthetic = int(result.values["is_synthetic"].sum())
if not default_params:
    st.caption(_("Pruning and removal curves value the rows with {method}'s default parameters and seed 0, not the "
                 "ones set above.").format(method=METHODS[method].title))
if n_synthetic == 0:
    st.info(_("{run} trained on real rows only, so there are no synthetic rows to prune. The removal curve below can "
              "still drop the lowest-valued real rows.").format(run=labels[focus]))
else:
    share = st.slider(_("Share of the synthetic rows to drop (the lowest-valued)"), 0.05, 1.0, 0.2, 0.05,
                      key="importance_prune_share")
    st.caption(_("Drops about {dropped} of the {synthetic} synthetic rows of {run} and trains {model} again with the "
                 "same data, split, settings and seed.").format(
        dropped=format_integer(round(share * n_synthetic)), synthetic=format_integer(n_synthetic), run=labels[focus],
        model=source_spec.model))
    if st.button(_("Prune the synthetic rows valued as harmful and retrain"), key="importance_prune", type="primary",
                 icon=":material/content_cut:"):
        spec = replace(source_spec, strategy="importance_weighting",
                       strategy_params={"run_id": focus, "method": method, "action": "drop", "scope": "synthetic",
                                        "fraction": float(share), "order": "lowest"})
        try:
            pruned = runner.submit(spec, name=f"{labels[focus]} minus its lowest {share:.0%} synthetic rows "
                                              f"({METHODS[method].title})")
        except RecexpError as error:
            st.error(str(error))
        else:
            st.session_state["importance_pruned"] = pruned.id
            st.toast(_("Queued the pruned run."), icon=":material/schedule:")
    pruned_id = st.session_state.get("importance_pruned")
    if pruned_id:
        pruned = store.get_run(pruned_id)
        st.info(_("Run {id} ({name}) is {status}. When it has finished, compare it with {run} on the Compare page "
                  "(Chosen runs).").format(id=pruned.id, name=pruned.name, status=_(pruned.status), run=labels[focus]))
        st.page_link("pages/compare.py", label=_("Go to Compare"), icon=":material/compare_arrows:")

# --- act on it: point-removal curve ----------------------------------------------------------------------------------
st.subheader(_("Point-removal curve"))
st.caption(_("Drop the lowest-valued share of the training rows and retrain, for several shares and seeds, against "
             "dropping as many random rows. If the method ranks rows well, the red curve stays above the grey one."))
with st.form("importance_curve_form", border=True):
    left, middle, right = st.columns(3)
    percents = left.multiselect(_("Shares dropped (%)"), [0, 5, 10, 20, 30, 40, 50, 70, 90],
                                default=[int(f * 100) for f in FRACTIONS], key="importance_curve_fractions")
    n_seeds = middle.number_input(_("Seeds"), 1, 10, 3, key="importance_curve_seeds")
    scope = right.radio(_("Rows that may be dropped"), ["all", "synthetic"], horizontal=True,
                        format_func={"all": _("all"), "synthetic": _("synthetic")}.get, key="importance_curve_scope",
                        disabled=n_synthetic == 0)
    launch = st.form_submit_button(_("Launch the curve for {run}").format(run=labels[focus]),
                                   icon=":material/play_arrow:", key="importance_curve_launch")
if launch:
    bar = st.progress(0.0, text=_("Valuing the rows before queueing the runs..."))
    try:
        experiment, queued = launch_removal_curve(
            runner, focus, method, fractions=[p / 100 for p in percents], seeds=list(range(int(n_seeds))),
            scope=scope if n_synthetic else "all",
            progress=lambda done, message: bar.progress(min(max(float(done), 0.0), 1.0), text=message))
    except RecexpError as error:
        st.error(str(error))
    else:
        st.session_state["importance_curve"] = experiment.id
        st.toast(ngettext("Queued {n} run.", "Queued {n} runs.", len(queued)).format(n=len(queued)),
                 icon=":material/schedule:")
    finally:
        bar.empty()

curves = removal_experiments(store, focus)
if not curves:
    st.info(_("No removal curve for {run} yet.").format(run=labels[focus]))
    st.stop()
curve_ids = [e.id for e in curves]
if st.session_state.get("importance_curve") not in curve_ids:
    st.session_state["importance_curve"] = curve_ids[0]


def curve_label(experiment_id: str) -> str:
    experiment = next(e for e in curves if e.id == experiment_id)
    settings = curve_settings(experiment) or {}
    name = settings.get("method", "?")
    title = METHODS[name].title if name in METHODS else name
    return _("{method}, {scope} rows, seeds {seeds} · {created} UTC").format(
        method=title, scope=_(str(settings.get("scope"))), seeds=settings.get("seeds"),
        created=format_timestamp(experiment.created_at))


curve_id = st.selectbox(_("Curve"), curve_ids, format_func={c: curve_label(c) for c in curve_ids}.get,
                        key="importance_curve")
metric = st.selectbox(_("Test score"), list(METRIC_NAMES), index=list(METRIC_NAMES).index("balanced_accuracy"),
                      key="importance_curve_metric")
curve_active = any(r.is_active for r in store.list_runs(curve_id))


@st.fragment(run_every=POLL_SECONDS if curve_active else None)
def curve_view() -> None:
    try:
        curve = removal_curve(store, curve_id, metric)
    except RecexpError as error:
        st.error(str(error))
        return
    total, done = sum(curve.runs.values()), curve.runs.get("finished", 0)
    ended = total - curve.runs.get("queued", 0) - curve.runs.get("running", 0)
    st.progress(ended / max(total, 1), text=_("{done} of {total} runs finished").format(done=done, total=total)
                + "".join(f", {curve.runs[s]} {_(s)}" for s in ("running", "queued", "failed", "cancelled")
                          if curve.runs.get(s)))
    for run in store.list_runs(curve_id):
        if run.status == "failed":
            st.error(_("{run} failed: {reason}").format(
                run=run.name, reason=run.error.splitlines()[0] if run.error else _("no reason recorded")))
    if len(curve.points):
        st.plotly_chart(removal_curve_figure(curve), key="importance_curve_chart")
        gap = curve.gap()
        if len(gap):
            st.dataframe(gap, hide_index=True, key="importance_curve_gap", column_config={
                "fraction": st.column_config.NumberColumn(_("share dropped"), format="percent"),
                "lowest_minus_random": st.column_config.NumberColumn(
                    _("{score}: lowest − random").format(score=metric), format="%.4f")})
    if curve_active and curve.done:
        st.rerun()                       # every run ended: redraw the page once and stop polling


curve_view()
