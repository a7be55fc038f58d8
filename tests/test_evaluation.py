"""evaluation.py: score_all on a tiny synthetic case, batch-wise equal to the whole-array metrics, the
gap-closed formula, the per-colour table."""

from __future__ import annotations

import numpy as np
import pytest

from colorize.core.colour import gray_to_rgb_uint8
from colorize.core.params import EvaluateParams
from colorize.evaluate.baselines import TRANSFER_BATCH, GrayLookup, example_transfer
from colorize.evaluate.decoding import DEFAULT_BATCH, METHODS, decode, predicted_labels, put_back_lightness
from colorize.evaluate.evaluation import (
    EVAL_BATCH,
    BatchPredictions,
    Images,
    gap_closed,
    labelled_scores,
    lightness_putter,
    per_colour_table,
    score_all,
)
from colorize.evaluate.metrics import (
    colour_confusions,
    colourfulness,
    confusion_matrix,
    foreground_accuracy,
    foreground_image_metrics,
    foreground_mask,
    image_metrics,
    pixel_accuracy,
    top_k_accuracy,
)
from colorize.prep.transforms import rgb_to_gray
from colorize.quantize.palette import nearest_palette_index
from repo_params import repo_params

PALETTE = np.array([[20, 20, 20], [200, 40, 40], [40, 170, 60], [60, 80, 220], [250, 250, 250]], np.uint8)
K = len(PALETTE)
WEIGHTS = [0.21, 0.72, 0.07]


def make_images(n: int, seed: int, make_blocky, colours=PALETTE) -> Images:
    rgb = make_blocky(n, 8, colours, seed=seed, block=2)
    # Some noise so the originals are not exactly palette colours.
    noise = np.random.default_rng(seed).integers(-6, 7, size=rgb.shape)
    rgb = np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)
    return Images([f"{seed}-{i}" for i in range(n)], rgb, rgb_to_gray(rgb, WEIGHTS),
                  nearest_palette_index(rgb, PALETTE, "rgb"))


def params(decode: str = "argmax", keep: bool = False, lightness: str = "match_gray") -> EvaluateParams:
    return repo_params("evaluate", decode=decode, keep_luminance=keep, lightness=lightness, temperature=0.38,
                       transfer_pixels=300, seed=0)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(K, dtype=np.float32)[labels]


@pytest.fixture
def parts(make_blocky) -> tuple[Images, Images]:
    return make_images(3, 1, make_blocky), make_images(6, 2, make_blocky)


@pytest.mark.parametrize("keep", [False, True])
def test_perfect_probabilities_score_like_the_oracle(parts, keep):
    test, train = parts
    metrics, per_colour, images = score_all(one_hot(test.labels), test, train, PALETTE, params("argmax", keep),
                                            WEIGHTS, samples=3)
    oracle = metrics["baselines"]["oracle_keep_luminance" if keep else "oracle"]
    model = metrics["model"]
    assert metrics["model_decoding"] == ("argmax_keep_luminance" if keep else "argmax")
    assert model["accuracy"] == 1.0 and model["top5_accuracy"] == 1.0
    for name in ("psnr", "ssim", "ciede2000", "colourfulness"):
        assert model[name] == pytest.approx(oracle[name]), name
    assert model["oracle_gap_closed"] == pytest.approx(1.0)
    assert metrics["worst_confusions"] == []
    assert metrics["test_images"] == 3
    assert images["model"].shape == test.rgb.shape
    if not keep:
        assert np.array_equal(images["model"], images["oracle"])
    assert all(row["recall"] in (None, 1.0) for row in per_colour)


