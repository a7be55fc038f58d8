"""requirements.lock agrees with pyproject.toml's pins, and every locked package carries its hashes."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK_ENTRY = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def locked_entries(text: str) -> list[dict]:
    """Each `name==version [; marker]` entry of a uv/pip-tools lock, with the hashes listed under it."""
    entries: list[dict] = []
    for line in text.splitlines():
        match = LOCK_ENTRY.match(line)
        if match:
            entries.append({**match.groupdict(), "hashes": []})
        elif line.strip().startswith("--hash=sha256:") and entries:
            entries[-1]["hashes"].append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return entries


def pinned_requirements(pyproject: dict) -> list[Requirement]:
    project = pyproject["project"]
    listed = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        listed.extend(extra)
    return [Requirement(text) for text in listed]


LOCK = locked_entries((ROOT / "requirements.lock").read_text())
PINS = pinned_requirements(tomllib.loads((ROOT / "pyproject.toml").read_text()))


def test_the_lock_parses_into_every_package_with_its_hashes():
    assert len(LOCK) > 100, "requirements.lock lost its entries (or the parser stopped matching them)"
    unhashed = [entry["name"] for entry in LOCK if not entry["hashes"]]
    assert unhashed == []
    malformed = [
        entry["name"] for entry in LOCK for digest in entry["hashes"] if not re.fullmatch(r"[0-9a-f]{64}", digest)
    ]
    assert malformed == []


@pytest.mark.parametrize("requirement", PINS, ids=str)
def test_every_pin_in_pyproject_is_locked_at_the_same_version(requirement):
    (specifier,) = requirement.specifier
    assert specifier.operator == "==", f"{requirement}: pyproject pins exact versions only"
    name = canonicalize_name(requirement.name)
    locked = [entry for entry in LOCK if canonicalize_name(entry["name"]) == name]
    assert locked, f"{requirement.name} is pinned in pyproject.toml but missing from requirements.lock: run `make lock`"
    versions = {entry["version"] for entry in locked}
    assert versions == {specifier.version}, (
        f"{requirement.name}: pyproject {specifier.version}, lock {sorted(versions)}: run `make lock`"
    )


def test_the_lock_names_no_package_twice_for_one_platform():
    seen: dict[tuple[str, str], str] = {}
    for entry in LOCK:
        key = (canonicalize_name(entry["name"]), (entry["marker"] or "").strip())
        assert key not in seen, f"{entry['name']} locked twice ({seen[key]}, {entry['version']})"
        seen[key] = entry["version"]


def test_the_entry_parser_reads_markers_and_hashes():
    sample = (
        "tensorflow-cpu==2.21.0 ; platform_machine == 'x86_64' \\\n"
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via colorize\n"
        "tqdm==4.70.1 \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n"
    )
    assert locked_entries(sample) == [
        {
            "name": "tensorflow-cpu",
            "version": "2.21.0",
            "marker": "platform_machine == 'x86_64'",
            "hashes": ["a" * 64, "b" * 64],
        },
        {"name": "tqdm", "version": "4.70.1", "marker": None, "hashes": ["c" * 64]},
    ]
