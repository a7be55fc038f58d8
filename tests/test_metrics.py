import math

import numpy as np
import pytest

from colorize.core.errors import ArrayError
from colorize.evaluate.decoding import predicted_labels
from colorize.evaluate.metrics import (
    PSNR_CAP_DB,
    ImageMetricsAccumulator,
    LabelCounts,
    ciede2000,
    colour_confusions,
    colourfulness,
    confusion_matrix,
    foreground_accuracy,
    foreground_image_metrics,
    foreground_mask,
    image_metrics,
    per_colour_accuracy,
    pixel_accuracy,
    psnr,
    recall_per_colour,
    ssim,
    top_k_accuracy,
    worst_confusions,
)


def random_images(n, size, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_psnr_known_value_and_identical_cap():
    truth = np.full((2, 8, 8, 3), 100, np.uint8)
    pred = truth.copy()
    pred[0] += 10  # MSE 100 everywhere
    values = psnr(pred, truth)
    assert values.shape == (2,)
    assert values[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert values[1] == PSNR_CAP_DB


def test_ssim_is_one_for_identical_images_and_lower_for_others_at_small_sizes():
    for size in (8, 5):
        truth = random_images(3, size, seed=size)
        np.testing.assert_allclose(ssim(truth, truth), 1.0)
        assert np.all(ssim(255 - truth, truth) < 0.5)


def test_ciede2000_black_vs_white_is_100_and_symmetric():
    black = np.zeros((1, 4, 4, 3), np.uint8)
    white = np.full((1, 4, 4, 3), 255, np.uint8)
    assert ciede2000(black, white)[0] == pytest.approx(100, abs=1e-3)
    images = random_images(3, 8, seed=1)
    others = random_images(3, 8, seed=2)
    np.testing.assert_allclose(ciede2000(images, others), ciede2000(others, images), rtol=1e-6)
    np.testing.assert_allclose(ciede2000(images, images), 0.0, atol=1e-9)


def test_ciede2000_is_a_per_image_mean():
    truth = np.zeros((1, 2, 2, 3), np.uint8)
    pred = truth.copy()
    pred[0, 0, 0] = 255  # one white pixel out of four
    assert ciede2000(pred, truth)[0] == pytest.approx(25, abs=1e-3)


def test_colourfulness_hand_computed():
    gray = np.full((1, 4, 4, 3), 90, np.uint8)
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    half = np.zeros((1, 4, 4, 3), np.uint8)
    half[0, :2, :, 0] = 255  # half red, half black
    values = colourfulness(np.concatenate([gray, red, half]))
    # red: rg = 255, yb = 127.5, no spread -> 0.3·sqrt(255² + 127.5²)
    # half: each of rg, yb has mean = std = half its red value -> 1.3·sqrt(127.5² + 63.75²)
    np.testing.assert_allclose(values, [0.0, 0.3 * math.hypot(255, 127.5), 1.3 * math.hypot(127.5, 63.75)])


def test_image_metrics_are_means_of_the_per_image_values():
    pred, truth = random_images(4, 8, seed=3), random_images(4, 8, seed=4)
    result = image_metrics(pred, truth)
    assert set(result) == {"psnr", "ssim", "ciede2000", "colourfulness"}
    assert all(isinstance(v, float) for v in result.values())
    assert result["psnr"] == pytest.approx(psnr(pred, truth).mean())
    assert result["ciede2000"] == pytest.approx(ciede2000(pred, truth).mean())
    assert result["colourfulness"] == pytest.approx(colourfulness(pred).mean())


@pytest.mark.parametrize("pred, truth, message", [
    (np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 4, 4, 3), np.uint8), "uint8"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), "dimensions"),
    (np.zeros((1, 4, 4, 3), np.uint8), np.zeros((2, 4, 4, 3), np.uint8), "same shape"),
    (np.zeros((0, 4, 4, 3), np.uint8), np.zeros((0, 4, 4, 3), np.uint8), "no images"),
])
def test_image_metrics_validate_inputs(pred, truth, message):
    for metric in (psnr, ssim, ciede2000, image_metrics):
        with pytest.raises(ArrayError, match=message):
            metric(pred, truth)


def test_top_k_accuracy_hand_case():
    probs = np.array([[[[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2], [0.2, 0.3, 0.5]]]], np.float32)
    labels = np.array([[[1, 2, 1, 0]]], np.uint8)
    # ranks of the true class: 1, 0, 1 (tie, lower index first), 2
    assert top_k_accuracy(probs, labels, 1) == pytest.approx(0.25)
    assert top_k_accuracy(probs, labels, 2) == pytest.approx(0.75)
    assert top_k_accuracy(probs, labels, 3) == pytest.approx(1.0)


