"""fetch/extra.py and prep/resizing.resize_extra: the extra (generalisation) set's two stages."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import yaml

from colorize.core.artifacts import read_index, read_sharded
from colorize.core.errors import FetchError, ParamError
from colorize.core.images import decode_image, pixel_id
from colorize.core.params import (
    BUILTIN_STYLES,
    BuiltinParams,
    ExtraParams,
    FetchParams,
    load_keys,
    load_section,
    validate,
)
from colorize.core.rawstore import EXTRA_SOURCE_KEY, read_manifest
from colorize.fetch.extra import GUARDS, fetch_extra, fetch_params
from colorize.fetch.ingest import run_fetch
from colorize.fetch.synthetic import STYLES, generate_builtin
from colorize.prep.resizing import resize_extra
from colorize.prep.transforms import square_resize
from repo_params import ROOT

GUARD_VALUES = load_keys(GUARDS, ROOT / "params.yaml")
RESIZE = {"size": 16, "fill": [255, 255, 255], "method": "lanczos"}


def extra(source: str | None, images: int = 6, seed: int = 1) -> ExtraParams:
    return ExtraParams(source=source, images=images, seed=seed, sha256=None)


def test_the_builtin_styles_are_the_generators():
    assert BUILTIN_STYLES == STYLES


# --- params ----------------------------------------------------------------------------------------------------

def test_builtin_style_draws_its_own_count_and_seed_with_fetchs_guards():
    params = fetch_params(extra("builtin:blob", images=10, seed=7), GUARD_VALUES)
    assert params.source == "builtin"
    assert params.builtin == BuiltinParams(count=10, seed=7, style="blob")
    assert params.max_pixels == GUARD_VALUES["fetch.max_pixels"] and params.on_error == "fail"
    assert validate("fetch", asdict(params), FetchParams) == params  # a complete, valid fetch section


def test_any_other_source_is_passed_through():
    params = fetch_params(extra("/data/other photos"), GUARD_VALUES)
    assert params.source == "/data/other photos" and params.builtin.style == "pika"


@pytest.mark.parametrize("bad", ["builtin:nope", "builtin:", "", 3])
def test_a_bad_source_is_one_line_naming_extra_source(tmp_path, bad):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["extra"]["source"] = bad
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match=r"^params\.yaml: extra\.source must be") as info:
        load_section("extra", tmp_path / "params.yaml")
    assert "\n" not in str(info.value)


def test_the_guards_are_read_by_name_and_validated(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["fetch"]["source"] = []  # fetch's own source is not a guard: its value does not matter
    params["fetch"]["on_error"] = "sometimes"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match=r"fetch\.on_error must be one of fail, skip"):
        load_keys(GUARDS, tmp_path / "params.yaml")
    assert not any(key in GUARDS for key in ("fetch.source", "fetch.builtin", "fetch.sha256", "fetch.min_images"))


# --- fetch_extra -----------------------------------------------------------------------------------------------

def test_off_writes_an_explicit_empty_set_that_resizes_to_an_empty_one(tmp_path):
    assert fetch_extra(extra(None), GUARD_VALUES, tmp_path / "raw", progress=False) is None
    manifest = read_manifest(tmp_path / "raw")
    assert manifest[EXTRA_SOURCE_KEY] is None and manifest["accepted"] == [] and manifest["counts"]["found"] == 0
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["manifest.json"]
    assert resize_extra(tmp_path / "raw", tmp_path / "resized", **RESIZE, progress=False) == (None, 0)
    index = read_index(tmp_path / "resized")
    assert index[EXTRA_SOURCE_KEY] is None and index["ids"] == [] and index["shards"] == []


def test_builtin_style_is_fetched_and_resized_as_the_training_set(tmp_path):
    counts = fetch_extra(extra("builtin:blob"), GUARD_VALUES, tmp_path / "raw", progress=False)
    assert counts["accepted"] == 6
    assert read_manifest(tmp_path / "raw")[EXTRA_SOURCE_KEY] == "builtin:blob"
    assert resize_extra(tmp_path / "raw", tmp_path / "resized", **RESIZE, progress=False) == ("builtin:blob", 6)
    ids, rgb = read_sharded(tmp_path / "resized")
    assert ids == sorted(ids) and rgb.shape == (6, 16, 16, 3)
    drawn = {pixel_id(image): image for image in (decode_image(data, 10**8)
                                                  for _, data in generate_builtin(6, 1, "blob"))}
    assert set(ids) == set(drawn)
    for image_id, row in zip(ids, rgb, strict=True):
        np.testing.assert_array_equal(row, square_resize(drawn[image_id], 16, RESIZE["fill"], RESIZE["method"]))
    other = fetch_extra(extra("builtin:blob", seed=2), GUARD_VALUES, tmp_path / "raw2", progress=False)
    assert other["accepted"] == 6
    assert read_manifest(tmp_path / "raw2")["accepted"] != read_manifest(tmp_path / "raw")["accepted"]


def test_fetchs_guards_apply(tmp_path):
    guards = {**GUARD_VALUES, "fetch.min_side": 10_000}
    with pytest.raises(FetchError, match="too_small 6"):
        fetch_extra(extra("builtin:blob"), guards, tmp_path / "raw", progress=False)
    assert not (tmp_path / "raw").exists()


def test_a_missing_source_fails_in_one_line_naming_extra_source_before_writing(tmp_path):
    with pytest.raises(FetchError) as info:
        fetch_extra(extra(str(tmp_path / "nowhere")), GUARD_VALUES, tmp_path / "raw", progress=False)
    message = str(info.value)
    assert message.startswith("extra.source ") and "fetch.source" not in message and "\n" not in message
    assert not (tmp_path / "raw").exists()


def test_resize_extra_refuses_a_raw_store_that_is_not_an_extra_set(tmp_path):
    params = fetch_params(extra("builtin:blob"), GUARD_VALUES)
    run_fetch(params, tmp_path / "raw", None, progress=False)  # the training fetch: no source recorded
    with pytest.raises(Exception, match="is not an extra set") as info:
        resize_extra(tmp_path / "raw", tmp_path / "resized", **RESIZE, progress=False)
    assert "fetch_extra" in str(info.value)
