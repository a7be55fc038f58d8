"""Cross-checks between params sections, run by the `validate` stage before any other stage.

Each stage reads only its own params section, so a constraint that ties two sections together (the
U-Net's depth and the image size; the images fetch must deliver and what split needs) would otherwise be
found only by the later stage, after the earlier ones ran for nothing. `validate` reads exactly the keys
named in `CROSS_CHECKED` (its dvc.yaml params), each checked with its own section's rule, and fails with
one line naming both params.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colorize.core.errors import InsufficientData, ParamError
from colorize.core.params import load_keys
from colorize.prep.splitting import split_counts

CROSS_CHECKED = ("fetch.min_images", "resize.image_size", "split.test_size", "split.val_size", "train.arch",
                 "train.unet_depth")


def read_cross_checked(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The values of `CROSS_CHECKED`, each validated by its field's check in its section's dataclass."""
    return load_keys(CROSS_CHECKED, path)


def split_minimum(test_size: float, val_size: float, limit: int = 100_000) -> int:
    """The fewest images split accepts with these fractions."""
    for n in range(1, limit):
        try:
            split_counts(n, test_size, val_size)
            return n
        except InsufficientData:
            continue
    raise ParamError(f"params.yaml: split.test_size={test_size} and split.val_size={val_size} leave no "
                     f"training image for any count below {limit}")


def cross_check(values: dict[str, Any]) -> list[str]:
    """Raise `ParamError` on the first violated constraint; return the constraints checked."""
    size, depth = values["resize.image_size"], values["train.unet_depth"]
    if values["train.arch"] == "unet" and size % 2**depth:
        raise ParamError(f"params.yaml: train.unet_depth={depth} needs resize.image_size divisible by {2**depth}, "
                         f"got {size}")
    need = split_minimum(values["split.test_size"], values["split.val_size"])
    if values["fetch.min_images"] < need:
        raise ParamError(f"params.yaml: split.test_size={values['split.test_size']} and split.val_size="
                         f"{values['split.val_size']} need at least {need} images; raise fetch.min_images "
                         f"(now {values['fetch.min_images']}) to {need} so fetch refuses fewer before anything "
                         f"else runs")
    return ["resize.image_size divisible by 2**train.unet_depth (unet)", "fetch.min_images >= split's minimum"]
