"""Make a stage run this checkout's own code: put <checkout>/src first on sys.path.

`make setup` installs the package in editable mode, pointing at one workspace's src/. `dvc exp run --temp`
and `--queue` run the stages in a copy of the repo, and two clones may share one venv: without this they
would import another checkout's `colorize` and record code that never ran. Every stage script imports this
module before anything from `colorize` (tests/test_dvc_yaml.py checks it).
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

if "colorize" in sys.modules and not str(Path(sys.modules["colorize"].__file__).resolve()).startswith(SRC):
    raise ImportError(f"colorize was imported from {sys.modules['colorize'].__file__} before {SRC} was put first")
if sys.path[:1] != [SRC]:
    sys.path.insert(0, SRC)
