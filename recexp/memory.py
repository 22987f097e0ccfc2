"""The memory setting: how many bytes recexp may hold for one piece of work before it works from disk.

``$RECEXP_MEMORY_GB`` (a positive number of gigabytes) sets it; by default it is half of this machine's
physical memory. The trainer keeps a training split in memory when its tensors fit the budget and trains
from memory-mapped shards on disk when they do not (:mod:`recexp.models.shards`); strategies that need
every row in memory at once refuse a training split past it (:meth:`recexp.strategies.Strategy.check_feasible`).

>>> import os; os.environ["RECEXP_MEMORY_GB"] = "2"
>>> memory_budget()
2000000000
>>> del os.environ["RECEXP_MEMORY_GB"]
"""

from __future__ import annotations

import math
import os

from recexp.errors import InvalidParameterError
from recexp.i18n import _

#: The environment variable of the setting.
MEMORY_VARIABLE = "RECEXP_MEMORY_GB"


def physical_memory() -> int:
    """Bytes of physical memory of this machine (0 where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


def memory_budget() -> int:
    """Bytes one piece of work (a training split's tensors, a strategy's rows) may hold in memory.

    Raises
    ------
    InvalidParameterError
        ``$RECEXP_MEMORY_GB`` is set but is not a positive number.
    """
    configured = os.environ.get(MEMORY_VARIABLE, "").strip()
    if not configured:
        return physical_memory() // 2 or 4 * 10**9
    try:
        gigabytes = float(configured)
    except ValueError:
        gigabytes = math.nan
    if not (0 < gigabytes < math.inf):
        raise InvalidParameterError(_("{variable} must be a positive number of gigabytes, but is {value!r}. Fix or "
                                      "unset it.").format(variable=MEMORY_VARIABLE, value=configured))
    return int(gigabytes * 10**9)


__all__ = ["MEMORY_VARIABLE", "memory_budget", "physical_memory"]
