"""The dashboard's language switch: English or 简体中文, kept in the session and in the URL (``?lang=zh``;
English, the default, needs no parameter).

:func:`language_switch` (called by ``app.py`` on every run, before anything is drawn) reads the URL's
``lang`` once per session, draws the switch in the sidebar and writes the choice back into the URL,
which Streamlit clears on a page switch. Text is translated with :func:`recexp.i18n._`; see that
module for how to mark a string and update the catalogs.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from recexp.i18n import DEFAULT_LANGUAGE, LANGUAGES, _, set_language_resolver

#: Session-state key of the session's language (``en`` or ``zh``), kept apart from the widget's own key: a
#: widget's state is dropped on a run that does not draw it, the language must not be.
LANGUAGE_KEY = "ui_language"
#: Session-state key of the sidebar's switch.
SWITCH_KEY = "ui_language_switch"
#: The URL's query parameter that names the language.
LANGUAGE_PARAM = "lang"


def _session_language() -> str | None:
    if get_script_run_ctx(suppress_warning=True) is None:    # not a session's script thread
        return None
    return st.session_state.get(LANGUAGE_KEY)


set_language_resolver(_session_language)


def _switched() -> None:
    st.session_state[LANGUAGE_KEY] = st.session_state[SWITCH_KEY]


def language_switch() -> str:
    """Draw the language switch in the sidebar and return the chosen language (``en`` or ``zh``).

    The first run of a session takes the language from the URL's ``lang`` (an unknown value means
    English); afterwards the switch decides, and the URL follows it: ``lang=zh`` for Chinese, no
    parameter for English (the default), so English links read as before.
    """
    if st.session_state.get(LANGUAGE_KEY) not in LANGUAGES:
        wanted = st.query_params.get(LANGUAGE_PARAM, DEFAULT_LANGUAGE)
        st.session_state[LANGUAGE_KEY] = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE
    language = st.session_state[LANGUAGE_KEY]
    st.session_state[SWITCH_KEY] = language
    st.sidebar.segmented_control(_("Language"), list(LANGUAGES), format_func=LANGUAGES.get, key=SWITCH_KEY,
                                 required=True, on_change=_switched)
    if language == DEFAULT_LANGUAGE:                          # English links stay as they were: no parameter
        if LANGUAGE_PARAM in st.query_params:
            del st.query_params[LANGUAGE_PARAM]
    elif st.query_params.get(LANGUAGE_PARAM) != language:
        st.query_params[LANGUAGE_PARAM] = language
    return language
