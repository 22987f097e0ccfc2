"""Data: open a bundled sample, an upload or a server-side file; check mapping and validation; pick task and split."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from recexp.data import REQUIRED_ROLES, ROLES
from recexp.data.limits import confine
from recexp.data.mapping import GUESS
from recexp.data.samples import SAMPLES, sample_source
from recexp.data.source import DataSource, save_upload
from recexp.data.inspect import log_head
from recexp.diskbuild import build_folder, memory_text, preview
from recexp.errors import LogMappingError, RecexpError
from recexp.i18n import N_, _, format_decimal, format_integer, format_percent, format_timestamp, localized
from recexp.memory import memory_limit
from recexp.outofcore import PARTS
from recexp.tasks import TASKS, SplitSpec, split_method_name, split_methods
from recexp.ui.builds import cancel_build, launch_build, state_of
from recexp.ui.params import param_widgets
from recexp.ui.state import (DatasetChoice, active_choice, build, build_request, current_user, disk_dataset,
                             estimate, job_runner, large_log, load_source, server_path, set_active_choice)

#: Seconds between two looks at a build running in the background.
POLL_SECONDS = 1.0
#: The phases of an out-of-core build, in words.
PHASES = {"": N_("starting"), "reading": N_("reading the log"), "features": N_("computing features"),
          "writing": N_("writing Parquet")}
#: The tasks a log too large for memory can be built for (out of core).
DISK_TASKS = ("behavior", "purchase")
PART_TITLES = {"train": N_("train"), "valid": N_("validation"), "test": N_("test")}


#: The column roles in words (their ids stay as they are in links, the CLI's --map and run specs).
ROLE_TITLES = {"user": N_("user"), "item": N_("item"), "behavior": N_("behavior"), "timestamp": N_("timestamp"),
               "category": N_("category")}


def mapping_panel(mapping_key: str, columns: list[str], mapping: dict[str, str], roles: dict[str, dict],
                  expanded: bool) -> None:
    """One selectbox per role over the source's columns, with the inferred choice's confidence; Apply
    stores the choice under ``mapping_key`` as this source's mapping override."""
    with st.expander(_("Column mapping (inferred; change a role and apply)"), expanded=expanded):
        options = ["(none)", *columns]
        chosen = {}
        for col, role in zip(st.columns(len(ROLES)), ROLES):
            current_column = mapping.get(role, "(none)")
            chosen[role] = col.selectbox(_(ROLE_TITLES.get(role, role)), options, index=options.index(current_column),
                                         key=f"data_map_{role}",
                                         format_func={o: _("(none)") if o == "(none)" else o for o in options}.get)
            if role in roles:
                confidence, evidence = roles[role]["confidence"], roles[role]["evidence"]
                sure = _("{share} sure: {evidence}").format(share=format_percent(confidence), evidence=evidence)
                col.caption(_(":warning: a guess, {sure}").format(sure=sure) if confidence < GUESS else sure)
            elif role in REQUIRED_ROLES:
                col.caption(_(":warning: no column found: choose one"))
        if st.button(_("Apply mapping"), key="data_apply_mapping"):
            # "(none)" leaves a required role to inference, and means "no column" for the optional category
            st.session_state[mapping_key] = {role: None if column == "(none)" else column
                                             for role, column in chosen.items()
                                             if column != "(none)" or role == "category"}
            st.rerun()


def read_as_table(label_column: str) -> None:
    """Switch the upload / server file to a feature table with ``label_column`` (a button callback)."""
    st.session_state["data_kind"] = "table"
    st.session_state["data_label"] = label_column


def sampling_widgets(current: DatasetChoice) -> dict[str, float]:
    """The build-time sampling inputs (users kept, majority class kept); returns what differs from none."""
    with st.expander(_("Sampling (large logs)"), expanded=bool(current.sampling)):
        k1, k2 = st.columns(2)
        users = k1.number_input(_("Users kept (%)"), min_value=1.0, max_value=100.0, step=1.0,
                                value=100.0 * current.sampling.get("users", 1.0), key="data_sample_users",
                                help=_("Whole histories of this share of users, chosen by a stable hash of the id."))
        rate = k2.number_input(_("Majority class kept (share)"), min_value=0.01, max_value=1.0, step=0.01,
                               value=current.sampling.get("negative_rate", 1.0), key="data_negative_rate",
                               help=_("Rows of the most frequent class kept; each kept one weighs 1 / share, so "
                                      "weighted test scores estimate the full population's."))
    chosen = {"users": users / 100, "negative_rate": float(rate)}
    return {name: value for name, value in chosen.items() if value < 1}


