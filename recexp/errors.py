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


class MissingRolesError(InvalidDataError):
    """A behaviour log has no column for some required roles.

    Carries what a page needs to offer the next step: the source's ``columns``, the roles found so far
    (``mapping``, role -> column), the ``missing`` roles, and ``label_column``: the column that looks
    like a label when the source looks like a feature table rather than a log (else None).
    """

    def __init__(self, message: str, *, columns: list[str], mapping: dict[str, str], missing: list[str],
                 label_column: str | None = None):
        super().__init__(message)
        self.columns = columns
        self.mapping = mapping
        self.missing = missing
        self.label_column = label_column
