"""Colorize a picture of any size: predict chroma at the model's size, apply it at full resolution.

The model sees what training saw (composite onto the fill colour, pad to a square, resize, weighted
gray). Its predicted colour is cropped to the picture's area and upsampled to the original size; a last
per-pixel offset makes the output's gray (w . RGB) equal the input's full-resolution gray, so only colour
is added (evaluate's default `match_gray`; `cielab` recombines only the a/b with the gray's lightness first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from colorize.core.colour import rgb_to_lab
from colorize.evaluate.decoding import DEFAULT_LIGHTNESS, LIGHTNESS_METHODS, match_gray
from colorize.prep.transforms import (
    DEFAULT_METHOD,
    NO_CROP,
    composite_on_fill,
    content_size,
    drawing_box,
    rgb_to_gray,
    square_resize_gray,
)


@dataclass
class Prepared:
    """One picture ready for the model: full-resolution gray (H, W) and the model input (S, S)."""

    gray: np.ndarray
    model_input: np.ndarray
    box: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) the model saw, if cropped


def prepare(image: Image.Image, size: int, fill: Sequence[int], weights: Sequence[float],
            method: str = DEFAULT_METHOD, crop: str = NO_CROP) -> Prepared:
    """Full-resolution gray and the model's padded, resized gray input.

    The gray is taken first, at full resolution, so two pictures with equal gray get equal results
    whatever their colours; resizing then matches the pipeline's (resize, then gray) up to rounding.
    With `crop: content` the model sees only the box around the drawing, as in training.
    """
    composited = composite_on_fill(image, fill)
    gray = rgb_to_gray(np.asarray(composited, dtype=np.uint8), weights)
    fill_gray = float(np.dot(weights, fill)) / 255.0
    box = drawing_box(composited, fill) if crop == "content" else None
    seen = gray if box is None else gray[box[1]:box[3], box[0]:box[2]]
    small = square_resize_gray(seen, size, fill_gray, method, high=float(sum(weights)))
    return Prepared(gray=gray, model_input=small, box=box)


def content_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the picture inside its padded size x size square (as ImageOps.pad places it)."""
    w, h = content_size(width, height, size)
    return round((size - h) / 2), round((size - w) / 2), h, w


def upsample(channel: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one float channel."""
    image = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


# The full-resolution colour work in float32 closed form, with skimage's constants (sRGB, D65, 2°):
# the same formulas as colorize.core.colour (skimage's rgb2lab/lab2rgb in float64) up to float32 rounding,
# several times faster on a large picture.
_XYZ_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_RGB_FROM_XYZ = np.array([[3.24048134, -1.53715152, -0.49853633],
                          [-0.96925495, 1.87599, 0.04155593],
                          [0.05564664, -0.20404134, 1.05731107]], dtype=np.float32)


def gray_lightness_fast(gray01: np.ndarray) -> np.ndarray:
    """CIELAB L of the sRGB colour (g, g, g): its Y is the linearised g (the Y row of sRGB sums to 1)."""
    g = np.asarray(gray01, dtype=np.float32)
    y = np.where(g > 0.04045, ((g + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4), g / np.float32(12.92))
    f = np.where(y > 0.008856, np.cbrt(y), np.float32(7.787) * y + np.float32(16 / 116))
    return np.float32(116) * f - np.float32(16)


def xyz_to_linear_rgb(xyz: np.ndarray) -> np.ndarray:
    """(..., 3) XYZ -> linear sRGB in float32, products and sums written out: `xyz @ M.T` goes to BLAS,
    whose rounding (FMA or not) depends on the CPU; this gives the same bytes on every CPU."""
    return np.stack([xyz[..., 0] * row[0] + xyz[..., 1] * row[1] + xyz[..., 2] * row[2]
                     for row in _RGB_FROM_XYZ], axis=-1)


def lab_to_rgb_fast(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIELAB planes (H, W) -> sRGB float32 (H, W, 3) in [0, 255], clipped per channel like lab_to_rgb."""
    fy = (lightness + np.float32(16)) / np.float32(116)
    f = np.stack([a / np.float32(500) + fy, fy, np.maximum(fy - b / np.float32(200), 0)], axis=-1)
    xyz = np.where(f > 0.2068966, f * f * f, (f - np.float32(16 / 116)) / np.float32(7.787)) * _XYZ_WHITE
    linear = xyz_to_linear_rgb(xyz)
    encoded = np.where(linear > 0.0031308,
                       np.float32(1.055) * np.maximum(linear, 0) ** np.float32(1 / 2.4) - np.float32(0.055),
                       linear * np.float32(12.92))
    return np.clip(encoded, 0, 1) * np.float32(255)


def apply_chroma(prepared: Prepared, predicted_rgb: np.ndarray, weights: Sequence[float],
                 lightness: str = DEFAULT_LIGHTNESS) -> np.ndarray:
    """The model's colours (S, S, 3) on the full-resolution picture: uint8 (H, W, 3).

    `lightness` as evaluate's (decoding.LIGHTNESS_METHODS): `match_gray` upsamples the predicted colour
    whole (its CIELAB L too), `cielab` only its a/b on the gray's own lightness; either way the last
    per-pixel shift (decoding.match_gray) gives the output the input's gray at full resolution.
    """
    if lightness not in LIGHTNESS_METHODS:
        raise ValueError(f"lightness must be one of {', '.join(LIGHTNESS_METHODS)}, got {lightness!r}")
    height, width = prepared.gray.shape
    x0, y0, x1, y1 = prepared.box or (0, 0, width, height)
    top, left, h, w = content_box(y1 - y0, x1 - x0, predicted_rgb.shape[0])
    lab = rgb_to_lab(predicted_rgb[top:top + h, left:left + w])
    # Outside a cropped box (the page) and for `cielab`: the gray's own lightness, no chroma.
    planes = [gray_lightness_fast(prepared.gray), np.zeros((height, width), np.float32),
              np.zeros((height, width), np.float32)]
    for channel in range(0 if lightness == "match_gray" else 1, 3):
        planes[channel][y0:y1, x0:x1] = upsample(lab[..., channel], y1 - y0, x1 - x0)
    rgb = lab_to_rgb_fast(*planes)
    return match_gray(np.rint(rgb).astype(np.uint8), prepared.gray, weights)
