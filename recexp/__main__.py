"""``python -m recexp``: the command-line interface."""

import os
import sys

from recexp.cli import main

code = main()
# Leave without the interpreter's teardown: pyarrow's thread pools can abort it ("terminate called without
# an active exception", SIGABRT; apache/arrow#34314), which turned a clean exit or a one-line refusal into a
# crash in about 1 of 400 runs under load. Everything the command writes is committed or flushed by now.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
