"""recexp dashboard entry point: page config, sign-in, navigation, and one sentence for any failure a page left."""

import sqlite3
from pathlib import Path

import streamlit as st

from recexp.errors import RecexpError
from recexp.i18n import _
from recexp.ui.i18n import language_switch
from recexp.ui.state import require_login, show_error, sidebar_summary

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="recexp", page_icon=":material/science:", layout="wide")
language_switch()
require_login()

navigation = st.navigation(
    {
        _("Data"): [
            st.Page(PAGES / "data.py", title=_("Data"), icon=":material/upload_file:", default=True),
            st.Page(PAGES / "imbalance.py", title=_("Imbalance"), icon=":material/balance:"),
        ],
        _("Experiment"): [
            st.Page(PAGES / "strategy_lab.py", title=_("Strategy Lab"), icon=":material/tune:"),
            st.Page(PAGES / "tune.py", title=_("Tune"), icon=":material/manage_search:"),
            st.Page(PAGES / "train.py", title=_("Train"), icon=":material/model_training:"),
            st.Page(PAGES / "compare.py", title=_("Compare"), icon=":material/compare_arrows:"),
            st.Page(PAGES / "importance.py", title=_("Importance"), icon=":material/insights:"),
        ],
    }
)
sidebar_summary()
try:
    navigation.run()
except (RecexpError, OSError, sqlite3.Error) as error:  # e.g. the run store damaged or the disk full mid-page
    show_error(error)
