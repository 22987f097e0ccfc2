"""A Ray cluster's workspace in an object store: what a run's node needs goes up, its artifacts come back.

With ``RECEXP_RAY_STORAGE`` set to a URI :func:`pyarrow.fs.FileSystem.from_uri` opens (``s3://bucket/prefix``,
``gs://bucket/prefix``, ``file:///mounted/folder``; S3 options such as ``?endpoint_override=host:port&scheme=http``
go in the query), the nodes of a Ray cluster need no shared folder. The job runner uploads a run's spec and its
data file (unless it is a bundled sample, which ships with recexp); the run's task downloads them into a
temporary workspace on its node, runs the worker there, and uploads the run's artifact folder when the worker
ended (also when it failed: its log comes back); the runner downloads that folder into its own workspace before
it records the run's end. Every node opens the URI with its own credentials (an instance role, the usual
``AWS_*`` / ``GOOGLE_*`` variables).

Layout under the URI::

    artifacts/<run id>/...           the run's artifact folder, as in the workspace
    data/<signature>/<file name>     an uploaded data source (signature: its path, size and modification time)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow
import pyarrow.fs as pafs

from recexp.errors import InvalidParameterError, JobError
from recexp.i18n import _

#: The environment variable of the object-store URI of a Ray cluster's workspace.
STORAGE_VARIABLE = "RECEXP_RAY_STORAGE"
_LOCAL = pafs.LocalFileSystem()
#: A file the runner writes and deletes at start to check that the URI can be written.
_PROBE = ".recexp-write-check"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class RemoteStorage:
    """An object-store folder (``uri``) opened as a pyarrow ``filesystem`` and the ``root`` path in it.

    Open one with :meth:`open`; it is passed to a node by its ``uri`` (opened again there).
    """

    uri: str
    filesystem: pafs.FileSystem
    root: str

    @classmethod
    def open(cls, uri: str, check: bool = True) -> RemoteStorage:
        """Open ``uri``; with ``check``, create its folder and write and delete a small file there.

        Raises
        ------
        InvalidParameterError
            The URI cannot be opened or written (an unknown scheme, a missing bucket, no credentials), in one
            sentence that names :data:`STORAGE_VARIABLE`.
        """
        try:
            filesystem, root = pafs.FileSystem.from_uri(uri)
            storage = cls(uri, filesystem, root)
            if check:
                filesystem.create_dir(storage.root, recursive=True)
                probe = storage._path(_PROBE)
                with filesystem.open_output_stream(probe) as out:
                    out.write(b"recexp")
                filesystem.delete_file(probe)
        except (pyarrow.ArrowException, OSError, ValueError) as error:
            raise InvalidParameterError(_(
                "{variable}={uri!r} cannot be used as the Ray cluster's workspace: {error}. Give a URI pyarrow opens "
                "and can write (s3://bucket/prefix, gs://bucket/prefix, file:///folder) with credentials for it, or "
                "unset {variable} to use a shared folder.").format(
                variable=STORAGE_VARIABLE, uri=uri, error=_first_line(error))) from error
        return storage

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts]) if self.root else "/".join(parts)

    def _copy(self, source: str, target: str, upload: bool) -> None:
        """Copy a file or a folder (recursively) between this machine and the store; a failure is a
        :class:`JobError` sentence."""
        origin, destination = (_LOCAL, self.filesystem) if upload else (self.filesystem, _LOCAL)
        try:                                       # copy_files makes neither the target folder nor a file's folder
            folder = origin.get_file_info(source).type == pafs.FileType.Directory
            destination.create_dir(target if folder else target.rsplit("/", 1)[0], recursive=True)
            pafs.copy_files(source, target, source_filesystem=origin, destination_filesystem=destination,
                            use_threads=True)
        except (pyarrow.ArrowException, OSError) as error:
            message = (_("Uploading {path} to {uri} failed: {error}") if upload else
                       _("Downloading {path} from {uri} failed: {error}"))
            raise JobError(message.format(path=source if upload else target, uri=self.uri,
                                          error=_first_line(error))) from error

    def _kind(self, path: str) -> pafs.FileType:
        """What is at ``path`` in the store; a failure to ask is a :class:`JobError` sentence."""
        try:
            return self.filesystem.get_file_info(path).type
        except (pyarrow.ArrowException, OSError) as error:
            raise JobError(_("Reading {path} in {uri} failed: {error}").format(path=path, uri=self.uri,
                                                                            error=_first_line(error))) from error

    def upload_artifacts(self, run_id: str, folder: Path) -> None:
        """Copy the run's artifact ``folder`` (everything in it) to ``artifacts/<run_id>/``."""
        self._copy(str(folder), self._path("artifacts", run_id), upload=True)

    def download_artifacts(self, run_id: str, folder: Path) -> bool:
        """Copy ``artifacts/<run_id>/`` into ``folder`` (created); False when the store has nothing of the run."""
        source = self._path("artifacts", run_id)
        if self._kind(source) != pafs.FileType.Directory:
            return False
        self._copy(source, str(folder), upload=False)
        return True

    def upload_data(self, path: Path) -> str:
        """Copy a data file or folder to ``data/<signature>/<name>`` unless it is there; returns that key.

        The signature hashes the path, total size and latest modification time: a changed file is uploaded
        again, an unchanged one is uploaded once however many runs read it.
        """
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        stats = [p.stat() for p in files]
        signature = hashlib.sha256(f"{path}|{sum(s.st_size for s in stats)}|"
                                   f"{max((s.st_mtime_ns for s in stats), default=0)}".encode()).hexdigest()[:16]
        key = f"data/{signature}/{path.name}"
        if self._kind(self._path(key)) == pafs.FileType.NotFound:
            self._copy(str(path), self._path(key), upload=True)
        return key

    def download_data(self, key: str, folder: Path) -> Path:
        """Copy the data ``key`` (from :meth:`upload_data`) into ``folder``; returns the local file or folder."""
        target = folder / key
        self._copy(self._path(key), str(target), upload=False)
        return target


__all__ = ["RemoteStorage", "STORAGE_VARIABLE"]
