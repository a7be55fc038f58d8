"""crosscheck.py: constraints between params sections, refused by the validate stage in one line."""

from __future__ import annotations

import pytest
import yaml

from colorize.core.errors import InsufficientData, ParamError
from colorize.prep.crosscheck import (
    CROSS_CHECKED,
    cross_check,
    read_cross_checked,
    split_minimum,
)
from colorize.prep.splitting import split_counts
from workspace import ROOT

DEFAULTS = read_cross_checked(ROOT / "params.yaml")


def test_the_default_params_pass():
    assert len(cross_check(DEFAULTS)) == 2


@pytest.mark.parametrize(("test_size", "val_size"), [(0.3, 0.15), (0.5, 0.0), (0.9, 0.5), (0.05, 0.05)])
def test_split_minimum_is_the_fewest_images_split_accepts(test_size, val_size):
    need = split_minimum(test_size, val_size)
    split_counts(need, test_size, val_size)
    with pytest.raises(InsufficientData):
        split_counts(need - 1, test_size, val_size)


@pytest.mark.parametrize(("change", "names"), [
    ({"resize.image_size": 13}, ("train.unet_depth", "resize.image_size")),
    ({"resize.image_size": 20, "train.unet_depth": 3}, ("train.unet_depth", "resize.image_size")),
    ({"fetch.min_images": 2}, ("fetch.min_images", "split.test_size")),
    ({"fetch.min_images": 5, "split.test_size": 0.9, "split.val_size": 0.5}, ("fetch.min_images",)),
])
def test_a_violated_constraint_fails_in_one_line_naming_both_params(change, names):
    with pytest.raises(ParamError) as caught:
        cross_check({**DEFAULTS, **change})
    message = str(caught.value)
    assert "\n" not in message and all(name in message for name in names)


def test_the_seed_architecture_has_no_depth_constraint():
    cross_check({**DEFAULTS, "resize.image_size": 13, "train.arch": "seed"})


def test_only_the_declared_keys_are_read_and_each_is_validated(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["lr"] = "not read by validate"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert set(read_cross_checked(tmp_path / "params.yaml")) == set(CROSS_CHECKED)
    params["resize"]["image_size"] = "big"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match="resize.image_size"):
        read_cross_checked(tmp_path / "params.yaml")
    del params["split"]["val_size"]
    params["resize"]["image_size"] = 64
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match="missing split.val_size"):
        read_cross_checked(tmp_path / "params.yaml")
