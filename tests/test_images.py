"""decode_image / inspect_image: every kind of bad or unusual image file is decided correctly.

The builders here (encode, png16, bomb_png, ...) also plant the messy folder in test_ingest.py.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from colorize.core.images import (
    ImageRejected,
    decode_image,
    has_colour,
    inspect_image,
    pixel_id,
)

RULES = {"max_pixels": 64_000_000, "min_side": 8, "keep_gray": False}


def colourful(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A seeded random RGB array (certainly coloured)."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **save: object) -> bytes:
    """Bytes of an image (or a uint8 array) saved in `fmt`."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): gray (H, W) or RGB (H, W, 3)."""
    colour_type = 0 if array.ndim == 2 else 2
    height, width = array.shape[:2]
    rows = b"".join(b"\x00" + np.ascontiguousarray(array[y], dtype=">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def bomb_png(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header claims width x height RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def gray_as_rgb(height: int, width: int) -> np.ndarray:
    """An RGB array with R = G = B everywhere (no colour, though stored as RGB)."""
    levels = np.random.default_rng(3).integers(0, 256, size=(height, width), dtype=np.uint8)
    return np.repeat(levels[..., None], 3, axis=2)


def animated_gif(colours: list[tuple[int, int, int]]) -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in colours]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def reject_reason(data: bytes, **rules: object) -> str:
    with pytest.raises(ImageRejected) as caught:
        inspect_image(data, **{**RULES, **rules})
    assert caught.value.detail and "\n" not in caught.value.detail
    return caught.value.reason


def test_empty_file_is_rejected():
    assert reject_reason(b"") == "empty_file"


def test_text_with_an_image_extension_is_not_an_image():
    assert reject_reason(b"<html><body>404 not found</body></html>") == "not_an_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_rejected(fmt):
    data = encode(colourful(64, 64), fmt)
    assert reject_reason(data[: len(data) // 2]) == "truncated"


def test_damaged_compressed_data_is_corrupt():
    data = bytearray(encode(colourful(32, 32)))
    start = data.index(b"IDAT") + 4
    data[start + 2:start + 40] = bytes(38)  # wreck the zlib stream; the chunk CRC no longer matches
    assert reject_reason(bytes(data)) in {"corrupt", "truncated"}
    assert reject_reason(bytes(data)) == "corrupt"


@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 10_000)])
def test_decompression_bomb_is_refused_before_decoding(monkeypatch, size):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    data = bomb_png(*size)
    assert len(data) < 200
    assert reject_reason(data) == "decompression_bomb"


def test_max_pixels_is_the_bomb_limit():
    data = encode(colourful(40, 40))
    assert reject_reason(data, max_pixels=1000) == "decompression_bomb"
    assert inspect_image(data, **{**RULES, "max_pixels": 1600}).width == 40


def test_rgba_keeps_its_alpha():
    array = np.dstack([colourful(10, 12), np.linspace(0, 255, 120, dtype=np.uint8).reshape(10, 12)])
    image = decode_image(encode(Image.fromarray(array, "RGBA")), RULES["max_pixels"])
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(image), array)


def test_la_becomes_rgba_with_its_alpha():
    la = Image.fromarray(np.dstack([np.full((9, 9), 100, np.uint8), np.full((9, 9), 7, np.uint8)]), "LA")
    image = decode_image(encode(la), RULES["max_pixels"])
    assert image.mode == "RGBA"
    assert np.asarray(image)[0, 0].tolist() == [100, 100, 100, 7]


def test_palette_with_transparency_becomes_rgba():
    palette_image = Image.new("P", (10, 10), 1)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette_image.paste(0, (0, 0, 5, 10))
    image = decode_image(encode(palette_image, transparency=0), RULES["max_pixels"])
    assert image.mode == "RGBA"
    pixels = np.asarray(image)
    assert pixels[0, 0, 3] == 0 and pixels[0, 9].tolist() == [255, 0, 0, 255]


def test_palette_without_transparency_becomes_rgb():
    palette_image = Image.fromarray(colourful(10, 10)).convert("P")
    assert decode_image(encode(palette_image), RULES["max_pixels"]).mode == "RGB"


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_cmyk_becomes_rgb(fmt):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    image = decode_image(encode(cmyk, fmt), RULES["max_pixels"])
    assert image.mode == "RGB"
    np.testing.assert_allclose(np.asarray(image)[8, 8], [255, 0, 0], atol=3)


