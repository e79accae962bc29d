"""`python -m refnsm ...`: see refnsm.cli."""

import sys

from .cli import main

sys.exit(main())
