"""Every error a user can cause, as one family.

Pages and the CLI catch :class:`RecexpError` and show its message as a sentence; anything else
is a bug. Messages say what was wrong, what it must be, what was given, and what to do.
"""

import errno
import sqlite3


class RecexpError(Exception):
    """Base of all errors recexp raises on purpose."""


class InvalidParameterError(RecexpError, ValueError):
    """A parameter value is outside what its spec allows, or infeasible for the data."""


class InvalidDataError(RecexpError, ValueError):
    """Input data cannot be read, mapped or turned into a dataset."""


class JobError(RecexpError, RuntimeError):
    """A background job failed, was cancelled or was killed."""


def os_error_sentence(error: OSError, action: str = "use", path: object = None) -> str:
    """A file-system failure as a sentence: what could not be done, why, and what to do.

    Parameters
    ----------
    error : OSError
        The failure (its ``errno`` and ``filename`` say what happened where).
    action : str
        What was being done, as a verb: ``"write"``, ``"read"``, ``"create"``...
    path : path, optional
        The file it was done to, where the error does not name it (pyarrow's errors do not).

    Examples
    --------
    >>> import errno
    >>> os_error_sentence(OSError(errno.ENOSPC, "No space left on device", "/ws/a.parquet"), "write")
    'The disk is full: could not write /ws/a.parquet. Free some space (or point RECEXP_HOME at a roomier folder) and try again.'
    """
    where = f" {error.filename or path}" if error.filename or path else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk is full: could not {action}{where}. Free some space (or point RECEXP_HOME at a "
                "roomier folder) and try again.")
    if error.errno == errno.EROFS:
        return (f"The file system is read-only: could not {action}{where}. Point RECEXP_HOME (or the output "
                "path) at a writable folder.")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"Permission denied: could not {action}{where}. Use a folder this user may {action}."
    if error.errno == errno.ENOENT:
        return f"Could not {action}{where}: there is no such file or folder."
    return f"Could not {action}{where}: {error.strerror or error}."


def sentence(error: Exception) -> str:
    """What the CLI and the pages show for a failure nothing below handled: one line, never a traceback.

    A :class:`RecexpError`'s own message; a sentence for a file-system failure (:func:`os_error_sentence`)
    or a SQLite one (the run store turns its own into ``JobError``; this covers any other database).
    """
    if isinstance(error, OSError):
        return os_error_sentence(error)
    if isinstance(error, sqlite3.Error):
        return (f"A SQLite database could not be used ({error}). Check the workspace ($RECEXP_HOME) and "
                "try again.")
    return str(error)
