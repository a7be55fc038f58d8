"""Model architectures (Keras 3, backend-agnostic): the origin's `seed` model and the default `unet`.

Both map a gray image (S, S, 1) in [0, 1] to per-pixel softmax probabilities (S, S, K).
"""

from __future__ import annotations

import numpy as np

from colorize.model.backend import import_keras

keras = import_keras()
layers, ops = keras.layers, keras.ops

ARCHS = ("unet", "seed")


def build_seed(size: int, k: int, dropout: float) -> keras.Model:
    """The origin exactly: Conv2D(32, 3x3, stride 1, ReLU) -> Dense(S*S, ReLU) -> Dropout -> Dense(S*S*K)
    -> per-pixel softmax. 'same' padding is what gives the origin's 1,073,877,312 parameters."""
    inputs = keras.Input((size, size, 1), name="gray")
    x = layers.Conv2D(32, 3, strides=1, padding="same", activation="relu", name="conv")(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(size * size, activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(size * size * k, name="logits")(x)
    x = layers.Reshape((size, size, k), name="per_pixel")(x)
    outputs = layers.Softmax(axis=-1, name="probabilities", dtype="float32")(x)  # float32 under bf16 too
    return keras.Model(inputs, outputs, name="seed")


@keras.saving.register_keras_serializable(package="colorize")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization, trained through TensorFlow's fused kernel on the TensorFlow backend.

    Keras 3 computes the training-time statistics and the normalisation as a dozen separate ops; on
    TensorFlow's CPU they took about a fifth of a U-Net training step. TensorFlow's fused kernel
    (FusedBatchNormV3) normalises the same way in one op; the variance it returns is Bessel-corrected,
    so it is scaled back to Keras' biased one before the moving averages. Inference, other backends,
    masks and anything but float32 NHWC take Keras' own path; the weights are Keras' own.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.scale and self.center
                and not self.renorm and not self.synchronized
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = ops.cast(ops.prod(ops.shape(inputs)[:-1]), variance.dtype)
        variance = variance * ((count - 1.0) / count)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def _conv_block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = FusedBatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


GRAY_LEVELS = 256


@keras.saving.register_keras_serializable(package="colorize")
class GrayLevelPrior(layers.Layer):
    """Per-pixel logits looked up by the pixel's gray level: a trainable (levels, K) table.

    Initialised with the log of the training split's colour frequencies per gray level, it is the
    context-free gray lookup as logits: added to the U-Net's logits, the model starts from the lookup and
    learns from context only what the lookup gets wrong.
    """

    def __init__(self, k: int, levels: int = GRAY_LEVELS, **kwargs):
        super().__init__(**kwargs)
        self.k, self.levels = k, levels

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.levels, self.k), initializer="zeros", name="table")

    def call(self, gray):
        level = ops.cast(ops.round(ops.clip(gray[..., 0], 0.0, 1.0) * (self.levels - 1)), "int32")
        levels, k = self.levels, self.k

        # `take`'s own gradient is one table row per pixel (16 x 64 x 64 rows at the defaults), which the
        # optimizer sums into the table once per slot it updates (twice for Adam): ~10 % of a CPU step.
        # Summed here, once, per gray level.
        @ops.custom_gradient
        def lookup(table):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return ops.segment_sum(ops.reshape(upstream, (-1, k)), ops.reshape(level, (-1,)),
                                       num_segments=levels)

            return ops.take(table, level, axis=0), grad

        return lookup(ops.copy(self.table))  # a plain tensor: TensorFlow refuses variables here when eager

    def get_config(self):
        return {**super().get_config(), "k": self.k, "levels": self.levels}


def gray_level_log_prior(gray01: np.ndarray, labels: np.ndarray, k: int, levels: int = GRAY_LEVELS,
                         smoothing: float = 1.0) -> np.ndarray:
    """log P(colour | gray level) on training pixels, (levels, K) float32; add-`smoothing` counts, and a
    level never seen borrows its nearest seen level's counts."""
    counts = np.zeros(levels * k, dtype=np.int64)
    chunk = 1024  # images at a time: works on arrays and on streamed rows (colorize.core.streaming.ShardedRows)
    for start in range(0, len(gray01), chunk):
        rows = np.arange(start, min(start + chunk, len(gray01)))
        level = np.rint(np.clip(np.asarray(gray01[rows]), 0.0, 1.0) * (levels - 1)).astype(np.int64).reshape(-1)
        counts += np.bincount(level * k + np.asarray(labels[rows]).reshape(-1).astype(np.int64),
                              minlength=levels * k)
    counts = counts.reshape(levels, k).astype(np.float64)
    seen = np.flatnonzero(counts.sum(axis=1))
    if len(seen):
        nearest = seen[np.abs(np.arange(levels)[:, None] - seen[None, :]).argmin(axis=1)]
        counts = counts[nearest]
    counts += smoothing
    return np.log(counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)


