"""The active dataset of a dashboard session, its signed-in user, and the caches that make page switches instant.

Every page works on one :class:`DatasetChoice` (source + task + split). Until the analyst picks
something on the Data page, it is the bundled Taobao sample with the behaviour task, so every page
works on first open. Loading is cached on the source file's identity, building on the log's
fingerprint plus the task and split parameters.

Login is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's OpenID Connect
login, ``st.login``): then every session signs in first, and its run store and job runner act for
the signed-in user (:meth:`~recexp.runs.SQLiteRunStore.for_owner`). Without it everything behaves
as a single-user dashboard on localhost.

The choice also lives in the page's URL (:func:`choice_params`): ``dataset`` (a bundled sample's name
or the id of a source recorded in the workspace, see :mod:`recexp.data.links`), ``task`` and
``split``, plus ``task.<name>``, ``split.<name>`` and ``sample.<name>`` (build-time sampling) for
settings that differ from their defaults. A reload, a bookmark or a link sent to a colleague therefore
opens the same dataset, task, split and sampling.

A log file whose in-memory build would pass the memory setting (:func:`large_log`) is never loaded by
the dashboard: its dataset is built on disk in a background process (:mod:`recexp.diskbuild`), found
again from the choice alone (:func:`build_request`, :func:`disk_dataset`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import streamlit as st

from recexp.data.links import remember_source, resolve_source, source_id
from recexp.data.samples import DEFAULT_SAMPLE, SAMPLES, sample_source
from recexp.data.source import DataSource, workspace
from recexp.dataset import Dataset, Split
from recexp.diskbuild import BuildRequest, build_folder, build_state
from recexp.errors import InvalidParameterError, RecexpError, sentence
from recexp.i18n import _, current_language, format_integer
from recexp.jobs import JobRunner, default_runner
from recexp.runs import SQLiteRunStore
from recexp.outofcore import DiskDataset, PathChoice, Sampling, choose_path, down_sample, open_on_disk, sample_log
from recexp.tasks import (TASKS, DatasetEstimate, SplitSpec, build_dataset, estimate_dataset, get_task,
                          split_dataset, split_method_name, split_methods)

_KEY = "active_dataset_choice"
_LINK_ERROR_KEY = "active_dataset_link_error"
_GRID_KEY = "strategy_grid"
_SIDEBAR_KEY = "active_dataset_sidebar_slot"
#: Query parameters the active choice owns (besides the ``task.*`` and ``split.*`` settings).
LINK_PARAMS = ("dataset", "task", "split")
#: Prefixes of the query parameters of the choice's settings.
LINK_PREFIXES = ("task.", "split.", "sample.")


@dataclass(frozen=True)
class DatasetChoice:
    """What the analyst is working on: where the data comes from, which task, which split."""

    source: DataSource
    task: str = "behavior"
    task_params: dict[str, Any] = field(default_factory=dict)
    split: SplitSpec = field(default_factory=SplitSpec)
    sampling: dict[str, float] = field(default_factory=dict)   # build-time sampling (recexp.outofcore.Sampling)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.to_dict(), "task": self.task,
                "task_params": dict(self.task_params), "split": asdict(self.split), "sampling": dict(self.sampling)}


def default_choice() -> DatasetChoice:
    """The bundled sample with the behaviour task and the default split."""
    return DatasetChoice(source=sample_source(DEFAULT_SAMPLE))


def _param_text(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def choice_params(choice: DatasetChoice) -> dict[str, str]:
    """The query parameters that name ``choice`` (see the module docstring).

    Examples
    --------
    >>> choice_params(default_choice())
    {'dataset': 'taobao', 'task': 'behavior', 'split': 'temporal'}
    """
    params = {"dataset": source_id(choice.source), "task": choice.task, "split": choice.split.method}
    task_defaults = get_task(choice.task).defaults()
    for name, value in sorted(choice.task_params.items()):
        if value != task_defaults.get(name):
            params[f"task.{name}"] = _param_text(value)
    split_defaults = SplitSpec()
    for name in (f.name for f in fields(SplitSpec) if f.name != "method"):
        if getattr(choice.split, name) != getattr(split_defaults, name):
            params[f"split.{name}"] = _param_text(getattr(choice.split, name))
    sampling_defaults = Sampling()
    for name, value in sorted(choice.sampling.items()):
        if value != getattr(sampling_defaults, name):
            params[f"sample.{name}"] = _param_text(value)
    return params


def choice_from_params(params: Mapping[str, str]) -> DatasetChoice:
    """The choice that query parameters from :func:`choice_params` name, checked like the Data page does.

    Raises
    ------
    InvalidParameterError
        The dataset id is unknown here, or the task or split does not fit it (the message says which).
    """
    source = resolve_source(params["dataset"])
    tasks = [name for name, cls in TASKS.items() if source.kind in cls.input_kinds]
    task = params.get("task", tasks[0])
    if task not in tasks:
        raise InvalidParameterError(
            _("The link asks for the task {task!r}, which {source} cannot make; its tasks: {tasks}.").format(
                task=task, source=source.name, tasks=", ".join(tasks)))
    task_params = get_task(task).from_strings(_prefixed(params, "task."))
    task_params.validate_params()
    method = params.get("split", split_methods(task)[0])
    if method not in split_methods(task):
        raise InvalidParameterError(
            _("The link asks for a {method!r} split, which the {task} task cannot use; splits: {splits}.").format(
                method=method, task=task, splits=", ".join(split_methods(task))))
    split = SplitSpec.from_strings({"method": method, **_prefixed(params, "split.")})
    return DatasetChoice(source=source, task=task, task_params=task_params.get_params(), split=split,
                         sampling=_sampling(_prefixed(params, "sample.")))


def _sampling(texts: Mapping[str, str]) -> dict[str, float]:
    """The build-time sampling a link's ``sample.*`` parameters give, validated (only what differs from none)."""
    known = set(Sampling().to_dict())
    unknown = sorted(set(texts) - known)
    try:
        values = {name: float(text) for name, text in texts.items() if name in known}
    except ValueError:
        values = None
    if unknown or values is None:
        raise InvalidParameterError(_("The link's sampling {given} is not understood; it may set {known} to a share "
                                      "in (0, 1].").format(given=dict(texts), known=", ".join(sorted(known))))
    Sampling(**values).validate()
    return {name: value for name, value in values.items() if value < 1}


