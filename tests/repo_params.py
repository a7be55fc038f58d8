"""The repo's params.yaml as the dataclasses the stages get; a test changes what it needs with
`dataclasses.replace`, so no test keeps its own copy of a default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from colorize.core.params import load_section

ROOT = Path(__file__).resolve().parents[1]
PARAMS_FILE = ROOT / "params.yaml"


def repo_params(section: str, **changes: Any) -> Any:
    """Section `section` of the repo's params.yaml, with `changes` set as given (not validated again)."""
    return replace(load_section(section, PARAMS_FILE), **changes)
