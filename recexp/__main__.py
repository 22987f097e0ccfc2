"""``python -m recexp``: the command-line interface."""

import sys

from recexp.cli import main

sys.exit(main())