def test_uniform_probabilities_score_below_the_oracle(parts):
    test, train = parts
    probs = np.full((*test.labels.shape, K), 1.0 / K, np.float32)
    metrics, _, _ = score_all(probs, test, train, PALETTE, params("argmax"), WEIGHTS)
    model = metrics["model"]
    # argmax of a tie is colour 0 everywhere: accuracy is the share of colour-0 pixels.
    assert model["accuracy"] == pytest.approx(np.mean(test.labels == 0))
    assert model["accuracy"] < 1.0
    assert model["psnr"] < metrics["baselines"]["oracle"]["psnr"]
    assert model["oracle_gap_closed"] == pytest.approx(gap_closed(
        model["psnr"], metrics["baselines"]["gray"]["psnr"], metrics["baselines"]["oracle"]["psnr"]))
    shares = [c["share"] for c in metrics["worst_confusions"]]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0 - model["accuracy"])  # at most K - 1 kinds of mistake here


def test_every_decoding_and_baseline_is_scored(parts):
    test, train = parts
    metrics, _, images = score_all(one_hot(test.labels), test, train, PALETTE, params("annealed_mean", True), WEIGHTS,
                                   samples=3)
    assert metrics["model_decoding"] == "annealed_mean_keep_luminance"
    assert set(metrics["model_decodings"]) == {f"{m}{s}" for m in ("argmax", "mean", "annealed_mean")
                                               for s in ("", "_keep_luminance")}
    assert set(metrics["baselines"]) == {"gray", "gray_lookup", "gray_lookup_keep_luminance", "example_transfer",
                                         "oracle", "oracle_keep_luminance"}
    for name in ("gray_lookup", "example_transfer", "oracle", "model"):
        assert images[name].shape == test.rgb.shape and images[name].dtype == np.uint8
    # One-hot probabilities: every decoding is (nearly) the palette colour itself.
    assert metrics["model_decodings"]["mean"]["ciede2000"] == pytest.approx(
        metrics["model_decodings"]["argmax"]["ciede2000"], abs=0.5)


def test_baselines_learn_from_train_not_from_test(parts):
    test, train = parts
    first, _, _ = score_all(one_hot(test.labels), test, train, PALETTE, params(), WEIGHTS)
    # Changing the test answers must not change what the gray lookup predicts.
    shuffled = Images(test.ids, test.rgb, test.gray, np.roll(test.labels, 1))
    second, _, _ = score_all(one_hot(test.labels), shuffled, train, PALETTE, params(), WEIGHTS)
    assert second["baselines"]["gray_lookup"]["psnr"] == first["baselines"]["gray_lookup"]["psnr"]
    # Changing the training labels does.
    other_train = Images(train.ids, train.rgb, train.gray, (train.labels + 1) % K)
    third, _, _ = score_all(one_hot(test.labels), test, other_train, PALETTE, params(), WEIGHTS)
    assert third["baselines"]["gray_lookup"]["psnr"] != first["baselines"]["gray_lookup"]["psnr"]


def test_gap_closed_formula():
    assert gap_closed(30.0, 20.0, 40.0) == pytest.approx(0.5)
    assert gap_closed(20.0, 20.0, 40.0) == 0.0
    assert gap_closed(40.0, 20.0, 40.0) == pytest.approx(1.0)
    assert gap_closed(15.0, 20.0, 40.0) == pytest.approx(-0.25)
    assert gap_closed(30.0, 20.0, 20.0) is None
    assert gap_closed(30.0, 25.0, 20.0) is None


def test_per_colour_table():
    labels = np.array([[[0, 0, 1, 1], [1, 3, 3, 3]]], np.uint8)
    pred = np.array([[[0, 1, 1, 1], [0, 3, 3, 0]]], np.uint8)
    table = per_colour_table(confusion_matrix(pred, labels, K), PALETTE)
    assert len(table) == K
    assert [row["colour"] for row in table] == list(range(K))
    assert table[1]["hex"] == "#c82828" and table[4]["hex"] == "#fafafa"
    assert [row["recall"] for row in table] == [pytest.approx(0.5), pytest.approx(2 / 3), None,
                                                 pytest.approx(2 / 3), None]
    assert [row["pixel_share"] for row in table] == [0.25, 0.375, 0.0, 0.375, 0.0]
    lightness = [row["lightness"] for row in table]
    assert lightness[0] < lightness[4] and all(0 <= value <= 100 for value in lightness)


