"""Stage split: a seeded train / validation / test split of the fetched image ids."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.artifacts import write_json_atomic
    from colorize.core.params import load_section
    from colorize.core.rawstore import read_manifest
    from colorize.prep.splitting import split_ids

    args = stage_args(__doc__, raw="data/raw", out="data/split.json")
    params = load_section("split", args.params)
    ids = [entry["id"] for entry in read_manifest(args.raw)["accepted"]]
    split = split_ids(ids, params.test_size, params.val_size, params.seed)
    write_json_atomic(args.out, split)
    print("split: " + ", ".join(f"{part} {len(split[part])}" for part in ("train", "val", "test")))


if __name__ == "__main__":
    run_stage(main)
