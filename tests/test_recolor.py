"""recolor.py: where the picture sits in the model's square, exact gray, and chroma at full resolution.

No Keras here: `prepare` and `apply_chroma` are pure NumPy/Pillow, so "model predictions" are made up.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from colorize.app.recolor import (
    Prepared,
    apply_chroma,
    content_box,
    prepare,
)
from colorize.core.colour import rgb_to_lab
from colorize.evaluate.decoding import LIGHTNESS_METHODS, match_gray
from colorize.prep.transforms import (
    RESAMPLING,
    composite_on_fill,
    rgb_to_gray,
    square_resize,
)
from gray_pairs import equal_gray_pair

WEIGHTS = [0.21, 0.72, 0.07]
WHITE = (255, 255, 255)


def placed_box(height: int, width: int, size: int, method: str = "lanczos") -> tuple[int, int, int, int] | None:
    """(top, left, h, w) of a black height x width picture in its padded square, as the pipeline draws it."""
    square = square_resize(Image.new("RGB", (width, height), (0, 0, 0)), size, WHITE, method)
    rows, cols = np.nonzero((square != 255).any(axis=-1))
    if len(rows) == 0:
        return None
    return int(rows.min()), int(cols.min()), int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


# --- content_box ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [16, 64])
@pytest.mark.parametrize(("height", "width"), [
    (1, 1), (16, 16), (5, 17), (17, 5), (301, 517), (517, 301), (3, 4), (4, 3), (40, 23), (23, 40),
    (7, 100), (100, 7), (63, 64), (1, 2), (2, 1), (1000, 999),
])
@pytest.mark.parametrize("method", ["lanczos", "nearest"])
def test_content_box_is_where_the_pipeline_puts_the_picture(height, width, size, method):
    box = content_box(height, width, size)
    assert placed_box(height, width, size, method) == box
    top, left, h, w = box
    assert 0 <= top and top + h <= size and 0 <= left and left + w <= size
    assert max(h, w) == size  # the long side fills the square


@pytest.mark.parametrize(("height", "width"), [(5, 17), (301, 517), (517, 301), (40, 23), (100, 7), (2, 1)])
def test_content_box_agrees_with_imageops_pad(height, width):
    """Pillow's own pad of the full picture puts it where content_box says (shapes without a rounding tie)."""
    padded = np.asarray(ImageOps.pad(Image.new("L", (width, height), 0), (64, 64),
                                     method=RESAMPLING["nearest"], color=255, centering=(0.5, 0.5)))
    rows, cols = np.nonzero(padded == 0)
    actual = (rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert content_box(height, width, 64) == tuple(int(v) for v in actual)


@pytest.mark.parametrize("size", [16, 64, 100])
def test_content_box_is_the_pipeline_placement_for_every_small_shape(size):
    """Every shape up to 36x36, at sizes with rounding ties (23x40 into 100 is 57.5 rows) and without."""
    for height in range(1, 37):
        for width in range(1, 37):
            assert content_box(height, width, size) == placed_box(height, width, size, "nearest"), (height, width)


def test_content_box_at_an_exact_half():
    # 23 * 100 / 40 = 57.5 exactly, where Pillow's 23 / 40 * 100 = 57.49999...: both must agree.
    assert content_box(23, 40, 100) == placed_box(23, 40, 100)


@pytest.mark.parametrize(("height", "width", "box"), [(300, 7, (0, 8, 16, 1)), (7, 300, (8, 0, 1, 16)),
                                                      (1, 5000, (32, 0, 1, 64))])
def test_a_very_thin_picture_stays_visible_to_the_model(height, width, box):
    size = box[2] if box[2] > 1 else box[3]
    assert content_box(height, width, size) == box
    top, left, h, w = box
    square = square_resize(Image.new("RGB", (width, height), (0, 0, 0)), size, WHITE)
    assert (square[top:top + h, left:left + w] < 128).all()
    assert placed_box(height, width, size) == box


# --- match_gray -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights", [WEIGHTS, [0.299, 0.587, 0.114], [1 / 3] * 3, [0.21, 0.72, 0.007]])
def test_match_gray_is_exact_up_to_rounding_when_nothing_clips(weights):
    rng = np.random.default_rng(3)
    rgb = rng.integers(60, 191, size=(37, 23, 3)).astype(np.uint8)
    # Targets within 0.1 of the current gray shift every channel by at most 25.5 / sum(w): no clipping.
    target = rgb_to_gray(rgb, weights) + rng.uniform(-0.1, 0.1, size=rgb.shape[:2]).astype(np.float32) * sum(weights)
    out = match_gray(rgb, target, weights)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert 0 < out.min() and out.max() < 255
    error = np.abs(rgb_to_gray(out, weights) - target) * 255
    assert error.max() <= 0.5 * sum(weights) + 1e-3  # each channel rounds by at most 0.5
    # One equal offset per pixel: the differences between channels (the colour) are kept.
    for a, b in [(0, 1), (1, 2)]:
        kept = out[..., a].astype(int) - out[..., b] - (rgb[..., a].astype(int) - rgb[..., b])
        assert np.abs(kept).max() <= 1


def test_match_gray_when_clipping_moves_towards_the_target_and_keeps_neutral_pixels_neutral():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(50, 50, 3)).astype(np.uint8)
    target = rng.random((50, 50), dtype=np.float32)
    out = match_gray(rgb, target, WEIGHTS)
    before = np.abs(rgb_to_gray(rgb, WEIGHTS) - target) * 255
    after = np.abs(rgb_to_gray(out, WEIGHTS) - target) * 255
    assert (after <= before + 0.5 + 1e-3).all()  # clipping shortens the move, never reverses it
    assert (after < before).mean() > 0.9
    neutral = np.full((1, 4, 3), 128, np.uint8)
    levels = np.array([[0, 60, 200, 255]], np.float32) / 255
    assert match_gray(neutral, levels, WEIGHTS)[0].tolist() == [[v] * 3 for v in (0, 60, 200, 255)]


