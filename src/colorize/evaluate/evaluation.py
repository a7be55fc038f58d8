"""Score the model and the baselines on the same test images with the same metrics.

Pure NumPy once the model's probabilities are known: `score_all` takes them as an argument (an array, or
BatchPredictions that runs the model a batch at a time), so it is tested without Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from colorize.core.checks import check_positive_int
from colorize.core.colour import gray_to_rgb_uint8, rgb_to_lab
from colorize.core.errors import ArrayError
from colorize.core.params import EvaluateParams
from colorize.evaluate.baselines import ExampleTransfer, GrayLookup
from colorize.evaluate.decoding import METHODS, decode, predicted_labels, put_back_lightness
from colorize.evaluate.metrics import (
    ImageMetricsAccumulator,
    LabelCounts,
    colourfulness,
    foreground_mask,
    image_metrics,
    pixel_accuracy,
    recall_per_colour,
    worst_confusions,
)
from colorize.evaluate.regions import pool_over_regions

# Test images scored at once. Memory: their probabilities (256 x 64x64 x 32 x 4 B = 128 MiB at the
# defaults) and per-image results, whatever the size of the split. A multiple of the chunks inside
# (prediction and decoding 64 images, example transfer 128; tested), so every chunk is the one the whole split
# would give and the numbers are bit-identical to scoring it in one piece.
EVAL_BATCH = 256


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


def model_probabilities(model: Any, gray01: Any, params: EvaluateParams) -> np.ndarray:
    """The model's probabilities (N, S, S, K) for gray images (N, S, S) as evaluate scores them: averaged
    over `params.tta`'s views, then over each flat region (`params.region_tolerance`, regions.py)."""
    from colorize.model.bundle import predict_probabilities  # Keras only where a model runs

    gray = np.asarray(gray01)
    return pool_over_regions(predict_probabilities(model, gray, tta=params.tta), gray, params.region_tolerance,
                             params.region_min_pixels)


def lightness_putter(params: EvaluateParams, gray_weights: Sequence[float]) -> Callable[[Any, Any], np.ndarray]:
    """(rgb, gray) -> rgb with the input's lightness put back as `params.lightness` says; `gray_weights`
    are the grayscale stage's (the bundle's `gray_weights`)."""
    return partial(put_back_lightness, method=params.lightness, weights=gray_weights)


def labelled_scores(pred_labels: np.ndarray, images: Images, palette: np.ndarray,
                    put_back: Callable[[Any, Any], np.ndarray] | None) -> dict[str, float]:
    """Image metrics of a palette-index prediction, plus its pixel accuracy; `put_back` (lightness_putter),
    if given, puts the input's lightness back first."""
    rgb = palette[pred_labels]
    if put_back is not None:
        rgb = put_back(rgb, images.gray)
    return {"accuracy": pixel_accuracy(pred_labels, images.labels), **image_metrics(rgb, images.rgb)}


def model_outputs(probs: np.ndarray, images: Images, palette: np.ndarray, temperature: float,
                  put_back: Callable[[Any, Any], np.ndarray]) -> dict[str, np.ndarray]:
    """RGB of every decoding, raw and with the input's lightness kept: {'argmax': …, 'argmax_keep_luminance': …}."""
    outputs = {}
    for method in METHODS:
        rgb = decode(probs, palette, method, temperature)
        outputs[method] = rgb
        outputs[f"{method}_keep_luminance"] = put_back(rgb, images.gray)
    return outputs


def variant_name(decode_method: str, keep: bool) -> str:
    return f"{decode_method}_keep_luminance" if keep else decode_method


