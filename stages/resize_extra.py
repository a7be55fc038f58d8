"""Stage resize_extra: the extra set resized exactly as the training set (the resize params and code)."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.params import load_section
    from colorize.prep.resizing import resize_extra

    args = stage_args(__doc__, raw="data/extra/raw", out="data/extra/resized")
    params = load_section("resize", args.params)
    source, count = resize_extra(args.raw, args.out, params.image_size, params.fill, params.method,
                                 crop=params.crop)
    what = "no extra source" if source is None else f"{count} images of {source}"
    print(f"resize_extra: {what}, {params.image_size}x{params.image_size} -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
