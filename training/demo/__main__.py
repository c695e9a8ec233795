"""``python -m horizongym.training.demo``: the demo's command line (:func:`~horizongym.training.demo.run.main`)."""

import sys

from horizongym.training.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
