"""Decoding sweep on the VALIDATION split of kept real-data workspaces (`bench/realdata.py --keep DIR`):
the trained bundle predicts once, then every decoding (argmax, mean, annealed_mean at each temperature),
with the input's lightness put back (the workspace's `evaluate.lightness`, or `--lightness`) and the
workspace's `evaluate.tta`, is scored against gray and the oracle (its lightness put back the same way).
No training: seconds per set.

    python bench/decoding_sweep.py /tmp/keep/twemoji /tmp/keep/wesnoth -T 0.1 0.2 0.38 0.6 1.0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorize.core.colour import gray_to_rgb_uint8
from colorize.core.dataset import load_part, load_split
from colorize.core.params import load_section
from colorize.evaluate.decoding import LIGHTNESS_METHODS, decode, put_back_lightness
from colorize.evaluate.evaluation import gap_closed, model_probabilities
from colorize.evaluate.metrics import image_metrics
from colorize.model.bundle import load_bundle


def sweep(repo: Path, temperatures: list[float], lightness: str | None = None) -> list[tuple[str, dict]]:
    ids = load_split(repo / "data" / "split.json")["val"]
    rgb, gray, labels = (load_part(repo / "data" / name, ids) for name in ("resized", "gray", "labels"))
    bundle = load_bundle(repo / "models")
    evaluate = load_section("evaluate", repo / "params.yaml")
    probs = model_probabilities(bundle.model, gray, evaluate)

    def kept(decoded):
        return put_back_lightness(decoded, gray, lightness or evaluate.lightness, bundle.gray_weights)

    base = image_metrics(gray_to_rgb_uint8(gray), rgb)["psnr"]
    top = image_metrics(kept(bundle.palette[labels]), rgb)["psnr"]
    rows = [("argmax", "argmax", 1.0), ("mean", "mean", 1.0),
            *((f"annealed_mean T={t:g}", "annealed_mean", t) for t in temperatures)]
    out = []
    for label, method, t in rows:
        scores = image_metrics(kept(decode(probs, bundle.palette, method, t)), rgb)
        scores["gap_closed"] = gap_closed(scores["psnr"], base, top)
        out.append((label, scores))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+", type=Path, help="kept workspaces (trained, with data/)")
    parser.add_argument("-T", "--temperatures", nargs="+", type=float, default=[0.1, 0.2, 0.38, 0.6, 1.0])
    parser.add_argument("--lightness", choices=LIGHTNESS_METHODS, help="default: the workspace's evaluate.lightness")
    args = parser.parse_args()
    print("| set (val) | decoding | PSNR | SSIM | CIEDE2000 | gap closed |\n| --- | --- | --- | --- | --- | --- |")
    for repo in args.repos:
        for label, s in sweep(repo, args.temperatures, args.lightness):
            print(f"| {repo.name} | {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['ciede2000']:.2f} "
                  f"| {s['gap_closed']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
