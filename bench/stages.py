"""Wall time and peak RSS of each stage and of the whole default `dvc repro`; a no-op `dvc repro`.

Runs in a scratch copy of the project (default params unless --tiny), so the repo itself is untouched:
    python bench/stages.py            # the default pipeline, as `make repro` runs it
    python bench/stages.py --tiny     # a 40-image, 16x16 smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from workspace import BIN, make_workspace  # noqa: E402

STAGES = ["fetch", "split", "resize", "grayscale", "palette", "encode", "train", "fetch_extra", "resize_extra",
          "evaluate"]
TINY = {"fetch": {"builtin": {"count": 40}}, "resize": {"image_size": 16}, "palette": {"k": 8},
        "train": {"epochs": 2, "min_steps": 0, "unet_filters": 4, "unet_depth": 2}}


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the process and its waited-for children)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # stderr to a file, not a pipe: progress bars of a long stage fill a pipe nobody reads until it ends,
    # and the stage then blocks writing (the 250,000-image encode did).
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    changes = [TINY] if args.tiny else []
    with tempfile.TemporaryDirectory() as scratch:
        repo = make_workspace(Path(scratch) / "repo", *changes)
        total, total_rss = timed([str(BIN / "dvc"), "repro"], repo)
        print(f"{'whole dvc repro':24s} {total:8.1f} s   peak RSS {total_rss:7.0f} MiB")
        for stage in STAGES:
            seconds, rss = timed([str(BIN / "python"), f"stages/{stage}.py"], repo)
            print(f"  {stage:22s} {seconds:8.1f} s   peak RSS {rss:7.0f} MiB")
        timed([str(BIN / "dvc"), "repro"], repo)  # re-record the lock after the direct stage runs
        noop = [timed([str(BIN / "dvc"), "repro"], repo)[0] for _ in range(3)]
        print(f"{'no-op dvc repro':24s} {statistics.median(noop):8.2f} s   (median of 3)")


if __name__ == "__main__":
    main()
