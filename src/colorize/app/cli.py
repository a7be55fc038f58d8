"""`colorize`: colorize your own pictures with a trained model bundle.

    colorize photo.png old/*.jpg some_folder/ -o out/ [--model models/] [--decode annealed_mean]

Any size and aspect ratio; colour inputs are turned gray first (with the model's weights). Folders are
walked recursively and their layout is kept under the output folder. A file that fails is reported and
the batch goes on; the exit code is 1 if any file failed, 2 if nothing could start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from colorize.core.errors import UserError

DEFAULT_MEMORY_FRACTION = 0.5  # --max-memory default: this share of the machine's RAM
# Memory per input pixel, from bench/colorize_memory.py on 8000x8000 pictures (~64 B/px at the peak of
# one picture, ~2.2 B/px held per waiting picture), with a margin: what a picture holds while it waits
# for the rest of its batch, and the transient peak while it is colorized.
HELD_BYTES_PER_PIXEL = 8
PEAK_BYTES_PER_PIXEL = 72


@dataclass(frozen=True)
class Job:
    """One input picture and where its result goes."""

    source: Path
    target: Path


def is_picture(path: Path) -> bool:
    from colorize.core.images import IMAGE_EXTENSIONS

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


def picture_pixels(path: Path) -> int:
    """Width x height from the file's header (no pixel is decoded); 0 if unreadable (its error comes later)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # any unreadable file is reported when it is decoded
        return 0


def batch_bytes(pixels: list[int]) -> int:
    """Estimated peak memory of colorizing one batch: every picture held, the largest at its peak."""
    return HELD_BYTES_PER_PIXEL * sum(pixels) + (PEAK_BYTES_PER_PIXEL - HELD_BYTES_PER_PIXEL) * max(pixels, default=0)


def memory_batches(jobs: list[Job], size: int, budget: int, pixels_of=picture_pixels
                   ) -> Iterator[tuple[list[Job], list[str]]]:
    """Batches of at most `size` jobs whose estimated peak memory stays within `budget` bytes; a picture
    over the budget on its own is refused (second item: its error) rather than tried."""
    batch: list[Job] = []
    pixels: list[int] = []
    for job in jobs:
        n = pixels_of(job.source)
        if batch_bytes([n]) > budget:
            yield [], [f"{job.source}: {n} pixels need about {gib(batch_bytes([n]))} to colorize, over "
                       f"--max-memory {gib(budget)}"]
            continue
        if batch and (len(batch) >= size or batch_bytes([*pixels, n]) > budget):
            yield batch, []
            batch, pixels = [], []
        batch.append(job)
        pixels.append(n)
    if batch:
        yield batch, []


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def parse_bytes(text: str) -> int:
    """`8G`, `512M`, `1.5GiB` or a plain number of bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in units and value[-1:] else ""
    number = float(value[:-1] if unit else value)
    if not number > 0:
        raise ValueError(text)
    return int(number * units[unit])


def default_max_memory() -> int:
    return int(DEFAULT_MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def current_rss() -> int:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def allow_pillow_pixels(max_pixels: int) -> None:
    """Honour a --max-pixels above Pillow's own decompression-bomb limit (it would refuse those pictures
    otherwise, whatever --max-pixels says); our own check already refuses anything larger."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


def colorize_batch(bundle, jobs: list[Job], method: str, temperature: float, max_pixels: int,
                   batch_size: int, tta: str, lightness: str, regions: tuple[int | None, int]) -> list[str]:
    """Decode and prepare each picture, run the model once for the batch, write each result; return errors."""
    import numpy as np

    from colorize.app.recolor import apply_chroma, prepare
    from colorize.core.figures import save_png
    from colorize.core.images import ImageRejected, decode_image
    from colorize.evaluate.decoding import decode
    from colorize.evaluate.regions import pool_over_regions
    from colorize.model.bundle import predict_probabilities
    from colorize.prep.transforms import DEFAULT_METHOD, NO_CROP

    errors, ready = [], []
    for job in jobs:
        try:
            image = decode_image(job.source.read_bytes(), max_pixels, "--max-pixels")
            prepared = prepare(image, bundle.image_size, bundle.fill, bundle.gray_weights,
                               bundle.meta.get("resize_method", DEFAULT_METHOD),
                               bundle.meta.get("resize_crop", NO_CROP))
            ready.append((job, prepared))
        except ImageRejected as exc:
            errors.append(f"{job.source}: {exc}")
        except OSError as exc:
            errors.append(f"{job.source}: cannot read ({exc.strerror or exc})")
    if not ready:
        return errors
    model_inputs = np.stack([p.model_input for _, p in ready])
    probs = pool_over_regions(predict_probabilities(bundle.model, model_inputs, batch_size, tta), model_inputs,
                              *regions)
    small = decode(probs, bundle.palette, method, temperature)
    from PIL import Image

    for (job, prepared), predicted in zip(ready, small, strict=True):
        try:
            save_png(job.target, Image.fromarray(apply_chroma(prepared, predicted, bundle.gray_weights,
                                                                lightness)))
        except OSError as exc:
            errors.append(f"{job.source}: cannot write {job.target} ({exc.strerror or exc})")
    return errors


