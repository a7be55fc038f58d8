"""Deterministic train / validation / test split of image ids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from colorize.core.errors import InsufficientData


def split_counts(n: int, test_size: float, val_size: float) -> tuple[int, int, int]:
    """(train, val, test) counts: test = round(test_size * n), val = round(val_size * rest), each >= 1."""
    n_test = max(1, round(test_size * n))
    n_val = max(1, round(val_size * (n - n_test))) if val_size > 0 else 0
    n_train = n - n_test - n_val
    needed = 2 + (1 if val_size > 0 else 0)
    if n < needed:
        raise InsufficientData(f"split needs at least {needed} images (train, test"
                               f"{', val' if val_size > 0 else ''}), found {n}")
    if n_train < 1:
        raise InsufficientData(f"split.test_size={test_size} and split.val_size={val_size} leave no training "
                               f"image out of {n} (test {n_test}, val {n_val})")
    return n_train, n_val, n_test


def split_ids(ids: Sequence[str], test_size: float, val_size: float, seed: int) -> dict[str, list[str]]:
    """Shuffle the sorted ids with `seed` and cut them; each part is returned sorted.

    Sorting first makes the split depend only on the set of ids, not on the order they were found in.
    """
    unique = sorted(set(ids))
    if len(unique) != len(ids):
        raise ValueError("ids must be unique (duplicates are removed by fetch)")
    n_train, n_val, n_test = split_counts(len(unique), test_size, val_size)
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    return {
        "test": sorted(shuffled[:n_test]),
        "val": sorted(shuffled[n_test:n_test + n_val]),
        "train": sorted(shuffled[n_test + n_val:]),
    }
