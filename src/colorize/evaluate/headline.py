"""The headline metrics: the few numbers a person compares across experiments (`metrics/eval.json`).

Everything evaluate measures (every decoding, every baseline, confusions, the second source in full) goes
to `metrics/eval_details.json`, an output that is not a declared metric. Keys are short, flat and never the
name of a param, and values are rounded to what a comparison needs, so that `dvc exp show --only-changed`
for a two-param sweep fits a 120-column terminal (the train stage adds DVCLive's
`step` in metrics/train/metrics.json):

| key | what (full precision in eval_details.json) |
| --- | --- |
| acc | pixel accuracy of the palette index (model.accuracy) |
| psnr, ssim | of the colorized test images against the originals (dB; 0..1) |
| de00 | mean CIEDE2000 colour difference, lower is better (model.ciede2000) |
| cf | colourfulness (Hasler and Süsstrunk) of the colorized images; the originals' is original.colourfulness |
| gap | oracle_gap_closed: share of the gray-to-oracle PSNR gap the model closes |
| xgap | the same on the extra set (extra.source, generalisation); absent when that is off |

| fg_acc, fg_psnr, fg_de00 | the same on the foreground only: pixels whose true colour is not the fill |
"""

from __future__ import annotations

from typing import Any

from colorize.evaluate.evaluation import gap_closed

# headline key -> (key in the model's result, decimals kept)
MODEL_FIGURES = {"acc": ("accuracy", 3), "psnr": ("psnr", 2), "ssim": ("ssim", 3), "de00": ("ciede2000", 2),
                 "cf": ("colourfulness", 1), "gap": ("oracle_gap_closed", 3)}
# Foreground-only scores (pixels that are not the fill colour); absent from older results.
FOREGROUND_FIGURES = {"fg_acc": ("fg_accuracy", 3), "fg_psnr": ("fg_psnr", 2), "fg_de00": ("fg_ciede2000", 2)}


def rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(float(value), decimals)


def generalisation_score(extra: dict[str, Any]) -> float | None:
    """Share of the gray-to-oracle PSNR gap the model closes on the second source (as oracle_gap_closed)."""
    return gap_closed(extra["model"]["psnr"], extra["gray"]["psnr"], extra["oracle"]["psnr"])


def headline(details: dict[str, Any]) -> dict[str, Any]:
    """The headline from evaluate's full result."""
    model = details["model"]
    out: dict[str, Any] = {key: rounded(model[name], decimals) for key, (name, decimals) in MODEL_FIGURES.items()}
    out.update({key: rounded(model[name], decimals) for key, (name, decimals) in FOREGROUND_FIGURES.items()
                if name in model})
    if details.get("extra"):
        out["xgap"] = rounded(generalisation_score(details["extra"]), 3)
    return out