# --- prepare and apply_chroma ----------------------------------------------------------------------------

def test_prepare_is_what_the_pipeline_makes():
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, size=(31, 12, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    prepared = prepare(image, 16, [10, 200, 30], WEIGHTS, "bicubic")
    flat = np.asarray(composite_on_fill(image, [10, 200, 30]))
    assert prepared.gray.shape == (31, 12) and prepared.gray.dtype == np.float32
    np.testing.assert_array_equal(prepared.gray, rgb_to_gray(flat, WEIGHTS))
    # The gray is taken before resizing (so colours can't matter); the pipeline resizes RGB, then grays.
    # Resampling is linear, so the two agree up to uint8 rounding of the resized RGB.
    expected = rgb_to_gray(square_resize(image, 16, [10, 200, 30], "bicubic"), WEIGHTS)
    np.testing.assert_allclose(prepared.model_input, expected, atol=1.0 / 255)


def test_equal_gray_gives_equal_model_input_at_the_model_size():
    a, b = equal_gray_pair(16, 16, 0)
    pa, pb = (prepare(Image.fromarray(x), 16, WHITE, WEIGHTS) for x in (a, b))
    np.testing.assert_array_equal(pa.model_input, pb.model_input)
    np.testing.assert_array_equal(pa.gray, pb.gray)


@pytest.mark.parametrize(("height", "width"), [(40, 40), (301, 517)])
def test_equal_gray_gives_equal_model_input_at_any_size(height, width):
    a, b = equal_gray_pair(height, width, 1)
    pa, pb = (prepare(Image.fromarray(x), 16, WHITE, WEIGHTS) for x in (a, b))
    np.testing.assert_array_equal(pa.model_input, pb.model_input)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (17, 5), (5, 17), (301, 517), (7, 300), (16, 16)])
def test_apply_chroma_keeps_the_size_and_only_adds_colour(height, width):
    rng = np.random.default_rng(height * 1000 + width)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    prepared = prepare(Image.fromarray(rgb), 16, WHITE, WEIGHTS)
    predicted = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    out = apply_chroma(prepared, predicted, WEIGHTS)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    error = np.abs(rgb_to_gray(out, WEIGHTS) - prepared.gray) * 255
    unclipped = ((out > 0) & (out < 255)).all(axis=-1)
    assert error[unclipped].max(initial=0) <= 0.5 + 1e-3


def test_apply_chroma_of_a_neutral_prediction_is_gray():
    gray = np.random.default_rng(2).integers(0, 256, size=(23, 61), dtype=np.uint8)
    prepared = prepare(Image.fromarray(gray, "L"), 16, WHITE, WEIGHTS)
    out = apply_chroma(prepared, np.full((16, 16, 3), 128, np.uint8), WEIGHTS)
    assert np.ptp(out.astype(int), axis=-1).max() <= 1
    assert np.abs(out.astype(int) - gray[..., None]).max() <= 1


