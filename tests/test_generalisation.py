"""generalisation.py: the extra set (data/extra/resized) grayed and encoded with a bundle's settings, scored.

Uses the tiny bundle of test_cli.py (trained once per session, whichever module runs first).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from colorize.core.artifacts import write_sharded
from colorize.core.errors import UserError
from colorize.core.params import ExtraParams, load_keys
from colorize.core.rawstore import EXTRA_SOURCE_KEY
from colorize.evaluate.generalisation import load_extra, score_extra
from colorize.fetch.extra import GUARDS, fetch_extra
from colorize.fetch.synthetic import generate_builtin
from colorize.model.bundle import load_bundle
from colorize.prep.resizing import resize_extra
from colorize.prep.transforms import rgb_to_gray
from colorize.quantize.palette import nearest_palette_index
from repo_params import ROOT, repo_params
from test_cli import shared_tiny_bundle

SCORE_PARAMS = repo_params("evaluate", keep_luminance=True, decode="annealed_mean", temperature=0.38)
METRICS = {"psnr", "ssim", "ciede2000", "colourfulness"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return shared_tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(tiny):
    return load_bundle(tiny.folder)


def extra_set(folder: Path, source: str | None, bundle, images: int = 10) -> Path:
    """The extra set as the fetch_extra and resize_extra stages write it, at the bundle's size."""
    fetch_extra(ExtraParams(source=source, images=images, seed=1, sha256=None),
                load_keys(GUARDS, ROOT / "params.yaml"), folder / "raw", progress=False)
    resize_extra(folder / "raw", folder / "resized", bundle.image_size, bundle.fill, bundle.meta["resize_method"],
                 progress=False)
    return folder / "resized"


@pytest.fixture(scope="module")
def blob(tmp_path_factory, bundle) -> Path:
    return extra_set(tmp_path_factory.mktemp("extra"), "builtin:blob", bundle)


# --- load_extra ------------------------------------------------------------------------------------------------

def test_off_reads_as_no_extra_source(tmp_path, bundle):
    folder = extra_set(tmp_path, None, bundle)
    assert load_extra(folder, bundle) is None
    assert score_extra(folder, bundle, None, SCORE_PARAMS) is None


def test_load_extra_grays_and_encodes_with_the_bundle(blob, bundle):
    source, images = load_extra(blob, bundle)
    size = bundle.image_size
    assert source == "builtin:blob"
    assert len(images.ids) == 10 and images.ids == sorted(images.ids)
    assert images.rgb.shape == (10, size, size, 3) and images.rgb.dtype == np.uint8
    assert images.gray.shape == (10, size, size) and images.gray.dtype == np.float32
    np.testing.assert_array_equal(images.gray, rgb_to_gray(images.rgb, bundle.gray_weights))
    np.testing.assert_array_equal(images.labels, nearest_palette_index(images.rgb, bundle.palette, bundle.space))


def test_an_extra_set_of_another_size_is_refused(tmp_path, bundle):
    size = bundle.image_size + 8
    write_sharded(tmp_path, "images", ["a"], np.zeros((1, size, size, 3), np.uint8),
                  extra={EXTRA_SOURCE_KEY: "builtin:blob"})
    with pytest.raises(UserError, match="the model takes"):
        load_extra(tmp_path, bundle)


def test_a_folder_without_a_recorded_source_is_refused(tmp_path, bundle):
    write_sharded(tmp_path, "images", ["a"], np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="not an extra set"):
        load_extra(tmp_path, bundle)


def write_builtin(folder: Path, count: int, seed: int, style: str) -> list[Path]:
    """The built-in pictures as files in `folder`, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in generate_builtin(count, seed, style):
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def test_a_folder_source(tmp_path, bundle):
    write_builtin(tmp_path / "pictures", 3, seed=5, style="blob")
    folder = extra_set(tmp_path / "extra", str(tmp_path / "pictures"), bundle, images=999)  # images: built-in only
    source, images = load_extra(folder, bundle)
    assert source == str(tmp_path / "pictures") and images.rgb.shape[0] == 3


# --- score_extra -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scores(tiny, bundle, blob):
    return score_extra(blob, bundle, tiny.train, SCORE_PARAMS)


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


def test_score_is_reproducible_and_uses_the_extra_set(tmp_path, tiny, bundle, blob, scores):
    assert score_extra(blob, bundle, tiny.train, SCORE_PARAMS) == scores
    other = score_extra(extra_set(tmp_path, "builtin:pika", bundle), bundle, tiny.train, SCORE_PARAMS)
    assert other["source"] == "builtin:pika" and other["gray"] != scores["gray"]


def test_score_keep_luminance_changes_only_what_it_should(tiny, bundle, blob, scores):
    raw = score_extra(blob, bundle, tiny.train, replace(SCORE_PARAMS, keep_luminance=False))
    assert raw["gray"] == scores["gray"]
    assert raw["model"]["accuracy"] == scores["model"]["accuracy"]
    assert raw["model"]["psnr"] != scores["model"]["psnr"]
