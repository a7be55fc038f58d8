"""Stage grayscale: gray = w . (R, G, B) / 255 as float32 in [0, 1]."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.params import load_section
    from colorize.prep.preprocess import gray_from_resized

    args = stage_args(__doc__, resized="data/resized", out="data/gray")
    params = load_section("grayscale", args.params)
    count = gray_from_resized(args.resized, args.out, params.weights)
    print(f"grayscale: {count} images, weights {params.weights} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
