"""training.py: shifts, augmentation that moves images and labels together, bitwise-reproducible
training and early stopping that restores the best weights."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from colorize.core.params import TrainParams
from colorize.model import training
from colorize.model.budget import training_bytes
from colorize.model.training import (
    AugmentedBatches,
    LiveLogger,
    class_weights_for,
    compile_model,
    fit,
    make_deterministic,
    model_for_training,
    planned_epochs,
    planned_steps,
    shift_images,
    stop_floor_epoch,
    weights_digest,
)
from repo_params import repo_params

ROOT = Path(__file__).resolve().parents[1]

# --- shift_images -------------------------------------------------------------------------------------

GRID = np.array([[[1, 2, 3],
                  [4, 5, 6],
                  [7, 8, 9]]])


@pytest.mark.parametrize(("dy", "dx", "expected"), [
    (1, 0, [[1, 2, 3], [1, 2, 3], [4, 5, 6]]),    # down: the top row repeats
    (-1, 0, [[4, 5, 6], [7, 8, 9], [7, 8, 9]]),   # up: the bottom row repeats
    (0, 1, [[1, 1, 2], [4, 4, 5], [7, 7, 8]]),    # right: the left column repeats
    (0, -2, [[3, 3, 3], [6, 6, 6], [9, 9, 9]]),   # left by 2
    (1, -1, [[2, 3, 3], [2, 3, 3], [5, 6, 6]]),   # down and left
    (0, 0, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
])
def test_shift_images_by_hand(dy, dx, expected):
    assert shift_images(GRID, dy, dx).tolist() == [expected]


def test_shift_images_keeps_trailing_channels():
    images = np.stack([GRID, GRID * 10], axis=-1)  # (1, 3, 3, 2)
    shifted = shift_images(images, 1, 0)
    assert shifted.shape == images.shape
    assert shifted[..., 1].tolist() == (shift_images(GRID, 1, 0) * 10).tolist()


# --- AugmentedBatches ---------------------------------------------------------------------------------

N, S, K = 10, 8, 7


def label_of(gray: np.ndarray) -> np.ndarray:
    """Every gray value is unique, so a label derived from it identifies the source pixel's label."""
    return (np.rint(gray * N * S * S).astype(np.int64) * 31 % K).astype(np.uint8)


@pytest.fixture
def unique_pixels() -> tuple[np.ndarray, np.ndarray]:
    values = np.random.default_rng(0).permutation(N * S * S) / (N * S * S)
    gray = values.reshape(N, S, S).astype(np.float32)
    return gray, label_of(gray)


def batches(gray, labels, seed=0, **kwargs) -> AugmentedBatches:
    options = {"flip": True, "shift": 2, "rotate": False, "class_weights": None, **kwargs}
    return AugmentedBatches(gray, labels, 4, seed, **options)


def all_batches(data: AugmentedBatches) -> list[tuple[np.ndarray, ...]]:
    return [tuple(np.array(part) for part in data[i]) for i in range(len(data))]


def test_batches_cover_every_image_once_per_epoch(unique_pixels):
    gray, labels = unique_pixels
    data = batches(gray, labels, flip=False, shift=0)
    assert len(data) == 3
    parts = all_batches(data)
    assert [len(x) for x, _ in parts] == [4, 4, 2]
    x = np.concatenate([x for x, _ in parts])[..., 0]
    assert x.shape == (N, S, S)
    order = [int(np.flatnonzero((gray == image).all(axis=(1, 2)))[0]) for image in x]
    assert sorted(order) == list(range(N))


def test_flips_and_shifts_move_images_and_labels_together(unique_pixels):
    gray, labels = unique_pixels
    data = batches(gray, labels)
    augmented = 0
    for x, y in all_batches(data):
        assert x.shape[1:] == (S, S, 1) and x.dtype == np.float32
        assert np.array_equal(y, label_of(x[..., 0]))
        # An image that matches no stored image unchanged was flipped or shifted.
        augmented += sum(not any(np.array_equal(image, g) for g in gray) for image in x[..., 0])
    assert augmented >= N // 2


