import json

import numpy as np
import pytest

from colorize.core.colour import gray_to_lightness, lab_to_rgb, reduce_chroma, rgb_to_lab
from colorize.core.errors import ArrayError
from colorize.evaluate.baselines import GrayLookup, example_transfer, oracle
from colorize.evaluate.decoding import keep_luminance

WEIGHTS = np.array([0.21, 0.72, 0.07])


def to_gray(rgb, weights=WEIGHTS):
    return (rgb @ weights / 255).astype(np.float32)


def test_oracle_looks_up_the_palette():
    palette = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    labels = np.array([[[1, 0], [0, 1]]], np.uint8)
    expected = [[[4, 5, 6], [1, 2, 3]], [[1, 2, 3], [4, 5, 6]]]
    np.testing.assert_array_equal(oracle(labels, palette)[0], expected)
    np.testing.assert_array_equal(oracle(labels, palette.tolist()), oracle(labels, palette))
    with pytest.raises(ArrayError, match=r"\[0, 1\]"):
        oracle(labels + 1, palette)


def fitted_lookup():
    # Levels of 5: 0 -> labels 2,2,1 (2 wins); 0.25 -> 0,1 (tie -> 0); 0.75 -> 1; 0.5 and 1.0 unseen.
    gray = np.array([[0.0, 0.0, 0.0, 0.25, 0.25, 0.75]], np.float32)
    labels = np.array([[2, 2, 1, 0, 1, 1]], np.uint8)
    return GrayLookup().fit(gray, labels, k=3, levels=5)


def test_gray_lookup_learns_most_frequent_label_per_level():
    lookup = fitted_lookup()
    # level 2 is equally near levels 1 and 3 -> the darker (1, label 0); level 4 -> level 3 (label 1)
    np.testing.assert_array_equal(lookup.table, [2, 0, 0, 1, 1])
    predicted = lookup.predict(np.array([[0.02, 0.26, 0.5, 0.74, 1.0]], np.float32))
    assert predicted.dtype == np.uint8
    np.testing.assert_array_equal(predicted, [[2, 0, 0, 1, 1]])


def test_gray_lookup_round_trips_through_json():
    lookup = fitted_lookup()
    data = json.loads(json.dumps(lookup.to_dict()))
    again = GrayLookup.from_dict(data)
    np.testing.assert_array_equal(again.table, lookup.table)
    assert again.k == 3 and again.levels == 5


def test_gray_lookup_rejects_bad_use():
    with pytest.raises(RuntimeError, match="before fit"):
        GrayLookup().predict(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="table"):
        GrayLookup.from_dict({"k": 3, "levels": 2, "table": [0, 3]})
    with pytest.raises(ArrayError, match="same shape"):
        GrayLookup().fit(np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 3), np.uint8), k=3)


DARK_RED = np.array([120, 20, 20], np.uint8)
LIGHT_BLUE = np.array([150, 200, 250], np.uint8)


