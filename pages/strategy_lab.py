"""Strategy Lab: choose a strategy, tune it, and preview what it does to the training split."""

import hashlib
import json

import streamlit as st

from recexp.background import BackgroundTask
from recexp.charts.strategies import class_counts_figure, distribution_figure, feature_choices, projection_figure
from recexp.charts.synthesis import column_histograms, pair_difference_heatmap, training_curves
from recexp.consistency import CONSISTENCY_COLUMNS, WARN_AUC, ConsistencyReport, check_consistency
from recexp.errors import RecexpError
from recexp.i18n import N_, _, format_decimal, format_integer, localized
from recexp.jobs import bind_strategy
from recexp.strategies import (
    FAMILIES, STRATEGIES, Strategy, StrategyResult, get_strategy, strategies_by_family, strategy_label,
    stratified_sample,
)
from recexp.synthesis.report import SCORE_HELP, membership_reading
from recexp.ui.params import param_widgets
from recexp.ui.state import add_to_grid, require_dataset, run_store, strategy_grid

st.title(_("Strategy Lab"))
st.caption(_("Pick a way to expand, balance or re-weight the training rows and see what it does before you "
             "train on it. Strategies only ever see the training split: validation and test rows stay locked."))

dataset, split = require_dataset()
train = dataset.subset(split.train)
valid = dataset.subset(split.valid)       # held-out real rows for a generator's efficacy and privacy scores
locked = {"validation": dataset.class_counts(split.valid), "test": dataset.class_counts(split.test)}


#: The strategy families' names on the picker (their ids stay in run specs and the CLI).
FAMILY_NAMES = {"baseline": N_("Baseline"), "balancing": N_("Balancing"), "weighting": N_("Weighting"),
                "expansion": N_("Expansion"), "synthesis": N_("Synthesis"), "importance": N_("Importance")}
#: The columns of a strategy's report table as shown (the table itself keeps the ids).
REPORT_COLUMNS = {"before": N_("before"), "after": N_("after"), "added": N_("added"), "removed": N_("removed"),
                  "weight": N_("weight")}
#: Metric label -> row of SynthesisReport.scores() shown as a headline number.
HEADLINE_SCORES = {N_("Quality score"): "Quality score", N_("Column shapes"): "Column shapes",
                   N_("Pair trends"): "Pair trends", N_("Detection AUC"): "Detection AUC",
                   N_("ML efficacy"): "ML efficacy (F1 synthetic / real)", N_("DCR ratio"): "DCR ratio"}


def shown(value: float) -> str:
    """A score with three decimals, or n/a where it could not be computed."""
    return _("n/a") if value != value else format_decimal(value, 3)


#: Previews this session keeps (a generator's preview can take minutes: going back to one must not refit it).
KEPT_PREVIEWS = 12
#: Previews expected to take longer than this many seconds start on "Run preview"; quicker ones run live.
LIVE_PREVIEW_SECONDS = 2.0
#: How often a preview running in the background is polled for its progress. Every poll runs Python on
#: the server beside the preview's thread, which competes with it for the interpreter: polling twice a
#: second made a VAE preview four times slower than polling every two seconds.
POLL_SECONDS = 2.0


Preview = tuple[StrategyResult, ConsistencyReport | None]


def keep(key: tuple, outcome: Preview) -> Preview:
    """Remember a preview's outcome for this session (the oldest of more than KEPT_PREVIEWS is dropped)."""
    kept = st.session_state.setdefault("lab_previews", {})
    kept[key] = outcome
    while len(kept) > KEPT_PREVIEWS:
        kept.pop(next(iter(kept)))
    return outcome


def applied_and_checked(bound: Strategy, rows, seed: int, progress) -> Preview:
    """A preview's work: the (bound) strategy applied to the rows, then the rows it added checked against real
    ones (:func:`recexp.consistency.check_consistency`, about 2 s on 10,000 rows), under one progress bar."""
    result = bound.apply(rows, seed=seed, progress=lambda done, message: progress(0.85 * done, message))
    progress(0.85, _("checking whether the new rows look real"))
    return result, check_consistency(result, random_state=seed)