def share_sliders(left, right, current: DatasetChoice) -> tuple[float, float]:
    """The test share and the validation share (of the rest) of a split, starting from the active choice's."""
    return (left.slider(_("Test share"), 0.05, 0.5, float(current.split.test_size), 0.05, key="data_test_size"),
            right.slider(_("Validation share (of the rest)"), 0.05, 0.5, float(current.split.valid_size), 0.05,
                         key="data_valid_size"))


def large_log_section(source: DataSource, current: DatasetChoice) -> None:
    """A log too large to load: task, time split and sampling, then its dataset built on disk in the background."""
    st.subheader(_("Task and split"))
    tasks = list(DISK_TASKS)
    if st.session_state.get("data_task", tasks[0]) not in tasks:     # e.g. next_item, chosen on a smaller file
        del st.session_state["data_task"]
    task = st.selectbox(_("Task"), tasks, key="data_task", index=tasks.index(current.task) if current.task in tasks
                        else 0, format_func={n: f"{n}: {_(TASKS[n].description)}" for n in tasks}.get)
    task_params = param_widgets(TASKS[task], prefix="data")
    s1, s2 = st.columns(2)
    test_size, valid_size = share_sliders(s1, s2, current)
    st.caption(_("Split by time: a dataset built on disk is split by time only (its parts are time ranges)."))
    sampling = sampling_widgets(current)
    choice = DatasetChoice(source=source, task=task, task_params=task_params,
                           split=SplitSpec(method="temporal", test_size=test_size, valid_size=valid_size),
                           sampling=sampling)
    folder = build_folder(build_request(choice).key())
    runner = job_runner()
    state = state_of(runner, folder)
    if state is not None and state.active:
        live_build(folder, runner)
        return
    if state is None or state.status != "finished":
        if state is not None and state.status == "failed":
            st.error(_("The build failed: {error}").format(error=state.error), icon=":material/error:")
        elif state is not None:
            st.info(_("The build was cancelled; nothing of it was kept."), icon=":material/stop:")
        if st.button(_("Build on disk"), type="primary", key="data_build_disk", icon=":material/hard_drive:",
                     help=_("Builds the task's dataset with DuckDB in a background process, memory bounded by "
                            "RECEXP_MEMORY_LIMIT, as partitioned Parquet in the workspace (a later build with the "
                            "same settings reuses it). The page stays usable meanwhile.")):
            launch_build(build_request(choice), runner)
            st.rerun()
        return
    disk = disk_dataset(choice)
    st.success(_("Built on disk in {seconds} s: {rows} rows ({train} train / {valid} validation / {test} test), "
                 "peak memory of the build {memory}.").format(
        seconds=format_decimal(disk.seconds, 1), rows=format_integer(len(disk)),
        train=format_integer(disk.rows["train"]), valid=format_integer(disk.rows["valid"]),
        test=format_integer(disk.rows["test"]), memory=memory_text(state.peak_memory)), icon=":material/hard_drive:")
    st.markdown(_("**Rows per part and class** (from the dataset's metadata)"))
    st.dataframe(pd.DataFrame({_(PART_TITLES[p]): disk.counts[p] for p in PARTS}).rename_axis(_("class")))
    head = preview(disk).to_pandas()
    st.dataframe(head, hide_index=True, key="data_disk_preview")
    st.caption(_("The first {shown} rows of {file}, one of the dataset's Parquet files in {folder}.").format(
        shown=format_integer(len(head)), file=disk.files("train")[0].name if disk.files("train") else "-",
        folder=disk.folder))
    if current == choice:
        st.success(_("Active: {name}, task {task}, built on disk.").format(name=source.name, task=task))
    elif st.button(_("Use this dataset"), type="primary", key="data_use"):
        set_active_choice(choice)
        st.rerun()
    if current == choice:
        st.page_link("pages/imbalance.py", label=_("See how imbalanced it is"), icon=":material/balance:")
        st.page_link("pages/train.py", label=_("Train on it"), icon=":material/model_training:")