def test_top_1_equals_argmax_pixel_accuracy_even_with_ties():
    rng = np.random.default_rng(5)
    probs = rng.integers(0, 3, (4, 6, 6, 5)).astype(np.float32) + 0.5  # many ties
    labels = rng.integers(0, 5, (4, 6, 6)).astype(np.uint8)
    accuracy = pixel_accuracy(predicted_labels(probs), labels)
    assert top_k_accuracy(probs, labels, 1, batch=3) == pytest.approx(accuracy)
    values = [top_k_accuracy(probs, labels, k) for k in range(1, 6)]
    assert all(a <= b for a, b in zip(values, values[1:])) and values[-1] == 1.0


def test_top_k_accuracy_validates():
    probs = np.full((1, 2, 2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="k must"):
        top_k_accuracy(probs, np.zeros((1, 2, 2), np.uint8), 4)
    with pytest.raises(ArrayError, match=r"\[0, 2\]"):
        top_k_accuracy(probs, np.full((1, 2, 2), 3, np.uint8), 1)
    with pytest.raises(ArrayError, match="match probs"):
        top_k_accuracy(probs, np.zeros((1, 2, 3), np.uint8), 1)


LABELS = np.array([[0, 0, 0, 1], [1, 1, 2, 2]], np.uint8)
PRED = np.array([[0, 0, 1, 1], [2, 2, 0, 2]], np.uint8)


def test_pixel_and_per_colour_accuracy():
    assert pixel_accuracy(PRED, LABELS) == pytest.approx(4 / 8)
    # colour 0: 2 of 3; colour 1: 1 of 3; colour 2: 1 of 2; colour 3 never occurs
    assert per_colour_accuracy(PRED, LABELS, 4) == pytest.approx([2 / 3, 1 / 3, 1 / 2, None])


def test_confusion_matrix_and_top_confusions():
    matrix = confusion_matrix(PRED, LABELS, 3)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [0, 1, 2], [1, 0, 1]])
    confusions = colour_confusions(PRED, LABELS, 3)
    assert confusions == [(1, 2, 2 / 8), (0, 1, 1 / 8), (2, 0, 1 / 8)]
    assert sum(share for _, _, share in confusions) == pytest.approx(1 - pixel_accuracy(PRED, LABELS))
    assert colour_confusions(PRED, LABELS, 3, top=1) == [(1, 2, 2 / 8)]


def test_label_metrics_validate():
    with pytest.raises(ArrayError, match="same shape"):
        pixel_accuracy(PRED, LABELS[:1])
    with pytest.raises(ArrayError, match="pred_labels"):
        per_colour_accuracy(PRED, LABELS, 2)
    with pytest.raises(ArrayError, match="integer"):
        pixel_accuracy(PRED.astype(np.float32), LABELS)


# --- foreground ---------------------------------------------------------------------------------------

def test_foreground_mask_is_every_pixel_that_is_not_exactly_the_fill():
    truth = np.full((1, 2, 2, 3), 255, np.uint8)
    truth[0, 0, 0] = (255, 255, 254)
    truth[0, 1, 1] = (10, 20, 30)
    assert foreground_mask(truth, [255, 255, 255]).tolist() == [[[True, False], [False, True]]]
    assert foreground_mask(truth, [10, 20, 30]).sum() == 3


def test_foreground_psnr_and_ciede2000_ignore_the_page_and_empty_images():
    truth = np.full((2, 4, 4, 3), 255, np.uint8)
    truth[0, :2, :2] = (200, 40, 40)     # image 0: a 2x2 red drawing; image 1: an empty page
    pred = truth.copy()
    pred[0, :2, :2] = (190, 40, 40)      # every drawn pixel off by 10 in one channel: MSE 100 / 3
    pred[1, 0, 0] = (0, 0, 0)            # a wrong page pixel counts nowhere
    pred[0, 3, 3] = (0, 0, 0)
    scores = foreground_image_metrics(pred, truth, foreground_mask(truth, [255, 255, 255]))
    assert scores["fg_psnr"] == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    expected_delta = ciede2000(pred[:1, :2, :2], truth[:1, :2, :2])[0]
    assert scores["fg_ciede2000"] == pytest.approx(expected_delta)
    # Whole-image PSNR is pulled up by the page the prediction got right, foreground PSNR is not.
    assert psnr(pred[:1], truth[:1])[0] != pytest.approx(scores["fg_psnr"])


