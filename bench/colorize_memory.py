"""Peak memory of the `colorize` command on large pictures against its --max-memory budget.

    python bench/colorize_memory.py                          # 32 pictures of 8000x8000, budget 6G
    python bench/colorize_memory.py --count 3 --side 4000 --max-memory 3G

Runs the command (its own process; peak RSS from os.wait4) once on one picture and once on all of them,
with the default --batch-size 32, and prints both peaks next to the budget, and the per-pixel costs the
two runs imply (what colorize.app.cli's HELD_BYTES_PER_PIXEL and PEAK_BYTES_PER_PIXEL should hold).
Uses the bundle in models/ or, without one, the tests' tiny bundle (the model is a small share here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_cli import ROOT, colorize_command, make_pictures, train_tiny  # noqa: E402


def peak_run(inputs: Path, out: Path, model: Path, budget: str) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of one `colorize` run; exits on failure."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [*colorize_command(), str(inputs), "-o", str(out), "--model", str(model), "-q",
               "--max-memory", budget, "--max-pixels", str(10**9)]
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{stderr.read().decode(errors='replace')[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--max-memory", default="6G", help="the command's budget (default 6G)")
    parser.add_argument("--model", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    from colorize.app.cli import parse_bytes

    with tempfile.TemporaryDirectory(prefix="bench-colorize-memory-") as scratch:
        scratch = Path(scratch)
        model = args.model
        if not (model / "bundle.json").is_file():
            model = scratch / "models"
            train_tiny(model)
        make_pictures(scratch / "one", 1, args.side, distinct=1)
        make_pictures(scratch / "all", args.count, args.side, distinct=1)
        one_s, one_gib = peak_run(scratch / "one", scratch / "out-one", model, args.max_memory)
        all_s, all_gib = peak_run(scratch / "all", scratch / "out-all", model, args.max_memory)
    budget = parse_bytes(args.max_memory) / 2**30
    print(f"colorize, {args.side}x{args.side} pictures, --batch-size 32, --max-memory {args.max_memory} "
          f"({budget:.1f} GiB), {os.cpu_count()} cores")
    print(f"  1 picture:   peak RSS {one_gib:5.2f} GiB in {one_s:6.1f} s")
    print(f"  {args.count:>3} pictures: peak RSS {all_gib:5.2f} GiB in {all_s:6.1f} s -> "
          f"{'within' if all_gib <= budget else 'OVER'} the budget")


if __name__ == "__main__":
    main()
