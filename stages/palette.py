"""Stage palette: K-means finds K colours on training pixels only; writes the palette and a swatch."""

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from colorize.core.stage import run_stage, stage_args


def main() -> None:
    import numpy as np

    from colorize.core.artifacts import atomic_dir, json_bytes, npy_bytes
    from colorize.core.dataset import load_split, part_rows
    from colorize.core.figures import save_png, swatch
    from colorize.core.params import load_section
    from colorize.core.streaming import sample_pixels_streamed
    from colorize.quantize.palette import fit_palette, palette_to_dict

    args = stage_args(__doc__, resized="data/resized", split="data/split.json", out="data/palette",
                      swatch="metrics/palette.png")
    params = load_section("palette", args.params)
    train_ids = load_split(args.split)["train"]
    # The same seeded draw as sample_pixels, reading only the training images that hold a drawn pixel.
    pixels = sample_pixels_streamed(part_rows(args.resized, train_ids), params.sample_pixels, params.seed)
    palette = fit_palette(pixels, params.k, params.space, params.seed)
    with atomic_dir(args.out) as tmp:
        data = palette_to_dict(palette, params.space, fitted_on_images=len(train_ids),
                               fitted_on_pixels=int(len(pixels)))
        (tmp / "palette.json").write_bytes(json_bytes(data))
        (tmp / "palette.npy").write_bytes(npy_bytes(np.asarray(palette)))
    save_png(args.swatch, swatch(palette))
    print(f"palette: {len(palette)} colours in {params.space} from {len(pixels)} pixels of "
          f"{len(train_ids)} training images -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
