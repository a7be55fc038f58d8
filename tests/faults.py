"""Fault injection on a real DVC workspace: kill or interrupt a stage while it works, corrupt a cache
object, and look at what is left (shared by tests/test_faults.py and bench/faults.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from workspace import BIN, dvc, run, with_group_gone

STAGE_ORDER = ["validate", "fetch", "split", "resize", "grayscale", "palette", "encode", "train", "fetch_extra",
               "resize_extra", "evaluate"]


def stage_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": ""}


def leftovers(repo: Path) -> list[str]:
    """Temporaries anywhere in the workspace: dead or live work folders in .tmp/, old-style .tmp-* siblings."""
    found = [p for p in (repo / ".tmp").glob("*") if p.name != "README.md"]
    found += [p for p in repo.rglob(".tmp-*") if ".dvc" not in p.parts and ".git" not in p.parts]
    return sorted(str(p.relative_to(repo)) for p in found)


def work_started(repo: Path) -> bool:
    return any(p.is_dir() for p in (repo / ".tmp").glob("run-*"))


def start(repo: Path, *command: str) -> subprocess.Popen:
    """A command in its own process group (so a kill reaches DVC, the stage and its workers alike)."""
    return subprocess.Popen(command, cwd=repo, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def fault_while_working(repo: Path, command: list[str], sig: int, delay: float = 0.0,
                        timeout: float = 120) -> tuple[int | None, str, bool]:
    """Run `command`, wait until it has work in progress in .tmp/ (or `delay` seconds when given), send
    `sig` to its process group; return (exit code, stderr, whether the signal landed before it ended)."""
    process = start(repo, *command)
    deadline = time.monotonic() + timeout
    began = time.monotonic()
    while process.poll() is None and time.monotonic() < deadline:
        if (delay and time.monotonic() - began >= delay) or (not delay and work_started(repo)):
            break
        time.sleep(0.01)
    landed = process.poll() is None
    if landed:
        os.killpg(process.pid, sig)  # as a terminal does: DVC, the stage and its workers alike
    _, err = process.communicate(timeout=timeout)
    with_group_gone(process.pid)
    return process.returncode, err, landed


def flip_cache_byte(repo: Path, artifact: str, offset: int = -1) -> Path:
    """Flip one byte of the DVC cache object of `artifact` (a file inside a tracked folder) and check the
    workspace copy out again from the cache; return the cache object's path."""
    md5 = run(repo, "md5sum", artifact).stdout.split()[0]
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    data[offset] ^= 0x01
    obj.write_bytes(bytes(data))
    (repo / artifact).unlink()
    dvc(repo, "checkout", "-f", str(Path(artifact).parent))
    return obj


def one_error_line(stderr: str) -> str:
    """The stage's own error line (DVC adds its own lines around it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return lines[-1] if lines else ""
