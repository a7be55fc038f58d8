"""streaming.py: rows read by position from the shards equal rows loaded whole; samples and counts drawn a
chunk at a time equal the whole-array ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colorize.core.artifacts import read_sharded, write_sharded
from colorize.core.errors import ArtifactError
from colorize.core.streaming import ShardedRows, sample_pixels_streamed
from colorize.model.rebalance import (
    class_weights,
    class_weights_from_counts,
    count_labels,
    count_labels_streamed,
)
from colorize.quantize.palette import sample_pixels


@pytest.fixture
def sharded(tmp_path):
    """23 RGB rows of 4x4 in shards of 5 rows (row bytes 48, shard_bytes 240)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(23, 4, 4, 3), dtype=np.uint8)
    ids = [f"img{i:02d}" for i in range(23)]
    write_sharded(tmp_path, "rgb", ids, images, shard_bytes=5 * 48)
    return tmp_path, ids, images


def test_rows_equal_the_loaded_rows_in_any_order_and_nothing_is_mapped(sharded):
    folder, ids, images = sharded
    wanted = [ids[i] for i in (22, 0, 7, 5, 13, 4)]
    rows = ShardedRows(folder, wanted)
    assert len(rows.shards) == 5
    # Read by position, not memory-mapped: pages read stay out of the process's resident memory.
    assert str(folder) not in Path("/proc/self/maps").read_text()
    assert rows.shape == (6, 4, 4, 3) and rows.dtype == np.uint8 and len(rows) == 6
    whole = read_sharded(folder, wanted)[1]
    assert np.array_equal(rows[np.arange(6)], whole)
    assert np.array_equal(rows[np.array([5, 0, 5, 2])], whole[[5, 0, 5, 2]])
    assert np.array_equal(rows[1:4], whole[1:4])
    assert np.array_equal(np.asarray(rows), whole)
    assert np.array_equal(np.concatenate(list(rows.chunks(4))), whole)


@pytest.mark.parametrize("positions", [[3, 4, 5, 6, 7, 8, 9], [9, 8, 3, 4, 4, 5, 20, 21, 0], [12], []])
def test_runs_repeats_and_reversals_across_shards_read_the_right_rows(sharded, positions):
    folder, ids, images = sharded
    rows = ShardedRows(folder)
    got = rows[np.array(positions, dtype=np.int64)]
    assert got.shape == (len(positions), 4, 4, 3) and np.array_equal(got, images[positions])


def test_a_shard_cut_short_after_verification_fails_naming_it(sharded):
    folder, _, _ = sharded
    rows = ShardedRows(folder)
    last = rows.shards[-1].path
    last.write_bytes(last.read_bytes()[:-48])
    with pytest.raises(ArtifactError, match=f"{last} was truncated"):
        rows[np.arange(20, 23)]


def test_unknown_ids_are_named(sharded):
    folder, _, _ = sharded
    with pytest.raises(KeyError, match="1 ids not found, e.g. 'nope'"):
        ShardedRows(folder, ["img01", "nope"])


@pytest.mark.parametrize("count", [50, 368, 1000])  # fewer, exactly as many as, more than the pixels
def test_streamed_pixel_sample_is_the_whole_array_sample(sharded, count):
    folder, ids, images = sharded
    rows = ShardedRows(folder, ids[3:])
    expected = sample_pixels(images[3:], count, seed=5)
    assert np.array_equal(sample_pixels_streamed(rows, count, seed=5, chunk_images=3), expected)


def test_streamed_label_counts_and_weights_equal_the_whole_array_ones(tmp_path):
    labels = np.random.default_rng(1).integers(0, 6, size=(17, 8, 8), dtype=np.uint8)
    write_sharded(tmp_path, "labels", [str(i) for i in range(17)], labels, shard_bytes=4 * 64)
    rows = ShardedRows(tmp_path)
    counts = count_labels_streamed(rows, 7, chunk_images=5)
    assert np.array_equal(counts, count_labels(labels, 7)) and counts[6] == 0
    assert np.array_equal(class_weights_from_counts(counts, 0.5), class_weights(labels, 7, 0.5))
