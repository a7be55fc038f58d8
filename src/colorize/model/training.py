"""Seeded, deterministic training with augmentation, class rebalancing and early stopping."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colorize.core.errors import NonFiniteTraining
from colorize.core.params import TrainParams
from colorize.evaluate.decoding import DEFAULT_TEMPERATURE, predicted_labels
from colorize.evaluate.metrics import ciede2000
from colorize.model.backend import import_keras
from colorize.model.devices import data_parallel_devices, precision
from colorize.model.models import build_model, make_loss, make_optimizer
from colorize.model.monitor import decoded_psnr_function, evaluate_scorer

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
    """Shuffled batches of (gray, labels[, per-pixel weights]) with random flips, shifts and quarter turns.

    Batch `index` is batch `index % len(self)` of epoch `index // len(self)`, and every random choice
    comes from (seed, epoch, batch), so a run is reproducible whatever the order or the read-ahead of
    evaluation. Keras sees one endless stream (`num_batches` is None; fit passes steps_per_epoch), so a
    single input iterator serves the whole fit: on the TensorFlow backend a finite data set gets a new
    tf.data iterator every epoch, and building it stalled the epoch's first batch for 1-3 s.
    `gray` and `labels` may be arrays or row readers (colorize.core.streaming) indexed by row positions.
    """

    def __init__(self, gray, labels, batch_size: int, seed: int, *,
                 flip: bool, shift: int, rotate: bool, class_weights: np.ndarray | None = None,
                 multiple_of: int = 1):
        super().__init__(workers=1, use_multiprocessing=False)
        self.gray, self.labels = gray, labels
        self.batch_size, self.seed = batch_size, seed
        self.flip, self.shift, self.rotate = flip, shift, rotate
        self.class_weights = class_weights
        self.multiple_of = multiple_of
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def order_for(self, epoch: int) -> np.ndarray:
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.gray)))
        return self._epoch_order[1]

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(len(self.gray) / self.batch_size)

    @property
    def num_batches(self) -> None:
        return None

    def __getitem__(self, index: int):
        epoch, batch = divmod(index, len(self))
        rows = self.order_for(epoch)[batch * self.batch_size:(batch + 1) * self.batch_size]
        x, y = np.array(self.gray[rows]), np.array(self.labels[rows])
        rng = np.random.default_rng([self.seed, epoch, batch])
        if self.flip:
            flipped = rng.random(len(rows)) < 0.5
            x[flipped] = x[flipped, :, ::-1]
            y[flipped] = y[flipped, :, ::-1]
        if self.shift:
            offsets = rng.integers(-self.shift, self.shift + 1, size=(len(rows), 2))
            for i, (dy, dx) in enumerate(offsets):
                x[i:i + 1] = shift_images(x[i:i + 1], int(dy), int(dx))
                y[i:i + 1] = shift_images(y[i:i + 1], int(dy), int(dx))
        if self.rotate:  # drawn last, so that runs without it keep their flips and shifts
            for i, turns in enumerate(rng.integers(0, 4, size=len(rows))):
                x[i] = np.rot90(x[i], int(turns))
                y[i] = np.rot90(y[i], int(turns))
        x = x[..., None]
        if self.class_weights is None and self.multiple_of == 1:
            return x, y
        weights = (np.ones(y.shape, np.float32) if self.class_weights is None
                   else self.class_weights[y].astype(np.float32))
        return pad_batch(x, y, weights, self.multiple_of)


def pad_batch(x: np.ndarray, y: np.ndarray, weights: np.ndarray, multiple_of: int):
    """Pad a short batch to a multiple of the device count with zero-weight copies of its first rows
    (data parallelism splits a batch evenly over the devices)."""
    missing = -len(x) % multiple_of
    if missing:
        take = np.arange(missing) % len(x)
        x, y = np.concatenate([x, x[take]]), np.concatenate([y, y[take]])
        weights = np.concatenate([weights, np.zeros_like(weights[take])])
    return x, y, weights


class PlainBatches:
    """Batches of (gray, labels[, weights]) in stored order, read as needed: validation data that is
    never held whole in memory."""

    def __init__(self, gray, labels, batch_size: int, multiple_of: int = 1):
        self.gray, self.labels, self.batch_size, self.multiple_of = gray, labels, batch_size, multiple_of

    def __len__(self) -> int:
        return math.ceil(len(self.gray) / self.batch_size)

    def __getitem__(self, index: int):
        rows = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, len(self.gray)))
        x, y = np.array(self.gray[rows])[..., None], np.array(self.labels[rows])
        if self.multiple_of == 1:
            return x, y
        return pad_batch(x, y, np.ones(y.shape, np.float32), self.multiple_of)


# Monitors scored on the decoded colours (what evaluate reports): name -> (palette, temperature, gray weights)
# -> a per-image scorer of (probs, gray, truth). They cost a decode of the validation set per epoch, so only
# the monitored one is computed; val_psnr's is compiled (colorize.model.monitor).
DECODED_MONITORS = {"val_psnr": decoded_psnr_function, "val_ciede2000": evaluate_scorer(ciede2000)}
# Monitors whose larger values are better (the others: smaller).
HIGHER_IS_BETTER = ("accuracy", "psnr")


def monitor_mode(monitor: str) -> str:
    return "max" if monitor.endswith(HIGHER_IS_BETTER) else "min"


@dataclass(frozen=True)
class DecodedTarget:
    """What a decoded monitor compares against: the validation images' original RGB (an array or a row
    reader, rows in the order of the validation gray), the palette (K, 3) uint8 the classes index, and the
    grayscale stage's weights (the input's lightness goes back by them, as evaluate's default does)."""

    rgb: Any
    palette: np.ndarray
    gray_weights: Sequence[float]