@st.fragment(run_every=POLL_SECONDS)
def live_build(folder, runner) -> None:
    """A build running in the background: phase, rows, share done, peak memory, time, and a Cancel."""
    state = state_of(runner, folder)
    if state is None or not state.active:
        st.rerun()                      # it ended: the whole page shows the result
    if state.status == "queued":
        st.info(_("The build waits for a free slot of the job runner (it runs at most {limit} job(s) at once, "
                  "training runs included).").format(limit=format_integer(runner.max_concurrent)),
                icon=":material/schedule:")
    else:
        st.progress(state.fraction, text=_("Building on disk: {phase}, {rows} rows, {percent} done").format(
            phase=_(PHASES.get(state.phase, state.phase)), rows=format_integer(state.rows),
            percent=format_percent(state.fraction)))
        c1, c2, c3 = st.columns(3)
        c1.metric(_("Rows so far"), format_integer(state.rows))
        c2.metric(_("Peak memory"), memory_text(state.peak_memory),
                  help=_("Of the build process; the memory setting is {limit}.").format(limit=memory_text(memory_limit())))
        c3.metric(_("Elapsed"), f"{format_decimal(state.elapsed, 0)} s")
        if state.phase == "features":
            st.caption(_("DuckDB computes the features in several steps; the bar shows its estimate for the step "
                         "running now."))
    if st.button(_("Cancel"), key="data_build_cancel", icon=":material/stop:",
                 help=_("Stops the build process; nothing of the build is kept.")):
        cancel_build(runner, folder)
        st.rerun()


st.title(_("Data"))
st.caption(_("Open a behaviour log or a feature table, check how it was read, and choose the learning task."))

current = active_choice()
reopened = server_path(current)             # a reload or a link reopens the active server file, not the sample
#: The segmented control's options (their English text is also their value in the session).
ORIGINS = {"Bundled sample": _("Bundled sample"), "Upload a file": _("Upload a file"),
           "File on the server": _("File on the server")}
origin = st.segmented_control(
    _("Where is the data?"), list(ORIGINS), format_func=ORIGINS.get,
    default="File on the server" if reopened else "Bundled sample", key="data_origin",
)

source: DataSource | None = None
if origin == "Bundled sample":
    names = list(SAMPLES)
    current_sample = next((n for n in names if str(SAMPLES[n].path) == current.source.path), names[0])
    name = st.selectbox(_("Sample"), names, index=names.index(current_sample), key="data_sample",
                        format_func=lambda n: f"{n}: {SAMPLES[n].description}")
    source = sample_source(name)
else:
    kind = st.radio(_("What does the file hold?"), ["log", "table"], horizontal=True, key="data_kind",
                    index=1 if reopened and current.source.kind == "table" else 0,
                    format_func={"log": _("Behaviour log (one event per row)"),
                                 "table": _("Feature table (features + label column)")}.get)
    if origin == "Upload a file":
        limit_mb = st.get_option("server.maxUploadSize")
        upload = st.file_uploader(
            _("CSV, TSV, Parquet or JSON lines, optionally .gz or .zip; UTF-8 or GBK; up to {limit} MB "
              "(larger logs: use 'File on the server').").format(limit=limit_mb), key="data_upload",
        )
        if upload is not None:
            try:
                source = DataSource(str(save_upload(upload.name, upload.getvalue(), owner=current_user())), kind=kind)
            except RecexpError as error:
                st.error(str(error))
    else:
        path = st.text_input(_("Path of a file or a folder of same-layout files on the server"), key="data_path",
                             value=reopened or "",
                             help=_("Under the server's data folders (RECEXP_DATA_ROOT, set by the operator); a "
                                    "relative path is read from the first of them."))
        if path.strip():
            try:
                source = DataSource(str(confine(path)), kind=kind)
            except RecexpError as error:
                st.error(str(error))
    if source is not None and kind == "table":
        st.session_state.setdefault("data_label", "label")
        label = st.text_input(_("Label column"), key="data_label",
                              help=_("The column holding the class label (c0, c1, ... when the file has no header)."))
        source = replace(source, label_column=label.strip() or None)

