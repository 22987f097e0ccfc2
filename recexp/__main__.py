"""``python -m recexp``: the command-line interface."""

from recexp.cli import main
from recexp.process import exit_process

exit_process(main())
