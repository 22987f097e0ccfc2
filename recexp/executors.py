"""Where a job runner's runs execute: worker processes on this machine (the default) or tasks on a Ray cluster.

Both executors start the same entry point, ``python -m recexp.worker RUN_ID``, behind one small contract
(:class:`Executor`): :meth:`~Executor.start` a claimed run, :meth:`~Executor.poll` whether it ended,
:meth:`~Executor.stop` it (a cancel), and :meth:`~Executor.relay` what remote runs reported. The job
runner (:class:`recexp.jobs.JobRunner`) owns the queue, the claims and the run store; executors own
processes.

``RECEXP_EXECUTOR`` chooses one: ``local`` (default) or ``ray``. With Ray, each run is a Ray task asking for
``RECEXP_RAY_CPUS`` CPUs (default 1) and ``RECEXP_RAY_GPUS`` GPUs (default: 1 when the run's device is
``cuda``, or ``auto`` on a cluster that has GPUs; else 0) on the cluster at ``RECEXP_RAY_ADDRESS`` (``auto``
for the cluster this machine belongs to; unset: a Ray instance started here). On its node the task runs the
worker with ``--relay``: the worker sends every write meant for the run store as a line on its output; the task
forwards those lines to a queue the runner drains and applies, so the SQLite store is written by the runner's
process only.

Artifacts (predictions, model, the worker's log) reach the runner's workspace one of two ways:

- a shared folder (the default): the workspace is a path every node reaches (mounted at the same place), and
  the worker writes straight into it;
- an object store: with ``RECEXP_RAY_STORAGE`` set to a URI pyarrow's filesystems open (``s3://``, ``gs://``,
  ``file://``; see :mod:`recexp.remote_storage`), the runner uploads the run's spec and its data file, the task
  runs the worker in a temporary workspace on its node and uploads the run's artifact folder when the worker
  ended (failed too), and the runner downloads it before it records the run's end: the task holds the worker's
  ``finish`` back until the upload is done, so no run reads finished without its predictions. A run's artifacts
  arrive when it ends (its log is not visible while it trains). A URI that cannot be opened and written is
  refused in a sentence when the executor is set up.

A run whose task is lost (its node died, its worker crashed) is marked failed with Ray's reason; the other
runs go on. Ray does not retry a run: a retry would execute it twice into the same store.
"""

from __future__ import annotations

import abc
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from recexp.data.samples import DATA_DIR
from recexp.errors import InvalidParameterError, JobError
from recexp.i18n import _
from recexp.remote_storage import STORAGE_VARIABLE, RemoteStorage
from recexp.runs import FAILED, Run, RunStore, log_tail, with_output

#: Environment variables of the executor settings.
EXECUTOR_VARIABLE, RAY_ADDRESS_VARIABLE = "RECEXP_EXECUTOR", "RECEXP_RAY_ADDRESS"
RAY_CPUS_VARIABLE, RAY_GPUS_VARIABLE = "RECEXP_RAY_CPUS", "RECEXP_RAY_GPUS"
#: The prefix of a relayed run-store write on a worker's output (one JSON object follows on the line).
RELAY_PREFIX = "RECEXP-STORE "
#: The log of a run's worker among its artifacts.
WORKER_LOG = "worker.log"
#: The spec of a run executing on a Ray node, among its artifacts (the node's worker cannot read the store).
SPEC_FILE = "spec.json"


def worker_env(home: str | Path) -> dict[str, str]:
    """The environment of a worker process: this one's, the workspace ``home``, unbuffered output, and recexp
    importable (a spawned child does not inherit the dashboard's ``sys.path``)."""
    env = dict(os.environ, RECEXP_HOME=str(home), PYTHONUNBUFFERED="1")
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
    return env


def worker_command(run_id: str, threads: int, home: str | Path | None = None, relay: bool = False,
                   data: str | Path | None = None) -> list[str]:
    """The command line of the worker that executes ``run_id`` with ``threads`` torch threads (``data``: the
    local copy of the run's data source, read instead of the spec's path)."""
    return [sys.executable, "-m", "recexp.worker", run_id, "--threads", str(threads),
            *(["--home", str(home)] if home is not None else []), *(["--relay"] if relay else []),
            *(["--data", str(data)] if data is not None else [])]


