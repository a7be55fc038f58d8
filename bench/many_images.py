"""The pipeline's data end on many small images: fetch + split + resize of N generated pictures
through real `dvc repro`, its peak RSS, then a no-op `dvc repro` (raw data is a few tar shards, so DVC
does not hash N files):
    python bench/many_images.py --count 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import generate  # noqa: E402
from stages import timed  # noqa: E402
from workspace import BIN, make_workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "images"
        generate("small", images, args.count, 0)
        repo = make_workspace(Path(scratch) / "repo", {"fetch": {"source": str(images)}})
        dvc = str(BIN / "dvc")
        seconds, rss = timed([dvc, "repro", "resize"], repo)
        print(f"{args.count} small images: dvc repro fetch+split+resize {seconds:.1f} s "
              f"({args.count / seconds:.0f} images/s), peak RSS {rss:.0f} MiB")
        files = sum(1 for p in (repo / "data").rglob("*") if p.is_file())
        noop = [timed([dvc, "repro", "resize"], repo)[0] for _ in range(3)]
        print(f"no-op dvc repro: {statistics.median(noop):.2f} s (median of 3); data/ holds {files} files")


if __name__ == "__main__":
    main()
