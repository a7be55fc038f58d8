"""The `dvc plots diff` report renders offline: the project's template carries vega, vega-lite and
vega-embed (report/offline.html), so every chart draws and every image decodes with the network blocked,
and two revisions of a sample strip fit side by side in a 1400 px window."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import WINDOW, rendered
from workspace import clone_sharing_cache, commit, dvc, write_params

pytestmark = pytest.mark.slow

# loss and accuracy on train and validation, the validation PSNR that train.monitor (val_psnr) follows,
# recall per palette colour (dvc.yaml plots)
CHARTS = 6


@pytest.fixture(scope="module")
def two_revisions(reproduced_project: Path, tmp_path_factory) -> Path:
    """A clone with one more commit that changes the evaluation (so the recall bars and samples differ)."""
    from test_pipeline import TINY

    repo = clone_sharing_cache(reproduced_project, tmp_path_factory.mktemp("report") / "repo")
    write_params(repo, TINY, {"evaluate": {"decode": "argmax"}})
    dvc(repo, "repro")
    commit(repo, "argmax decoding")
    return repo


def plots_diff(repo: Path, out: Path, *args: str) -> Path:
    dvc(repo, "plots", "diff", "HEAD~1", "-o", str(out), *args)
    return out / "index.html"


def test_plots_diff_renders_offline_with_the_projects_template(two_revisions: Path, tmp_path: Path) -> None:
    page = plots_diff(two_revisions, tmp_path / "offline")
    assert "<script src=" not in page.read_text()  # nothing to fetch: the bundles are inline
    state = rendered(page)
    assert state["vega"] and len(state["charts"]) == CHARTS, state
    assert all(chart["inked"] > 0 for chart in state["charts"]), state["charts"]
    # palette swatch, 2 Figure 2 strips and 2 sample strips, each at both revisions
    assert len(state["images"]) == 2 * (1 + 2 + 2), state["images"]
    assert all(image["width"] > 0 for image in state["images"]), state["images"]
    samples = [image for image in state["images"] if "sample" in image["src"]]
    assert samples and all(image["right"] <= WINDOW[0] for image in samples), samples


def test_dvcs_default_template_draws_no_chart_offline(two_revisions: Path, tmp_path: Path) -> None:
    """The control: DVC's own page fetches the scripts from a CDN, which the blocked network refuses."""
    default_template = tmp_path / "default.html"
    default_template.write_text("<html><head>{scripts}</head><body>{plot_divs}</body></html>")
    state = rendered(plots_diff(two_revisions, tmp_path / "online", "--html-template", str(default_template)))
    assert not state["vega"] and state["charts"] and all(chart["inked"] == 0 for chart in state["charts"])
    assert all(image["width"] > 0 for image in state["images"])
