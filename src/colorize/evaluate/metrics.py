"""Image-quality and classification metrics for colorized images.

Image metrics take uint8 RGB batches (N, S, S, 3) and return one value per image (scikit-image does
PSNR, SSIM and CIEDE2000); `image_metrics` averages them. Classification metrics compare palette
indices. Large inputs are processed a chunk of images at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage.color import deltaE_ciede2000
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize.core.checks import check_labels, check_positive_int, check_rgb, check_same_shape
from colorize.core.colour import rgb_to_lab
from colorize.core.errors import ArrayError
from colorize.evaluate.decoding import DEFAULT_BATCH, check_probabilities

# Identical images have infinite PSNR; report this instead. A one-level error in one channel of one
# pixel still scores below it for S <= 226 (at S = 64 it scores 89 dB).
PSNR_CAP_DB = 100.0
# SSIM's usual 7x7 window, shrunk (odd, >= 3) for images smaller than 7 pixels.
SSIM_WIN_SIZE = 7


def _check_pair(pred: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    pred = check_rgb("pred", pred, ndim=4)
    truth = check_rgb("truth", truth, ndim=4)
    check_same_shape(("pred", "truth"), pred, truth)
    if pred.shape[0] == 0:
        raise ArrayError("pred and truth hold no images")
    return pred, truth


def psnr(pred: Any, truth: Any) -> np.ndarray:
    """Peak signal-to-noise ratio per image in dB (data range 255), capped at PSNR_CAP_DB."""
    pred, truth = _check_pair(pred, truth)
    values = np.empty(pred.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore"):  # identical images: 255²/0 = inf, capped below
        for i in range(pred.shape[0]):
            values[i] = peak_signal_noise_ratio(truth[i], pred[i], data_range=255)
    return np.minimum(values, PSNR_CAP_DB)


def ssim_window(size: int) -> int:
    """SSIM window for images whose shorter side is `size`: 7, or the largest odd size that fits."""
    win = min(SSIM_WIN_SIZE, size if size % 2 else size - 1)
    if win < 3:
        raise ArrayError(f"images must be at least 3x3 for SSIM, got a side of {size}")
    return win


def ssim(pred: Any, truth: Any) -> np.ndarray:
    """Mean structural similarity per image (channels averaged, data range 255)."""
    pred, truth = _check_pair(pred, truth)
    win = ssim_window(min(pred.shape[1:3]))
    return np.array([structural_similarity(pred[i], truth[i], channel_axis=-1, data_range=255,
                                           win_size=win) for i in range(pred.shape[0])],
                    dtype=np.float64)


def ciede2000(pred: Any, truth: Any, batch: int = DEFAULT_BATCH) -> np.ndarray:
    """Mean CIEDE2000 colour difference ΔE00 per image."""
    pred, truth = _check_pair(pred, truth)
    delta = delta_e_map(pred, truth, batch=batch)
    return delta.reshape(delta.shape[0], -1).mean(axis=1)


def delta_e_map(pred: np.ndarray, truth: np.ndarray, truth_lab: np.ndarray | None = None,
                batch: int = DEFAULT_BATCH) -> np.ndarray:
    """CIEDE2000 ΔE00 per pixel (N, H, W), float64; `truth_lab` (float64 CIELAB of `truth`) when the
    caller already has it (the same truth scored against many predictions)."""
    batch = check_positive_int("batch", batch)
    out = np.empty(pred.shape[:-1], dtype=np.float64)
    for start in range(0, pred.shape[0], batch):
        rows = slice(start, start + batch)
        reference = rgb_to_lab(truth[rows]).astype(np.float64) if truth_lab is None else truth_lab[rows]
        out[rows] = deltaE_ciede2000(rgb_to_lab(pred[rows]).astype(np.float64), reference)
    return out


def colourfulness(images: Any) -> np.ndarray:
    """Hasler & Süsstrunk (2003) colourfulness per image: σ_rgyb + 0.3·μ_rgyb on 0-255 values."""
    images = check_rgb("images", images, ndim=4)
    if images.shape[0] == 0:
        raise ArrayError("images holds no images")
    values = np.empty(images.shape[0], dtype=np.float64)
    for start in range(0, images.shape[0], DEFAULT_BATCH):
        rgb = images[start:start + DEFAULT_BATCH].astype(np.float64)
        rgb = rgb.reshape(rgb.shape[0], -1, 3)
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        sigma = np.sqrt(rg.var(axis=1) + yb.var(axis=1))
        mu = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
        values[start:start + DEFAULT_BATCH] = sigma + 0.3 * mu
    return values


def image_metrics(pred: Any, truth: Any) -> dict[str, float]:
    """Means over images of psnr, ssim, ciede2000 (pred vs truth) and colourfulness (of pred)."""
    scores = ImageMetricsAccumulator()
    scores.add(pred, truth)
    return scores.result()


# --- classification -----------------------------------------------------------------------------------

def top_k_accuracy(probs: Any, labels: Any, k: int, batch: int = DEFAULT_BATCH) -> float:
    """Share of pixels whose true palette index is among the `k` most probable classes.

    Ties rank the lower index first, as argmax does, so k = 1 equals the pixel accuracy of argmax.
    """
    return top_k_hits(probs, labels, k, batch) / np.asarray(labels).size


def top_k_hits(probs: Any, labels: Any, k: int, batch: int = DEFAULT_BATCH) -> int:
    """Number of pixels whose true palette index is among the `k` most probable classes (see top_k_accuracy)."""
    probs = check_probabilities("probs", probs)
    n_classes = probs.shape[-1]
    labels = check_labels("labels", labels, n_classes)
    if labels.shape != probs.shape[:-1]:
        raise ArrayError(f"labels {labels.shape} must match probs {probs.shape} without its last axis")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_classes:
        raise ValueError(f"k must be an integer in [1, {n_classes}], got {k!r}")
    batch = check_positive_int("batch", batch)
    if labels.size == 0:
        raise ArrayError("labels holds no pixels")
    classes = np.arange(n_classes)
    hits = 0
    for start in range(0, probs.shape[0], batch):
        chunk = np.asarray(probs[start:start + batch])
        if not np.all(np.isfinite(chunk)):
            raise ArrayError("probs holds NaN or infinite values")
        truth = np.asarray(labels[start:start + batch], dtype=np.intp)[..., None]
        p_true = np.take_along_axis(chunk, truth, axis=-1)
        rank = np.count_nonzero(chunk > p_true, axis=-1)
        rank += np.count_nonzero((chunk == p_true) & (classes < truth), axis=-1)
        hits += int(np.count_nonzero(rank < k))
    return hits


def _check_label_pair(pred_labels: Any, labels: Any, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    bound = np.iinfo(np.int64).max if k is None else k
    pred = check_labels("pred_labels", pred_labels, bound)
    truth = check_labels("labels", labels, bound)
    check_same_shape(("pred_labels", "labels"), pred, truth)
    if truth.size == 0:
        raise ArrayError("labels holds no pixels")
    return pred, truth


def pixel_accuracy(pred_labels: Any, labels: Any) -> float:
    """Share of pixels whose predicted palette index equals the true one."""
    pred, truth = _check_label_pair(pred_labels, labels)
    return int(np.count_nonzero(pred == truth)) / truth.size


def confusion_matrix(pred_labels: Any, labels: Any, k: int) -> np.ndarray:
    """Pixel counts (k, k), int64: row = true palette index, column = predicted."""
    k = check_positive_int("k", k)
    pred, truth = _check_label_pair(pred_labels, labels, k)
    pred, truth = pred.reshape(-1), truth.reshape(-1)
    counts = np.zeros(k * k, dtype=np.int64)
    step = 1 << 22  # bincount copies to intp: bound that copy
    for start in range(0, truth.size, step):
        pair = truth[start:start + step].astype(np.int64) * k + pred[start:start + step]
        counts += np.bincount(pair, minlength=k * k)
    return counts.reshape(k, k)


def per_colour_accuracy(pred_labels: Any, labels: Any, k: int) -> list[float | None]:
    """Recall per palette colour: share of its true pixels predicted as it; None if it never occurs."""
    return recall_per_colour(confusion_matrix(pred_labels, labels, k))


def recall_per_colour(matrix: np.ndarray) -> list[float | None]:
    """`per_colour_accuracy` from a confusion matrix (rows true, columns predicted)."""
    totals = matrix.sum(axis=1)
    return [float(matrix[q, q] / totals[q]) if totals[q] else None for q in range(matrix.shape[0])]


def colour_confusions(pred_labels: Any, labels: Any, k: int, top: int = 10) -> list[tuple[int, int, float]]:
    """The `top` most frequent mistakes as (true, predicted, share of all pixels), largest first.

    Equal counts are ordered by true then predicted index; the shares of all mistakes sum to
    1 - pixel accuracy.
    """
    return worst_confusions(confusion_matrix(pred_labels, labels, k), top)


def worst_confusions(matrix: np.ndarray, top: int = 10) -> list[tuple[int, int, float]]:
    """`colour_confusions` from a confusion matrix (rows true, columns predicted)."""
    top = check_positive_int("top", top)
    total = int(matrix.sum())
    matrix = matrix.copy()
    np.fill_diagonal(matrix, 0)
    true_idx, pred_idx = np.nonzero(matrix)
    counts = matrix[true_idx, pred_idx]
    order = np.lexsort((pred_idx, true_idx, -counts))[:top]
    return [(int(true_idx[i]), int(pred_idx[i]), int(counts[i]) / total) for i in order]


# --- foreground ---------------------------------------------------------------------------------------
# Pictures composited on a white page are mostly page: a method that paints the page right looks good
# on whole-image metrics. These score only the drawing, the pixels whose true colour is not the fill.

def foreground_mask(truth: Any, fill: Any) -> np.ndarray:
    """bool (N, H, W): pixels of the true images that are not exactly the fill colour."""
    truth = check_rgb("truth", truth, ndim=4)
    return np.any(truth != np.asarray(fill, dtype=np.uint8), axis=-1)


def foreground_image_metrics(pred: Any, truth: Any, mask: Any) -> dict[str, float | None]:
    """PSNR and CIEDE2000 over the masked pixels of each image, averaged over images that have any
    (None when no image has a foreground pixel)."""
    scores = ImageMetricsAccumulator(image=False)
    scores.add(pred, truth, mask)
    return scores.result()


def _foreground_values(pred: np.ndarray, truth: np.ndarray, mask: Any, delta: np.ndarray
                       ) -> tuple[list[float], list[float]]:
    """Per image with any masked pixel: the PSNR and the mean CIEDE2000 (`delta`, per pixel) of its masked
    pixels."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pred.shape[:3]:
        raise ArrayError(f"mask {mask.shape} must match the images {pred.shape[:3]}")
    psnrs, deltas = [], []
    for i, keep in enumerate(mask):
        if not keep.any():
            continue
        mse = float(((pred[i][keep].astype(np.float64) - truth[i][keep]) ** 2).mean())
        psnrs.append(PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse)))
        deltas.append(float(delta[i][keep].mean()))
    return psnrs, deltas


