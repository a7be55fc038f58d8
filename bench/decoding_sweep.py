"""Decoding sweep on the VALIDATION split of kept real-data workspaces (`bench/realdata.py --keep DIR`):
the trained bundle predicts once, then every decoding (argmax, mean, annealed_mean at each temperature),
with the input's lightness kept and the workspace's `evaluate.tta`, is scored against gray and the oracle.
No training: seconds per set.

    python bench/decoding_sweep.py /tmp/keep/twemoji /tmp/keep/wesnoth -T 0.1 0.2 0.38 0.6 1.0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorize.core.colour import gray_to_rgb_uint8
from colorize.core.dataset import load_part, load_split
from colorize.core.params import load_section
from colorize.evaluate.decoding import decode, keep_luminance
from colorize.evaluate.evaluation import gap_closed
from colorize.evaluate.metrics import image_metrics
from colorize.model.bundle import load_bundle, predict_probabilities


def sweep(repo: Path, temperatures: list[float]) -> list[tuple[str, dict]]:
    ids = load_split(repo / "data" / "split.json")["val"]
    rgb, gray, labels = (load_part(repo / "data" / name, ids) for name in ("resized", "gray", "labels"))
    bundle = load_bundle(repo / "models")
    probs = predict_probabilities(bundle.model, gray, tta=load_section("evaluate", repo / "params.yaml").tta)
    base = image_metrics(gray_to_rgb_uint8(gray), rgb)["psnr"]
    top = image_metrics(keep_luminance(bundle.palette[labels], gray), rgb)["psnr"]
    rows = [("argmax", "argmax", 1.0), ("mean", "mean", 1.0),
            *((f"annealed_mean T={t:g}", "annealed_mean", t) for t in temperatures)]
    out = []
    for label, method, t in rows:
        scores = image_metrics(keep_luminance(decode(probs, bundle.palette, method, t), gray), rgb)
        scores["gap_closed"] = gap_closed(scores["psnr"], base, top)
        out.append((label, scores))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+", type=Path, help="kept workspaces (trained, with data/)")
    parser.add_argument("-T", "--temperatures", nargs="+", type=float, default=[0.1, 0.2, 0.38, 0.6, 1.0])
    args = parser.parse_args()
    print("| set (val) | decoding | PSNR | SSIM | CIEDE2000 | gap closed |\n| --- | --- | --- | --- | --- | --- |")
    for repo in args.repos:
        for label, s in sweep(repo, args.temperatures):
            print(f"| {repo.name} | {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['ciede2000']:.2f} "
                  f"| {s['gap_closed']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
