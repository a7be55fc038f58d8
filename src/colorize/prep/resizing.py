"""The resize stage's work: raw image bytes -> square RGB arrays, on every core, in input order."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from colorize.core.artifacts import SHARD_BYTES, ShardedArrayWriter, atomic_dir
from colorize.core.errors import UserError
from colorize.core.images import ImageRejected, decode_image
from colorize.core.parallel import ordered_map
from colorize.core.rawstore import EXTRA_SOURCE_KEY, iter_raw, read_manifest
from colorize.prep.transforms import NO_CROP, square_resize

CHUNK = 256
# fetch already refused decompression bombs with its own limit; this only stops a corrupt raw store.
DECODE_PIXEL_LIMIT = 2**31


def _resize_chunk(items: list[tuple[str, bytes]], size: int, fill: Sequence[int], method: str,
                  crop: str = NO_CROP) -> list[tuple[str, np.ndarray]]:
    out = []
    for image_id, data in items:
        try:
            image = decode_image(data, DECODE_PIXEL_LIMIT)
        except ImageRejected as exc:
            # fetch accepted these very bytes, so this means data/raw was altered by hand.
            raise UserError(f"data/raw holds an image fetch would reject: {image_id} ({exc})") from None
        out.append((image_id, square_resize(image, size, fill, method, crop)))
    return out


def _chunks(items: Iterator[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    while chunk := list(islice(items, size)):
        yield chunk


def resize_raw(raw_dir: Path, out_dir: Path, size: int, fill: Sequence[int], method: str,
               workers: int | None = None, progress: bool = True, crop: str = NO_CROP,
               record: dict[str, Any] | None = None) -> int:
    """Decode every raw image, composite onto `fill`, (crop to the drawing,) pad to a square, resize:
    sharded uint8 (N, S, S, 3). `record` adds keys to the index."""
    total = read_manifest(raw_dir)["counts"]["accepted"]
    workers = workers or (os.cpu_count() or 1)
    chunks = _chunks(iter_raw(raw_dir), CHUNK)
    with atomic_dir(out_dir) as tmp, tqdm(total=total, desc="resize", unit="img", disable=not progress) as bar:
        writer = ShardedArrayWriter(tmp, "images", SHARD_BYTES)
        work = partial(_resize_chunk, size=size, fill=list(fill), method=method, crop=crop)
        # Output order is input order, so the result does not depend on scheduling.
        for rows in ordered_map(work, chunks, workers if total > CHUNK else 1):
            for image_id, array in rows:
                writer.append(image_id, array)
            bar.update(len(rows))
        writer.close({"size": size, "fill": list(fill), "method": method, "crop": crop, **(record or {})})
    return len(writer.ids)


def resize_extra(raw_dir: Path, out_dir: Path, size: int, fill: Sequence[int], method: str,
                 crop: str = NO_CROP, progress: bool = True) -> tuple[str | None, int]:
    """The extra set resized exactly as the training set, its index recording the source (None: off, and
    no image); returns (source, images)."""
    manifest = read_manifest(raw_dir)
    if EXTRA_SOURCE_KEY not in manifest:
        raise UserError(f"{raw_dir} is not an extra set (its manifest records no source): rerun `dvc repro "
                        f"fetch_extra`")
    source = manifest[EXTRA_SOURCE_KEY]
    count = resize_raw(raw_dir, out_dir, size, fill, method, progress=progress, crop=crop,
                       record={EXTRA_SOURCE_KEY: source})
    return source, count
