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