def preview(rows, key: tuple, strategy: Strategy, seed: int) -> Preview:
    """Apply a quick strategy with a progress bar, or return this session's earlier result for the same
    rows, strategy, parameters and seed. (Not ``st.cache_data``: its replay cannot drive a progress bar.)"""
    kept = st.session_state.setdefault("lab_previews", {})
    if key not in kept:
        bar = st.progress(0.0, text=_("Starting..."))
        try:
            keep(key, applied_and_checked(bind_strategy(strategy, run_store(), valid), rows, seed,
                                          lambda done, message: bar.progress(done, text=message.capitalize())))
        finally:
            bar.empty()
    return kept[key]


def duration(seconds: float) -> str:
    """Seconds in words: '40 s', '3 min'."""
    if seconds < 90:
        return _("{seconds} s").format(seconds=format_decimal(seconds, 0))
    return _("{minutes} min").format(minutes=format_decimal(seconds / 60, 0))


def background_preview(rows, key: tuple, strategy: Strategy, seed: int, estimate: float) -> Preview:
    """A slow strategy's preview: its result once "Run preview" was pressed and the work on a background
    thread ended; until then the button with the time estimate, or the progress with a Cancel, and the
    rest of the page waits."""
    kept = st.session_state.setdefault("lab_previews", {})
    task: BackgroundTask | None = st.session_state.get("lab_task")
    if task is not None and task.status in ("finished", "failed"):
        del st.session_state["lab_task"]
        if task.status == "finished":
            keep(task.key, task.outcome())
        elif task.key == key:
            task.outcome()                      # raises the strategy's error for the page to show
    if key in kept:
        return kept[key]
    if task is not None and task.status == "running":
        follow_preview(key)
        st.stop()
    if task is not None and task.key == key and task.status == "cancelled":
        st.info(_("Preview cancelled after {duration}.").format(duration=duration(task.elapsed)),
                icon=":material/stop:")
    if "epochs" in strategy.params:
        work = _("{strategy} on {rows} training rows for {epochs} epochs").format(
            strategy=strategy.title, rows=format_integer(len(rows)), epochs=strategy.epochs)
    else:
        work = _("{strategy} on {rows} training rows").format(strategy=strategy.title, rows=format_integer(len(rows)))
    st.info(_("{work} takes about {duration} on one CPU core, so its preview waits for a click. It runs in the "
              "background: the page stays usable and you can cancel it.").format(work=work,
                                                                                 duration=duration(estimate)),
            icon=":material/timer:")
    if st.button(_("Run preview"), type="primary", key="lab_run_preview", icon=":material/play_arrow:"):
        bound = bind_strategy(strategy, run_store(), valid)
        st.session_state["lab_task"] = BackgroundTask(
            lambda progress: applied_and_checked(bound, rows, seed, progress),
            label=_("{strategy} on {rows} rows").format(strategy=strategy.title, rows=format_integer(len(rows))),
            key=key).start()
        st.rerun()
    st.stop()


@st.fragment(run_every=POLL_SECONDS)
def follow_preview(key: tuple) -> None:
    """The running preview's progress bar, time so far and left, and its Cancel button (``key``: the
    settings the page shows now)."""
    task: BackgroundTask | None = st.session_state.get("lab_task")
    if task is None or task.status != "running":
        st.rerun()                              # the whole page picks up the result
    st.progress(task.fraction, text=task.label + ": " + (task.message or _("starting")))
    left = task.remaining()
    st.caption(_("{elapsed} so far, about {left} left.").format(elapsed=duration(task.elapsed), left=duration(left))
               if left is not None else _("{elapsed} so far.").format(elapsed=duration(task.elapsed)))
    if task.key != key:
        st.caption(_("This preview runs with earlier settings: cancel it to preview the ones shown."))
    if st.button(_("Cancel"), key="lab_cancel_preview", icon=":material/stop:"):
        task.cancel()
        st.rerun()


