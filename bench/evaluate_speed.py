"""The evaluate stage of this checkout vs another revision's, side by side on the same reproduced data:
wall time and peak RSS of each (alternating runs, medians), and whether every output is byte-identical.

    python bench/evaluate_speed.py --baseline d81a3c1            # in a checkout after `dvc repro`
    python bench/evaluate_speed.py --baseline main --runs 3

The baseline's `stages/` and `src/` are taken with `git archive` into a scratch folder; its stage script
puts its own `src/` first (stages/_bootstrap.py), so both run in this venv on this workspace's data and
write their outputs into scratch folders, never into the workspace.
"""

from __future__ import annotations

import argparse
import filecmp
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from stages import timed  # noqa: E402

OUTPUTS = {"metrics": "eval.json", "details": "eval_details.json", "per-colour": "per_colour.json",
           "samples": "samples"}


def same_outputs(a: Path, b: Path) -> bool:
    files = [name for name in OUTPUTS.values() if name != "samples"]
    samples = sorted(p.name for p in (a / "samples").iterdir())
    return (samples == sorted(p.name for p in (b / "samples").iterdir())
            and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)
            and all(filecmp.cmp(a / "samples" / s, b / "samples" / s, shallow=False) for s in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a git revision of this repo")
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        baseline = scratch / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "stages", "src"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        scripts = {"baseline": baseline / "stages" / "evaluate.py", "this": ROOT / "stages" / "evaluate.py"}
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in scripts}
        for run in range(args.runs):
            for name, script in scripts.items():
                out = scratch / f"{name}-{run}"
                out.mkdir()
                command = [sys.executable, str(script),
                           *(arg for option, file in OUTPUTS.items() for arg in (f"--{option}", str(out / file)))]
                figures[name].append(timed(command, ROOT))
                seconds, rss = figures[name][-1]
                print(f"{name:8s} run {run + 1}: {seconds:6.1f} s, peak RSS {rss:6.0f} MiB", flush=True)
        identical = all(same_outputs(scratch / f"baseline-{run}", scratch / f"this-{run}") for run in range(args.runs))
    median = {name: statistics.median(s for s, _ in runs) for name, runs in figures.items()}
    print(f"evaluate: {args.baseline} {median['baseline']:.1f} s, this checkout {median['this']:.1f} s "
          f"(median of {args.runs}): {median['baseline'] / median['this']:.2f}x; peak RSS "
          f"{max(r for _, r in figures['baseline']):.0f} vs {max(r for _, r in figures['this']):.0f} MiB; "
          f"outputs {'byte-identical' if identical else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
