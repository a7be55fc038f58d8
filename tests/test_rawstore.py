"""The raw store: deterministic tar shards, and a reader that checks them against the manifest."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from colorize.core.artifacts import json_bytes
from colorize.core.errors import RawStoreError
from colorize.core.rawstore import iter_raw, member_bytes, read_manifest, write_shards


def files(n: int, size: int = 700) -> list[tuple[str, bytes]]:
    return [(f"{i:016x}", bytes([i % 256]) * (size + i)) for i in range(n)]


def store(folder: Path, items: list[tuple[str, bytes]], shard_bytes: int) -> list[str]:
    """Write shards plus a minimal manifest, as the fetch does."""
    folder.mkdir(parents=True, exist_ok=True)
    shard_of = write_shards(folder, ((f"{i}.png", len(d), lambda d=d: d) for i, d in items), shard_bytes)
    accepted = [{"id": i, "sha256": hashlib.sha256(d).hexdigest(), "shard": s}
                for (i, d), s in zip(items, shard_of, strict=True)]
    (folder / "manifest.json").write_bytes(json_bytes({"accepted": accepted, "skipped": [], "counts": {}}))
    return shard_of


def test_shards_are_deterministic_and_normalised(tmp_path):
    items = files(10)
    store(tmp_path / "a", items, 4096)
    store(tmp_path / "b", items, 4096)
    shards = sorted(p.name for p in (tmp_path / "a").glob("raw-*.tar"))
    assert shards == sorted(p.name for p in (tmp_path / "b").glob("raw-*.tar")) and len(shards) > 1
    for name in shards:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with tarfile.open(tmp_path / "a" / name) as archive:
            for info in archive:
                assert (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode) == (0, 0, 0, "", "", 0o644)
                assert info.isreg()


def test_shards_split_by_size_and_a_big_file_gets_its_own(tmp_path):
    items = files(6, size=1000) + [("f" * 16, bytes(10_000))]
    shard_of = store(tmp_path, items, shard_bytes=3 * member_bytes(1005))
    assert shard_of == ["raw-00000.tar"] * 3 + ["raw-00001.tar"] * 3 + ["raw-00002.tar"]
    with tarfile.open(tmp_path / "raw-00000.tar") as archive:
        assert archive.getnames() == [f"{i:016x}.png" for i in range(3)]


def test_iter_raw_yields_ids_and_original_bytes_in_order(tmp_path):
    items = files(9)
    store(tmp_path, items, 3000)
    assert list(iter_raw(tmp_path)) == items


def test_a_tampered_member_is_detected(tmp_path):
    items = files(3)
    store(tmp_path, items, 10**6)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["accepted"][1]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_bytes(json_bytes(manifest))
    with pytest.raises(RawStoreError, match=r"raw-00000.tar: 0000000000000001.png does not match its sha256"):
        list(iter_raw(tmp_path))


def test_a_manifest_that_disagrees_with_the_shards_is_detected(tmp_path):
    items = files(3)
    store(tmp_path, items, 10**6)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["accepted"].append(dict(manifest["accepted"][-1], id="ffffffffffffffff"))
    (tmp_path / "manifest.json").write_bytes(json_bytes(manifest))
    with pytest.raises(RawStoreError, match="1 images of the manifest are missing"):
        list(iter_raw(tmp_path))
    del manifest["accepted"][-2:]
    (tmp_path / "manifest.json").write_bytes(json_bytes(manifest))
    with pytest.raises(RawStoreError, match="is not in the manifest"):
        list(iter_raw(tmp_path))


def test_a_missing_or_broken_manifest_is_one_clear_line(tmp_path):
    with pytest.raises(RawStoreError, match=r"manifest.json not found: run the fetch stage first"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RawStoreError, match="is unreadable"):
        read_manifest(tmp_path)
