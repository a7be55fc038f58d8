"""The `val_psnr` monitor as one compiled computation on the backend.

Scoring the decoded validation images with NumPy and scikit-image (what evaluate does) took ~0.6 s an epoch
on 63 images, more than the forward pass, and made the pipeline's fit ~20 % slower than with an undecoded
monitor. Here the same steps run as Keras ops, compiled once (XLA: jax.jit, or tf.function with
jit_compile): the annealed mean of the palette's CIELAB colours (decoding.DEFAULT_METHOD), its sRGB
rounded to 8 bits, the input's lightness put back as evaluate's default does (decoding.DEFAULT_LIGHTNESS:
`match_gray`, an equal shift of R, G and B until the grayscale weights give the input's gray; or `cielab`,
the gray's lightness with the chroma reduced into the gamut by the same bisection as colour.reduce_chroma),
8-bit again, and the PSNR of each image. The arithmetic is float32 rather than float64, so a pixel can
round to the neighbouring level where the two land on a rounding boundary; tests hold the monitor to
evaluate's figure within 0.001 dB. `val_ciede2000` is scored by evaluate's NumPy functions (`evaluate_scorer`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from skimage.color.colorconv import rgb_from_xyz, xyz_from_rgb, xyz_tristimulus_values

from colorize.core.colour import CHROMA_STEPS, GAMUT_TOLERANCE, _linear_levels, _rgb_from_xyz, rgb_to_lab
from colorize.evaluate.decoding import DEFAULT_LIGHTNESS, DEFAULT_METHOD, decode, put_back_lightness
from colorize.evaluate.metrics import PSNR_CAP_DB
from colorize.model.backend import import_keras
from colorize.model.models import annealed_weights

keras = import_keras()
ops = keras.ops

WHITE = xyz_tristimulus_values(illuminant="D65", observer="2")  # scikit-image's default, as colour.py uses


def _constant(array) -> object:
    return ops.convert_to_tensor(np.asarray(array, dtype=np.float32))


def _finv(f):
    return ops.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / 7.787)


def _lab_to_xyz(lab):
    """scikit-image's lab2xyz (negative Z clipped to 0)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = ops.stack([lab[..., 1] / 500.0 + fy, fy, ops.maximum(fy - lab[..., 2] / 200.0, 0.0)], axis=-1)
    return _finv(f) * _constant(WHITE)


def _lab_to_rgb8(lab):
    """scikit-image's lab2rgb, clipped to [0, 1] and rounded to 8 bits (colour.lab_to_rgb), as float."""
    linear = ops.tensordot(_lab_to_xyz(lab), _constant(rgb_from_xyz.T), axes=1)
    encoded = ops.where(linear > 0.0031308, 1.055 * ops.power(ops.maximum(linear, 0.0031308), 1 / 2.4) - 0.055,
                        linear * 12.92)
    return ops.round(ops.clip(encoded, 0.0, 1.0) * 255.0)


def _f(t):
    return ops.where(t > 0.008856, ops.power(ops.maximum(t, 0.008856), 1.0 / 3.0), 7.787 * t + 16.0 / 116.0)


