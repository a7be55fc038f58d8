"""Stage validate: cross-checks between params sections before any stage runs; sweeps dead runs' temporaries.

It depends on `.tmp` (the scratch place): a run killed in any stage leaves work there, which makes this
stage stale, so the next `dvc repro` runs it and the sweep at its start removes the leftovers, even when
DVC then restores the killed stage from its run cache without running it.
"""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.artifacts import write_json_atomic
    from colorize.prep.crosscheck import cross_check, read_cross_checked

    args = stage_args(__doc__, out="data/validated.json")
    checked = cross_check(read_cross_checked(args.params))
    # Constant content: a passing check never makes fetch (which depends on this file) rerun.
    write_json_atomic(args.out, {"validated": True})
    print(f"validate: {len(checked)} cross-checks passed")


if __name__ == "__main__":
    run_stage(main)