@pytest.mark.parametrize(("height", "width"), [(40, 400), (400, 40), (9, 30)])
def test_apply_chroma_takes_colour_from_the_picture_area_only(height, width):
    """Red where the picture sits in the square, green in the padding: no green may leak into the output."""
    prepared = Prepared(gray=np.full((height, width), 0.5, np.float32), model_input=np.zeros((16, 16), np.float32))
    top, left, h, w = content_box(height, width, 16)
    predicted = np.zeros((16, 16, 3), np.uint8)
    predicted[...] = (40, 140, 40)
    predicted[top:top + h, left:left + w] = (180, 60, 60)
    out = apply_chroma(prepared, predicted, WEIGHTS)
    a_star = rgb_to_lab(out)[..., 1]
    assert a_star.min() > 20, "green from the padding reached the picture"
    assert (out[..., 0] > out[..., 1]).all()


# --- the float32 closed forms against skimage's float64 conversions (colorize.core.colour) ------------------

def test_gray_lightness_fast_is_skimages_lightness():
    from colorize.app.recolor import gray_lightness_fast
    from colorize.core.colour import gray_to_lightness

    gray = np.concatenate([np.linspace(0, 1, 4097), [0.04045, 0.0404, 0.0405, 0.008856]]).astype(np.float32)
    assert np.abs(gray_lightness_fast(gray) - gray_to_lightness(gray)).max() < 2e-3


def test_lab_to_rgb_fast_is_within_one_level_of_lab_to_rgb():
    from colorize.app.recolor import lab_to_rgb_fast
    from colorize.core.colour import lab_to_rgb

    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, 200_000), rng.uniform(-110, 110, 200_000),
                    rng.uniform(-110, 110, 200_000)], axis=-1).astype(np.float32)  # out of gamut too
    fast = np.rint(lab_to_rgb_fast(lab[:, 0], lab[:, 1], lab[:, 2]))
    assert np.abs(fast - lab_to_rgb(lab).astype(np.float32)).max() <= 1


def test_the_colour_mixing_is_the_same_bytes_on_every_cpu():
    """x * m0 + y * m1 + z * m2 per output channel, every step rounded to float32 as scalar arithmetic gives
    it (a BLAS product rounds by the CPU's kernel). match_gray's sum is the gray stage's, tested there."""
    from colorize.app.recolor import _RGB_FROM_XYZ, xyz_to_linear_rgb

    xyz = np.random.default_rng(2).random((40, 3), dtype=np.float32)
    expected = [[np.float32(np.float32(np.float32(x * m[0]) + np.float32(y * m[1])) + np.float32(z * m[2]))
                 for m in _RGB_FROM_XYZ] for x, y, z in xyz]
    assert xyz_to_linear_rgb(xyz).tobytes() == np.array(expected, dtype=np.float32).tobytes()


@pytest.mark.parametrize("lightness", LIGHTNESS_METHODS)
def test_apply_chroma_is_within_one_level_of_the_full_resolution_skimage_path(lightness):
    from colorize.app.recolor import upsample
    from colorize.core.colour import gray_to_lightness, lab_to_rgb

    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 256, size=(90, 130, 3), dtype=np.uint8))
    weights = [0.21, 0.72, 0.07]
    prepared = prepare(picture, 16, [255, 255, 255], weights)
    predicted = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    top, left, h, w = content_box(90, 130, 16)
    lab = rgb_to_lab(predicted[top:top + h, left:left + w])
    lightness_plane = (upsample(lab[..., 0], 90, 130) if lightness == "match_gray"
                       else gray_to_lightness(prepared.gray))
    lab = np.stack([lightness_plane, upsample(lab[..., 1], 90, 130), upsample(lab[..., 2], 90, 130)], axis=-1)
    reference = match_gray(lab_to_rgb(lab), prepared.gray, weights)
    difference = np.abs(apply_chroma(prepared, predicted, weights, lightness).astype(int) - reference.astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.05


def test_content_crop_colours_the_drawing_and_leaves_the_page_gray():
    """With resize.crop: content the model sees the drawing's box; its colours land on that box only."""
    page = np.full((60, 90, 3), 255, np.uint8)
    page[20:30, 40:60] = (120, 120, 120)
    prepared = prepare(Image.fromarray(page), 16, WHITE, WEIGHTS, "nearest", crop="content")
    assert prepared.box == (40, 20, 60, 30)
    # The model input is the cropped drawing scaled to fill the width: gray rows in the middle of the square.
    assert np.allclose(prepared.model_input[4:12], 120 * sum(WEIGHTS) / 255, atol=1e-3)
    out = apply_chroma(prepared, np.full((16, 16, 3), (180, 60, 60), np.uint8), WEIGHTS)
    assert out.shape == (60, 90, 3)
    assert (out[20:30, 40:60, 0] > out[20:30, 40:60, 1] + 20).all()  # red on the drawing
    outside = np.ones((60, 90), bool)
    outside[20:30, 40:60] = False
    assert np.ptp(out[outside].astype(int), axis=-1).max() <= 1        # the page keeps no chroma
