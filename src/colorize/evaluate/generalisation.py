"""Score a trained model on a second data source, one unlike its training data.

`evaluate.extra_source` is anything `fetch.source` accepts, or `builtin:<style>` for a built-in set
drawn with another seed (e.g. `builtin:blob`, a differently styled set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.artifacts import SHARD_BYTES
from colorize.core.images import DEFAULT_MAX_PIXELS, decode_image
from colorize.core.params import BuiltinParams, EvaluateParams, FetchParams
from colorize.core.rawstore import iter_raw
from colorize.core.scratch import work_dir
from colorize.evaluate.evaluation import Images, score_generalisation
from colorize.fetch.ingest import run_fetch
from colorize.model.bundle import Bundle, predict_probabilities
from colorize.prep.transforms import rgb_to_gray, square_resize
from colorize.quantize.palette import nearest_palette_index

EXTRA_SEED = 1  # the built-in training set uses fetch.builtin.seed (0 by default)
FETCH_DEFAULTS: dict[str, Any] = {
    "sha256": None, "min_images": 1, "min_side": 8, "keep_gray": False, "max_pixels": DEFAULT_MAX_PIXELS,
    "max_files": 200_000,
    "max_total_bytes": 8_000_000_000, "timeout_s": 30, "retries": 3, "backoff_s": 0.5, "on_error": "skip",
    "shard_bytes": SHARD_BYTES,
}


def fetch_params(source: str, count: int) -> FetchParams:
    """Full fetch params for `source`; `builtin:<style>` draws `count` built-in images with another seed."""
    style = "pika"
    if source.startswith("builtin:"):
        source, style = "builtin", source.split(":", 1)[1]
    return FetchParams(source=source, builtin=BuiltinParams(count=count, seed=EXTRA_SEED, style=style),
                       **FETCH_DEFAULTS)


def load_source(source: str, count: int, bundle: Bundle) -> Images:
    """Fetch, resize, gray and encode a source exactly as the pipeline would, with the bundle's settings."""
    method = bundle.meta.get("resize_method", "lanczos")
    # In the project's scratch place, never the system temp folder: a kill leaves it to the next sweep.
    with work_dir(Path.cwd() / "extra") as scratch:
        raw_dir = scratch / "raw"
        run_fetch(fetch_params(source, count), raw_dir, None, progress=False)
        ids, rgb = [], []
        for image_id, data in iter_raw(raw_dir):
            ids.append(image_id)
            rgb.append(square_resize(decode_image(data, FETCH_DEFAULTS["max_pixels"]), bundle.image_size,
                                     bundle.fill, method, bundle.meta.get("resize_crop", "none")))
    rgb_array = np.stack(rgb)
    return Images(ids, rgb_array, rgb_to_gray(rgb_array, bundle.gray_weights),
                  nearest_palette_index(rgb_array, bundle.palette, bundle.space))


def score_extra_source(source: str, count: int, bundle: Bundle, train: Images, params: EvaluateParams
                       ) -> dict[str, Any]:
    images = load_source(source, count, bundle)
    probs = predict_probabilities(bundle.model, images.gray)
    return {"source": source, **score_generalisation(probs, images, train, bundle.palette, params)}
