"""Score the model and the baselines on the same test images with the same metrics.

Pure NumPy once the model's probabilities are known: `score_all` takes them as an argument, so it is
tested without Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorize.core.colour import gray_to_rgb_uint8, rgb_to_lab
from colorize.core.params import EvaluateParams
from colorize.evaluate.baselines import GrayLookup, example_transfer, oracle
from colorize.evaluate.decoding import METHODS, decode, keep_luminance, predicted_labels
from colorize.evaluate.metrics import (
    colour_confusions,
    colourfulness,
    foreground_accuracy,
    foreground_image_metrics,
    foreground_mask,
    image_metrics,
    per_colour_accuracy,
    pixel_accuracy,
    top_k_accuracy,
)


@dataclass
class Images:
    """One part of the data: original RGB (N, S, S, 3), gray in [0, 1] (N, S, S), palette labels (N, S, S)."""

    ids: list[str]
    rgb: np.ndarray
    gray: np.ndarray
    labels: np.ndarray


def gap_closed(model_psnr: float, gray_psnr: float, oracle_psnr: float) -> float | None:
    """(PSNR_model - PSNR_gray) / (PSNR_oracle - PSNR_gray): 0 = no better than gray, 1 = the oracle."""
    room = oracle_psnr - gray_psnr
    return None if room <= 1e-9 else float((model_psnr - gray_psnr) / room)


def labelled_scores(pred_labels: np.ndarray, images: Images, palette: np.ndarray, keep: bool) -> dict[str, float]:
    """Image metrics of a palette-index prediction, plus its pixel accuracy."""
    rgb = palette[pred_labels]
    if keep:
        rgb = keep_luminance(rgb, images.gray)
    return {"accuracy": pixel_accuracy(pred_labels, images.labels), **image_metrics(rgb, images.rgb)}


def model_outputs(probs: np.ndarray, images: Images, palette: np.ndarray, temperature: float
                  ) -> dict[str, np.ndarray]:
    """RGB of every decoding, raw and with the input's lightness kept: {'argmax': …, 'argmax_keep_luminance': …}."""
    outputs = {}
    for method in METHODS:
        rgb = decode(probs, palette, method, temperature)
        outputs[method] = rgb
        outputs[f"{method}_keep_luminance"] = keep_luminance(rgb, images.gray)
    return outputs


def variant_name(decode_method: str, keep: bool) -> str:
    return f"{decode_method}_keep_luminance" if keep else decode_method


def add_foreground(entries: dict[str, dict[str, Any]], rgb: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                   test: Images, fill: Sequence[int]) -> float:
    """Add fg_psnr, fg_ciede2000 (and fg_accuracy where there are labels) to each entry, scored on the
    pixels whose true colour is not `fill`; return the foreground's share of the test pixels."""
    mask = foreground_mask(test.rgb, fill)
    for name, entry in entries.items():
        if name in labels:
            entry["fg_accuracy"] = foreground_accuracy(labels[name], test.labels, mask)
        entry.update(foreground_image_metrics(rgb[name], test.rgb, mask))
    return float(mask.mean())


