import numpy as np
import pytest

from colorize.core.colour import gray_to_lightness, rgb_to_lab
from colorize.core.errors import ArrayError, BundleError
from colorize.core.params import load_section
from colorize.evaluate.decoding import (
    DEFAULT_LIGHTNESS,
    DEFAULT_METHOD,
    DEFAULT_TEMPERATURE,
    LIGHTNESS_METHODS,
    annealed_probabilities,
    bundle_decoding,
    decode,
    keep_luminance,
    match_gray,
    predicted_labels,
    put_back_lightness,
)
from colorize.prep.transforms import rgb_to_gray
from repo_params import ROOT

PALETTE = np.array([[0, 0, 0], [255, 255, 255], [200, 30, 40], [20, 60, 220]], dtype=np.uint8)


def random_probs(shape, k, seed, sharpness=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(*shape, k)) * sharpness
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_argmax_takes_most_probable_colour_ties_to_lowest_index():
    probs = np.zeros((1, 1, 3, 4), np.float32)
    probs[0, 0, 0] = [0.1, 0.2, 0.6, 0.1]
    probs[0, 0, 1] = [0.0, 0.0, 0.1, 0.9]
    probs[0, 0, 2] = [0.1, 0.4, 0.1, 0.4]  # tie between 1 and 3
    out = decode(probs, PALETTE, "argmax")
    assert out.shape == (1, 1, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], PALETTE[[2, 3, 1]])
    np.testing.assert_array_equal(predicted_labels(probs)[0, 0], [2, 3, 1])


def test_mean_averages_in_cielab_not_rgb():
    probs = np.zeros((1, 1, 1, 4), np.float32)
    probs[..., :2] = 0.5  # half black, half white
    out = decode(probs, PALETTE, "mean")
    # CIELAB L = 50 is sRGB gray 119 (an RGB mean would give 128).
    np.testing.assert_array_equal(out[0, 0, 0], [119, 119, 119])


def test_mean_of_one_hot_is_the_palette_colour_and_weights_are_normalised():
    probs = np.zeros((1, 2, 2, 4), np.float32)
    probs[0, 0, 0, 2] = 1.0
    probs[0, 0, 1, 3] = 3.0  # unnormalised input still averages correctly
    probs[0, 1, :, 0] = 1.0
    out = decode(probs, PALETTE, "mean")
    np.testing.assert_array_equal(out[0, 0], PALETTE[[2, 3]])
    np.testing.assert_array_equal(out[0, 1], PALETTE[[0, 0]])


def test_annealed_mean_tends_to_argmax_as_temperature_goes_to_zero():
    probs = random_probs((3, 8, 8), 4, seed=0)
    argmax = decode(probs, PALETTE, "argmax")
    np.testing.assert_array_equal(decode(probs, PALETTE, "annealed_mean", temperature=1e-3), argmax)
    # Sharpening is monotone: the top class's share grows as T falls.
    top = [annealed_probabilities(probs, t).max(axis=-1).mean() for t in (1.0, 0.6, 0.38, 0.1)]
    assert all(a < b for a, b in zip(top, top[1:]))


def test_annealed_mean_at_temperature_one_equals_mean():
    probs = random_probs((3, 8, 8), 4, seed=1, sharpness=1.0)
    np.testing.assert_allclose(annealed_probabilities(probs, 1.0), probs, atol=1e-6)
    mean = decode(probs, PALETTE, "mean").astype(int)
    annealed = decode(probs, PALETTE, "annealed_mean", temperature=1.0).astype(int)
    assert np.abs(mean - annealed).max() <= 1  # float32 rounding only
    assert np.mean(mean != annealed) < 0.01


def test_annealing_handles_zero_probabilities():
    probs = np.array([[0.0, 0.25, 0.75, 0.0]], np.float32)
    annealed = annealed_probabilities(probs, 0.5)
    np.testing.assert_allclose(annealed, [[0, 0.1, 0.9, 0]], atol=1e-6)  # 1:9 = 0.25²:0.75²


def test_decoding_does_not_depend_on_batch_size():
    probs = random_probs((9, 6, 6), 4, seed=2)
    for method in ("argmax", "mean", "annealed_mean"):
        whole = decode(probs, PALETTE, method, batch=64)
        np.testing.assert_array_equal(decode(probs, PALETTE, method, batch=2), whole)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"method": "median"}, ValueError, "argmax, mean, annealed_mean"),
    ({"method": "annealed_mean", "temperature": 0}, ValueError, "temperature"),
    ({"method": "mean", "batch": 0}, ValueError, "batch"),
])
def test_decode_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        decode(random_probs((1, 2, 2), 4, seed=0), PALETTE, **kwargs)


def test_decode_rejects_bad_probabilities():
    with pytest.raises(ArrayError, match="3 classes"):
        decode(random_probs((1, 2, 2), 3, seed=0), PALETTE, "mean")
    bad = random_probs((1, 2, 2), 4, seed=0)
    bad[0, 0, 0, 0] = -0.1
    with pytest.raises(ArrayError, match="non-negative"):
        decode(bad, PALETTE, "mean")
    zero = np.zeros((1, 2, 2, 4), np.float32)
    with pytest.raises(ArrayError, match="all zero"):
        decode(zero, PALETTE, "annealed_mean")


def lightness_error(rgb, gray):
    return np.abs(rgb_to_lab(rgb)[..., 0] - gray_to_lightness(gray))


SATURATED = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]],
                     np.uint8)


