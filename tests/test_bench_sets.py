"""The benchmarks' picture sets: bench/realdata.py's building (picked by a hash of the names, only coloured
pictures, built once) and bench/tuning_sweep.py's training-split subsample (its learning curves).

The package download is replaced by a fake archive of generated PNGs; nothing is fetched.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repo_params import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import realdata  # noqa: E402
from tuning_sweep import run_label, subsample_train  # noqa: E402


def png(rgb: tuple[int, int, int]) -> bytes:
    pixels = np.full((16, 16, 3), 255, np.uint8)
    pixels[4:12, 4:12] = rgb  # a drawing on white
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fake_set(tmp_path, monkeypatch):
    """A set of 5 coloured and 3 gray candidates; `opened` counts how often its archive is read."""
    opened = []

    def members(archive: Path):
        opened.append(archive)
        for i in range(5):
            yield f"red{i}.png", png((200, 20 * i, 10))
        for i in range(3):
            yield f"gray{i}.png", png((90 + i, 90 + i, 90 + i))

    monkeypatch.setattr(realdata, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(realdata, "download", lambda spec, folder: folder / spec.archive)
    spec = realdata.PictureSet("fake", "test", "npm", "fake-pkg", "1.0", "0" * 64, "fake.tgz", "CC0", members)
    return spec, opened


def test_build_picks_only_coloured_pictures_and_records_what_it_picked(fake_set):
    spec, _ = fake_set
    images = realdata.build(spec, count=3)
    names = sorted(p.name for p in images.iterdir())
    assert len(names) == 3 and all(name.startswith("red") for name in names)
    source = json.loads((images.parent / "SOURCE.json").read_text())
    assert (source["count"], source["requested"], source["candidates"]) == (3, 3, 8)
    assert sorted(source["files"]) == names
    assert "CC0" in (images.parent / "LICENSE.md").read_text()


def test_build_is_deterministic(fake_set):
    spec, _ = fake_set
    first = {p.name: p.read_bytes() for p in realdata.build(spec, count=4).iterdir()}
    realdata.build(spec, count=2)  # a different count rebuilds
    again = {p.name: p.read_bytes() for p in realdata.build(spec, count=4).iterdir()}
    assert first == again


def test_a_set_shorter_than_asked_is_built_once(fake_set):
    # The package holds 5 coloured pictures and 10 are asked for: all 5, and the next run reuses them.
    spec, opened = fake_set
    images = realdata.build(spec, count=10)
    assert len(list(images.iterdir())) == 5
    assert len(opened) == 1
    assert realdata.build(spec, count=10) == images
    assert len(opened) == 1  # not rebuilt
    realdata.build(spec, count=4)
    assert len(opened) == 2  # another count is another set


SPLIT = {"train": [f"t{i:02d}" for i in range(40)], "val": ["v0", "v1"], "test": ["x0", "x1", "x2"]}


def test_subsample_keeps_a_seeded_share_of_train_in_order_and_the_rest_unchanged():
    half = subsample_train(SPLIT, 0.5, seed=0)
    assert len(half["train"]) == 20 and set(half["train"]) < set(SPLIT["train"])
    assert half["train"] == [item for item in SPLIT["train"] if item in half["train"]]  # order kept
    assert (half["val"], half["test"]) == (SPLIT["val"], SPLIT["test"])
    assert subsample_train(SPLIT, 0.5, seed=0) == half
    assert subsample_train(SPLIT, 0.5, seed=1)["train"] != half["train"]
    assert subsample_train(SPLIT, 1.0, seed=0) == SPLIT
    assert len(subsample_train(SPLIT, 0.25, seed=0)["train"]) == 10


@pytest.mark.parametrize("share", [0, -0.5, 1.5, True, "half", 0.001])
def test_subsample_refuses_a_share_outside_0_1_or_one_that_leaves_nothing(share):
    with pytest.raises(SystemExit, match="train-share"):
        subsample_train(SPLIT, share, seed=0)


def test_run_labels_name_the_share():
    assert run_label("default", 1.0) == "default"
    assert run_label("default", 0.5) == "default, 0.5 of train"


def test_a_bad_share_is_refused_before_any_run(tmp_path):
    results = tmp_path / "curve.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "tuning_sweep.py"), "run", "--data", str(tmp_path),
                           "--results", str(results), "--train-shares", "1", "0"], capture_output=True, text=True)
    assert done.returncode != 0
    assert "--train-share must be in (0, 1], got 0.0" in done.stderr
    assert not results.exists()
