"""AppTest helpers: every page test starts the whole app (st.navigation) and switches to its page."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def app() -> AppTest:
    """The dashboard, run once on its default page (Data, bundled Taobao sample)."""
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def open_page():
    """``open_page(at, "imbalance")`` switches to ``pages/imbalance.py`` and runs it, failing on any exception."""
    def switch(at: AppTest, page: str) -> AppTest:
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, at.exception
        return at
    return switch


#: Training rows the Strategy Lab tests preview on (the page keeps at least 50 rows of every class, so
#: neighbour samplers still run).
LAB_PREVIEW_ROWS = 300


@pytest.fixture
def lab(app, open_page) -> AppTest:
    """The Strategy Lab, previewing on a 300-row stratified sample of the training split."""
    at = open_page(app, "strategy_lab")
    at.number_input(key="lab_rows").set_value(LAB_PREVIEW_ROWS)
    at.run()
    assert not at.exception, at.exception
    return at
