"""Shared fixtures: the real params file, small seeded images and tiny training sets.

Nothing here imports Keras: the tests that need it import it themselves, so a run of the data tests
stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from colorize.core.params import TrainParams
from repo_params import PARAMS_FILE, repo_params


@pytest.fixture
def params_file() -> Path:
    """The project's real params.yaml (read only)."""
    return PARAMS_FILE


@pytest.fixture
def real_params() -> dict[str, Any]:
    """A fresh copy of every section of the real params.yaml, to modify freely; fetch accepts a single
    image (the tests' sources are tiny)."""
    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    params["fetch"]["min_images"] = 1
    return params


@pytest.fixture
def write_params(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a params mapping to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / f"params-{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


def blocky_images(n: int, size: int, colours: np.ndarray, seed: int, block: int = 4) -> np.ndarray:
    """(n, size, size, 3) uint8 images made of `block`-pixel squares drawn from `colours`, seeded."""
    rng = np.random.default_rng(seed)
    cells = -(-size // block)
    picks = rng.integers(0, len(colours), size=(n, cells, cells))
    images = np.asarray(colours, dtype=np.uint8)[picks]
    images = images.repeat(block, axis=1).repeat(block, axis=2)
    return np.ascontiguousarray(images[:, :size, :size])


@pytest.fixture
def make_blocky() -> Callable[..., np.ndarray]:
    return blocky_images


@pytest.fixture
def random_rgb() -> np.ndarray:
    """12 seeded random 8x8 RGB images (uint8)."""
    return np.random.default_rng(1234).integers(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)


@pytest.fixture
def tiny_training_set() -> dict[str, np.ndarray]:
    """A learnable 4-colour problem at 16x16: the label of a pixel is its gray level's quarter.

    train: 8 images, val: 4 images; gray float32 in [0, 1], labels uint8 in [0, 4).
    """
    rng = np.random.default_rng(7)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        levels = rng.integers(0, 4, size=(n, 4, 4)).repeat(4, axis=1).repeat(4, axis=2)
        gray = (levels * 0.25 + 0.125 + rng.normal(0, 0.02, size=levels.shape)).clip(0, 1)
        return gray.astype(np.float32), levels.astype(np.uint8)

    train_gray, train_labels = part(8)
    val_gray, val_labels = part(4)
    return {"train_gray": train_gray, "train_labels": train_labels,
            "val_gray": val_gray, "val_labels": val_labels}


@pytest.fixture
def tiny_train_params() -> TrainParams:
    """The real train section made tiny: a 2-level U-Net with 4 filters, 2 epochs, batch 4."""
    return repo_params("train", arch="unet", unet_filters=4, unet_depth=2, epochs=2, batch_size=4, patience=2,
                       shift=2, flip=True, seed=0, lr=None, optimizer="adam", loss="categorical_crossentropy",
                       min_steps=0, lr_schedule="constant", monitor="val_loss")


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory) -> Path:
    """The project with the integration tests' tiny params after one `dvc repro`, committed.

    Shared by the integration tests (pipeline, faults, experiments, report, remotes); those that change it
    work on a copy (workspace.copy_workspace) or a clone (workspace.clone_sharing_cache), so that one repro
    serves them all.
    """
    from test_pipeline import ALL_STAGES, TINY, repro_runs
    from workspace import commit, make_workspace

    repo = make_workspace(tmp_path_factory.mktemp("reproduced") / "project", TINY)
    assert repro_runs(repo) == set(ALL_STAGES)  # a fresh workspace runs every stage once
    commit(repo, "tiny pipeline, reproduced")
    return repo
