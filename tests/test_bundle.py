"""bundle.py: write/load round trip and one-line BundleErrors for every broken bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from colorize.core.errors import BundleError, UserError
from colorize.core.params import EvaluateParams, read_yaml, validate
from colorize.model.bundle import (
    BUNDLE_FORMAT,
    DEFAULT_TTA,
    META_FILE,
    MODEL_FILE,
    PALETTE_FILE,
    TTA_VIEWS,
    ZIP_EPOCH,
    load_bundle,
    predict_probabilities,
    read_meta,
    write_bundle,
)
from colorize.model.models import build_model
from colorize.quantize.palette import palette_to_dict
from repo_params import PARAMS_FILE

SIZE, K = 8, 4
PALETTE = np.array([[0, 0, 0], [200, 30, 30], [30, 160, 40], [255, 255, 255]], np.uint8)
META = {"arch": "unet", "image_size": SIZE, "k": K, "gray_weights": [0.21, 0.72, 0.07], "fill": [255, 255, 255]}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model("unet", SIZE, K, filters=2, depth=1)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model) -> Path:
    folder = tmp_path_factory.mktemp("bundle") / "models"
    write_bundle(folder, model, palette_to_dict(PALETTE, "lab"), META)
    return folder


@pytest.fixture
def bundle_copy(tmp_path, saved) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(saved, folder)
    return folder


def bundle_error(folder: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message, message
    assert isinstance(info.value, UserError)
    return message


def test_round_trip_gives_equal_predictions(saved, model):
    assert sorted(p.name for p in saved.iterdir()) == sorted([MODEL_FILE, PALETTE_FILE, META_FILE])
    bundle = load_bundle(saved)
    gray = np.random.default_rng(1).random((5, SIZE, SIZE), dtype=np.float32)
    before = predict_probabilities(model, gray, batch_size=2)
    after = predict_probabilities(bundle.model, gray, batch_size=2)
    assert before.shape == (5, SIZE, SIZE, K) and before.dtype == np.float32
    np.testing.assert_array_equal(after, before)
    assert np.array_equal(bundle.palette, PALETTE) and bundle.space == "lab"
    assert bundle.image_size == SIZE and bundle.gray_weights == META["gray_weights"] and bundle.fill == META["fill"]
    assert bundle.meta["format"] == BUNDLE_FORMAT and bundle.meta["arch"] == "unet"


def test_write_bundle_replaces_the_folder_whole(bundle_copy, model):
    (bundle_copy / "stray.txt").write_text("from an older bundle")
    write_bundle(bundle_copy, model, palette_to_dict(PALETTE, "rgb"), META)
    assert not (bundle_copy / "stray.txt").exists()
    assert load_bundle(bundle_copy).space == "rgb"
    assert not list(bundle_copy.parent.glob(".tmp-*"))


def test_predict_on_no_images(model):
    empty = predict_probabilities(model, np.zeros((0, SIZE, SIZE), np.float32))
    assert empty.shape == (0, SIZE, SIZE, K) and empty.dtype == np.float32


def test_missing_folder(tmp_path):
    assert "not found" in bundle_error(tmp_path / "nowhere")


@pytest.mark.parametrize("name", [MODEL_FILE, PALETTE_FILE, META_FILE])
def test_missing_file_is_named(bundle_copy, name):
    (bundle_copy / name).unlink()
    message = bundle_error(bundle_copy)
    assert "incomplete" in message and name in message


@pytest.mark.parametrize("fmt", [BUNDLE_FORMAT + 1, 0, None, "1"])
def test_wrong_format_number(bundle_copy, fmt):
    meta = json.loads((bundle_copy / META_FILE).read_text())
    meta["format"] = fmt
    (bundle_copy / META_FILE).write_text(json.dumps(meta))
    message = bundle_error(bundle_copy)
    assert f"format {fmt!r}" in message and f"reads format {BUNDLE_FORMAT}" in message


def test_palette_whose_k_mismatches_the_model(bundle_copy):
    bigger = np.concatenate([PALETTE, [[10, 20, 200]]]).astype(np.uint8)
    (bundle_copy / PALETTE_FILE).write_text(json.dumps(palette_to_dict(bigger, "lab")))
    message = bundle_error(bundle_copy)
    assert "mismatched" in message and f"predicts {K} colours" in message and "has 5" in message


def test_image_size_that_mismatches_the_model(bundle_copy):
    meta = json.loads((bundle_copy / META_FILE).read_text())
    (bundle_copy / META_FILE).write_text(json.dumps({**meta, "image_size": 16}))
    assert "mismatched" in bundle_error(bundle_copy)


def test_unreadable_palette_meta_and_model(bundle_copy):
    (bundle_copy / PALETTE_FILE).write_text(json.dumps({"space": "rgb", "k": 4, "rgb": [[1, 2]]}))
    assert "unreadable palette" in bundle_error(bundle_copy)
    (bundle_copy / META_FILE).write_text("{not json")
    assert "not valid JSON" in bundle_error(bundle_copy)


def test_corrupt_model_file(bundle_copy):
    (bundle_copy / MODEL_FILE).write_bytes(b"this is not a keras archive")
    assert f"{MODEL_FILE} is truncated or corrupt (sha256 expected" in bundle_error(bundle_copy)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_model_file_says_so_with_or_without_a_recorded_digest(bundle_copy, keep):
    data = (bundle_copy / MODEL_FILE).read_bytes()
    (bundle_copy / MODEL_FILE).write_bytes(data[:int(len(data) * keep)])
    assert f"{MODEL_FILE} is truncated or corrupt" in bundle_error(bundle_copy)
    meta = json.loads((bundle_copy / META_FILE).read_text())
    del meta["model_sha256"]  # a bundle from before digests were recorded: the zip check still says so
    (bundle_copy / META_FILE).write_text(json.dumps(meta))
    assert f"{MODEL_FILE} is truncated or corrupt (not a complete zip archive" in bundle_error(bundle_copy)


def test_equal_weights_give_byte_identical_bundles_in_separate_processes(tmp_path, saved):
    """Keras writes object addresses (`shared_object_id`) into config.json: they must not reach the file."""
    code = textwrap.dedent(f"""
        import shutil, sys
        from pathlib import Path
        from colorize.model.bundle import load_bundle, write_bundle
        from colorize.core.artifacts import read_json
        bundle = load_bundle(Path({str(saved)!r}))
        meta = {{k: v for k, v in bundle.meta.items() if k not in ("format", "model_sha256")}}
        write_bundle(Path(sys.argv[1]), bundle.model, read_json(Path({str(saved)!r}) / "palette.json"), meta)
    """)
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True)
    for name in (MODEL_FILE, PALETTE_FILE, META_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_equal_weights_give_byte_identical_bundles_whenever_they_are_saved(tmp_path, model):
    import time

    palette = {"space": "rgb", "k": 4, "rgb": [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]}
    meta = {"image_size": 16, "gray_weights": [0.21, 0.72, 0.07], "fill": [255, 255, 255]}
    write_bundle(tmp_path / "a", model, palette, meta)
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    write_bundle(tmp_path / "b", model, palette, meta)
    for name in (MODEL_FILE, PALETTE_FILE, META_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with zipfile.ZipFile(tmp_path / "a" / MODEL_FILE) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {ZIP_EPOCH}
        assert "date_saved" not in archive.read("metadata.json").decode()


def test_metadata_without_image_size(bundle_copy):
    meta = json.loads((bundle_copy / META_FILE).read_text())
    del meta["image_size"]
    (bundle_copy / META_FILE).write_text(json.dumps(meta))
    bundle_error(bundle_copy)


def test_read_meta_does_not_import_keras(saved):
    script = textwrap.dedent(f"""
        import sys
        from colorize.model.bundle import read_meta
        meta = read_meta({str(saved)!r})
        assert meta["image_size"] == {SIZE}, meta
        print("keras" in sys.modules, "tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert read_meta(saved)["format"] == BUNDLE_FORMAT


def test_a_bundle_with_the_gray_prior_loads_in_a_fresh_process(tmp_path):
    """The evaluate stage and `colorize` load bundles without importing the models module themselves."""
    import subprocess
    import sys

    from colorize.model.bundle import write_bundle

    prior = np.zeros((256, K), np.float32)
    model = build_model("unet", SIZE, K, filters=2, depth=1, prior=prior)
    palette = np.linspace(0, 255, K * 3).reshape(K, 3).astype(np.uint8)
    write_bundle(tmp_path / "bundle", model, palette_to_dict(palette, "rgb"),
                 {"image_size": SIZE, "gray_weights": [0.21, 0.72, 0.07], "fill": [255, 255, 255]})
    code = ("import sys; from colorize.model.bundle import load_bundle; "
            "b = load_bundle(sys.argv[1]); print(b.model.get_layer('gray_prior').name)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bundle")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "gray_prior"


def test_evaluate_batches_hold_whole_prediction_batches():
    # score_all runs the model EVAL_BATCH images at a time: a multiple of predict_probabilities' batch,
    # so the model sees the same batches as on the whole test split.
    import inspect

    from colorize.evaluate.evaluation import EVAL_BATCH

    assert EVAL_BATCH % inspect.signature(predict_probabilities).parameters["batch_size"].default == 0


def pixelwise_model() -> keras.Model:
    """Each pixel's probabilities from its own gray value only: the same under any mirror or shift."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 1))
    hidden = keras.layers.Conv2D(6, 1, activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(K, 1, activation="softmax")(hidden))


@pytest.mark.parametrize("tta", sorted(TTA_VIEWS))
def test_every_view_is_moved_back_into_place(tta):
    # A pixelwise model gives every view the same probabilities once mirrored and shifted back; a view's
    # repeated border (another pixel's value) would not, so this also checks that it is left out.
    model = pixelwise_model()
    gray = np.random.default_rng(2).random((3, SIZE, SIZE), dtype=np.float32)
    plain = predict_probabilities(model, gray, tta="none")
    np.testing.assert_allclose(predict_probabilities(model, gray, tta=tta), plain, rtol=1e-5, atol=1e-6)


def test_flip_averages_the_picture_and_its_mirror_image(model):
    gray = np.random.default_rng(3).random((4, SIZE, SIZE), dtype=np.float32)
    plain = predict_probabilities(model, gray, tta="none")
    mirrored = predict_probabilities(model, np.ascontiguousarray(gray[:, :, ::-1]), tta="none")[:, :, ::-1]
    assert not np.allclose(plain, mirrored)  # the U-Net is not mirror-symmetric: the test can fail
    averaged = predict_probabilities(model, gray, tta="flip")
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5, atol=1e-7)
    assert averaged.dtype == np.float32
    np.testing.assert_allclose(averaged.sum(axis=-1), 1, atol=1e-5)


def test_evaluate_scores_the_views_average_pooled_over_flat_regions(model):
    """model_probabilities: predict_probabilities with evaluate.tta, then evaluate.region_* pooling."""
    from dataclasses import replace

    from colorize.evaluate.evaluation import model_probabilities
    from colorize.evaluate.regions import pool_over_regions

    params = validate("evaluate", read_yaml(PARAMS_FILE)["evaluate"], EvaluateParams)
    gray = np.zeros((3, SIZE, SIZE), np.float32)
    gray[:, :, SIZE // 2:] = 0.8  # two flat halves: each region gets one distribution
    averaged = predict_probabilities(model, gray, tta=params.tta)
    pooled = model_probabilities(model, gray, replace(params, region_tolerance=4, region_min_pixels=2))
    np.testing.assert_array_equal(pooled, pool_over_regions(averaged, gray, 4, 2))
    assert not np.allclose(pooled, averaged)  # the U-Net's pixels differ inside a flat half: the test can fail
    assert np.ptp(pooled[:, :, :SIZE // 2], axis=(1, 2)).max() < 1e-6
    np.testing.assert_array_equal(model_probabilities(model, gray, replace(params, region_tolerance=None)), averaged)


def test_an_unknown_tta_is_refused(model):
    with pytest.raises(ValueError, match="tta must be one of none, flip, flip_shift"):
        predict_probabilities(model, np.zeros((1, SIZE, SIZE), np.float32), tta="rotate")


def test_tta_choices_and_default_are_params_yamls():
    """Two homes by design (params.yaml's evaluate.tta, inference without it): they must agree."""
    evaluate = read_yaml(PARAMS_FILE)["evaluate"]
    assert validate("evaluate", evaluate, EvaluateParams).tta == DEFAULT_TTA
    for name in TTA_VIEWS:
        assert validate("evaluate", {**evaluate, "tta": name}, EvaluateParams).tta == name
    with pytest.raises(UserError, match="evaluate.tta"):
        validate("evaluate", {**evaluate, "tta": "rotate"}, EvaluateParams)