class BatchPredictions:
    """A model's probabilities for `gray` images, computed a batch at a time when sliced:
    `self[a:b]` is `predict(gray[a:b])`, so the whole (N, S, S, K) array never exists.
    `score_all` takes it in place of an array (and asks for each batch once)."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], gray: Any):
        self.predict = predict
        self.gray = gray

    def __len__(self) -> int:
        return len(self.gray)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.predict(np.asarray(self.gray[rows]))


# Method -> the predictions its pixel accuracy is counted from (None: an image only, no palette indices).
LABEL_SOURCE = {**{variant_name(m, keep): "model" for m in METHODS for keep in (False, True)},
                "gray": None, "gray_lookup": "gray_lookup", "gray_lookup_keep_luminance": "gray_lookup",
                "example_transfer": None, "oracle": "oracle", "oracle_keep_luminance": "oracle"}
# The sample figures' columns besides gray and original.
SAMPLE_METHODS = ("gray_lookup", "example_transfer", "oracle", "model")


def score_all(probs: Any, test: Images, train: Images, palette: np.ndarray,
              params: EvaluateParams, gray_weights: Sequence[float], fill: Sequence[int] | None = None,
              samples: int = 0, batch: int = EVAL_BATCH
              ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, np.ndarray]]:
    """Metrics for the model (every decoding) and every baseline on `test`; baselines learn on `train` only.
    `gray_weights` are the grayscale stage's (the input's lightness goes back by them: params.lightness).
    With `fill` (the padding colour), every entry also gets foreground metrics (`fg_*`).

    `test` is read, and `probs` (an array (N, S, S, K) or BatchPredictions) asked for, `batch` images at a
    time: memory holds one batch, per-image score lists and count tables, never the whole split. Results
    do not depend on `batch`.

    Returns (eval metrics, per-colour table, the first `samples` test images as each method colours them,
    plus 'gray' and 'original', for the sample figures).
    """
    n, k = len(test.ids), len(palette)
    if len(probs) != n:
        raise ArrayError(f"probs cover {len(probs)} images but the test part has {n}")
    batch = check_positive_int("batch", batch)
    keep, put_back = params.keep_luminance, lightness_putter(params, gray_weights)
    lookup = GrayLookup().fit_streamed(train.gray, train.labels, k)
    transfer = ExampleTransfer(train.rgb, train.gray, params.transfer_pixels, params.seed)
    chosen = variant_name(params.decode, keep)
    images = {name: ImageMetricsAccumulator() for name in LABEL_SOURCE}
    counts = {"model": LabelCounts(k, top_k=min(5, k)), "gray_lookup": LabelCounts(k), "oracle": LabelCounts(k)}
    colourful, masked = [], 0
    kept: dict[str, list[np.ndarray]] = {name: [] for name in ("gray", "original", *SAMPLE_METHODS)}
    for start in range(0, n, batch):
        rows = slice(start, min(start + batch, n))
        part = Images(test.ids[rows], *(np.asarray(array[rows]) for array in (test.rgb, test.gray, test.labels)))
        part_probs = probs[rows]
        labels = {"model": predicted_labels(part_probs), "gray_lookup": lookup.predict(part.gray),
                  "oracle": part.labels}
        lookup_rgb, oracle_rgb = palette[labels["gray_lookup"]], palette[part.labels]
        rgb = {**model_outputs(part_probs, part, palette, params.temperature, put_back),
               "gray": gray_to_rgb_uint8(part.gray),
               "gray_lookup": lookup_rgb, "gray_lookup_keep_luminance": put_back(lookup_rgb, part.gray),
               "example_transfer": transfer.apply(part.gray),
               "oracle": oracle_rgb, "oracle_keep_luminance": put_back(oracle_rgb, part.gray)}
        mask = None if fill is None else foreground_mask(part.rgb, fill)
        truth_lab = rgb_to_lab(part.rgb).astype(np.float64)  # shared by every method's ΔE00
        for name, scores in images.items():
            scores.add(rgb[name], part.rgb, mask, truth_lab)
        for name, tally in counts.items():
            tally.add(labels[name], part.labels, part_probs if name == "model" else None, mask)
        colourful.append(colourfulness(part.rgb))
        masked += 0 if mask is None else int(mask.sum())
        if start < samples:
            drawn = {**rgb, "gray": part.gray, "original": part.rgb, "model": rgb[chosen]}
            for name, values in kept.items():
                values.append(drawn[name][:samples - start])

    entries = {}
    for name, scores in images.items():
        source = LABEL_SOURCE[name]
        entry = scores.result()
        if source is not None:
            entry["accuracy"] = counts[source].accuracy()
            if fill is not None:
                entry["fg_accuracy"] = counts[source].masked_accuracy()
        entries[name] = entry
    decodings = {name: entries[name] for name in LABEL_SOURCE if LABEL_SOURCE[name] == "model"}
    baselines = {name: entries[name] for name in LABEL_SOURCE if LABEL_SOURCE[name] != "model"}
    oracle_key = "oracle_keep_luminance" if keep else "oracle"
    model = {
        **decodings[chosen],
        "top5_accuracy": counts["model"].top_k_accuracy(),
        "oracle_gap_closed": gap_closed(decodings[chosen]["psnr"], baselines["gray"]["psnr"],
                                        baselines[oracle_key]["psnr"]),
    }
    confusion = counts["model"].confusion
    metrics = {
        "test_images": n,
        "model": model,
        "model_decoding": chosen,
        "model_decodings": decodings,
        "baselines": baselines,
        "original": {"colourfulness": float(np.mean(np.concatenate(colourful))),
                     **({} if fill is None else {"foreground_share": masked / counts["oracle"].pixels})},
        "worst_confusions": [{"true": t, "predicted": p, "share": s} for t, p, s in worst_confusions(confusion)],
    }
    return metrics, per_colour_table(confusion, palette), {name: np.concatenate(values)
                                                           for name, values in kept.items() if values}


def per_colour_table(confusion: np.ndarray, palette: np.ndarray) -> list[dict[str, Any]]:
    """One row per palette colour from the model's confusion matrix (rows true, columns predicted): its
    recall and its share of test pixels (a bar plot for `dvc plots`)."""
    recall = recall_per_colour(confusion)
    share = confusion.sum(axis=1) / max(1, int(confusion.sum()))
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
                         params: EvaluateParams, gray_weights: Sequence[float]) -> dict[str, Any]:
    """The model and the cheap baselines on a second data source (its own palette labels, same palette)."""
    put_back = lightness_putter(params, gray_weights) if params.keep_luminance else None
    rgb = decode(probs, palette, params.decode, params.temperature)
    if put_back is not None:
        rgb = put_back(rgb, images.gray)
    lookup_labels = GrayLookup().fit_streamed(train.gray, train.labels, len(palette)).predict(images.gray)
    return {
        "images": len(images.ids),
        "model": {"accuracy": pixel_accuracy(predicted_labels(probs), images.labels),
                  **image_metrics(rgb, images.rgb)},
        "gray": image_metrics(gray_to_rgb_uint8(images.gray), images.rgb),
        "gray_lookup": labelled_scores(lookup_labels, images, palette, put_back),
        "oracle": labelled_scores(images.labels, images, palette, put_back),
    }
