"""Score a trained model on the extra set (data/extra/resized): a second source, unlike its training data.

The fetch_extra and resize_extra stages fetched and resized it as the training set; here it is grayed and
encoded with the bundle's gray weights and palette, as the grayscale and encode stages would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colorize.core.artifacts import read_sharded
from colorize.core.dataset import artifact_info
from colorize.core.errors import UserError
from colorize.core.params import EvaluateParams
from colorize.core.rawstore import EXTRA_SOURCE_KEY
from colorize.evaluate.evaluation import Images, model_probabilities, score_generalisation
from colorize.model.bundle import Bundle
from colorize.prep.transforms import rgb_to_gray
from colorize.quantize.palette import nearest_palette_index


def load_extra(folder: Path, bundle: Bundle) -> tuple[str, Images] | None:
    """(source, its images grayed and encoded with the bundle's settings), or None when the source is off."""
    info = artifact_info(folder)
    if EXTRA_SOURCE_KEY not in info:
        raise UserError(f"{folder} is not an extra set (its index records no source): rerun `dvc repro`")
    source = info[EXTRA_SOURCE_KEY]
    if source is None:
        return None
    ids, rgb = read_sharded(folder)
    size = bundle.image_size
    if rgb.shape[1:] != (size, size, 3):
        raise UserError(f"{folder} holds images of shape {rgb.shape[1:]}, the model takes {size}x{size}x3: "
                        f"rerun `dvc repro`")
    return source, Images(ids, rgb, rgb_to_gray(rgb, bundle.gray_weights),
                          nearest_palette_index(rgb, bundle.palette, bundle.space))


def score_extra(folder: Path, bundle: Bundle, train: Images, params: EvaluateParams) -> dict[str, Any] | None:
    """The model and the cheap baselines on the extra set, or None when the source is off."""
    loaded = load_extra(folder, bundle)
    if loaded is None:
        return None
    source, images = loaded
    probs = model_probabilities(bundle.model, images.gray, params)
    return {"source": source, **score_generalisation(probs, images, train, bundle.palette, params,
                                                      bundle.gray_weights)}
