"""Imbalance: class mix, long tail, per-class features and the behaviour funnel of the active dataset."""

import pandas as pd
import streamlit as st

from recexp import imbalance
from recexp.charts import imbalance as charts
from recexp.errors import RecexpError
from recexp.ui.state import active_choice, load_source, require_dataset


@st.cache_data(show_spinner=False, max_entries=32)
def _funnel(_log, fingerprint: str, unit: str, by: str | None):
    return imbalance.funnel(_log, unit=unit, by=by)


@st.cache_data(show_spinner=False, max_entries=32)
def _long_tail(_log, fingerprint: str, entity: str):
    return imbalance.long_tail(_log, entity=entity)


st.title("Imbalance")
dataset, split = require_dataset()
source = load_source(active_choice().source)
st.caption(f"{active_choice().source.name} · task **{dataset.task}** · {len(dataset):,} samples")

balance = imbalance.class_balance(dataset)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Classes", len(balance["class_counts"]))
c2.metric("Imbalance ratio", f"{balance['imbalance_ratio']:.1f} : 1", help="Majority count / minority count.")
c3.metric("Balance (normalised entropy)", f"{balance['normalised_entropy']:.2f}",
          help="Shannon entropy of the class shares divided by log K: 1 is perfectly balanced, 0 is one class.")
c4.metric("Minority class", min(balance["class_counts"], key=balance["class_counts"].get))

left, right = st.columns(2)
log_y = left.toggle("Log scale", value=balance["imbalance_ratio"] > 20, key="imb_log_y")
left.plotly_chart(charts.class_balance_chart(balance, log_y=log_y))
parts = {"train": split.train, "validation": split.valid, "test": split.test}
right.markdown("**Class counts per split** (the test split is fixed for every run compared on it)")
right.table(pd.DataFrame({part: dataset.class_counts(rows) for part, rows in parts.items()}).style.format("{:,}"))

tabs = st.tabs(["Funnel", "Long tail", "Class mix per category", "Features per class"])
is_log = source.kind == "log"
with tabs[0]:
    if not is_log:
        st.info("The funnel needs a behaviour log; the active data is a feature table.")
    else:
        unit = st.radio("Count", ["user", "pair"], horizontal=True, key="imb_funnel_unit",
                        format_func={"user": "users", "pair": "user-item pairs"}.get)
        overall = _funnel(source, source.fingerprint, unit, None)
        st.plotly_chart(charts.funnel_chart(overall, title=f"Funnel over {unit}s"))
        st.caption("**In order**: units that did every earlier stage first (the funnel; conversions below use it). "
                   "**Counted independently**: units with any event of the stage, whatever they did before "
                   "(a buyer need not have viewed).")
        by = st.selectbox("Conversion by", ["segment", "category", "day"], key="imb_funnel_by",
                          format_func={"segment": "user activity segment", "category": "top categories",
                                       "day": "day"}.get)
        try:
            grouped = _funnel(source, source.fingerprint, unit, by)
            st.plotly_chart(charts.funnel_groups_chart(grouped, kind="heatmap" if by == "category" else "lines"))
        except RecexpError as error:
            st.warning(str(error))
with tabs[1]:
    if not is_log:
        st.info("The long tail of users and items needs a behaviour log.")
    else:
        tails = [_long_tail(source, source.fingerprint, entity) for entity in ("item", "user")]
        st.plotly_chart(charts.lorenz_chart(tails))
        st.dataframe(charts.long_tail_table(tails))
with tabs[2]:
    mix_source = dataset if "category" in dataset.frame.columns else source if is_log else None
    if mix_source is None:
        st.info("This dataset has no category column to break the class mix down by.")
    else:
        try:
            mix = imbalance.class_mix_by_category(mix_source)
            normalise = st.toggle("Shares", value=True, key="imb_mix_shares")
            st.plotly_chart(charts.class_mix_chart(mix, normalise=normalise))
        except RecexpError as error:
            st.info(str(error))
with tabs[3]:
    if not dataset.schema.numeric:
        st.info("This dataset has no numeric features.")
    else:
        feature = st.selectbox("Feature", dataset.schema.numeric, key="imb_feature")
        st.plotly_chart(charts.feature_violin_chart(dataset, feature))
