"""Seeded, deterministic training with augmentation, class rebalancing and early stopping."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from colorize.backend import import_keras
from colorize.models import build_model, make_loss, make_optimizer

keras = import_keras()


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and the backend; on TensorFlow also force deterministic ops."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift (N, S, S[, C]) by (dy, dx) pixels, repeating the edge into the uncovered border."""
    if dy == 0 and dx == 0:
        return images
    pad = [(0, 0), (abs(dy), abs(dy)), (abs(dx), abs(dx))] + [(0, 0)] * (images.ndim - 3)
    padded = np.pad(images, pad, mode="edge")
    s_y, s_x = images.shape[1], images.shape[2]
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[:, top:top + s_y, left:left + s_x]


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches of (gray, labels[, per-pixel weights]) with random flips and shifts.

    Every random choice comes from (seed, epoch, batch), so a run is reproducible whatever the
    batch order of evaluation.
    """

    def __init__(self, gray: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, *,
                 flip: bool, shift: int, class_weights: np.ndarray | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.gray, self.labels = gray, labels
        self.batch_size, self.seed = batch_size, seed
        self.flip, self.shift = flip, shift
        self.class_weights = class_weights
        self.epoch = 0
        self.order = self._order_for(0)

    def _order_for(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.gray))

    def __len__(self) -> int:
        return math.ceil(len(self.gray) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self.gray[rows].copy(), self.labels[rows].copy()
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.flip:
            flipped = rng.random(len(rows)) < 0.5
            x[flipped] = x[flipped, :, ::-1]
            y[flipped] = y[flipped, :, ::-1]
        if self.shift:
            offsets = rng.integers(-self.shift, self.shift + 1, size=(len(rows), 2))
            for i, (dy, dx) in enumerate(offsets):
                x[i:i + 1] = shift_images(x[i:i + 1], int(dy), int(dx))
                y[i:i + 1] = shift_images(y[i:i + 1], int(dy), int(dx))
        x = x[..., None]
        if self.class_weights is None:
            return x, y
        return x, y, self.class_weights[y]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order_for(self.epoch)


def weights_digest(model: keras.Model) -> str:
    """sha256 over all weight bytes: equal digests mean bitwise-identical models."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def planned_epochs(params: dict[str, Any], train_images: int) -> int:
    """`train.epochs`, or more when those are fewer than `train.min_steps` optimizer steps: on a small
    data set bare epochs are too few updates to fit it."""
    steps_per_epoch = max(1, math.ceil(train_images / params["batch_size"]))
    return max(params["epochs"], math.ceil(params["min_steps"] / steps_per_epoch))


def planned_steps(params: dict[str, Any], train_images: int) -> int:
    return planned_epochs(params, train_images) * max(1, math.ceil(train_images / params["batch_size"]))


def compile_model(params: dict[str, Any], size: int, k: int, total_steps: int | None = None,
                  prior: np.ndarray | None = None) -> keras.Model:
    """The model, compiled; `total_steps` (the planned optimizer steps) sets the length of a cosine
    learning-rate schedule (`train.lr_schedule`); `prior` is the U-Net's gray-level log-prior
    (`train.gray_prior`)."""
    model = build_model(params["arch"], size, k, dropout=params["dropout"],
                        filters=params["unet_filters"], depth=params["unet_depth"], prior=prior)
    decay_steps = total_steps if params.get("lr_schedule") == "cosine" else None
    model.compile(optimizer=make_optimizer(params["optimizer"], params["lr"], decay_steps=decay_steps),
                  loss=make_loss(params["loss"]),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def fit(model: keras.Model, params: dict[str, Any], train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray], class_weights: np.ndarray | None,
        callbacks: Sequence[keras.callbacks.Callback] = (), verbose: int | str = "auto") -> dict[str, Any]:
    """Train for `planned_epochs` with early stopping on `train.monitor` (validation loss or pixel
    accuracy; best weights restored); return a summary."""
    batches = AugmentedBatches(train[0], train[1], params["batch_size"], params["seed"],
                               flip=params["flip"], shift=params["shift"], class_weights=class_weights)
    has_val = len(val[0]) > 0
    monitor = params["monitor"] if has_val else params["monitor"].removeprefix("val_")
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, mode="max" if monitor.endswith("accuracy") else "min",
                                            patience=params["patience"], restore_best_weights=True)
    epochs = planned_epochs(params, len(train[0]))
    history = model.fit(
        batches,
        validation_data=(val[0][..., None], val[1]) if has_val else None,
        epochs=epochs,
        callbacks=[stopper, *callbacks],
        verbose=verbose,
    )
    monitored = np.asarray(history.history[monitor])
    # The first best epoch, as EarlyStopping keeps it (ties do not count as improvements).
    best_epoch = int(np.argmax(monitored) if monitor.endswith("accuracy") else np.argmin(monitored))
    loss_key = "val_loss" if has_val else "loss"
    return {
        "epochs_planned": epochs,
        "epochs_run": len(monitored),
        "steps_run": len(monitored) * len(batches),
        "best_epoch": best_epoch + 1,
        "best_" + loss_key: float(history.history[loss_key][best_epoch]),
        **{f"best_{name}": float(values[best_epoch]) for name, values in history.history.items()
           if name.endswith("accuracy")},
    }


class LiveLogger(keras.callbacks.Callback):
    """DVCLive's Keras callback without its TensorFlow import, so any Keras backend can log."""

    def __init__(self, live: Any):
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        from dvclive.utils import standardize_metric_name

        for name, value in (logs or {}).items():
            self.live.log_metric(standardize_metric_name(name, "dvclive.keras"), float(value))
        self.live.next_step()


def training_bytes(param_count: int) -> int:
    """Peak memory to train a model on the TensorFlow CPU backend, as measured by
    bench/train_throughput.py: about 32 bytes per parameter (fp32 weights, gradients, two optimizer
    slots and temporaries: 3.3 GB for 67 M parameters, 11.7 GB for 340 M) plus ~1 GiB for the runtime."""
    return param_count * 32 + 2**30


def total_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
