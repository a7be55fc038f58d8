"""Stage fetch: ingest fetch.source into data/raw (tar shards + manifest.json) and write metrics/fetch.json."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.params import load_section
    from colorize.fetch.ingest import run_fetch, summary_line

    args = stage_args(__doc__, out="data/raw", metrics="metrics/fetch.json")
    params = load_section("fetch", args.params)
    counts = run_fetch(params, args.out, args.metrics, progress=True)
    print(summary_line(counts, params.source, args.out))


if __name__ == "__main__":
    run_stage(main)
