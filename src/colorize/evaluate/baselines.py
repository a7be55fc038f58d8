"""Reference colorizations a model must beat (and one it cannot): gray, a gray-level lookup, example
transfer after Welsh, Ashikhmin & Mueller (2002), and the palette oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter
from sklearn.neighbors import NearestNeighbors

from colorize.core.checks import check_gray, check_labels, check_palette, check_positive_int, check_rgb
from colorize.core.colour import gray_to_lightness, lab_to_rgb, reduce_chroma, rgb_to_lab
from colorize.core.errors import ArrayError
from colorize.core.streaming import ShardedRows

# Images handled at once by example transfer: bounds the float64 filter temporaries.
TRANSFER_BATCH = 128
# Features are rounded to this many decimals (L units) so flat areas give exactly equal features, which
# are then searched once: a k-d tree holding many identical points slows every query near them ~100x.
FEATURE_DECIMALS = 4


def oracle(labels: Any, palette_rgb: Any) -> np.ndarray:
    """The ground truth quantized to the palette: each label's palette colour, uint8 RGB."""
    palette = check_palette("palette", palette_rgb)
    labels = check_labels("labels", labels, palette.shape[0])
    return palette[labels]


class GrayLookup:
    """Predict, for each gray level, the palette index most often seen at that level in training."""

    def __init__(self, table: np.ndarray | None = None, k: int | None = None):
        self.table = table
        self.k = k

    @property
    def levels(self) -> int:
        return 0 if self.table is None else int(self.table.shape[0])

    def fit(self, gray01: Any, labels: Any, k: int, levels: int = 256) -> GrayLookup:
        """Learn the table: most frequent index per level (ties -> lowest index); levels never seen
        take the answer of the nearest seen level (equally near -> the darker one)."""
        k, levels = _checked_k_levels(k, levels)
        return self._table_from(self._level_counts(gray01, labels, k, levels), k)

    def fit_streamed(self, gray01: Any, labels: Any, k: int, levels: int = 256, chunk: int = 1024) -> GrayLookup:
        """`fit` over array-likes read `chunk` images at a time (e.g. streaming.ShardedRows): the same
        integer counts, hence the same table, in memory bounded by the chunk."""
        k, levels = _checked_k_levels(k, levels)
        if tuple(gray01.shape) != tuple(labels.shape):
            raise ArrayError(f"gray {tuple(gray01.shape)} and labels {tuple(labels.shape)} must have the same shape")
        if len(gray01) == 0:
            raise ArrayError("gray holds no pixels to learn from")
        counts = sum(self._level_counts(gray01[start:start + chunk], labels[start:start + chunk], k, levels)
                     for start in range(0, len(gray01), chunk))
        return self._table_from(counts, k)

    @staticmethod
    def _level_counts(gray01: Any, labels: Any, k: int, levels: int) -> np.ndarray:
        """Pixel counts (levels, k) of each palette index at each quantized gray level."""
        gray = check_gray("gray", gray01)
        labels = check_labels("labels", labels, k)
        if gray.shape != labels.shape:
            raise ArrayError(f"gray {gray.shape} and labels {labels.shape} must have the same shape")
        if gray.size == 0:
            raise ArrayError("gray holds no pixels to learn from")
        counts = np.zeros(levels * k, dtype=np.int64)
        flat_gray, flat_labels = gray.reshape(-1), labels.reshape(-1)
        step = 1 << 22
        for start in range(0, flat_gray.size, step):
            level = _quantize(flat_gray[start:start + step], levels).astype(np.int64)
            counts += np.bincount(level * k + flat_labels[start:start + step], minlength=levels * k)
        return counts.reshape(levels, k)

    def _table_from(self, counts: np.ndarray, k: int) -> GrayLookup:
        levels = counts.shape[0]
        best = np.argmax(counts, axis=1)  # first maximum: ties go to the lowest index
        seen = np.flatnonzero(counts.sum(axis=1))
        # For every level, the nearest seen level; searchsorted + a left/right comparison.
        right = np.clip(np.searchsorted(seen, np.arange(levels)), 0, seen.size - 1)
        left = np.clip(right - 1, 0, seen.size - 1)
        use_left = np.abs(np.arange(levels) - seen[left]) <= np.abs(seen[right] - np.arange(levels))
        nearest = np.where(use_left, seen[left], seen[right])
        self.table = best[nearest].astype(np.uint8)
        self.k = k
        return self

    def predict(self, gray01: Any) -> np.ndarray:
        """Palette indices (uint8, same shape as the gray input)."""
        if self.table is None:
            raise RuntimeError("GrayLookup.predict called before fit")
        gray = check_gray("gray", gray01)
        return self.table[_quantize(gray, self.levels)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: {"k", "levels", "table"}."""
        if self.table is None:
            raise RuntimeError("GrayLookup.to_dict called before fit")
        return {"k": int(self.k), "levels": self.levels, "table": [int(v) for v in self.table]}

    @classmethod
    def from_dict(cls, data: Any) -> GrayLookup:
        """Rebuild from `to_dict` output, checking it."""
        if not isinstance(data, dict) or set(data) != {"k", "levels", "table"}:
            raise ValueError("gray lookup must be a mapping with keys k, levels, table")
        k = check_positive_int("gray lookup k", data["k"])
        levels = check_positive_int("gray lookup levels", data["levels"])
        table = data["table"]
        if (not isinstance(table, list) or len(table) != levels
                or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < k for v in table)):
            raise ValueError(f"gray lookup table must be {levels} integers in [0, {k - 1}]")
        return cls(np.array(table, dtype=np.uint8), k)


def _checked_k_levels(k: int, levels: int) -> tuple[int, int]:
    k = check_positive_int("k", k)
    levels = check_positive_int("levels", levels)
    if k > 256:
        raise ValueError(f"k must be at most 256 (uint8 labels), got {k}")
    return k, levels


def _quantize(gray: np.ndarray, levels: int) -> np.ndarray:
    """Gray in [0, 1] -> level in [0, levels - 1] (nearest)."""
    dtype = np.uint8 if levels <= 256 else np.int32
    return np.rint(gray * np.float32(levels - 1)).astype(dtype)


def _luminance_features(lightness: np.ndarray, window: int) -> np.ndarray:
    """Per pixel: CIELAB L and the standard deviation of L in a window x window neighbourhood."""
    light = lightness.astype(np.float64)
    size = (1, window, window)  # filter each image on its own
    mean = uniform_filter(light, size=size, mode="reflect")
    mean_sq = uniform_filter(light * light, size=size, mode="reflect")
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    return np.round(np.stack([light, std], axis=-1).reshape(-1, 2), FEATURE_DECIMALS)


def _unique_features(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of (n, 2) features: (rows, index of each row's first occurrence, inverse)."""
    # A (L, std) pair seen as one complex number sorts much faster than np.unique(axis=0).
    keys = np.ascontiguousarray(features, dtype=np.float64).view(np.complex128)[:, 0]
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return np.column_stack([unique.real, unique.imag]), first, inverse


def _pixels_at(images: Any, flat: np.ndarray, per_image: int, chunk: int = TRANSFER_BATCH) -> np.ndarray:
    """RGB of the pixels at flat positions `flat` of images (N, H, W, 3), reading at most `chunk`
    images at a time: the same as images.reshape(-1, 3)[flat] without the whole array."""
    out = np.empty((flat.size, 3), dtype=np.uint8)
    image_of = flat // per_image
    needed = np.unique(image_of)
    for start in range(0, needed.size, chunk):
        part = needed[start:start + chunk]
        block = np.asarray(images[part]).reshape(part.size, per_image, 3)
        rows = np.flatnonzero(np.isin(image_of, part))
        out[rows] = block[np.searchsorted(part, image_of[rows]), flat[rows] % per_image]
    return out


def example_transfer(train_rgb: Any, train_gray01: Any, test_gray01: Any, n_pixels: int, seed: int,
                     window: int = 5) -> np.ndarray:
    """Colorize gray images by copying chroma from the most similar sampled training pixel
    (ExampleTransfer fitted on the training images, applied to `test_gray01`). Returns uint8 RGB
    (N_test, H, W, 3)."""
    test_gray = check_gray("test_gray", test_gray01, ndim=3)
    return ExampleTransfer(train_rgb, train_gray01, n_pixels, seed, window).apply(test_gray)


class ExampleTransfer:
    """Example-based colorization after Welsh, Ashikhmin & Mueller (2002), without their luminance
    remapping (training and test images come from one distribution).

    Features are the CIELAB lightness of the gray and its local standard deviation (window x window),
    each divided by its spread over the sample so they weigh equally; at most `n_pixels` training pixels
    are drawn at random (seeded). `apply` gives each test pixel its own lightness and the a/b chroma of
    its nearest neighbour, shrunk into the sRGB gamut where needed; each pixel's answer depends on its
    image alone, so test images may come a batch at a time.
    """

    def __init__(self, train_rgb: Any, train_gray01: Any, n_pixels: int, seed: int, window: int = 5):
        if isinstance(train_rgb, ShardedRows) and isinstance(train_gray01, ShardedRows):
            train_gray = train_gray01  # verified shards, read a batch at a time below: never whole
        else:
            train_rgb = check_rgb("train_rgb", train_rgb, ndim=4)
            train_gray = check_gray("train_gray", train_gray01, ndim=3)
        if train_rgb.shape[:-1] != train_gray.shape:
            raise ArrayError(f"train_rgb {train_rgb.shape} and train_gray {train_gray.shape} must cover "
                             "the same pixels")
        n_pixels = check_positive_int("n_pixels", n_pixels)
        self.window = check_positive_int("window", window)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        per_image = train_gray.shape[1] * train_gray.shape[2]
        total = train_gray.shape[0] * per_image
        if total == 0:
            raise ArrayError("train_gray holds no pixels to transfer from")

        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(total, size=min(n_pixels, total), replace=False))
        features = np.empty((sample.size, 2), dtype=np.float64)
        # Only images holding sampled pixels need their features computed.
        for start in range(0, train_gray.shape[0], TRANSFER_BATCH):
            lo, hi = np.searchsorted(sample, [start * per_image, (start + TRANSFER_BATCH) * per_image])
            if lo == hi:
                continue
            chunk = _luminance_features(gray_to_lightness(np.asarray(train_gray[start:start + TRANSFER_BATCH])),
                                        self.window)
            features[lo:hi] = chunk[sample[lo:hi] - start * per_image]
        self.scale = features.std(axis=0)
        self.scale[self.scale == 0] = 1.0  # a constant feature cannot tell pixels apart; leave it as is
        # Of training pixels with equal features, the first sampled one stands for all.
        features, first, _ = _unique_features(features)
        self.chroma = rgb_to_lab(_pixels_at(train_rgb, sample[first], per_image))[:, 1:]
        self.search = NearestNeighbors(n_neighbors=1, algorithm="kd_tree").fit(features / self.scale)

    def apply(self, test_gray01: Any) -> np.ndarray:
        """uint8 RGB (N, H, W, 3) for gray images (N, H, W) in [0, 1]."""
        test_gray = check_gray("test_gray", test_gray01, ndim=3)
        out = np.empty((*test_gray.shape, 3), dtype=np.uint8)
        for start in range(0, test_gray.shape[0], TRANSFER_BATCH):
            lightness = gray_to_lightness(test_gray[start:start + TRANSFER_BATCH])
            query, _, inverse = _unique_features(_luminance_features(lightness, self.window))
            nearest = self.search.kneighbors(query / self.scale, return_distance=False)[inverse, 0]
            lab = np.concatenate([lightness.reshape(-1, 1), self.chroma[nearest]], axis=1)
            # Shrink chroma into the gamut rather than clip RGB, so the lightness stays the input's.
            out[start:start + TRANSFER_BATCH] = lab_to_rgb(reduce_chroma(lab)).reshape(lightness.shape + (3,))
        return out