def describe_exit(code: int) -> str:
    """How a worker process ended, in words (``"The worker process was killed by SIGKILL"``)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = _("signal {number}").format(number=-code)
        return _("The worker process was killed by {name}").format(name=name)
    return _("The worker process exited with code {code}").format(code=code)


class Executor(abc.ABC):
    """Starts claimed runs somewhere and reports when they end; the contract :class:`~recexp.jobs.JobRunner` uses."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def start(self, store: RunStore, run: Run, threads: int) -> Any:
        """Start executing ``run`` (already claimed, i.e. running); returns a handle for the other methods.

        Raises :class:`OSError` or :class:`~recexp.errors.RecexpError` when it cannot start (the runner fails
        the run with the sentence)."""

    @abc.abstractmethod
    def pid(self, handle: Any) -> int:
        """The process id the store records for the run: the one to watch on this machine."""

    @abc.abstractmethod
    def poll(self, store: RunStore, run_id: str, handle: Any) -> str | None:
        """``None`` while the run executes; once it ended, why (used when the run did not record its own end)."""

    @abc.abstractmethod
    def stop(self, handle: Any, force: bool = False) -> None:
        """Ask the run to stop (a cancel); ``force`` kills it."""

    def relay(self, store: RunStore) -> None:
        """Apply to ``store`` the writes that runs executing elsewhere sent (none for local workers)."""

    def capacity(self, default: int) -> int:
        """Runs to execute at once: ``default`` (the runner's setting) unless the executor knows better."""
        return default


