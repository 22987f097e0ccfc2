"""recexp dashboard entry point: page config, shared resources, navigation. Nothing else."""

from pathlib import Path

import streamlit as st

from recexp.ui.state import sidebar_summary

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="recexp", page_icon=":material/science:", layout="wide")

navigation = st.navigation(
    {
        "Data": [
            st.Page(PAGES / "data.py", title="Data", icon=":material/upload_file:", default=True),
            st.Page(PAGES / "imbalance.py", title="Imbalance", icon=":material/balance:"),
        ],
        "Experiment": [
            st.Page(PAGES / "strategy_lab.py", title="Strategy Lab", icon=":material/tune:"),
            st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:"),
            st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:"),
            st.Page(PAGES / "importance.py", title="Importance", icon=":material/insights:"),
        ],
    }
)
sidebar_summary()
navigation.run()
