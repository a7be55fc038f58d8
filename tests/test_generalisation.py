"""generalisation.py: fetch params for a second source, loading it with a bundle's settings, scoring it.

Uses the tiny bundle of test_cli.py (trained once per session, whichever module runs first).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from colorize.core.images import decode_image, pixel_id
from colorize.core.params import BuiltinParams, FetchParams, validate
from colorize.evaluate.generalisation import (
    EXTRA_SEED,
    fetch_params,
    load_source,
    score_extra_source,
)
from colorize.fetch.synthetic import generate_builtin
from colorize.model.bundle import load_bundle
from colorize.prep.transforms import rgb_to_gray, square_resize
from colorize.quantize.palette import nearest_palette_index
from repo_params import repo_params
from test_cli import shared_tiny_bundle

SCORE_PARAMS = repo_params("evaluate", keep_luminance=True, decode="annealed_mean", temperature=0.38)
METRICS = {"psnr", "ssim", "ciede2000", "colourfulness"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return shared_tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(tiny):
    return load_bundle(tiny.folder)


# --- fetch_params --------------------------------------------------------------------------------------------

def test_builtin_style_draws_count_images_with_another_seed():
    params = fetch_params("builtin:blob", 10)
    assert params.source == "builtin"
    assert params.builtin == BuiltinParams(count=10, seed=EXTRA_SEED, style="blob")
    assert EXTRA_SEED != 0  # the training set's default seed
    assert validate("fetch", asdict(params), FetchParams) == params


def test_any_other_source_is_passed_through():
    params = fetch_params("/data/other photos", 7)
    assert params.source == "/data/other photos"
    assert validate("fetch", asdict(params), FetchParams).source == "/data/other photos"


# --- load_source -----------------------------------------------------------------------------------------------

def expected_images(pngs: list[bytes], bundle) -> dict[str, np.ndarray]:
    """{pixel id: the bundle-size RGB the pipeline would make} for a list of PNG files."""
    method = bundle.meta["resize_method"]
    return {pixel_id(decode_image(data, 10**8)): square_resize(decode_image(data, 10**8), bundle.image_size,
                                                               bundle.fill, method) for data in pngs}


def test_load_source_builtin_blob(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its scratch fetch goes
    images = load_source("builtin:blob", 10, bundle)
    size = bundle.image_size
    assert len(images.ids) == 10 and images.ids == sorted(images.ids)
    assert images.rgb.shape == (10, size, size, 3) and images.rgb.dtype == np.uint8
    assert images.gray.shape == (10, size, size) and images.gray.dtype == np.float32
    assert images.labels.shape == (10, size, size) and int(images.labels.max()) < len(bundle.palette)
    np.testing.assert_array_equal(images.gray, rgb_to_gray(images.rgb, bundle.gray_weights))
    np.testing.assert_array_equal(images.labels, nearest_palette_index(images.rgb, bundle.palette, bundle.space))
    expected = expected_images([data for _, data in generate_builtin(10, EXTRA_SEED, "blob")], bundle)
    assert set(images.ids) == set(expected)
    for image_id, rgb in zip(images.ids, images.rgb, strict=True):
        np.testing.assert_array_equal(rgb, expected[image_id])
    assert list(tmp_path.iterdir()) == []  # the scratch fetch is gone


def write_builtin(folder: Path, count: int, seed: int, style: str) -> list[Path]:
    """The built-in pictures as files in `folder`, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in generate_builtin(count, seed, style):
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def test_load_source_from_a_folder(bundle, tmp_path):
    paths = write_builtin(tmp_path / "extra", 3, seed=5, style="blob")
    images = load_source(str(tmp_path / "extra"), 999, bundle)  # count is for built-in sources only
    expected = expected_images([p.read_bytes() for p in paths], bundle)
    assert sorted(images.ids) == sorted(expected)
    assert images.rgb.shape == (3, bundle.image_size, bundle.image_size, 3)


# --- score_extra_source ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scores(tiny, bundle):
    return score_extra_source("builtin:blob", 10, bundle, tiny.train, SCORE_PARAMS)


def test_score_has_the_model_and_each_baseline(scores):
    assert scores["source"] == "builtin:blob" and scores["images"] == 10
    assert set(scores) == {"source", "images", "model", "gray", "gray_lookup", "oracle"}
    for name in ("model", "gray", "gray_lookup", "oracle"):
        assert METRICS <= set(scores[name]), name
        assert all(math.isfinite(v) for v in scores[name].values()), name
    for name in ("model", "gray_lookup", "oracle"):
        assert 0.0 <= scores[name]["accuracy"] <= 1.0
    assert scores["oracle"]["accuracy"] == 1.0  # its own labels
    assert scores["gray"]["colourfulness"] == 0.0
    assert scores["model"]["colourfulness"] > 0.0


def test_score_is_reproducible_and_uses_the_extra_source(tiny, bundle, scores):
    assert score_extra_source("builtin:blob", 10, bundle, tiny.train, SCORE_PARAMS) == scores
    other = score_extra_source("builtin:pika", 10, bundle, tiny.train, SCORE_PARAMS)
    assert other["source"] == "builtin:pika" and other["gray"] != scores["gray"]


def test_score_keep_luminance_changes_only_what_it_should(tiny, bundle, scores):
    raw = score_extra_source("builtin:blob", 10, bundle, tiny.train, replace(SCORE_PARAMS, keep_luminance=False))
    assert raw["gray"] == scores["gray"]
    assert raw["model"]["accuracy"] == scores["model"]["accuracy"]
    assert raw["model"]["psnr"] != scores["model"]["psnr"]