def foreground_accuracy(pred_labels: Any, labels: Any, mask: Any) -> float | None:
    """Share of masked pixels whose predicted palette index is right (None without masked pixels)."""
    hits, total = _masked_hits(pred_labels, labels, mask)
    return None if total == 0 else hits / total


def _masked_hits(pred_labels: Any, labels: Any, mask: Any) -> tuple[int, int]:
    """(right predictions inside the mask, masked pixels)."""
    pred, truth = _check_label_pair(pred_labels, labels)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != truth.shape:
        raise ArrayError(f"mask {mask.shape} must match the labels {truth.shape}")
    return int(np.count_nonzero((pred == truth) & mask)), int(mask.sum())


# --- batch-wise accumulation (evaluation in bounded memory) ---------------------------------------------
# Means over images keep one float per image and metric (the size of a manifest) and take np.mean of them
# all at the end; pixel shares are integer counts. Either way the result is bit-identical to the
# whole-array functions above, whatever the batches.

class ImageMetricsAccumulator:
    """`image_metrics` (with `image`) and `foreground_image_metrics` (for batches given a mask) over
    batches added one at a time, in image order."""

    def __init__(self, image: bool = True) -> None:
        names = ("psnr", "ssim", "ciede2000", "colourfulness") if image else ()
        self._values: dict[str, list[Any]] = {name: [] for name in names}
        self._foreground: dict[str, list[float]] | None = None

    def add(self, pred: Any, truth: Any, mask: Any = None, truth_lab: np.ndarray | None = None) -> None:
        """Score one batch; `truth_lab`: `truth` in CIELAB (float64), when several predictions share it."""
        pred, truth = _check_pair(pred, truth)
        for name, metric in (("psnr", psnr), ("ssim", ssim)):
            if name in self._values:
                self._values[name].append(metric(pred, truth))
        # One ΔE00 map serves the whole-image and the foreground means.
        delta = delta_e_map(pred, truth, truth_lab) if self._values or mask is not None else None
        if "ciede2000" in self._values:
            self._values["ciede2000"].append(delta.reshape(delta.shape[0], -1).mean(axis=1))
        if "colourfulness" in self._values:
            self._values["colourfulness"].append(colourfulness(pred))
        if mask is not None:
            psnrs, deltas = _foreground_values(pred, truth, mask, delta)
            self._foreground = self._foreground or {"fg_psnr": [], "fg_ciede2000": []}
            self._foreground["fg_psnr"] += psnrs
            self._foreground["fg_ciede2000"] += deltas

    def result(self) -> dict[str, float | None]:
        """Image means (and fg_psnr, fg_ciede2000 once a mask was given: None if no image had a masked pixel)."""
        if self._values and not self._values["psnr"]:
            raise ArrayError("pred and truth hold no images")
        out: dict[str, float | None] = {name: float(np.mean(np.concatenate(values)))
                                        for name, values in self._values.items()}
        for name, values in (self._foreground or {}).items():
            out[name] = float(np.mean(values)) if values else None
        return out


