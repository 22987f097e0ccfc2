"""Strategy Lab: choose a strategy, tune it, and preview what it does to the training split."""

import hashlib
import json

import streamlit as st

from recexp.charts.strategies import class_counts_figure, distribution_figure, feature_choices, projection_figure
from recexp.errors import RecexpError
from recexp.strategies import FAMILIES, STRATEGIES, StrategyResult, get_strategy, stratified_sample
from recexp.ui.params import param_widgets
from recexp.ui.state import require_dataset

st.title("Strategy Lab")
st.caption("Pick a way to expand, balance or re-weight the training rows and see what it does before you "
           "train on it. Strategies only ever see the training split: validation and test rows stay locked.")

dataset, split = require_dataset()
train = dataset.subset(split.train)
locked = {"validation": dataset.subset(split.valid).class_counts(), "test": dataset.subset(split.test).class_counts()}


@st.cache_data(show_spinner=False, max_entries=24)
def preview(_train, train_key: str, name: str, params_json: str, seed: int) -> StrategyResult:
    """Apply a strategy (cached on the training rows' identity, the strategy, its parameters and the seed)."""
    return get_strategy(name, **json.loads(params_json)).apply(_train, seed=seed)


settings, results = st.columns([1, 2], gap="large")
with settings:
    name = st.selectbox("Strategy", list(STRATEGIES), key="lab_strategy",
                        format_func=lambda n: f"{STRATEGIES[n].title} · {STRATEGIES[n].family}")
    strategy_class = STRATEGIES[name]
    st.caption(f"**{FAMILIES[strategy_class.family]}.** {strategy_class.summary}")
    seed = int(st.number_input("Seed", min_value=0, value=0, step=1, key="lab_seed"))
    max_rows = int(st.number_input("Preview on at most this many training rows", min_value=200,
                                   value=min(len(train), 10_000), step=1_000, key="lab_rows",
                                   help="A stratified sample keeps slow samplers interactive; training uses every row. "
                                        "Rows per class below refer to this sample."))
    sample = stratified_sample(train, max_rows, seed=seed)
    values = param_widgets(strategy_class, prefix="lab", classes=dataset.schema.classes,
                           class_counts=sample.class_counts())

sample_key = hashlib.sha256(split.train.tobytes() + repr(dataset.schema).encode()).hexdigest()[:16] \
    + f":{dataset.fingerprint}:{dataset.task}:{max_rows}"

with results:
    try:
        with st.spinner(f"Applying {strategy_class.title} to {len(sample):,} training rows..."):
            result = preview(sample, sample_key, name, json.dumps(values, sort_keys=True), seed)
    except RecexpError as error:
        st.error(str(error))
        st.stop()
    report = result.report
    if len(sample) < len(train):
        st.caption(f"Preview on a stratified sample of {len(sample):,} of the {len(train):,} training rows.")
    rows_before, rows_after, seconds = st.columns(3)
    rows_before.metric("Training rows before", f"{report.rows_before:,}")
    rows_after.metric("Training rows after", f"{report.rows_after:,}", delta=f"{report.rows_after - report.rows_before:+,}")
    seconds.metric("Seconds", f"{report.seconds:.2f}")
    st.caption(f"{sum(report.added.values()):,} rows added, {sum(report.removed.values()):,} real rows removed.")

    log_y = st.toggle("Logarithmic row axis", value=True, key="lab_log")
    st.plotly_chart(class_counts_figure(report.before, report.after, locked, log_y=log_y), key="lab_counts_chart")
    st.caption("Validation and test rows (grey) are the whole splits, never passed to a strategy.")
    table = report.table()
    for part, counts in locked.items():
        table[f"{part} (locked)"] = [counts[c] for c in table.index]
    st.table(table)
    for note in report.notes:
        st.info(note)
    if result.loss is not None:
        st.info(f"The trainer will use the {result.loss['name']} loss with "
                + ", ".join(f"{k}={v}" for k, v in result.loss.items() if k != "name") + ".")

    st.subheader("Real and new rows, projected")
    figure = projection_figure(sample, result, seed=seed)
    if figure is None:
        st.info("The projection needs at least two numeric features; this dataset has fewer.")
    else:
        st.plotly_chart(figure, key="lab_projection_chart")
        st.caption("PCA of the numeric features, fitted on the real training rows. Circles: real rows kept; "
                   "diamonds: new rows; crosses: real rows removed.")

    st.subheader("Feature distributions, before and after")
    feature = st.selectbox("Feature", feature_choices(sample), key="lab_feature")
    st.plotly_chart(distribution_figure(sample, result, feature), key="lab_distribution_chart")
