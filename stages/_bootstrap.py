"""Make a stage run this checkout's own code: put <checkout>/src first on sys.path.

`make setup` installs the package in editable mode, pointing at one workspace's src/. `dvc exp run --temp`
and `--queue` run the stages in a copy of the repo, and two clones may share one venv: without this they
would import another checkout's `colorize` and record code that never ran. Every stage script imports this
module before anything from `colorize` (tests/test_dvc_yaml.py checks it).
"""

import os
import signal
import sys
from pathlib import Path

# Run as a stage script (not imported by a test): hold Ctrl-C and SIGTERM until `run_stage` has its handlers,
# which lets them through; one that comes while the modules load still ends in the stage's one line.
_main_file = getattr(sys.modules["__main__"], "__file__", None)
if _main_file and os.path.dirname(os.path.realpath(_main_file)) == os.path.dirname(os.path.realpath(__file__)):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

SRC = str(Path(__file__).resolve().parents[1] / "src")

if "colorize" in sys.modules and not str(Path(sys.modules["colorize"].__file__).resolve()).startswith(SRC):
    raise ImportError(f"colorize was imported from {sys.modules['colorize'].__file__} before {SRC} was put first")
if sys.path[:1] != [SRC]:
    sys.path.insert(0, SRC)
