"""Decoding sweep on the VALIDATION split of kept real-data workspaces (`bench/realdata.py --keep DIR`):
the trained bundle predicts once, then every decoding (argmax, mean, annealed_mean at each temperature),
with the input's lightness put back (the workspace's `evaluate.lightness`, or `--lightness`) and the
workspace's `evaluate.tta` and flat-region pooling, is scored against gray and the oracle (its lightness put
back the same way); `--regions` adds the workspace's decoding with other poolings (TOLERANCE:MIN_PIXELS, or
`off`). No training: seconds per set.

    python bench/decoding_sweep.py /tmp/keep/twemoji /tmp/keep/wesnoth -T 0.1 0.2 0.38 0.6 1.0
    python bench/decoding_sweep.py /tmp/keep/* -T 0.6 --regions off 2:1 4:1 8:1 4:16 4:32 8:32   # session 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorize.core.colour import gray_to_rgb_uint8
from colorize.core.dataset import load_part, load_split
from colorize.core.params import load_section
from colorize.evaluate.decoding import LIGHTNESS_METHODS, decode, put_back_lightness
from colorize.evaluate.evaluation import gap_closed
from colorize.evaluate.metrics import image_metrics
from colorize.evaluate.regions import pool_over_regions
from colorize.model.bundle import load_bundle, predict_probabilities


def region_spec(text: str) -> tuple[int | None, int]:
    """`off` or TOLERANCE:MIN_PIXELS."""
    if text == "off":
        return None, 1
    tolerance, _, min_pixels = text.partition(":")
    return int(tolerance), int(min_pixels or 1)


def sweep(repo: Path, temperatures: list[float], lightness: str | None = None,
          regions: list[tuple[int | None, int]] = ()) -> list[tuple[str, dict]]:
    ids = load_split(repo / "data" / "split.json")["val"]
    rgb, gray, labels = (load_part(repo / "data" / name, ids) for name in ("resized", "gray", "labels"))
    bundle = load_bundle(repo / "models")
    evaluate = load_section("evaluate", repo / "params.yaml")
    views = predict_probabilities(bundle.model, gray, tta=evaluate.tta)
    probs = pool_over_regions(views, gray, evaluate.region_tolerance, evaluate.region_min_pixels)

    def kept(decoded):
        return put_back_lightness(decoded, gray, lightness or evaluate.lightness, bundle.gray_weights)

    base = image_metrics(gray_to_rgb_uint8(gray), rgb)["psnr"]
    top = image_metrics(kept(bundle.palette[labels]), rgb)["psnr"]
    rows = [("argmax", "argmax", 1.0, probs), ("mean", "mean", 1.0, probs),
            *((f"annealed_mean T={t:g}", "annealed_mean", t, probs) for t in temperatures),
            *((f"{evaluate.decode} T={evaluate.temperature:g}, regions "
               f"{'off' if tolerance is None else f'{tolerance}:{min_pixels}'}", evaluate.decode,
               evaluate.temperature, pool_over_regions(views, gray, tolerance, min_pixels))
              for tolerance, min_pixels in regions)]
    out = []
    for label, method, t, p in rows:
        scores = image_metrics(kept(decode(p, bundle.palette, method, t)), rgb)
        scores["gap_closed"] = gap_closed(scores["psnr"], base, top)
        out.append((label, scores))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+", type=Path, help="kept workspaces (trained, with data/)")
    parser.add_argument("-T", "--temperatures", nargs="+", type=float, default=[0.1, 0.2, 0.38, 0.6, 1.0])
    parser.add_argument("--lightness", choices=LIGHTNESS_METHODS, help="default: the workspace's evaluate.lightness")
    parser.add_argument("--regions", nargs="+", type=region_spec, default=[], metavar="TOLERANCE:MIN_PIXELS",
                        help="also the workspace's decoding with each of these flat-region poolings (or off)")
    args = parser.parse_args()
    print("| set (val) | decoding | PSNR | SSIM | CIEDE2000 | gap closed |\n| --- | --- | --- | --- | --- | --- |")
    for repo in args.repos:
        for label, s in sweep(repo, args.temperatures, args.lightness, args.regions):
            print(f"| {repo.name} | {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['ciede2000']:.2f} "
                  f"| {s['gap_closed']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