@pytest.mark.parametrize("kind", ["random", "saturated"])
def test_keep_luminance_matches_input_lightness(kind):
    rng = np.random.default_rng(3)
    if kind == "random":
        pred = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    else:
        pred = SATURATED[rng.integers(0, len(SATURATED), (4, 16, 16))]
    gray = rng.random((4, 16, 16)).astype(np.float32)
    out = keep_luminance(pred, gray)
    # Measured on 200 64x64 images: max 0.25 L units (uint8 rounding); chroma is shrunk into gamut.
    assert lightness_error(out, gray).max() < 0.3
    # Per-channel clipping instead loses lightness where the colour leaves the gamut (measured max ~21).
    clipped = keep_luminance(pred, gray, gamut="clip")
    assert lightness_error(clipped, gray).max() > 5
    # Hue comes from the prediction: where the prediction is strongly coloured, so is the output.
    pred_chroma = np.hypot(*np.moveaxis(rgb_to_lab(pred)[..., 1:], -1, 0))
    out_chroma = np.hypot(*np.moveaxis(rgb_to_lab(out)[..., 1:], -1, 0))
    mid = (gray > 0.3) & (gray < 0.7) & (pred_chroma > 60)
    assert np.median(out_chroma[mid]) > 20


def test_keep_luminance_of_a_gray_prediction_is_the_input_gray():
    gray = np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 16, 16)
    pred = np.full((1, 16, 16, 3), 77, np.uint8)  # any neutral colour: no chroma to carry over
    out = keep_luminance(pred, gray)
    expected = np.rint(gray * 255).astype(np.uint8)
    assert np.abs(out.astype(int) - expected[..., None]).max() <= 1
    assert np.all(out[..., 0] == out[..., 1]) and np.all(out[..., 1] == out[..., 2])


WEIGHTS = (0.21, 0.72, 0.07)


def test_match_gray_gives_a_true_colour_back_where_the_cielab_lightness_does_not():
    """A picture whose colours are known exactly: the grayscale stage's gray and the colours themselves.
    The shift undoes the grayscale stage; the gray pixel's CIELAB lightness is another colour's (pure
    red has gray 0.21 and L 53, the gray pixel 0.21 has L 22)."""
    rng = np.random.default_rng(5)
    truth = np.concatenate([PALETTE, rng.integers(0, 256, (60, 3)).astype(np.uint8)])[None, None]
    gray = rgb_to_gray(truth, WEIGHTS)
    exact = match_gray(truth, gray, WEIGHTS)
    assert np.abs(exact.astype(int) - truth).max() <= 1  # float rounding of the gray only
    assert np.mean(exact == truth) > 0.95
    cielab = keep_luminance(truth, gray)
    assert np.abs(cielab.astype(int) - truth).max() > 60  # the saturated ones move far
    assert put_back_lightness(truth, gray, "match_gray", WEIGHTS).tobytes() == exact.tobytes()
    assert put_back_lightness(truth, gray, "cielab", WEIGHTS).tobytes() == cielab.tobytes()


def test_match_gray_is_the_same_in_batches_and_checks_its_inputs():
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, (5, 6, 6, 3)).astype(np.uint8)
    gray = rng.random((5, 6, 6), dtype=np.float32)
    whole = match_gray(rgb, gray, WEIGHTS, batch=5)
    assert match_gray(rgb, gray, WEIGHTS, batch=2).tobytes() == whole.tobytes()
    assert match_gray(rgb[0], gray[0], WEIGHTS).tobytes() == whole[0].tobytes()  # one picture (S, S, 3)
    with pytest.raises(ArrayError, match="same pixels"):
        match_gray(rgb, gray[:, :5], WEIGHTS)
    with pytest.raises(ArrayError, match="uint8"):
        match_gray(rgb.astype(np.float32), gray, WEIGHTS)
    with pytest.raises(ValueError, match="lightness method must be one of match_gray, cielab, got 'none'"):
        put_back_lightness(rgb, gray, "none", WEIGHTS)


def test_keep_luminance_rejects_mismatched_shapes():
    with pytest.raises(ArrayError, match="same pixels"):
        keep_luminance(np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="gamut"):
        keep_luminance(np.zeros((1, 4, 4, 3), np.uint8), np.zeros((1, 4, 4), np.float32), gamut="none")


def test_bundle_decoding_is_the_bundles_else_the_module_defaults():
    assert bundle_decoding({}) == (DEFAULT_METHOD, DEFAULT_TEMPERATURE)
    assert bundle_decoding({"decode": "mean"}) == ("mean", DEFAULT_TEMPERATURE)
    assert bundle_decoding({"decode": "argmax", "temperature": 2}) == ("argmax", 2.0)


def test_the_module_defaults_are_params_yamls():
    """Two homes by design (the pipeline's params.yaml, inference without it): they must agree."""
    evaluate = load_section("evaluate", ROOT / "params.yaml")
    assert (evaluate.decode, evaluate.temperature, evaluate.lightness) == (DEFAULT_METHOD, DEFAULT_TEMPERATURE,
                                                                            DEFAULT_LIGHTNESS)
    assert DEFAULT_LIGHTNESS in LIGHTNESS_METHODS


@pytest.mark.parametrize(("meta", "message"), [
    ({"decode": "median"}, "m/bundle.json: decode must be one of argmax, mean, annealed_mean, got 'median'"),
    ({"temperature": 0}, "m/bundle.json: temperature must be a number > 0, got 0"),
    ({"temperature": True}, "m/bundle.json: temperature must be a number > 0, got True"),
])
def test_bundle_decoding_rejects_bad_values(meta, message):
    with pytest.raises(BundleError) as info:
        bundle_decoding(meta, "m/bundle.json")
    assert str(info.value) == message
