"""dvc.yaml agrees with the code: every stage lists its script, the package folder of each project module it
imports (directly or through other project modules), and exactly the params its script reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from module_deps import ROOT, module_file, stage_folders, stage_modules

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = PIPELINE["stages"]
BOOTSTRAP = "stages/_bootstrap.py"
ORDER = ["fetch", "split", "resize", "grayscale", "palette", "encode", "train", "evaluate"]
CHECKS = ["validate"]  # cross-checks between sections, first in the DAG (colorize.prep.crosscheck)
EXTRA = ["fetch_extra", "resize_extra"]  # the generalisation set, a branch that joins at evaluate
SCRIPTS = [*CHECKS, *ORDER[:-1], *EXTRA, ORDER[-1]]  # dvc.yaml's order


def sections_read(script: Path) -> set[str]:
    """The params sections a script loads with load_section("<name>", ...)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_section"
        and node.args and isinstance(node.args[0], ast.Constant)
    }


def test_every_stage_exists_with_one_script_each() -> None:
    assert list(STAGES) == SCRIPTS
    for name, stage in STAGES.items():
        assert stage["cmd"] == f"python stages/{name}.py"
        assert (ROOT / "stages" / f"{name}.py").is_file()


@pytest.mark.parametrize("name", SCRIPTS)
def test_deps_list_script_and_the_folder_of_every_imported_module(name: str) -> None:
    deps = STAGES[name]["deps"]
    code_deps = [dep for dep in deps if dep.endswith(".py") or dep.startswith("src/")]
    assert sorted(code_deps) == sorted([f"stages/{name}.py", BOOTSTRAP,
                                        *stage_folders(ROOT / "stages" / f"{name}.py")])


def test_grayscale_does_not_depend_on_the_palette_code() -> None:
    """K-means changes must not rerun grayscale (they did while one module held both)."""
    assert "src/colorize/quantize" not in STAGES["grayscale"]["deps"]
    assert not any(m.startswith("quantize.") for m in stage_modules(ROOT / "stages" / "grayscale.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports_its_checkouts_code_first(name: str) -> None:
    """The bootstrap comes before any colorize import, so experiments run the code they record."""
    tree = ast.parse((ROOT / "stages" / f"{name}.py").read_text(encoding="utf-8"))
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and getattr(node, "module", None) != "__future__"]
    assert isinstance(imports[0], ast.Import) and imports[0].names[0].name == "_bootstrap"


@pytest.mark.parametrize("name", ORDER)
def test_params_are_exactly_the_section_the_script_reads(name: str) -> None:
    assert STAGES[name]["params"] == [name]
    assert sections_read(ROOT / "stages" / f"{name}.py") == {name}


def test_the_extra_stages_read_their_section_and_the_named_fetch_guards() -> None:
    from colorize.fetch.extra import GUARDS

    assert STAGES["fetch_extra"]["params"] == ["extra", *GUARDS]
    assert sections_read(ROOT / "stages" / "fetch_extra.py") == {"extra"}
    assert "load_keys(GUARDS" in (ROOT / "stages" / "fetch_extra.py").read_text()
    assert STAGES["resize_extra"]["params"] == ["resize"]  # resized exactly as the training set
    assert sections_read(ROOT / "stages" / "resize_extra.py") == {"resize"}


def test_the_extra_set_is_a_data_edge_and_evaluate_imports_no_fetch_code() -> None:
    assert STAGES["fetch_extra"]["outs"] == ["data/extra/raw"]
    assert "data/extra/raw" in STAGES["resize_extra"]["deps"]
    assert STAGES["resize_extra"]["outs"] == ["data/extra/resized"]
    assert "data/extra/resized" in STAGES["evaluate"]["deps"]
    assert "src/colorize/fetch" not in STAGES["evaluate"]["deps"]
    assert not any(m.startswith("fetch.") for m in stage_modules(ROOT / "stages" / "evaluate.py"))


def test_validate_reads_exactly_its_declared_cross_checked_keys_and_runs_first() -> None:
    from colorize.prep.crosscheck import CROSS_CHECKED

    assert STAGES["validate"]["params"] == list(CROSS_CHECKED)
    assert sections_read(ROOT / "stages" / "validate.py") == set()
    assert STAGES["validate"]["outs"][0] in STAGES["fetch"]["deps"]
    assert ".tmp" in STAGES["validate"]["deps"]  # leftovers of a killed run make it rerun and sweep


def test_params_file_is_plain_yaml() -> None:
    assert "${" not in (ROOT / "params.yaml").read_text()


def test_no_data_stage_imports_keras() -> None:
    """Importing Keras costs seconds and ~600 MB: only train and evaluate may pay it."""
    for name in [*ORDER[:6], *EXTRA]:
        modules = [ROOT / "stages" / f"{name}.py", *map(module_file, stage_modules(ROOT / "stages" / f"{name}.py"))]
        for module in modules:
            text = module.read_text(encoding="utf-8")
            assert "import keras" not in text and "import tensorflow" not in text, (name, module.name)


def declared(kind: str) -> dict[str, dict]:
    """Every path a stage declares under `kind` (outs, metrics or plots) with its flags ({} if none)."""
    found: dict[str, dict] = {}
    for stage in STAGES.values():
        for entry in stage.get(kind, []):
            found.update(entry if isinstance(entry, dict) else {entry: {}})
    return {path: flags or {} for path, flags in found.items()}


def test_headline_metrics_and_plots_are_declared() -> None:
    assert set(declared("metrics")) == {"metrics/fetch.json", "metrics/train/metrics.json", "metrics/eval.json"}
    assert "metrics/eval_details.json" in declared("outs")
    assert set(declared("plots")) == {"metrics/palette.png", "metrics/figure2", "metrics/train/plots",
                                      "metrics/per_colour.json", "metrics/samples"}
    assert "plots" not in PIPELINE  # top-level plots would draw the stage-level ones twice


def test_small_outputs_live_in_git_and_big_ones_in_the_cache() -> None:
    """Metrics and plots are committed with dvc.lock (comparisons need no remote); every plain output is
    cached: DVC saves no run cache for a stage with an uncached plain output."""
    for path, flags in {**declared("metrics"), **declared("plots")}.items():
        assert flags.get("cache") is False, path
    assert all(flags.get("cache", True) for flags in declared("outs").values())


def test_no_param_is_named_like_file_metadata() -> None:
    """DVC's run cache drops keys named `size` or `nfiles` from its stage hash (dvc#10296): a param
    with that name could be changed and DVC would check out the outputs of the old value."""
    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert not {"size", "nfiles"} & set(keys(params))
