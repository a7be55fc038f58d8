"""What every stage script shares: its command line and one-line error reporting.

A stage script imports only this module at load time and everything else inside `main`, so that a
Ctrl-C at any moment (even while Keras is being imported) ends in the same one line.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from colorize.core.errors import UserError

INTERRUPTED = "interrupted; rerun `dvc repro` to restore or recompute its outputs"


def stage_args(description: str, argv: list[str] | None = None, **paths: str) -> argparse.Namespace:
    """Parse `--params` plus one `--<name>` option per path (underscores become dashes)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file (default: %(default)s)")
    for name, default in paths.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=Path(default), type=Path,
                            help=f"(default: {default})")
    return parser.parse_args(argv)


# Signals this process received: a library may turn the KeyboardInterrupt into its own error (TensorFlow's
# tensor conversion reports "Failed to convert elements ..." when Ctrl-C lands inside it).
_received: list[int] = []


def _interrupt(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _redeliver_swallowed_interrupt(unraisable) -> None:
    """A Ctrl-C that lands in a finaliser or a gc callback (JAX registers one) cannot propagate: Python
    prints "Exception ignored in ..." and goes on. Deliver it again a moment later, from a timer signal,
    so that it lands in the stage's own code (or, rarely, comes back here and is deferred once more)."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt) and _received:
        signal.signal(signal.SIGALRM, _interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
    else:
        sys.__unraisablehook__(unraisable)


def _stop_taking_interrupts() -> None:
    """Ignore Ctrl-C from here on, and cancel a swallowed one's pending re-delivery."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _start(name: str) -> None:
    """Take the stage's lock and remove dead runs' temporaries from the project's scratch place."""
    from colorize.core.scratch import lock_stage, sweep

    lock_stage(name)
    sweep(".")


def run_stage(main: Callable[[], None], name: str | None = None) -> None:
    """Run a stage; a UserError, Ctrl-C or SIGTERM ends it with one line on stderr."""
    name = name or Path(sys.argv[0]).stem
    try:
        sys.unraisablehook = _redeliver_swallowed_interrupt
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        # A stage script's _bootstrap held them while it loaded: one that came meanwhile lands here.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        # After the handlers: importing it (multiprocessing, socket) takes a while on a loaded machine.
        from colorize.core.parallel import one_blas_thread

        one_blas_thread()  # before numpy loads
        _start(name)
        main()
        _stop_taking_interrupts()  # done: a late Ctrl-C must not interrupt the clean-up
    except UserError as exc:
        _stop_taking_interrupts()  # a second Ctrl-C must not turn this into a traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        if not _received:
            raise
        _interrupted(name)
    except KeyboardInterrupt:
        _interrupted(name)


def _interrupted(name: str) -> None:
    _stop_taking_interrupts()
    print(f"error: {name} {INTERRUPTED}", file=sys.stderr)
    sys.exit(130)