class Validation(keras.callbacks.Callback):
    """Score the validation batches at each epoch's end and add `val_*` to the epoch's logs (before
    early stopping and the loggers read them).

    It calls the model's compiled test step on each batch: Keras' own validation builds a new input
    iterator every epoch, which on the TensorFlow backend costs as much again as the work. With `decoded`
    (a name of DECODED_MONITORS and its target), and on a batch padded for several devices, it runs one
    forward pass instead and takes the loss, the accuracy and the decoded monitor from the same
    probabilities, over the real rows only (Keras' accuracy ignores sample weights, so padding rows would
    count). The monitor decodes them as evaluate does by default (decoding.DEFAULT_METHOD at
    DEFAULT_TEMPERATURE, the input's lightness put back by DEFAULT_LIGHTNESS) and scores them against the
    original RGB; `val_psnr` does so in one compiled computation (colorize.model.monitor: evaluate's figure
    within 0.001 dB, at a fraction of the NumPy decoding's cost), `val_ciede2000` with evaluate's own
    functions.
    """

    def __init__(self, batches: PlainBatches, decoded: tuple[str, DecodedTarget] | None = None):
        super().__init__()
        self.batches = batches
        self.decoded = decoded
        self.score_decoded = (None if decoded is None
                              else DECODED_MONITORS[decoded[0]](decoded[1].palette, DEFAULT_TEMPERATURE,
                                                                       decoded[1].gray_weights))
        self.validation_loss: Any = None

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        self.validation_loss = compiled_validation_loss(model)

    def one_pass_scores(self, batch: tuple[np.ndarray, ...], rows: np.ndarray) -> dict[str, float]:
        """Loss, accuracy and the decoded monitor (if any) of one batch from one forward pass; means over
        the batch's `rows` (the batch may carry padding rows after them, which are left out)."""
        x, y = batch[0], batch[1]
        n = len(rows)
        probs = self.model.predict_on_batch(x)[:n]
        loss = float(keras.ops.convert_to_numpy(self.validation_loss(x[:n], y[:n], probs)))
        probs = np.asarray(keras.ops.convert_to_numpy(probs), dtype=np.float32)
        scores = {"loss": loss, "accuracy": float(np.mean(predicted_labels(probs) == y[:n]))}
        if self.decoded is not None:
            name, target = self.decoded
            per_image = self.score_decoded(probs, x[:n, ..., 0], np.asarray(target.rgb[rows]))
            scores[name.removeprefix("val_")] = float(np.mean(per_image))
        return scores

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        totals: dict[str, float] = {}
        images = len(self.batches.gray)
        for index in range(len(self.batches)):
            start = index * self.batches.batch_size
            count = min(self.batches.batch_size, images - start)
            batch = self.batches[index]
            if self.decoded is None and len(batch[0]) == count:
                scores = self.model.test_on_batch(*batch, return_dict=True)
            else:
                scores = self.one_pass_scores(batch, np.arange(start, start + count))
            for name, value in scores.items():  # means over images, as Keras' evaluate weighs them
                totals[name] = totals.get(name, 0.0) + float(value) * count / images
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in totals.items()})