if source is None or source.path != current.source.path:
    st.info(_("Every page works on **{name}** (task {task}, {split} split) until you press 'Use this dataset' "
              "for another one.").format(name=current.source.name, task=current.task, split=current.split.method),
            icon=":material/dataset:")
if source is None:
    st.info(_("Choose a sample, upload a file or give a server path to continue."))
    st.stop()

mapping_key = f"data_mapping::{source.path}"
source = replace(source, mapping=st.session_state.get(mapping_key, source.mapping))
# A log whose in-memory build would pass the memory setting is never loaded: only its first lines are read.
task_now = st.session_state.get("data_task", current.task)
large = large_log(replace(current, source=source, task=task_now if task_now in DISK_TASKS else DISK_TASKS[0]))
failure: RecexpError | None = None
with st.status(_("Reading {name}...").format(name=source.name), expanded=False) as status:
    try:
        loaded = log_head(source) if large else load_source(source)
        status.update(label=(_("Read the first {rows} rows of {name}") if large else _("Read {name}: {rows} rows "
                                                                                       "kept")).format(
            name=source.name, rows=format_integer(loaded.report.rows_kept)), state="complete")
    except RecexpError as error:
        failure = error
        status.update(label=_("Could not read {name}").format(name=source.name), state="error")
if failure is not None:
    st.error(str(failure))
    if isinstance(failure, LogMappingError) and failure.label_column is not None and origin != "Bundled sample":
        st.button(_("Read it as a feature table"), type="primary", key="data_as_table", on_click=read_as_table,
                  args=(failure.label_column,))
    if isinstance(failure, LogMappingError):
        mapping_panel(mapping_key, failure.columns, failure.mapping, {}, expanded=failure.label_column is None)
    if mapping_key in st.session_state and st.button(_("Reset the column mapping"), key="data_reset_mapping"):
        for key in [mapping_key, *(f"data_map_{role}" for role in ROLES)]:
            st.session_state.pop(key, None)
        st.rerun()
    st.stop()

if loaded.kind == "log":
    mapping_panel(mapping_key, [*loaded.mapping.values(), *loaded.report.unused_columns], loaded.mapping,
                  loaded.report.roles, expanded=any(r["confidence"] < GUESS for r in loaded.report.roles.values()))

if large:
    st.warning(_("{name} is too large to load here: about {events} events, and the {task} task would need about "
                 "{need} in memory, over the memory setting of {limit} (RECEXP_MEMORY_LIMIT). The page does not load "
                 "it: choose the task, the split and any sampling, then build the dataset on disk.").format(
        name=source.name, events=format_integer(large.events), task=task_now if task_now in DISK_TASKS else DISK_TASKS[0],
        need=memory_text(large.in_memory_bytes), limit=memory_text(large.limit)), icon=":material/memory:")
    st.subheader(_("Preview"))
    st.dataframe(loaded.frame.head(200), hide_index=True)
    st.caption(_("The first {shown} rows of the file, read as the build will read it.").format(
        shown=format_integer(min(200, len(loaded.frame)))))
    large_log_section(source, current)
    st.stop()

st.subheader(_("Preview"))
st.dataframe(loaded.frame.head(200), hide_index=True)
st.caption(_("The first {shown} of {total} rows.").format(shown=format_integer(min(200, len(loaded.frame))),
                                                         total=format_integer(len(loaded.frame))))

st.subheader(_("Validation report"))
report = loaded.report
c1, c2, c3, c4 = st.columns(4)
c1.metric(_("Rows read"), format_integer(report.rows_read))
c2.metric(_("Rows kept"), format_integer(report.rows_kept))
c3.metric(_("Rows dropped"), format_integer(sum(report.dropped.values())))
c4.metric(_("Duplicate events"), format_integer(report.duplicates))
for warning in report.warnings:
    st.warning(warning)
