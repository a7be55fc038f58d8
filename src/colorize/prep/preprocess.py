"""Per-pixel data stages, shard by shard: the row-by-row map they share, and square RGB -> gray (the encode
stage's RGB -> palette labels is colorize.quantize.encode: grayscale never imports K-means code)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from colorize.core.artifacts import SHARD_BYTES, ShardedArrayWriter, atomic_dir, read_index
from colorize.core.streaming import ShardedRows
from colorize.prep.transforms import NO_CROP, rgb_to_gray

CHUNK = 256


def map_rows(in_dir: Path, out_dir: Path, name: str, transform: Callable[[np.ndarray], np.ndarray],
             extra: dict[str, Any], desc: str, progress: bool = True) -> int:
    """Apply `transform` to every row of a sharded array, CHUNK rows at a time, into a new sharded array."""
    index = read_index(in_dir)
    with atomic_dir(out_dir) as tmp:
        writer = ShardedArrayWriter(tmp, name, SHARD_BYTES)
        rows = ShardedRows(in_dir)  # every shard verified first, then read a chunk at a time
        for start in tqdm(range(0, len(rows), CHUNK), desc=desc, unit="chunk", disable=not progress):
            writer.extend(index["ids"][start:start + CHUNK], transform(rows[start:start + CHUNK]))
        writer.close(extra)
    return len(writer.ids)


def gray_from_resized(resized_dir: Path, out_dir: Path, weights: Sequence[float], progress: bool = True) -> int:
    """gray = w . RGB / 255 for every image: sharded float32 (N, S, S)."""
    index = read_index(resized_dir)
    extra = {"weights": list(weights), "size": index["size"], "fill": index["fill"], "method": index["method"],
             "crop": index.get("crop", NO_CROP)}
    return map_rows(resized_dir, out_dir, "gray", lambda rgb: rgb_to_gray(rgb, weights), extra, "grayscale",
                    progress)

