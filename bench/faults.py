"""The README's fault table: every stage killed (SIGKILL) and interrupted (SIGINT) while it works, plus
corrupt artifacts, on a scratch workspace with tiny params; prints one markdown row per stage x fault.

    python bench/faults.py

Each fault hits `dvc repro -f -s <stage>` once work is in progress in `.tmp/`; then a plain `dvc repro`
recovers. Columns: the exit code and the stage's own error line, the leftovers after recovery, what the
recovering repro ran, and its wall time.
"""

from __future__ import annotations

import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults import (  # noqa: E402
    STAGE_ORDER,
    fault_while_working,
    flip_cache_byte,
    leftovers,
    one_error_line,
    start,
)
from test_pipeline import TINY  # noqa: E402
from workspace import dvc, make_workspace  # noqa: E402


def recover(repo: Path) -> tuple[str, float, str]:
    started = time.perf_counter()
    out = dvc(repo, "repro").stdout
    seconds = time.perf_counter() - started
    ran = sorted(set(re.findall(r"Running stage '([\w-]+)'", out)))
    restored = sorted(set(re.findall(r"Stage '([\w-]+)' is cached", out)))
    left = leftovers(repo)
    return (", ".join(ran) or "nothing") + (f"; restored {', '.join(restored)}" if restored else ""), seconds, \
        (", ".join(left) or "none")


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as scratch:
        repo = make_workspace(Path(scratch) / "repo", TINY)
        dvc(repo, "repro")
        row("stage", "fault", "exit", "stage's line", "recovering `dvc repro` ran", "left after", "recovery s")
        row(*["---"] * 7)
        for stage in STAGE_ORDER:
            for name, sig in (("SIGKILL", signal.SIGKILL), ("SIGINT", signal.SIGINT)):
                code, err, landed = fault_while_working(repo, ["dvc", "repro", "-f", "-s", stage], sig)
                line = one_error_line(err) or ("(finished first)" if not landed else "(killed, no output)")
                ran, seconds, left = recover(repo)
                row(stage, name, code, f"`{line}`" if line.startswith("error") else line, ran, left, f"{seconds:.1f}")
        for artifact, stage in (("data/gray/gray-00000.npy", "train"),):
            obj = flip_cache_byte(repo, artifact)
            result = dvc(repo, "repro", "-f", "-s", stage, check=False)
            row(stage, f"1 byte flipped in the cache object of {artifact}", result.returncode,
                f"`{one_error_line(result.stderr)[:160]}…`", "-", "-", "-")
            data = bytearray(obj.read_bytes())
            data[-1] ^= 0x01
            obj.write_bytes(bytes(data))
            (repo / artifact).unlink()
            dvc(repo, "checkout", "-f")  # the failed forced run had removed the stage's outputs too
        for artifact, stage in (("models/model.keras", "evaluate"), ("data/split.json", "train")):
            original = (repo / artifact).read_bytes()
            (repo / artifact).unlink()
            (repo / artifact).write_bytes(original[: len(original) // 2])
            process = start(repo, sys.executable, f"stages/{stage}.py")
            _, err = process.communicate()
            row(stage, f"{artifact} truncated to half", process.returncode, f"`{one_error_line(err)[:160]}`",
                "-", "-", "-")
            (repo / artifact).unlink()
            dvc(repo, "checkout", "-f", artifact)


if __name__ == "__main__":
    main()
