"""The extra (generalisation) set: a second source the model is scored on, unlike its training data.

`extra.source` is anything `fetch.source` accepts, or `builtin:<style>` for the built-in set drawn with
`extra.seed` and `extra.images`. It goes through the fetch code with fetch's own guards (the `fetch.*` keys
in `GUARDS`), so it is checked, deduplicated and stored as the training set is. When `extra.source` is null
the stage still runs (DVC stages cannot be conditional) and writes an empty raw store whose manifest says
so; every manifest of the extra set records its source under `EXTRA_SOURCE_KEY`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colorize.core.artifacts import atomic_dir, json_bytes
from colorize.core.errors import FetchError
from colorize.core.params import BuiltinParams, ExtraParams, FetchParams
from colorize.core.rawstore import EXTRA_SOURCE_KEY, MANIFEST_NAME
from colorize.fetch.ingest import empty_manifest, run_fetch

# The training set's fetch params that apply to the extra set too (its dvc.yaml params, with `extra`).
GUARDS = tuple(f"fetch.{key}" for key in ("min_side", "keep_gray", "max_pixels", "max_files", "max_total_bytes",
                                          "timeout_s", "retries", "backoff_s", "on_error", "shard_bytes"))
MIN_IMAGES = 1  # scoring needs one image; fetch.min_images is what split needs of the training set


def fetch_params(extra: ExtraParams, guards: dict[str, Any]) -> FetchParams:
    """run_fetch's params for `extra.source`: `builtin:<style>` draws `extra.images` with `extra.seed`."""
    source, style = extra.source, "pika"
    if source.startswith("builtin:"):
        source, style = "builtin", source.split(":", 1)[1]
    return FetchParams(source=source, builtin=BuiltinParams(count=extra.images, seed=extra.seed, style=style),
                       sha256=extra.sha256, min_images=MIN_IMAGES,
                       **{key.split(".", 1)[1]: value for key, value in guards.items()})


def fetch_extra(extra: ExtraParams, guards: dict[str, Any], out: Path, progress: bool = True
                ) -> dict[str, Any] | None:
    """Fetch `extra.source` into `out` (replaced atomically); its counts, or None when the source is off."""
    if extra.source is None:
        with atomic_dir(out) as tmp:
            (tmp / MANIFEST_NAME).write_bytes(json_bytes(empty_manifest(**{EXTRA_SOURCE_KEY: None})))
        return None
    try:
        return run_fetch(fetch_params(extra, guards), out, None, progress,
                         record={EXTRA_SOURCE_KEY: extra.source})
    except FetchError as exc:  # the fetch code names its own param; here the source is extra.source
        raise FetchError(str(exc).replace("fetch.source", "extra.source")) from None
