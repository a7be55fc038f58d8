"""Load and validate one section of params.yaml, failing before any work with one clear line."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from colorize.core.errors import ParamError

Check = Callable[[str, Any], Any]
BUILTIN_STYLES = ("pika", "blob")  # colorize.fetch.synthetic.STYLES (test_params checks they agree)


def _fail(name: str, expected: str, value: Any) -> None:
    raise ParamError(f"params.yaml: {name} must be {expected}, got {value!r}")


def integer(low: int | None = None, high: int | None = None) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(name, "an integer", value)
        if (low is not None and value < low) or (high is not None and value > high):
            _fail(name, _range_text("an integer", low, high), value)
        return value

    return check


def number(low: float | None = None, high: float | None = None, *, open_low: bool = False,
           open_high: bool = False) -> Check:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(name, "a finite number", value)
        bad_low = low is not None and (value <= low if open_low else value < low)
        bad_high = high is not None and (value >= high if open_high else value > high)
        if bad_low or bad_high:
            if high is None:
                _fail(name, f"a number {'>' if open_low else '>='} {low}", value)
            if low is None:
                _fail(name, f"a number {'<' if open_high else '<='} {high}", value)
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            _fail(name, f"a number in {left}{low}, {high}{right}", value)
        return float(value)

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(name, "true or false", value)
    return value


def choice(*options: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in options:
            _fail(name, "one of " + ", ".join(options), value)
        return value

    return check


def text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(name, "a non-empty string", value)
    return value


def source_or_sources(name: str, value: Any) -> str | list[str]:
    """One source, or a non-empty list of them (their union)."""
    if isinstance(value, list):
        if not value:
            _fail(name, "a source or a non-empty list of sources", value)
        return [text(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return text(name, value)


def extra_source(name: str, value: Any) -> str:
    """Anything fetch.source accepts (one source), or builtin:<style>."""
    value = text(name, value)
    if value.startswith("builtin:") and value.split(":", 1)[1] not in BUILTIN_STYLES:
        _fail(name, "builtin:<style> with a style in (" + ", ".join(BUILTIN_STYLES) + "), another source or null",
              value)
    return value


def optional(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def sha256_digest(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
        _fail(name, "a 64-digit hex sha256 digest or null", value)
    return value.lower()


def number_list(length: int, low: float, high: float) -> Check:
    def check(name: str, value: Any) -> list[float]:
        if not isinstance(value, list) or len(value) != length:
            _fail(name, f"a list of {length} numbers", value)
        return [number(low, high)(f"{name}[{i}]", v) for i, v in enumerate(value)]

    return check


def gray_weights(name: str, value: Any) -> list[float]:
    weights = number_list(3, 0.0, 1.0)(name, value)
    if not 0 < sum(weights) <= 1.0 + 1e-9:
        _fail(name, "3 weights in [0, 1] whose sum is in (0, 1]", value)
    return weights


def rgb_color(name: str, value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) != 3:
        _fail(name, "a list of 3 integers in [0, 255]", value)
    return [integer(0, 255)(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _range_text(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} in [{low}, {high}]"
    return f"{kind} >= {low}" if low is not None else f"{kind} <= {high}"


Schema = Mapping[str, "Check | Schema"]


def validate(section: str, values: Any, schema: Schema) -> dict[str, Any]:
    """Check `values` against `schema` (nested dicts of checks); unknown and missing keys are errors."""
    if not isinstance(values, Mapping):
        raise ParamError(f"params.yaml: {section} must be a mapping, got {values!r}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ParamError(f"params.yaml: unknown param {section}.{unknown[0]}")
    result: dict[str, Any] = {}
    for key, check in schema.items():
        name = f"{section}.{key}"
        if key not in values:
            raise ParamError(f"params.yaml: missing param {name}")
        if isinstance(check, Mapping):
            result[key] = validate(name, values[key], check)
        else:
            result[key] = check(name, values[key])
    return result


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-3` as a float, as YAML 1.2 and DVC do (PyYAML's 1.1 rules make it a string)."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_Yaml12Loader) or {}
    except FileNotFoundError:
        raise ParamError(f"params file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ParamError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ParamError(f"{path} must hold a mapping of sections")
    return data


SCHEMAS: dict[str, Schema] = {
    "fetch": {
        "source": source_or_sources,
        "builtin": {
            "count": integer(1, 10_000_000),
            "seed": integer(0),
            "style": choice(*BUILTIN_STYLES),
        },
        "sha256": optional(sha256_digest),
        "min_images": integer(1),
        "min_side": integer(1),
        "keep_gray": boolean,
        "max_pixels": integer(1),
        "max_files": integer(1),
        "max_total_bytes": integer(1),
        "timeout_s": number(0, None, open_low=True),
        "retries": integer(0, 20),
        "backoff_s": number(0, 60),
        "on_error": choice("fail", "skip"),
        "shard_bytes": integer(1024),
    },
    "resize": {
        "image_size": integer(8, 4096),
        "fill": rgb_color,
        "method": choice("nearest", "bilinear", "bicubic", "lanczos", "box"),
        "crop": choice("none", "content"),
    },
    "grayscale": {"weights": gray_weights},
    "split": {
        "test_size": number(0, 1, open_low=True, open_high=True),
        "val_size": number(0, 1, open_high=True),
        "seed": integer(0),
    },
    "palette": {
        "k": integer(2, 256),
        "space": choice("rgb", "lab"),
        "sample_pixels": integer(100),
        "seed": integer(0),
    },
    "encode": {"figure_images": integer(0, 64)},
    "train": {
        "arch": choice("unet", "seed"),
        "loss": choice("categorical_crossentropy", "l1", "seed_ordinal"),
        "optimizer": choice("adam", "adadelta"),
        "lr": optional(number(0, None, open_low=True)),
        "epochs": integer(1),
        "batch_size": integer(1),
        "seed": integer(0),
        "patience": integer(0),
        "dropout": number(0, 1, open_high=True),
        "rebalance": number(0, 1),
        "flip": boolean,
        "shift": integer(0),
        "unet_filters": integer(1, 1024),
        "unet_depth": integer(1, 6),
        "precision": choice("float32", "mixed_bfloat16"),
        "min_steps": integer(0),
        "lr_schedule": choice("constant", "cosine"),
        "monitor": choice("val_loss", "val_accuracy"),
        "gray_prior": boolean,
        "min_epochs": integer(0),
    },
    "evaluate": {
        "decode": choice("argmax", "mean", "annealed_mean"),
        "temperature": number(0, None, open_low=True),
        "keep_luminance": boolean,
        "samples": integer(0, 64),
        "transfer_pixels": integer(10),
        "seed": integer(0),
    },
    "extra": {
        "source": optional(extra_source),
        "images": integer(1, 10_000_000),
        "seed": integer(0),
        "sha256": optional(sha256_digest),
    },
}


def load_keys(keys: Sequence[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    """The values of `keys` ("section.key"), each validated by its section's rule; nothing else is read."""
    data = read_yaml(path)
    values = {}
    for key in keys:
        section, name = key.split(".", 1)
        if not isinstance(data.get(section), dict) or name not in data[section]:
            raise ParamError(f"params.yaml: missing {key}")
        rule, value = SCHEMAS[section][name], data[section][name]
        values[key] = validate(key, value, rule) if isinstance(rule, Mapping) else rule(key, value)
    return values


def load_section(section: str, path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and validate one section of the params file."""
    data = read_yaml(path)
    if section not in data:
        raise ParamError(f"params.yaml: missing section {section}")
    return validate(section, data[section], SCHEMAS[section])
