"""Rows of the sharded arrays read as needed, never whole: shards verified once, then read by position
(`os.pread`) behind an array-like reader, and seeded pixel samples drawn from them.

Memory then grows with the per-image manifest (ids, row positions) and a batch, not with the data set.
Nothing is memory-mapped: mapped pages that were read stay in the process's resident memory for as long as
the mapping lives, so one pass over a large split would count all of it; read pages stay in the kernel's
page cache instead, shared and reclaimable.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.artifacts import read_index, row_positions, verify_shard
from colorize.core.errors import ArtifactError


class ShardFile:
    """One shard of an index, verified before any row of it is used (digest, shape and dtype against its
    index entry; floating-point rows finite), then read a run of consecutive rows per system call."""

    def __init__(self, folder: Path, shard: dict[str, Any], dtype: np.dtype, row_shape: tuple[int, ...]):
        self.path = Path(folder) / shard["file"]
        self.data_offset = verify_shard(self.path, shard)
        self.dtype, self.row_shape = dtype, row_shape
        self.row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        self.count = int(shard["count"])
        self._fd = os.open(self.path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return self.count

    def rows(self, offsets: np.ndarray) -> np.ndarray:
        """The rows at `offsets` (any order, repeats allowed), as a new array."""
        order = np.argsort(offsets, kind="stable")
        ascending = offsets[order]
        out = np.empty((len(offsets), *self.row_shape), dtype=self.dtype)
        run_starts = np.flatnonzero(np.diff(ascending, prepend=-2) != 1)
        for first, stop in zip(run_starts, [*run_starts[1:], len(ascending)], strict=True):
            self._read_into(out[first:stop], int(ascending[first]))
        if np.array_equal(order, np.arange(len(order))):
            return out
        result = np.empty_like(out)
        result[order] = out
        return result

    def _read_into(self, block: np.ndarray, row: int) -> None:
        view = memoryview(block.reshape(-1).view(np.uint8))
        position, done = self.data_offset + row * self.row_bytes, 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], position + done)
            if n == 0:
                raise ArtifactError(f"{self.path} was truncated while being read (rerun `dvc repro`)")
            done += n


class ShardedRows:
    """Rows of a sharded array for `ids`, in that order, read from the shards' files when indexed.

    Behaves like a read-only (len(ids), *row_shape) array for `len`, `shape`, `dtype` and indexing by
    a slice or an integer array of positions (as AugmentedBatches does); `rows[positions]` returns a new
    ndarray.
    """

    def __init__(self, folder: str | Path, ids: Sequence[str] | None = None):
        folder = Path(folder)
        index = read_index(folder)
        self.dtype = np.dtype(index["dtype"] or "uint8")
        row_shape = tuple(index["row_shape"])
        self.shards = [ShardFile(folder, shard, self.dtype, row_shape) for shard in index["shards"]]
        starts = np.cumsum([0] + [len(shard) for shard in self.shards])
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
        shard_of = self.shard_of[positions]
        shards = np.unique(shard_of)
        if len(shards) == 1:
            return self.shards[shards[0]].rows(self.offset[positions])
        out = np.empty((len(positions), *self.shape[1:]), dtype=self.dtype)
        for shard in shards:
            wanted = np.flatnonzero(shard_of == shard)
            out[wanted] = self.shards[shard].rows(self.offset[positions[wanted]])
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

