"""Compare: finished runs side by side, with intervals over seeds and deltas against the baseline."""


import pandas as pd
import streamlit as st

from recexp.charts.compare import (capture_curve, confusion_difference, confusion_matrices, curves, metric_bars,
                                   per_class_heatmap, recall_at_precision_bars, run_colours)
from recexp.charts.importance import importance_by_strategy
from recexp.charts.slices import slice_gains
from recexp.charts.training import training_curves
from recexp.compare import (BASELINE, MIN_SEEDS, ROWS_BOOTSTRAP, TUNED, Comparison, SliceComparison, compare,
                            compare_by_slice, consistency_table, default_positive, inference_text, metric_title,
                            power_sentence, sample_importance, sample_losses)
from recexp.errors import RecexpError
from recexp.i18n import _, current_language, format_integer, format_timestamp, ngettext
from recexp.importance import METHODS, methods_for
from recexp.metrics import NEXT_ITEM_PROTOCOL
from recexp.runs import FINISHED, SQLiteRunStore
from recexp.slices import DIMENSIONS as SLICE_DIMENSIONS
from recexp.ui.state import job_runner


@st.cache_data(show_spinner=False, max_entries=8)
def comparison_of(_store: SQLiteRunStore, home: str, experiment: str | None, run_ids: tuple[str, ...], baseline: str, n_bootstrap: int,
                  stamp: tuple[str, ...], language: str) -> Comparison:
    """The comparison (cached on the runs, their finish times and the language its sentences are in)."""
    return compare(_store, experiment=experiment, run_ids=list(run_ids) or None, baseline=baseline,
                   n_bootstrap=n_bootstrap)


@st.cache_data(show_spinner=False, max_entries=8)
def importance_of(_store: SQLiteRunStore, home: str, _comparison: Comparison, method: str,
                  stamp: tuple[str, ...]) -> pd.DataFrame:
    return sample_importance(_store, _comparison, method)


@st.cache_data(show_spinner=False, max_entries=8)
def losses_of(_store: SQLiteRunStore, home: str, _comparison: Comparison, stamp: tuple[str, ...]) -> pd.DataFrame:
    return sample_losses(_store, _comparison)


runner = job_runner()
store = runner.store
home = str(store.home)

st.title(_("Compare"))
st.caption(_("Which strategy helped which class, and by how much: every score over seeds (mean, 95% interval), "
             "and each strategy paired with the no-strategy baseline on the same seeds and the same test rows."),
           help=f"{inference_text()} {_(ROWS_BOOTSTRAP)}")

finished = store.list_runs(statuses=[FINISHED])
experiments = [e for e in reversed(store.list_experiments()) if any(r.experiment_id == e.id for r in finished)]
if not experiments:
    st.info(_("No finished runs yet: launch strategies x seeds on the Train page, then come back here."))
    st.page_link("pages/train.py", label=_("Go to Train"), icon=":material/model_training:")
    st.stop()

modes = {"An experiment": _("An experiment"), "Chosen runs": _("Chosen runs")}
mode = st.radio(_("Compare"), list(modes), format_func=modes.get, horizontal=True, key="compare_mode")
names = {e.id: f"{e.name} · {format_timestamp(e.created_at)} UTC" for e in experiments}
if mode == "An experiment":
    ids = [e.id for e in experiments]
    if st.session_state.get("compare_experiment") not in ids:
        preferred = st.session_state.get("train_experiment")
        st.session_state["compare_experiment"] = preferred if preferred in ids else ids[0]
    experiment = st.selectbox(_("Experiment"), ids, format_func=names.get, key="compare_experiment")
    run_ids: tuple[str, ...] = ()
    chosen_runs = [r for r in finished if r.experiment_id == experiment]
else:
    experiment = None
    labels = {r.id: f"{r.name} · {r.id} · {names.get(r.experiment_id, r.experiment_id)}" for r in finished}
    run_ids = tuple(st.multiselect(_("Runs"), list(labels), format_func=labels.get, key="compare_runs",
                                   placeholder=_("Choose finished runs of one dataset and task")))
    chosen_runs = [r for r in finished if r.id in run_ids]
    if not run_ids:
        st.info(_("Choose runs to compare (all scored on the same test split)."))
        st.stop()

