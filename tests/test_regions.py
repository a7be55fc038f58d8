"""regions.py: flat regions of a gray image, and the model's probabilities averaged over each."""

from __future__ import annotations

import numpy as np
import pytest

from colorize.core.errors import ArrayError
from colorize.core.params import EvaluateParams, read_yaml, validate
from colorize.evaluate import regions
from colorize.evaluate.regions import (
    DEFAULT_REGION_MIN_PIXELS,
    DEFAULT_REGION_TOLERANCE,
    flat_regions,
    pool_over_regions,
)
from repo_params import PARAMS_FILE


def random_probs(shape, k=5, seed=0):
    logits = np.random.default_rng(seed).normal(size=(*shape, k)) * 2
    probs = np.exp(logits)
    return (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)


def two_halves(size=8, left=100, right=200):
    gray = np.full((1, size, size), left / 255, np.float32)
    gray[:, :, size // 2:] = right / 255
    return gray


def test_two_flat_halves_are_two_regions():
    labels, count = flat_regions(two_halves(), 4)
    assert count == 2
    assert len(np.unique(labels[0, :, :4])) == 1 and len(np.unique(labels[0, :, 4:])) == 1
    assert labels[0, 0, 0] != labels[0, 0, 4]


def test_the_tolerance_joins_neighbours_within_it_and_only_those():
    ramp = np.tile(np.arange(16) * 3, (4, 1))[None] / 255  # each column 3 levels above its left neighbour
    assert flat_regions(ramp, 2)[1] == 16  # every column alone
    assert flat_regions(ramp, 3)[1] == 1  # a chain of small steps is one region
    assert flat_regions(ramp, 0)[1] == 16


def test_diagonal_neighbours_do_not_join():
    checker = (np.indices((4, 4)).sum(axis=0) % 2 * 200 / 255)[None]
    assert flat_regions(checker, 10)[1] == 16


def test_no_region_spans_two_images():
    gray = np.concatenate([two_halves(), two_halves()])
    labels, count = flat_regions(gray, 4)
    assert count == 4
    assert not set(labels[0].ravel()) & set(labels[1].ravel())


@pytest.mark.parametrize("tolerance", [-1, 256, 2.5, True, None])
def test_a_bad_tolerance_is_refused(tolerance):
    with pytest.raises(ValueError, match="region tolerance must be an integer in \\[0, 255\\]"):
        flat_regions(two_halves(), tolerance)


def test_gray_must_be_a_batch_of_images_in_0_1():
    with pytest.raises(ArrayError, match="3 dimensions"):
        flat_regions(two_halves()[0], 4)
    with pytest.raises(ArrayError, match=r"\[0, 1\]"):
        flat_regions(two_halves() * 255, 4)


def test_each_large_region_gets_its_mean_and_small_ones_keep_their_own():
    gray = two_halves(8)
    gray[0, 0, 0] = 0  # a 1-pixel region inside the left half
    probs = random_probs((1, 8, 8))
    pooled = pool_over_regions(probs, gray, 4, min_pixels=2)
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    left[0, 0] = False
    np.testing.assert_allclose(pooled[0][left], np.broadcast_to(probs[0][left].mean(axis=0), (31, 5)), rtol=1e-6)
    np.testing.assert_allclose(pooled[0, :, 4:].reshape(-1, 5),
                               np.broadcast_to(probs[0, :, 4:].reshape(-1, 5).mean(axis=0), (32, 5)), rtol=1e-6)
    np.testing.assert_array_equal(pooled[0, 0, 0], probs[0, 0, 0])
    assert pooled.dtype == probs.dtype
    np.testing.assert_allclose(pooled.sum(axis=-1), 1, atol=1e-6)


def test_regions_below_min_pixels_are_left_alone():
    probs = random_probs((1, 8, 8))
    np.testing.assert_array_equal(pool_over_regions(probs, two_halves(8), 4, min_pixels=33), probs)
    assert not np.array_equal(pool_over_regions(probs, two_halves(8), 4, min_pixels=32), probs)


def test_no_tolerance_is_no_pooling():
    probs = random_probs((2, 8, 8))
    assert pool_over_regions(probs, np.zeros((2, 8, 8), np.float32), None, 16) is probs


def test_the_result_does_not_depend_on_how_many_images_are_pooled_at_once(monkeypatch):
    rng = np.random.default_rng(4)
    gray = (rng.integers(0, 4, (7, 16, 16)) * 60 / 255).astype(np.float32)
    probs = random_probs((7, 16, 16), seed=5)
    whole = pool_over_regions(probs, gray, 4, 3)
    monkeypatch.setattr(regions, "CHUNK", 2)
    np.testing.assert_array_equal(pool_over_regions(probs, gray, 4, 3), whole)
    one_by_one = np.concatenate([pool_over_regions(probs[i:i + 1], gray[i:i + 1], 4, 3) for i in range(7)])
    np.testing.assert_array_equal(one_by_one, whole)


def test_mismatched_shapes_and_bad_min_pixels_are_refused():
    with pytest.raises(ArrayError, match="do not match"):
        pool_over_regions(random_probs((1, 8, 8)), np.zeros((1, 8, 7), np.float32), 4, 16)
    with pytest.raises(ValueError, match="region min_pixels must be an integer >= 1"):
        pool_over_regions(random_probs((1, 8, 8)), two_halves(8), 4, 0)


def test_the_defaults_are_params_yamls():
    """Two homes by design (params.yaml's evaluate section, `colorize` without it): they must agree."""
    evaluate = validate("evaluate", read_yaml(PARAMS_FILE)["evaluate"], EvaluateParams)
    assert (evaluate.region_tolerance, evaluate.region_min_pixels) == (DEFAULT_REGION_TOLERANCE,
                                                                        DEFAULT_REGION_MIN_PIXELS)