def build_unet(size: int, k: int, filters: int, depth: int, prior: np.ndarray | None = None) -> keras.Model:
    """Fully convolutional encoder-decoder with skip connections and a per-pixel softmax over K.

    Filters double at each of `depth` downsamplings; `size` must be divisible by 2**depth. With `prior`
    ((levels, K) log-probabilities per gray level), a `GrayLevelPrior` table starting at it is added to
    the logits.
    """
    if size % (2**depth):
        raise ValueError(f"train.unet_depth={depth} needs an image size divisible by {2**depth}, got {size}")
    inputs = keras.Input((size, size, 1), name="gray")
    # Centre the input so BatchNorm-free first convolutions start well conditioned.
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(inputs)
    skips = []
    for level in range(depth):
        x = _conv_block(x, filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(x, filters * 2**depth, "bottleneck")
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, filters * 2**level, f"decode{level}")
    x = layers.Conv2D(k, 1, name="logits")(x)
    if prior is not None:
        table = GrayLevelPrior(k, levels=len(prior), name="gray_prior")
        x = layers.Add(name="logits_with_prior")([x, table(inputs)])
        table.set_weights([np.asarray(prior, dtype=np.float32)])
    outputs = layers.Softmax(axis=-1, name="probabilities", dtype="float32")(x)  # float32 under bf16 too
    return keras.Model(inputs, outputs, name="unet")


def build_model(arch: str, size: int, k: int, *, dropout: float = 0.5, filters: int = 16,
                depth: int = 3, prior: np.ndarray | None = None) -> keras.Model:
    if arch == "seed":
        return build_seed(size, k, dropout)
    if arch == "unet":
        return build_unet(size, k, filters, depth, prior)
    raise ValueError(f"train.arch must be one of {', '.join(ARCHS)}, got {arch!r}")


