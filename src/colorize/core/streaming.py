"""Rows of the sharded arrays read as needed, never whole: memory-mapped `.npy` shards behind an
array-like reader, and seeded pixel samples drawn from them.

Memory then grows with the per-image manifest (ids, row positions) and a batch, not with the data set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.artifacts import (
    read_index,
    require_finite,
    row_positions,
    verify_shard,
)


def open_shard(folder: Path, shard: dict[str, Any]) -> np.ndarray:
    """Memory-map one shard of an index, verified first (digest, shape, dtype against its index entry;
    floating-point rows finite), before any row of it is used."""
    path = Path(folder) / shard["file"]
    verify_shard(path, shard)
    rows = np.load(path, mmap_mode="r", allow_pickle=False)
    require_finite(path, rows)
    return rows


class ShardedRows:
    """Rows of a sharded array for `ids`, in that order, read from memory-mapped shards when indexed.

    Behaves like a read-only (len(ids), *row_shape) array for `len`, `shape`, `dtype` and indexing by
    an integer array of positions (as AugmentedBatches does); `rows[positions]` returns a new ndarray.
    """

    def __init__(self, folder: str | Path, ids: Sequence[str] | None = None):
        folder = Path(folder)
        index = read_index(folder)
        self.shards = [open_shard(folder, shard) for shard in index["shards"]]
        self.dtype = np.dtype(index["dtype"] or "uint8")
        row_shape = tuple(index["row_shape"])
        starts = np.cumsum([0] + [int(shard["count"]) for shard in index["shards"]])
        all_ids = index["ids"]
        rows = np.arange(len(all_ids), dtype=np.int64) if ids is None else row_positions(folder, all_ids, ids)
        self.shard_of = (np.searchsorted(starts, rows, side="right") - 1).astype(np.int32)
        self.offset = rows - starts[self.shard_of]
        self.shape = (len(rows), *row_shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions: Any) -> np.ndarray:
        if isinstance(positions, slice):
            positions = np.arange(len(self))[positions]
        positions = np.asarray(positions, dtype=np.int64)
        if positions.ndim != 1:
            raise TypeError("ShardedRows takes a slice or a 1-D array of row positions")
        out = np.empty((len(positions), *self.shape[1:]), dtype=self.dtype)
        shard_of, offset = self.shard_of[positions], self.offset[positions]
        for shard in np.unique(shard_of):
            wanted = shard_of == shard
            order = np.argsort(offset[wanted], kind="stable")  # read each shard front to back
            out[np.flatnonzero(wanted)[order]] = self.shards[shard][offset[wanted][order]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[np.arange(len(self))]
        return whole if dtype is None else whole.astype(dtype)

    def chunks(self, rows: int = 1024) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most `rows` rows, in order."""
        for start in range(0, len(self), rows):
            yield self[np.arange(start, min(start + rows, len(self)))]


def sample_pixels_streamed(images: ShardedRows | np.ndarray, count: int, seed: int,
                           chunk_images: int = 1024) -> np.ndarray:
    """colorize.quantize.palette.sample_pixels (the same seeded draw, the same pixels) over images read a chunk
    at a time: only images holding a drawn pixel are read."""
    per_image = int(np.prod(images.shape[1:-1]))
    total = len(images) * per_image
    if total <= count:
        return np.asarray(images).reshape(-1, images.shape[-1]).copy()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=count, replace=False))
    out = np.empty((count, images.shape[-1]), dtype=images.dtype)
    image_of = chosen // per_image
    for start in range(0, len(images), chunk_images):
        lo, hi = np.searchsorted(image_of, [start, start + chunk_images])
        if lo == hi:
            continue
        needed = np.unique(image_of[lo:hi])
        block = images[needed].reshape(len(needed), per_image, -1)
        out[lo:hi] = block[np.searchsorted(needed, image_of[lo:hi]), chosen[lo:hi] % per_image]
    return out

