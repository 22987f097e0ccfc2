"""Every error a user can cause, as one family.

Pages and the CLI catch :class:`RecexpError` and show its message as a sentence; anything else
is a bug. Messages say what was wrong, what it must be, what was given, and what to do.
"""


class RecexpError(Exception):
    """Base of all errors recexp raises on purpose."""


class InvalidParameterError(RecexpError, ValueError):
    """A parameter value is outside what its spec allows, or infeasible for the data."""


class InvalidDataError(RecexpError, ValueError):
    """Input data cannot be read, mapped or turned into a dataset."""


class JobError(RecexpError, RuntimeError):
    """A background job failed, was cancelled or was killed."""


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
