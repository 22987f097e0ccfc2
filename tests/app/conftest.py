"""AppTest helpers: every page test starts the whole app (st.navigation) and switches to its page."""

import time
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


def rerun_until(at: AppTest, predicate, timeout: float = 150.0) -> AppTest:
    """Rerun the page until ``predicate(at)`` holds (timers do not fire under AppTest, so background work
    shows only on a rerun), failing on an exception or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if predicate(at):
            return at
        time.sleep(0.5)
    shown = [f"{kind}: {e.value}" for kind in ("error", "warning", "info", "success", "markdown", "caption")
             for e in getattr(at, kind)]
    raise AssertionError("timed out; the page shows: " + " | ".join(map(str, shown)))


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



#: Seconds a test waits at most for a preview running in the background (a guard against a hang).
PREVIEW_DEADLINE = 600


def _run_preview(at: AppTest) -> AppTest:
    if not any(b.key == "lab_run_preview" for b in at.button):
        return at
    at.button(key="lab_run_preview").click().run()
    deadline = time.monotonic() + PREVIEW_DEADLINE
    while time.monotonic() < deadline:
        assert not at.exception, at.exception
        if at.metric or at.error:
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError("the preview did not end; the page says: " + " | ".join(i.value for i in at.info))


@pytest.fixture
def run_preview():
    """``run_preview(at)`` presses "Run preview" where the Lab waits for it (a slow strategy), then reruns
    the page until the background preview ended (timers do not fire under AppTest) and the page shows its
    result or its sentence. A quick strategy's preview is on the page already: nothing to do."""
    return _run_preview
