"""Stage resize: composite transparency onto the fill colour, pad each image to a square, resize."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.params import load_section
    from colorize.prep.resizing import resize_raw

    args = stage_args(__doc__, raw="data/raw", out="data/resized")
    params = load_section("resize", args.params)
    count = resize_raw(args.raw, args.out, params.image_size, params.fill, params.method,
                       crop=params.crop)
    print(f"resize: {count} images, {params.image_size}x{params.image_size}, fill {params.fill} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
