"""Every stage on many built-in images at the default size: wall time and peak RSS per stage, then a
no-op `dvc repro`; a straight-line extrapolation of each stage to 1,000,000 images.

    python bench/scale.py --counts 25000,100000,250000      # the README's table
    python bench/scale.py --counts 2000 --skip evaluate      # a quick look
    python bench/scale.py --test-size 0.05                   # a smaller test split for evaluate

Training is limited to `--train-steps` optimizer steps (KERAS_MAX_STEPS_PER_EPOCH, one epoch), so its
time measures start-up and reading, not learning. Each stage runs through `dvc repro --single-item`, so
its peak RSS is that of the dvc process and the stage it waited for.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from stages import STAGES as DATA_STAGES  # noqa: E402
from stages import timed  # noqa: E402
from workspace import BIN, make_workspace  # noqa: E402

# fetch reads validate's data/validated.json, so validate runs (and is timed) first.
STAGES = ["validate", *DATA_STAGES]


def run_counts(counts: list[int], skip: set[str], train_steps: int,
               test_size: float | None) -> dict[int, dict[str, tuple[float, float]]]:
    os.environ["KERAS_MAX_STEPS_PER_EPOCH"] = str(train_steps)
    # One epoch of at most train_steps steps at every count (min_steps would add epochs to small sets).
    changes = {"train": {"epochs": 1, "min_steps": 0},
               **({} if test_size is None else {"split": {"test_size": test_size}})}
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as scratch:
            repo = make_workspace(Path(scratch) / "repo", {"fetch": {"builtin": {"count": count}}, **changes})
            results[count] = {}
            for stage in STAGES:
                if stage in skip:
                    break  # later stages need this one's outputs
                results[count][stage] = timed([str(BIN / "dvc"), "repro", "--single-item", stage], repo)
                seconds, rss = results[count][stage]
                print(f"{count:>9,} {stage:10s} {seconds:8.1f} s   peak RSS {rss:7.0f} MiB", flush=True)
            noop = [timed([str(BIN / "dvc"), "repro", *(s for s in STAGES if s not in skip)], repo)[0]
                    for _ in range(3)]
            results[count]["no-op dvc repro"] = (statistics.median(noop), 0.0)
            print(f"{count:>9,} no-op dvc repro {statistics.median(noop):.2f} s (median of 3)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="25000,100000,250000")
    parser.add_argument("--skip", default="", help="a stage to stop before (with all after it), e.g. evaluate")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--test-size", type=float, default=None,
                        help="split.test_size for every count (default: params.yaml's); evaluate's time "
                             "grows with the test images, its memory should not")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    skip = {s for s in args.skip.split(",") if s}
    if skip:
        skip |= set(STAGES[min(STAGES.index(s) for s in skip):])
    results = run_counts(counts, skip, args.train_steps, args.test_size)
    names = [s for s in [*STAGES, "no-op dvc repro"] if all(s in results[c] for c in counts)]
    print("\n| stage | " + " | ".join(f"{c:,} images: s / peak RSS MiB" for c in counts) + " |"
          + (" 1,000,000 (extrapolated) s / MiB |" if len(counts) > 1 else ""))
    print("| --- |" + " --- |" * (len(counts) + (len(counts) > 1)))
    for name in names:
        cells = [f"{results[c][name][0]:.1f} / {results[c][name][1]:.0f}" for c in counts]
        if len(counts) > 1:  # least-squares line through the measured points
            import numpy as np

            x = np.array(counts, float)
            fits = [np.polyfit(x, [results[c][name][i] for c in counts], 1) for i in (0, 1)]
            cells.append(" / ".join(f"{np.polyval(f, 1e6):.0f}" for f in fits))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