strategies = list(dict.fromkeys(str(r.spec.get("strategy")) for r in chosen_runs))
with st.expander(_("Comparison settings")):
    left, right = st.columns(2)
    baseline = left.selectbox(_("Baseline"), strategies,
                              index=strategies.index(BASELINE) if BASELINE in strategies else 0,
                              key="compare_baseline", help=_("Every other strategy is paired with this one."))
    n_bootstrap = right.number_input(_("Row bootstrap of these trained models (replicates)"), 0, 10_000, 500, step=100,
                                     key="compare_bootstrap", help=_(ROWS_BOOTSTRAP) + " " + _("0: leave it out."))

stamp = tuple(sorted(f"{r.id}:{r.finished_at}" for r in chosen_runs))
try:
    with st.spinner(_("Scoring the runs and testing the differences over seeds...")):
        comparison = comparison_of(store, home, experiment, run_ids, baseline, int(n_bootstrap), stamp,
                                   current_language())
except RecexpError as error:
    st.error(str(error))
    st.stop()

runs = comparison.per_run
seeds = ", ".join(str(s) for s in sorted(set(runs["seed"])))
st.markdown(_("**{title}** · {runs} runs · {strategies} strategies · seeds {seeds} · {rows} test rows, "
              "identical for every run").format(
    title=comparison.title, runs=len(runs), strategies=len(comparison.groups), seeds=seeds,
    rows=format_integer(len(comparison.predictions[0].y))))
# --- the verdict ------------------------------------------------------------------------------------
st.subheader(_("Verdict on {score}").format(score=metric_title(comparison.primary)), divider=False,
             help=_("{inference} Significance level {alpha}.").format(inference=inference_text(),
                                                                       alpha=f"{comparison.alpha:g}"))
st.caption((_("Primary score `{score}`, declared with the experiment before training.") if comparison.primary_declared
            else _("Primary score `{score}`, the default for these classes (no primary was declared with these "
                   "runs).")).format(score=comparison.primary)
           + " " + _("Every other score below is exploratory."))
for flag in comparison.flags:
    st.error(flag, icon=":material/flag:")
primary_cells = comparison.summary[comparison.summary["is_primary"]].set_index("group")
for group, verdict in comparison.verdicts.items():
    cell = primary_cells.loc[group]
    if cell["is_aa"]:
        (st.warning if cell["significant"] else st.info)(_("A/A check: {verdict}").format(verdict=verdict),
                                                         icon=":material/balance:")
    elif cell["significant"]:
        (st.success if cell["better"] else st.error)(verdict, icon=":material/verified:")
    else:
        st.info(verdict, icon=":material/help:")
if comparison.power:
    left, right = st.columns([3, 2])
    left.caption(power_sentence(comparison))
    wanted = right.number_input(_("Difference in {score} to detect").format(score=metric_title(comparison.primary)),
                                0.0, 1.0, 0.01, step=0.005, format="%.4f", key="compare_detect")
    needed = comparison.seeds_needed(wanted) if wanted else None
    right.caption(_("Paired seeds needed at 80% power: **{needed}**").format(needed=needed) if needed else
                  _("More than 500 paired seeds, or the seed-to-seed spread is not known yet."))
if experiment is not None:
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    more = left.number_input(_("Seeds to add"), 1, 20, comparison.seeds_to_add(), key="compare_more_seeds",
                             help=_("Queues this many more seeds of every arm (strategies, baseline, A/A) into this "
                                    "experiment, paired with each other."))
    if right.button(_("Add seeds"), key="compare_add_seeds", icon=":material/add:"):
        try:
            added = runner.add_seeds(experiment, int(more))
        except RecexpError as error:
            st.error(str(error))
        else:
            st.session_state["train_experiment"] = experiment
            st.toast(ngettext("Queued {n} run; watch it on the Train page.",
                              "Queued {n} runs; watch them on the Train page.", len(added)).format(n=len(added)),
                     icon=":material/schedule:")
if comparison.notes:                                   # one box, a bullet per note
    st.warning("\n".join(f"- {note}" for note in comparison.notes))

# --- the table --------------------------------------------------------------------------------------
all_metrics = list(dict.fromkeys(comparison.summary["metric"]))
metrics = st.multiselect(_("Scores"), all_metrics, default=comparison.metrics, key="compare_metrics")
if not metrics:
    st.info(_("Choose at least one score."))
    st.stop()
