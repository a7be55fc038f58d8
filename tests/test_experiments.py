"""Experiments run the code they record; comparisons work on a fresh clone with no remote.

A queued experiment runs in a temporary copy of the repo while the venv's editable install points at
another checkout: the stage scripts must import `colorize` from the copy (stages/_bootstrap.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from workspace import clone_sharing_cache, commit, dvc, run, wait_for_queue

pytestmark = pytest.mark.slow

# A visible change to a library function: the per-colour table (in git) numbers its colours from 1000.
CODE_FILE = "src/colorize/evaluate/evaluation.py"
ORIGINAL, CHANGED = '"colour": i,', '"colour": i + 1000,'
SWEEP = ("-S", "train.lr=0.003", "-S", "train.epochs=1")
# The columns `dvc exp show` adds that a comparison does not need: the queue's bookkeeping and the
# hashes of changed deps (every path with a slash, and models). README "Working as a team" uses the same.
EXP_SHOW_DROP = "Created|State|Executor|step|models|.*/"


def run_with_columns(repo: Path, columns: int, *args: str) -> str:
    """`dvc <args>` as a terminal `columns` wide would show it."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        return dvc(repo, *args).stdout
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def exp_file(repo: Path, name: str, path: str) -> str:
    """A file as committed in experiment `name` (its ref under refs/exps)."""
    refs = run(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps").stdout.split()
    ref = next(r for r in refs if r.endswith("/" + name))
    return run(repo, "git", "show", f"{ref}:{path}").stdout


@pytest.fixture(scope="module")
def team(reproduced_project: Path, tmp_path_factory) -> Iterator[Path]:
    """A clone where two experiments were queued and run two at a time: one with a code change that was
    reverted in the workspace before the queue ran, one changing two params."""
    repo = clone_sharing_cache(reproduced_project, tmp_path_factory.mktemp("team") / "repo")
    code = repo / CODE_FILE
    source = code.read_text()
    assert ORIGINAL in source
    code.write_text(source.replace(ORIGINAL, CHANGED))
    dvc(repo, "exp", "run", "--queue", "-n", "changed-code")
    code.write_text(source)
    dvc(repo, "exp", "run", "--queue", "-n", "lr-and-epochs", *SWEEP)
    dvc(repo, "queue", "start", "-j", "2")
    status = wait_for_queue(repo)
    assert status.count("Success") == 2, status
    yield repo
    dvc(repo, "queue", "stop", check=False)  # the workers stop by themselves when idle; make sure


def test_queued_experiment_ran_its_own_code(team: Path) -> None:
    assert CHANGED in exp_file(team, "changed-code", CODE_FILE)
    assert json.loads(exp_file(team, "changed-code", "metrics/per_colour.json"))[0]["colour"] == 1000
    # The workspace, whose code was reverted, neither ran nor recorded the change.
    assert json.loads((team / "metrics/per_colour.json").read_text())[0]["colour"] == 0
    assert CHANGED not in (team / CODE_FILE).read_text()


def test_exp_show_of_a_two_param_sweep_fits_120_columns(team: Path) -> None:
    show = ("exp", "show", "--only-changed", "--drop", EXP_SHOW_DROP, "--no-pager")
    columns = dvc(team, *show, "--csv").stdout.splitlines()[0].split(",")
    changed = [c for c in columns if c not in ("Experiment", "rev", "typ")]
    # Which headline metrics the sweep moves depends on the training run (at this size accuracy may
    # round to the same 3 decimals); at least one must be shown next to both params.
    metrics = json.loads((team / "metrics/eval.json").read_text())
    assert {"train.lr", "train.epochs"} <= set(changed) and set(changed) & set(metrics), columns
    table = run_with_columns(team, 120, *show)
    assert "…" not in table and max(map(len, table.splitlines())) <= 120, table
    assert table.splitlines()[1].split() == ["Experiment", *changed], table


def test_comparisons_work_on_a_fresh_clone_without_a_remote(team: Path, tmp_path: Path) -> None:
    """Metrics, params, plots and experiments compare across commits from git alone (no cache, no remote)."""
    dvc(team, "exp", "apply", "lr-and-epochs")
    commit(team, "lr 0.003, 1 epoch")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(team), str(clone))
    assert not (clone / ".dvc" / "cache").exists() and not (clone / "models").exists()

    metrics = json.loads(dvc(clone, "metrics", "diff", "HEAD~1", "--json").stdout)
    changed = metrics["metrics/eval.json"]
    assert changed and all(value["old"] is not None and value["new"] is not None for value in changed.values())
    params = json.loads(dvc(clone, "params", "diff", "HEAD~1", "--json").stdout)
    assert params["params.yaml"]["train.lr"] == {"old": None, "new": 0.003}
    result = dvc(clone, "plots", "diff", "HEAD~1", "-o", str(tmp_path / "plots"))
    assert "failed" not in (result.stdout + result.stderr).lower()
    page = (tmp_path / "plots" / "index.html").read_text()
    assert page.count("<img") >= 2 * 4 and "vegaEmbed" in page
    shown = json.loads(dvc(clone, "exp", "show", "-A", "--json").stdout)
    assert len(shown) >= 2
