"""Faults on a real `dvc repro` workspace (tiny params): a corrupt cache object, Ctrl-C at any moment of
train, SIGKILL in every stage, two runs of one stage at once, a retrain with equal weights, fail-early
cross-checks, and the modes of what is written."""

from __future__ import annotations

import signal
import stat
import sys
from pathlib import Path

import pytest

from faults import (
    STAGE_ORDER,
    fault_while_working,
    flip_cache_byte,
    leftovers,
    one_error_line,
    start,
)
from test_pipeline import TINY, lock_hashes, repro_runs, stale_stages
from workspace import copy_workspace, dvc, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(reproduced_project: Path, tmp_path_factory) -> Path:
    return copy_workspace(reproduced_project, tmp_path_factory.mktemp("faults") / "repo")


def test_a_flipped_byte_in_a_cache_object_fails_naming_the_artifact(repo: Path) -> None:
    shard = "data/gray/gray-00000.npy"
    obj = flip_cache_byte(repo, shard)
    try:
        result = dvc(repo, "repro", "-f", "-s", "train", check=False)
        assert result.returncode != 0
        line = one_error_line(result.stderr)
        assert shard in line and "sha256 mismatch, expected" in line, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    finally:  # flip it back so the other tests see the real data
        data = bytearray(obj.read_bytes())
        data[-1] ^= 0x01
        obj.write_bytes(bytes(data))
        (repo / shard).unlink()
        dvc(repo, "checkout", "-f", "data/gray")
    assert repro_runs(repo) == set()


@pytest.mark.parametrize("artifact", ["data/gray/index.json", "data/split.json", "models/model.keras"])
def test_a_malformed_artifact_fails_in_one_line_naming_it(repo: Path, artifact: str) -> None:
    original = (repo / artifact).read_bytes()
    stage = "evaluate" if artifact.startswith("models") else "train"
    try:
        (repo / artifact).unlink()  # a checked-out file may be a read-only link into the cache
        (repo / artifact).write_bytes(original[: len(original) // 2])
        result = start(repo, sys.executable, f"stages/{stage}.py")
        _, err = result.communicate(timeout=300)
        assert result.returncode == 1 and "Traceback" not in err
        assert artifact in one_error_line(err), err
    finally:
        (repo / artifact).unlink()
        dvc(repo, "checkout", "-f", artifact)


@pytest.mark.parametrize("delay", [0.1, 0.5, 2.0, 6.0])
def test_ctrl_c_at_any_moment_of_train_is_one_line(repo: Path, delay: float) -> None:
    code, err, landed = fault_while_working(repo, [sys.executable, "stages/train.py"], signal.SIGINT, delay)
    assert "Traceback" not in err, err
    if landed and code != 0:
        assert code == 130
        assert err.strip().splitlines()[-1] == ("error: train interrupted; rerun `dvc repro` to restore or "
                                                "recompute its outputs"), err
    assert not [p for p in leftovers(repo) if "run-" in p]  # its own work folder went with it


def test_a_kill_in_any_stage_leaves_nothing_after_the_next_repro(repo: Path) -> None:
    for stage in STAGE_ORDER:
        code, _, landed = fault_while_working(repo, ["dvc", "repro", "-f", "-s", stage], signal.SIGKILL)
        assert repro_runs(repo) <= {"validate", stage}, stage  # restored from the run cache, or rerun
        assert leftovers(repo) == [], (stage, landed)
    assert stale_stages(repo) == set()


def test_a_second_run_of_a_running_stage_is_refused_in_one_line(repo: Path) -> None:
    first = start(repo, sys.executable, "stages/train.py")
    try:
        import time

        deadline = time.monotonic() + 60
        while not list((repo / ".tmp").glob("run-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = start(repo, sys.executable, "stages/train.py")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 1 and "Traceback" not in err
        assert "stage train is already running" in one_error_line(err)
    finally:
        _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err
    # The manual run wrote the same model bytes: evaluate, which depends on models/, is not stale.
    assert "evaluate" not in stale_stages(repo)
    dvc(repo, "repro")  # train's DVCLive files carry timestamps: let DVC record them


def test_a_retrain_with_equal_weights_changes_nothing_downstream(repo: Path) -> None:
    before = lock_hashes(repo, ["train"])
    dvc(repo, "repro", "-f", "-s", "train")
    assert lock_hashes(repo, ["train"])["models"] == before["models"]
    assert "evaluate" not in stale_stages(repo)
    assert repro_runs(repo) == set()


def test_outputs_are_readable_by_group_and_others(repo: Path) -> None:
    for path in ("models", "data/gray", "data/raw", "metrics/samples", "models/model.keras", "data/split.json"):
        mode = stat.S_IMODE((repo / path).stat().st_mode)
        assert mode & 0o044 == 0o044, (path, oct(mode))


@pytest.mark.parametrize(("change", "words"), [
    ({"resize": {"image_size": 12}, "train": {"unet_depth": 3}}, "train.unet_depth=3 needs resize.image_size"),
    ({"fetch": {"min_images": 2}}, "need at least 3 images; raise fetch.min_images"),
])
def test_a_cross_section_mistake_fails_before_any_stage_runs(repo: Path, change: dict, words: str) -> None:
    try:
        write_params(repo, TINY, change)
        result = dvc(repo, "repro", check=False)
    finally:
        write_params(repo, TINY)
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert words in one_error_line(result.stderr), result.stderr
    assert "Running stage 'fetch'" not in result.stdout


def test_too_few_images_fail_in_fetch_before_split(repo: Path) -> None:
    fetch_metrics = (repo / "metrics" / "fetch.json").read_bytes()
    try:
        write_params(repo, TINY, {"fetch": {"builtin": {"count": 2}}})
        result = dvc(repo, "repro", check=False)
    finally:
        write_params(repo, TINY)
    assert "fewer than fetch.min_images=3" in one_error_line(result.stderr), result.stderr
    assert "Running stage 'split'" not in result.stdout
    # DVC removed fetch's outputs before running it: the data comes back from the cache, the small
    # outputs (cache: false) from git, as `git checkout -- metrics` gives them back in a real project.
    dvc(repo, "checkout", "-f")
    (repo / "metrics" / "fetch.json").write_bytes(fetch_metrics)
    assert stale_stages(repo) == set()
