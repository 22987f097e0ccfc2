"""The memory setting: how many bytes recexp may hold for one piece of work before it works from disk.

``$RECEXP_MEMORY_LIMIT`` (``"4GB"``, ``"512MB"``, a byte count) sets it; by default it is
:data:`DEFAULT_MEMORY_LIMIT` (4 GiB) or half of this machine's physical memory, whichever is less. The trainer keeps a training split in memory when its tensors fit and trains
from memory-mapped shards on disk when they do not (:mod:`recexp.models.shards`); strategies that need
every row in memory at once refuse a training split past it (:meth:`recexp.strategies.Strategy.check_feasible`).
The out-of-core dataset build reads the same setting.

>>> import os; os.environ["RECEXP_MEMORY_LIMIT"] = "2GB"
>>> memory_limit()
2147483648
>>> del os.environ["RECEXP_MEMORY_LIMIT"]
"""

from __future__ import annotations

import os

from recexp.errors import InvalidParameterError
from recexp.i18n import _

#: The environment variable of the setting.
MEMORY_LIMIT_ENV = "RECEXP_MEMORY_LIMIT"
#: The setting when ``$RECEXP_MEMORY_LIMIT`` is unset (at most half of the machine's memory): 4 GiB.
DEFAULT_MEMORY_LIMIT = 4 << 30
_UNITS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "b": 1, "": 1}


def memory_limit() -> int:
    """Bytes one piece of work (a dataset build, a training split's tensors, a strategy's rows) may hold.

    Raises
    ------
    InvalidParameterError
        ``$RECEXP_MEMORY_LIMIT`` is set but is not a size of at least 1 MB.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return min(DEFAULT_MEMORY_LIMIT, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2))
    number = text.lower().rstrip("ib").rstrip() if text.lower().endswith("ib") else text.lower()
    unit = next(u for u in _UNITS if number.endswith(u))
    try:
        value = float(number[:len(number) - len(unit)].strip()) * _UNITS[unit]
    except ValueError:
        value = float("nan")
    if not value >= 1 << 20 or value == float("inf"):
        raise InvalidParameterError(_(
            "{variable} must be a memory size of at least 1 MB such as 4GB or 512MB, but is {text!r}. Fix or unset "
            "it.").format(variable=MEMORY_LIMIT_ENV, text=text))
    return int(value)


__all__ = ["DEFAULT_MEMORY_LIMIT", "MEMORY_LIMIT_ENV", "memory_limit"]
