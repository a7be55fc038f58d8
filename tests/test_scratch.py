"""scratch.py: one scratch place per project, work folders owned by a live process (flock), swept once
their owner is gone, never while it lives; stage locks; output modes that follow the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from colorize.core.errors import StageBusy
from colorize.core.scratch import lock_stage, scratch_place, sweep, work_dir

CLAIM_AND_HANG = """
import sys, time
from colorize.core.scratch import work_dir
with work_dir(sys.argv[1]) as folder:
    (folder / "partial.bin").write_bytes(b"x" * 1000)
    print(folder, flush=True)
    time.sleep(60)
"""


def _hanging_owner(near: Path) -> tuple[subprocess.Popen, Path]:
    owner = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, str(near)], stdout=subprocess.PIPE, text=True)
    return owner, Path(owner.stdout.readline().strip())


def test_the_scratch_place_is_the_projects_tmp_folder(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert scratch_place(tmp_path / "data" / "gray") == tmp_path / ".tmp"
    assert scratch_place(tmp_path / "elsewhere" / "x" / "y") == tmp_path / ".tmp"
    assert scratch_place(tmp_path.parent / "not-a-project" / "out") == tmp_path.parent / "not-a-project" / ".tmp"


def test_a_work_folder_disappears_on_exit_and_so_does_an_empty_place(tmp_path):
    with work_dir(tmp_path / "out") as folder:
        (folder / "a").write_text("a")
        assert folder.parent == tmp_path / ".tmp"
    assert not (tmp_path / ".tmp").exists()


def test_sweep_removes_a_killed_owners_leftovers_but_never_a_live_owners(tmp_path):
    owner, theirs = _hanging_owner(tmp_path / "out")
    try:
        with work_dir(tmp_path / "out") as mine:
            (mine / "b").write_text("b")
            assert sweep(tmp_path / "out") == []  # both owners alive: nothing goes
            assert (theirs / "partial.bin").exists()
            owner.send_signal(9)
            owner.wait()
            assert sweep(tmp_path / "out") == [theirs.name]
            assert not theirs.exists() and (mine / "b").exists()
    finally:
        owner.kill()
        owner.wait()
    assert not (tmp_path / ".tmp").exists()


def test_a_leftover_folder_whose_lock_is_gone_is_swept(tmp_path):
    (tmp_path / ".tmp" / "run-1-dead").mkdir(parents=True)
    (tmp_path / ".tmp" / ".new-run-2-dead.lock").write_text("")
    assert sorted(sweep(tmp_path / "out")) == [".new-run-2-dead", "run-1-dead"]
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_a_second_run_of_one_stage_is_refused_in_one_line(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    first = lock_stage("train", tmp_path)
    try:
        with pytest.raises(StageBusy) as caught:
            lock_stage("train", tmp_path)
        assert "\n" not in str(caught.value) and "train is already running" in str(caught.value)
        os.close(lock_stage("evaluate", tmp_path))  # another stage may run meanwhile
    finally:
        os.close(first)
    os.close(lock_stage("train", tmp_path))  # released with its owner


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_outputs_are_as_readable_as_the_umask_allows(tmp_path, umask):
    code = f"""
import os, sys
from pathlib import Path
os.umask({umask})
from colorize.core.artifacts import atomic_dir, write_bytes_atomic
out = Path(sys.argv[1])
with atomic_dir(out / "folder") as tmp:
    (tmp / "inner.bin").write_bytes(b"x")
write_bytes_atomic(out / "file.bin", b"y")
"""
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "folder") == 0o777 & ~umask
    assert mode(tmp_path / "file.bin") == 0o666 & ~umask
    assert mode(tmp_path / "folder" / "inner.bin") == 0o666 & ~umask
