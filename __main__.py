"""``python -m horizongym``: the command-line interface."""

import sys

from horizongym.cli import main

sys.exit(main())
