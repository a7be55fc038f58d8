"""Atomic, deterministic writers and readers for the pipeline's artifacts.

A stage killed at any moment must leave either its previous outputs or none: every file is written to a
temporary file and renamed into place, and a folder output is built complete in a temporary folder and
then renamed. Temporaries live in this process's own folder of the project's scratch place (`.tmp/`,
see colorize.core.scratch), which every stage start sweeps of dead runs' leftovers.

Every artifact verifies itself on read: the index of a sharded array records each shard's sha256, shape
and dtype, and readers check them while loading; a bad file is an `ArtifactError` naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.errors import ArtifactError
from colorize.core.scratch import DIR_MODE, FILE_MODE, work_dir

TMP_PREFIX = ".tmp-"
INDEX_NAME = "index.json"


_CHUNK = 8 * 2**20


# Array shards of about this size: a few files per split, each small enough to load or map at once.
SHARD_BYTES = 256 * 2**20


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
    with work_dir(path) as scratch:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=scratch)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    _fsync_dir(path.parent)


def json_bytes(obj: Any) -> bytes:
    """Stable JSON: sorted keys, fixed indentation, trailing newline."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN or infinity: never written as the non-standard literal `NaN`
        raise ArtifactError(f"refusing to write a non-finite number to JSON ({exc})") from None
    return (text + "\n").encode("utf-8")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


def read_json(path: str | Path) -> Any:
    """Parse a JSON artifact; malformed content is an `ArtifactError` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); rerun `dvc repro` to restore or recompute it"
                            ) from None


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


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
    with work_dir(path) as scratch:  # removed with whatever is left in it, on success or failure
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=scratch))
        os.chmod(tmp, DIR_MODE)  # mkdtemp gives 0700; the output folder is readable as the umask allows
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        _swap_in(tmp, path, scratch)
    _fsync_dir(path.parent)


def _swap_in(tmp: Path, path: Path, scratch: Path) -> None:
    """Rename `tmp` to `path`, moving an old `path` aside first so the final rename is a single step."""
    for _ in range(10):  # another writer of the same path may swap between our steps: try again
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{path.name}-old-", dir=scratch))
            try:
                os.replace(path, old / "x")
            except FileNotFoundError:
                pass
        try:
            os.replace(tmp, path)
            return
        except OSError as exc:  # ENOTEMPTY / EEXIST: a concurrent writer put a folder there meanwhile
            if not (path.exists() or path.is_symlink()):
                raise
            last = exc
    raise last


class ShardedArrayWriter:
    """Append rows of one array (N, ...) and store them as a few `.npy` shards plus an index.

    Shards keep each file under `shard_bytes`, so large data sets never become one huge file nor
    one file per image. Use it inside `atomic_dir`.
    """

    def __init__(self, folder: Path, name: str, shard_bytes: int = SHARD_BYTES):
        self.folder = Path(folder)
        self.name = name
        self.shard_bytes = shard_bytes
        self.ids: list[str] = []
        self.shards: list[dict[str, Any]] = []
        # Rows of the shard being filled go straight to a raw file, so memory stays one row, whatever the shard size.
        self._pending_file: Any = None
        self._pending_count = 0
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
        if self._pending_file is None:
            self._pending_file = open(self.folder / f".{self.name}-pending.raw", "w+b")
        self._pending_file.write(np.ascontiguousarray(row).tobytes())
        self._pending_count += 1
        self._pending_bytes += row.nbytes
        if self._pending_bytes >= self.shard_bytes:
            self._flush()

    def extend(self, row_ids: Sequence[str], rows: np.ndarray) -> None:
        for row_id, row in zip(row_ids, rows, strict=True):
            self.append(row_id, row)

    def _flush(self) -> None:
        """Write the pending rows as one `.npy` shard, byte for byte what `np.save(np.stack(rows))` writes,
        copied from the raw file a chunk at a time."""
        if not self._pending_count:
            return
        file_name = f"{self.name}-{len(self.shards):05d}.npy"
        shape = (self._pending_count, *(self._row_shape or ()))
        header = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False, "shape": shape}
        raw, self._pending_file = self._pending_file, None
        with open(self.folder / file_name, "wb") as f:
            hashing = _HashingFile(f)
            np.lib.format.write_array_header_1_0(hashing, header)
            raw.seek(0)
            while block := raw.read(_CHUNK):
                hashing.write(block)
        raw.close()
        os.unlink(raw.name)
        self.shards.append({"file": file_name, "count": self._pending_count, "sha256": hashing.digest.hexdigest(),
                            "shape": list(shape), "dtype": str(self._dtype)})
        self._pending_count, self._pending_bytes = 0, 0

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
                  shard_bytes: int = SHARD_BYTES, extra: dict[str, Any] | None = None) -> None:
    writer = ShardedArrayWriter(folder, name, shard_bytes)
    writer.extend(ids, array)
    writer.close(extra)


def read_index(folder: str | Path) -> dict[str, Any]:
    """A sharded array's index, checked for the keys readers rely on."""
    path = Path(folder) / INDEX_NAME
    index = read_json(path)
    shards = index.get("shards") if isinstance(index, dict) else None
    if (not isinstance(shards, list) or not isinstance(index.get("ids"), list)
            or not all(isinstance(s, dict) and {"file", "count"} <= s.keys() for s in shards)):
        raise ArtifactError(f"{path} is not a sharded-array index; rerun `dvc repro` to restore or recompute it")
    if sum(int(s["count"]) for s in shards) != len(index["ids"]):
        raise ArtifactError(f"{path}: its shards hold {sum(int(s['count']) for s in shards)} rows but it lists "
                            f"{len(index['ids'])} ids")
    return index