@dataclass
class LocalProcess:
    """A process on this machine in a session of its own, its output appended to a log file."""

    process: subprocess.Popen
    log: Any

    @classmethod
    def spawn(cls, argv: Sequence[str], log_path: Path, home: str | Path) -> LocalProcess:
        """Start ``argv`` with :func:`worker_env` of ``home``; raises :class:`OSError` when it cannot."""
        log = open(log_path, "ab")  # noqa: SIM115 (closed in exit_code)
        try:
            process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=worker_env(home), start_new_session=True)
        except BaseException:
            log.close()
            raise
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        """``None`` while the process runs; then its exit code (negative: the signal that ended it)."""
        code = self.process.poll()
        if code is not None:
            self.log.close()
        return code

    def signal(self, force: bool = False) -> None:
        """SIGTERM the process's group (SIGKILL with ``force``); a group already gone is no error."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL if force else signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


class LocalExecutor(Executor):
    """Each run in a worker process of its own on this machine (its own session, its log among the artifacts)."""

    name = "local"

    def start(self, store: RunStore, run: Run, threads: int) -> LocalProcess:
        return LocalProcess.spawn(worker_command(run.id, threads), store.artifact_dir(run.id, create=True) / WORKER_LOG,
                                  store.home)

    def pid(self, handle: LocalProcess) -> int:
        return handle.pid

    def poll(self, store: RunStore, run_id: str, handle: LocalProcess) -> str | None:
        code = handle.exit_code()
        if code is None:
            return None
        return with_output(_("{reason}.").format(reason=describe_exit(code)),
                           log_tail(store.artifact_dir(run_id) / WORKER_LOG))

    def stop(self, handle: LocalProcess, force: bool = False) -> None:
        handle.signal(force)


# --- the relay: a remote worker's store writes, applied by the runner ----------------------------------

#: The run-store methods a relayed worker may call, i.e. everything :func:`recexp.jobs.execute` writes.
RELAYED = ("update", "log_epochs", "set_final_metrics", "finish")


@dataclass
class RelayStore(RunStore):
    """The run store as a worker on another node sees it: artifacts in the shared workspace ``home``, and
    every store write printed as one line (:data:`RELAY_PREFIX` + JSON) for the runner to apply.

    Reading runs, experiments or metrics needs the store itself and is refused in a sentence (e.g. an
    ``importance_weighting`` strategy that replays another run cannot execute on a Ray node).
    """

    home: Path
    out: Any = field(default_factory=lambda: sys.stdout)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _send(self, method: str, run_id: str, *args: Any, **kwargs: Any) -> None:
        line = relayed_line(method, run_id, *args, **kwargs)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def update(self, run_id: str, **values: Any) -> None:
        self._send("update", run_id, **values)

    def log_epochs(self, run_id: str, rows: Iterable[tuple[int, dict[str, float]]]) -> None:
        self._send("log_epochs", run_id, [list(row) for row in rows])

    def set_final_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        self._send("set_final_metrics", run_id, metrics)

    def finish(self, run_id: str, status: str, error: str | None = None) -> bool:
        self._discard_partial_files(run_id)
        self._send("finish", run_id, status, error)
        return True

    def _refuse(self, *args: Any, **kwargs: Any):
        raise JobError(_("This step reads the run store, which a run executing on a Ray node cannot do (only the "
                         "job runner's process uses it). Run it with the local executor (unset RECEXP_EXECUTOR)."))

    create_experiment = set_shared = get_experiment = list_experiments = _refuse
    create_run = get_run = list_runs = claim = epoch_metrics = _refuse


def relayed_line(method: str, run_id: str, *args: Any, **kwargs: Any) -> str:
    """The line that relays the run-store call ``method(run_id, *args, **kwargs)`` (:data:`RELAY_PREFIX` + JSON)."""
    return RELAY_PREFIX + json.dumps({"method": method, "run_id": run_id, "args": args, "kwargs": kwargs})


def _relayed_call(line: str) -> dict[str, Any]:
    return json.loads(line[len(RELAY_PREFIX):])


def apply_relayed(store: RunStore, line: str, before_finish: Callable[[str], None] | None = None) -> None:
    """Apply one relayed write (a line a :class:`RelayStore` printed) to the real ``store``; ``before_finish(run_id)``
    is called before a ``finish`` is applied (the Ray executor fetches the run's artifacts then)."""
    message = _relayed_call(line)
    method = message["method"]
    if method not in RELAYED:
        raise JobError(_("A worker relayed an unknown run-store call {method!r}.").format(method=method))
    if method == "finish" and before_finish is not None:
        before_finish(message["run_id"])
    args = message["args"]
    if method == "log_epochs":
        args = [[(int(epoch), metrics) for epoch, metrics in args[0]]]
    getattr(store, method)(message["run_id"], *args, **message["kwargs"])


# --- Ray ---------------------------------------------------------------------------------------------

def _run_worker(run_id: str, home: Path, threads: int, send: Callable[[str], None], data: Path | None = None) -> int:
    """The worker of ``run_id`` in a child process with workspace ``home``: its store writes to ``send``, the rest of
    its output to the run's log there. Returns the worker's exit code."""
    log_path = home / "artifacts" / run_id / WORKER_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(worker_command(run_id, threads, home, relay=True, data=data),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=worker_env(home), text=True)
        try:
            for line in process.stdout:
                if line.startswith(RELAY_PREFIX):
                    send(line.rstrip("\n"))
                else:
                    log.write(line)
                    log.flush()
            return process.wait()
        finally:                                  # a cancel interrupts the task: the worker goes with it
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()


def _on_node(run_id: str, home: str, threads: int, outbox: Any, storage: str | None = None,
             data: str | None = None) -> int:
    """The body of a run's Ray task: the worker in a child process, its store writes to ``outbox``, the rest of its
    output to the run's log. Returns the worker's exit code.

    Without ``storage`` the worker uses the shared workspace ``home``. With ``storage`` (an object-store URI, see
    :mod:`recexp.remote_storage`) it runs in a temporary workspace on this node: the run's spec (and the data
    ``data`` names, if any) are downloaded into it, and its artifact folder is uploaded when the worker ended;
    the worker's ``finish`` reaches ``outbox`` only after that upload (a failed upload fails the run instead).
    """
    if storage is None:
        return _run_worker(run_id, Path(home), threads, outbox.put)
    remote = RemoteStorage.open(storage, check=False)
    held: list[str] = []

    def send(line: str) -> None:
        if _relayed_call(line)["method"] == "finish":
            held.append(line)
        else:
            outbox.put(line)

    with tempfile.TemporaryDirectory(prefix="recexp-node-") as node_home:
        folder = Path(node_home) / "artifacts" / run_id
        try:
            remote.download_artifacts(run_id, folder)
            local = remote.download_data(data, Path(node_home)) if data is not None else None
            return _run_worker(run_id, Path(node_home), threads, send, data=local)
        except JobError as error:             # the spec or the data did not come: the run fails with why
            held = [relayed_line("finish", run_id, FAILED, str(error))]
            return 1
        finally:
            try:
                if folder.exists():
                    remote.upload_artifacts(run_id, folder)
            except JobError as error:
                held = [relayed_line("finish", run_id, FAILED, _(
                    "The run's artifacts could not be uploaded to {uri}: {error}").format(uri=storage, error=error))]
            for line in held:
                outbox.put(line)


@dataclass
class _Task:
    ref: Any
    node: str = ""


class RayExecutor(Executor):
    """Each run as a Ray task on a cluster, asking for ``cpus`` CPUs and ``gpus`` GPUs (see the module docs).

    Parameters
    ----------
    address : str, optional
        The cluster (``ray.init(address=...)``); ``None`` starts a local Ray instance. Ignored when Ray is
        already initialised in this process.
    cpus : int
        CPUs each run asks for (also its torch threads).
    gpus : float, optional
        GPUs each run asks for; ``None``: 1 for a run on ``cuda``, or on ``auto`` when the cluster has GPUs.
    storage : RemoteStorage, optional
        The object store that carries runs' specs, data and artifacts between this machine and the nodes;
        ``None``: the workspace is a folder every node reaches.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus: int = 1, gpus: float | None = None,
                 storage: RemoteStorage | None = None):
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.storage = storage
        self._outbox = None
        self._remote = None
        self._fetched: set[str] = set()          # runs whose artifacts came back from the object store

    def _connect(self):
        import ray                      # optional dependency: only a Ray executor needs it
        from ray.util.queue import Queue

        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise JobError(_("Could not connect to the Ray cluster at {address}: {error}. Check "
                                 "RECEXP_RAY_ADDRESS, or unset RECEXP_EXECUTOR to run on this machine."
                                 ).format(address=self.address or "a new local instance", error=error)) from error
        if self._outbox is None:
            self._outbox = Queue()
            self._remote = ray.remote(max_retries=0)(_on_node)
        return ray

    def _gpus(self, run: Run, ray) -> float:
        if self.gpus is not None:
            return self.gpus
        device = str(run.spec.get("train", {}).get("device", "auto"))
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        return 1.0 if device.startswith("cuda") or (device == "auto" and has_gpus) else 0.0

    def capacity(self, default: int) -> int:
        """As many runs as the cluster's CPUs hold at ``cpus`` each."""
        ray = self._connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus))

    def start(self, store: RunStore, run: Run, threads: int) -> _Task:
        ray = self._connect()
        folder = store.artifact_dir(run.id, create=True)
        (folder / SPEC_FILE).write_text(json.dumps(run.spec))
        data = None
        if self.storage is not None:
            data = self._upload_data(run.spec.get("source", {}))
            self.storage.upload_artifacts(run.id, folder)
        ref = self._remote.options(num_cpus=self.cpus, num_gpus=self._gpus(run, ray), runtime_env={
            "env_vars": {"PYTHONPATH": worker_env(store.home)["PYTHONPATH"]}}).remote(
            run.id, str(store.home), self.cpus, self._outbox, self.storage and self.storage.uri, data)
        return _Task(ref)

    def _upload_data(self, source: dict[str, Any]) -> str | None:
        """Upload the data file (or folder) a spec's ``source`` names; returns its key, or ``None`` for a bundled
        sample (it ships with recexp) and for a path this machine does not have (the nodes may)."""
        path = Path(source["path"]) if source.get("path") else None
        if path is None or not path.exists() or path.resolve().is_relative_to(DATA_DIR):
            return None
        return self.storage.upload_data(path.resolve())

    def _fetch(self, store: RunStore, run_id: str) -> str | None:
        """Download a run's artifacts from the object store, once; a sentence when that failed."""
        if self.storage is None or run_id in self._fetched:
            return None
        self._fetched.add(run_id)
        try:
            self.storage.download_artifacts(run_id, store.artifact_dir(run_id))
        except JobError as error:
            return str(error)
        return None

    def pid(self, handle: _Task) -> int:
        return os.getpid()                 # the runner: the run lives as long as the process that applies its writes

    def relay(self, store: RunStore) -> None:
        if self._outbox is None:
            return

        def before_finish(run_id: str) -> None:      # its predictions are in the workspace before it reads finished
            problem = self._fetch(store, run_id)
            if problem is not None:
                store.finish(run_id, FAILED, error=problem)

        while not self._outbox.empty():
            for line in self._outbox.get_nowait_batch(self._outbox.qsize()):
                apply_relayed(store, line, before_finish=before_finish)

    def poll(self, store: RunStore, run_id: str, handle: _Task) -> str | None:
        ray = self._connect()
        ready, _waiting = ray.wait([handle.ref], timeout=0)
        if not ready:
            return None
        self.relay(store)                                  # what the worker wrote before its task ended
        self._fetch(store, run_id)                         # the log of a worker that did not record its end
        try:
            code = ray.get(handle.ref)
        except Exception as error:                         # noqa: BLE001 (the task was lost: say how)
            return _("The run's Ray task was lost ({kind}): {error}").format(
                kind=type(error).__name__, error=str(error).strip().splitlines()[0] if str(error).strip() else "")
        tail = log_tail(store.artifact_dir(run_id) / WORKER_LOG)
        return with_output(_("{reason} on a Ray node.").format(reason=describe_exit(code)), tail)

    def stop(self, handle: _Task, force: bool = False) -> None:
        ray = self._connect()
        try:
            ray.cancel(handle.ref, force=force)
        except (ValueError, TypeError):          # already finished
            pass


