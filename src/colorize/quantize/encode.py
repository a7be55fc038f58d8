"""The encode stage's work: every pixel of the resized images -> index of its nearest palette colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from colorize.prep.preprocess import map_rows
from colorize.quantize.palette import nearest_palette_index


def encode_resized(resized_dir: Path, out_dir: Path, palette: np.ndarray, space: str,
                   progress: bool = True) -> int:
    """Every pixel -> index of its nearest palette colour: sharded uint8 (N, S, S)."""
    return map_rows(resized_dir, out_dir, "labels", lambda rgb: nearest_palette_index(rgb, palette, space),
                    {"k": int(len(palette)), "space": space}, "encode", progress)
