"""Out-of-core builds on the workspace's job runner: the Data page starts one, watches it and cancels it.

The build itself, its progress file and what is shown of its result are :mod:`recexp.diskbuild`; this
module hands its process to :func:`recexp.ui.state.job_runner` as a :class:`~recexp.jobs.Command`, so
a build waits for a free slot like a training run and is stopped like one.
"""

from __future__ import annotations

import functools
from pathlib import Path

from recexp.diskbuild import (BuildRequest, BuildState, build_folder, build_state, command_line, mark_cancelled,
                              prepare_build, process_ended)
from recexp.i18n import current_language
from recexp.jobs import Command, JobRunner


def _group(folder: Path) -> str:
    return f"diskbuild:{folder}"


def launch_build(request: BuildRequest, runner: JobRunner) -> Path:
    """Queue ``request``'s build on ``runner`` unless the same build is waiting, running or done; returns the
    build's folder (see :func:`recexp.diskbuild.build_state`). The process writes its log in the current
    language; its sentences are stored so every reader sees them in their own."""
    folder = build_folder(request.key())
    state = state_of(runner, folder)
    if state is None or not (state.active or state.status == "finished"):
        prepare_build(request)
        runner.submit_command(Command(_group(folder), command_line(folder, current_language()), folder / "build.log",
                                      on_exit=functools.partial(process_ended, folder)))
    return folder


def state_of(runner: JobRunner, folder: Path) -> BuildState | None:
    """The build in ``folder`` as :func:`recexp.diskbuild.build_state` reads it, except that one still waiting
    for a slot of a runner that no longer holds it (the app was restarted) counts as never launched."""
    state = build_state(folder)
    if state is not None and state.status == "queued" and runner.commands(_group(folder)) == (0, 0):
        return None
    return state


def cancel_build(runner: JobRunner, folder: Path) -> None:
    """Stop the build in ``folder`` (dropped if still waiting; SIGTERM, then SIGKILL after the runner's grace);
    its state says cancelled at once, and nothing of it is kept."""
    runner.cancel_group(_group(folder))
    mark_cancelled(folder)


__all__ = ["cancel_build", "launch_build", "state_of"]