left, right = st.columns(2)
if report.dropped:
    left.dataframe(pd.DataFrame([(localized(reason), count) for reason, count in report.dropped.items()],
                                columns=[_("reason"), _("rows")]), hide_index=True)   # pyarrow's are in English
if report.behavior_values:
    right.dataframe(pd.DataFrame(report.behavior_values.items(), columns=[_("behaviour value"), _("rows")]),
                    hide_index=True)
if report.time_range:
    st.caption(_("Time range: {start} to {end} (UTC)").format(start=format_timestamp(report.time_range[0]),
                                                              end=format_timestamp(report.time_range[1])))
if any(report.nulls.values()):
    st.caption(_("Empty cells per column: {cells}").format(
        cells=", ".join(f"{k}: {format_integer(v)}" for k, v in report.nulls.items() if v)))

st.subheader(_("Task and split"))
task_names = [name for name, task in TASKS.items() if loaded.kind in task.input_kinds]
task = st.selectbox(_("Task"), task_names, key="data_task",
                    format_func={n: f"{n}: {_(TASKS[n].description)}" for n in task_names}.get,
                    index=task_names.index(current.task) if current.task in task_names else 0)
task_params = param_widgets(TASKS[task], prefix="data")
s1, s2, s3, s4, s5 = st.columns(5)
methods = split_methods(task)
# A new task starts on its own default split (next_item: leave_last_out), and a split the task cannot use is
# never kept from the previous task.
if st.session_state.get("data_split_task") != task or st.session_state.get("data_split_method") not in methods:
    st.session_state["data_split_method"] = methods[0]
st.session_state["data_split_task"] = task
method = s1.selectbox(_("Split"), methods, key="data_split_method",
                      format_func={m: split_method_name(m) for m in methods}.get)
test_size, valid_size = share_sliders(s2, s3, current)
grouped = s4.toggle(_("Group by user"), value=False, key="data_grouped", disabled=loaded.kind != "log",
                    help=_("No user appears on both sides of the split."))
seed = s5.number_input(_("Split seed"), min_value=0, value=0, step=1, key="data_seed")

sampling = sampling_widgets(current) if loaded.kind == "log" else {}

choice = DatasetChoice(source=source, task=task, task_params=task_params,
                       split=SplitSpec(method=method, test_size=test_size, valid_size=valid_size,
                                       group_by_user=grouped, seed=int(seed)), sampling=sampling)
size = estimate(choice)
if size is not None:
    st.caption((_("This dataset: {rows} samples, about {gigabytes} GB in memory; building it needs about {peak} GB more while it runs.") if size.exact else _("This dataset: about {rows} samples, about {gigabytes} GB in memory; building it needs about {peak} GB more while it runs.")).format(
        rows=format_integer(size.rows), gigabytes=format_decimal(size.dataset_bytes / 2**30),
        peak=format_decimal(size.peak_bytes / 2**30)))
    if not size.fits_in_memory():
        st.warning(_("Building this dataset would hold about {need} GB, over the memory setting of {limit} GB "
                     "(RECEXP_MEMORY_LIMIT; figures before sampling). Sample users or down-sample the majority class "
                     "above, or build it out of core from the command line (python -m recexp apply FILE "
                     "--out-of-core yes).").format(
            need=format_decimal((size.dataset_bytes + size.peak_bytes) / 2**30),
            limit=format_decimal(memory_limit() / 2**30)), icon=":material/memory:")
if st.button(_("Use this dataset"), type="primary", key="data_use"):
    try:
        with st.status(_("Building features and splitting..."), expanded=False) as status:
            dataset, split = build(choice)
            status.update(label=_("{samples} samples, {classes} classes").format(
                samples=format_integer(len(dataset)), classes=dataset.schema.n_classes), state="complete")
        set_active_choice(choice)
        st.success(_("Active: {name}, task {task}: {train} train / {valid} validation / {test} test rows.").format(
            name=source.name, task=task, train=format_integer(len(split.train)),
            valid=format_integer(len(split.valid)), test=format_integer(len(split.test))))
        st.page_link("pages/imbalance.py", label=_("See how imbalanced it is"), icon=":material/balance:")
    except RecexpError as error:
        st.error(str(error))
