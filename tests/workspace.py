"""A scratch copy of the project as its own git + DVC repo (used by the integration tests and bench/)."""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_FILES = ("dvc.yaml", ".dvcignore", ".gitignore", ".tmp/README.md")
PROJECT_FOLDERS = ("stages", "src", "report")


def merge(base: dict, changes: dict) -> dict:
    """`base` with `changes` applied recursively."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) else value
    return out


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with this environment's tools first on PATH (stage commands call `python`)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "3",
           # `dvc exp run` commits too: give git an identity on machines that have none configured.
           "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    # Its own process group, stopped whole if the caller is stopped (Ctrl-C, or SIGTERM turned into an
    # exception), so that no `dvc repro` or stage outlives it and the scratch repo can be removed.
    with subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate()
        except BaseException:
            stop_group(process)
            raise
    result = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the process's group (stages end in their one line), SIGKILL to what is left after `grace_s`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)  # reaps the leader, so that the group ends with its last child
    if not with_group_gone(process.pid, max(0.0, deadline - time.monotonic())):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def with_group_gone(pgid: int, timeout: float = 30) -> bool:
    """Wait until no process of the group is left (workers die with their stage); whether none is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(cwd, str(BIN / "dvc"), *args, check=check)


def write_params(repo: Path, *changes: dict) -> None:
    """The project's params.yaml with `changes` applied, written into `repo`."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for change in changes:
        params = merge(params, change)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)


def project_dvc_config() -> dict[str, str]:
    """The project's own .dvc/config settings other than [core] (e.g. the offline plots template)."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".dvc" / "config")
    return {f"{section}.{key}": value for section in parser.sections() if section != "core"
            for key, value in parser[section].items()}


def make_workspace(repo: Path, *changes: dict) -> Path:
    """Copy the pipeline into `repo`, apply param changes, git init, dvc init, and commit."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    for folder in PROJECT_FOLDERS:
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_params(repo, *changes)
    run(repo, "git", "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    dvc(repo, "config", "core.check_update", "false")
    for key, value in project_dvc_config().items():
        dvc(repo, "config", key, value)
    # DVCLive needs a commit to compare against (it fails in a repo without one).
    commit(repo, "pipeline")
    return repo


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc; empty elsewhere)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def copy_workspace(origin: Path, target: Path) -> Path:
    """An independent copy of a reproduced workspace, git history and DVC cache included (a few MB at
    the tests' tiny params; far cheaper than reproducing it again)."""
    shutil.copytree(origin, target, symlinks=True)
    return target


def clone_sharing_cache(origin: Path, target: Path) -> Path:
    """A git clone of `origin` that uses its DVC cache (cheap: nothing is copied), outputs checked out."""
    run(target.parent, "git", "clone", "-q", str(origin), str(target))
    dvc(target, "cache", "dir", "--local", str(origin / ".dvc" / "cache"))
    dvc(target, "checkout", "-q")
    return target


def wait_for_queue(repo: Path, timeout_s: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; return the last status table."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = dvc(repo, "queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"queue still busy after {timeout_s} s:\n{status}")
        time.sleep(2)