def score_all(probs: np.ndarray, test: Images, train: Images, palette: np.ndarray,
              params: EvaluateParams, fill: Sequence[int] | None = None
              ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics for the model (every decoding) and every baseline on `test`; baselines learn on `train` only.
    With `fill` (the padding colour), every entry also gets foreground metrics (`fg_*`).

    Returns (eval metrics, per-colour table, the RGB images of each method for the sample figures).
    """
    k = len(palette)
    keep = params.keep_luminance
    pred_labels = predicted_labels(probs)
    outputs = model_outputs(probs, test, palette, params.temperature)
    accuracy = pixel_accuracy(pred_labels, test.labels)
    decodings = {name: {"accuracy": accuracy, **image_metrics(rgb, test.rgb)} for name, rgb in outputs.items()}

    lookup = GrayLookup().fit_streamed(train.gray, train.labels, k)
    lookup_labels = lookup.predict(test.gray)
    transfer = example_transfer(train.rgb, train.gray, test.gray, params.transfer_pixels, params.seed)
    baselines = {
        "gray": image_metrics(gray_to_rgb_uint8(test.gray), test.rgb),
        "gray_lookup": labelled_scores(lookup_labels, test, palette, keep=False),
        "gray_lookup_keep_luminance": labelled_scores(lookup_labels, test, palette, keep=True),
        "example_transfer": image_metrics(transfer, test.rgb),
        "oracle": labelled_scores(test.labels, test, palette, keep=False),
        "oracle_keep_luminance": labelled_scores(test.labels, test, palette, keep=True),
    }
    foreground_share = None
    if fill is not None:
        lookup_rgb = palette[lookup_labels]
        oracle_rgb = palette[test.labels]
        foreground_share = add_foreground(
            {**decodings, **baselines},
            {**outputs, "gray": gray_to_rgb_uint8(test.gray), "gray_lookup": lookup_rgb,
             "gray_lookup_keep_luminance": keep_luminance(lookup_rgb, test.gray), "example_transfer": transfer,
             "oracle": oracle_rgb, "oracle_keep_luminance": keep_luminance(oracle_rgb, test.gray)},
            {**dict.fromkeys(decodings, pred_labels), "gray_lookup": lookup_labels,
             "gray_lookup_keep_luminance": lookup_labels, "oracle": test.labels, "oracle_keep_luminance": test.labels},
            test, fill)
    chosen = variant_name(params.decode, keep)
    oracle_key = "oracle_keep_luminance" if keep else "oracle"
    model = {
        **decodings[chosen],
        "top5_accuracy": top_k_accuracy(probs, test.labels, min(5, k)),
        "oracle_gap_closed": gap_closed(decodings[chosen]["psnr"], baselines["gray"]["psnr"],
                                        baselines[oracle_key]["psnr"]),
    }
    metrics = {
        "test_images": len(test.ids),
        "model": model,
        "model_decoding": chosen,
        "model_decodings": decodings,
        "baselines": baselines,
        "original": {"colourfulness": float(np.mean(colourfulness(test.rgb))),
                     **({} if foreground_share is None else {"foreground_share": foreground_share})},
        "worst_confusions": [
            {"true": int(t), "predicted": int(p), "share": float(s)}
            for t, p, s in colour_confusions(pred_labels, test.labels, k)
        ],
    }
    per_colour = per_colour_table(pred_labels, test.labels, palette)
    images = {
        "gray_lookup": palette[lookup_labels],
        "example_transfer": transfer,
        "oracle": oracle(test.labels, palette),
        "model": outputs[chosen],
    }
    return metrics, per_colour, images


def per_colour_table(pred_labels: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> list[dict[str, Any]]:
    """One row per palette colour: its recall and its share of test pixels (a bar plot for `dvc plots`)."""
    recall = per_colour_accuracy(pred_labels, labels, len(palette))
    share = np.bincount(labels.reshape(-1), minlength=len(palette)) / max(1, labels.size)
    lab = rgb_to_lab(palette)
    return [
        {
            "colour": i,
            "hex": "#{:02x}{:02x}{:02x}".format(*(int(c) for c in palette[i])),
            "lightness": round(float(lab[i, 0]), 2),
            "recall": None if recall[i] is None else round(float(recall[i]), 6),
            "pixel_share": round(float(share[i]), 6),
        }
        for i in range(len(palette))
    ]


def score_generalisation(probs: np.ndarray, images: Images, train: Images, palette: np.ndarray,
                         params: EvaluateParams) -> dict[str, Any]:
    """The model and the cheap baselines on a second data source (its own palette labels, same palette)."""
    keep = params.keep_luminance
    rgb = decode(probs, palette, params.decode, params.temperature)
    if keep:
        rgb = keep_luminance(rgb, images.gray)
    lookup_labels = GrayLookup().fit_streamed(train.gray, train.labels, len(palette)).predict(images.gray)
    return {
        "images": len(images.ids),
        "model": {"accuracy": pixel_accuracy(predicted_labels(probs), images.labels),
                  **image_metrics(rgb, images.rgb)},
        "gray": image_metrics(gray_to_rgb_uint8(images.gray), images.rgb),
        "gray_lookup": labelled_scores(lookup_labels, images, palette, keep),
        "oracle": labelled_scores(images.labels, images, palette, keep),
    }
