"""preprocess.py (gray), encode.py (palette labels) and resizing.py (raw images -> square RGB), on tiny sharded data."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorize.core import rawstore
from colorize.core.artifacts import json_bytes, read_index, read_sharded, write_sharded
from colorize.core.errors import UserError
from colorize.core.images import decode_image
from colorize.prep import preprocess, resizing
from colorize.prep.transforms import rgb_to_gray, square_resize
from colorize.quantize import encode
from colorize.quantize.palette import nearest_palette_index

WEIGHTS = [0.21, 0.72, 0.007]
PALETTE = np.array([[0, 0, 0], [128, 128, 128], [255, 255, 255], [220, 40, 40], [40, 60, 220]], np.uint8)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def resized(tmp_path) -> tuple[Path, list[str], np.ndarray]:
    """A resized artifact of 11 random 6x6 images in 4 shards."""
    rgb = np.random.default_rng(8).integers(0, 256, size=(11, 6, 6, 3), dtype=np.uint8)
    ids = [f"{i:016x}" for i in range(11)]
    folder = tmp_path / "resized"
    folder.mkdir()
    write_sharded(folder, "images", ids, rgb, shard_bytes=3 * rgb[0].nbytes,
                  extra={"size": 6, "fill": [255, 255, 255], "method": "lanczos"})
    assert len(read_index(folder)["shards"]) == 4
    return folder, ids, rgb


# --- gray ---------------------------------------------------------------------------------------------

def test_gray_from_resized_matches_the_formula_for_every_id(tmp_path, resized):
    folder, ids, rgb = resized
    assert preprocess.gray_from_resized(folder, tmp_path / "gray", WEIGHTS, progress=False) == 11
    got_ids, gray = read_sharded(tmp_path / "gray")
    assert got_ids == ids
    assert gray.dtype == np.float32 and gray.shape == (11, 6, 6)
    np.testing.assert_array_equal(gray, rgb_to_gray(rgb, WEIGHTS))
    # A pixel checked by hand, so the test does not only compare the function with itself.
    r, g, b = (int(v) for v in rgb[7, 2, 3])
    assert gray[7, 2, 3] == pytest.approx((0.21 * r + 0.72 * g + 0.007 * b) / 255, abs=1e-6)
    # Rows stay with their ids when read back by id.
    assert np.array_equal(read_sharded(tmp_path / "gray", [ids[9], ids[1]])[1], gray[[9, 1]])


def test_gray_index_records_where_it_came_from(tmp_path, resized):
    folder, _, _ = resized
    preprocess.gray_from_resized(folder, tmp_path / "gray", WEIGHTS, progress=False)
    index = read_index(tmp_path / "gray")
    assert index["weights"] == WEIGHTS and index["size"] == 6 and index["fill"] == [255, 255, 255]
    assert index["row_shape"] == [6, 6] and index["dtype"] == "float32"


def test_gray_is_byte_identical_on_a_rerun(tmp_path, resized):
    folder, _, _ = resized
    preprocess.gray_from_resized(folder, tmp_path / "a", WEIGHTS, progress=False)
    preprocess.gray_from_resized(folder, tmp_path / "b", WEIGHTS, progress=False)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


# --- labels -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_encode_resized_labels_every_pixel(tmp_path, resized, monkeypatch, space):
    folder, ids, rgb = resized
    monkeypatch.setattr(preprocess, "CHUNK", 2)  # several chunks per shard
    assert encode.encode_resized(folder, tmp_path / "labels", PALETTE, space, progress=False) == 11
    got_ids, labels = read_sharded(tmp_path / "labels")
    assert got_ids == ids and labels.dtype == np.uint8 and labels.shape == (11, 6, 6)
    np.testing.assert_array_equal(labels, nearest_palette_index(rgb, PALETTE, space))
    index = read_index(tmp_path / "labels")
    assert index["k"] == len(PALETTE) and index["space"] == space


def test_encoding_palette_colours_gives_their_indices(tmp_path):
    rgb = PALETTE[np.arange(4 * 4 * 2) % len(PALETTE)].reshape(2, 4, 4, 3)
    folder = tmp_path / "resized"
    folder.mkdir()
    write_sharded(folder, "images", ["a", "b"], rgb, extra={"size": 4, "fill": [0, 0, 0], "method": "box"})
    encode.encode_resized(folder, tmp_path / "labels", PALETTE, "lab", progress=False)
    labels = read_sharded(tmp_path / "labels")[1]
    assert labels.reshape(-1).tolist() == (np.arange(32) % len(PALETTE)).tolist()


def test_encode_is_byte_identical_on_a_rerun(tmp_path, resized):
    folder, _, _ = resized
    encode.encode_resized(folder, tmp_path / "a", PALETTE, "rgb", progress=False)
    encode.encode_resized(folder, tmp_path / "b", PALETTE, "rgb", progress=False)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


# --- resize (colorize.prep.resizing, reading the raw store) ------------------------------------------------

def png_of(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def write_raw_store(folder: Path, files: dict[str, bytes], shard_bytes: int = 4096) -> None:
    """A raw store as fetch writes it: tar shards in id order plus a manifest."""
    folder.mkdir(parents=True)
    ordered = sorted(files)
    shard_of = rawstore.write_shards(
        folder, ((f"{i}.png", len(files[i]), lambda i=i: files[i]) for i in ordered), shard_bytes)
    accepted = [{"id": i, "sha256": hashlib.sha256(files[i]).hexdigest(), "shard": shard}
                for i, shard in zip(ordered, shard_of, strict=True)]
    manifest = {"accepted": accepted, "skipped": [], "counts": {"accepted": len(accepted)}}
    (folder / rawstore.MANIFEST_NAME).write_bytes(json_bytes(manifest))


def raw_images(count: int, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    files = {}
    for n in range(count):
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        if n % 3 == 0:
            array = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
            files[f"{n:016x}"] = png_of(array, "RGBA")
        else:
            files[f"{n:016x}"] = png_of(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    return files


def test_resize_raw_matches_square_resize_for_every_image(tmp_path):
    files = raw_images(9, seed=1)
    write_raw_store(tmp_path / "raw", files)
    assert len({e["shard"] for e in json.loads((tmp_path / "raw" / "manifest.json").read_text())["accepted"]}) > 1
    count = resizing.resize_raw(tmp_path / "raw", tmp_path / "resized", 8, [255, 0, 0], "bilinear",
                                workers=1, progress=False)
    assert count == 9
    ids, images = read_sharded(tmp_path / "resized")
    assert ids == sorted(files) and images.shape == (9, 8, 8, 3) and images.dtype == np.uint8
    for image_id, array in zip(ids, images, strict=True):
        expected = square_resize(decode_image(files[image_id], 2**31), 8, [255, 0, 0], "bilinear")
        assert np.array_equal(array, expected), image_id
    index = read_index(tmp_path / "resized")
    assert (index["size"], index["fill"], index["method"]) == (8, [255, 0, 0], "bilinear")
    # The grayscale stage reads what resize wrote.
    preprocess.gray_from_resized(tmp_path / "resized", tmp_path / "gray", WEIGHTS, progress=False)
    assert read_index(tmp_path / "gray")["size"] == 8


def test_resize_raw_pads_a_known_image(tmp_path):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[...] = (0, 200, 0)
    write_raw_store(tmp_path / "raw", {"0000000000000001": png_of(wide)})
    resizing.resize_raw(tmp_path / "raw", tmp_path / "resized", 8, [255, 255, 255], "lanczos",
                        workers=1, progress=False)
    image = read_sharded(tmp_path / "resized")[1][0]
    assert np.all(image[:2] == 255) and np.all(image[6:] == 255) and np.all(image[2:6] == (0, 200, 0))


def test_resize_raw_names_an_image_fetch_would_reject(tmp_path):
    files = raw_images(3, seed=2)
    files["00000000000000ff"] = b"not an image at all"
    write_raw_store(tmp_path / "raw", files)
    with pytest.raises(UserError, match="00000000000000ff") as info:
        resizing.resize_raw(tmp_path / "raw", tmp_path / "resized", 8, [255, 255, 255], "lanczos",
                            workers=1, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "resized").exists() and not list(tmp_path.glob(".tmp-*"))


def test_resize_raw_is_the_same_with_several_workers(tmp_path):
    # More images than one chunk, so the pool is used; run in a fresh interpreter (no TensorFlow
    # threads to fork).
    files = raw_images(resizing.CHUNK + 40, seed=3)
    write_raw_store(tmp_path / "raw", files, shard_bytes=64 * 1024)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from colorize.prep.resizing import resize_raw
        root = Path({str(tmp_path)!r})
        for name, workers in (("one", 1), ("two", 2)):
            resize_raw(root / "raw", root / name, 8, [255, 255, 255], "lanczos", workers=workers, progress=False)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    one, two = tree_bytes(tmp_path / "one"), tree_bytes(tmp_path / "two")
    assert one == two
    assert read_sharded(tmp_path / "one")[0] == sorted(files)
