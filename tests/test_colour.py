import warnings

import numpy as np
import pytest

from colorize.core import colour
from colorize.core.colour import gray_to_lightness, lab_to_rgb, reduce_chroma, rgb_to_lab
from colorize.core.errors import ArrayError


def test_rgb_to_lab_known_colours():
    rgb = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    lab = rgb_to_lab(rgb)
    assert lab.dtype == np.float32
    # Published CIELAB (D65) values of sRGB black, white, red and blue.
    expected = [[0, 0, 0], [100, 0, 0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86]]
    np.testing.assert_allclose(lab, expected, atol=0.02)


def test_conversions_keep_any_leading_shape():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 3, 4, 3), dtype=np.uint8)
    assert rgb_to_lab(rgb).shape == (2, 3, 4, 3)
    assert rgb_to_lab(rgb[0, 0, 0]).shape == (3,)
    assert lab_to_rgb(rgb_to_lab(rgb)).shape == (2, 3, 4, 3)


def test_round_trip_is_exact_on_a_colour_grid():
    levels = np.arange(0, 256, 15, dtype=np.uint8)  # 18 levels incl. 0 and 255
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    np.testing.assert_array_equal(lab_to_rgb(rgb_to_lab(grid)), grid)


def test_chunked_conversion_equals_one_piece(monkeypatch):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    whole = rgb_to_lab(rgb)
    back = lab_to_rgb(whole + np.float32(3))
    monkeypatch.setattr(colour, "CHUNK_PIXELS", 4)
    np.testing.assert_array_equal(rgb_to_lab(rgb), whole)
    np.testing.assert_array_equal(lab_to_rgb(whole + np.float32(3)), back)


def test_lab_to_rgb_clips_out_of_gamut_without_warnings():
    lab = np.array([[50.0, 200.0, 0.0], [50.0, 0.0, -300.0], [120.0, 0.0, 0.0], [-5.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = lab_to_rgb(lab)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[2]) == (255, 255, 255) and tuple(rgb[3]) == (0, 0, 0)


def test_gray_to_lightness_matches_lab_of_gray_rgb():
    values = np.arange(256, dtype=np.uint8)
    lightness = gray_to_lightness(values.astype(np.float32) / 255)
    expected = rgb_to_lab(np.repeat(values[:, None], 3, axis=1))[:, 0]
    np.testing.assert_allclose(lightness, expected, atol=1e-4)
    assert lightness[0] == pytest.approx(0, abs=1e-4) and lightness[-1] == pytest.approx(100, abs=1e-3)
    assert np.all(np.diff(lightness) > 0)
    assert gray_to_lightness(np.zeros((2, 4, 4), np.float32)).shape == (2, 4, 4)


def test_reduce_chroma_keeps_lightness_and_in_gamut_colours():
    inside = rgb_to_lab(np.array([[10, 200, 30], [128, 128, 128]], np.uint8)).astype(np.float64)
    np.testing.assert_allclose(reduce_chroma(inside), inside, atol=1e-9)
    # Saturated blue chroma at a high lightness is out of gamut: chroma shrinks, L stays.
    outside = np.array([[90.0, 79.0, -108.0]])
    fitted = reduce_chroma(outside)
    assert fitted[0, 0] == 90.0
    ratio = fitted[0, 1:] / outside[0, 1:]
    assert 0 < ratio[0] < 1 and ratio[0] == pytest.approx(ratio[1])
    assert abs(rgb_to_lab(lab_to_rgb(fitted))[0, 0] - 90.0) < 0.3


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3), np.float32), "uint8"),
    (np.zeros((2, 4), np.uint8), "3 channels"),
])
def test_rgb_to_lab_rejects_bad_input(bad, message):
    with pytest.raises(ArrayError, match=message):
        rgb_to_lab(bad)


def test_gray_checks():
    with pytest.raises(ArrayError, match=r"\[0, 1\]"):
        gray_to_lightness(np.array([0.5, 1.2], np.float32))
    with pytest.raises(ArrayError, match="float"):
        gray_to_lightness(np.array([0, 255], np.uint8))
    # A float32 rounding overshoot is accepted and clipped.
    assert gray_to_lightness(np.array([1.00001], np.float32))[0] == pytest.approx(100, abs=1e-3)


def test_lab_to_rgb_rejects_nan():
    with pytest.raises(ArrayError, match="finite"):
        lab_to_rgb(np.array([[50.0, np.nan, 0.0]]))


def test_gray_to_rgb_uint8_rounds_in_float32_and_replicates():
    gray = np.array([[[0.0, 0.5, 1.0, 1.00005]]], np.float32)  # the last: a rounding overshoot, clipped
    out = colour.gray_to_rgb_uint8(gray)
    assert out.shape == (1, 1, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [[0] * 3, [128] * 3, [255] * 3, [255] * 3])
    # float32(0.3) * 255 is 76.5 in float32 (-> 76, to even) but 76.5000003 in float64 (-> 77): the
    # gray baseline's metrics were measured in float32, and the figures follow them.
    assert colour.gray_to_rgb_uint8(np.array([0.3], np.float32))[0, 0] == 76


def test_gray_to_rgb_uint8_refuses_what_is_not_gray():
    with pytest.raises(ArrayError, match=r"gray must lie in \[0, 1\]"):
        colour.gray_to_rgb_uint8(np.array([0.5, 1.2]))


def test_rgb_to_lab_is_skimages_rgb2lab_exactly():
    from skimage import color

    rng = np.random.default_rng(0)
    levels = np.arange(256, dtype=np.uint8)
    single = np.zeros((3, 256, 3), np.uint8)
    for channel in range(3):
        single[channel, :, channel] = levels  # every level of each channel alone
    colours = np.concatenate([single.reshape(-1, 3), np.repeat(levels[:, None], 3, axis=1),
                              rng.integers(0, 256, (200_000, 3), dtype=np.uint8)])
    assert np.array_equal(rgb_to_lab(colours), color.rgb2lab(colours).astype(np.float32))
    assert np.array_equal(rgb_to_lab(colours[:7].reshape(1, 7, 1, 3)),
                          color.rgb2lab(colours[:7]).astype(np.float32).reshape(1, 7, 1, 3))