def _prefixed(params: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {key.removeprefix(prefix): value for key, value in params.items() if key.startswith(prefix)}


def active_choice() -> DatasetChoice:
    """The session's current choice: the one last set, else the one the page's link names (a reload,
    a bookmark, a link from a colleague), else the default."""
    if _KEY not in st.session_state:
        st.session_state[_KEY] = _choice_from_link()
    return st.session_state[_KEY]


def _choice_from_link() -> DatasetChoice:
    params = st.query_params.to_dict()
    if "dataset" not in params:
        return default_choice()
    try:
        return choice_from_params(params)
    except RecexpError as error:
        st.session_state[_LINK_ERROR_KEY] = _("The link's dataset could not be opened: {error} Showing the "
                                              "bundled sample instead.").format(error=error)
        return default_choice()


def set_active_choice(choice: DatasetChoice) -> None:
    """Make ``choice`` the dataset every page works on, and name it in the page's URL and the sidebar.

    The sidebar line was drawn before the page ran (:func:`sidebar_summary`); it is redrawn here, so it
    names the new dataset in this very run rather than after the next click.
    """
    remember_source(choice.source)
    st.session_state[_KEY] = choice
    show_in_link(choice)
    slot = st.session_state.get(_SIDEBAR_KEY)
    if slot is not None:
        _sidebar_line(slot, choice)


def show_in_link(choice: DatasetChoice) -> None:
    """Write ``choice``'s query parameters into the page's URL, leaving other parameters alone.

    Streamlit clears query parameters when the analyst moves to another page, so ``app.py`` calls this
    (through :func:`sidebar_summary`) on every run.
    """
    wanted = choice_params(choice)
    current = st.query_params.to_dict()
    owned = [key for key in current if key in LINK_PARAMS or key.startswith(LINK_PREFIXES)]
    if {key: current[key] for key in owned} == wanted:
        return
    for key in owned:
        del st.query_params[key]
    st.query_params.update(wanted)


def strategy_grid() -> dict[str, dict[str, Any]]:
    """The strategies the Train page's grid holds (id -> parameters), kept for the whole session.

    The Strategy Lab adds to it ("Add to grid"); the Train page starts its strategy picker and parameter
    widgets from it and writes back what the analyst changed, so the grid survives page switches
    (Streamlit drops the state of widgets a page does not draw). It starts with the baseline alone.
    """
    return st.session_state.setdefault(_GRID_KEY, {"none": {}})


def add_to_grid(name: str, params: dict[str, Any]) -> None:
    """Put strategy ``name`` with ``params`` into the Train page's grid (replacing its earlier parameters)."""
    strategy_grid()[name] = dict(params)


def set_strategy_grid(grid: dict[str, dict[str, Any]]) -> None:
    """Make ``grid`` (id -> parameters, in the order to show) the Train page's grid."""
    st.session_state[_GRID_KEY] = {name: dict(params) for name, params in grid.items()}


def _file_identity(path: str) -> tuple[str, int, float]:
    target = Path(path)
    stat = target.stat() if target.exists() else None
    return (str(target.resolve()), stat.st_size if stat else -1, stat.st_mtime if stat else -1.0)


@st.cache_data(show_spinner=False, max_entries=8)
def _load(source: DataSource, identity: tuple[str, int, float], language: str):
    return source.load()


def load_source(source: DataSource):
    """Read a source (cached on the file's path, size and modification time, and the language its validation
    warnings and role evidence are written in)."""
    return _load(source, _file_identity(source.path), current_language())


@st.cache_data(show_spinner=False, max_entries=16)
def _build(_log, fingerprint: str, task: str, task_params: dict, split: SplitSpec,
           sampling: dict) -> tuple[Dataset, Split]:
    chosen = Sampling(**sampling)
    chosen.validate()
    source = sample_log(_log, chosen.users) if _log.kind == "log" else _log
    dataset = build_dataset(source, task, split=split, **task_params)
    return down_sample(dataset, split_dataset(dataset, split), chosen.negative_rate)


def build(choice: DatasetChoice) -> tuple[Dataset, Split]:
    """Dataset and split for ``choice`` (cached on the log fingerprint, task, split and sampling parameters)."""
    log = load_source(choice.source)
    return _build(log, log.fingerprint, choice.task, dict(choice.task_params), choice.split, dict(choice.sampling))


@st.cache_data(show_spinner=False, max_entries=16)
def _estimate(_log, fingerprint: str, task: str, task_params: dict) -> DatasetEstimate | None:
    try:
        return estimate_dataset(_log, task, **task_params)
    except RecexpError:
        return None         # the full build will say what is wrong, in its own words


def estimate(choice: DatasetChoice) -> DatasetEstimate | None:
    """What building ``choice``'s dataset takes (None when a sample of it cannot be built); cached."""
    log = load_source(choice.source)
    return _estimate(log, log.fingerprint, choice.task, dict(choice.task_params))


def server_path(choice: DatasetChoice) -> str | None:
    """The path the Data page reopens ``choice``'s source by: a file on the server; None for a bundled sample
    or an upload (which the page cannot offer again)."""
    if source_id(choice.source) in SAMPLES or workspace() / "uploads" in Path(choice.source.path).parents:
        return None
    return choice.source.path


def large_log(choice: DatasetChoice) -> PathChoice | None:
    """Why ``choice``'s dataset is built on disk (:func:`recexp.outofcore.choose_path`: a log file whose
    in-memory build would pass the memory setting), or None when it is built in memory as usual."""
    path = Path(choice.source.path)
    if choice.source.kind != "log" or not path.is_file():
        return None
    path_choice = choose_path(path, choice.task)
    return path_choice if path_choice.on_disk else None


def build_request(choice: DatasetChoice) -> BuildRequest:
    """The out-of-core build of ``choice`` (a run with the same settings reuses what it wrote)."""
    return BuildRequest(path=choice.source.path, task=choice.task, task_params=dict(choice.task_params),
                        split=asdict(choice.split), sampling=Sampling(**choice.sampling).to_dict(),
                        mapping=dict(choice.source.mapping), header=choice.source.header)


def disk_dataset(choice: DatasetChoice) -> DiskDataset | None:
    """``choice``'s dataset on disk once its build finished (its metadata; no row is read), else None."""
    state = build_state(build_folder(build_request(choice).key()))
    return open_on_disk(state.dataset) if state is not None and state.status == "finished" else None


def require_disk_dataset(choice: DatasetChoice) -> DiskDataset:
    """``choice``'s dataset on disk; while it is not built, a sentence with a link to the Data page and the
    page stops."""
    disk = disk_dataset(choice)
    if disk is None:
        st.info(_("{name} is too large to load here and its {task} dataset is not built yet: build it on disk on the "
                  "Data page.").format(name=choice.source.name, task=choice.task), icon=":material/hard_drive:")
        st.page_link("pages/data.py", label=_("Build it on the Data page"), icon=":material/upload_file:")
        st.stop()
    return disk


def require_dataset() -> tuple[Dataset, Split]:
    """The active dataset and split; shows progress while building, or a sentence and stops the page.

    A dataset built on disk (:func:`large_log`) is never loaded whole: the page says so and stops.
    """
    choice = active_choice()
    if large_log(choice) is not None:
        disk = require_disk_dataset(choice)
        st.info(_("The active dataset ({rows} rows) is built on disk because it is larger than memory; this page "
                  "needs every row in memory. Keep a share of users or of the majority class on the Data page so "
                  "that it fits, or work on it from the Imbalance and Train pages.").format(
            rows=format_integer(len(disk))), icon=":material/hard_drive:")
        st.page_link("pages/data.py", label=_("Sampling on the Data page"), icon=":material/upload_file:")
        st.stop()
    try:
        with st.spinner(_("Preparing {name} for the {task} task...").format(name=choice.source.name,
                                                                           task=choice.task)):
            return build(choice)
    except RecexpError as error:
        st.error(_("The active dataset could not be prepared: {error}").format(error=error))
        st.page_link("pages/data.py", label=_("Choose another dataset on the Data page"),
                     icon=":material/upload_file:")
        st.stop()


def sidebar_summary() -> None:
    """One line in the sidebar naming the active dataset and task, which the page's URL names too.

    A link whose dataset could not be opened is explained once, in a warning above the page.
    """
    choice = active_choice()
    show_in_link(choice)
    link_error = st.session_state.pop(_LINK_ERROR_KEY, None)
    if link_error:
        st.warning(link_error, icon=":material/link_off:")
    st.session_state[_SIDEBAR_KEY] = st.sidebar.empty()       # :func:`set_active_choice` redraws it
    _sidebar_line(st.session_state[_SIDEBAR_KEY], choice)


def _sidebar_line(slot, choice: DatasetChoice) -> None:
    slot.caption(_("Dataset: **{name}** · task: **{task}** · split: {split}").format(
        name=choice.source.name, task=choice.task, split=split_method_name(choice.split.method)))


def login_enabled() -> bool:
    """Whether the dashboard asks people to sign in: ``.streamlit/secrets.toml`` has an ``[auth]`` section."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def current_user() -> str | None:
    """The signed-in user (e-mail, else the identity provider's subject); None without login."""
    if not login_enabled() or not st.user.is_logged_in:
        return None
    return str(st.user.get("email") or st.user.get("sub"))


def require_login() -> None:
    """Under login: a sign-in button until the session has signed in (then who, and sign out, in the sidebar)."""
    if not login_enabled():
        return
    if not st.user.is_logged_in:
        st.title("recexp")
        st.info(_("Sign in to see your experiments and the ones your team shared."))
        st.button(_("Sign in"), key="auth_login", type="primary", on_click=st.login, icon=":material/login:")
        st.stop()
    st.sidebar.caption(_("Signed in as **{user}**").format(user=current_user()))
    st.sidebar.button(_("Sign out"), key="auth_logout", on_click=st.logout, icon=":material/logout:")


def sharing_toggle(store: SQLiteRunStore, experiment_id: str, prefix: str) -> None:
    """Under login, who may see an experiment: a toggle on the user's own, a caption on anyone else's.

    Sharing shows the experiment and its runs to every signed-in user. Without login, nothing is drawn.
    """
    user = current_user()
    if user is None:
        return
    experiment = store.get_experiment(experiment_id)
    if experiment.owner != user:
        st.caption(_("Launched by {owner}, who shared it with the team.").format(owner=experiment.owner)
                   if experiment.owner else _("Launched with nobody signed in: every user sees it."))
        return
    shared = st.toggle(_("Shared with the team"), value=experiment.shared, key=f"{prefix}_share_{experiment_id}",
                       help=_("Every signed-in user then sees this experiment and its runs; otherwise only you do."))
    if shared != experiment.shared:
        store.set_shared(experiment_id, shared)


def show_error(error: Exception) -> None:
    """A failure a page did not handle (see :func:`recexp.errors.sentence`), as one sentence, no traceback."""
    st.error(sentence(error), icon=":material/error:")


@st.cache_resource(show_spinner=False)
def _job_runner(home: str) -> JobRunner:
    return default_runner(SQLiteRunStore(home)).start()


def job_runner() -> JobRunner:
    """The workspace's background job runner, one per workspace and shared by every session.

    Started on first use, so runs left queued when the app stopped resume whichever page opens first.
    Under login it acts for the signed-in user (:meth:`~recexp.jobs.JobRunner.for_owner`). A store that
    cannot be opened (damaged, empty, unreadable) is reported in a sentence and the page stops.
    """
    user = current_user()
    if user is None and login_enabled():            # a page run outside app.py's sign-in gate
        st.info(_("Sign in on the home page to see experiments."))
        st.stop()
    try:
        runner = _job_runner(str(workspace()))
    except RecexpError as error:
        show_error(error)
        st.stop()
    return runner.for_owner(user)


def run_store() -> SQLiteRunStore:
    """The workspace's run store as this session may see it, its runs whose process is gone failed first."""
    store = job_runner().store
    store.fail_orphans()
    return store


def _use_app_navigation() -> None:
    """Route every session through ``app.py``'s ``st.navigation``.

    Streamlit (1.67) treats an app beside a ``pages/`` folder as an old-style multipage app until
    ``st.navigation`` has been called once in the process, so a deep link (``/imbalance``) as the first
    request of a fresh server would run that page alone, without the app's navigation and layout. Every
    page imports this module, so the first such run switches the old mode off and reruns through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_use_app_navigation()
