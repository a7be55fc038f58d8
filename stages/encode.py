"""Stage encode: every pixel becomes the index of its nearest palette colour; draws the origin's Figure 2."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    from colorize.core.artifacts import atomic_dir, read_json
    from colorize.core.colour import gray_to_rgb_uint8
    from colorize.core.dataset import load_part, load_split
    from colorize.core.figures import save_png, strip
    from colorize.core.params import load_section
    from colorize.quantize.encode import encode_resized
    from colorize.quantize.palette import palette_from_dict

    args = stage_args(__doc__, resized="data/resized", gray="data/gray", palette="data/palette",
                      split="data/split.json", out="data/labels", figures="metrics/figure2")
    params = load_section("encode", args.params)
    palette, space = palette_from_dict(read_json(args.palette / "palette.json"))
    count = encode_resized(args.resized, args.out, palette, space)
    # Fixed images (the first training ids) so the figure lines up across commits.
    figure_ids = load_split(args.split)["train"][: params.figure_images]
    originals, grays, labels = (load_part(folder, figure_ids) for folder in (args.resized, args.gray, args.out))
    with atomic_dir(args.figures) as tmp:
        for i, image_id in enumerate(figure_ids):
            panels = [gray_to_rgb_uint8(grays[i]), originals[i], palette[labels[i]]]
            save_png(tmp / f"figure2-{i}.png", strip(panels, ["gray", "original", f"{len(palette)} colours"]))
    print(f"encode: {count} label maps -> {args.out}; {len(figure_ids)} figures -> {args.figures}")


if __name__ == "__main__":
    run_stage(main)