def _rgb8_to_ab(rgb8):
    """a and b of colour.rgb_to_lab (8-bit levels through scikit-image's transfer curve)."""
    linear = ops.take(_constant(_linear_levels()), ops.cast(rgb8, "int32"))
    f = _f(ops.tensordot(linear, _constant(xyz_from_rgb.T), axes=1) / _constant(WHITE))
    return ops.stack([500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def _gray_lightness(gray):
    """colour.gray_to_lightness: L of the sRGB colour (g, g, g)."""
    linear = ops.where(gray > 0.04045, ops.power((ops.maximum(gray, 0.04045) + 0.055) / 1.055, 2.4), gray / 12.92)
    luminance = linear * float(xyz_from_rgb[1].sum())
    return 116.0 * _f(luminance / float(WHITE[1])) - 16.0


def _reduce_chroma(lightness, ab):
    """colour.reduce_chroma: a/b scaled towards neutral by bisection until the colour is in gamut (linear
    sRGB within [0, 1] up to GAMUT_TOLERANCE, Z not negative: colour._in_gamut)."""
    lightness = ops.clip(lightness, 0.0, 100.0)
    fy = (lightness + 16.0) / 116.0
    y = _finv(fy) * float(WHITE[1])
    a, b = ab[..., 0], ab[..., 1]
    matrix = _rgb_from_xyz()

    def in_gamut(scale):
        fz = fy - b * scale / 200.0
        x = _finv(fy + a * scale / 500.0) * float(WHITE[0])
        z = _finv(ops.maximum(fz, 0.0)) * float(WHITE[2])
        inside = fz >= 0
        for row in matrix:  # one channel at a time, as colour._in_gamut
            linear = float(row[0]) * x + float(row[1]) * y + float(row[2]) * z
            inside = inside & (linear >= -GAMUT_TOLERANCE) & (linear <= 1.0 + GAMUT_TOLERANCE)
        return inside

    low, high = ops.zeros_like(lightness), ops.ones_like(lightness)
    for _ in range(CHROMA_STEPS):
        middle = 0.5 * (low + high)
        ok = in_gamut(middle)
        low, high = ops.where(ok, middle, low), ops.where(ok, high, middle)
    scale = ops.where(in_gamut(ops.ones_like(lightness)), 1.0, low)
    return lightness, ab * scale[..., None]


def _match_gray(rgb8, gray, gray_weights):
    """decoding.match_gray on float 8-bit levels: the same products and sums (prep.transforms.rgb_to_gray)."""
    w = [np.float32(weight) / np.float32(255.0) for weight in gray_weights]
    current = rgb8[..., 0] * float(w[0]) + rgb8[..., 1] * float(w[1]) + rgb8[..., 2] * float(w[2])
    offset = (gray - current) * float(np.float32(255) / np.float32(sum(gray_weights)))
    return ops.clip(ops.round(rgb8 + offset[..., None]), 0.0, 255.0)


def decoded_rgb(probs, gray, palette_lab, temperature: float, gray_weights, lightness: str = DEFAULT_LIGHTNESS):
    """Annealed-mean decoding with the input's lightness put back (decoding.decode then
    put_back_lightness by `lightness`), as float 8-bit levels (N, S, S, 3)."""
    weights = annealed_weights(probs, temperature)
    lab = ops.tensordot(weights, palette_lab, axes=1) / ops.sum(weights, axis=-1, keepdims=True)
    rgb8 = _lab_to_rgb8(lab)
    if lightness == "match_gray":
        return _match_gray(rgb8, gray, gray_weights)
    lightness_plane, ab = _reduce_chroma(_gray_lightness(gray), _rgb8_to_ab(rgb8))
    return _lab_to_rgb8(ops.concatenate([lightness_plane[..., None], ab], axis=-1))


def _compiled(function: Callable) -> Callable:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # XLA fuses the ~500 elementwise steps (12 bisections of a colour conversion) into a few loops:
        # 45 -> 18 ms for a batch of 16 at 64x64 on a 2-core CPU, within a rounding step of the graph.
        return tf.function(function, reduce_retracing=True, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function


def decoded_psnr_function(palette: np.ndarray, temperature: float, gray_weights,
                          lightness: str = DEFAULT_LIGHTNESS) -> Callable[..., np.ndarray]:
    """A function (probs (N, S, S, K) float32, gray (N, S, S) in [0, 1], truth (N, S, S, 3) uint8) -> the PSNR
    in dB of each decoded image (metrics.psnr's, capped at PSNR_CAP_DB), compiled on the backend.
    `gray_weights` are the grayscale stage's; `lightness` one of decoding.LIGHTNESS_METHODS."""
    palette_lab = _constant(rgb_to_lab(palette))

    def per_image_psnr(probs, gray, truth):
        error = decoded_rgb(probs, gray, palette_lab, temperature, gray_weights, lightness) - ops.cast(truth, "float32")
        mse = ops.mean(ops.reshape(error * error, (ops.shape(error)[0], -1)), axis=-1)
        return ops.minimum(10.0 * ops.log10(255.0 ** 2 / ops.maximum(mse, 1e-30)), PSNR_CAP_DB)

    compiled = _compiled(per_image_psnr)

    def psnr(probs, gray, truth) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(compiled(probs, np.asarray(gray, np.float32), np.asarray(truth))),
                          dtype=np.float64)

    return psnr


def _evaluate_scores(metric: Callable, palette: np.ndarray, temperature: float, gray_weights, lightness: str,
                     probs, gray, truth) -> np.ndarray:
    rgb = decode(probs, palette, DEFAULT_METHOD, temperature)
    return metric(put_back_lightness(rgb, gray, lightness, gray_weights), truth)


def evaluate_scorer(metric: Callable) -> Callable[..., Callable[..., np.ndarray]]:
    """A scorer factory like decoded_psnr_function, (palette, temperature, gray_weights[, lightness]) ->
    (probs, gray, truth) -> per-image `metric`, that decodes and scores with evaluate's own NumPy functions."""

    def factory(palette: np.ndarray, temperature: float, gray_weights, lightness: str = DEFAULT_LIGHTNESS):
        return partial(_evaluate_scores, metric, palette, temperature, gray_weights, lightness)

    return factory
