"""`colorize`: colorize your own pictures with a trained model bundle.

    colorize photo.png old/*.jpg some_folder/ -o out/ [--model models/] [--decode annealed_mean]

Any size and aspect ratio; colour inputs are turned gray first (with the model's weights). Folders are
walked recursively and their layout is kept under the output folder. A file that fails is reported and
the batch goes on; the exit code is 1 if any file failed, 2 if nothing could start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from colorize.errors import UserError

DEFAULT_MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Job:
    """One input picture and where its result goes."""

    source: Path
    target: Path


def is_picture(path: Path) -> bool:
    from colorize.images import IMAGE_EXTENSIONS

    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def plan_jobs(inputs: list[Path], out_dir: Path) -> tuple[list[Job], list[str]]:
    """Expand folders (recursively, sorted) into jobs; results are PNG files; unreadable inputs are errors."""
    jobs, errors, taken = [], [], set()
    for given in inputs:
        if given.is_dir():
            pictures = sorted(p for p in given.rglob("*") if p.is_file() and is_picture(p)
                              and not any(part.startswith(".") for part in p.relative_to(given).parts))
            pairs = [(p, out_dir / given.resolve().name / p.relative_to(given).with_suffix(".png")) for p in pictures]
        elif given.is_file():
            pairs = [(given, out_dir / given.with_suffix(".png").name)]
        else:
            errors.append(f"{given}: no such file or folder")
            continue
        for source, target in pairs:
            stem, n = target, 1
            while target in taken:  # two inputs with one name: keep both
                target, n = stem.with_name(f"{stem.stem}-{n}{stem.suffix}"), n + 1
            taken.add(target)
            jobs.append(Job(source, target))
    return jobs, errors


def batches(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def colorize_batch(bundle, jobs: list[Job], method: str, temperature: float, max_pixels: int,
                   batch_size: int) -> list[str]:
    """Decode and prepare each picture, run the model once for the batch, write each result; return errors."""
    import numpy as np

    from colorize.bundle import predict_probabilities
    from colorize.decoding import decode
    from colorize.figures import save_png
    from colorize.images import ImageRejected, decode_image
    from colorize.recolor import apply_chroma, prepare

    errors, ready = [], []
    for job in jobs:
        try:
            image = decode_image(job.source.read_bytes(), max_pixels)
            prepared = prepare(image, bundle.image_size, bundle.fill, bundle.gray_weights,
                               bundle.meta.get("resize_method", "lanczos"), bundle.meta.get("resize_crop", "none"))
            ready.append((job, prepared))
        except ImageRejected as exc:
            errors.append(f"{job.source}: {exc}")
        except OSError as exc:
            errors.append(f"{job.source}: cannot read ({exc.strerror or exc})")
    if not ready:
        return errors
    probs = predict_probabilities(bundle.model, np.stack([p.model_input for _, p in ready]), batch_size)
    small = decode(probs, bundle.palette, method, temperature)
    from PIL import Image

    for (job, prepared), predicted in zip(ready, small, strict=True):
        try:
            save_png(job.target, Image.fromarray(apply_chroma(prepared, predicted, bundle.gray_weights)))
        except OSError as exc:
            errors.append(f"{job.source}: cannot write {job.target} ({exc.strerror or exc})")
    return errors


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="colorize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="pictures and folders (recursive)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (PNG files)")
    parser.add_argument("--model", type=Path, default=Path("models"), help="model bundle folder (default: models)")
    parser.add_argument("--decode", choices=("argmax", "mean", "annealed_mean"), default="annealed_mean",
                        help="how probabilities become colours (default: annealed_mean)")
    parser.add_argument("--temperature", type=float, default=0.38, help="for annealed_mean (default 0.38)")
    parser.add_argument("--batch-size", type=int, default=32, help="pictures per model call (default 32)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse larger pictures (decompression bombs)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.temperature <= 0 or args.max_pixels < 1:
        parser.error("--batch-size and --max-pixels must be >= 1 and --temperature > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from colorize.bundle import load_bundle, read_meta

        read_meta(args.model)  # a missing bundle fails here, before Keras is imported
        bundle = load_bundle(args.model)
    except UserError as exc:
        print(f"colorize: error: {exc}", file=sys.stderr)
        return 2
    jobs, missing = plan_jobs(args.inputs, args.out)
    failed: list[str] = []
    with tqdm(total=len(jobs), unit="img", desc="colorize", disable=args.quiet or None) as bar:
        for batch in batches(jobs, args.batch_size):
            failed += colorize_batch(bundle, batch, args.decode, args.temperature, args.max_pixels, args.batch_size)
            bar.update(len(batch))
    for line in missing + failed:
        print(f"colorize: error: {line}", file=sys.stderr)
    print(f"colorize: {len(jobs) - len(failed)} of {len(jobs)} pictures written to {args.out}"
          + (f"; {len(failed) + len(missing)} failed" if failed or missing else ""), file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