def compiled_validation_loss(model: keras.Model):
    """(x, y, predicted probabilities) -> the model's loss as its test step computes it (`compute_loss`),
    as a TensorFlow graph on that backend: run eagerly, its ~40 small ops cost 27 ms a batch of 16 at 64x64
    on a 2-core CPU, a third of the forward pass."""

    def loss(x, y, probs):
        return model.compute_loss(x=x, y=y, y_pred=probs, training=False)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(loss, reduce_retracing=True)
    return loss


def weights_digest(model: keras.Model) -> str:
    """sha256 over all weight bytes: equal digests mean bitwise-identical models."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def planned_epochs(params: TrainParams, train_images: int) -> int:
    """`train.epochs`, or more when those are fewer than `train.min_steps` optimizer steps: on a small
    data set bare epochs are too few updates to fit it."""
    steps_per_epoch = max(1, math.ceil(train_images / params.batch_size))
    return max(params.epochs, math.ceil(params.min_steps / steps_per_epoch))


def stop_floor_epoch(stop_floor: float, epochs: int) -> int:
    """The first epoch (1-based) after which early stopping may end a run of `epochs` planned epochs."""
    return math.ceil(stop_floor * epochs)


class FlooredEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping that lets training go on until `stop_from_epoch` epochs have run, however long
    the monitored measure has not improved; the best epoch is still kept from any epoch. On a cosine
    schedule the rate is high early on: a slow validation curve there (twemoji, session 29) ended runs at
    the gray prior's start."""

    def __init__(self, *, stop_from_epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.stop_from_epoch = stop_from_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        stopping_already = self.model.stop_training  # another callback's stop is not ours to undo
        super().on_epoch_end(epoch, logs)
        if not stopping_already and self.model.stop_training and epoch + 1 < self.stop_from_epoch:
            self.model.stop_training = False
            self.stopped_epoch = 0


def planned_steps(params: TrainParams, train_images: int) -> int:
    return planned_epochs(params, train_images) * max(1, math.ceil(train_images / params.batch_size))


def compile_model(params: TrainParams, size: int, k: int, total_steps: int | None = None,
                  prior: np.ndarray | None = None, palette: np.ndarray | None = None) -> keras.Model:
    """The model, compiled; `total_steps` (the planned optimizer steps) sets the length of a cosine
    learning-rate schedule (`train.lr_schedule`); `prior` is the U-Net's gray-level log-prior
    (`train.gray_prior`); `palette` (K, 3) uint8 RGB places the soft targets of `train.soft_targets` and the
    colours of `train.chroma_weight`'s term."""
    soft_targets = chroma = None
    if params.soft_targets is not None or params.chroma_weight:
        if palette is None:
            raise ValueError("train.soft_targets and train.chroma_weight need the palette")
        from colorize.core.colour import rgb_to_lab
        from colorize.evaluate.decoding import DEFAULT_TEMPERATURE
        from colorize.model.models import soft_target_matrix

        palette_lab = rgb_to_lab(palette)
        if params.soft_targets is not None:
            soft_targets = soft_target_matrix(palette_lab, params.soft_targets)
        if params.chroma_weight:
            chroma = (palette_lab, params.chroma_weight, DEFAULT_TEMPERATURE)
    with precision(params.precision):
        model = build_model(params.arch, size, k, dropout=params.dropout,
                            filters=params.unet_filters, depth=params.unet_depth, prior=prior)
    decay_steps = total_steps if params.lr_schedule == "cosine" else None
    model.compile(optimizer=make_optimizer(params.optimizer, params.lr, decay_steps=decay_steps,
                                           ema=params.ema, weight_decay=params.weight_decay),
                  loss=make_loss(params.loss, soft_targets, chroma),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def class_weights_for(params: TrainParams, labels, k: int, palette: np.ndarray) -> np.ndarray | None:
    """The per-colour loss weights of `train.rebalance` from the training labels (an array or a row
    reader), or None when it is 0; `palette` (K, 3) uint8 RGB sets the smoothing's colour distances."""
    if params.rebalance <= 0:
        return None
    from colorize.core.colour import rgb_to_lab
    from colorize.model.rebalance import class_weights_from_counts, count_labels_streamed

    return class_weights_from_counts(count_labels_streamed(labels, k), params.rebalance,
                                     palette_lab=rgb_to_lab(palette))


def model_for_training(params: TrainParams, size: int, k: int, gray, labels,
                       palette: np.ndarray | None = None) -> keras.Model:
    """The compiled model the train stage fits on these training rows (arrays or row readers): its
    learning-rate schedule spans their planned steps, and the U-Net's gray-level prior
    (`train.gray_prior`) is counted from them; `palette` (K, 3) uint8 for `train.soft_targets` and
    `train.chroma_weight`. Seed first (make_deterministic): the weights are drawn here."""
    prior = None
    if params.gray_prior and params.arch == "unet":
        from colorize.model.models import gray_level_log_prior

        prior = gray_level_log_prior(gray, labels, k)
    return compile_model(params, size, k, total_steps=planned_steps(params, len(gray)), prior=prior,
                         palette=palette)


def fit(model: keras.Model, params: TrainParams, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray], class_weights: np.ndarray | None,
        callbacks: Sequence[keras.callbacks.Callback] = (), verbose: int | str = "auto",
        target: DecodedTarget | None = None) -> dict[str, Any]:
    """Train for `planned_epochs` with early stopping on `train.monitor` (validation loss, pixel accuracy,
    or the decoded colours' PSNR or CIEDE2000, which need `target`; best weights restored); return a
    summary."""
    devices = data_parallel_devices()
    batches = AugmentedBatches(train[0], train[1], params.batch_size, params.seed,
                               flip=params.flip, shift=params.shift, rotate=params.rotate,
                               class_weights=class_weights,
                               multiple_of=devices)
    has_val = len(val[0]) > 0
    decoded = None
    if has_val and params.monitor in DECODED_MONITORS:
        if target is None:
            raise ValueError(f"train.monitor {params.monitor} needs the validation images' RGB and the palette")
        decoded = (params.monitor, target)
    validation = [Validation(PlainBatches(val[0], val[1], params.batch_size, devices), decoded)] if has_val else []
    # Without validation images: the training measure of the same name; the decoded ones have none, so
    # the training loss.
    monitor = params.monitor if has_val else ("loss" if params.monitor in DECODED_MONITORS
                                              else params.monitor.removeprefix("val_"))
    epochs = planned_epochs(params, len(train[0]))
    stopper = FlooredEarlyStopping(monitor=monitor, mode=monitor_mode(monitor),
                                   patience=params.patience, restore_best_weights=True,
                                   # Neither stop nor keep a best epoch before this: a strong
                                   # start (the gray prior) must not win at epoch 1.
                                   start_from_epoch=params.min_epochs,
                                   stop_from_epoch=stop_floor_epoch(params.stop_floor, epochs))
    # With `train.ema`, validation, early stopping and the loggers see the averaged weights (swapped in
    # at each epoch's end, back out at the next one's start), so the best epoch's average is what is kept.
    averaged = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if params.ema is not None else []
    run_epochs = fit_step_by_step if feeds_arrays(devices) else fit_with_keras
    history = run_epochs(model, batches, epochs, [StopOnNonFinite(), *averaged, *validation, stopper, *callbacks],
                         verbose)
    monitored = np.asarray(history.history[monitor])
    # The first best epoch, as EarlyStopping keeps it (ties do not count as improvements).
    skip = min(params.min_epochs, len(monitored) - 1)
    considered = monitored[skip:]
    best_epoch = skip + int(np.argmax(considered) if monitor_mode(monitor) == "max" else np.argmin(considered))
    loss_key = "val_loss" if has_val else "loss"
    return {
        "epochs_planned": epochs,
        "epochs_run": len(monitored),
        "steps_run": len(monitored) * len(batches),
        "best_epoch": best_epoch + 1,
        "best_" + loss_key: float(history.history[loss_key][best_epoch]),
        **{f"best_{name}": float(values[best_epoch]) for name, values in history.history.items()
           if name.endswith(("accuracy", "psnr", "ciede2000"))},
    }


def feeds_arrays(devices: int) -> bool:
    """Whether fit hands each batch to the compiled train step as arrays (fit_step_by_step): on
    TensorFlow with one device. JAX's fit keeps its state on the devices between steps, and data
    parallelism splits Keras' own input."""
    return keras.backend.backend() == "tensorflow" and devices == 1


def fit_with_keras(model: keras.Model, batches: AugmentedBatches, epochs: int,
                   callbacks: list[keras.callbacks.Callback], verbose: int | str) -> keras.callbacks.History:
    return model.fit(batches, steps_per_epoch=len(batches),
                     shuffle=False,  # the batches are already shuffled, per epoch, from the seed
                     epochs=epochs, callbacks=callbacks, verbose=verbose)


def fit_step_by_step(model: keras.Model, batches: AugmentedBatches, epochs: int,
                     callbacks: list[keras.callbacks.Callback], verbose: int | str) -> keras.callbacks.History:
    """Keras' TensorFlow `fit` loop, written out with its own pieces (CallbackList, reset_metrics,
    train_function, get_metrics_result), but each batch handed to the compiled train step as arrays.

    `fit` reads batches through a tf.data generator reader, and its step traced first inside that reader
    cost ~1.5x for the whole run. Fed as arrays, the default train stage ran 1.23x faster on a 2-core CPU
    (527 -> 430 s, back to back; README, Benchmarks), though in one process on one trace the two feeds time
    the same (bench/fit_feeds.py --interleaved). Same steps, callbacks, logs and History as `fit` on
    `batches`' endless stream, and the same trained bits (tested).
    """
    steps = len(batches)
    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                                 verbose=verbose, epochs=epochs, steps=steps, model=model)
    # What fit and train_on_batch do first: the metrics', the loss's and the optimizer's variables made
    # outside the traced step (Keras' private method: the test against model.fit guards it).
    model._maybe_symbolic_build(data_batch=batches[0])
    model.stop_training = False
    model.make_train_function()
    callback_list.on_train_begin()
    epoch_logs: dict[str, Any] | None = None
    for epoch in range(epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps):
            callback_list.on_train_batch_begin(step)
            logs = model.train_function(iter([batches[epoch * steps + step]]))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = dict(model.get_metrics_result())
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


class StopOnNonFinite(keras.callbacks.Callback):
    """End training at the first non-finite loss, with one line saying where (Keras' TerminateOnNaN
    only stops, and the NaN model would then be saved)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteTraining(f"training loss became {float(loss)} at batch {batch + 1} of epoch "
                                    f"{self.epoch + 1}; nothing was written (check the inputs, or lower "
                                    f"train.lr)")

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                raise NonFiniteTraining(f"{name} became {float(value)} at epoch {epoch + 1}; nothing was "
                                        f"written (check the inputs, or lower train.lr)")


def check_finite_weights(model: keras.Model) -> None:
    if not all(np.isfinite(weight).all() for weight in model.get_weights()):
        raise NonFiniteTraining("the trained weights hold NaN or infinite values; nothing was written")


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