def region_tolerance(text: str) -> int | None:
    """--regions: 'none' (off) or an integer in [0, 255]."""
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"must be 'none' or an integer in [0, 255], got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from colorize.core.images import DEFAULT_MAX_PIXELS
    from colorize.evaluate.decoding import (
        DEFAULT_LIGHTNESS,
        DEFAULT_METHOD,
        DEFAULT_TEMPERATURE,
        LIGHTNESS_METHODS,
        METHODS,
    )
    from colorize.evaluate.regions import DEFAULT_REGION_MIN_PIXELS, DEFAULT_REGION_TOLERANCE
    from colorize.model.bundle import DEFAULT_TTA, TTA_VIEWS

    parser = argparse.ArgumentParser(prog="colorize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="pictures and folders (recursive)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (PNG files)")
    parser.add_argument("--model", type=Path, default=Path("models"), help="model bundle folder (default: models)")
    # None: the bundle's decoding where bundle.json records one, else evaluate.decoding's defaults.
    parser.add_argument("--decode", choices=METHODS, default=None,
                        help=f"how probabilities become colours (default: the bundle's, else {DEFAULT_METHOD})")
    parser.add_argument("--temperature", type=float, default=None,
                        help=f"for annealed_mean (default: the bundle's, else {DEFAULT_TEMPERATURE})")
    parser.add_argument("--tta", choices=list(TTA_VIEWS), default=DEFAULT_TTA,
                        help=f"test-time augmentation: average the model over mirrored (flip) and also 1-pixel "
                             f"shifted (flip_shift) copies of each picture (default {DEFAULT_TTA})")
    parser.add_argument("--regions", type=region_tolerance, default=DEFAULT_REGION_TOLERANCE, metavar="TOLERANCE",
                        help=f"average the model's colours over each flat region of the picture: neighbours whose "
                             f"gray differs by at most TOLERANCE (0-255; 'none': off; default "
                             f"{DEFAULT_REGION_TOLERANCE})")
    parser.add_argument("--region-min-pixels", type=int, default=DEFAULT_REGION_MIN_PIXELS, metavar="N",
                        help=f"regions smaller than N pixels of the model's input keep their own colours "
                             f"(default {DEFAULT_REGION_MIN_PIXELS})")
    parser.add_argument("--lightness", choices=LIGHTNESS_METHODS, default=DEFAULT_LIGHTNESS,
                        help=f"how the input's lightness goes back on the predicted colour: match_gray (the "
                             f"colour shifted until its gray is the input's) or cielab (the gray's CIELAB "
                             f"lightness with the predicted a/b, then that shift); default {DEFAULT_LIGHTNESS}")
    parser.add_argument("--batch-size", type=int, default=32, help="pictures per model call (default 32)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse larger pictures (decompression bombs; default {DEFAULT_MAX_PIXELS})")
    parser.add_argument("--max-memory", type=str, default=None,
                        help=f"memory budget, e.g. 8G: batches are cut to stay under it (default "
                             f"{DEFAULT_MEMORY_FRACTION * 100:.0f}%% of RAM)")  # %% : argparse %-formats help
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if (args.batch_size < 1 or (args.temperature is not None and args.temperature <= 0) or args.max_pixels < 1
            or args.region_min_pixels < 1):
        parser.error("--batch-size, --max-pixels and --region-min-pixels must be >= 1 and --temperature > 0")
    try:
        args.max_memory = default_max_memory() if args.max_memory is None else parse_bytes(args.max_memory)
    except ValueError:
        parser.error(f"--max-memory must be a size such as 8G or 512M, got {args.max_memory!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    from colorize.core.parallel import one_blas_thread

    one_blas_thread()
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        print("colorize: interrupted; pictures already written are complete, the rest were not written",
              file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    try:
        from colorize.evaluate.decoding import bundle_decoding
        from colorize.model.bundle import load_bundle, read_meta

        # A bad bundle fails here, before Keras is imported.
        method, temperature = bundle_decoding(read_meta(args.model), str(args.model / "bundle.json"))
        bundle = load_bundle(args.model)
    except UserError as exc:
        print(f"colorize: error: {exc}", file=sys.stderr)
        return 2
    jobs, missing = plan_jobs(args.inputs, args.out)
    allow_pillow_pixels(args.max_pixels)
    budget = args.max_memory - current_rss()  # what the model and runtime already use is not available
    failed: list[str] = []
    with tqdm(total=len(jobs), unit="img", desc="colorize", disable=args.quiet or None) as bar:
        for batch, refused in memory_batches(jobs, args.batch_size, budget):
            failed += refused
            if batch:
                failed += colorize_batch(bundle, batch, args.decode or method,
                                         temperature if args.temperature is None else args.temperature,
                                         args.max_pixels, args.batch_size, args.tta, args.lightness,
                                         (args.regions, args.region_min_pixels))
            bar.update(len(batch) + len(refused))
    for line in missing + failed:
        print(f"colorize: error: {line}", file=sys.stderr)
    print(f"colorize: {len(jobs) - len(failed)} of {len(jobs)} pictures written to {args.out}"
          + (f"; {len(failed) + len(missing)} failed" if failed or missing else ""), file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