class _HashingFile:
    """A file wrapper that hashes every byte read or written through it."""

    def __init__(self, f: Any):
        self.f, self.digest = f, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = self.f.readinto(buffer)
        self.digest.update(memoryview(buffer)[:n])
        return n

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.f.write(data)


def _shard_error(path: Path, what: str, expected: Any, actual: Any) -> ArtifactError:
    return ArtifactError(f"{path}: {what} mismatch, expected {expected}, got {actual} (corrupt or altered "
                         f"artifact; rerun `dvc repro -f` on the stage that writes it)")


def _read_header(f: _HashingFile, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read_header(f)
    except ValueError as exc:
        raise ArtifactError(f"{path} is not a valid .npy file ({exc})") from None


def _read_npy(f: _HashingFile, path: Path) -> np.ndarray:
    shape, fortran, dtype = _read_header(f, path)
    if dtype.hasobject:
        raise ArtifactError(f"{path} holds Python objects; refusing to load it")
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8)) if array.size else memoryview(b"")
    done = 0
    while done < len(view):
        n = f.readinto(view[done:done + _CHUNK])
        if not n:
            raise ArtifactError(f"{path} is truncated: {done} of {len(view)} data bytes")
        done += n
    return array


def load_shard(path: str | Path, entry: dict[str, Any], finite: bool = True) -> np.ndarray:
    """Load one shard, hashing while reading, and check it against its index `entry` (sha256, shape,
    dtype, count); with `finite`, floating-point data must hold no NaN or infinity."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            f = _HashingFile(raw)
            array = _read_npy(f, path)
            while f.read(_CHUNK):  # trailing bytes count in the checksum too
                pass
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}: rerun `dvc repro` to restore or recompute it") from None
    check_shard(path, entry, f.digest.hexdigest(), array.shape, array.dtype)
    if finite:
        require_finite(path, array)
    return array


def require_finite(path: Path, rows: np.ndarray, chunk_bytes: int = 2**24) -> None:
    """Floating-point rows must hold no NaN or infinity; checked ~`chunk_bytes` at a time (bounded
    temporaries)."""
    if rows.dtype.kind not in "fc":
        return
    step = max(1, chunk_bytes // max(1, rows[:1].nbytes))
    for start in range(0, len(rows), step):
        if not np.isfinite(rows[start:start + step]).all():
            raise _not_finite(path)


def _not_finite(path: Path) -> ArtifactError:
    return ArtifactError(f"{path} holds NaN or infinite values (corrupt artifact; rerun `dvc repro -f` on the "
                         f"stage that writes it)")


def check_shard(path: Path, entry: dict[str, Any], sha256: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Compare what was read with the index entry; the first difference is an `ArtifactError`."""
    if "sha256" not in entry:
        raise ArtifactError(f"{path}: its index records no sha256 (written by an older version); rerun "
                            f"`dvc repro` to recompute it")
    if sha256 != entry["sha256"]:
        raise _shard_error(path, "sha256", entry["sha256"], sha256)
    if list(shape) != list(entry.get("shape", shape)) or shape[:1] != (entry["count"],):
        raise _shard_error(path, "shape", tuple(entry.get("shape", (entry["count"],))), tuple(shape))
    if str(dtype) != entry.get("dtype", str(dtype)):
        raise _shard_error(path, "dtype", entry["dtype"], dtype)


def verify_shard(path: str | Path, entry: dict[str, Any]) -> int:
    """Check a shard file against its index entry without keeping it in memory (for readers that read rows
    by position): one streaming pass for the sha256 and, for floating-point data, that every value is
    finite; the .npy header for shape and dtype. Returns the byte offset of its first row."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            f = _HashingFile(raw)
            shape, fortran, dtype = _read_header(f, path)
            data_offset = raw.tell()
            finite = True
            while chunk := f.read(_CHUNK):  # _CHUNK is a multiple of every itemsize
                if finite and dtype.kind in "fc":
                    finite = bool(np.isfinite(np.frombuffer(chunk[:len(chunk) - len(chunk) % dtype.itemsize],
                                                            dtype=dtype)).all())
    except FileNotFoundError:
        raise ArtifactError(f"missing artifact {path}: rerun `dvc repro` to restore or recompute it") from None
    check_shard(path, entry, f.digest.hexdigest(), shape, dtype)
    if not finite:
        raise _not_finite(path)
    if fortran or dtype.hasobject:
        raise ArtifactError(f"{path} is not a C-ordered array of plain values (not written by this pipeline)")
    return data_offset


def read_sharded(folder: str | Path, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Load a sharded array, every shard verified; with `ids`, only those rows, in that order."""
    folder = Path(folder)
    index = read_index(folder)
    parts = [load_shard(folder / shard["file"], shard) for shard in index["shards"]]
    if parts:
        array = np.concatenate(parts) if len(parts) > 1 else parts[0]
    else:
        array = np.zeros((0, *index["row_shape"]), dtype=index["dtype"] or "uint8")
    all_ids = list(index["ids"])
    if ids is None:
        return all_ids, array
    return list(ids), array[row_positions(folder, all_ids, ids)]


def row_positions(folder: Path, all_ids: Sequence[str], ids: Sequence[str]) -> np.ndarray:
    """The row of each of `ids` among an artifact's `all_ids`; a KeyError names the artifact and the
    first missing id."""
    position = {row_id: i for i, row_id in enumerate(all_ids)}
    missing = [row_id for row_id in ids if row_id not in position]
    if missing:
        raise KeyError(f"{folder}: {len(missing)} ids not found, e.g. {missing[0]!r}")
    return np.fromiter((position[row_id] for row_id in ids), dtype=np.int64, count=len(ids))
