"""The one place for work in progress: `<project>/.tmp/`, one folder per running process.

Atomic writes need their temporaries on the outputs' file system, so the place is the `.tmp/` folder of
the project (the nearest folder above an output holding `dvc.yaml`; else the output's own folder). Each
piece of work gets `.tmp/run-<pid>-<random>/` and holds an exclusive flock on `.tmp/run-<...>.lock`
while it lasts: the kernel drops the lock when the process dies however it dies, so `sweep` (run at
every stage start) removes exactly the leftovers of dead runs and never a live run's work. Stage locks
(`stage-<name>.lock`) keep two runs of one stage from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from colorize.core.errors import StageBusy

SCRATCH_NAME = ".tmp"
PROJECT_MARKER = "dvc.yaml"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp and mkdtemp create 0600 / 0700; outputs get the modes an ordinary open() / mkdir() would give.
FILE_MODE = 0o666 & ~_current_umask()
DIR_MODE = 0o777 & ~_current_umask()

def scratch_place(near: str | Path) -> Path:
    """`.tmp/` of the project holding the path `near`; outside a project, `.tmp/` beside `near`."""
    start = Path(near).absolute()
    for folder in [start, *start.parents]:
        if (folder / PROJECT_MARKER).is_file():
            return folder / SCRATCH_NAME
    return start.parent / SCRATCH_NAME


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _claim(place: Path) -> tuple[Path, int]:
    """A new folder in `place` and the fd of its held lock. The lock is taken under a name `sweep`
    skips and then published, so a sweep never sees an unlocked lock of a live run."""
    while True:  # a concurrent sweep may remove `place` or our pending lock under us: then start again
        name = f"run-{os.getpid()}-{secrets.token_hex(4)}"
        fd = None
        try:
            place.mkdir(parents=True, exist_ok=True)
            fd = _try_lock(place / f".new-{name}.lock")
            if fd is None:
                continue
            os.replace(place / f".new-{name}.lock", place / f"{name}.lock")
            (place / name).mkdir(mode=DIR_MODE)
            os.chmod(place / name, DIR_MODE)
            return place / name, fd
        except FileNotFoundError:
            if fd is not None:
                os.close(fd)
        except BaseException:  # e.g. Ctrl-C right here: leave nothing behind
            _release(place, place / name, fd)
            raise


def _release(place: Path, folder: Path, fd: int | None) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for lock in (place / f"{folder.name}.lock", place / f".new-{folder.name}.lock"):
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
    if fd is not None:
        os.close(fd)
    with contextlib.suppress(OSError):  # only if empty: other runs may be using it
        place.rmdir()


@contextlib.contextmanager
def work_dir(near: str | Path) -> Iterator[Path]:
    """A private folder in the scratch place of `near`, removed on exit (and by `sweep` if this
    process dies first)."""
    place = scratch_place(near)
    folder, fd = _claim(place)
    try:
        yield folder
    finally:
        _release(place, folder, fd)


def sweep(near: str | Path) -> list[str]:
    """Remove the leftovers of runs whose process is gone; return their names."""
    place = scratch_place(near)
    if not place.is_dir():
        return []
    removed = []
    for entry in sorted(place.iterdir()):
        if entry.name.startswith("stage-"):
            continue
        if entry.suffix == ".lock":
            fd = _try_lock(entry)
            if fd is None:
                continue  # its owner is alive
            try:
                run = entry.name.removeprefix(".new-").removesuffix(".lock")
                shutil.rmtree(place / run, ignore_errors=True)
                entry.unlink(missing_ok=True)
            finally:
                os.close(fd)
            removed.append(entry.name.removesuffix(".lock"))
        elif entry.is_dir() and not (place / f"{entry.name}.lock").exists():
            shutil.rmtree(entry, ignore_errors=True)  # its lock was swept before it: a dead run's
            removed.append(entry.name)
    return removed


def lock_stage(name: str, near: str | Path = ".") -> int:
    """Hold the stage's lock file for this process's life; refuse if another process holds it. The lock
    lives in DVC's own `.dvc/tmp/` where there is one (`.tmp/` is a dependency of `validate`)."""
    place = scratch_place(near)
    dvc_dir = place.parent / ".dvc"
    folder = dvc_dir / "tmp" if dvc_dir.is_dir() else place
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"stage-{name}.lock"
    fd = _try_lock(lock)
    if fd is None:
        raise StageBusy(f"stage {name} is already running in this project (another process holds {lock}); "
                        f"wait for it to finish")
    return fd
