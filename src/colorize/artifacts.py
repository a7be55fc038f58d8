"""Atomic, deterministic writers and readers for the pipeline's artifacts.

A stage killed at any moment must leave either its previous outputs or none: every file is written to a
temporary sibling (named `.tmp-*`, git- and DVC-ignored) and renamed into place, and a folder output is
built complete in a temporary folder and then renamed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".tmp-"
INDEX_NAME = "index.json"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files 0600; outputs get the usual mode, as an ordinary open() would give them.
FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent, f"{path.name}-")
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def json_bytes(obj: Any) -> bytes:
    """Stable JSON: sorted keys, fixed indentation, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npy_atomic(path: str | Path, array: np.ndarray) -> None:
    write_bytes_atomic(path, npy_bytes(array))


def clean_stale_temporaries(folder: str | Path, name: str = "") -> None:
    """Remove `.tmp-<name>*` leftovers of an interrupted earlier run next to an output."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for leftover in folder.glob(TMP_PREFIX + name + "*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path` whole, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only this output's own leftovers: another output in the same folder may be mid-write.
    clean_stale_temporaries(path.parent, f"{path.name}-")
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent))
    try:
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        if path.exists() or path.is_symlink():
            # Move the old output aside first so the rename below is a single step.
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-old-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class ShardedArrayWriter:
    """Append rows of one array (N, ...) and store them as a few `.npy` shards plus an index.

    Shards keep each file under `shard_bytes`, so large data sets never become one huge file nor
    one file per image. Use it inside `atomic_dir`.
    """

    def __init__(self, folder: Path, name: str, shard_bytes: int = 256 * 2**20):
        self.folder = Path(folder)
        self.name = name
        self.shard_bytes = shard_bytes
        self.ids: list[str] = []
        self.shards: list[dict[str, Any]] = []
        self._pending: list[np.ndarray] = []
        self._pending_bytes = 0
        self._row_shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None

    def append(self, row_id: str, row: np.ndarray) -> None:
        row = np.asarray(row)
        if self._row_shape is None:
            self._row_shape, self._dtype = row.shape, row.dtype
        elif row.shape != self._row_shape or row.dtype != self._dtype:
            raise ValueError(f"row {row_id!r} has shape {row.shape} {row.dtype}, "
                             f"expected {self._row_shape} {self._dtype}")
        self.ids.append(row_id)
        self._pending.append(row)
        self._pending_bytes += row.nbytes
        if self._pending_bytes >= self.shard_bytes:
            self._flush()

    def extend(self, row_ids: Sequence[str], rows: np.ndarray) -> None:
        for row_id, row in zip(row_ids, rows, strict=True):
            self.append(row_id, row)

    def _flush(self) -> None:
        if not self._pending:
            return
        file_name = f"{self.name}-{len(self.shards):05d}.npy"
        np.save(self.folder / file_name, np.stack(self._pending), allow_pickle=False)
        self.shards.append({"file": file_name, "count": len(self._pending)})
        self._pending, self._pending_bytes = [], 0

    def close(self, extra: dict[str, Any] | None = None) -> None:
        """Write the last shard and the index (ids, shards, row shape and dtype)."""
        self._flush()
        index = {
            "name": self.name,
            "ids": self.ids,
            "shards": self.shards,
            "row_shape": list(self._row_shape or ()),
            "dtype": str(self._dtype) if self._dtype is not None else None,
        }
        if extra:
            index.update(extra)
        (self.folder / INDEX_NAME).write_bytes(json_bytes(index))


def write_sharded(folder: Path, name: str, ids: Sequence[str], array: np.ndarray,
                  shard_bytes: int = 256 * 2**20, extra: dict[str, Any] | None = None) -> None:
    writer = ShardedArrayWriter(folder, name, shard_bytes)
    writer.extend(ids, array)
    writer.close(extra)


def read_index(folder: str | Path) -> dict[str, Any]:
    return read_json(Path(folder) / INDEX_NAME)


def read_sharded(folder: str | Path, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Load a sharded array; with `ids`, only those rows, in that order."""
    folder = Path(folder)
    index = read_index(folder)
    parts = [np.load(folder / shard["file"], allow_pickle=False) for shard in index["shards"]]
    if parts:
        array = np.concatenate(parts) if len(parts) > 1 else parts[0]
    else:
        array = np.zeros((0, *index["row_shape"]), dtype=index["dtype"] or "uint8")
    all_ids = list(index["ids"])
    if ids is None:
        return all_ids, array
    position = {row_id: i for i, row_id in enumerate(all_ids)}
    missing = [row_id for row_id in ids if row_id not in position]
    if missing:
        raise KeyError(f"{folder}: {len(missing)} ids not found, e.g. {missing[0]!r}")
    return list(ids), array[[position[row_id] for row_id in ids]]