def two_colour_images(n, size, seed):
    """Images whose colour is fixed by their lightness: a dark red and a light blue region."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        split = rng.integers(2, size - 2)
        images[i, :, :split] = DARK_RED
        images[i, :, split:] = LIGHT_BLUE
    return images


def test_example_transfer_recovers_colours_tied_to_luminance():
    train = two_colour_images(6, 16, seed=0)
    truth = two_colour_images(3, 16, seed=1)
    out = example_transfer(train, to_gray(train), to_gray(truth), n_pixels=500, seed=0)
    assert out.shape == truth.shape and out.dtype == np.uint8
    # Each pixel gets its true chroma at the lightness of its gray (not of its true colour).
    expected = keep_luminance(truth, to_gray(truth))
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.abs(out.astype(int) - truth).max() > 5  # the gray's lightness differs from the colour's


def test_example_transfer_keeps_test_lightness_and_is_deterministic():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    test_gray = to_gray(rng.integers(0, 256, (4, 12, 12, 3), dtype=np.uint8), np.array([0.21, 0.72, 0.007]))
    out = example_transfer(train, to_gray(train), test_gray, n_pixels=300, seed=7, window=3)
    again = example_transfer(train, to_gray(train), test_gray, n_pixels=300, seed=7, window=3)
    assert out.tobytes() == again.tobytes()
    error = np.abs(rgb_to_lab(out)[..., 0] - gray_to_lightness(test_gray))
    assert error.max() < 0.3
    # n_pixels beyond the training set takes every pixel once.
    everything = example_transfer(train, to_gray(train), test_gray, n_pixels=10**6, seed=0, window=3)
    assert everything.shape == (4, 12, 12, 3)


def test_example_transfer_validates():
    train = two_colour_images(2, 8, seed=0)
    with pytest.raises(ArrayError, match="same pixels"):
        example_transfer(train, to_gray(train)[:1], to_gray(train), n_pixels=10, seed=0)
    with pytest.raises(ValueError, match="n_pixels"):
        example_transfer(train, to_gray(train), to_gray(train), n_pixels=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        example_transfer(train, to_gray(train), to_gray(train), n_pixels=10, seed=-1)


def brute_force_transfer(train_rgb, train_gray, test_gray, window):
    """Reference: every training pixel, exact local std, full distance matrix, ties -> first pixel."""
    def features(gray):
        light = gray_to_lightness(gray).astype(np.float64)
        pad = window // 2
        padded = np.pad(light, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (window, window), axis=(1, 2))
        return np.stack([light, windows.std(axis=(-2, -1))], axis=-1).reshape(-1, 2)

    train_features, test_features = features(train_gray), features(test_gray)
    scale = train_features.std(axis=0)
    distance = np.linalg.norm(test_features[:, None] / scale - train_features[None] / scale, axis=-1)
    chroma = rgb_to_lab(train_rgb.reshape(-1, 3))[np.argmin(distance, axis=1), 1:]
    lab = np.column_stack([gray_to_lightness(test_gray).reshape(-1), chroma])
    return lab_to_rgb(reduce_chroma(lab)).reshape(*test_gray.shape, 3)


def test_example_transfer_matches_brute_force_nearest_neighbour():
    rng = np.random.default_rng(4)
    train = rng.integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    train[:, :, :4] = 255  # flat white padding: many equal features
    test = rng.integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
    test[:, :3] = 255
    out = example_transfer(train, to_gray(train), to_gray(test), n_pixels=10**6, seed=0, window=3)
    np.testing.assert_array_equal(out, brute_force_transfer(train, to_gray(train), to_gray(test), 3))


def test_baselines_fitted_on_memory_mapped_shards_equal_the_whole_array_fit(tmp_path):
    from colorize.core.artifacts import write_sharded
    from colorize.core.streaming import ShardedRows

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    gray, labels = to_gray(rgb), rng.integers(0, 3, size=(10, 8, 8)).astype(np.uint8)
    ids = [f"i{n}" for n in range(10)]
    for name, array in (("rgb", rgb), ("gray", gray), ("labels", labels)):
        (tmp_path / name).mkdir()
        write_sharded(tmp_path / name, name, ids, array, shard_bytes=3 * array[0].nbytes)
    wanted = ids[::-1][:7]  # another order and a subset, as a split is
    rows = {name: ShardedRows(tmp_path / name, wanted) for name in ("rgb", "gray", "labels")}
    pick = [ids.index(i) for i in wanted]
    whole = GrayLookup().fit(gray[pick], labels[pick], k=3)
    streamed = GrayLookup().fit_streamed(rows["gray"], rows["labels"], k=3, chunk=2)
    np.testing.assert_array_equal(streamed.table, whole.table)
    test_gray = to_gray(rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8))
    np.testing.assert_array_equal(example_transfer(rows["rgb"], rows["gray"], test_gray, n_pixels=200, seed=1),
                                  example_transfer(rgb[pick], gray[pick], test_gray, n_pixels=200, seed=1))
