"""Imbalance: class mix, long tail, per-class features and the behaviour funnel of the active dataset."""

import pandas as pd
import streamlit as st

from recexp import imbalance
from recexp.charts import imbalance as charts
from recexp.dataset import SAMPLE_WEIGHT
from recexp.diskbuild import class_mix
from recexp.errors import RecexpError
from recexp.i18n import N_, _, format_decimal, format_integer, format_percent
from recexp.outofcore import PARTS, sampled_class_mix
from recexp.tasks import task_kind
from recexp.ui.state import active_choice, large_log, load_source, require_dataset, require_disk_dataset

#: The parts of a split, in words.
PART_TITLES = {"train": N_("train"), "valid": N_("validation"), "test": N_("test")}


@st.cache_data(show_spinner=False, max_entries=32)
def _funnel(_log, fingerprint: str, unit: str, by: str | None):
    return imbalance.funnel(_log, unit=unit, by=by)


@st.cache_data(show_spinner=False, max_entries=32)
def _long_tail(_log, fingerprint: str, entity: str):
    return imbalance.long_tail(_log, entity=entity)


def balance_metrics(balance: dict) -> None:
    """Classes, imbalance ratio, normalised entropy and the minority class, in a row."""
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Classes"), len(balance["class_counts"]))
    c2.metric(_("Imbalance ratio"), f"{format_decimal(balance['imbalance_ratio'], 1)} : 1",
              help=_("Majority count / minority count."))
    c3.metric(_("Balance (normalised entropy)"), format_decimal(balance["normalised_entropy"], 2),
              help=_("Shannon entropy of the class shares divided by log K: 1 is perfectly balanced, 0 is one class."))
    c4.metric(_("Minority class"), min(balance["class_counts"], key=balance["class_counts"].get))


def raw_and_sampled(mix: dict) -> None:
    """The raw class mix (weighted back to the full population) beside the sampled one: a chart and a table."""
    st.subheader(_("Raw and sampled class mix"), divider=False)
    st.caption(_("The majority class was down-sampled at build time: **sampled** counts the rows kept, **raw "
                 "(weighted)** weighs each kept row by 1 / its sampling rate, which estimates the full population's "
                 "mix (what weighted test scores are corrected to)."))
    left, right = st.columns(2)
    left.plotly_chart(charts.sampled_mix_chart(mix), key="imb_sampled_mix_chart")
    right.table(pd.DataFrame({_("raw (weighted)"): mix["population"], _("sampled"): mix["sampled"]})
                .style.format("{:,.0f}"))


st.title(_("Imbalance"))
choice = active_choice()
if large_log(choice) is not None:         # built on disk: counts from its metadata, never its rows
    disk = require_disk_dataset(choice)
    st.caption(_("{name} · task **{task}** · {samples} samples, built on disk").format(
        name=choice.source.name, task=disk.task, samples=format_integer(len(disk))))
    balance = imbalance.class_balance(disk.class_counts())
    balance_metrics(balance)
    left, right = st.columns(2)
    left.plotly_chart(charts.class_balance_chart(balance, log_y=balance["imbalance_ratio"] > 20))
    right.markdown(_("**Class counts per split** (the test split is fixed for every run compared on it)"))
    right.table(pd.DataFrame({_(PART_TITLES[p]): disk.counts[p] for p in PARTS}).style.format("{:,}"))
    if disk.sampling.get("negative_rate", 1.0) < 1:
        raw_and_sampled(class_mix(disk))
    if disk.sampling.get("users", 1.0) < 1:
        st.caption(_("Users were sampled at build time ({share} kept, whole histories): the counts are those of the "
                     "users kept; the class mix is estimated without weights.").format(
            share=format_percent(disk.sampling["users"])))
    st.info(_("The funnel, the long tail and the per-class features need every event or row in memory, so they are "
              "not shown for a dataset built on disk. Keep a share of users on the Data page to see them on a log "
              "that fits."), icon=":material/hard_drive:")
    st.stop()

dataset, split = require_dataset()
source = load_source(active_choice().source)
st.caption(_("{name} · task **{task}** · {samples} samples").format(
    name=active_choice().source.name, task=dataset.task, samples=format_integer(len(dataset))))

