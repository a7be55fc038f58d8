"""Turn per-pixel palette probabilities into RGB images, and put the input's lightness back.

Methods: `argmax` (the origin's: the most probable palette colour), `mean` (probability-weighted mean
colour) and `annealed_mean` (Zhang, Isola & Efros 2016: the mean of the re-normalised probs^(1/T)).
Means are taken in CIELAB, where distances are roughly perceptual, then converted back to sRGB.
The input's lightness goes back by `put_back_lightness`: `match_gray` (each pixel shifted equally in R, G
and B until the grayscale stage's weights give the input's gray: the grayscale stage undone exactly, what
`colorize` writes) or `cielab` (the CIELAB lightness of the gray pixel with the predicted a/b).
Work proceeds `batch` images at a time, so 10,000 images x 64x64 x 32 classes never need more than a
chunk's worth of temporaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from colorize.core.checks import check_gray, check_palette, check_positive_int, check_rgb
from colorize.core.colour import gray_to_lightness, lab_to_rgb, reduce_chroma, rgb_to_lab
from colorize.core.errors import ArrayError, BundleError
from colorize.prep.transforms import rgb_to_gray

METHODS = ("argmax", "mean", "annealed_mean")
# The decoding where no params.yaml applies (library calls; `colorize` unless the bundle records one).
DEFAULT_METHOD = "annealed_mean"
DEFAULT_TEMPERATURE = 0.6
DEFAULT_BATCH = 64
# How evaluate.keep_luminance puts the input's lightness back; the default chosen on the validation splits
# of the three real sets (README, session 28). `cielab` was the only method before.
LIGHTNESS_METHODS = ("match_gray", "cielab")
DEFAULT_LIGHTNESS = "match_gray"


def bundle_decoding(meta: Mapping[str, Any], where: str = "bundle.json") -> tuple[str, float]:
    """(method, temperature) for inference: bundle.json's `decode` and `temperature` where it records
    them, else DEFAULT_METHOD and DEFAULT_TEMPERATURE. `where` names the file in errors."""
    method, temperature = meta.get("decode", DEFAULT_METHOD), meta.get("temperature", DEFAULT_TEMPERATURE)
    if method not in METHODS:
        raise BundleError(f"{where}: decode must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise BundleError(f"{where}: temperature must be a number > 0, got {temperature!r}")
    return method, float(temperature)


def check_probabilities(name: str, probs: Any, k: int | None = None) -> np.ndarray:
    """Return `probs` as an array (..., K) after checking its shape (values are checked per chunk)."""
    array = probs if isinstance(probs, np.ndarray) else np.asarray(probs)
    if array.ndim < 2 or array.shape[-1] < 1:
        raise ArrayError(f"{name} must have shape (N, ..., K), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ArrayError(f"{name} must be floating point, got dtype {array.dtype}")
    if k is not None and array.shape[-1] != k:
        raise ArrayError(f"{name} has {array.shape[-1]} classes but the palette has {k} colours")
    return array


def _checked_chunk(name: str, chunk: np.ndarray) -> np.ndarray:
    """Values of one chunk: finite, non-negative, and not all zero at any pixel."""
    chunk = np.asarray(chunk, dtype=np.float32)
    if not np.all(np.isfinite(chunk)) or np.any(chunk < 0):
        raise ArrayError(f"{name} must hold finite, non-negative probabilities")
    if np.any(chunk.max(axis=-1) <= 0):
        raise ArrayError(f"{name} has a pixel whose probabilities are all zero")
    return chunk


def _check_temperature(temperature: Any) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def annealed_probabilities(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Re-normalised probs^(1/T) along the last axis (float32), computed in the log domain.

    T = 1 gives the normalised input; T -> 0 puts all mass on the most probable class (ties share it).
    """
    return _anneal(_checked_chunk("probs", probs), _check_temperature(temperature))


