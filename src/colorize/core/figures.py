"""Picture outputs: palette swatch and side-by-side image strips, as deterministic PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from colorize.core.artifacts import write_bytes_atomic

LABEL_HEIGHT = 14


def png_bytes(image: Image.Image) -> bytes:
    """PNG with fixed settings and no text or time chunks, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def save_png(path: str | Path, image: Image.Image) -> None:
    write_bytes_atomic(path, png_bytes(image))


def upscale(rgb: np.ndarray, cell: int) -> Image.Image:
    """Nearest-neighbour upscale so single pixels stay visible."""
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    return image.resize((cell, cell), Image.Resampling.NEAREST)


def strip(images: Sequence[np.ndarray], titles: Sequence[str], cell: int = 128) -> Image.Image:
    """One row of equally sized panels with a caption above each."""
    if len(images) != len(titles):
        raise ValueError("one title per image")
    font = ImageFont.load_default()
    canvas = Image.new("RGB", (cell * len(images), cell + LABEL_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (rgb, title) in enumerate(zip(images, titles, strict=True)):
        rgb = np.asarray(rgb)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=-1)
        canvas.paste(upscale(rgb, cell), (i * cell, LABEL_HEIGHT))
        draw.text((i * cell + 2, 1), title[: cell // 6], fill=(0, 0, 0), font=font)
    return canvas


def swatch(palette: np.ndarray, cell: int = 24, columns: int = 16) -> Image.Image:
    """The palette as a grid of squares, index order left to right, top to bottom."""
    rows = -(-len(palette) // columns)
    canvas = Image.new("RGB", (cell * columns, cell * rows), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, colour in enumerate(np.asarray(palette, dtype=np.uint8)):
        x, y = (i % columns) * cell, (i // columns) * cell
        draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=tuple(int(c) for c in colour))
    return canvas

