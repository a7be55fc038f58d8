"""palette.py: K-means on training pixels only, deterministic, sorted; nearest-colour encoding."""

from __future__ import annotations

import numpy as np
import pytest

from colorize.core.artifacts import read_sharded, write_sharded
from colorize.core.colour import rgb_to_lab
from colorize.core.errors import PaletteError, UserError
from colorize.prep.splitting import split_ids
from colorize.quantize.palette import (
    fit_palette,
    nearest_palette_index,
    palette_from_dict,
    palette_to_dict,
    sample_pixels,
)

TRAIN_COLOURS = np.array([[0, 0, 0], [255, 255, 255], [200, 30, 30], [30, 160, 40], [240, 220, 60]], np.uint8)
TEST_ONLY = np.array([255, 0, 255], np.uint8)  # magenta: drawn only on test images


def rows_of(palette: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(int(c) for c in row) for row in palette}


def test_palette_is_fitted_on_training_images_only(tmp_path, make_blocky):
    ids = [f"id{i:02d}" for i in range(20)]
    split = split_ids(ids, test_size=0.3, val_size=0.0, seed=0)
    images = make_blocky(len(ids), 8, TRAIN_COLOURS, seed=1)
    for i, image_id in enumerate(ids):
        if image_id in split["test"]:
            images[i, :4, :4] = TEST_ONLY
    # Every training colour appears in training images (else the fit below could not be exact).
    train_images = read_sharded(_store(tmp_path, ids, images), split["train"])[1]
    assert rows_of(train_images.reshape(-1, 3)) == rows_of(TRAIN_COLOURS)

    k = len(TRAIN_COLOURS)
    palette = fit_palette(sample_pixels(train_images, 10_000, 0), k, "rgb", 0)
    assert tuple(TEST_ONLY) not in rows_of(palette)
    assert rows_of(palette) == rows_of(TRAIN_COLOURS)
    # Control: fitted on every image the test-only colour is found, so the check above can fail.
    everything = fit_palette(sample_pixels(images, 10_000, 0), k + 1, "rgb", 0)
    assert tuple(int(c) for c in TEST_ONLY) in rows_of(everything)


def _store(tmp_path, ids, images):
    folder = tmp_path / "resized"
    folder.mkdir()
    write_sharded(folder, "images", ids, images, shard_bytes=3 * images[0].nbytes)
    return folder


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_fit_is_deterministic_for_a_seed_and_sorted_by_lightness(random_rgb, space):
    first = fit_palette(random_rgb, 8, space, seed=5)
    second = fit_palette(random_rgb.copy(), 8, space, seed=5)
    assert first.dtype == np.uint8 and first.shape == (8, 3)
    assert np.array_equal(first, second)
    lightness = rgb_to_lab(first)[:, 0]
    assert np.all(np.diff(lightness) >= 0), lightness


def test_fit_depends_on_the_seed(random_rgb):
    palettes = {fit_palette(random_rgb, 8, "rgb", seed=s).tobytes() for s in range(4)}
    assert len(palettes) > 1


def test_too_few_distinct_colours_is_a_palette_error():
    pixels = np.repeat(TRAIN_COLOURS, 50, axis=0)
    with pytest.raises(PaletteError) as info:
        fit_palette(pixels, 6, "rgb", 0)
    message = str(info.value)
    assert "palette.k=6" in message and "found 5" in message and "\n" not in message
    assert isinstance(info.value, UserError)
    assert rows_of(fit_palette(pixels, 5, "rgb", 0)) == rows_of(TRAIN_COLOURS)


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_nearest_index_matches_brute_force(random_rgb, space):
    palette = fit_palette(random_rgb, 6, "rgb", 0)
    index = nearest_palette_index(random_rgb, palette, space)
    assert index.shape == random_rgb.shape[:-1] and index.dtype == np.uint8
    if space == "rgb":
        points, centres = random_rgb.astype(np.float64), palette.astype(np.float64)
    else:
        points, centres = rgb_to_lab(random_rgb).astype(np.float64), rgb_to_lab(palette).astype(np.float64)
    distances = ((points[..., None, :] - centres) ** 2).sum(axis=-1)
    expected = np.argmin(distances, axis=-1)
    if space == "rgb":
        assert np.array_equal(index, expected)
    else:  # float32 arithmetic may flip exact near-ties; the chosen colour must be as near as the best
        chosen = np.take_along_axis(distances, index[..., None].astype(np.intp), axis=-1)[..., 0]
        np.testing.assert_allclose(chosen, distances.min(axis=-1), rtol=1e-4, atol=1e-3)
        assert np.mean(index == expected) > 0.99


def test_rgb_and_lab_distances_can_disagree():
    # Mid gray is nearer to dark gray in RGB but nearer to light gray in CIELAB (perceptual lightness).
    palette = np.array([[60, 60, 60], [200, 200, 200]], np.uint8)
    pixel = np.array([[128, 128, 128]], np.uint8)
    assert nearest_palette_index(pixel, palette, "rgb")[0] == 0
    assert nearest_palette_index(pixel, palette, "lab")[0] == 1


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_encode_decode_round_trip(random_rgb, space):
    palette = fit_palette(random_rgb, 16, space, 0)
    assert np.array_equal(palette[nearest_palette_index(palette, palette, space)], palette)


def test_chunking_does_not_change_the_result(random_rgb):
    palette = fit_palette(random_rgb, 7, "rgb", 0)
    whole = nearest_palette_index(random_rgb, palette, "lab")
    assert np.array_equal(nearest_palette_index(random_rgb, palette, "lab", chunk_pixels=37), whole)


def test_sample_pixels_is_seeded_and_without_replacement():
    # Every pixel is unique, so drawing without replacement gives unique rows.
    values = np.arange(30 * 30, dtype=np.int64)
    images = np.stack([values % 256, values // 256, np.zeros_like(values)], axis=-1).astype(np.uint8)
    images = images.reshape(1, 30, 30, 3)
    a, b = sample_pixels(images, 500, seed=2), sample_pixels(images, 500, seed=2)
    assert a.shape == (500, 3) and np.array_equal(a, b)
    assert len(np.unique(a, axis=0)) == 500
    assert not np.array_equal(a, sample_pixels(images, 500, seed=3))
    every = sample_pixels(images, 10_000, seed=2)
    assert np.array_equal(every, images.reshape(-1, 3))


def test_palette_dict_round_trip_and_check():
    palette = TRAIN_COLOURS.copy()
    data = palette_to_dict(palette, "lab", fitted_on_images=3)
    assert data["k"] == 5 and data["fitted_on_images"] == 3
    back, space = palette_from_dict(data)
    assert space == "lab" and back.dtype == np.uint8 and np.array_equal(back, palette)
    with pytest.raises(ValueError, match="expected"):
        palette_from_dict({**data, "k": 6})
