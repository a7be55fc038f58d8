"""Load and validate one section of params.yaml into its frozen dataclass, failing before any work with
one clear line.

Each section is a frozen dataclass whose fields carry their checks (`param(check)` in the field's
metadata), so the schema and the type are one list. YAML lists become tuples: a section is immutable
all the way down.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

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


def source_or_sources(name: str, value: Any) -> str | tuple[str, ...]:
    """One source, or a non-empty list of them (their union, as a tuple)."""
    if isinstance(value, list):
        if not value:
            _fail(name, "a source or a non-empty list of sources", value)
        return tuple(text(f"{name}[{i}]", v) for i, v in enumerate(value))
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
    def check(name: str, value: Any) -> tuple[float, ...]:
        if not isinstance(value, list) or len(value) != length:
            _fail(name, f"a list of {length} numbers", value)
        return tuple(number(low, high)(f"{name}[{i}]", v) for i, v in enumerate(value))

    return check


def gray_weights(name: str, value: Any) -> tuple[float, ...]:
    weights = number_list(3, 0.0, 1.0)(name, value)
    if not 0 < sum(weights) <= 1.0 + 1e-9:
        _fail(name, "3 weights in [0, 1] whose sum is in (0, 1]", value)
    return weights


def rgb_color(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) != 3:
        _fail(name, "a list of 3 integers in [0, 255]", value)
    return tuple(integer(0, 255)(f"{name}[{i}]", v) for i, v in enumerate(value))


def _range_text(kind: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{kind} in [{low}, {high}]"
    return f"{kind} >= {low}" if low is not None else f"{kind} <= {high}"


P = TypeVar("P")


def param(check: Check) -> Any:
    """A params field validated by `check`. No default: params.yaml is the one home for defaults."""
    return field(metadata={"check": check})


def nested(cls: type) -> Any:
    """A params field that is itself a section (`fetch.builtin`), validated field by field."""
    return param(lambda name, value: validate(name, value, cls))


def field_check(cls: type, name: str) -> Check:
    """The check of field `name` of the params dataclass `cls` (KeyError if it has no such field)."""
    return {f.name: f.metadata["check"] for f in fields(cls)}[name]


def validate(section: str, values: Any, cls: type[P]) -> P:
    """Build `cls` from `values` (a mapping), each field through its check; unknown and missing keys are
    errors."""
    if not isinstance(values, Mapping):
        raise ParamError(f"params.yaml: {section} must be a mapping, got {values!r}")
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ParamError(f"params.yaml: unknown param {section}.{unknown[0]}")
    result: dict[str, Any] = {}
    for f in fields(cls):
        name = f"{section}.{f.name}"
        if f.name not in values:
            raise ParamError(f"params.yaml: missing param {name}")
        result[f.name] = f.metadata["check"](name, values[f.name])
    return cls(**result)


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


# One frozen dataclass per section, fields in params.yaml's order (`dataclasses.asdict` keeps it: the
# bundle records the train section that way). Each field's check sits in its metadata.

@dataclass(frozen=True)
class BuiltinParams:
    count: int = param(integer(1, 10_000_000))
    seed: int = param(integer(0))
    style: str = param(choice(*BUILTIN_STYLES))


@dataclass(frozen=True)
class FetchParams:
    source: str | tuple[str, ...] = param(source_or_sources)
    builtin: BuiltinParams = nested(BuiltinParams)
    sha256: str | None = param(optional(sha256_digest))
    min_images: int = param(integer(1))
    min_side: int = param(integer(1))
    keep_gray: bool = param(boolean)
    max_pixels: int = param(integer(1))
    max_files: int = param(integer(1))
    max_total_bytes: int = param(integer(1))
    timeout_s: float = param(number(0, None, open_low=True))
    retries: int = param(integer(0, 20))
    backoff_s: float = param(number(0, 60))
    on_error: str = param(choice("fail", "skip"))
    shard_bytes: int = param(integer(1024))


@dataclass(frozen=True)
class ResizeParams:
    image_size: int = param(integer(8, 4096))
    fill: tuple[int, int, int] = param(rgb_color)
    method: str = param(choice("nearest", "bilinear", "bicubic", "lanczos", "box"))
    crop: str = param(choice("none", "content"))


@dataclass(frozen=True)
class GrayscaleParams:
    weights: tuple[float, float, float] = param(gray_weights)


@dataclass(frozen=True)
class SplitParams:
    test_size: float = param(number(0, 1, open_low=True, open_high=True))
    val_size: float = param(number(0, 1, open_high=True))
    seed: int = param(integer(0))


@dataclass(frozen=True)
class PaletteParams:
    k: int = param(integer(2, 256))
    space: str = param(choice("rgb", "lab"))
    sample_pixels: int = param(integer(100))
    seed: int = param(integer(0))


@dataclass(frozen=True)
class EncodeParams:
    figure_images: int = param(integer(0, 64))


@dataclass(frozen=True)
class TrainParams:
    arch: str = param(choice("unet", "seed"))
    loss: str = param(choice("categorical_crossentropy", "l1", "seed_ordinal"))
    optimizer: str = param(choice("adam", "adadelta"))
    lr: float | None = param(optional(number(0, None, open_low=True)))
    epochs: int = param(integer(1))
    batch_size: int = param(integer(1))
    seed: int = param(integer(0))
    patience: int = param(integer(0))
    dropout: float = param(number(0, 1, open_high=True))
    rebalance: float = param(number(0, 1))
    flip: bool = param(boolean)
    shift: int = param(integer(0))
    rotate: bool = param(boolean)
    unet_filters: int = param(integer(1, 1024))
    unet_depth: int = param(integer(1, 6))
    precision: str = param(choice("float32", "mixed_bfloat16"))
    min_steps: int = param(integer(0))
    lr_schedule: str = param(choice("constant", "cosine"))
    monitor: str = param(choice("val_loss", "val_accuracy", "val_psnr", "val_ciede2000"))
    gray_prior: bool = param(boolean)
    min_epochs: int = param(integer(0))
    stop_floor: float = param(number(0, 1))
    ema: float | None = param(optional(number(0, 1, open_low=True, open_high=True)))
    weight_decay: float = param(number(0, None))
    soft_targets: float | None = param(optional(number(0, None, open_low=True)))
    chroma_weight: float = param(number(0, None))


@dataclass(frozen=True)
class EvaluateParams:
    decode: str = param(choice("argmax", "mean", "annealed_mean"))
    temperature: float = param(number(0, None, open_low=True))
    keep_luminance: bool = param(boolean)
    lightness: str = param(choice("match_gray", "cielab"))
    tta: str = param(choice("none", "flip", "flip_shift"))
    region_tolerance: int | None = param(optional(integer(0, 255)))
    region_min_pixels: int = param(integer(1))
    samples: int = param(integer(0, 64))
    transfer_pixels: int = param(integer(10))
    seed: int = param(integer(0))


@dataclass(frozen=True)
class ExtraParams:
    source: str | None = param(optional(extra_source))
    images: int = param(integer(1, 10_000_000))
    seed: int = param(integer(0))
    sha256: str | None = param(optional(sha256_digest))


SECTIONS: dict[str, type] = {"fetch": FetchParams, "resize": ResizeParams, "grayscale": GrayscaleParams,
                             "split": SplitParams, "palette": PaletteParams, "encode": EncodeParams,
                             "train": TrainParams, "evaluate": EvaluateParams, "extra": ExtraParams}


# Typed per section: a stage gets its own dataclass.
@overload
def load_section(section: Literal["fetch"], path: str | Path = ...) -> FetchParams: ...
@overload
def load_section(section: Literal["resize"], path: str | Path = ...) -> ResizeParams: ...
@overload
def load_section(section: Literal["grayscale"], path: str | Path = ...) -> GrayscaleParams: ...
@overload
def load_section(section: Literal["split"], path: str | Path = ...) -> SplitParams: ...
@overload
def load_section(section: Literal["palette"], path: str | Path = ...) -> PaletteParams: ...
@overload
def load_section(section: Literal["encode"], path: str | Path = ...) -> EncodeParams: ...
@overload
def load_section(section: Literal["train"], path: str | Path = ...) -> TrainParams: ...
@overload
def load_section(section: Literal["evaluate"], path: str | Path = ...) -> EvaluateParams: ...
@overload
def load_section(section: Literal["extra"], path: str | Path = ...) -> ExtraParams: ...


def load_section(section: str, path: str | Path = "params.yaml") -> Any:
    """Read and validate one section of the params file into its dataclass."""
    data = read_yaml(path)
    if section not in data:
        raise ParamError(f"params.yaml: missing section {section}")
    return validate(section, data[section], SECTIONS[section])


def load_keys(keys: Sequence[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    """The values of `keys` ("section.key"), each validated by its section's rule; nothing else is read."""
    data = read_yaml(path)
    values = {}
    for key in keys:
        section, name = key.split(".", 1)
        if not isinstance(data.get(section), dict) or name not in data[section]:
            raise ParamError(f"params.yaml: missing {key}")
        values[key] = field_check(SECTIONS[section], name)(key, data[section][name])
    return values