def keep_strategy_in_family() -> None:
    """When a family is picked, move the strategy picker into it (to its first strategy) if it is elsewhere."""
    family = st.session_state.get("lab_family")
    families = strategies_by_family(dataset.task)
    if family and st.session_state.get("lab_strategy") not in families[family]:
        st.session_state["lab_strategy"] = families[family][0]


settings, results = st.columns([1, 2], gap="large")
with settings:
    families = strategies_by_family(dataset.task)              # only the strategies that make sense for the task
    if st.session_state.get("lab_family") not in (None, *families):
        st.session_state["lab_family"] = None
    family = st.pills(_("Family"), list(families),
                      format_func={f: _(FAMILY_NAMES.get(f, f.capitalize())) for f in families}.get,
                      key="lab_family",
                      on_change=keep_strategy_in_family, help=_("Show one family's strategies (none picked: all)."))
    offered = families[family] if family else [name for names in families.values() for name in names]
    name = st.selectbox(_("Strategy"), offered, key="lab_strategy",
                        format_func={n: strategy_label(n) for n in offered}.get,
                        help=_("Type to search by name, id or family. The Train page shows the same names; run "
                               "specs, the CLI and the Compare page use the id in brackets."))
    strategy_class = STRATEGIES[name]
    st.caption(f"**{_(FAMILIES[strategy_class.family])}.** {_(strategy_class.summary)}")
    seed = int(st.number_input(_("Seed"), min_value=0, value=0, step=1, key="lab_seed"))
    # No floor above 1: a small training split (the Criteo sample has 144 rows) must still open, and the
    # sample keeps every class's rows up to 50 whatever is asked.
    max_rows = int(st.number_input(_("Preview on at most this many training rows"), min_value=1,
                                   value=min(len(train), 10_000), step=1_000, key="lab_rows",
                                   help=_("A stratified sample keeps slow samplers interactive; training uses every "
                                          "row. Rows per class below refer to this sample.")))
    sample = stratified_sample(train, max_rows, seed=seed)
    values = param_widgets(strategy_class, prefix="lab", classes=dataset.schema.classes,
                           class_counts=sample.class_counts())
    if st.button(_("Add to grid"), key="lab_add_to_grid", icon=":material/playlist_add:",
                 help=_("Add this strategy with these parameters to the Train page's grid of strategies to compare.")):
        add_to_grid(name, values)
        st.toast(_("{strategy} is in the Train page's grid.").format(strategy=strategy_label(name)),
                 icon=":material/playlist_add_check:")
    st.caption(_("Train page grid: {strategies}").format(
        strategies=", ".join(strategy_label(n) for n in strategy_grid())))
    st.page_link("pages/train.py", label=_("Open the Train page"), icon=":material/model_training:")

sample_key = hashlib.sha256(split.train.tobytes() + repr(dataset.schema).encode()).hexdigest()[:16] \
    + f":{dataset.fingerprint}:{dataset.task}:{max_rows}"