st.dataframe(comparison.table(metrics), key="compare_table")
st.caption(_("Cells: mean over seeds [95% interval]. Δ: mean per-seed difference to **{baseline}** "
             "[95% t-interval over seeds]; `*` the verdict on the primary score (Holm-adjusted p), `°` an exploratory "
             "score significant after Benjamini-Hochberg, `!` the A/A arm significant (a red flag); no test below "
             "{min} paired seeds; P(better): the probability that a random seed of the strategy beats a random "
             "seed of the baseline (interval in the CSV). The row bootstrap of these trained models is in the CSV and "
             "JSON (`rows_delta_low`, `rows_delta_high`, `p_rows`); it never decides significance.").format(
               baseline=comparison.baseline, min=MIN_SEEDS)
           + (" " + _("Scores ending in `{suffix}` use the F1-optimal threshold chosen on each run's validation split "
                      "(the others use 0.5).").format(suffix=TUNED) if len(comparison.classes) == 2 else ""))

left, middle, right = st.columns(3)
left.download_button(_("Download CSV"), comparison.to_csv(), file_name="comparison.csv", mime="text/csv",
                     key="compare_csv", icon=":material/download:")
if middle.button(_("Build HTML report"), key="compare_build_report", icon=":material/description:"):
    with st.spinner(_("Building the report...")):
        st.session_state["compare_report"] = (stamp, comparison.to_html(
            metrics=metrics, epoch_metrics=store.epoch_metrics(list(runs["run_id"])),
            sample_losses=losses_of(store, home, comparison, stamp)))
report = st.session_state.get("compare_report")
if report and report[0] == stamp:
    right.download_button(_("Download HTML report"), report[1], file_name="comparison.html", mime="text/html",
                          key="compare_html", icon=":material/download:")

with st.expander(_("Every run")):
    st.dataframe(runs, hide_index=True, key="compare_per_run")
checks = consistency_table(comparison.predictions)
if len(checks):
    with st.expander(_("Do the added rows look real? Per strategy")):
        st.dataframe(checks, hide_index=True, key="compare_consistency", column_config={
            "group": _("strategy"), "runs": _("runs checked"), "warned": _("runs warned"), "line": _("check"),
            "detection_auc": st.column_config.NumberColumn(_("detection AUC (mean over runs)"), format="%.3f")})
        st.caption(_("Each run's check of its new rows against real rows of their class (0.5: indistinguishable): "
                     "set it beside the deltas above to see whether rows unlike real data helped or hurt."))
st.plotly_chart(metric_bars(comparison, metrics), key="compare_bars")

# --- per class ----------------------------------------------------------------------------------------
if comparison.predictions[0].ranking:          # items are ranked: no classes, curves or thresholds
    st.caption(_(NEXT_ITEM_PROTOCOL))
else:
    st.subheader(_("Per class"))
    per_class = st.radio(_("Per-class score"), ["recall", "f1", "precision", "pr_auc"], horizontal=True,
                         format_func={m: _(metric_title(m)) for m in ("recall", "f1", "precision", "pr_auc")}.get,
                         key="compare_per_class")
    st.plotly_chart(per_class_heatmap(comparison, per_class), key="compare_heatmap")

    classes = list(comparison.classes)
    positive_default = default_positive(classes)
    curve_class = st.selectbox(_("Class of the ROC and PR curves"), classes, index=classes.index(positive_default),
                               key="compare_curve_class")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(curves(comparison, curve_class, "roc"), key="compare_roc")
    with right:
        st.plotly_chart(curves(comparison, curve_class, "pr"), key="compare_pr")

    st.plotly_chart(confusion_matrices(comparison), key="compare_confusion")
    st.plotly_chart(confusion_difference(comparison), key="compare_confusion_diff")

    # --- operating points -----------------------------------------------------------------------------------
    st.subheader(_("Operating points"))
    positive = st.selectbox(_("Class that counts as the outcome (e.g. a purchase)"), classes,
                            index=classes.index(positive_default), key="compare_positive")
    min_precision = st.slider(_("Recall at a fixed precision: precision at least"), 0.05, 1.0, 0.5, 0.05,
                              key="compare_min_precision")
    st.plotly_chart(recall_at_precision_bars(comparison.recall_at_precision(positive, min_precision), positive,
                                             min_precision), key="compare_recall_at_precision")

    rules = {"top": _("the top K% scored"),
             "threshold": _("everyone with P({positive}) above a threshold").format(positive=positive)}
    rule = st.radio(_("Act on"), list(rules), format_func=rules.get, horizontal=True,
                    key="compare_rule", help=_("Score everyone, act on (e.g. contact, promote to) the chosen ones."))
    if rule == "top":
        top = st.slider(_("K: share acted on (%)"), 1, 100, 10, key="compare_top_percent")
        capture = comparison.capture(positive, top / 100)
    else:
        top = None
        threshold = st.slider(_("Threshold on P({positive})").format(positive=positive), 0.0, 1.0, 0.5, 0.01,
                              key="compare_threshold")
        capture = comparison.capture(positive, threshold=threshold)
    for statement in capture["statement"]:
        st.markdown(f"- {statement}")
    st.plotly_chart(capture_curve(comparison, positive, top / 100 if top else None), key="compare_capture")


