"""artifacts.py: atomic files and folders, stable JSON, sharded arrays that round-trip byte-identically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from colorize.core.artifacts import (
    INDEX_NAME,
    TMP_PREFIX,
    ShardedArrayWriter,
    atomic_dir,
    clean_stale_temporaries,
    json_bytes,
    load_shard,
    npy_bytes,
    read_index,
    read_json,
    read_sharded,
    verify_shard,
    write_bytes_atomic,
    write_json_atomic,
    write_sharded,
)
from colorize.core.errors import ArtifactError
from colorize.core.scratch import scratch_place


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(TMP_PREFIX + "*"))


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- single files -------------------------------------------------------------------------------------

def test_write_bytes_atomic_writes_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    write_bytes_atomic(target, b"first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert leftovers(tmp_path) == []
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_failed_write_keeps_the_previous_file_and_no_temporaries(tmp_path):
    target = tmp_path / "out.bin"
    write_bytes_atomic(target, b"good")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"good"
    assert leftovers(tmp_path) == []


def test_json_bytes_is_stable_whatever_the_key_order():
    a = json_bytes({"b": 1, "a": [1, 2], "c": {"y": 2, "x": 1}})
    b = json_bytes({"c": {"x": 1, "y": 2}, "a": [1, 2], "b": 1})
    assert a == b
    assert a.endswith(b"\n") and a.index(b'"a"') < a.index(b'"b"') < a.index(b'"c"')
    assert json_bytes({"name": "café"}) == '{\n  "name": "café"\n}\n'.encode()


def test_json_and_npy_round_trip(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"k": [1, 2.5, None]})
    assert read_json(tmp_path / "x.json") == {"k": [1, 2.5, None]}
    array = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    write_bytes_atomic(tmp_path / "x.npy", npy_bytes(array))
    loaded = np.load(tmp_path / "x.npy", allow_pickle=False)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)
    assert leftovers(tmp_path) == []


# --- folders ------------------------------------------------------------------------------------------

def test_atomic_dir_replaces_the_folder_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "old-only.txt").write_text("old")
        (tmp / "both.txt").write_text("old")
    with atomic_dir(out) as tmp:
        assert tmp != out and scratch_place(out) in tmp.parents and tmp.name.startswith(TMP_PREFIX)
        (tmp / "both.txt").write_text("new")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "deep.txt").write_text("deep")
    assert sorted(tree_bytes(out)) == ["both.txt", "nested/deep.txt"]
    assert (out / "both.txt").read_text() == "new"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_inside_atomic_dir_keeps_the_previous_folder(tmp_path, error):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("previous")
    before = tree_bytes(out)
    with pytest.raises(type(error)), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("half-written")
        (tmp / "b.txt").write_text("new file")
        raise error
    assert tree_bytes(out) == before
    assert leftovers(tmp_path) == []


def test_failure_without_a_previous_folder_leaves_nothing(tmp_path):
    with pytest.raises(ValueError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
        raise ValueError("stop")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_leaves_the_scratch_place_empty_and_outputs_readable(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "out"]


def test_clean_stale_temporaries_on_a_missing_folder_is_a_no_op(tmp_path):
    clean_stale_temporaries(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_atomic_dir_for_a_sibling_does_not_destroy_one_in_progress(tmp_path):
    with atomic_dir(tmp_path / "first") as first:
        (first / "a.txt").write_text("a")
        with atomic_dir(tmp_path / "second") as second:
            (second / "b.txt").write_text("b")
        assert (first / "a.txt").exists()
    assert (tmp_path / "first" / "a.txt").read_text() == "a"


# --- sharded arrays -----------------------------------------------------------------------------------

@pytest.fixture
def rows() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(3)
    ids = [f"img{i:03d}" for i in range(23)]
    return ids, rng.integers(0, 256, size=(23, 4, 4, 3), dtype=np.uint8)


def test_sharded_round_trip_with_several_shards(tmp_path, rows):
    ids, array = rows
    row_bytes = array[0].nbytes
    write_sharded(tmp_path, "images", ids, array, shard_bytes=5 * row_bytes, extra={"size": 4})
    index = read_index(tmp_path)
    assert [s["count"] for s in index["shards"]] == [5, 5, 5, 5, 3]
    assert [s["file"] for s in index["shards"]] == [f"images-{i:05d}.npy" for i in range(5)]
    assert index["row_shape"] == [4, 4, 3] and index["dtype"] == "uint8" and index["size"] == 4
    got_ids, got = read_sharded(tmp_path)
    assert got_ids == ids
    assert got.dtype == np.uint8 and np.array_equal(got, array)


def test_sharded_selection_by_ids_in_any_order(tmp_path, rows):
    ids, array = rows
    write_sharded(tmp_path, "images", ids, array, shard_bytes=4 * array[0].nbytes)
    wanted = ["img017", "img002", "img022", "img009"]
    got_ids, got = read_sharded(tmp_path, wanted)
    assert got_ids == wanted
    assert np.array_equal(got, array[[17, 2, 22, 9]])
    empty_ids, empty = read_sharded(tmp_path, [])
    assert empty_ids == [] and empty.shape == (0, 4, 4, 3)


def test_sharded_unknown_id_is_named(tmp_path, rows):
    ids, array = rows
    write_sharded(tmp_path, "images", ids, array)
    with pytest.raises(KeyError, match="nope"):
        read_sharded(tmp_path, ["img001", "nope"])


def test_same_data_gives_byte_identical_files(tmp_path, rows):
    ids, array = rows
    for name in ("a", "b"):
        with atomic_dir(tmp_path / name) as tmp:
            write_sharded(tmp, "images", ids, array.copy(), shard_bytes=7 * array[0].nbytes,
                          extra={"fill": [255, 255, 255]})
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert sorted(first) == sorted(second) and len(first) == 1 + 4
    assert first == second


def test_writer_rejects_a_row_of_another_shape(tmp_path):
    writer = ShardedArrayWriter(tmp_path, "gray")
    writer.append("a", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="'b'"):
        writer.append("b", np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="'c'"):
        writer.append("c", np.zeros((4, 4), np.float64))


def test_empty_writer_reads_back_empty(tmp_path):
    ShardedArrayWriter(tmp_path, "gray").close()
    ids, array = read_sharded(tmp_path)
    assert ids == [] and len(array) == 0
    assert json.loads((tmp_path / INDEX_NAME).read_text())["shards"] == []


# --- verification on read -----------------------------------------------------------------------------

def _stored(tmp_path: Path, array: np.ndarray | None = None) -> Path:
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 24 if array is None else array
    (tmp_path / "arr").mkdir()
    write_sharded(tmp_path / "arr", "arr", ["a", "b"], array)
    return tmp_path / "arr"


def test_index_records_each_shards_sha256_shape_and_dtype(tmp_path):
    import hashlib

    folder = _stored(tmp_path)
    (shard,) = read_index(folder)["shards"]
    assert shard["sha256"] == hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest()
    assert shard["shape"] == [2, 3, 4] and shard["dtype"] == "float32" and shard["count"] == 2
    verify_shard(folder / shard["file"], shard)


def test_one_flipped_byte_fails_naming_the_file_expected_and_actual(tmp_path):
    folder = _stored(tmp_path)
    (shard,) = read_index(folder)["shards"]
    data = bytearray((folder / shard["file"]).read_bytes())
    data[-1] ^= 0x01
    (folder / shard["file"]).write_bytes(bytes(data))
    for read in (lambda: read_sharded(folder), lambda: verify_shard(folder / shard["file"], shard)):
        with pytest.raises(ArtifactError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message and str(folder / shard["file"]) in message
        assert shard["sha256"] in message and "sha256 mismatch" in message


def test_a_shard_whose_shape_or_dtype_differs_from_its_index_is_refused(tmp_path):
    folder = _stored(tmp_path)
    index = read_index(folder)
    index["shards"][0]["dtype"] = "float64"
    (folder / INDEX_NAME).write_bytes(json_bytes(index))
    with pytest.raises(ArtifactError, match="dtype mismatch, expected float64, got float32"):
        load_shard(folder / index["shards"][0]["file"], index["shards"][0])
    index["shards"][0].update(dtype="float32", shape=[2, 3, 5])
    with pytest.raises(ArtifactError, match=r"shape mismatch, expected \(2, 3, 5\), got \(2, 3, 4\)"):
        load_shard(folder / index["shards"][0]["file"], index["shards"][0])


def test_non_finite_values_in_a_float_artifact_are_refused(tmp_path):
    # A consistent checksum (the writer itself stored an inf): the finiteness check still catches it.
    folder = _stored(tmp_path, np.array([[np.inf, 0.0], [0.5, 1.0]], dtype=np.float32))
    (shard,) = read_index(folder)["shards"]
    for read in (lambda: read_sharded(folder), lambda: verify_shard(folder / shard["file"], shard)):
        with pytest.raises(ArtifactError, match="NaN or infinite"):
            read()


def test_verification_checks_finiteness_across_chunk_boundaries(tmp_path, monkeypatch):
    import colorize.core.artifacts as artifacts

    monkeypatch.setattr(artifacts, "_CHUNK", 16)  # 4 float32 a chunk: the NaN sits in the fourth
    values = np.zeros((4, 10), dtype=np.float32)
    values[3, 5] = np.nan
    folder = _stored(tmp_path, values[:2])
    (shard,) = read_index(folder)["shards"]
    assert verify_shard(folder / shard["file"], shard) == len((folder / shard["file"]).read_bytes()) - 80
    (tmp_path / "arr").rename(tmp_path / "ok")
    folder = _stored(tmp_path, values[2:])
    (shard,) = read_index(folder)["shards"]
    with pytest.raises(ArtifactError, match="NaN or infinite"):
        verify_shard(folder / shard["file"], shard)


@pytest.mark.parametrize("damage", [b"", b"\x93NUMPY\x01\x00garbage", b"not an npy file at all"])
def test_truncated_or_malformed_shards_fail_in_one_line(tmp_path, damage):
    folder = _stored(tmp_path)
    (shard,) = read_index(folder)["shards"]
    (folder / shard["file"]).write_bytes(damage or (folder / shard["file"]).read_bytes()[:-7])
    with pytest.raises(ArtifactError) as caught:
        read_sharded(folder)
    assert str(folder / shard["file"]) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["{not json", '{"ids": ["a"], "shards": "x"}', '{"ids": [], "shards": []} trailing',
                                  '{"ids": ["a"], "shards": [{"file": "a.npy", "count": 2}]}'])
def test_malformed_index_fails_naming_it(tmp_path, text):
    folder = _stored(tmp_path)
    (folder / INDEX_NAME).write_text(text)
    with pytest.raises(ArtifactError) as caught:
        read_sharded(folder)
    assert str(folder / INDEX_NAME) in str(caught.value) and "\n" not in str(caught.value)


def test_json_refuses_non_finite_numbers():
    with pytest.raises(ArtifactError, match="non-finite"):
        json_bytes({"loss": float("nan")})


@pytest.mark.parametrize("dtype,row_shape", [("uint8", (5, 5, 3)), ("float32", (6, 6)), ("<i8", ())])
def test_writer_streams_each_shard_byte_for_byte_as_np_save(tmp_path, dtype, row_shape):
    rows = np.random.default_rng(0).integers(0, 200, size=(11, *row_shape)).astype(dtype)
    writer = ShardedArrayWriter(tmp_path, "rows", shard_bytes=4 * rows[0].nbytes)
    writer.extend([f"id{i}" for i in range(len(rows))], rows)
    writer.close()
    counts = [shard["count"] for shard in writer.shards]
    assert counts == [4, 4, 3]
    for shard, start in zip(writer.shards, (0, 4, 8), strict=True):
        expected = io.BytesIO()
        np.save(expected, np.stack(list(rows[start:start + shard["count"]])), allow_pickle=False)
        assert (tmp_path / shard["file"]).read_bytes() == expected.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == [INDEX_NAME, "rows-00000.npy", "rows-00001.npy",
                                                          "rows-00002.npy"]  # no raw spill file left
    assert read_sharded(tmp_path)[1].tobytes() == rows.tobytes()
