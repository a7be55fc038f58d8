"""Pictures of one gray but other colours, for the tests that check a colour input is turned gray first."""

from __future__ import annotations

import numpy as np

from colorize.prep.transforms import rgb_to_gray

WEIGHTS = (0.21, 0.72, 0.07)
# Colour changes that keep 21 R + 72 G + 7 B, i.e. the gray under WEIGHTS up to float rounding.
GRAY_KEEPING_STEPS = [(24, -7, 0), (-24, 7, 0), (1, 0, -3), (-1, 0, 3), (2, 0, -6), (-2, 0, 6), (3, 0, -9),
                      (-3, 0, 9), (48, -14, 0), (-48, 14, 0)]


def equal_gray_pair(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB pictures whose gray under WEIGHTS is the same bit for bit, with other colours at > 95 % of
    pixels: each pixel takes the first step whose float32 gray (three rounded products, two rounded sums)
    equals the original's; one step alone misses about 3 pixels in 10."""
    a = np.random.default_rng(seed).integers(40, 200, size=(height, width, 3)).astype(np.uint8)
    gray = rgb_to_gray(a, WEIGHTS)
    b = a.copy()
    moved = np.zeros((height, width), dtype=bool)
    for step in GRAY_KEEPING_STEPS:
        candidate = (a.astype(int) + step).astype(np.uint8)  # 40..199 +- 48 stays within 0..255
        fits = ~moved & (rgb_to_gray(candidate, WEIGHTS) == gray)
        b[fits] = candidate[fits]
        moved |= fits
    assert moved.mean() > 0.95
    np.testing.assert_array_equal(rgb_to_gray(b, WEIGHTS), gray)
    return a, b
