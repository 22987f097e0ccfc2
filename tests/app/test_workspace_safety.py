"""The pages on a workspace in trouble (damaged or empty store, orphaned runs, full or read-only disk, junk
checkpoint) and under login: a sentence on the page, never a traceback, and the earlier runs still there."""

import shutil
import subprocess

import pytest
from streamlit.testing.v1 import AppTest

from recexp.runs import FAILED, FINISHED, RUNNING, SQLiteRunStore
from tests.app.conftest import APP

STORE_PAGES = ("train", "compare", "importance")
EXPERIMENT = "safety: 3 strategies x 3 seeds"
AUTH = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret",
                 "client_id": "recexp", "client_secret": "not-a-real-secret",
                 "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration"}}


@pytest.fixture(scope="session")
def grid_home(tmp_path_factory, yeast_grid):
    """A workspace with one finished experiment of 3 strategies x 3 seeds (copy it before changing it)."""
    home = tmp_path_factory.mktemp("safety_workspace") / "ws"
    yeast_grid.build(home, EXPERIMENT)
    return home


def _workspace(grid_home, target, monkeypatch):
    shutil.copytree(grid_home, target)
    monkeypatch.setenv("RECEXP_HOME", str(target))
    return target


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("content, what", [(b"", "is empty (0 bytes)"),
                                           (b"not a database " * 300, "is damaged (file is not a database)")])
def test_every_store_page_reports_an_empty_or_damaged_store_in_a_sentence(app, open_page, grid_home, tmp_path,
                                                                          monkeypatch, content, what):
    home = _workspace(grid_home, tmp_path / "ws", monkeypatch)
    (home / "runs.sqlite").write_bytes(content)
    for page in STORE_PAGES:
        at = open_page(app, page)                                   # fails on any exception
        (error,) = _errors(at)
        assert f"The run store at {home / 'runs.sqlite'} {what}; 9 artifact folders exist" in error
        assert "move it away" in error and "Traceback" not in error
    assert (home / "runs.sqlite").read_bytes() == content


def test_opening_the_compare_page_fails_a_run_whose_process_is_gone(app, open_page, grid_home, tmp_path,
                                                                     monkeypatch):
    home = _workspace(grid_home, tmp_path / "ws", monkeypatch)
    store = SQLiteRunStore(home)
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = store.create_run(store.list_experiments()[0].id, {"strategy": "none"}, status=RUNNING, pid=gone.pid)
    open_page(app, "compare")
    after = store.get_run(orphan.id)
    assert after.status == FAILED and f"(pid {gone.pid}) is gone" in after.error
    assert sum(r.status == FINISHED for r in store.list_runs()) == 9


def test_a_junk_checkpoint_is_a_sentence_and_the_other_runs_are_still_compared(app, open_page, grid_home, tmp_path,
                                                                               monkeypatch):
    home = _workspace(grid_home, tmp_path / "ws", monkeypatch)
    store = SQLiteRunStore(home)
    broken = store.list_runs()[0]
    for derived in ("test_queries.parquet", "valid_predictions.parquet"):     # so the page reads model.pt again
        (store.artifact_dir(broken.id) / derived).unlink(missing_ok=True)
    (store.artifact_dir(broken.id) / "model.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    at = open_page(app, "compare")
    assert not _errors(at)
    assert any("9 runs" in m.value for m in at.markdown)
    notes = [line for w in at.warning for line in w.value.splitlines() if broken.id in line]
    assert len(notes) == 1 and "model.pt is damaged or not a recexp checkpoint" in notes[0]


@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_disk_keeps_the_runs_readable_on_every_store_page(app, open_page, grid_home, small_disk,
                                                                             monkeypatch, trouble):
    disk = small_disk("30m")
    home = _workspace(grid_home, disk.path / "ws", monkeypatch)
    if trouble == "full":
        disk.fill()
    else:
        disk.remount("ro")
    at = open_page(app, "compare")
    assert not _errors(at)
    assert any(EXPERIMENT in m.value and "9 runs" in m.value for m in at.markdown)
    at = open_page(at, "train")
    assert at.selectbox(key="train_experiment").options == [f"{EXPERIMENT} · " + at.selectbox(
        key="train_experiment").options[0].split(" · ", 1)[1]]
    assert len(at.dataframe[-1].value) == 9
    at.selectbox(key="train_model").set_value("logreg")
    at.number_input(key="train_seeds").set_value(1)
    at.button(key="train_launch").click().run()
    assert not at.exception, at.exception
    (error,) = _errors(at)
    assert ("is full" in error) if trouble == "full" else (f"The workspace {home} is read-only" in error)
    assert len(SQLiteRunStore(home).list_runs()) == 9


# --- login ----------------------------------------------------------------------------------------------------

def _signed_in(user: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.secrets = AUTH
    at.user = user
    return at


def test_without_sign_in_only_the_sign_in_button_shows(grid_home, tmp_path, monkeypatch):
    _workspace(grid_home, tmp_path / "ws", monkeypatch)
    at = _signed_in({"is_logged_in": False})
    at.run()
    assert not at.exception, at.exception
    assert at.button(key="auth_login").label == "Sign in"
    assert not at.get("selectbox") and not at.dataframe
    for page in STORE_PAGES:                        # a page run on its own (a deep link) shows no experiment either
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, at.exception
        assert any("Sign in" in i.value for i in at.info) and not at.dataframe


def test_signed_in_users_see_their_own_shared_and_unowned_experiments(grid_home, tmp_path, monkeypatch):
    home = _workspace(grid_home, tmp_path / "ws", monkeypatch)
    store = SQLiteRunStore(home)
    ana, bob = store.for_owner("ana@example.com"), store.for_owner("bob@example.com")
    mine = ana.create_experiment("ana's grid")
    bobs = bob.create_experiment("bob's grid")

    def experiments_on_train_page(user: str) -> list[str]:
        at = _signed_in({"is_logged_in": True, "email": user})
        at.run()
        assert not at.exception, at.exception
        assert any(f"Signed in as **{user}**" in c.value for c in at.sidebar.caption)
        assert at.button(key="auth_logout").label == "Sign out"
        at.switch_page("pages/train.py")
        at.run()
        assert not at.exception, at.exception
        return at, [o.split(" · ")[0] for o in at.selectbox(key="train_experiment").options]

    at, names = experiments_on_train_page("ana@example.com")
    assert names == ["ana's grid", EXPERIMENT]                           # newest first; bob's is not listed
    assert at.toggle(key=f"train_share_{mine.id}").value is False
    at.toggle(key=f"train_share_{mine.id}").set_value(True).run()
    assert not at.exception, at.exception
    assert store.get_experiment(mine.id).shared

    _, names = experiments_on_train_page("bob@example.com")
    assert names == ["bob's grid", "ana's grid", EXPERIMENT]
    assert not store.get_experiment(bobs.id).shared
