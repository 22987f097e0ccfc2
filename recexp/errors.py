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


class CancelledError(RecexpError):
    """Work was stopped because the analyst asked for it (a preview's Cancel button)."""
