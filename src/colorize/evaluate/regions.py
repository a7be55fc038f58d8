"""One colour per flat region: the model's probabilities averaged over each region of near-equal gray.

Flat-filled drawings (emoji, clipart) are regions of one colour, and so of one gray; the model decides
each pixel from a limited neighbourhood and can disagree with itself inside a large region. A region here
is a connected set of pixels (4-neighbours) whose gray differs from a neighbour's by at most `tolerance`
levels of 255; every region of at least `min_pixels` pixels gets the mean of its pixels' probabilities,
smaller ones (noise, outlines, anti-aliased edges) keep their own. Chosen on the validation splits of the
built-in and three real sets (README, session 30).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from colorize.core.checks import check_gray, check_positive_int
from colorize.core.errors import ArrayError

# Where no params.yaml applies (`colorize`); params.yaml's evaluate section must agree (a test checks).
DEFAULT_REGION_TOLERANCE = 4
DEFAULT_REGION_MIN_PIXELS = 16
# Images pooled at a time: each float64 temporary (CHUNK x 64 x 64 x 32) stays near 8 MB.
CHUNK = 8


def flat_regions(gray01: Any, tolerance: int) -> tuple[np.ndarray, int]:
    """Labels (N, H, W) of the flat regions of each gray image in [0, 1] (no region spans two images),
    and how many there are."""
    gray = check_gray("gray images", gray01, ndim=3)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or not 0 <= tolerance <= 255:
        raise ValueError(f"region tolerance must be an integer in [0, 255], got {tolerance!r}")
    levels = np.rint(gray.astype(np.float64) * 255).astype(np.int32)
    nodes = np.arange(levels.size).reshape(levels.shape)
    right = np.abs(levels[:, :, 1:] - levels[:, :, :-1]) <= tolerance
    down = np.abs(levels[:, 1:] - levels[:, :-1]) <= tolerance
    start = np.concatenate([nodes[:, :, 1:][right], nodes[:, 1:][down]])
    end = np.concatenate([nodes[:, :, :-1][right], nodes[:, :-1][down]])
    graph = sparse.coo_matrix((np.ones(start.size, np.int8), (start, end)), shape=(levels.size, levels.size))
    count, labels = connected_components(graph, directed=False)
    return labels.reshape(levels.shape), int(count)


def pool_over_regions(probs: Any, gray01: Any, tolerance: int | None, min_pixels: int) -> np.ndarray:
    """`probs` (N, H, W, K) with every flat region of `gray01` (N, H, W) of at least `min_pixels` pixels set
    to the mean of its pixels' probabilities; `tolerance` None returns `probs` as they are."""
    probs = np.asarray(probs)
    if tolerance is None:
        return probs
    min_pixels = check_positive_int("region min_pixels", min_pixels)
    if probs.ndim != 4 or probs.shape[:3] != np.shape(gray01):
        raise ArrayError(f"probabilities of shape {probs.shape} do not match gray images of shape "
                         f"{np.shape(gray01)}")
    pooled = np.empty_like(probs)
    for start in range(0, len(probs), CHUNK):
        rows = slice(start, start + CHUNK)
        pooled[rows] = _pool_chunk(probs[rows], np.asarray(gray01[rows]), tolerance, min_pixels)
    return pooled


def _pool_chunk(probs: np.ndarray, gray01: np.ndarray, tolerance: int, min_pixels: int) -> np.ndarray:
    labels, count = flat_regions(gray01, tolerance)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count)
    pixels = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    membership = sparse.csr_matrix((np.ones(flat.size), (flat, np.arange(flat.size))), shape=(count, flat.size))
    means = (membership @ pixels) / sizes[:, None]
    pooled = np.where((sizes >= min_pixels)[flat][:, None], means[flat], pixels)
    return pooled.astype(probs.dtype).reshape(probs.shape)
