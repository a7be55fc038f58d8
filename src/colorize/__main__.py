"""`python -m colorize` runs the `colorize` command."""

import sys

from colorize.cli import main

sys.exit(main())