@keras.saving.register_keras_serializable(package="colorize")
def l1_loss(y_true, y_pred):
    """The origin's loss: mean |one-hot label - softmax| over classes, per pixel."""
    k = ops.shape(y_pred)[-1]
    one_hot = ops.one_hot(ops.cast(y_true, "int32"), k, dtype=y_pred.dtype)
    return ops.mean(ops.abs(one_hot - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="colorize")
def seed_ordinal_loss(y_true, y_pred):
    """An ordinal reading of the origin's printed loss, mean |label - int(31 * sigmoid(output))|: the
    palette index taken as a number. `int()` has no gradient, so the expected index under the softmax,
    sum_k k * p_k, stands in for it: |label - sum_k k * p_k| per pixel, in palette-index units. The
    palette is sorted by lightness, so neighbouring indices are neighbouring lightnesses."""
    k = ops.shape(y_pred)[-1]
    expected = ops.sum(y_pred * ops.arange(k, dtype=y_pred.dtype), axis=-1)
    return ops.abs(ops.cast(y_true, y_pred.dtype) - expected)


# Zhang, Isola & Efros 2016 spread each pixel's target over its 5 nearest palette colours.
SOFT_TARGET_NEIGHBOURS = 5


def soft_target_matrix(palette_lab: np.ndarray, sigma: float,
                       neighbours: int = SOFT_TARGET_NEIGHBOURS) -> np.ndarray:
    """(K, K) float32: row c is the training target of a pixel of colour c, its mass spread over the
    `neighbours` palette colours nearest to c in CIELAB (c included) with Gaussian weights of the
    distance (`sigma`, CIELAB units), summing to 1 (Zhang et al.'s soft encoding)."""
    lab = np.asarray(palette_lab, dtype=np.float64)
    distance_sq = np.sum((lab[:, None, :] - lab[None, :, :]) ** 2, axis=-1)
    nearest = np.argsort(distance_sq, axis=1, kind="stable")[:, :min(neighbours, len(lab))]
    rows = np.arange(len(lab))[:, None]
    matrix = np.zeros_like(distance_sq)
    matrix[rows, nearest] = np.exp(-distance_sq[rows, nearest] / (2.0 * sigma * sigma))
    return (matrix / matrix.sum(axis=1, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="colorize")
class SoftTargetCrossentropy(keras.losses.Loss):
    """Cross-entropy against soft targets: a pixel labelled c is scored against row c of `targets`
    (soft_target_matrix) instead of a one-hot c; per pixel, so per-pixel sample weights apply."""

    def __init__(self, targets, name: str = "soft_target_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.targets = np.asarray(targets, dtype=np.float32)

    def call(self, y_true, y_pred):
        soft = ops.take(ops.convert_to_tensor(self.targets, dtype=y_pred.dtype), ops.cast(y_true, "int32"), axis=0)
        return ops.categorical_crossentropy(soft, y_pred)

    def get_config(self) -> dict:
        return {**super().get_config(), "targets": self.targets.tolist()}


def annealed_weights(probs, temperature: float):
    """Keras ops: probabilities (..., K) re-weighted as decoding.annealed_probabilities does, softmax(log p / T),
    the weights of evaluate's annealed mean; used by the decoded monitor and the chroma loss term."""
    logits = ops.log(probs)
    logits = (logits - ops.max(logits, axis=-1, keepdims=True)) / max(temperature, 1e-30)
    weights = ops.exp(logits)
    return weights / ops.sum(weights, axis=-1, keepdims=True)


# The chroma term's squared CIELAB distance is counted in units of 10 (neighbouring palette colours lie
# ~15 apart), so that its weight is of the order of the cross-entropy's.
CHROMA_UNIT = 10.0


@keras.saving.register_keras_serializable(package="colorize")
class DecodedChromaCrossentropy(keras.losses.Loss):
    """Cross-entropy plus `weight` x the squared CIELAB a/b distance (in units of CHROMA_UNIT) between the
    colour evaluate decodes from the probabilities (their annealed mean at `temperature` over the palette's
    CIELAB colours) and the pixel's palette colour: the cross-entropy trains which colour, the chroma term
    what evaluate's decoding makes of the whole distribution. Only a and b: evaluate keeps the input's
    lightness. Per pixel, so per-pixel sample weights apply."""

    def __init__(self, palette_lab, weight: float, temperature: float,
                 name: str = "decoded_chroma_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.palette_lab = np.asarray(palette_lab, dtype=np.float32)
        self.weight = float(weight)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        probs = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        cross_entropy = ops.sparse_categorical_crossentropy(labels, probs)
        chroma = ops.convert_to_tensor(self.palette_lab[:, 1:] / CHROMA_UNIT, dtype="float32")
        # p clipped as the cross-entropy clips it, so that a zero probability has a finite gradient.
        annealed = annealed_weights(ops.clip(probs, 1e-7, 1.0), self.temperature)
        error = ops.tensordot(annealed, chroma, axes=1) - ops.take(chroma, labels, axis=0)
        return cross_entropy + self.weight * ops.sum(error * error, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "palette_lab": self.palette_lab.tolist(), "weight": self.weight,
                "temperature": self.temperature}


def make_loss(name: str, soft_targets: np.ndarray | None = None,
              chroma: tuple[np.ndarray, float, float] | None = None):
    """Per-pixel loss on sparse labels (N, S, S); Keras applies per-pixel sample weights to it.
    `soft_targets` (K, K), for categorical cross-entropy only, replaces its one-hot targets; `chroma`
    (palette CIELAB (K, 3), weight, temperature), for one-hot categorical cross-entropy only, adds the
    decoded colour's chroma error (DecodedChromaCrossentropy)."""
    if soft_targets is not None or chroma is not None:
        if name != "categorical_crossentropy":
            raise ValueError(f"soft targets and the chroma term are for train.loss categorical_crossentropy, "
                             f"not {name!r}")
        if soft_targets is not None and chroma is not None:
            raise ValueError("soft targets and the chroma term do not combine")
        if chroma is not None:
            return DecodedChromaCrossentropy(*chroma)
        return SoftTargetCrossentropy(soft_targets)
    if name == "categorical_crossentropy":
        # Sparse labels: the same value as one-hot categorical cross-entropy, without the (S, S, K) one-hot.
        return keras.losses.SparseCategoricalCrossentropy(name="categorical_crossentropy")
    if name == "l1":
        return l1_loss
    if name == "seed_ordinal":
        return seed_ordinal_loss
    raise ValueError(f"train.loss must be categorical_crossentropy, l1 or seed_ordinal, got {name!r}")


# Variables weight decay leaves alone: biases, batch-norm scales and offsets, the gray-level prior's table.
NOT_DECAYED = ("bias", "gamma", "beta", "table")


def make_optimizer(name: str, lr: float | None, decay_steps: int | None = None,
                   ema: float | None = None, weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
    """Adadelta defaults to Zeiler's learning rate 1.0 (Keras' 0.001 barely moves); Adam to 0.001.

    With `decay_steps`, the rate follows a cosine from its base value down to 1 % of it over that many steps.
    With `ema` (a momentum in (0, 1)), the optimizer also keeps an exponential moving average of the weights.
    With `weight_decay`, each step also shrinks the kernels by learning rate x weight_decay (decoupled, as
    in AdamW); the variables in NOT_DECAYED keep their values.
    """
    base = {"adadelta": 1.0, "adam": 1e-3}.get(name) if lr is None else lr
    rate = base if not decay_steps else keras.optimizers.schedules.CosineDecay(base, decay_steps, alpha=0.01)
    options = {} if ema is None else {"use_ema": True, "ema_momentum": ema}
    if weight_decay:
        options["weight_decay"] = weight_decay
    if name == "adadelta":
        optimizer = keras.optimizers.Adadelta(learning_rate=rate, **options)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=rate, **options)
    else:
        raise ValueError(f"train.optimizer must be adam or adadelta, got {name!r}")
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return optimizer