class LabelCounts:
    """Pixel counts of palette-index predictions over batches: the confusion matrix (hence pixel and
    per-colour accuracy, the worst confusions), top-k hits given probabilities, and the hits inside a
    foreground mask given one."""

    def __init__(self, k: int, top_k: int | None = None):
        self.k = check_positive_int("k", k)
        self.top_k = top_k
        self.confusion = np.zeros((self.k, self.k), dtype=np.int64)
        self.top_k_hits = 0
        self.masked_pixels = 0
        self.masked_hits = 0

    def add(self, pred_labels: Any, labels: Any, probs: Any = None, mask: Any = None) -> None:
        self.confusion += confusion_matrix(pred_labels, labels, self.k)
        if self.top_k is not None:
            if probs is None:
                raise ValueError("LabelCounts(top_k=...) needs the batch's probabilities")
            self.top_k_hits += top_k_hits(probs, labels, self.top_k)
        if mask is not None:
            hits, total = _masked_hits(pred_labels, labels, mask)
            self.masked_hits += hits
            self.masked_pixels += total

    @property
    def pixels(self) -> int:
        return int(self.confusion.sum())

    def accuracy(self) -> float:
        if not self.pixels:
            raise ArrayError("labels holds no pixels")
        return int(np.trace(self.confusion)) / self.pixels

    def top_k_accuracy(self) -> float:
        if self.top_k is None or not self.pixels:
            raise ArrayError("no top-k counts: give top_k and add batches with probabilities")
        return self.top_k_hits / self.pixels

    def masked_accuracy(self) -> float | None:
        """`foreground_accuracy` over the batches added with a mask (None without masked pixels)."""
        return None if self.masked_pixels == 0 else self.masked_hits / self.masked_pixels
