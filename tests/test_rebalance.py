import math

import numpy as np
import pytest

from colorize.core.errors import ArrayError
from colorize.model.rebalance import (
    class_weights,
    count_labels,
    smooth_distribution,
)

# Histogram 6, 3, 1, 0 over k = 4: p = 0.6, 0.3, 0.1, 0.
LABELS = np.array([[0] * 6 + [1] * 3 + [2]], np.uint8).reshape(1, 2, 5)
P = np.array([0.6, 0.3, 0.1, 0.0])


def test_count_labels():
    np.testing.assert_array_equal(count_labels(LABELS, 4), [6, 3, 1, 0])


def test_hand_computed_weights_at_strength_half():
    # denominators 0.5·p + 0.5/4 = 0.425, 0.275, 0.175, 0.125 -> 1/d = 40/17, 40/11, 40/7, 8
    # normaliser Σ p/d = 0.6·40/17 + 0.3·40/11 + 0.1·40/7 = 24/17 + 12/11 + 4/7
    expected = np.array([40 / 17, 40 / 11, 40 / 7, 8]) / (24 / 17 + 12 / 11 + 4 / 7)
    weights = class_weights(LABELS, 4, 0.5)
    assert weights.dtype == np.float32 and weights.shape == (4,)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_expected_weight_over_training_pixels_is_one(strength):
    weights = class_weights(LABELS, 4, strength)
    assert float(np.sum(P * weights)) == pytest.approx(1.0, rel=1e-6)
    assert weights[LABELS].mean() == pytest.approx(1.0, rel=1e-6)


def test_strength_zero_switches_rebalancing_off():
    np.testing.assert_array_equal(class_weights(LABELS, 4, 0.0), np.ones(4, np.float32))


def test_rarer_colours_weigh_more():
    for strength in (0.2, 0.5, 1.0):
        weights = class_weights(LABELS, 4, strength)
        assert weights[0] < weights[1] < weights[2] <= weights[3]
    # Stronger rebalancing spreads the weights further apart.
    ratios = [class_weights(LABELS, 4, s)[2] / class_weights(LABELS, 4, s)[0] for s in (0.2, 0.5, 1.0)]
    assert ratios[0] < ratios[1] < ratios[2]


def test_absent_colour_gets_the_largest_finite_weight_even_at_full_strength():
    weights = class_weights(LABELS, 4, 1.0)
    assert np.all(np.isfinite(weights))
    assert weights[3] == weights.max() == weights[2]  # the rarest present colour's weight
    # At strength 1 the weights are inverse frequencies, normalised: 1/p / Σ p·(1/p) = 1/(3p)
    np.testing.assert_allclose(weights[:3], 1 / (3 * P[:3]), rtol=1e-6)


def test_smoothing_hand_case():
    # Two colours sigma·sqrt(2 ln 2) apart: kernel off-diagonal exp(-d²/2σ²) = 1/2, columns sum to 3/2.
    sigma = 5.0
    distance = sigma * math.sqrt(2 * math.log(2))
    palette = np.array([[50.0, 0.0, 0.0], [50.0, distance, 0.0]])
    smoothed = smooth_distribution(np.array([0.8, 0.2]), palette, sigma)
    np.testing.assert_allclose(smoothed, [(0.8 + 0.1) / 1.5, (0.2 + 0.4) / 1.5])
    # Far-apart colours are not smoothed at all.
    far = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    np.testing.assert_allclose(smooth_distribution(np.array([0.8, 0.2]), far, sigma), [0.8, 0.2])


def test_smoothing_evens_out_weights_of_near_colours():
    labels = np.array([0] * 8 + [1] * 2, np.uint8)
    distance = 5.0 * math.sqrt(2 * math.log(2))
    palette = np.array([[50.0, 0.0, 0.0], [50.0, distance, 0.0]])
    plain = class_weights(labels, 2, 1.0)
    smoothed = class_weights(labels, 2, 1.0, sigma=5.0, palette_lab=palette)
    assert smoothed[1] / smoothed[0] < plain[1] / plain[0]
    assert float(np.sum(np.array([0.8, 0.2]) * smoothed)) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"strength": 1.5}, ValueError, "strength"),
    ({"strength": 0.5, "sigma": 0}, ValueError, "sigma"),
    ({"strength": 0.5, "palette_lab": np.zeros((3, 3))}, ArrayError, "palette_lab"),
])
def test_class_weights_validates(kwargs, error, message):
    with pytest.raises(error, match=message):
        class_weights(LABELS, 4, **kwargs)


def test_labels_are_validated():
    with pytest.raises(ArrayError, match=r"\[0, 1\]"):
        class_weights(LABELS, 2, 0.5)
    with pytest.raises(ArrayError, match="no pixels"):
        class_weights(np.zeros((0,), np.uint8), 4, 0.5)
