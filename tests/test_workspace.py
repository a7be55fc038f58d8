"""tests/workspace.py's `run`: a caller stopped mid-command leaves nothing of the command running."""

from __future__ import annotations

import signal
import time

import pytest

from workspace import run


class Stopped(Exception):
    pass


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie waiting for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_stopped_caller_stops_the_command_and_everything_it_started(tmp_path):
    def stop(signum, frame):
        raise Stopped

    # The grandchild ignores SIGTERM (as a stuck stage might), so the group must also get SIGKILL.
    script = "trap '' TERM; sleep 300 & echo $! > child.pid; wait"
    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(Stopped):
            run(tmp_path, "bash", "-c", script)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 15
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(child)


def test_a_command_that_finishes_is_returned_as_before(tmp_path):
    result = run(tmp_path, "bash", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    with pytest.raises(AssertionError, match="failed \\(3\\)"):
        run(tmp_path, "bash", "-c", "exit 3")