def test_foreground_metrics_do_not_reward_painting_the_page(parts):
    # A model that is sure every pixel is the page colour: fine on the page, wrong on the drawing.
    test, train = parts
    page = np.zeros_like(test.labels) + K - 1
    fill = PALETTE[K - 1].tolist()
    test.rgb[test.labels == K - 1] = fill  # the page is exactly the fill colour
    metrics, _, _ = score_all(one_hot(page), test, train, PALETTE, params(), WEIGHTS, fill=fill)
    model = metrics["model"]
    share = metrics["original"]["foreground_share"]
    assert 0 < share < 1
    assert model["fg_accuracy"] == 0.0 < model["accuracy"] == pytest.approx(1 - share)
    assert model["fg_psnr"] < model["psnr"] and model["fg_ciede2000"] > model["ciede2000"]
    for name in ("gray", "gray_lookup", "example_transfer", "oracle", "oracle_keep_luminance"):
        assert {"fg_psnr", "fg_ciede2000"} <= set(metrics["baselines"][name]), name
    assert metrics["baselines"]["oracle"]["fg_accuracy"] == 1.0
    assert "fg_accuracy" not in metrics["baselines"]["gray"]


def test_without_fill_there_are_no_foreground_keys(parts):
    test, train = parts
    metrics, _, _ = score_all(one_hot(test.labels), test, train, PALETTE, params(), WEIGHTS)
    assert not any(key.startswith("fg_") for key in metrics["model"])
    assert "foreground_share" not in metrics["original"]


# --- batch-wise scoring == the whole-array metrics ----------------------------------------------------------

def soft_model(gray: np.ndarray) -> np.ndarray:
    """A stand-in model, a function of each pixel's gray: probabilities peaked at the palette colour of
    nearest gray level, not one-hot (so mean and annealed_mean differ from argmax)."""
    levels = rgb_to_gray(PALETTE[None], WEIGHTS)[0]
    logits = -((np.asarray(gray)[..., None] - levels) ** 2) * 40.0
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("lightness", ["match_gray", "cielab"])
def test_batch_wise_scores_equal_the_whole_array_metrics_for_any_batch_size(make_blocky, lightness):
    test, train = make_images(7, 3, make_blocky), make_images(6, 4, make_blocky)
    fill = PALETTE[K - 1].tolist()
    test.rgb[test.labels == K - 1] = fill  # a page of exactly the fill colour: foreground metrics matter
    setting = params("annealed_mean", True, lightness)
    probs = soft_model(test.gray)
    seen = []

    def predict(gray):
        seen.append(len(gray))
        return soft_model(gray)

    runs = {size: score_all(BatchPredictions(predict, test.gray), test, train, PALETTE, setting, WEIGHTS, fill=fill,
                            samples=5, batch=size)
            for size in (1, 2, 3, 7, EVAL_BATCH)}
    assert seen == [1] * 7 + [2, 2, 2, 1] + [3, 3, 1] + [7] + [7]  # each batch predicted once
    whole, per_colour, images = runs[7]
    for size, (metrics, table, drawn) in runs.items():
        assert metrics == whole and table == per_colour, size  # exact, not approximately
        assert drawn.keys() == images.keys()
        for name in drawn:
            np.testing.assert_array_equal(drawn[name], images[name], err_msg=f"{size} {name}")

    # The same numbers as the whole-array functions on the whole split.
    pred = predicted_labels(probs)
    mask = foreground_mask(test.rgb, fill)
    for method in METHODS:
        rgb = decode(probs, PALETTE, method, setting.temperature)
        kept = put_back_lightness(rgb, test.gray, lightness, WEIGHTS)
        for name, image in ((method, rgb), (f"{method}_keep_luminance", kept)):
            assert whole["model_decodings"][name] == {
                "accuracy": pixel_accuracy(pred, test.labels), **image_metrics(image, test.rgb),
                "fg_accuracy": foreground_accuracy(pred, test.labels, mask),
                **foreground_image_metrics(image, test.rgb, mask)}, name
    assert whole["model"]["top5_accuracy"] == top_k_accuracy(probs, test.labels, 5)
    assert whole["worst_confusions"] == [{"true": t, "predicted": p, "share": share}
                                         for t, p, share in colour_confusions(pred, test.labels, K)]
    assert per_colour == per_colour_table(confusion_matrix(pred, test.labels, K), PALETTE)
    assert whole["original"] == {"colourfulness": float(np.mean(colourfulness(test.rgb))),
                                 "foreground_share": float(mask.mean())}
    transfer = example_transfer(train.rgb, train.gray, test.gray, setting.transfer_pixels, setting.seed)
    lookup = GrayLookup().fit(train.gray, train.labels, K).predict(test.gray)
    baselines = whole["baselines"]
    assert baselines["example_transfer"] == {**image_metrics(transfer, test.rgb),
                                             **foreground_image_metrics(transfer, test.rgb, mask)}
    assert baselines["gray"] == {**image_metrics(gray_to_rgb_uint8(test.gray), test.rgb),
                                 **foreground_image_metrics(gray_to_rgb_uint8(test.gray), test.rgb, mask)}
    for name, labels, keep in (("gray_lookup", lookup, False), ("gray_lookup_keep_luminance", lookup, True),
                               ("oracle", test.labels, False), ("oracle_keep_luminance", test.labels, True)):
        entry = {key: value for key, value in baselines[name].items() if not key.startswith("fg_")}
        put_back = lightness_putter(setting, WEIGHTS) if keep else None
        assert entry == labelled_scores(labels, test, PALETTE, put_back), name
        assert baselines[name]["fg_accuracy"] == foreground_accuracy(labels, test.labels, mask), name
    np.testing.assert_array_equal(images["example_transfer"], transfer[:5])
    np.testing.assert_array_equal(images["model"], put_back_lightness(
        decode(probs, PALETTE, "annealed_mean", setting.temperature), test.gray, lightness, WEIGHTS)[:5])
    np.testing.assert_array_equal(images["gray"], test.gray[:5])
    np.testing.assert_array_equal(images["original"], test.rgb[:5])


