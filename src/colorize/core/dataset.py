"""Read the pipeline's artifacts back: the split, rows of sharded arrays, and the facts stored with them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorize.core.artifacts import INDEX_NAME, read_index, read_json
from colorize.core.errors import ArtifactError, UserError
from colorize.core.streaming import ShardedRows


def require(path: Path) -> Path:
    """`path` itself, or one clear line saying which artifact is missing."""
    if not Path(path).exists():
        raise UserError(f"missing artifact {path}: run the stages before this one (`dvc repro`)")
    return Path(path)


def load_split(path: Path) -> dict[str, list[str]]:
    split = read_json(require(path))
    try:
        return {part: list(split[part]) for part in ("train", "val", "test")}
    except (KeyError, TypeError):
        raise ArtifactError(f"{path} is not a split (train, val, test id lists); rerun `dvc repro` to restore "
                            f"or recompute it") from None


def load_part(folder: Path, ids: Sequence[str]) -> np.ndarray:
    """Rows of a sharded array for `ids`, in that order, as one array (only those rows are read)."""
    rows = part_rows(folder, ids)
    return rows[np.arange(len(rows))]


def part_rows(folder: Path, ids: Sequence[str]) -> ShardedRows:
    """Rows of a sharded array for `ids`, in that order, read from disk only when indexed."""
    require(Path(folder) / INDEX_NAME)
    try:
        return ShardedRows(folder, ids)
    except KeyError as exc:
        raise UserError(f"{folder} does not match the split: {exc.args[0]} (rerun `dvc repro`)") from None


def artifact_info(folder: Path) -> dict[str, Any]:
    """The extra facts a stage stored in an index (size, fill, weights, ...)."""
    index = read_index(require(Path(folder) / INDEX_NAME).parent)
    return {key: value for key, value in index.items() if key not in ("ids", "shards")}
