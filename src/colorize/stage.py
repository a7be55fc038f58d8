"""What every stage script shares: its command line and one-line error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from colorize.errors import UserError


def stage_args(description: str, argv: list[str] | None = None, **paths: str) -> argparse.Namespace:
    """Parse `--params` plus one `--<name>` option per path (underscores become dashes)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file (default: %(default)s)")
    for name, default in paths.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=Path(default), type=Path,
                            help=f"(default: {default})")
    return parser.parse_args(argv)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage; a UserError or an interruption ends it with one line on stderr."""
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted; outputs were left as they were before this run", file=sys.stderr)
        sys.exit(130)