def test_scoring_reads_memory_mapped_shards_like_arrays(tmp_path, make_blocky):
    from colorize.core.artifacts import write_sharded
    from colorize.core.streaming import ShardedRows

    test, train = make_images(5, 5, make_blocky), make_images(6, 6, make_blocky)
    parts = {}
    for part in (test, train):
        arrays = []
        for name, array in (("rgb", part.rgb), ("gray", part.gray), ("labels", part.labels)):
            folder = tmp_path / f"{part.ids[0]}-{name}"
            folder.mkdir()
            write_sharded(folder, name, part.ids, array, shard_bytes=2 * array[0].nbytes)
            arrays.append(ShardedRows(folder, part.ids))
        parts[part.ids[0]] = Images(part.ids, *arrays)
    streamed = score_all(BatchPredictions(soft_model, parts[test.ids[0]].gray), parts[test.ids[0]],
                         parts[train.ids[0]], PALETTE, params("mean", True), WEIGHTS, samples=2, batch=2)
    in_memory = score_all(soft_model(test.gray), test, train, PALETTE, params("mean", True), WEIGHTS, samples=2,
                          batch=2)
    assert streamed[:2] == in_memory[:2]
    assert all(np.array_equal(streamed[2][name], in_memory[2][name]) for name in in_memory[2])


def test_probabilities_must_cover_the_test_images(parts):
    test, train = parts
    with pytest.raises(ValueError, match="probs cover 2 images but the test part has 3"):
        score_all(one_hot(test.labels[:2]), test, train, PALETTE, params(), WEIGHTS)


def test_eval_batch_is_a_multiple_of_every_chunk_inside():
    # Then every chunk of prediction, decoding, the metrics and example transfer holds the same images
    # as when the whole split is scored at once (bundle.predict_probabilities' batch: test_bundle.py).
    assert EVAL_BATCH % DEFAULT_BATCH == 0 and EVAL_BATCH % TRANSFER_BATCH == 0
