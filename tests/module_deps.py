"""The project modules a stage script imports, directly or through other project modules (static, via ast).

Shared by the dvc.yaml consistency test; run as a script it prints each stage's code deps for dvc.yaml:
the package folders (src/colorize/<folder>) of those modules, since dvc.yaml depends on whole folders.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "colorize"


def module_file(name: str) -> Path:
    """src/colorize/<a>/<b>.py for the dotted name "a.b" (below colorize)."""
    return PACKAGE.joinpath(*name.split(".")).with_suffix(".py")


def imported_project_modules(path: Path) -> set[str]:
    """Dotted names (below colorize) of project modules imported anywhere in a file, functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "colorize":
            base = node.module.split(".")[1:]
            if base and module_file(".".join(base)).exists():
                found.add(".".join(base))
            for alias in node.names:  # `from colorize.core import artifacts` imports a module
                name = ".".join([*base, alias.name])
                if module_file(name).exists():
                    found.add(name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "colorize" and len(parts) > 1:
                    found.add(".".join(parts[1:]))
    return found


def stage_modules(script: Path) -> set[str]:
    """Every project module the script needs, directly or through other project modules."""
    todo, seen = list(imported_project_modules(script)), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if module_file(name).exists():
            todo.extend(imported_project_modules(module_file(name)))
    return {name for name in seen if module_file(name).exists()}


def stage_folders(script: Path) -> list[str]:
    """The package folders of those modules, as repo-relative paths, sorted: a stage's code deps."""
    return sorted({f"src/colorize/{name.split('.')[0]}" for name in stage_modules(script)})


if __name__ == "__main__":
    scripts = sorted(p for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_"))
    for script in scripts if len(sys.argv) < 2 else map(Path, sys.argv[1:]):
        print(f"{script.stem}: [stages/{script.name}, stages/_bootstrap.py, {', '.join(stage_folders(script))}]")
