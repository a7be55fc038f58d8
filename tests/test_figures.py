"""figures.py: deterministic PNG bytes, swatch and strip geometry and colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from colorize.core.figures import (
    LABEL_HEIGHT,
    png_bytes,
    save_png,
    strip,
    swatch,
    upscale,
)


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def palette() -> np.ndarray:
    return np.random.default_rng(11).integers(0, 256, size=(20, 3), dtype=np.uint8)


def test_png_bytes_are_deterministic_and_lossless(palette):
    image = swatch(palette)
    first, second = png_bytes(image), png_bytes(swatch(palette.copy()))
    assert first == second
    assert np.array_equal(decode(first), np.asarray(image))
    # No time or text chunks that would make equal pictures differ.
    assert b"tIME" not in first and b"tEXt" not in first and b"iTXt" not in first


def test_save_png_writes_the_same_bytes(tmp_path, palette):
    save_png(tmp_path / "out" / "swatch.png", swatch(palette))
    assert (tmp_path / "out" / "swatch.png").read_bytes() == png_bytes(swatch(palette))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["swatch.png"]


def test_swatch_geometry_and_colours(palette):
    cell, columns = 10, 16
    pixels = np.asarray(swatch(palette, cell=cell, columns=columns))
    assert pixels.shape == (2 * cell, columns * cell, 3)
    for i, colour in enumerate(palette):
        y, x = (i // columns) * cell, (i % columns) * cell
        block = pixels[y:y + cell, x:x + cell]
        assert np.all(block == colour), i
    # The unused cells after the last colour stay white.
    assert np.all(pixels[cell:, 4 * cell:] == 255)


def test_strip_geometry_and_panels():
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    cell = 32
    image = np.asarray(strip([colour, gray], ["colour", "gray"], cell=cell))
    assert image.shape == (cell + LABEL_HEIGHT, 2 * cell, 3)
    panels = image[LABEL_HEIGHT:]
    scale = cell // 4
    assert np.array_equal(panels[::scale, :cell:scale], colour)
    assert np.array_equal(panels[::scale, cell::scale], np.repeat(gray[..., None], 3, axis=-1))
    # Each panel has a dark caption above it (the default font is antialiased).
    assert image[:LABEL_HEIGHT, :cell].min() < 128 and image[:LABEL_HEIGHT, cell:].min() < 128


def test_strip_needs_one_title_per_image():
    with pytest.raises(ValueError, match="title"):
        strip([np.zeros((2, 2, 3), np.uint8)] * 2, ["one"])


def test_upscale_is_nearest_neighbour():
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [9, 9, 9]]], np.uint8)
    big = np.asarray(upscale(rgb, 6))
    assert big.shape == (6, 6, 3)
    assert np.array_equal(big, rgb.repeat(3, axis=0).repeat(3, axis=1))

