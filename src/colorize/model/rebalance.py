"""Class rebalancing after Zhang, Isola & Efros (2016), adapted to a K-means palette.

Rare palette colours get heavier loss weights so the model does not settle on the common dull ones:
w ∝ 1 / (strength·p̃ + (1 − strength)/K), where p̃ is the (optionally smoothed) empirical distribution of
palette indices over the training labels. This is Zhang's formula with λ_Zhang = 1 − strength, so
strength 0 switches rebalancing off (all weights 1) and strength 1 weighs by inverse frequency.
Weights are normalised so that the mean weight over training pixels is 1: Σ_q p_q·w_q = 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colorize.core.checks import check_labels, check_positive_int
from colorize.core.errors import ArrayError


def count_labels(labels: Any, k: int) -> np.ndarray:
    """Pixel count per palette index, int64 (k,)."""
    k = check_positive_int("k", k)
    flat = check_labels("labels", labels, k).reshape(-1)
    counts = np.zeros(k, dtype=np.int64)
    step = 1 << 22  # bincount copies to intp: bound that copy
    for start in range(0, flat.size, step):
        counts += np.bincount(flat[start:start + step], minlength=k)
    return counts



def count_labels_streamed(labels: Any, k: int, chunk_images: int = 1024) -> np.ndarray:
    """count_labels over rows read a chunk at a time (an array or a colorize.core.streaming.ShardedRows)."""
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, len(labels), chunk_images):
        counts += count_labels(labels[np.arange(start, min(start + chunk_images, len(labels)))], k)
    return counts


def smooth_distribution(p: np.ndarray, palette_lab: np.ndarray, sigma: float) -> np.ndarray:
    """Spread each colour's mass over the palette with a Gaussian of CIELAB distance (sigma).

    Each column of the kernel is normalised, so total mass stays 1 and a colour far from all others
    keeps its own mass.
    """
    distance_sq = np.sum((palette_lab[:, None, :] - palette_lab[None, :, :]) ** 2, axis=-1)
    kernel = np.exp(-distance_sq / (2.0 * sigma * sigma))
    kernel /= kernel.sum(axis=0, keepdims=True)
    return kernel @ p


def class_weights(labels: Any, k: int, strength: float, sigma: float = 5.0,
                  palette_lab: Any = None) -> np.ndarray:
    """Loss weight per palette index, float32 (k,), normalised so Σ_q p_q·w_q = 1.

    `palette_lab` (k, 3) turns on Gaussian smoothing of the distribution over palette colours (`sigma`
    in CIELAB units, Zhang's 5). Colours absent from the training labels get the largest weight of all
    colours (finite even at strength 1); they never weigh a training pixel.
    """
    return class_weights_from_counts(count_labels(labels, k), strength, sigma, palette_lab)


def class_weights_from_counts(counts: np.ndarray, strength: float, sigma: float = 5.0,
                              palette_lab: Any = None) -> np.ndarray:
    """class_weights from pixel counts per palette index (k,), e.g. counted a chunk at a time."""
    counts = np.asarray(counts, dtype=np.int64)
    k = len(counts)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}")
    if (isinstance(sigma, bool) or not isinstance(sigma, (int, float))
            or not (np.isfinite(sigma) and sigma > 0)):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    total = int(counts.sum())
    if total == 0:
        raise ArrayError("labels holds no pixels to count")
    p = counts / total
    smoothed = p
    if palette_lab is not None:
        palette = np.asarray(palette_lab, dtype=np.float64)
        if palette.shape != (k, 3) or not np.all(np.isfinite(palette)):
            raise ArrayError(f"palette_lab must be finite with shape ({k}, 3), got {np.shape(palette_lab)}")
        smoothed = smooth_distribution(p, palette, float(sigma))
    denominator = strength * smoothed + (1.0 - strength) / k
    with np.errstate(divide="ignore"):
        weights = 1.0 / denominator  # inf only where strength = 1 and p̃ = 0
    # Present colours always have p̃ > 0, so a finite maximum exists.
    weights[counts == 0] = np.max(weights[np.isfinite(weights)])
    weights /= np.sum(p * weights)
    return weights.astype(np.float32)


