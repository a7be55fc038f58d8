"""splitting.py: sizes, determinism, order independence, disjointness, clear errors."""

from __future__ import annotations

import random
import re

import pytest

from colorize.core.errors import InsufficientData, UserError
from colorize.prep.splitting import split_counts, split_ids

IDS = [f"{i:016x}" for i in range(0, 200 * 7919, 7919)]  # 200 ids that look like fetch's hashes


def test_seventy_thirty_without_validation():
    split = split_ids(IDS, test_size=0.3, val_size=0.0, seed=0)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (140, 0, 60)


def test_validation_is_carved_from_the_training_part():
    split = split_ids(IDS, test_size=0.3, val_size=0.15, seed=0)
    # test = 0.3 * 200 = 60; val = 0.15 * (200 - 60) = 21; train = the remaining 119.
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (119, 21, 60)
    assert split_counts(200, 0.3, 0.15) == (119, 21, 60)


@pytest.mark.parametrize("n", [3, 4, 7, 10, 33, 101])
def test_counts_add_up_and_every_part_is_non_empty(n):
    train, val, test = split_counts(n, 0.3, 0.15)
    assert train + val + test == n and min(train, val, test) >= 1


def test_parts_are_disjoint_cover_everything_and_are_sorted():
    split = split_ids(IDS, 0.3, 0.15, seed=4)
    parts = [split["train"], split["val"], split["test"]]
    assert sum(map(len, parts)) == len(IDS)
    assert set().union(*map(set, parts)) == set(IDS)
    assert not (set(parts[0]) & set(parts[1]) or set(parts[0]) & set(parts[2]) or set(parts[1]) & set(parts[2]))
    assert all(part == sorted(part) for part in parts)


def test_same_seed_same_split_other_seed_other_split():
    assert split_ids(IDS, 0.3, 0.15, seed=1) == split_ids(list(IDS), 0.3, 0.15, seed=1)
    assert split_ids(IDS, 0.3, 0.15, seed=1)["test"] != split_ids(IDS, 0.3, 0.15, seed=2)["test"]


def test_split_does_not_depend_on_the_input_order():
    shuffled = list(IDS)
    random.Random(9).shuffle(shuffled)
    assert shuffled != IDS
    assert split_ids(shuffled, 0.3, 0.15, seed=3) == split_ids(IDS, 0.3, 0.15, seed=3)


@pytest.mark.parametrize(("n", "val_size", "needed"), [(2, 0.15, 3), (1, 0.0, 2), (0, 0.15, 3)])
def test_too_few_images_names_the_counts(n, val_size, needed):
    with pytest.raises(InsufficientData) as info:
        split_ids(IDS[:n], 0.3, val_size, seed=0)
    message = str(info.value)
    assert f"at least {needed} images" in message and f"found {n}" in message and "\n" not in message
    assert isinstance(info.value, UserError)


def test_duplicate_ids_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        split_ids(["a", "b", "a", "c"], 0.3, 0.0, seed=0)


def test_error_for_a_test_size_that_leaves_no_training_image_is_consistent():
    with pytest.raises(InsufficientData) as info:
        split_ids(IDS[:10], 0.99, 0.0, seed=0)
    # The counts it names add up: every one of the 10 images went to test or validation.
    numbers = re.search(r"leave no training image out of (\d+) \(test (\d+), val (\d+)\)", str(info.value))
    assert numbers, str(info.value)
    total, test, val = map(int, numbers.groups())
    assert total == 10 and test + val == total and test == 10, str(info.value)
