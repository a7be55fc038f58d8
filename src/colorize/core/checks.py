"""Checks of the arrays the stages pass around (RGB images, gray images, palettes, label maps): each
returns the array in its canonical dtype or raises `ArrayError` with one line naming it."""

from __future__ import annotations

from typing import Any

import numpy as np

from colorize.core.errors import ArrayError

# Gray values may overshoot [0, 1] by float32 rounding of the weighted sum; more than this is an error.
GRAY_TOLERANCE = 1e-4


def check_rgb(name: str, images: Any, ndim: int | None = None) -> np.ndarray:
    """Return `images` as a uint8 array (..., 3); `ndim` pins the number of dimensions."""
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise ArrayError(f"{name} must be uint8 RGB, got dtype {array.dtype}")
    if array.ndim < 1 or array.shape[-1] != 3:
        raise ArrayError(f"{name} must have 3 channels in its last axis, got shape {array.shape}")
    if ndim is not None and array.ndim != ndim:
        raise ArrayError(f"{name} must have {ndim} dimensions (N, S, S, 3), got shape {array.shape}")
    return array


def check_gray(name: str, gray01: Any, ndim: int | None = None) -> np.ndarray:
    """Return `gray01` as float32 in [0, 1] (tiny rounding overshoots clipped)."""
    array = np.asarray(gray01)
    if not np.issubdtype(array.dtype, np.floating):
        raise ArrayError(f"{name} must be a float array in [0, 1], got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ArrayError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.size:
        low, high = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ArrayError(f"{name} holds NaN or infinite values")
        if low < -GRAY_TOLERANCE or high > 1 + GRAY_TOLERANCE:
            raise ArrayError(f"{name} must lie in [0, 1], got values in [{low:.6g}, {high:.6g}]")
    return np.clip(array, 0.0, 1.0).astype(np.float32, copy=False)


def check_palette(name: str, palette_rgb: Any) -> np.ndarray:
    """Return a palette (K, 3) of integers in [0, 255] as uint8; lists (from JSON) are accepted."""
    array = np.asarray(palette_rgb)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] < 1:
        raise ArrayError(f"{name} must have shape (K, 3) with K >= 1, got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
            raise ArrayError(f"{name} must hold integers in [0, 255], got dtype {array.dtype}")
        array = array.astype(np.uint8)
    return array


def check_labels(name: str, labels: Any, k: int) -> np.ndarray:
    """Return `labels` unchanged after checking they are integers in [0, k)."""
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise ArrayError(f"{name} must be integer palette indices, got dtype {array.dtype}")
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= k:
            raise ArrayError(f"{name} must lie in [0, {k - 1}] for a palette of {k}, got [{low}, {high}]")
    return array


def check_same_shape(names: tuple[str, str], a: np.ndarray, b: np.ndarray) -> None:
    """Raise unless `a` and `b` have the same shape."""
    if a.shape != b.shape:
        raise ArrayError(f"{names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")


def check_positive_int(name: str, value: Any) -> int:
    """Return `value` if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
