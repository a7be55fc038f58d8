"""Stage fetch_extra: fetch extra.source (the generalisation set) into data/extra/raw with fetch's guards;
an empty raw store when extra.source is null."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.params import load_keys, load_section
    from colorize.fetch.extra import GUARDS, fetch_extra
    from colorize.fetch.ingest import summary_line

    args = stage_args(__doc__, out="data/extra/raw")
    extra = load_section("extra", args.params)
    guards = load_keys(GUARDS, args.params)
    counts = fetch_extra(extra, guards, args.out)
    if counts is None:
        print(f"fetch_extra: extra.source is null: an empty extra set in {args.out}")
    else:
        print(summary_line(counts, extra.source, args.out).replace("fetch:", "fetch_extra:", 1))


if __name__ == "__main__":
    run_stage(main)
