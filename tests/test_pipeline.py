"""Integration: the real `dvc repro` on tiny params in a temporary git repo.

Checks every output and metric key, which stages go stale after each param change, byte-identical data
artifacts and weights on a forced rerun, one-line errors for bad params, and `dvc exp run`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from workspace import commit, copy_workspace, dvc, run, write_params

DATA_STAGES = ["fetch", "split", "resize", "grayscale", "palette", "encode"]
EXTRA_STAGES = ["fetch_extra", "resize_extra"]
ALL_STAGES = ["validate", *DATA_STAGES, "train", *EXTRA_STAGES, "evaluate"]

TINY = {
    "fetch": {"builtin": {"count": 40}},
    "resize": {"image_size": 16},
    "palette": {"k": 8, "sample_pixels": 4000},
    "encode": {"figure_images": 2},
    "train": {"epochs": 2, "min_steps": 0, "batch_size": 8, "unet_filters": 4, "unet_depth": 2, "patience": 1},
    "evaluate": {"samples": 2, "transfer_pixels": 500},
    "extra": {"images": 10},
}

pytestmark = pytest.mark.slow


def stale_stages(repo: Path) -> set[str]:
    """Stages whose own deps or params changed (what `dvc status` reports)."""
    status = json.loads(dvc(repo, "status", "--json").stdout or "{}")
    return {name.split(":")[-1] for name in status}


def repro_runs(repo: Path) -> set[str]:
    """Run `dvc repro`; the stages it really ran (not those restored from the run cache or unchanged)."""
    out = dvc(repo, "repro").stdout
    return set(re.findall(r"Running stage '([\w-]+)'", out))


def lock_hashes(repo: Path, stages: list[str]) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for name in stages for out in lock[name]["outs"]}


@pytest.fixture(scope="module")
def repo(reproduced_project: Path, tmp_path_factory) -> Path:
    """A copy of the project with tiny params after one full `dvc repro` (conftest checks that it ran every
    stage), committed."""
    return copy_workspace(reproduced_project, tmp_path_factory.mktemp("pipeline") / "repo")


def restore_committed(repo: Path) -> None:
    """Back to the committed params, lock and outputs without running anything."""
    run(repo, "git", "checkout", "-q", "--", ".")
    run(repo, "git", "clean", "-qfd", "--", "metrics")
    dvc(repo, "checkout", "-q", "-f")


def test_repro_writes_every_output(repo: Path) -> None:
    for path in ("data/raw/manifest.json", "data/split.json", "data/resized/index.json", "data/gray/index.json",
                 "data/palette/palette.json", "data/labels/index.json", "models/model.keras",
                 "models/bundle.json", "models/palette.json", "data/extra/raw/manifest.json",
                 "data/extra/resized/index.json", "metrics/fetch.json", "metrics/eval.json",
                 "metrics/eval_details.json", "metrics/per_colour.json", "metrics/train/metrics.json",
                 "metrics/palette.png",
                 "metrics/figure2/figure2-0.png", "metrics/samples/sample-0.png", "metrics/samples/sample-1.png"):
        assert (repo / path).is_file(), path
    headline = json.loads((repo / "metrics/eval.json").read_text())
    assert set(headline) >= {"acc", "psnr", "ssim", "de00", "cf", "gap", "xgap"} and len(headline) <= 12
    assert set(json.loads((repo / "metrics/train/metrics.json").read_text())) == {"step"}
    evaluation = json.loads((repo / "metrics/eval_details.json").read_text())
    assert headline["acc"] == round(evaluation["model"]["accuracy"], 3)
    for key in ("accuracy", "top5_accuracy", "psnr", "ssim", "ciede2000", "colourfulness", "oracle_gap_closed"):
        assert key in evaluation["model"], key
    assert set(evaluation["baselines"]) >= {"gray", "gray_lookup", "example_transfer", "oracle",
                                            "oracle_keep_luminance"}
    split = json.loads((repo / "data/split.json").read_text())
    assert evaluation["test_images"] == len(split["test"]) == 12
    assert evaluation["extra"]["source"] == "builtin:blob" and evaluation["extra"]["images"] == 10


def test_dvc_reports_work(repo: Path) -> None:
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    assert '"gap"' in shown and "accepted" in shown and "top5_accuracy" not in shown
    dvc(repo, "plots", "show", "-o", str(repo / "plots_html"))
    assert (repo / "plots_html" / "index.html").is_file()
    dag = dvc(repo, "dag").stdout
    assert all(stage in dag for stage in ALL_STAGES)


def test_noop_repro_reruns_nothing(repo: Path) -> None:
    assert stale_stages(repo) == set()
    assert repro_runs(repo) == set()


# One change also goes back through DVC's run cache (every output restored, nothing run); the others
# restore the committed state with git and `dvc checkout`, which is much faster.
@pytest.mark.parametrize(("change", "first", "reruns"), [
    ({"train": {"epochs": 3}}, "train", {"train", "evaluate"}),
    ({"evaluate": {"decode": "argmax"}}, "evaluate", {"evaluate"}),
    ({"palette": {"k": 6}}, "palette", {"palette", "encode", "train", "evaluate"}),  # + the run cache
    # The figures change but the labels are byte-identical, so DVC stops after encode.
    ({"encode": {"figure_images": 1}}, "encode", {"encode"}),
    ({"split": {"seed": 3}}, "split", {"split", "palette", "encode", "train", "evaluate"}),
    ({"grayscale": {"weights": [0.21, 0.72, 0.007]}}, "grayscale", {"grayscale", "encode", "train", "evaluate"}),
    # validate cross-checks resize.image_size too; its output does not change, so fetch does not rerun.
    ({"resize": {"image_size": 8}}, {"validate", "resize", "resize_extra"},
     {"validate", "resize", "grayscale", "palette", "encode", "train", "resize_extra", "evaluate"}),
    ({"fetch": {"builtin": {"count": 41}}}, "fetch", set(ALL_STAGES) - {"validate", *EXTRA_STAGES}),
    ({"extra": {"seed": 2}}, "fetch_extra", {*EXTRA_STAGES, "evaluate"}),
    # A shared guard reruns both fetches; neither set changes, so nothing after them runs.
    ({"fetch": {"min_side": 9}}, {"fetch", "fetch_extra"}, {"fetch", "fetch_extra"}),
])
def test_param_change_reruns_exactly_downstream(repo: Path, change: dict, first: str | set[str],
                                                reruns: set[str]) -> None:
    via_run_cache = first == "palette"
    try:
        write_params(repo, TINY, change)
        assert stale_stages(repo) == ({first} if isinstance(first, str) else first)
        assert repro_runs(repo) == reruns
    finally:
        if via_run_cache:
            write_params(repo, TINY)
        else:
            restore_committed(repo)
    if via_run_cache:  # back to the committed params: every output comes back from the run cache
        assert repro_runs(repo) == set()
    assert stale_stages(repo) == set()


def test_extra_source_off_drops_the_generalisation_scores(repo: Path) -> None:
    """`dvc exp run -S extra.source=null`: both extra stages still run (cheaply), evaluate reports no extra."""
    try:
        out = dvc(repo, "exp", "run", "-S", "extra.source=null").stdout
        assert set(re.findall(r"Running stage '([\w-]+)'", out)) == {*EXTRA_STAGES, "evaluate"}
        assert yaml.safe_load((repo / "params.yaml").read_text())["extra"]["source"] is None
        assert "extra" not in json.loads((repo / "metrics/eval_details.json").read_text())
        assert "xgap" not in json.loads((repo / "metrics/eval.json").read_text())
        assert json.loads((repo / "data/extra/resized/index.json").read_text())["ids"] == []
    finally:
        write_params(repo, TINY)
    assert repro_runs(repo) == set()


def test_forced_rerun_is_byte_identical(repo: Path) -> None:
    before = lock_hashes(repo, [*DATA_STAGES, "train", *EXTRA_STAGES])
    weights = json.loads((repo / "models/bundle.json").read_text())["weights_sha256"]
    dvc(repo, "repro", "-f", "-s", *DATA_STAGES, "train", *EXTRA_STAGES)
    after = lock_hashes(repo, [*DATA_STAGES, "train", *EXTRA_STAGES])
    # models/ too: model.keras is written deterministically (only DVCLive's files carry timestamps)
    data_outs = [path for path in before if not path.startswith("metrics/train")]
    assert {p: after[p] for p in data_outs} == {p: before[p] for p in data_outs}
    assert json.loads((repo / "models/bundle.json").read_text())["weights_sha256"] == weights


def test_invalid_param_fails_in_one_line(repo: Path) -> None:
    try:
        write_params(repo, TINY, {"palette": {"k": 1}})
        result = dvc(repo, "repro", "palette", check=False)
    finally:
        write_params(repo, TINY)
    assert result.returncode != 0
    assert "palette.k" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_experiment_with_the_seed_architecture(repo: Path) -> None:
    """`dvc exp run -S` trains the origin's model at a reduced size and `dvc exp show` lists it."""
    commit(repo, "tiny pipeline, reproduced")
    dvc(repo, "exp", "run", "-n", "seed-arch", "-S", "train.arch=seed", "-S", "train.optimizer=adadelta")
    shown = dvc(repo, "exp", "show", "--json").stdout
    assert "seed-arch" in shown
    # The workspace now holds the experiment: a seed model whose test metrics differ from the committed U-Net's.
    assert json.loads((repo / "models/bundle.json").read_text())["arch"] == "seed"
    params = json.loads(dvc(repo, "params", "diff", "--json").stdout)["params.yaml"]
    assert params["train.arch"] == {"old": "unet", "new": "seed"}, params
    diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
    assert any(change.get("old") != change.get("new") for change in diff["metrics/eval.json"].values()), diff
