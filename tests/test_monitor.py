"""The compiled val_psnr monitor against evaluate's NumPy decoding and PSNR."""

from __future__ import annotations

import numpy as np
import pytest

from colorize.core.colour import rgb_to_lab
from colorize.evaluate.decoding import (
    DEFAULT_METHOD,
    DEFAULT_TEMPERATURE,
    LIGHTNESS_METHODS,
    decode,
    keep_luminance,
    put_back_lightness,
)
from colorize.evaluate.metrics import PSNR_CAP_DB, psnr
from colorize.model.monitor import decoded_psnr_function, decoded_rgb

WEIGHTS = (0.21, 0.72, 0.07)


def peaked_probabilities(rng, shape, sharpness: float) -> np.ndarray:
    logits = rng.normal(size=shape).astype(np.float32) * sharpness
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


@pytest.fixture
def decoding_case():
    rng = np.random.default_rng(3)
    # Saturated primaries and random colours: many decoded colours leave the gamut at the input's lightness.
    palette = np.concatenate([np.array([[255, 0, 0], [0, 0, 255], [255, 255, 0], [0, 255, 0]], np.uint8),
                              rng.integers(0, 256, (12, 3)).astype(np.uint8)])
    probs = peaked_probabilities(rng, (6, 24, 24, 16), 4.0)
    gray = rng.random((6, 24, 24), dtype=np.float32)
    return probs, gray, palette


@pytest.mark.parametrize("lightness", LIGHTNESS_METHODS)
def test_decoded_colours_equal_evaluates_but_for_rounding(decoding_case, lightness):
    probs, gray, palette = decoding_case
    decoded = decode(probs, palette, DEFAULT_METHOD, DEFAULT_TEMPERATURE)
    expected = put_back_lightness(decoded, gray, lightness, WEIGHTS)
    ours = np.asarray(decoded_rgb(probs, gray, rgb_to_lab(palette), DEFAULT_TEMPERATURE, WEIGHTS, lightness))
    if lightness == "cielab":
        # The case exercises the gamut bisection: the decoded colours at the input's lightness are often outside.
        plain = keep_luminance(decoded, gray, gamut="clip")
        assert np.mean(np.any(plain != expected, axis=-1)) > 0.05
    else:
        # and the clipping at black and white: random grays far from the decoded colours' own.
        assert np.mean(np.any((expected == 0) | (expected == 255), axis=-1)) > 0.05
    difference = np.abs(ours - expected.astype(np.float32))
    assert difference.max() <= 1  # float32 against float64: a level either side of a rounding boundary
    assert np.mean(difference > 0) < 1e-3


@pytest.mark.parametrize("lightness", LIGHTNESS_METHODS)
def test_decoded_psnr_is_evaluates_within_a_thousandth_of_a_db(decoding_case, lightness):
    probs, gray, palette = decoding_case
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 256, probs.shape[:3] + (3,)).astype(np.uint8)
    expected_rgb = put_back_lightness(decode(probs, palette, DEFAULT_METHOD, DEFAULT_TEMPERATURE), gray, lightness,
                                      WEIGHTS)
    truth[0] = expected_rgb[0]  # a perfect image: capped, as metrics.psnr caps it
    truth[1] = np.clip(expected_rgb[1].astype(int) + rng.integers(-3, 4, truth[1].shape), 0, 255)
    score = decoded_psnr_function(palette, DEFAULT_TEMPERATURE, WEIGHTS, lightness)
    scores = score(probs, gray, truth)
    expected = psnr(expected_rgb, truth)
    assert scores.shape == (6,) and scores.dtype == np.float64
    assert scores[0] == PSNR_CAP_DB == expected[0]
    np.testing.assert_allclose(scores, expected, atol=1e-3)
    # A short batch (the last of an epoch) gives its images' own scores.
    np.testing.assert_allclose(score(probs[3:], gray[3:], truth[3:]), expected[3:], atol=1e-3)
