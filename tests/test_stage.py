"""stage.py: a stage ends in one line whatever stops it, even when a library turns Ctrl-C into its own error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

STAGE = """
import os, signal, sys, time
from colorize.core.stage import run_stage

if sys.argv[1] == "setup":  # Ctrl-C while run_stage still sets up (its imports take a while on a loaded machine)
    import colorize.core.parallel

    def interrupted_while_setting_up():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    colorize.core.parallel.one_blas_thread = interrupted_while_setting_up

def main():
    if sys.argv[1] == "converted":  # what TensorFlow's tensor conversion does with a Ctrl-C
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise TypeError("Failed to convert elements of (None, 16, 16) to Tensor") from None
    if sys.argv[1] == "plain":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    if sys.argv[1] in ("finaliser", "gc-callback"):  # where Python can only print an exception and go on
        def interrupt_here(*args):
            signal.raise_signal(signal.SIGINT)
        if sys.argv[1] == "finaliser":
            type("Held", (), {"__del__": interrupt_here})()
        else:
            import gc
            gc.callbacks.append(interrupt_here)
            gc.collect()
        time.sleep(5)
    if sys.argv[1] == "finaliser-at-the-end":  # swallowed as the stage finishes: it is done, not interrupted
        type("Held", (), {"__del__": lambda self: signal.raise_signal(signal.SIGINT)})()
    if sys.argv[1] == "bug":
        raise TypeError("a real bug")
    if sys.argv[1] == "blas":
        import numpy, threadpoolctl
        print(*(pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"))

run_stage(main, name="demo")
time.sleep(0.2)  # the process's own clean-up, long enough for a pending re-delivery to fire
"""


@pytest.mark.parametrize("how", ["plain", "converted", "finaliser", "gc-callback", "setup"])
def test_an_interrupt_is_one_line_even_when_a_library_converts_it(tmp_path: Path, how: str) -> None:
    done = subprocess.run([sys.executable, "-c", STAGE, how], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == ("error: demo interrupted; rerun `dvc repro` to restore or recompute its "
                                   "outputs")


EARLY = """
import _bootstrap
import os, signal, time
os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the stage's modules load, before run_stage
time.sleep(0.5)
from colorize.core.stage import run_stage
run_stage(lambda: time.sleep(5), name="demo")
"""


def test_an_interrupt_while_a_stage_script_loads_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "stages").mkdir()
    shutil.copy(ROOT / "stages" / "_bootstrap.py", tmp_path / "stages")
    (tmp_path / "stages" / "demo.py").write_text(EARLY)
    done = subprocess.run([sys.executable, "stages/demo.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == ("error: demo interrupted; rerun `dvc repro` to restore or recompute its "
                                   "outputs")


def test_bootstrap_imported_by_anything_but_a_stage_script_leaves_interrupts_alone(tmp_path: Path) -> None:
    code = (f"import sys, signal; sys.path.insert(0, {str(ROOT / 'stages')!r}); import _bootstrap; "
            "print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_an_interrupt_swallowed_as_the_stage_finishes_is_not_delivered_after_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", STAGE, "finaliser-at-the-end"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_an_error_without_an_interrupt_keeps_its_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", STAGE, "bug"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "Traceback" in done.stderr and "TypeError: a real bug" in done.stderr


@pytest.mark.parametrize(("setting", "threads"), [(None, "1"), ("2", "2")])
def test_a_stage_runs_numpys_blas_on_one_thread_unless_told_otherwise(tmp_path: Path, setting, threads) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    env.update({} if setting is None else {"OPENBLAS_NUM_THREADS": setting})
    done = subprocess.run([sys.executable, "-c", STAGE, "blas"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0 and done.stdout.split() == [threads], done.stderr