def test_quarter_turns_move_images_and_labels_together_and_keep_the_other_draws(unique_pixels):
    gray, labels = unique_pixels
    plain, turned = all_batches(batches(gray, labels)), all_batches(batches(gray, labels, rotate=True))
    seen_turns = set()
    for (x, y), (x_turned, y_turned) in zip(plain, turned, strict=True):
        assert np.array_equal(y_turned, label_of(x_turned[..., 0]))
        for image, image_turned in zip(x[..., 0], x_turned[..., 0], strict=True):
            # the same flip and shift as without turns, then a quarter turn
            turns = [k for k in range(4) if np.array_equal(np.rot90(image, k), image_turned)]
            assert turns, "not a quarter turn of the unturned batch's image"
            seen_turns.add(turns[0])
    assert len(seen_turns) >= 3


def test_per_pixel_weights_are_the_class_weights_of_the_labels(unique_pixels):
    gray, labels = unique_pixels
    weights = np.linspace(0.5, 2.0, K).astype(np.float32)
    for x, y, w in all_batches(batches(gray, labels, class_weights=weights)):
        assert w.shape == y.shape and w.dtype == np.float32
        assert np.array_equal(w, weights[y])


def test_batches_are_deterministic_and_independent_of_access_order(unique_pixels):
    gray, labels = unique_pixels
    forward = all_batches(batches(gray, labels, seed=3))
    other = batches(gray, labels, seed=3)
    backward = [tuple(np.array(p) for p in other[i]) for i in reversed(range(len(other)))][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    different = all_batches(batches(gray, labels, seed=4))
    assert not np.array_equal(forward[0][0], different[0][0])


def test_batches_change_from_one_epoch_to_the_next(unique_pixels):
    gray, labels = unique_pixels
    data = batches(gray, labels)
    first = all_batches(data)
    second = [tuple(np.array(p) for p in data[len(data) + i]) for i in range(len(data))]  # epoch 1
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    # Keras sees an endless stream (one input iterator for the whole fit); an epoch's batches depend
    # only on (seed, epoch): a fresh object asked for epoch 1 first gives the same.
    assert data.num_batches is None
    fresh = batches(gray, labels)
    again = [tuple(np.array(p) for p in fresh[len(fresh) + i]) for i in range(len(fresh))]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(second, again, strict=True))


def test_short_batches_are_padded_with_zero_weight_rows_for_several_devices(unique_pixels):
    gray, labels = unique_pixels
    data = batches(gray, labels, multiple_of=4)
    x, y, w = data[len(data) - 1]  # 10 images, batch 4: the last batch holds 2
    assert len(x) == len(y) == len(w) == 4
    assert w[:2].min() == 1.0 and not w[2:].any()
    assert np.array_equal(x[2:], x[:2]) and np.array_equal(y[2:], y[:2])


# --- training -----------------------------------------------------------------------------------------

def train_model(params: TrainParams, data: dict[str, np.ndarray], callbacks=(), target=None):
    """A fresh, seeded model trained on `data`, and fit's summary."""
    make_deterministic(params.seed)
    model = compile_model(params, 16, 4)
    summary = fit(model, params, (data["train_gray"], data["train_labels"]),
                  (data["val_gray"], data["val_labels"]), np.linspace(0.5, 1.5, 4).astype(np.float32),
                  callbacks=callbacks, verbose=0, target=target)
    return model, summary


def train_once(params: TrainParams, data: dict[str, np.ndarray], callbacks=(), target=None) -> tuple[str, dict]:
    model, summary = train_model(params, data, callbacks, target)
    return weights_digest(model), summary


def test_two_fresh_trainings_give_bitwise_identical_weights(tiny_train_params, tiny_training_set, monkeypatch):
    asked = []
    original = AugmentedBatches.__getitem__

    def recording_getitem(self, index):
        asked.append(index)
        return original(self, index)

    monkeypatch.setattr(training.AugmentedBatches, "__getitem__", recording_getitem)
    first, summary = train_once(tiny_train_params, tiny_training_set)
    second, _ = train_once(tiny_train_params, tiny_training_set)
    assert first == second
    assert summary["epochs_run"] == 2 and 1 <= summary["best_epoch"] <= 2
    assert {"best_val_loss", "best_accuracy", "best_val_accuracy"} <= set(summary)
    # One stream across epochs: the second epoch's batches (indices 2, 3 of 8 images in batches of 4)
    # were read, so it saw new augmentations.
    assert {0, 1, 2, 3} <= set(asked)


