"""A lint over the dashboard's source: no English literal reaches a Streamlit display call unmarked.

Every label, heading, caption, message and help text in ``app.py``, ``pages/`` and ``recexp/ui/`` must go
through ``_()`` / ``ngettext()`` (see :mod:`recexp.i18n`), so the catalog test sees it and it shows in
the chosen language. A literal with no letters (``"·"``, ``"- "``) is fine. Across everything Babel
extracts, a ``_()`` inside an f-string is refused too: ``pybabel extract`` (Python 3.11) cannot see it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
UI_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "recexp" / "ui").glob("*.py"))]
EXTRACTED_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "recexp").rglob("*.py"))]

#: Streamlit calls whose first positional argument is text a person reads.
TEXT_FIRST = {"title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "toast",
              "button", "download_button", "form_submit_button", "link_button", "selectbox", "multiselect", "radio",
              "segmented_control", "pills", "slider", "select_slider", "number_input", "text_input", "text_area",
              "toggle", "checkbox", "file_uploader", "date_input", "time_input", "metric", "expander", "tabs",
              "spinner", "status", "popover", "chat_input", "color_picker", "feedback"}
#: Keyword arguments that are text a person reads, whatever the call.
TEXT_KEYWORDS = {"label", "help", "placeholder", "title", "text", "show_spinner"}
#: Literals that are names, not English (the product's own name).
ALLOWED = {"recexp"}
LETTERS = re.compile(r"[A-Za-z]{2,}")


def _bare_literals(node: ast.AST) -> list[ast.AST]:
    """String literals in ``node`` that are shown as they are (not inside a call such as ``_()``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node] if LETTERS.search(node.value) and node.value not in ALLOWED else []
    if isinstance(node, ast.JoinedStr):
        return [node] if any(isinstance(v, ast.Constant) and LETTERS.search(str(v.value)) for v in node.values) else []
    if isinstance(node, ast.BinOp):
        return _bare_literals(node.left) + _bare_literals(node.right)
    if isinstance(node, ast.IfExp):
        return _bare_literals(node.body) + _bare_literals(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [literal for value in node.values for literal in _bare_literals(value)]
    if isinstance(node, ast.List | ast.Tuple):
        return [literal for element in node.elts for literal in _bare_literals(element)]
    return []


def _call_name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id if isinstance(
        call.func, ast.Name) else None


def unmarked_ui_text(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: text`` for every literal passed unmarked to a Streamlit display call in ``source``."""
    found = []
    for call in ast.walk(ast.parse(source, filename)):
        if not isinstance(call, ast.Call):
            continue
        name = _call_name(call)
        arguments = [keyword.value for keyword in call.keywords if keyword.arg in TEXT_KEYWORDS]
        if (name in TEXT_FIRST or (name or "").endswith("Column")) and call.args:
            arguments.append(call.args[0])
        for argument in arguments:
            for literal in _bare_literals(argument):
                found.append(f"{filename}:{literal.lineno}: {ast.unparse(literal)[:80]}")
    return found


def marks_inside_fstrings(source: str, filename: str = "<source>") -> list[str]:
    """``file:line`` for every ``_("literal")`` / ``ngettext()`` / ``N_()`` written inside an f-string (``_(name)``
    with a variable is fine there: its text is marked where it is defined)."""
    found = []
    for joined in ast.walk(ast.parse(source, filename)):
        if isinstance(joined, ast.JoinedStr):
            for node in ast.walk(joined):
                if (isinstance(node, ast.Call) and _call_name(node) in {"_", "ngettext", "N_"} and node.args
                        and isinstance(node.args[0], ast.Constant)):
                    found.append(f"{filename}:{node.lineno}")
    return found


def lazy_translations(source: str, filename: str = "<source>") -> list[str]:
    """``file:line`` for every ``format_func`` that calls ``_()`` itself. Streamlit may call a format_func
    outside the session's script run (AppTest formats widget values in the test's thread), where the
    session's language is unknown: build the texts while the page draws (``{value: _(text), ...}.get``)."""
    found = []
    for call in ast.walk(ast.parse(source, filename)):
        if not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            if keyword.arg == "format_func" and isinstance(keyword.value, ast.Lambda) and any(
                    isinstance(node, ast.Call) and _call_name(node) in {"_", "ngettext"}
                    for node in ast.walk(keyword.value)):
                found.append(f"{filename}:{keyword.value.lineno}")
    return found


def test_no_ui_literal_reaches_streamlit_unmarked():
    found = [hit for path in UI_FILES for hit in unmarked_ui_text(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "wrap these in _() (recexp.i18n):\n" + "\n".join(found)


def test_no_mark_hides_inside_an_fstring():
    found = [hit for path in EXTRACTED_FILES for hit in marks_inside_fstrings(path.read_text(),
                                                                               str(path.relative_to(ROOT)))]
    assert not found, "pybabel cannot extract these; move them out of the f-string:\n" + "\n".join(found)


def test_no_format_func_translates_lazily():
    found = [hit for path in UI_FILES for hit in lazy_translations(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "build these labels while the page draws ({value: _(text)}.get):\n" + "\n".join(found)


def test_the_lint_catches_what_it_is_for():
    source = '''
st.title("Data")
st.sidebar.caption(f"Dataset: {name}")
left.metric("Rows read", count)
st.selectbox(_("Task"), tasks, help="The learning task")
st.tabs([_("Funnel"), "Long tail"])
st.progress(0.0, text="Starting...")
st.column_config.NumberColumn("test accuracy", format="%.4f")
st.info(_("Ok {n}").format(n=1) + " and more")
st.markdown(f"- {statement}")
st.caption(_("Fine") + " · " + name)
st.title("recexp")
x = f"{_('hidden')}"
y = f"{_(CONSTANT)}"
'''
    lines = [hit.split(":")[1] for hit in unmarked_ui_text(source)]
    assert lines == ["2", "3", "4", "5", "6", "7", "8", "9"]
    assert marks_inside_fstrings(source) == ["<source>:13"]
    lazy = '''
st.radio("x", options, format_func=lambda o: _(o))
st.radio("x", options, format_func={o: _(o) for o in options}.get)
'''
    assert lazy_translations(lazy) == ["<source>:2"]