with results:
    key = (sample_key, name, json.dumps(values, sort_keys=True), seed)
    try:
        strategy = get_strategy(name, **values)
        estimate = strategy.estimated_seconds(len(sample))
        if estimate is not None and estimate > LIVE_PREVIEW_SECONDS:
            result, consistency = background_preview(sample, key, strategy, seed, estimate)
        else:
            with st.spinner(_("Applying {strategy} to {rows} training rows...").format(
                    strategy=strategy_class.title, rows=format_integer(len(sample)))):
                result, consistency = preview(sample, key, strategy, seed)
    except RecexpError as error:
        st.error(str(error))
        st.stop()
    report = result.report
    if len(sample) < len(train):
        st.caption(_("Preview on a stratified sample of {sample} of the {rows} training rows.").format(
            sample=format_integer(len(sample)), rows=format_integer(len(train))))
    rows_before, rows_after, seconds = st.columns(3)
    rows_before.metric(_("Training rows before"), format_integer(report.rows_before))
    rows_after.metric(_("Training rows after"), format_integer(report.rows_after),
                      delta=f"{report.rows_after - report.rows_before:+,}")
    seconds.metric(_("Seconds"), format_decimal(report.seconds, 2))
    st.caption(_("{added} rows added, {removed} real rows removed.").format(
        added=format_integer(sum(report.added.values())), removed=format_integer(sum(report.removed.values()))))

    log_y = st.toggle(_("Logarithmic row axis"), value=True, key="lab_log")
    st.plotly_chart(class_counts_figure(report.before, report.after, locked, log_y=log_y), key="lab_counts_chart")
    st.caption(_("Validation and test rows (grey) are the whole splits, never passed to a strategy."))
    table = report.table()
    for part, counts in locked.items():
        table[_("{part} (locked)").format(part=_(part))] = [counts[c] for c in table.index]
    rows = [c for c in table.columns if c != "weight"]
    table = table.rename(columns=lambda c: _(REPORT_COLUMNS[c]) if c in REPORT_COLUMNS else c)
    rows = [_(REPORT_COLUMNS[c]) if c in REPORT_COLUMNS else c for c in rows]
    table.index.name = _(table.index.name) if table.index.name else None
    st.table(table.style.format("{:,}", subset=rows, na_rep="").format("{:.3g}", subset=table.columns.difference(rows)))
    for note in report.notes:
        st.info(localized(note))            # a kept preview's notes, in the language shown now
    if result.loss is not None:
        st.info(_("The trainer will use the {loss} loss with {params}.").format(
            loss=result.loss["name"], params=", ".join(f"{k}={v}" for k, v in result.loss.items() if k != "name")))

    if consistency is not None:
        st.subheader(_("Do the new rows look real?"))
        (st.warning if consistency.verdict == "warn" else st.success)(_("{sentences}.").format(
            sentences=_("; ").join(consistency.lines)))
        st.dataframe(consistency.table(), key="lab_consistency_table", hide_index=True,
                     column_config={c: _(title) for c, title in CONSISTENCY_COLUMNS.items()})
        st.caption(_("New rows against real rows of their class: a boosted-tree classifier's cross-validated ROC-AUC "
                     "(0.5: indistinguishable; a warning from {warn}), the MMD with its permutation p-value, and the "
                     "feature with the largest KS / total-variation distance. Stored with every run as "
                     "consistency.json.").format(warn=format_decimal(WARN_AUC, 2)))
        for note in consistency.notes:
            st.caption(localized(note))

    synthesis = result.synthesis
    if synthesis is not None:
        st.subheader(_("Synthesis report"))
        quality = synthesis.quality
        if quality is None:
            st.info(_("The quality report is off; turn on 'Quality report' to score the generated rows."))
        else:
            scores = synthesis.scores()
            overall = scores["all classes"]
            minority = scores.columns[1]
            cells = st.columns(4) + st.columns(4)
            for cell, (label, score) in zip(cells, HEADLINE_SCORES.items()):
                cell.metric(_(label), shown(overall[score]), help=_(SCORE_HELP[score]))
            copies = quality.overall.privacy["exact_copies"]
            cells[6].metric(_("Exact copies"), format_integer(copies), help=_(SCORE_HELP["Exact copies (share)"]))
            cells[7].metric(_("Quality score, {minority}").format(minority=quality.minority_class),
                            shown(scores.loc["Quality score", minority]),
                            help=_("The quality score on the minority class alone, where generators struggle most."))
            st.caption(_("{synthetic} generated rows scored against {real} real training rows (a stratified sample) "
                         "with the same rows per class. Efficacy models are tested on, and privacy distances compared "
                         "with, {held_out}.").format(synthetic=format_integer(quality.overall.rows_synthetic),
                                                     real=format_integer(quality.overall.rows_real),
                                                     held_out=synthesis.held_out))
            scores = scores.assign(**{"what good looks like": [_(SCORE_HELP[s]) for s in scores.index]})
            scores = scores.rename(index=_, columns=_).rename_axis(_(scores.index.name))
            st.table(scores.style.format(shown, subset=list(scores.columns[:2])))
            efficacy = synthesis.efficacy_table()
            if len(efficacy):
                st.caption(_("Machine-learning efficacy: a gradient-boosted classifier scored on held-out real rows."))
                st.table(efficacy.style.format(shown))
            for note in quality.notes:
                st.caption(localized(note))

            st.markdown(_("**Privacy**"))
            dp = synthesis.differential_privacy
            cells = st.columns(4)
            cells[0].metric(_("Epsilon requested"), format_decimal(dp["epsilon_requested"], 3) if dp else _("off"),
                            help=_("The differential-privacy budget set for DP-SGD training; off: trained without "
                                   "differential privacy."))
            cells[1].metric(_("Epsilon spent"), format_decimal(dp["epsilon"], 3) if dp else _("off"),
                            help=_("Epsilon spent by training, by Opacus' privacy accountant (at most the budget)."))
            cells[2].metric(_("Delta"), format_decimal(dp["delta"], 6) if dp else _("off"),
                            help=_("The chance the epsilon guarantee fails (default 1 / training rows)."))
            cells[3].metric(_("Membership inference AUC"), shown(synthesis.membership_inference_auc),
                            help=SCORE_HELP["Membership inference AUC"])
            st.caption(membership_reading(synthesis.membership_inference_auc))
            for note in synthesis.privacy_notes():
                st.caption(note)

            column = st.selectbox(_("Column"), synthesis.columns, key="lab_synthesis_column")
            st.plotly_chart(column_histograms(synthesis.real, synthesis.synthetic, dataset.schema, columns=[column],
                                              cols=1), key="lab_synthesis_histogram")
            st.plotly_chart(pair_difference_heatmap(quality), key="lab_synthesis_heatmap")
            st.caption(_("Synthetic minus real association of every column pair: white is preserved, red is "
                         "stronger in the synthetic rows, blue weaker."))
        if synthesis.history is not None:
            st.plotly_chart(training_curves(synthesis.history, synthesis.best_epoch), key="lab_synthesis_training")
            st.caption(_("Losses per epoch (left axis) and the quality score where it was computed (right axis). "
                         "The checkpoint of epoch {epoch} is the one kept. Fit took {seconds} s.").format(
                epoch=synthesis.best_epoch, seconds=format_decimal(synthesis.fit_seconds, 1)))
        else:
            st.caption(_("{generator} is fitted in closed form ({seconds} s): no training curves.").format(
                generator=synthesis.generator, seconds=format_decimal(synthesis.fit_seconds, 2)))
        if synthesis.imputation:
            st.markdown(_("**Imputation**: {filled} missing cells filled. Compared on {hidden} observed cells hidden "
                          "for the test (error: lower is better; shape, the similarity of the imputed values' "
                          "distribution to the true ones: higher is better).").format(
                filled=format_integer(synthesis.imputation["filled_cells"]),
                hidden=format_integer(synthesis.imputation["hidden_cells"])))
            st.table(synthesis.imputation_summary().style.format(shown))
            three_decimals = st.column_config.NumberColumn(format="%.3f")
            st.dataframe(synthesis.imputation_table(), key="lab_synthesis_imputation", hide_index=True,
                         column_config={"error": three_decimals, "shape": three_decimals})

    st.subheader(_("Real and new rows, projected"))
    figure = projection_figure(sample, result, seed=seed)
    if figure is None:
        st.info(_("The projection needs at least two numeric features; this dataset has fewer."))
    else:
        st.plotly_chart(figure, key="lab_projection_chart")
        st.caption(_("PCA of the numeric features, fitted on the real training rows. Circles: real rows kept; "
                     "diamonds: new rows; crosses: real rows removed."))

    st.subheader(_("Feature distributions, before and after"))
    feature = st.selectbox(_("Feature"), feature_choices(sample), key="lab_feature")
    st.plotly_chart(distribution_figure(sample, result, feature), key="lab_distribution_chart")
