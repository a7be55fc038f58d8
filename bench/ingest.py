"""Ingestion throughput and peak memory: a folder of generated images of mixed sizes, modes and formats
(with duplicates, gray, truncated and empty files planted), then a folder of many small images.

Each ingest runs in its own process, so its peak RSS (and its workers') is its own:
    python bench/ingest.py                          # 2,000 mixed + 20,000 small: a few minutes
    python bench/ingest.py --mixed 10000 --small 100000   # the README's figures
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from workspace import descendants  # noqa: E402

# (mode, format) mix of the "mixed" set, by weight; sizes are drawn per image.
MIXED_KINDS = [("RGB", "JPEG", 30), ("RGB", "PNG", 20), ("RGBA", "PNG", 10), ("P", "GIF", 8), ("RGB", "WEBP", 8),
               ("CMYK", "JPEG", 5), ("L", "PNG", 5), ("I;16", "PNG", 4), ("RGB", "BMP", 4), ("LA", "PNG", 2),
               ("duplicate", "", 2), ("truncated", "JPEG", 1), ("empty", "", 1)]


def smooth_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like image: a coarse random grid upsampled (compresses like real pictures, unlike noise)."""
    coarse = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))


def mixed_file(index: int, seed: int) -> tuple[str, bytes]:
    """File name and bytes of image `index` of the mixed set."""
    rng = np.random.default_rng([seed, index])
    weights = np.array([w for *_, w in MIXED_KINDS], dtype=float)
    mode, fmt, _ = MIXED_KINDS[rng.choice(len(MIXED_KINDS), p=weights / weights.sum())]
    side = rng.choice([24, 64, 128, 256, 512, 1024], p=[0.1, 0.2, 0.3, 0.25, 0.13, 0.02])
    height, width = int(side), int(side * rng.uniform(0.5, 2.0))
    if mode == "empty":
        return f"mixed/{index:06d}.png", b""
    if mode == "duplicate":  # the pixels of image 0, in another file
        return f"mixed/dup-{index:06d}.png", mixed_bytes(np.random.default_rng([seed, 0]), "RGB", "PNG", 64, 64)
    data = mixed_bytes(rng, "RGB" if mode == "truncated" else mode, fmt, height, width)
    if mode == "truncated":
        data = data[: len(data) // 2]
    ext = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}[fmt]
    return f"mixed/{index // 1000:03d}/{index:06d}{ext}", data


def mixed_bytes(rng: np.random.Generator, mode: str, fmt: str, height: int, width: int) -> bytes:
    rgb = smooth_rgb(rng, height, width)
    if mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (height, width), dtype=np.uint8)]), "RGBA")
    elif mode == "I;16":
        image = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    elif mode in ("L", "LA", "P", "CMYK"):
        image = Image.fromarray(rgb).convert(mode)
    else:
        image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def small_file(index: int, seed: int) -> tuple[str, bytes]:
    """A 32x32 to 64x64 PNG, all distinct."""
    rng = np.random.default_rng([seed, index, 1])
    side = int(rng.integers(32, 65))
    buffer = io.BytesIO()
    Image.fromarray(smooth_rgb(rng, side, side)).save(buffer, format="PNG")
    return f"small/{index // 1000:03d}/{index:06d}.png", buffer.getvalue()


def _write_batch(args: tuple[str, Path, int, int, int]) -> int:
    kind, root, start, stop, seed = args
    make = mixed_file if kind == "mixed" else small_file
    written = 0
    for index in range(start, stop):
        name, data = make(index, seed)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += len(data)
    return written


def generate(kind: str, root: Path, count: int, seed: int) -> int:
    """Write `count` files of a set under `root` (in parallel); return their total bytes."""
    batches = [(kind, root, start, min(start + 500, count), seed) for start in range(0, count, 500)]
    with ProcessPoolExecutor() as pool:
        return sum(pool.map(_write_batch, batches))


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration, ValueError):
        return 0.0


class PeakRss:
    """Samples the RSS of this process's descendants (the decode workers, the forkserver) and of all of
    them with this process, every 0.2 s; `ru_maxrss` gives this process's own exact peak."""

    def __init__(self) -> None:
        self.total = self.workers = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            workers = sum(_rss_mib(pid) for pid in descendants(me))
            self.workers = max(self.workers, workers)
            self.total = max(self.total, _rss_mib(me) + workers)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ingest_here(source: Path, out: Path, workers: int | None) -> dict:
    """Run the fetch on `source` in this process; throughput and peak memory (this process, its workers)."""
    import yaml

    from colorize.core.params import FetchParams, validate
    from colorize.fetch.ingest import run_fetch

    root = Path(__file__).resolve().parents[1]
    section = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["fetch"]
    params = validate("fetch", {**section, "source": str(source)}, FetchParams)
    with PeakRss() as rss:
        started = time.perf_counter()
        counts = run_fetch(params, out, None, progress=False, workers=workers)
        seconds = time.perf_counter() - started
    shards = sorted(out.glob("raw-*.tar"))
    return {"seconds": seconds, "found": counts["found"], "accepted": counts["accepted"],
            "skipped": counts["skipped"], "duplicates": counts["duplicates"],
            "files_per_s": counts["found"] / seconds, "shards": len(shards),
            "raw_mib": sum(p.stat().st_size for p in shards) / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_total_rss_mib": rss.total, "peak_workers_rss_mib": rss.workers}


def ingest_in_child(source: Path, out: Path, workers: int | None) -> dict:
    command = [sys.executable, "-P", __file__, "--ingest-only", str(source), str(out)]
    if workers:
        command += ["--workers", str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(title: str, count: int, data_bytes: int, result: dict) -> None:
    print(f"{title}: {count} files ({data_bytes / 2**20:.0f} MiB) in {result['seconds']:.1f} s = "
          f"{result['files_per_s']:.0f} files/s; accepted {result['accepted']}, skipped {result['skipped']}, "
          f"duplicates {result['duplicates']}; {result['shards']} shards ({result['raw_mib']:.0f} MiB); "
          f"peak RSS: main process {result['peak_rss_mib']:.0f} MiB, its workers together "
          f"{result['peak_workers_rss_mib']:.0f} MiB, all at once {result['peak_total_rss_mib']:.0f} MiB "
          "(workers and 'all at once' sampled every 0.2 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixed", type=int, default=2000, help="images of mixed sizes/modes (0: skip)")
    parser.add_argument("--small", type=int, default=20000, help="small images (0: skip)")
    parser.add_argument("--workers", type=int, default=None, help="decode processes (default: all CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ingest-only", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest_only:
        print(json.dumps(ingest_here(Path(args.ingest_only[0]), Path(args.ingest_only[1]), args.workers)))
        return
    print(f"CPUs: {len(os.sched_getaffinity(0))}, workers: {args.workers or 'all'}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        for kind, count in (("mixed", args.mixed), ("small", args.small)):
            if count <= 0:
                continue
            root = Path(scratch) / kind
            started = time.perf_counter()
            data_bytes = generate(kind, root, count, args.seed)
            print(f"(generated {count} {kind} files in {time.perf_counter() - started:.0f} s)")
            report(kind, count, data_bytes, ingest_in_child(root, Path(scratch) / f"raw-{kind}", args.workers))


if __name__ == "__main__":
    main()