def test_foreground_scores_are_none_without_any_foreground():
    page = np.full((1, 4, 4, 3), 255, np.uint8)
    mask = foreground_mask(page, [255, 255, 255])
    assert foreground_image_metrics(page, page, mask) == {"fg_psnr": None, "fg_ciede2000": None}
    assert foreground_accuracy(np.zeros((1, 4, 4), np.uint8), np.zeros((1, 4, 4), np.uint8), mask) is None


def test_foreground_accuracy_counts_only_masked_pixels():
    labels = np.array([[[0, 0], [1, 2]]], np.uint8)
    pred = np.array([[[0, 0], [1, 0]]], np.uint8)
    mask = np.array([[[False, False], [True, True]]])
    assert pixel_accuracy(pred, labels) == 0.75
    assert foreground_accuracy(pred, labels, mask) == 0.5
    with pytest.raises(ArrayError, match="mask"):
        foreground_accuracy(pred, labels, mask[:, :1])


# --- batch-wise accumulators == whole-array results ---------------------------------------------------

def _batches(n, sizes):
    start = 0
    for size in sizes:
        yield slice(start, min(start + size, n))
        start += size


def test_image_metrics_accumulated_in_batches_equal_the_whole_array_result():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 256, size=(9, 16, 16, 3), dtype=np.uint8)
    truth = rng.integers(0, 256, size=(9, 16, 16, 3), dtype=np.uint8)
    mask = rng.random((9, 16, 16)) < 0.3
    mask[2] = False  # an image without foreground counts in neither foreground mean
    scores, foreground = ImageMetricsAccumulator(), ImageMetricsAccumulator(image=False)
    for part in _batches(9, (4, 1, 4)):
        scores.add(pred[part], truth[part], mask[part])
        foreground.add(pred[part], truth[part], mask[part])
    assert scores.result() == {**image_metrics(pred, truth), **foreground_image_metrics(pred, truth, mask)}
    assert foreground.result() == foreground_image_metrics(pred, truth, mask)
    with pytest.raises(ArrayError, match="no images"):
        ImageMetricsAccumulator().result()


def test_a_shared_truth_lab_and_one_delta_map_give_skimages_own_ciede2000():
    from skimage.color import deltaE_ciede2000, rgb2lab

    rng = np.random.default_rng(4)
    pred, truth = (rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8) for _ in range(2))
    mask = rng.random((5, 8, 8)) < 0.5
    reference = deltaE_ciede2000(rgb2lab(pred), rgb2lab(truth))
    shared = ImageMetricsAccumulator()
    shared.add(pred, truth, mask, truth_lab=rgb2lab(truth).astype(np.float32).astype(np.float64))
    alone = ImageMetricsAccumulator()
    alone.add(pred, truth, mask)
    assert shared.result() == alone.result()
    assert alone.result()["ciede2000"] == pytest.approx(reference.mean(), rel=1e-5)
    assert alone.result()["fg_ciede2000"] == pytest.approx(np.mean([d[m].mean() for d, m in zip(reference, mask)]),
                                                           rel=1e-5)


def test_label_counts_in_batches_equal_accuracy_confusion_top_k_and_foreground():
    rng = np.random.default_rng(4)
    probs = rng.random((7, 6, 6, 5)).astype(np.float32)
    probs /= probs.sum(axis=-1, keepdims=True)
    labels = rng.integers(0, 5, size=(7, 6, 6)).astype(np.uint8)
    mask = rng.random((7, 6, 6)) < 0.4
    pred = predicted_labels(probs)
    counts = LabelCounts(5, top_k=3)
    for part in _batches(7, (3, 3, 1)):
        counts.add(pred[part], labels[part], probs[part], mask[part])
    assert counts.accuracy() == pixel_accuracy(pred, labels)
    assert counts.top_k_accuracy() == top_k_accuracy(probs, labels, 3)
    assert counts.masked_accuracy() == foreground_accuracy(pred, labels, mask)
    np.testing.assert_array_equal(counts.confusion, confusion_matrix(pred, labels, 5))
    assert worst_confusions(counts.confusion) == colour_confusions(pred, labels, 5)
    assert recall_per_colour(counts.confusion) == per_colour_accuracy(pred, labels, 5)
    with pytest.raises(ValueError, match="probabilities"):
        counts.add(pred, labels)
    assert LabelCounts(5).masked_accuracy() is None
