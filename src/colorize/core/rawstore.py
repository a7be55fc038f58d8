"""The raw data set on disk: deterministic tar shards of original image files plus `manifest.json`.

`data/raw/raw-00000.tar`, `raw-00001.tar`, ... hold members named `<id><ext>` in id order (mtime 0, uid/gid
0, no user names, mode 0644), each shard about `fetch.shard_bytes`. A few large shards instead of one file
per image keep DVC's hashing, caching and pushing fast at 100,000 images.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from colorize.core.errors import RawStoreError

MANIFEST_NAME = "manifest.json"
# The extra set's manifest and resized index record its source here (None: extra.source is off).
EXTRA_SOURCE_KEY = "extra_source"
SHARD_PATTERN = "raw-{:05d}.tar"
_BLOCK = tarfile.BLOCKSIZE


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def member_bytes(size: int) -> int:
    """Bytes a member of `size` takes in a tar: a header block plus the data padded to whole blocks."""
    return _BLOCK + -(-size // _BLOCK) * _BLOCK


def write_shards(folder: Path, members: Iterable[tuple[str, int, Callable[[], bytes]]],
                 shard_bytes: int) -> list[str]:
    """Write (name, size, read) members, in the given order, into shards of about `shard_bytes` each
    (a member bigger than that gets a shard of its own); return each member's shard file name."""
    shard_of: list[str] = []
    archive: tarfile.TarFile | None = None
    shard_name, shards, used = "", 0, 0
    try:
        for name, size, read in members:
            if archive is None or (used and used + member_bytes(size) > shard_bytes):
                if archive is not None:
                    archive.close()
                shard_name = SHARD_PATTERN.format(shards)
                archive = tarfile.open(folder / shard_name, "w", format=tarfile.USTAR_FORMAT)
                shards, used = shards + 1, 0
            data = read()
            if len(data) != size:
                raise RawStoreError(f"{name}: expected {size} bytes, got {len(data)}")
            archive.addfile(_tar_info(name, size), io.BytesIO(data))
            used += member_bytes(size)
            shard_of.append(shard_name)
    finally:
        if archive is not None:
            archive.close()
    return shard_of


def read_manifest(raw_dir: Path) -> dict[str, Any]:
    """The raw data set's manifest (accepted, skipped, counts); `RawStoreError` if missing or unreadable."""
    path = Path(raw_dir) / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise RawStoreError(f"{path} not found: run the fetch stage first (dvc repro fetch)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RawStoreError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("accepted"), list):
        raise RawStoreError(f"{path} is not a raw data set manifest")
    return manifest


def iter_raw(raw_dir: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (id, original file bytes) for every accepted image, in manifest (id) order; each file's
    sha256 is checked against the manifest."""
    raw_dir = Path(raw_dir)
    accepted = read_manifest(raw_dir)["accepted"]
    at = 0
    for shard in dict.fromkeys(entry["shard"] for entry in accepted):  # shards in order of first use
        path = raw_dir / shard
        try:
            archive = tarfile.open(path, "r:")
        except (OSError, tarfile.TarError) as exc:
            raise RawStoreError(f"{path}: cannot open shard: {exc}") from None
        with archive:
            for info in archive:
                if at >= len(accepted) or accepted[at]["shard"] != shard:
                    raise RawStoreError(f"{path}: member {info.name!r} is not in the manifest")
                entry = accepted[at]
                if info.name.split(".", 1)[0] != entry["id"] or not info.isreg():
                    raise RawStoreError(f"{path}: member {info.name!r} where the manifest has id {entry['id']}")
                member = archive.extractfile(info)
                data = member.read() if member is not None else b""
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise RawStoreError(f"{path}: {info.name} does not match its sha256 in the manifest")
                at += 1
                yield entry["id"], data
    if at != len(accepted):
        raise RawStoreError(f"{raw_dir}: {len(accepted) - at} images of the manifest are missing from the shards")
