"""`python -m colorize` runs the `colorize` command."""

import sys

from colorize.app.cli import main

sys.exit(main())
