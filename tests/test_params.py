"""params.py: the real params.yaml validates into frozen dataclasses; every bad value fails in one line naming
the param."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from colorize.core.errors import ParamError, UserError
from colorize.core.params import SECTIONS, BuiltinParams, PaletteParams, load_section, read_yaml, validate


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def _delete(data: dict[str, Any], dotted: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    del node[last]
    return out


def _one_line_error(path: Path, section: str) -> str:
    with pytest.raises(ParamError) as info:
        load_section(section, path)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_real_params_file_validates_every_section_in_its_order(params_file, section):
    values = load_section(section, params_file)
    assert type(values) is SECTIONS[section]
    # Field order = the file's order: asdict (what the bundle records) keeps it.
    assert list(dataclasses.asdict(values)) == list(read_yaml(params_file)[section])


def test_every_section_of_the_real_file_has_a_dataclass(params_file):
    assert list(read_yaml(params_file)) == list(SECTIONS)


def test_validated_values_are_normalised(params_file):
    train = load_section("train", params_file)
    assert isinstance(train.dropout, float) and isinstance(train.epochs, int)
    grayscale = load_section("grayscale", params_file)
    assert grayscale.weights == pytest.approx((0.21, 0.72, 0.07))
    assert all(isinstance(w, float) for w in grayscale.weights)
    fetch = load_section("fetch", params_file)
    assert fetch.builtin == BuiltinParams(count=600, seed=0, style="pika")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_sections_are_frozen_all_the_way_down(params_file, section):
    values = load_section(section, params_file)
    hash(values)  # lists became tuples
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(values, dataclasses.fields(values)[0].name, None)


@pytest.mark.parametrize("cls", [*SECTIONS.values(), BuiltinParams], ids=lambda cls: cls.__name__)
def test_no_field_has_a_default_params_yaml_is_their_one_home(cls):
    for field in dataclasses.fields(cls):
        assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING, field.name
        assert callable(field.metadata["check"]), field.name


BAD_VALUES = [
    ("palette.k", 1),
    ("palette.k", 0),
    ("palette.k", 257),
    ("palette.k", True),          # a bool is not an int
    ("palette.k", 2.5),
    ("palette.k", "32"),
    ("resize.image_size", 7),
    ("resize.image_size", 4),
    ("resize.image_size", False),
    ("train.epochs", True),
    ("train.batch_size", 0),
    ("split.test_size", 0),
    ("split.test_size", 1),
    ("split.test_size", 1.5),
    ("split.test_size", -0.1),
    ("split.test_size", math.nan),
    ("split.val_size", 1.0),
    ("train.arch", "resnet"),
    ("train.loss", "mse"),
    ("train.optimizer", "sgd"),
    ("train.flip", 1),            # an int is not a bool
    ("train.rotate", "yes"),
    ("train.lr", 0),
    ("train.lr", -0.1),
    ("train.unet_depth", 7),
    ("train.ema", 0),
    ("train.ema", 1),
    ("train.ema", True),
    ("train.weight_decay", -0.1),
    ("train.weight_decay", None),
    ("train.stop_floor", 1.5),
    ("train.stop_floor", -0.1),
    ("grayscale.weights", [0.21, 0.72]),
    ("grayscale.weights", [0.21, 0.72, 0.07, 0.0]),
    ("grayscale.weights", "0.21 0.72 0.07"),
    ("grayscale.weights", [1.0, 1.0, 1.0]),  # sums above 1
    ("grayscale.weights", [0.0, 0.0, 0.0]),
    ("resize.fill", [255, 255]),
    ("resize.method", "cubic"),
    ("evaluate.temperature", 0),
    ("evaluate.decode", "median"),
    ("evaluate.region_tolerance", -1),
    ("evaluate.region_tolerance", 256),
    ("evaluate.region_tolerance", 2.5),
    ("evaluate.region_min_pixels", 0),
    ("evaluate.region_min_pixels", None),
    ("fetch.builtin.count", 0),
    ("fetch.builtin.style", "cartoon"),
    ("fetch.sha256", "abc"),
    ("fetch.source", ""),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v in BAD_VALUES])
def test_bad_value_fails_in_one_line_naming_the_param(real_params, write_params, name, value):
    path = write_params(_set(real_params, name, value))
    message = _one_line_error(path, name.split(".")[0])
    assert message.startswith("params.yaml: "), message
    assert f" {name} " in message or f" {name}[" in message, message


@pytest.mark.parametrize(("name", "value", "element"), [
    ("grayscale.weights", [0.21, 0.72, True], "grayscale.weights[2]"),
    ("grayscale.weights", [0.21, "x", 0.07], "grayscale.weights[1]"),
    ("resize.fill", [256, 0, 0], "resize.fill[0]"),
    ("resize.fill", [0, 0, 1.5], "resize.fill[2]"),
])
def test_bad_list_element_is_named_with_its_index(real_params, write_params, name, value, element):
    message = _one_line_error(write_params(_set(real_params, name, value)), name.split(".")[0])
    assert element in message, message


def test_unknown_key_is_named(real_params, write_params):
    message = _one_line_error(write_params(_set(real_params, "palette.colours", 8)), "palette")
    assert "unknown param palette.colours" in message


def test_unknown_nested_key_is_named(real_params, write_params):
    message = _one_line_error(write_params(_set(real_params, "fetch.builtin.size", 8)), "fetch")
    assert "fetch.builtin.size" in message


@pytest.mark.parametrize("name", ["palette.seed", "train.arch", "fetch.builtin.seed", "grayscale.weights"])
def test_missing_key_is_named(real_params, write_params, name):
    message = _one_line_error(write_params(_delete(real_params, name)), name.split(".")[0])
    assert f"missing param {name}" in message


def test_missing_section_is_named(real_params, write_params):
    message = _one_line_error(write_params(_delete(real_params, "palette")), "palette")
    assert "palette" in message


def test_section_that_is_not_a_mapping(real_params, write_params):
    message = _one_line_error(write_params(_set(real_params, "palette", [1, 2])), "palette")
    assert "palette must be a mapping" in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_section("palette", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("palette: [k: 3\n", encoding="utf-8")
    with pytest.raises(ParamError, match="not valid YAML") as info:
        load_section("palette", bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "value"), [
    ("palette.k", 2), ("palette.k", 256), ("resize.image_size", 8), ("split.test_size", 0.5),
    ("split.val_size", 0), ("grayscale.weights", [0.21, 0.72, 0.007]), ("train.lr", 0.01),
    ("fetch.sha256", "A" * 64), ("train.patience", 0), ("train.ema", 0.999),
    ("train.weight_decay", 0), ("train.weight_decay", 2.5),
])
def test_boundary_values_are_accepted(real_params, write_params, name, value):
    section = name.split(".")[0]
    values = load_section(section, write_params(_set(real_params, name, value)))
    got = getattr(values, name.split(".")[1])
    if isinstance(value, str):
        assert got == value.lower()
    else:
        assert got == pytest.approx(value)


def test_param_error_is_a_user_error():
    with pytest.raises(UserError):
        validate("palette", {"k": 1, "space": "rgb", "sample_pixels": 100, "seed": 0}, PaletteParams)


def test_exponent_notation_learning_rate_is_a_number(params_file, tmp_path):
    text = params_file.read_text(encoding="utf-8").replace("lr: null", "lr: 1e-3", 1)
    assert "lr: 1e-3" in text
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_section("train", path).lr == pytest.approx(0.001)


@pytest.mark.parametrize("name", ["train.lr", "evaluate.temperature", "fetch.timeout_s"])
def test_open_ended_range_is_stated_without_none(real_params, write_params, name):
    message = _one_line_error(write_params(_set(real_params, name, 0)), name.split(".")[0])
    assert "None" not in message, message