def _anneal(chunk: np.ndarray, temperature: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        logits = np.log(chunk)
    # Subtracting the maximum first keeps exp() in (0, 1]: no overflow however small T is.
    logits -= logits.max(axis=-1, keepdims=True)
    # A float32 temperature must stay above zero; below 1e-30 the result is already argmax.
    logits /= np.float32(max(temperature, 1e-30))
    annealed = np.exp(logits, out=logits)
    annealed /= annealed.sum(axis=-1, keepdims=True)
    return annealed


def predicted_labels(probs: Any, batch: int = DEFAULT_BATCH) -> np.ndarray:
    """Most probable palette index per pixel (ties -> lowest index), uint8 when K <= 256."""
    probs = check_probabilities("probs", probs)
    batch = check_positive_int("batch", batch)
    dtype = np.uint8 if probs.shape[-1] <= 256 else np.int32
    out = np.empty(probs.shape[:-1], dtype=dtype)
    for start in range(0, probs.shape[0], batch):
        out[start:start + batch] = np.argmax(np.asarray(probs[start:start + batch]), axis=-1)
    return out


def _mean_lab(weights: np.ndarray, palette_lab: np.ndarray) -> np.ndarray:
    """Weighted mean palette colour per pixel; einsum keeps each pixel's sum independent of chunking."""
    lab = np.einsum("...k,kc->...c", weights, palette_lab)
    return lab / weights.sum(axis=-1, keepdims=True)


def decode(probs: Any, palette_rgb: Any, method: str, temperature: float = DEFAULT_TEMPERATURE,
           batch: int = DEFAULT_BATCH) -> np.ndarray:
    """Per-pixel probabilities (N, S, S, K) -> uint8 RGB images (N, S, S, 3) by `method`.

    `temperature` is used by `annealed_mean` only; `batch` is the number of images handled at once.
    """
    if method not in METHODS:
        raise ValueError(f"decode method must be one of {', '.join(METHODS)}, got {method!r}")
    palette = check_palette("palette", palette_rgb)
    probs = check_probabilities("probs", probs, k=palette.shape[0])
    batch = check_positive_int("batch", batch)
    if method == "annealed_mean":
        temperature = _check_temperature(temperature)
    palette_lab = rgb_to_lab(palette)
    out = np.empty((*probs.shape[:-1], 3), dtype=np.uint8)
    for start in range(0, probs.shape[0], batch):
        chunk = _checked_chunk("probs", probs[start:start + batch])
        if method == "argmax":
            out[start:start + batch] = palette[np.argmax(chunk, axis=-1)]
            continue
        if method == "annealed_mean":
            chunk = _anneal(chunk, temperature)
        out[start:start + batch] = lab_to_rgb(_mean_lab(chunk, palette_lab))
    return out


GAMUT_METHODS = ("chroma", "clip")


def keep_luminance(rgb_uint8: Any, gray01: Any, batch: int = DEFAULT_BATCH,
                   gamut: str = "chroma") -> np.ndarray:
    """Combine the CIELAB lightness of the input gray with the a/b chroma of the prediction.

    A saturated chroma at a lightness it cannot have in sRGB (bright blue, dark yellow) is out of gamut.
    `gamut="chroma"` (default) shrinks a/b until the colour fits, so the result's L equals the input's
    up to uint8 rounding (measured: within 0.3 L units); `gamut="clip"` clips RGB channels instead,
    which keeps more saturation but shifts L by up to about 21 units for saturated primaries.
    """
    if gamut not in GAMUT_METHODS:
        raise ValueError(f"gamut must be one of {', '.join(GAMUT_METHODS)}, got {gamut!r}")

    def convert(rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
        lab = rgb_to_lab(rgb)
        lab[..., 0] = gray_to_lightness(gray)
        return lab_to_rgb(reduce_chroma(lab) if gamut == "chroma" else lab)

    return _per_pixel(rgb_uint8, gray01, batch, convert)


def _per_pixel(rgb_uint8: Any, gray01: Any, batch: int, convert) -> np.ndarray:
    """`convert(rgb chunk, gray chunk) -> uint8 rgb chunk`, a per-pixel step, on a prediction (..., 3) and the
    input gray (...) it must cover, checked first, `batch` rows of the first axis at a time."""
    rgb = check_rgb("prediction", rgb_uint8)
    gray = check_gray("gray", gray01)
    if rgb.shape[:-1] != gray.shape:
        raise ArrayError(f"prediction {rgb.shape} and gray {gray.shape} must cover the same pixels")
    batch = check_positive_int("batch", batch)
    if rgb.ndim == 1:
        rgb, gray = rgb[None], gray[None]
    out = np.empty(rgb.shape, dtype=np.uint8)
    for start in range(0, rgb.shape[0], batch):
        out[start:start + batch] = convert(rgb[start:start + batch], gray[start:start + batch])
    return out.reshape(np.shape(rgb_uint8))


def match_gray(rgb_uint8: Any, gray01: Any, weights: Any, batch: int = DEFAULT_BATCH) -> np.ndarray:
    """Shift each pixel equally in R, G and B so that w . RGB / 255 equals the input's gray, then round
    and clip to 8 bits: the output turns back into the input under the grayscale stage's weights (up to
    rounding, and where clipping at black or white does not stop it).

    The true picture meets that constraint exactly; the CIELAB lightness of the gray pixel does not (a pure
    red has gray 0.21 and CIELAB L 53, the gray pixel 0.21 has L 22), so this keeps the decoded colour's
    hue and saturation where `keep_luminance` (cielab) darkens and desaturates it.
    """
    return _per_pixel(rgb_uint8, gray01, batch, partial(_match_gray_chunk, weights=weights))


def _match_gray_chunk(rgb: np.ndarray, gray: np.ndarray, weights: Any) -> np.ndarray:
    channels = rgb.astype(np.float32)
    # The gray stage's own sum (not a BLAS `@`, whose rounding depends on the CPU), in 0..255 units.
    offset = (gray - rgb_to_gray(channels, weights)) * (np.float32(255) / np.float32(sum(weights)))
    return np.clip(np.rint(channels + offset[..., None]), 0, 255).astype(np.uint8)


def put_back_lightness(rgb_uint8: Any, gray01: Any, method: str, weights: Any) -> np.ndarray:
    """The decoded colours with the input's lightness put back by `method` (LIGHTNESS_METHODS); `weights`
    are the grayscale stage's, used by match_gray."""
    if method == "match_gray":
        return match_gray(rgb_uint8, gray01, weights)
    if method == "cielab":
        return keep_luminance(rgb_uint8, gray01)
    raise ValueError(f"lightness method must be one of {', '.join(LIGHTNESS_METHODS)}, got {method!r}")
