"""Pictures per second and peak memory of the `colorize` command on the CPU, for N pictures of 512x512.

    python bench/colorize_cli.py                          # 1000 pictures through the bundle in models/
    python bench/colorize_cli.py --count 200 --model path/to/bundle

The command runs as its own process (the installed console script, GPU hidden), so its peak RSS is read
from os.wait4. It runs twice: on one picture (start-up: imports, loading the model) and on all N; the
difference gives the rate without start-up. If the bundle folder does not exist, a tiny 16x16 bundle is
trained into a temporary folder first; the model's share of the work then is that of a 16x16 model, so
the figure is not the default 64x64 bundle's (most of the time goes to full-resolution colour work and
PNG files either way, but the model call and its memory grow with the image size).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_pictures(folder: Path, count: int, side: int, distinct: int = 16) -> None:
    """`count` PNG files of side x side: `distinct` built-in cartoons, repeated, named 00000.png ..."""
    from PIL import Image

    from colorize.core.images import decode_image
    from colorize.fetch.synthetic import generate_builtin

    folder.mkdir(parents=True)
    pngs = []
    for _, data in generate_builtin(min(count, distinct), 7, "pika"):
        picture = decode_image(data, 10**8).resize((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    for i in range(count):
        (folder / f"{i:05d}.png").write_bytes(pngs[i % len(pngs)])


def train_tiny(folder: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_cli import (
        train_tiny_bundle,  # the tests' tiny bundle: 16x16, K=8, one epoch
    )

    train_tiny_bundle(folder)


def colorize_command() -> list[str]:
    script = BIN / "colorize"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "colorize"]


def timed_run(inputs: Path, out: Path, model: Path, batch_size: int, src: str | None = None,
              tta: str | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `colorize` process (of the package in `src`, if given; with
    `--tta tta`, if given); exits on failure."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    program = colorize_command()
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
        program = [sys.executable, "-m", "colorize"]
    command = [*program, str(inputs), "-o", str(out), "--model", str(model), "-q",
               "--batch-size", str(batch_size), *(["--tta", tta] if tta else [])]
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a full pipe would stall the child
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n"
                             f"{stderr.read().decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def check_outputs(out: Path, count: int, side: int) -> None:
    from PIL import Image

    written = sorted(out.rglob("*.png"))
    if len(written) != count:
        raise SystemExit(f"expected {count} outputs, found {len(written)}")
    for path in written[:: max(1, count // 10)]:
        with Image.open(path) as picture:
            if picture.size != (side, side):
                raise SystemExit(f"{path} is {picture.size}, not {side}x{side}")


def largest_difference(out: Path, other: Path) -> tuple[int, float]:
    """(largest per-channel difference, mean difference) between two output folders' pictures."""
    import numpy as np
    from PIL import Image

    largest, total, count = 0, 0.0, 0
    for path in sorted(out.rglob("*.png")):
        with Image.open(path) as a, Image.open(other / path.relative_to(out)) as b:
            diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        largest, total, count = max(largest, int(diff.max())), total + float(diff.mean()), count + 1
    return largest, total / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="pictures (default 1000)")
    parser.add_argument("--model", type=Path, default=ROOT / "models", help="bundle folder (default models/)")
    parser.add_argument("--side", type=int, default=512, help="picture side in pixels (default 512)")
    parser.add_argument("--batch-size", type=int, default=32, help="the command's --batch-size (default 32)")
    parser.add_argument("--baseline-src", help="also run the package in this src/ (e.g. a git worktree of "
                        "main) on the same pictures: the speed ratio and the largest output difference")
    parser.add_argument("--tta", help="the command's --tta (default: its own default)")
    parser.add_argument("--baseline-tta", help="also run with this --tta (this package, or --baseline-src's) "
                        "on the same pictures: the ratio, e.g. --tta flip --baseline-tta none")
    args = parser.parse_args()
    if args.count < 2:
        parser.error("--count must be at least 2")

    with tempfile.TemporaryDirectory(prefix="bench-colorize-") as scratch:
        scratch = Path(scratch)
        model = args.model
        if not (model / "bundle.json").is_file():
            model = scratch / "models"
            started = time.perf_counter()
            train_tiny(model)
            print(f"no bundle at {args.model}: trained a tiny 16x16 bundle into a temporary folder in "
                  f"{time.perf_counter() - started:.0f} s (a 64x64 bundle gives another figure)")
        meta = json.loads((model / "bundle.json").read_text())
        print(f"bundle: {args.model if model == args.model else 'tiny (temporary)'}, {meta.get('arch')} "
              f"{meta['image_size']}x{meta['image_size']}, K={meta.get('k')}, {meta.get('parameters', 0):,} parameters")

        make_pictures(scratch / "one", 1, args.side)
        make_pictures(scratch / "all", args.count, args.side)
        start_s, start_rss = timed_run(scratch / "one", scratch / "out-one", model, args.batch_size, tta=args.tta)
        total_s, peak_rss = timed_run(scratch / "all", scratch / "out-all", model, args.batch_size, tta=args.tta)
        check_outputs(scratch / "out-all", args.count, args.side)
        baseline = args.baseline_src or args.baseline_tta
        if baseline:
            base_start_s, _ = timed_run(scratch / "one", scratch / "base-one", model, args.batch_size,
                                        args.baseline_src, args.baseline_tta)
            base_total_s, base_rss = timed_run(scratch / "all", scratch / "base-all", model, args.batch_size,
                                               args.baseline_src, args.baseline_tta)
            largest, mean = largest_difference(scratch / "out-all", scratch / "base-all")

    rate = args.count / total_s
    steady = (args.count - 1) / max(total_s - start_s, 1e-9)
    print(f"{args.count} pictures of {args.side}x{args.side}, batch {args.batch_size}, CPU ({os.cpu_count()} cores)"
          + (f", --tta {args.tta}" if args.tta else ""))
    print(f"  one picture:  {start_s:6.1f} s (start-up), peak RSS {start_rss:6.0f} MiB")
    print(f"  {args.count:>4} pictures: {total_s:6.1f} s, {rate:6.2f} pictures/s overall, "
          f"{steady:6.2f} pictures/s without start-up, peak RSS {peak_rss:6.0f} MiB")
    if baseline:
        base_steady = (args.count - 1) / max(base_total_s - base_start_s, 1e-9)
        label = ", ".join(part for part in (args.baseline_src, args.baseline_tta and f"--tta {args.baseline_tta}")
                          if part)
        print(f"  baseline ({label}): {base_total_s:6.1f} s, {base_steady:6.2f} pictures/s without "
              f"start-up, peak RSS {base_rss:6.0f} MiB")
        print(f"  speed-up {steady / base_steady:.2f}x without start-up ({base_total_s / total_s:.2f}x overall); "
              f"outputs differ by at most {largest} level(s) per channel (mean {mean:.4f})")


if __name__ == "__main__":
    main()