def executor_from_env() -> Executor:
    """The executor ``$RECEXP_EXECUTOR`` names (``local`` when unset), set up from its variables.

    Raises
    ------
    InvalidParameterError
        An unknown executor, a bad CPU or GPU count, ``ray`` where Ray is not installed, or a
        ``RECEXP_RAY_STORAGE`` URI that cannot be opened and written.
    """
    kind = os.environ.get(EXECUTOR_VARIABLE, "").strip().lower() or "local"
    if kind == "local":
        return LocalExecutor()
    if kind != "ray":
        raise InvalidParameterError(_("{variable} must be 'local' or 'ray', but is {value!r}. Fix or unset it."
                                      ).format(variable=EXECUTOR_VARIABLE, value=kind))
    if importlib.util.find_spec("ray") is None:
        raise InvalidParameterError(_("{variable}=ray needs Ray: pip install ray==2.60.0 (on every node), or unset "
                                      "{variable}.").format(variable=EXECUTOR_VARIABLE))
    cpus = os.environ.get(RAY_CPUS_VARIABLE, "1").strip()
    gpus = os.environ.get(RAY_GPUS_VARIABLE, "").strip()
    if not (cpus.isdigit() and int(cpus) > 0):
        raise InvalidParameterError(_("{variable} must be a positive integer, but is {value!r}. Fix or unset it."
                                      ).format(variable=RAY_CPUS_VARIABLE, value=cpus))
    try:
        gpu_count = float(gpus) if gpus else None
    except ValueError:
        gpu_count = -1.0
    if gpu_count is not None and not gpu_count >= 0:
        raise InvalidParameterError(_("{variable} must be a number of at least 0, but is {value!r}. Fix or unset it."
                                      ).format(variable=RAY_GPUS_VARIABLE, value=gpus))
    storage = os.environ.get(STORAGE_VARIABLE, "").strip()
    return RayExecutor(address=os.environ.get(RAY_ADDRESS_VARIABLE, "").strip() or None, cpus=int(cpus),
                       gpus=gpu_count, storage=RemoteStorage.open(storage) if storage else None)


__all__ = ["Executor", "LocalExecutor", "LocalProcess", "RayExecutor", "RelayStore", "apply_relayed", "describe_exit",
           "executor_from_env", "relayed_line", "worker_command", "worker_env", "EXECUTOR_VARIABLE",
           "RAY_ADDRESS_VARIABLE", "STORAGE_VARIABLE"]
