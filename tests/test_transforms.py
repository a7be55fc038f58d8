"""transforms.py: padding geometry and fill, transparency compositing, weighted gray."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from colorize.prep.transforms import (
    RESAMPLING,
    composite_on_fill,
    crop_to_content,
    drawing_box,
    rgb_to_gray,
    square_resize,
)

RED = (255, 0, 0)
BLUE_FILL = [0, 0, 255]
WEIGHT_SETS = [[0.21, 0.72, 0.07], [0.21, 0.72, 0.007]]


def is_colour(array: np.ndarray, colour) -> np.ndarray:
    return np.all(array == np.asarray(colour, dtype=np.uint8), axis=-1)


# --- padding geometry ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(RESAMPLING))
def test_wide_image_is_centred_between_rows_of_fill(method):
    out = square_resize(Image.new("RGB", (40, 20), RED), 8, BLUE_FILL, method)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    # 40x20 -> 8x4 content, 2 rows of fill above and below.
    assert is_colour(out[:2], BLUE_FILL).all() and is_colour(out[6:], BLUE_FILL).all()
    assert is_colour(out[2:6], RED).all()


def test_tall_image_is_centred_between_columns_of_fill():
    out = square_resize(Image.new("RGB", (20, 40), RED), 8, BLUE_FILL, "lanczos")
    assert is_colour(out[:, :2], BLUE_FILL).all() and is_colour(out[:, 6:], BLUE_FILL).all()
    assert is_colour(out[:, 2:6], RED).all()


def test_content_keeps_its_orientation():
    # Left half red, right half green: after padding the left content column must stay red.
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = RED
    array[:, 20:] = (0, 255, 0)
    out = square_resize(Image.fromarray(array), 8, BLUE_FILL, "nearest")
    assert is_colour(out[2:6, :4], RED).all() and is_colour(out[2:6, 4:], (0, 255, 0)).all()


def test_square_image_fills_the_whole_output():
    out = square_resize(Image.new("RGB", (30, 30), RED), 8, BLUE_FILL, "bilinear")
    assert is_colour(out, RED).all()


def test_extreme_aspect_one_content_row_in_the_middle():
    # 700x50 at size 8: the content is round(50/700*8) = 1 row high; everything else is fill.
    out = square_resize(Image.new("RGB", (700, 50), RED), 8, BLUE_FILL, "lanczos")
    red_rows = np.flatnonzero(is_colour(out, RED).all(axis=1))
    fill_rows = np.flatnonzero(is_colour(out, BLUE_FILL).all(axis=1))
    assert len(red_rows) == 1 and red_rows[0] in (3, 4)
    assert sorted([*red_rows, *fill_rows]) == list(range(8))


@pytest.mark.parametrize("size", [(700, 2), (2, 700), (4096, 1)])
def test_extreme_aspect_thinner_than_a_pixel_does_not_crash(size):
    out = square_resize(Image.new("RGB", size, RED), 8, BLUE_FILL, "lanczos")
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    # Nothing but fill and (a trace of) the content: every channel lies between the two colours.
    low, high = np.minimum(RED, BLUE_FILL), np.maximum(RED, BLUE_FILL)
    assert np.all(out >= low) and np.all(out <= high)
    # The border rows/columns across the thin side are pure fill.
    edge = out[[0, -1]] if size[0] > size[1] else out[:, [0, -1]]
    assert is_colour(edge, BLUE_FILL).all()


def test_one_pixel_image_fills_the_output():
    out = square_resize(Image.new("RGB", (1, 1), (10, 200, 30)), 8, BLUE_FILL, "lanczos")
    assert is_colour(out, (10, 200, 30)).all()


# --- transparency -------------------------------------------------------------------------------------

def test_fully_transparent_pixels_become_the_fill():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert is_colour(np.asarray(composite_on_fill(image, [12, 34, 56])), (12, 34, 56)).all()
    out = square_resize(image, 8, [12, 34, 56], "lanczos")
    assert is_colour(out, (12, 34, 56)).all()


def test_half_transparent_pixels_blend_with_the_fill():
    image = Image.new("RGBA", (2, 2), (255, 0, 0, 128))
    out = np.asarray(composite_on_fill(image, [255, 255, 255])).astype(int)
    alpha = 128 / 255
    expected = np.rint(np.array([255, 0, 0]) * alpha + np.array([255, 255, 255]) * (1 - alpha))
    assert composite_on_fill(image, [255, 255, 255]).mode == "RGB"
    assert np.all(np.abs(out - expected) <= 1), out[0, 0]


def test_opaque_rgba_keeps_its_colours_and_rgb_passes_through():
    array = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    rgba = np.concatenate([array, np.full((5, 6, 1), 255, np.uint8)], axis=-1)
    assert np.array_equal(np.asarray(composite_on_fill(Image.fromarray(rgba, "RGBA"), [0, 0, 0])), array)
    assert np.array_equal(np.asarray(composite_on_fill(Image.fromarray(array), [0, 0, 0])), array)


def test_transparency_is_composited_before_resizing():
    # A transparent border around an opaque red square: no dark halo from the hidden black colour.
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (255, 0, 0, 255)
    out = square_resize(Image.fromarray(rgba, "RGBA"), 8, [255, 255, 255], "bilinear")
    assert out[..., 0].min() >= 250  # red channel: red inside, white outside, never dark


# --- gray ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights", WEIGHT_SETS)
def test_gray_of_known_pixels(weights):
    pixels = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [51, 102, 204]],
                      np.uint8)
    gray = rgb_to_gray(pixels, weights)
    assert gray.dtype == np.float32 and gray.shape == (6,)
    w = np.asarray(weights)
    expected = [w[0], w[1], w[2], w.sum(), 0.0, (51 * w[0] + 102 * w[1] + 204 * w[2]) / 255]
    np.testing.assert_allclose(gray, expected, rtol=0, atol=1e-6)


def test_the_two_weight_sets_differ_only_through_blue():
    pixels = np.array([[255, 255, 255], [0, 0, 255], [255, 255, 0]], np.uint8)
    a, b = rgb_to_gray(pixels, WEIGHT_SETS[0]), rgb_to_gray(pixels, WEIGHT_SETS[1])
    np.testing.assert_allclose(a, [1.0, 0.07, 0.93], atol=1e-6)
    np.testing.assert_allclose(b, [0.937, 0.007, 0.93], atol=1e-6)


def test_gray_keeps_any_leading_shape_and_rejects_other_channels():
    rgb = np.random.default_rng(0).integers(0, 256, size=(2, 3, 4, 3), dtype=np.uint8)
    gray = rgb_to_gray(rgb, WEIGHT_SETS[0])
    assert gray.shape == (2, 3, 4)
    np.testing.assert_allclose(gray[1, 2, 3], rgb[1, 2, 3] @ np.array(WEIGHT_SETS[0]) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        rgb_to_gray(np.zeros((4, 4, 4), np.uint8), WEIGHT_SETS[0])



def test_gray_is_the_same_bytes_on_every_cpu():
    """Each pixel's gray is (r * w0 + g * w1) + b * w2, every step rounded to float32, as scalar arithmetic
    gives it: no CPU-dependent fused or reordered sums (a BLAS product made data/gray differ between an
    AVX-512 and an AVX2 machine)."""
    rgb = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    gray = rgb_to_gray(rgb, WEIGHT_SETS[0])
    w = [np.float32(v) / np.float32(255.0) for v in WEIGHT_SETS[0]]
    expected = np.array([[np.float32(np.float32(np.float32(r) * w[0]) + np.float32(np.float32(g) * w[1]))
                          + np.float32(np.float32(b) * w[2]) for r, g, b in row] for row in rgb.tolist()],
                        dtype=np.float32)
    assert gray.dtype == np.float32
    assert gray.tobytes() == expected.tobytes()


# --- resize.crop: content -------------------------------------------------------------------------------

def small_drawing_on_a_page() -> Image.Image:
    page = np.full((100, 120, 3), 255, np.uint8)
    page[30:40, 50:70] = (200, 30, 30)  # a 10 x 20 red drawing
    return Image.fromarray(page)


def test_drawing_box_is_the_box_around_every_non_fill_pixel():
    assert drawing_box(small_drawing_on_a_page(), [255, 255, 255]) == (50, 30, 70, 40)
    assert drawing_box(Image.new("RGB", (5, 5), (255, 255, 255)), [255, 255, 255]) is None
    assert crop_to_content(Image.new("RGB", (5, 5), (255, 255, 255)), [255, 255, 255]).size == (5, 5)


def test_content_crop_makes_a_small_drawing_fill_the_square():
    plain = square_resize(small_drawing_on_a_page(), 16, [255, 255, 255], "nearest")
    cropped = square_resize(small_drawing_on_a_page(), 16, [255, 255, 255], "nearest", crop="content")
    red = lambda image: int((image[..., 1] < 100).sum())  # noqa: E731
    assert red(plain) < 16 * 16 * 0.05
    assert red(cropped) == 16 * 8  # 20 x 10 scaled to 16 x 8, centred on the page colour
    assert np.array_equal(cropped[4:12], np.broadcast_to(np.array([200, 30, 30], np.uint8), (8, 16, 3)))


def test_content_crop_sees_transparency_as_page():
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:20, 10:30] = (30, 30, 200, 255)
    box = drawing_box(composite_on_fill(Image.fromarray(rgba, "RGBA"), [255, 255, 255]), [255, 255, 255])
    assert box == (10, 10, 30, 20)
