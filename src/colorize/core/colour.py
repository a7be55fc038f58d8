"""Colour-space conversions (sRGB <-> CIELAB, gray -> lightness, gray -> RGB).

Every conversion goes through scikit-image (D65, 2° observer) and processes pixels in bounded chunks, so
arrays of any size convert in a few hundred MB at most. Inputs are checked by `colorize.core.checks`.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
from skimage import color
from skimage.color.colorconv import xyz_from_rgb
from skimage.util import img_as_float64

from colorize.core.checks import check_gray, check_rgb
from colorize.core.errors import ArrayError

# Pixels converted per step: float64 temporaries of skimage stay around 100 MB.
CHUNK_PIXELS = 1 << 20
# Bisection steps of `reduce_chroma`: chroma is cut at most 2**-12 (0.03 units at chroma 130) too far.
CHROMA_STEPS = 12
# Linear-RGB slack of the gamut test: float rounding of a colour exactly on the gamut boundary.
GAMUT_TOLERANCE = 1e-9


# --- conversions --------------------------------------------------------------------------------------

def _convert_in_chunks(array: np.ndarray, convert, out_dtype: np.dtype, channels_out: int) -> np.ndarray:
    """Apply `convert` to flat pixel chunks (n, C) and reassemble the leading shape."""
    flat = array.reshape(-1, array.shape[-1])
    out = np.empty((flat.shape[0], channels_out), dtype=out_dtype)
    for start in range(0, flat.shape[0], CHUNK_PIXELS):
        out[start:start + CHUNK_PIXELS] = convert(flat[start:start + CHUNK_PIXELS])
    return out.reshape(*array.shape[:-1], channels_out)


@functools.cache
def _linear_levels() -> np.ndarray:
    """skimage.color.rgb2xyz's linearised sRGB value of each 8-bit level, by its own steps: the same
    float64 numbers it computes pixel by pixel (tests check the whole conversion equals rgb2lab's)."""
    levels = img_as_float64(np.arange(256, dtype=np.uint8))
    linear = levels.copy()
    mask = linear > 0.04045
    linear[mask] = np.power((linear[mask] + 0.055) / 1.055, 2.4)
    linear[~mask] /= 12.92
    return linear


def _rgb_chunk_to_lab(rgb: np.ndarray) -> np.ndarray:
    # rgb2lab's own steps, with the per-pixel power looked up per level (most of its time).
    xyz = _linear_levels()[rgb] @ xyz_from_rgb.T.astype(np.float64)
    return color.xyz2lab(xyz)


def rgb_to_lab(rgb_uint8: Any) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB float32 (..., 3): L in [0, 100], a and b roughly in [-128, 127];
    exactly skimage.color.rgb2lab's values."""
    rgb = check_rgb("rgb", rgb_uint8)
    return _convert_in_chunks(rgb, _rgb_chunk_to_lab, np.dtype(np.float32), 3)


def _lab_chunk_to_rgb(lab: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        # Out-of-gamut colours are clipped on purpose; skimage warns about each chunk.
        warnings.simplefilter("ignore", UserWarning)
        rgb01 = color.lab2rgb(lab.astype(np.float64))
    return np.rint(np.clip(rgb01, 0.0, 1.0) * 255.0)


def lab_to_rgb(lab: Any) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB uint8 (..., 3); colours outside the sRGB gamut are clipped per channel."""
    array = np.asarray(lab)
    if array.ndim < 1 or array.shape[-1] != 3:
        raise ArrayError(f"lab must have 3 channels in its last axis, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
        raise ArrayError("lab must be a finite float array")
    return _convert_in_chunks(array, _lab_chunk_to_rgb, np.dtype(np.uint8), 3)


def _gray_chunk_to_lightness(gray: np.ndarray) -> np.ndarray:
    rgb = np.repeat(gray.astype(np.float64), 3, axis=-1)
    return color.rgb2lab(rgb)[:, :1]


def gray_to_lightness(gray01: Any) -> np.ndarray:
    """CIELAB L (float32, same shape) of the gray image seen as the sRGB colour (g, g, g)."""
    gray = check_gray("gray", gray01)
    return _convert_in_chunks(gray[..., None], _gray_chunk_to_lightness, np.dtype(np.float32), 1)[..., 0]


def gray_to_rgb_uint8(gray01: Any) -> np.ndarray:
    """Gray in [0, 1] as uint8 RGB, round(255 g) in all three channels: the `gray` baseline and the gray
    panel of every figure (float32 arithmetic, as the gray arrays are stored)."""
    gray = check_gray("gray", gray01)
    level = np.rint(gray * np.float32(255)).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=-1)


# --- gamut --------------------------------------------------------------------------------------------

@functools.cache
def _rgb_from_xyz() -> np.ndarray:
    """Linear sRGB from XYZ: the inverse of skimage's primaries (rgb2xyz of pure R, G, B, which the
    transfer curve leaves unchanged)."""
    xyz_from_rgb = color.rgb2xyz(np.eye(3)).T
    return np.linalg.inv(xyz_from_rgb)


def _in_gamut(lab: np.ndarray) -> np.ndarray:
    """Whether each CIELAB colour (n, 3) is an sRGB colour (linear RGB within [0, 1])."""
    # lab2xyz clips negative Z (very large b); such colours are out of gamut anyway.
    negative_z = (lab[:, 0] + 16.0) / 116.0 - lab[:, 2] / 200.0 < 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        xyz = color.lab2xyz(lab)
    inside = ~negative_z
    # One channel at a time: a (n, 3) @ (3, 3) product is slower than three weighted sums.
    for row in _rgb_from_xyz():
        linear = row[0] * xyz[:, 0] + row[1] * xyz[:, 1] + row[2] * xyz[:, 2]
        inside &= (linear >= -GAMUT_TOLERANCE) & (linear <= 1.0 + GAMUT_TOLERANCE)
    return inside


def reduce_chroma(lab: Any, steps: int = CHROMA_STEPS) -> np.ndarray:
    """Scale a/b towards the neutral axis just enough to bring each colour into the sRGB gamut.

    L is unchanged (float64 result, same shape), so unlike per-channel clipping the colour keeps its
    lightness; L must lie in [0, 100], where the neutral gray is always in gamut. Bisection on the chroma
    scale, `steps` times, keeping the in-gamut side.
    """
    array = np.asarray(lab, dtype=np.float64)
    if array.ndim < 1 or array.shape[-1] != 3 or not np.all(np.isfinite(array)):
        raise ArrayError(f"lab must be finite with 3 channels in its last axis, got shape {array.shape}")
    flat = array.reshape(-1, 3).copy()
    flat[:, 0] = np.clip(flat[:, 0], 0.0, 100.0)
    outside = np.flatnonzero(~_in_gamut(flat))
    if outside.size:
        base = flat[outside]
        low = np.zeros(outside.size)  # scale 0 (neutral) is in gamut
        high = np.ones(outside.size)
        for _ in range(steps):
            middle = 0.5 * (low + high)
            trial = np.column_stack([base[:, 0], base[:, 1:] * middle[:, None]])
            ok = _in_gamut(trial)
            low = np.where(ok, middle, low)
            high = np.where(ok, high, middle)
        flat[outside, 1:] = base[:, 1:] * low[:, None]
    return flat.reshape(array.shape)