parts = {_("train"): split.train, _("validation"): split.valid, _("test"): split.test}
ranking = task_kind(dataset.task) == "ranking"
if ranking:     # the classes are the catalogue's items: their popularity as targets is the imbalance to see
    targets = imbalance.target_popularity(dataset, split.train)
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Target items"), format_integer(targets.n_entities),
              help=_("Distinct items that are a training row's next item (out of {n} in the vocabulary).").format(
                  n=format_integer(dataset.schema.n_classes)))
    c2.metric(_("Gini of target popularity"), format_decimal(targets.gini, 3),
              help=_("0: every item is a target equally often; towards 1: a few items are most targets."))
    c3.metric(_("Top 10% of items hold"), format_percent(targets.top_shares["top 10%"]))
    left, right = st.columns(2)
    left.plotly_chart(charts.lorenz_chart(targets, title=N_("Popularity of the next items (training rows)")))
    right.markdown(_("**Rows per split** (the next-item task ranks every item; its classes are the items)"))
    right.table(pd.DataFrame({_("rows"): {part: len(rows) for part, rows in parts.items()}}).style.format("{:,}"))
else:
    balance = imbalance.class_balance(dataset)
    balance_metrics(balance)

    left, right = st.columns(2)
    log_y = left.toggle(_("Log scale"), value=balance["imbalance_ratio"] > 20, key="imb_log_y")
    left.plotly_chart(charts.class_balance_chart(balance, log_y=log_y))
    right.markdown(_("**Class counts per split** (the test split is fixed for every run compared on it)"))
    right.table(pd.DataFrame({part: dataset.class_counts(rows) for part, rows in parts.items()}).style.format("{:,}"))
    if SAMPLE_WEIGHT in dataset.frame:
        raw_and_sampled(sampled_class_mix(dataset))

not_for_ranking = _("Not shown for a ranking task: its classes are the {n} items of the catalogue.").format(
    n=format_integer(dataset.schema.n_classes))
tabs = st.tabs([_("Funnel"), _("Long tail"), _("Class mix per category"), _("Features per class")])
is_log = source.kind == "log"
with tabs[0]:
    if not is_log:
        st.info(_("The funnel needs a behaviour log; the active data is a feature table."))
    else:
        units = {"user": _("users"), "pair": _("user-item pairs")}
        unit = st.radio(_("Count"), list(units), horizontal=True, key="imb_funnel_unit", format_func=units.get)
        overall = _funnel(source, source.fingerprint, unit, None)
        st.plotly_chart(charts.funnel_chart(overall, title=_("Funnel over {unit}").format(unit=units[unit])))
        st.caption(_("**In order**: units that did every earlier stage first (the funnel; conversions below use it). **Counted independently**: units with any event of the stage, whatever they did before (a buyer need not have viewed)."))
        by = st.selectbox(_("Conversion by"), ["segment", "category", "day"], key="imb_funnel_by",
                          format_func={"segment": _("user activity segment"), "category": _("top categories"),
                                       "day": _("day")}.get)
        try:
            grouped = _funnel(source, source.fingerprint, unit, by)
            st.plotly_chart(charts.funnel_groups_chart(grouped, kind="heatmap" if by == "category" else "lines"))
        except RecexpError as error:
            st.warning(str(error))
with tabs[1]:
    if not is_log:
        st.info(_("The long tail of users and items needs a behaviour log."))
    else:
        tails = [_long_tail(source, source.fingerprint, entity) for entity in ("item", "user")]
        st.plotly_chart(charts.lorenz_chart(tails))
        st.dataframe(charts.long_tail_table(tails))
with tabs[2]:
    mix_source = None if ranking else dataset if "category" in dataset.frame.columns else source if is_log else None
    if ranking:
        st.info(not_for_ranking)
    elif mix_source is None:
        st.info(_("This dataset has no category column to break the class mix down by."))
    else:
        try:
            mix = imbalance.class_mix_by_category(mix_source)
            normalise = st.toggle(_("Shares"), value=True, key="imb_mix_shares")
            st.plotly_chart(charts.class_mix_chart(mix, normalise=normalise))
        except RecexpError as error:
            st.info(str(error))
with tabs[3]:
    if ranking:
        st.info(not_for_ranking)
    elif not dataset.schema.numeric:
        st.info(_("This dataset has no numeric features."))
    else:
        feature = st.selectbox(_("Feature"), dataset.schema.numeric, key="imb_feature")
        st.plotly_chart(charts.feature_violin_chart(dataset, feature))