def test_16_bit_gray_is_scaled_not_clipped():
    data = png16(np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16).repeat(8, axis=0))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = np.asarray(decode_image(data, RULES["max_pixels"]))
    assert pixels.dtype == np.uint8
    assert pixels[0, :, 0].tolist() == [0, 100, 255, 4]  # 1000 * 255 / 65535 = 3.9 -> 4


def test_16_bit_colour_is_reduced_to_8_bit():
    array = np.zeros((8, 8, 3), dtype=np.uint16)
    array[..., 0], array[..., 1], array[..., 2] = 65535, 257 * 128, 20000
    image = decode_image(png16(array), RULES["max_pixels"])
    assert image.mode == "RGB"
    np.testing.assert_allclose(np.asarray(image)[0, 0], [255, 128, 20000 * 255 / 65535], atol=1)


def test_exif_orientation_is_applied():
    array = colourful(2, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image = decode_image(encode(Image.fromarray(array), exif=exif), RULES["max_pixels"])
    assert image.size == (2, 3)
    np.testing.assert_array_equal(np.asarray(image), np.rot90(array, k=-1))


def test_animated_image_gives_its_first_frame():
    image = decode_image(animated_gif([(255, 0, 0), (0, 255, 0), (0, 0, 255)]), RULES["max_pixels"])
    assert np.asarray(image.convert("RGB"))[5, 5].tolist() == [255, 0, 0]


@pytest.mark.parametrize("image", [
    Image.fromarray(gray_as_rgb(16, 16)[..., 0]),                 # an L image
    Image.fromarray(gray_as_rgb(16, 16)),                         # RGB with R = G = B
    Image.fromarray(np.dstack([gray_as_rgb(16, 16), np.full((16, 16), 255, np.uint8)]), "RGBA"),
])
def test_images_without_colour_are_skipped_unless_kept(image):
    data = encode(image)
    assert reject_reason(data) == "no_colour"
    assert inspect_image(data, **{**RULES, "keep_gray": True}).width == 16


def test_colour_only_under_full_transparency_is_no_colour():
    rgba = np.dstack([gray_as_rgb(8, 8), np.full((8, 8), 255, np.uint8)])
    rgba[0, 0] = [255, 0, 0, 0]  # a red pixel nobody will ever see
    assert not has_colour(Image.fromarray(rgba, "RGBA"))
    rgba[0, 0, 3] = 1
    assert has_colour(Image.fromarray(rgba, "RGBA"))


def test_tiny_images_depend_on_min_side():
    data = encode(np.array([[[255, 0, 0]]], dtype=np.uint8))
    assert reject_reason(data) == "too_small"
    assert inspect_image(data, **{**RULES, "min_side": 1}).width == 1


def test_extreme_aspect_ratio_is_handled():
    info = inspect_image(encode(colourful(20, 7000)), **RULES)
    assert (info.width, info.height) == (7000, 20)
    assert reject_reason(encode(colourful(20, 7000)), min_side=21) == "too_small"


def test_the_id_depends_on_pixels_only():
    array = colourful(12, 10)
    as_png = inspect_image(encode(array), **RULES)
    as_bmp = inspect_image(encode(array, "BMP"), **RULES)
    opaque = inspect_image(encode(Image.fromarray(np.dstack([array, np.full((12, 10), 255, np.uint8)]), "RGBA")),
                           **RULES)
    assert as_png.id == as_bmp.id == opaque.id
    assert len(as_png.id) == 16 and int(as_png.id, 16) >= 0
    assert (as_png.format, as_bmp.format) == ("PNG", "BMP")
    changed = array.copy()
    changed[0, 0, 0] ^= 1
    assert inspect_image(encode(changed), **RULES).id != as_png.id
    # the same pixels in another shape are another picture
    assert pixel_id(Image.fromarray(array.reshape(10, 12, 3))) != as_png.id


def test_a_rejection_carries_its_reason_and_detail():
    rejected = ImageRejected("truncated", "image file is truncated")
    assert str(rejected) == "truncated: image file is truncated"
    assert (rejected.reason, rejected.detail) == ("truncated", "image file is truncated")


def test_an_image_cut_inside_its_header_is_corrupt_not_text():
    data = animated_gif([(255, 0, 0)])
    assert reject_reason(data[:12]) == "corrupt"
