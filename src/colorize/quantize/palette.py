"""Fit a K-colour palette with K-means on training pixels and map pixels to palette indices."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from colorize.core.colour import lab_to_rgb, rgb_to_lab
from colorize.core.errors import PaletteError


def sample_pixels(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Draw up to `count` RGB pixels (uint8, (count, 3)) uniformly, without replacement, seeded."""
    pixels = images.reshape(-1, 3)
    if len(pixels) <= count:
        return pixels.copy()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(pixels), size=count, replace=False))
    return pixels[chosen]


def to_space(rgb: np.ndarray, space: str) -> np.ndarray:
    """RGB uint8 (..., 3) to float32 coordinates of the clustering space."""
    if space == "rgb":
        return rgb.astype(np.float32)
    if space == "lab":
        return rgb_to_lab(rgb).astype(np.float32)
    raise ValueError(f"unknown palette space {space!r}")


def fit_palette(pixels: np.ndarray, k: int, space: str, seed: int) -> np.ndarray:
    """K-means (scikit-learn) on RGB pixels in `space`; the K centres as uint8 RGB, sorted by lightness.

    Sorting makes palette indices independent of K-means' internal ordering.
    """
    distinct = len(np.unique(pixels.reshape(-1, 3), axis=0))
    if distinct < k:
        raise PaletteError(f"palette.k={k} needs at least {k} distinct colours in the training pixels, "
                           f"found {distinct}")
    points = to_space(pixels.reshape(-1, 3), space)
    kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(points)
    centres = kmeans.cluster_centers_
    rgb = np.clip(np.rint(centres), 0, 255).astype(np.uint8) if space == "rgb" else lab_to_rgb(centres)
    lab = rgb_to_lab(rgb)
    order = np.lexsort((lab[:, 2], lab[:, 1], lab[:, 0]))
    return rgb[order]


def nearest_palette_index(rgb: np.ndarray, palette: np.ndarray, space: str,
                          chunk_pixels: int = 1 << 18) -> np.ndarray:
    """Index (uint8 for K <= 256) of the nearest palette colour in `space`, for RGB of any leading shape."""
    flat = rgb.reshape(-1, 3)
    centres = to_space(palette, space)
    centre_norms = (centres**2).sum(axis=1)
    out = np.empty(len(flat), dtype=np.uint8 if len(palette) <= 256 else np.int32)
    for start in range(0, len(flat), chunk_pixels):
        points = to_space(flat[start:start + chunk_pixels], space)
        # |p - c|^2 = |p|^2 - 2 p.c + |c|^2; |p|^2 does not change the argmin.
        distances = centre_norms[None, :] - 2.0 * points @ centres.T
        out[start:start + chunk_pixels] = np.argmin(distances, axis=1)
    return out.reshape(rgb.shape[:-1])


def palette_to_dict(palette: np.ndarray, space: str, **details: Any) -> dict[str, Any]:
    """JSON-safe description of a palette (no pickle anywhere)."""
    return {"space": space, "k": int(len(palette)), "rgb": palette.astype(int).tolist(), **details}


def palette_from_dict(data: dict[str, Any]) -> tuple[np.ndarray, str]:
    rgb = np.asarray(data["rgb"], dtype=np.uint8)
    if rgb.ndim != 2 or rgb.shape[1] != 3 or len(rgb) != data["k"]:
        raise ValueError(f"palette data holds shape {rgb.shape}, expected ({data['k']}, 3)")
    return rgb, data["space"]
