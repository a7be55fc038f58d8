"""One home for the errors users see: every exception class of the package is defined in core/errors.py,
and each is a UserError (a stage prints it in one line), but the two that never leave their module."""

from __future__ import annotations

import ast
import inspect

from colorize.core import errors
from module_deps import PACKAGE

# Caught where raised and turned into something else: a skip reason (ImageRejected), a retry (_Transient).
INTERNAL = {"ImageRejected", "_Transient"}


def exception_classes_outside_errors() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "core" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            bases = [getattr(base, "id", getattr(base, "attr", "")) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any(b.endswith(("Error", "Exception")) or b in dir(errors)
                                                      for b in bases):
                found.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    return found


def test_every_exception_class_lives_in_core_errors() -> None:
    assert sorted(name.split(":")[1] for name in exception_classes_outside_errors()) == sorted(INTERNAL)


def test_every_error_there_is_a_user_error() -> None:
    classes = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__]
    assert len(classes) >= 15
    assert all(issubclass(cls, errors.UserError) for cls in classes)


def test_fetch_errors_are_one_line() -> None:
    assert str(errors.SourceError("a\n  b")) == "a b"
