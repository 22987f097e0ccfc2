"""How recexp's command-line processes end (``python -m recexp``, the run worker, the tuning worker)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """Flush the output and end the process with ``code``, without the interpreter's teardown.

    pyarrow's thread pools can abort that teardown ("terminate called without an active exception",
    SIGABRT; apache/arrow#34314), which turned a clean exit or a one-line refusal into a crash in about
    1 of 400 runs under load. Everything a command writes is committed or flushed by the time it returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
