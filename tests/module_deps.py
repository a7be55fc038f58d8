"""The project modules a stage script imports, directly or through other project modules (static, via ast).

Shared by the dvc.yaml consistency test; run as a script it prints each stage's deps for dvc.yaml.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "colorize"


def imported_project_modules(path: Path) -> set[str]:
    """Names of colorize modules imported anywhere in a file (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("colorize"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists())
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "colorize" and len(parts) > 1:
                    found.add(parts[1])
    return found


def stage_modules(script: Path) -> list[str]:
    """Every project module the script needs, as repo-relative paths, sorted."""
    todo, seen = list(imported_project_modules(script)), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        module = PACKAGE / f"{name}.py"
        if module.exists():
            todo.extend(imported_project_modules(module))
    return sorted(f"src/colorize/{name}.py" for name in seen if (PACKAGE / f"{name}.py").exists())


if __name__ == "__main__":
    scripts = sorted(p for p in (ROOT / "stages").glob("*.py") if not p.name.startswith("_"))
    for script in scripts if len(sys.argv) < 2 else map(Path, sys.argv[1:]):
        print(script.stem)
        for dep in [f"stages/{script.name}", "stages/_bootstrap.py", *stage_modules(script)]:
            print(f"      - {dep}")
