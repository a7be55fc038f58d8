"""Stage evaluate: the model and the baselines on the test split, same images, same metrics."""

from __future__ import annotations

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from typing import TYPE_CHECKING

from colorize.core.stage import run_stage, stage_args

if TYPE_CHECKING:
    from pathlib import Path

# 6 panels x 96 px = 576 px a strip: `dvc plots diff` of two revisions fits a 1400 px window.
SAMPLE_CELL = 96


def write_samples(folder: Path, images: dict) -> None:
    """gray | original | each baseline | model for the first test ids: stable names sample-<i>.png."""
    from colorize.core.artifacts import atomic_dir
    from colorize.core.colour import gray_to_rgb_uint8
    from colorize.core.figures import save_png, strip
    from colorize.evaluate.evaluation import SAMPLE_METHODS

    with atomic_dir(folder) as tmp:
        for i in range(len(images.get("gray", ()))):
            panels = [gray_to_rgb_uint8(images["gray"][i]), images["original"][i],
                      *(images[name][i] for name in SAMPLE_METHODS)]
            titles = ["gray", "original", "lookup", "transfer", "oracle", "model"]
            save_png(tmp / f"sample-{i}.png", strip(panels, titles, cell=SAMPLE_CELL))


def main() -> None:
    from colorize.core.artifacts import write_json_atomic
    from colorize.core.dataset import load_split, part_rows
    from colorize.core.params import load_section
    from colorize.evaluate.evaluation import BatchPredictions, Images, model_probabilities, score_all
    from colorize.evaluate.generalisation import score_extra
    from colorize.evaluate.headline import headline
    from colorize.model.bundle import load_bundle

    args = stage_args(__doc__, model="models", resized="data/resized", gray="data/gray", labels="data/labels",
                      split="data/split.json", extra="data/extra/resized", metrics="metrics/eval.json",
                      details="metrics/eval_details.json", per_colour="metrics/per_colour.json",
                      samples="metrics/samples")
    params = load_section("evaluate", args.params)
    bundle = load_bundle(args.model)
    split = load_split(args.split)
    # Both splits are read from their shards, a batch at a time; the model runs on one batch of
    # test images at a time (score_all), so memory does not grow with the number of images.
    test, train = (Images(split[part], *(part_rows(folder, split[part])
                                         for folder in (args.resized, args.gray, args.labels)))
                   for part in ("test", "train"))
    probs = BatchPredictions(lambda gray: model_probabilities(bundle.model, gray, params), test.gray)
    metrics, per_colour, images = score_all(probs, test, train, bundle.palette, params, bundle.gray_weights,
                                            fill=bundle.fill, samples=params.samples)
    extra = score_extra(args.extra, bundle, train, params)
    metrics["model_tta"] = params.tta
    metrics["model_regions"] = {"tolerance": params.region_tolerance, "min_pixels": params.region_min_pixels}
    if extra is not None:
        metrics["extra"] = extra
    write_json_atomic(args.details, metrics)
    write_json_atomic(args.metrics, headline(metrics))
    write_json_atomic(args.per_colour, per_colour)
    write_samples(args.samples, images)
    model, gray = metrics["model"], metrics["baselines"]["gray"]
    gap = "n/a" if model["oracle_gap_closed"] is None else f"{model['oracle_gap_closed']:.2f}"
    print(f"evaluate: {len(test.ids)} test images, {metrics['model_decoding']}: accuracy {model['accuracy']:.3f}, "
          f"PSNR {model['psnr']:.2f} dB (gray {gray['psnr']:.2f}), SSIM {model['ssim']:.3f}, "
          f"CIEDE2000 {model['ciede2000']:.2f}, oracle gap closed {gap}")


if __name__ == "__main__":
    run_stage(main)
