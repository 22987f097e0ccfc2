"""Every error a user can cause, as one family.

Pages and the CLI catch :class:`RecexpError` and show its message as a sentence; anything else
is a bug. Messages say what was wrong, what it must be, what was given, and what to do.
"""

import errno
import sqlite3

from recexp.i18n import N_, _, localized


class RecexpError(Exception):
    """Base of all errors recexp raises on purpose.

    Its message is a sentence marked with :func:`recexp.i18n._`; ``str(error)`` writes it in the language
    current where it is shown (see "Sentences made in one place and read in another" in :mod:`recexp.i18n`).
    """

    def __str__(self) -> str:
        return str(localized(self.args[0])) if len(self.args) == 1 else super().__str__()


class InvalidParameterError(RecexpError, ValueError):
    """A parameter value is outside what its spec allows, or infeasible for the data."""


class InvalidDataError(RecexpError, ValueError):
    """Input data cannot be read, mapped or turned into a dataset."""


class JobError(RecexpError, RuntimeError):
    """A background job failed, was cancelled or was killed."""


class CancelledError(RecexpError):
    """Work was stopped because the analyst asked for it (a preview's Cancel button)."""


class LogMappingError(InvalidDataError):
    """The columns of a source could not be made into a behaviour log with the roles found or given.

    Carries what a page needs to offer the next step: the source's ``columns``, the roles found so far
    (``mapping``, role -> column), the required roles ``missing`` a column (empty when the roles were
    all found but their values did not convert, e.g. a single behaviour), and ``label_column``: the
    column that looks like a label when the source looks like a feature table rather than a log.
    """

    def __init__(self, message: str, *, columns: list[str], mapping: dict[str, str], missing: list[str],
                 label_column: str | None = None):
        super().__init__(message)
        self.columns = columns
        self.mapping = mapping
        self.missing = missing
        self.label_column = label_column


#: The verbs :func:`os_error_sentence` is called with, marked for translation.
ACTIONS = {"use": N_("use"), "read": N_("read"), "write": N_("write"), "create": N_("create"),
           "delete": N_("delete"), "open": N_("open"), "save": N_("save"), "start": N_("start")}


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
    where = error.filename or path
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        text = (_("The disk is full: could not {action} {path}. Free some space (or point RECEXP_HOME at a "
                  "roomier folder) and try again.") if where else
                _("The disk is full: could not {action}. Free some space (or point RECEXP_HOME at a roomier "
                  "folder) and try again."))
    elif error.errno == errno.EROFS:
        text = (_("The file system is read-only: could not {action} {path}. Point RECEXP_HOME (or the output "
                  "path) at a writable folder.") if where else
                _("The file system is read-only: could not {action}. Point RECEXP_HOME (or the output path) at "
                  "a writable folder."))
    elif error.errno in (errno.EACCES, errno.EPERM):
        text = (_("Permission denied: could not {action} {path}. Use a folder this user may {action}.") if where
                else _("Permission denied: could not {action}. Use a folder this user may {action}."))
    elif error.errno == errno.ENOENT:
        text = (_("Could not {action} {path}: there is no such file or folder.") if where
                else _("Could not {action}: there is no such file or folder."))
    else:
        text = (_("Could not {action} {path}: {reason}.") if where else _("Could not {action}: {reason}."))
    return text.format(action=_(ACTIONS.get(action, action)), path=where, reason=error.strerror or error)


def sentence(error: Exception) -> str:
    """What the CLI and the pages show for a failure nothing below handled: one line, never a traceback.

    A :class:`RecexpError`'s own message; a sentence for a file-system failure (:func:`os_error_sentence`)
    or a SQLite one (the run store turns its own into ``JobError``; this covers any other database).
    """
    if isinstance(error, OSError):
        return os_error_sentence(error)
    if isinstance(error, sqlite3.Error):
        return _("A SQLite database could not be used ({error}). Check the workspace ($RECEXP_HOME) and "
                 "try again.").format(error=error)
    if isinstance(error, RecexpError) and len(error.args) == 1:
        return localized(error.args[0])            # a Text keeps its recipe (the run store stores it)
    return str(error)