class LogsPerStep(keras.callbacks.Callback):
    """Every batch's and epoch's logs, as the callbacks see them."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, int, dict]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(("batch", batch, {name: float(value) for name, value in (logs or {}).items()}))

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(("epoch", epoch, dict(logs or {})))


class StopMidEpoch(keras.callbacks.Callback):
    """Ask training to stop after the second batch of the third epoch (as EarlyStopping's stop_training)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            self.model.stop_training = True


@pytest.mark.parametrize("changes, stop", [({}, False), ({"ema": 0.9, "optimizer": "adadelta"}, False),
                                           ({"epochs": 4, "patience": 4}, True)],
                         ids=["adam", "ema-adadelta", "stopped"])
def test_step_by_step_loop_trains_what_keras_fit_trains(tiny_train_params, tiny_training_set, monkeypatch,
                                                        changes, stop):
    """On TensorFlow fit feeds each batch to the train step as arrays (fit_step_by_step, faster than
    Keras' tf.data reader): the same bits, the same per-batch and per-epoch logs, the same history and
    the same stop as model.fit on the same batches."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow feeds arrays")
    params = replace(tiny_train_params, **changes)
    runs = {}
    for loop in (training.fit_step_by_step, training.fit_with_keras):
        monkeypatch.setattr(training, "feeds_arrays", lambda devices, loop=loop: loop is training.fit_step_by_step)
        logs = LogsPerStep()
        model, summary = train_model(params, tiny_training_set, callbacks=[logs, *([StopMidEpoch()] if stop else [])])
        runs[loop.__name__] = (weights_digest(model), summary, logs.seen, model.history.history)
    assert runs["fit_step_by_step"] == runs["fit_with_keras"]
    digest, summary, seen, history = runs["fit_step_by_step"]
    batches_seen = [(kind, index) for kind, index, _ in seen if kind == "batch"]
    assert len(history["val_loss"]) == summary["epochs_run"] == (3 if stop else summary["epochs_planned"])
    assert len(batches_seen) == (2 * 2 + 2 if stop else summary["steps_run"])


def test_fit_feeds_arrays_on_tensorflow_with_one_device():
    assert training.feeds_arrays(1) == (keras.backend.backend() == "tensorflow")
    assert not training.feeds_arrays(2)


def test_weights_digest_sees_a_one_bit_change():
    from colorize.model.models import build_model

    model = build_model("unet", 8, 3, filters=2, depth=1)
    before = weights_digest(model)
    assert before == weights_digest(model) and len(before) == 64
    weights = model.get_weights()
    weights[0].view(np.uint32).flat[0] ^= 1  # flip the lowest mantissa bit of one weight
    model.set_weights(weights)
    assert weights_digest(model) != before


class DigestPerEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.digests: list[str] = []
        self.val_losses: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.digests.append(weights_digest(self.model))
        self.val_losses.append(float(logs["val_loss"]))


def test_early_stopping_restores_the_best_weights(tiny_train_params, tiny_training_set):
    # Validation labels follow the opposite rule of the training labels, so learning the training rule
    # makes validation worse: the best epoch is an early one and training stops before the last epoch.
    data = dict(tiny_training_set)
    data["val_labels"] = (3 - data["val_labels"]).astype(np.uint8)
    params = replace(tiny_train_params, epochs=8, patience=1, lr=0.01, flip=False, shift=0)
    recorder = DigestPerEpoch()
    digest, summary = train_once(params, data, callbacks=[recorder])
    best = int(np.argmin(recorder.val_losses))
    assert summary["epochs_run"] == len(recorder.digests) < params.epochs
    assert summary["best_epoch"] == best + 1 < summary["epochs_run"]
    assert summary["best_val_loss"] == pytest.approx(recorder.val_losses[best])
    assert digest == recorder.digests[best] != recorder.digests[-1]


def test_min_epochs_neither_stops_nor_keeps_an_earlier_best_epoch(tiny_train_params, tiny_training_set):
    # The same worsening validation as above: without the guard the best epoch is an early one.
    data = dict(tiny_training_set)
    data["val_labels"] = (3 - data["val_labels"]).astype(np.uint8)
    params = replace(tiny_train_params, epochs=8, patience=1, lr=0.01, flip=False, shift=0,
                     min_epochs=4)
    recorder = DigestPerEpoch()
    digest, summary = train_once(params, data, callbacks=[recorder])
    best = 4 + int(np.argmin(recorder.val_losses[4:]))
    assert summary["epochs_run"] >= 5
    assert summary["best_epoch"] == best + 1 >= 5
    assert digest == recorder.digests[best]


@pytest.mark.parametrize("stop_floor", [0.0, 0.75])
def test_stop_floor_lets_training_go_on_and_still_keeps_an_earlier_best(tiny_train_params, tiny_training_set,
                                                                       stop_floor):
    # The same worsening validation: patience 1 would end the run two epochs after an early best epoch.
    data = dict(tiny_training_set)
    data["val_labels"] = (3 - data["val_labels"]).astype(np.uint8)
    params = replace(tiny_train_params, epochs=8, patience=1, lr=0.01, flip=False, shift=0,
                     stop_floor=stop_floor)
    recorder = DigestPerEpoch()
    digest, summary = train_once(params, data, callbacks=[recorder])
    best = int(np.argmin(recorder.val_losses))
    assert best + 1 + params.patience < 6  # without a floor it would stop before epoch 6
    assert summary["epochs_run"] == max(stop_floor_epoch(stop_floor, params.epochs), best + 1 + params.patience)
    assert summary["best_epoch"] == best + 1  # the floor delays the stop, not the choice of the best epoch
    assert digest == recorder.digests[best]


def test_stop_floor_does_not_undo_another_callbacks_stop(tiny_train_params, tiny_training_set):
    params = replace(tiny_train_params, epochs=6, patience=10, stop_floor=1.0)
    _, summary = train_once(params, tiny_training_set, callbacks=[StopMidEpoch()])
    assert summary["epochs_run"] == 3


@pytest.mark.parametrize(("stop_floor", "epochs", "expected"), [
    (0.5, 87, 44),  # a 300-picture real set at the defaults: no stop before epoch 44
    (0.5, 45, 23),  # the built-in set
    (0.0, 10, 0),   # off: Keras' own early stopping
    (1.0, 10, 10),  # every planned epoch runs
])
def test_stop_floor_epoch(stop_floor, epochs, expected):
    assert stop_floor_epoch(stop_floor, epochs) == expected


@pytest.mark.parametrize(("images", "batch", "epochs", "min_steps", "expected"), [
    (357, 16, 40, 1000, 44),   # the built-in set: 23 steps an epoch, 40 epochs are 920 steps
    (357, 16, 40, 0, 40),      # no minimum: bare epochs
    (178, 16, 40, 1000, 84),   # a 300-picture real set: 12 steps an epoch
    (178, 16, 100, 1000, 100), # more epochs than the minimum needs
    (3, 16, 1, 10, 10),        # fewer images than a batch: one step an epoch
])
def test_budget_is_at_least_min_steps_optimizer_steps(images, batch, epochs, min_steps, expected):
    params = repo_params("train", batch_size=batch, epochs=epochs, min_steps=min_steps)
    assert planned_epochs(params, images) == expected
    assert planned_steps(params, images) == expected * -(-images // batch) >= min_steps


def test_training_runs_the_planned_steps_on_a_small_set(tiny_train_params, tiny_training_set):
    # 8 images in batches of 4: 2 steps an epoch, so 1 epoch with min_steps 6 becomes 3 epochs.
    params = replace(tiny_train_params, epochs=1, min_steps=6, patience=10, lr_schedule="cosine")
    _, summary = train_once(params, tiny_training_set)
    assert summary["epochs_planned"] == summary["epochs_run"] == 3
    assert summary["steps_run"] == 6


def test_model_for_training_counts_the_prior_from_the_given_rows_and_spans_their_planned_steps(
        tiny_train_params, tiny_training_set):
    from colorize.model.models import gray_level_log_prior

    gray, labels = tiny_training_set["train_gray"], tiny_training_set["train_labels"]
    params = replace(tiny_train_params, gray_prior=True, lr_schedule="cosine", epochs=3)
    make_deterministic(0)
    model = model_for_training(params, 16, 4, gray, labels)
    np.testing.assert_array_equal(model.get_layer("gray_prior").get_weights()[0],
                                  gray_level_log_prior(gray, labels, 4))
    # 8 images in batches of 4 for 3 epochs: the cosine reaches 1 % of the rate at step 6.
    assert planned_steps(params, len(gray)) == 6
    schedule = model.optimizer._learning_rate  # Keras keeps a schedule there (`learning_rate` reads its value)
    rate = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 5, 6)]
    assert rate[0] == pytest.approx(1e-3) and rate[1] > rate[2] == pytest.approx(1e-5, rel=1e-4)
    assert model.get_layer("gray_prior").get_weights()[0].shape == (256, 4)
    names = {layer.name for layer in model_for_training(replace(params, gray_prior=False), 16, 4, gray,
                                                        labels).layers}
    assert "gray_prior" not in names


def test_class_weights_for_follows_train_rebalance(tiny_train_params, tiny_training_set):
    labels = tiny_training_set["train_labels"]
    palette = np.array([[0, 0, 0], [90, 90, 90], [170, 170, 170], [255, 255, 255]], np.uint8)
    assert class_weights_for(replace(tiny_train_params, rebalance=0.0), labels, 4, palette) is None
    weights = class_weights_for(replace(tiny_train_params, rebalance=1.0), labels, 4, palette)
    counts = np.bincount(labels.reshape(-1), minlength=4)
    assert weights.shape == (4,)
    assert np.sum(counts / counts.sum() * weights) == pytest.approx(1.0)  # mean weight over pixels is 1
    # The rarest colour weighs the most.
    assert np.argmax(weights) == np.argmin(counts)


class AccuracyPerEpoch(DigestPerEpoch):
    def __init__(self):
        super().__init__()
        self.val_accuracies: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.val_accuracies.append(float(logs["val_accuracy"]))


def test_monitoring_validation_accuracy_keeps_the_most_accurate_epoch(tiny_train_params, tiny_training_set):
    data = dict(tiny_training_set)
    data["val_labels"] = (3 - data["val_labels"]).astype(np.uint8)  # learning the rule makes validation worse
    params = replace(tiny_train_params, epochs=6, patience=2, lr=0.01, flip=False, shift=0,
                     monitor="val_accuracy")
    recorder = AccuracyPerEpoch()
    digest, summary = train_once(params, data, callbacks=[recorder])
    best = int(np.argmax(recorder.val_accuracies))
    assert summary["best_epoch"] == best + 1
    assert summary["best_val_accuracy"] == pytest.approx(recorder.val_accuracies[best])
    assert digest == recorder.digests[best]
    # Stopped `patience` epochs after the best one (not before train.stop_floor's share of the planned
    # epochs), unless the run ended first.
    floor = stop_floor_epoch(params.stop_floor, params.epochs)
    assert summary["epochs_run"] == min(params.epochs, max(floor, best + 1 + params.patience))


PALETTE = np.array([[20, 40, 200], [200, 30, 30], [40, 180, 60], [240, 220, 40]], np.uint8)
GRAY_WEIGHTS = (0.21, 0.72, 0.07)


class DecodedPerEpoch(DigestPerEpoch):
    """Each epoch's model scored independently, the way evaluate scores it by default: decoded with
    evaluate's default decoding, the input's lightness kept, compared with the original RGB."""

    def __init__(self, gray, truth, labels):
        super().__init__()
        self.gray, self.truth, self.labels = gray, truth, labels
        self.scores: dict[str, list[float]] = {"psnr": [], "ciede2000": []}
        self.logged: list[dict[str, float]] = []
        self.tested: list[dict[str, float]] = []
        self.logged_loss: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        from colorize.evaluate.decoding import (
            DEFAULT_LIGHTNESS,
            DEFAULT_METHOD,
            DEFAULT_TEMPERATURE,
            decode,
            put_back_lightness,
        )
        from colorize.evaluate.metrics import image_metrics

        probs = np.asarray(self.model.predict(self.gray[..., None], verbose=0), np.float32)
        rgb = put_back_lightness(decode(probs, PALETTE, DEFAULT_METHOD, DEFAULT_TEMPERATURE), self.gray,
                                 DEFAULT_LIGHTNESS, GRAY_WEIGHTS)
        scores = image_metrics(rgb, self.truth)
        for name, values in self.scores.items():
            values.append(scores[name])
        self.logged.append({name: float(value) for name, value in logs.items() if name in DECODED_KEYS})
        # Keras' own test step on all validation images: what the non-decoded monitors log.
        self.tested.append(self.model.test_on_batch(self.gray[..., None], self.labels, return_dict=True))
        self.logged_loss.append({"loss": logs["val_loss"], "accuracy": logs["val_accuracy"]})


DECODED_KEYS = ("val_psnr", "val_ciede2000")


@pytest.mark.parametrize(("monitor", "pick"), [("val_psnr", np.argmax), ("val_ciede2000", np.argmin)])
def test_decoded_monitors_keep_the_epoch_evaluate_would_score_best(tiny_train_params, tiny_training_set,
                                                                   monitor, pick):
    # Validation colours follow the opposite rule of the training labels: learning the training rule
    # makes the decoded validation colours worse, so an early epoch wins and training stops early.
    data = dict(tiny_training_set)
    truth = PALETTE[3 - data["val_labels"]]
    # Batches of 3: the 4 validation images make a full and a short batch, weighed by image.
    params = replace(tiny_train_params, epochs=6, patience=2, lr=0.01, flip=False, shift=0, batch_size=3,
                     monitor=monitor)
    recorder = DecodedPerEpoch(data["val_gray"], truth, data["val_labels"])
    digest, summary = train_once(params, data, callbacks=[recorder],
                                 target=training.DecodedTarget(truth, PALETTE, GRAY_WEIGHTS))
    name = monitor.removeprefix("val_")
    # Only the monitored decoded measure is computed (each costs a decode per epoch), as evaluate scores it.
    assert [list(logged) for logged in recorder.logged] == [[monitor]] * summary["epochs_run"]
    # val_psnr is computed in float32 by a compiled function (colorize.model.monitor), the others as evaluate.
    tolerance = 1e-3 if monitor == "val_psnr" else 1e-9
    assert [logged[monitor] for logged in recorder.logged] == pytest.approx(recorder.scores[name], abs=tolerance)
    # The loss and accuracy come from the same forward pass as the decoded colours and equal the test step's.
    for logged, tested in zip(recorder.logged_loss, recorder.tested, strict=True):
        assert logged["loss"] == pytest.approx(float(tested["loss"]), rel=1e-5)
        assert logged["accuracy"] == pytest.approx(float(tested["accuracy"]), abs=1e-6)
    best = int(pick(recorder.scores[name]))
    assert best != int(np.argmin(recorder.val_losses))  # validation loss would keep another epoch
    assert summary["best_epoch"] == best + 1
    assert summary[f"best_{monitor}"] == pytest.approx(recorder.scores[name][best])
    assert digest == recorder.digests[best]
    floor = stop_floor_epoch(params.stop_floor, params.epochs)
    assert summary["epochs_run"] == min(params.epochs, max(floor, best + 1 + params.patience))


@pytest.mark.parametrize("monitor", ["val_loss", "val_psnr"])
def test_padding_for_several_devices_changes_no_validation_figure(tiny_train_params, tiny_training_set, monitor):
    # 4 validation images in batches of 3: a full batch and a batch of 1, which padding for two devices
    # makes 2 (one zero-weight copy). Both paths: Keras' test step, and the decoded monitor's one pass.
    data = tiny_training_set
    make_deterministic(0)
    model = compile_model(replace(tiny_train_params, batch_size=3), 16, 4)
    target = training.DecodedTarget(PALETTE[data["val_labels"]], PALETTE, GRAY_WEIGHTS)
    decoded = (monitor, target) if monitor in training.DECODED_MONITORS else None
    logs: dict[int, dict[str, float]] = {}
    for multiple_of in (1, 2):
        callback = training.Validation(
            training.PlainBatches(data["val_gray"], data["val_labels"], 3, multiple_of), decoded)
        callback.set_model(model)
        logs[multiple_of] = {}
        callback.on_epoch_end(0, logs[multiple_of])
    assert set(logs[2]) == set(logs[1]) >= {"val_loss", "val_accuracy"}
    for name, value in logs[1].items():
        assert logs[2][name] == pytest.approx(value, rel=1e-6), name


def test_a_decoded_monitor_without_its_target_is_refused(tiny_train_params, tiny_training_set):
    with pytest.raises(ValueError, match="val_psnr needs the validation images' RGB"):
        train_once(replace(tiny_train_params, monitor="val_psnr"), tiny_training_set)


class FakeLive:
    def __init__(self):
        self.metrics: list[tuple[str, float]] = []
        self.steps = 0

    def log_metric(self, name, value):
        self.metrics.append((name, value))

    def next_step(self):
        self.steps += 1


def test_live_logger_logs_every_metric_and_steps_once_per_epoch():
    live = FakeLive()
    logger = LiveLogger(live)
    logger.on_epoch_end(0, {"loss": np.float32(1.5), "val_loss": 2.0})
    logger.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.5})
    assert live.steps == 2
    assert live.metrics == [("train/loss", 1.5), ("eval/loss", 2.0), ("train/loss", 1.0), ("eval/loss", 1.5)]
    assert all(type(value) is float for _, value in live.metrics)


def test_training_bytes_follows_the_measured_cost_per_parameter():
    # Peak RSS measured by bench/train_throughput.py (TensorFlow CPU): 3.3 GB training 67 M parameters,
    # 11.7 GB training 340 M; the estimate must stay within 10% of both.
    for params, measured in ((67_142_976, 3.3e9), (340_000_000, 11.7e9)):
        assert abs(training_bytes(params) - measured) <= 0.1 * measured, (params, training_bytes(params))
    # The origin's model at 64x64 cannot train on a 24 GiB machine; at 32x32 it can.
    assert training_bytes(1_073_877_312) > 24 * 2**30 > training_bytes(67_142_976)


@pytest.mark.slow  # a third training; the branch runs when split.val_size is 0
def test_without_validation_images_training_loss_is_monitored(tiny_train_params, tiny_training_set):
    data = dict(tiny_training_set)
    data["val_gray"] = data["val_gray"][:0]
    data["val_labels"] = data["val_labels"][:0]
    _, summary = train_once(replace(tiny_train_params, epochs=1), data)
    assert summary["epochs_run"] == 1 and summary["best_epoch"] == 1
    assert "best_loss" in summary and "best_val_loss" not in summary
    assert np.isfinite(summary["best_loss"])


def _train_stage():
    spec = importlib.util.spec_from_file_location("train_stage", ROOT / "stages" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GIB = 2**30


@pytest.mark.parametrize(("arch", "size", "ram", "refused"), [
    ("seed", 64, 24 * GIB, True), ("seed", 64, 256 * GIB, False), ("seed", 16, 24 * GIB, False),
    ("unet", 36, 256 * GIB, True), ("unet", 32, 24 * GIB, False)])
def test_train_stage_refuses_what_cannot_run_before_any_work(tiny_train_params, arch, size, ram, refused):
    from colorize.core.errors import ParamError

    params = replace(tiny_train_params, arch=arch, unet_depth=3)
    check_fits = _train_stage().check_fits
    if not refused:
        check_fits(params, size, 32, memory_bytes=ram)
        return
    with pytest.raises(ParamError) as caught:
        check_fits(params, size, 32, memory_bytes=ram)
    message = str(caught.value)
    assert "\n" not in message and ("train.arch=seed" in message or "train.unet_depth" in message)
    if arch == "seed":
        assert "this machine has 24.0 GiB" in message


@pytest.mark.parametrize(("key", "value"), [("soft_targets", 5.0), ("chroma_weight", 0.5)])
def test_train_stage_refuses_a_cross_entropy_option_for_another_loss_before_any_work(tiny_train_params, key, value):
    from colorize.core.errors import ParamError

    check_fits = _train_stage().check_fits
    check_fits(replace(tiny_train_params, **{key: value}), 16, 4)
    with pytest.raises(ParamError, match=f"train.{key} is for train.loss categorical_crossentropy, got l1"):
        check_fits(replace(tiny_train_params, loss="l1", **{key: value}), 16, 4)


def test_train_stage_refuses_soft_targets_with_the_chroma_term(tiny_train_params):
    from colorize.core.errors import ParamError

    with pytest.raises(ParamError, match="train.soft_targets and train.chroma_weight do not combine"):
        _train_stage().check_fits(replace(tiny_train_params, soft_targets=5.0, chroma_weight=0.5), 16, 4)


@pytest.mark.parametrize(("key", "value", "loss_class"), [("soft_targets", 10.0, "SoftTargetCrossentropy"),
                                                         ("chroma_weight", 0.5, "DecodedChromaCrossentropy")])
def test_a_palette_aware_loss_trains_another_model(tiny_train_params, tiny_training_set, key, value, loss_class):
    """train.soft_targets and train.chroma_weight change the loss the model trains on (the palette places
    the targets, or the decoded colours); off (null, 0) is the one-hot cross-entropy."""
    palette = np.array([[0, 0, 0], [200, 30, 30], [210, 40, 40], [255, 255, 255]], np.uint8)
    digests = {}
    for setting in (None, value):
        params = tiny_train_params if setting is None else replace(tiny_train_params, **{key: setting})
        make_deterministic(0)
        data = tiny_training_set
        model = training.model_for_training(params, 16, 4, data["train_gray"], data["train_labels"],
                                            palette=palette)
        assert (model.loss.__class__.__name__ == loss_class) == (setting is not None)
        fit(model, params, (data["train_gray"], data["train_labels"]), (data["val_gray"], data["val_labels"]),
            None, verbose=0)
        digests[setting] = weights_digest(model)
    assert digests[None] != digests[value]
    with pytest.raises(ValueError, match="need the palette"):
        compile_model(replace(tiny_train_params, **{key: value}), 16, 4)


def test_a_non_finite_input_stops_training_with_one_line_before_anything_is_written(tiny_train_params,
                                                                                   tiny_training_set):
    data = dict(tiny_training_set)
    data["train_gray"] = data["train_gray"].copy()
    data["train_gray"][0] = np.inf  # one corrupt image
    logged = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logged.append(epoch)

    with pytest.raises(training.NonFiniteTraining) as caught:
        train_once(tiny_train_params, data, callbacks=[Record()])
    assert "\n" not in str(caught.value) and "epoch 1" in str(caught.value)
    assert logged == []  # stopped inside the first epoch: no metrics were ever logged


def test_weight_averaging_validates_and_keeps_the_averaged_weights(tiny_train_params, tiny_training_set):
    """`train.ema`: the epoch is chosen on the averaged weights, and those are what training returns."""
    params = replace(tiny_train_params, epochs=3, patience=3)
    plain, _ = train_once(params, tiny_training_set)
    model, summary = train_model(replace(params, ema=0.5), tiny_training_set)
    # The raw weights follow the same steps with or without the average: only keeping it differs.
    assert weights_digest(model) != plain
    scored = model.evaluate(tiny_training_set["val_gray"][..., None], tiny_training_set["val_labels"],
                            verbose=0, return_dict=True)
    assert scored["loss"] == pytest.approx(summary["best_val_loss"], rel=1e-6)


def test_check_finite_weights_refuses_a_nan_weight(tiny_train_params):
    model = compile_model(tiny_train_params, 16, 4)
    training.check_finite_weights(model)
    weights = model.get_weights()
    weights[0] = weights[0].copy()
    weights[0].flat[0] = np.nan
    model.set_weights(weights)
    with pytest.raises(training.NonFiniteTraining):
        training.check_finite_weights(model)


def test_the_train_stage_refuses_before_keras_or_tensorflow_is_imported(tmp_path):
    """The refusal costs no heavy import: it runs in a fresh interpreter that never loads Keras."""
    script = (
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'stages')!r})\n"
        f"spec = importlib.util.spec_from_file_location('train_stage', {str(ROOT / 'stages' / 'train.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "from dataclasses import replace\n"
        "from colorize.core.params import ParamError, load_section\n"
        f"params = replace(load_section('train', {str(ROOT / 'params.yaml')!r}), arch='seed', unet_depth=3)\n"
        "try:\n"
        "    module.check_fits(params, 64, 32, memory_bytes=8 * 2**30)\n"
        "except ParamError:\n"
        "    heavy = [name for name in ('keras', 'tensorflow', 'jax', 'dvclive') if name in sys.modules]\n"
        "    print('refused; loaded:', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "refused; loaded: []", result.stdout + result.stderr