# --- by slice -----------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def slices_of(home: str, _comparison: Comparison, stamp: tuple[str, ...], baseline: str,
              language: str) -> SliceComparison:
    return compare_by_slice(_comparison)


st.subheader(_("By slice"), help=_("Who a strategy helps and who it hurts.") + " " + " ".join(
    f"**{name}**: {_(meaning)}." for name, meaning in SLICE_DIMENSIONS.items()))
try:
    with st.spinner(_("Labelling the test rows with their slices and scoring every slice...")):
        sliced = slices_of(home, comparison, stamp, baseline, current_language())
except RecexpError as error:
    st.caption(str(error))
else:
    st.caption((_("Per slice, {metric} on its test rows: mean over seeds [95% interval], Δ the mean per-seed "
                  "difference to **{baseline}** [95% interval].") if sliced.baseline else
                _("Per slice, {metric} on its test rows: mean over seeds [95% interval].")).format(
        metric=_(metric_title(sliced.metric)), baseline=sliced.baseline)
        + " " + _("Slices are learned from the training rows only; exploratory (no verdict). † too few test rows or "
                  "seeds for an interval (why: the note column)."))
    st.dataframe(sliced.view(), key="compare_slices_table")
    if sliced.baseline:
        st.plotly_chart(slice_gains(sliced.table, sliced.baseline, _(metric_title(sliced.metric))),
                        key="compare_slice_gains")
    for sentence in sliced.worst_sentences():
        st.markdown(f"- {sentence}")
    for note in sliced.notes:
        st.caption(note)

# --- training and samples -------------------------------------------------------------------------------
st.subheader(_("Training curves"))
epochs = store.epoch_metrics(list(runs["run_id"]))
if len(epochs):
    st.plotly_chart(training_curves(epochs, {p.run.id: p.label for p in comparison.predictions if not p.tta},
                                    colours=run_colours(comparison)),
                    key="compare_training_curves")
else:
    st.caption(_("These runs recorded no per-epoch metrics."))

st.subheader(_("Sample importance"))
methods = methods_for(comparison.task)              # next-item runs: the loss dynamics only
importance_method = st.selectbox(_("Importance method"), list(methods), index=list(methods).index("mean_loss"),
                                 format_func=lambda n: METHODS[n].title or n, key="compare_importance_method",
                                 help=_("How each training row is valued (default parameters); higher = more "
                                        "valuable."))
with st.spinner(_("Valuing the training rows of the compared runs...")):
    values = importance_of(store, home, comparison, importance_method, stamp)
for note in values.attrs.get("notes", []):
    st.caption(note)
if len(values):
    st.caption(_(METHODS[importance_method].summary) + " "
               + _("Real rows and rows a strategy added, pooled over seeds. Per row, per class and across runs on the "
                   "Importance page."))
    st.plotly_chart(importance_by_strategy(values, METHODS[importance_method].title), key="compare_importance")
    st.page_link("pages/importance.py", label=_("Explore the rows on the Importance page"),
                 icon=":material/insights:")
else:
    st.caption(_("None of these runs could be valued (see the notes above)."))
