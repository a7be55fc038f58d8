"""models.py: shapes and softmax of both architectures, parameter count, losses, optimizer defaults."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from colorize.model.budget import seed_param_count
from colorize.model.models import (
    CHROMA_UNIT,
    SOFT_TARGET_NEIGHBOURS,
    DecodedChromaCrossentropy,
    FusedBatchNormalization,
    GrayLevelPrior,
    SoftTargetCrossentropy,
    build_model,
    build_seed,
    build_unet,
    gray_level_log_prior,
    l1_loss,
    make_loss,
    make_optimizer,
    seed_ordinal_loss,
    soft_target_matrix,
)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gray_batch(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, size, size, 1), dtype=np.float32)


def assert_per_pixel_distribution(model, size: int, k: int) -> None:
    probs = np.asarray(model.predict(gray_batch(3, size), verbose=0))
    assert probs.shape == (3, size, size, k)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


# --- architectures ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "k"), [(8, 5), (16, 3)])
def test_seed_model_shapes_and_softmax(size, k):
    model = build_model("seed", size, k, dropout=0.5)
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, size, size, k)
    assert_per_pixel_distribution(model, size, k)


@pytest.mark.parametrize(("size", "depth", "k"), [(16, 2, 4), (32, 3, 6)])
def test_unet_shapes_and_softmax(size, depth, k):
    model = build_model("unet", size, k, filters=4, depth=depth)
    assert model.input_shape == (None, size, size, 1)
    assert model.output_shape == (None, size, size, k)
    assert_per_pixel_distribution(model, size, k)


def test_seed_parameter_count_at_the_origins_size_without_building():
    # The origin's figure: Conv2D(32) + Dense(64*64) + Dense(64*64*32) on a 64x64 input.
    assert seed_param_count(64, 32) == 1_073_877_312


@pytest.mark.parametrize(("size", "k"), [(8, 4), (6, 3)])
def test_seed_parameter_count_equals_the_built_model(size, k):
    assert seed_param_count(size, k) == build_seed(size, k, 0.5).count_params()


def test_unet_rejects_a_size_not_divisible_by_two_to_the_depth():
    with pytest.raises(ValueError, match=r"train.unet_depth=3.*divisible by 8.*got 20"):
        build_unet(20, 4, 4, 3)
    assert build_unet(20, 4, 4, 2).output_shape == (None, 20, 20, 4)


def test_unknown_arch_is_named():
    with pytest.raises(ValueError, match="train.arch"):
        build_model("resnet", 16, 4)


# --- losses -------------------------------------------------------------------------------------------

@pytest.fixture
def labels_and_probs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, size=(2, 4, 4)).astype(np.uint8)
    probs = softmax(rng.normal(size=(2, 4, 4, 5))).astype(np.float32)
    return labels, probs


def test_sparse_cross_entropy_equals_one_hot_categorical(labels_and_probs):
    labels, probs = labels_and_probs
    one_hot = np.eye(5, dtype=np.float32)[labels]
    ours = float(make_loss("categorical_crossentropy")(labels, probs))
    reference = float(keras.losses.CategoricalCrossentropy()(one_hot, probs))
    by_hand = float(np.mean(-np.log(np.take_along_axis(probs, labels[..., None].astype(int), -1))))
    assert ours == pytest.approx(reference, rel=1e-5)
    assert ours == pytest.approx(by_hand, rel=1e-5)


def test_l1_loss_is_the_mean_absolute_difference_per_pixel(labels_and_probs):
    labels, probs = labels_and_probs
    one_hot = np.eye(5, dtype=np.float32)[labels]
    per_pixel = np.asarray(l1_loss(labels, probs))
    assert per_pixel.shape == (2, 4, 4)
    np.testing.assert_allclose(per_pixel, np.abs(one_hot - probs).mean(axis=-1), rtol=1e-6)
    assert make_loss("l1") is l1_loss


def test_l1_loss_is_registered_for_safe_loading():
    assert keras.saving.get_registered_object("colorize>l1_loss") is l1_loss


def test_seed_ordinal_loss_is_the_distance_to_the_expected_index(labels_and_probs):
    labels, probs = labels_and_probs
    per_pixel = np.asarray(seed_ordinal_loss(labels, probs))
    expected_index = (probs * np.arange(5)).sum(axis=-1)
    np.testing.assert_allclose(per_pixel, np.abs(labels - expected_index), rtol=1e-5)
    assert make_loss("seed_ordinal") is seed_ordinal_loss
    assert keras.saving.get_registered_object("colorize>seed_ordinal_loss") is seed_ordinal_loss


def test_seed_ordinal_loss_is_zero_only_on_the_sure_right_index():
    sure = np.eye(4, dtype=np.float32)[[[2]]]  # (1, 1, 4): all mass on index 2
    assert float(np.asarray(seed_ordinal_loss(np.array([[2]]), sure))[0, 0]) == 0.0
    assert float(np.asarray(seed_ordinal_loss(np.array([[0]]), sure))[0, 0]) == pytest.approx(2.0)


def lab_line(k: int) -> np.ndarray:
    """k CIELAB colours on a line, 10 units apart in a (distances known by heart)."""
    return np.stack([np.full(k, 50.0), 10.0 * np.arange(k), np.zeros(k)], axis=1)


def test_soft_targets_spread_each_colour_over_its_nearest_palette_colours():
    matrix = soft_target_matrix(lab_line(8), sigma=10.0)
    assert matrix.shape == (8, 8) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)
    assert ((matrix > 0).sum(axis=1) == SOFT_TARGET_NEIGHBOURS).all()
    assert (matrix.argmax(axis=1) == np.arange(8)).all()
    # Colour 3's neighbours are 1..5 (distances 20, 10, 0, 10, 20): Gaussian weights of those.
    weights = np.exp(-np.array([20.0, 10, 0, 10, 20]) ** 2 / (2 * 10.0**2))
    np.testing.assert_allclose(matrix[3, 1:6], weights / weights.sum(), rtol=1e-6)
    assert not matrix[3, [0, 6, 7]].any()
    # A tiny sigma leaves the one-hot target.
    np.testing.assert_array_equal(soft_target_matrix(lab_line(8), sigma=0.5), np.eye(8, dtype=np.float32))


def test_soft_target_loss_is_the_cross_entropy_against_the_soft_rows(labels_and_probs):
    labels, probs = labels_and_probs
    matrix = soft_target_matrix(lab_line(5), sigma=8.0)
    loss = make_loss("categorical_crossentropy", matrix)
    assert isinstance(loss, SoftTargetCrossentropy)
    per_pixel = np.asarray(loss.call(labels, probs))
    np.testing.assert_allclose(per_pixel, -(matrix[labels] * np.log(probs)).sum(axis=-1), rtol=1e-5)
    # With one-hot rows it is the plain (sparse) cross-entropy.
    one_hot = make_loss("categorical_crossentropy", np.eye(5, dtype=np.float32))
    assert float(one_hot(labels, probs)) == pytest.approx(float(make_loss("categorical_crossentropy")(labels, probs)),
                                                          rel=1e-6)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        make_loss("l1", matrix)


def test_a_model_compiled_with_soft_targets_saves_and_loads_safely(tmp_path):
    model = build_model("unet", 8, 3, filters=2, depth=1)
    model.compile(optimizer="adam", loss=SoftTargetCrossentropy(soft_target_matrix(lab_line(3), 10.0)))
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.loss.targets, model.loss.targets)


def test_decoded_chroma_loss_adds_the_annealed_means_chroma_error_to_the_cross_entropy(labels_and_probs):
    labels, probs = labels_and_probs
    palette_lab = lab_line(5) + np.array([0.0, 0.0, 7.0])  # b too, so that both chroma axes count
    loss = make_loss("categorical_crossentropy", chroma=(palette_lab, 0.5, 0.6))
    assert isinstance(loss, DecodedChromaCrossentropy)
    annealed = probs ** (1 / 0.6) / (probs ** (1 / 0.6)).sum(axis=-1, keepdims=True)
    error = (annealed @ palette_lab[:, 1:] - palette_lab[labels][..., 1:]) / CHROMA_UNIT
    cross_entropy = -np.log(np.take_along_axis(probs, labels[..., None], axis=-1))[..., 0]
    np.testing.assert_allclose(np.asarray(loss.call(labels, probs)), cross_entropy + 0.5 * (error**2).sum(axis=-1),
                               rtol=1e-5)
    # Lightness is not its business: a palette differing only in L adds nothing to the cross-entropy.
    gray_steps = np.stack([10.0 * np.arange(5), np.zeros(5), np.zeros(5)], axis=1)
    np.testing.assert_allclose(np.asarray(make_loss("categorical_crossentropy", chroma=(gray_steps, 0.5, 0.6))
                                          .call(labels, probs)), cross_entropy, rtol=1e-5)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        make_loss("l1", chroma=(palette_lab, 0.5, 0.6))
    with pytest.raises(ValueError, match="do not combine"):
        make_loss("categorical_crossentropy", np.eye(5, dtype=np.float32), (palette_lab, 0.5, 0.6))


def test_decoded_chroma_loss_has_a_finite_gradient_at_zero_probabilities():
    probs = keras.ops.convert_to_tensor(np.array([[[[1.0, 0.0, 0.0]]]], np.float32))
    loss = DecodedChromaCrossentropy(lab_line(3), 1.0, 0.6)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(probs)
        value = loss(np.array([[[1]]]), probs)
    gradient = tape.gradient(value, probs).numpy()
    assert np.isfinite(float(value)) and np.isfinite(gradient).all()


def test_a_model_compiled_with_the_chroma_term_saves_and_loads_safely(tmp_path):
    model = build_model("unet", 8, 3, filters=2, depth=1)
    model.compile(optimizer="adam", loss=DecodedChromaCrossentropy(lab_line(3), 0.25, 0.6))
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.loss.palette_lab, model.loss.palette_lab)
    assert (loaded.loss.weight, loaded.loss.temperature) == (0.25, 0.6)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="train.loss"):
        make_loss("mse")


# --- optimizers ---------------------------------------------------------------------------------------

def learning_rate(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


@pytest.mark.parametrize(("name", "cls", "default"), [("adadelta", "Adadelta", 1.0), ("adam", "Adam", 0.001)])
def test_optimizer_defaults_and_explicit_rate(name, cls, default):
    optimizer = make_optimizer(name, None)
    assert type(optimizer).__name__ == cls
    assert learning_rate(optimizer) == pytest.approx(default)
    assert learning_rate(make_optimizer(name, 0.05)) == pytest.approx(0.05)


@pytest.mark.parametrize("name", ["adam", "adadelta"])
def test_cosine_schedule_decays_from_the_base_rate_to_one_percent(name):
    optimizer = make_optimizer(name, 0.01, decay_steps=100)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    rate = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 50, 100, 200)]
    assert rate[0] == pytest.approx(0.01)
    assert rate[1] == pytest.approx(0.01 * (0.01 + 0.99 * 0.5), rel=1e-4)
    assert rate[2] == pytest.approx(1e-4, rel=1e-4) and rate[3] == pytest.approx(1e-4, rel=1e-4)


@pytest.mark.parametrize("name", ["adam", "adadelta"])
def test_weight_averaging_only_when_asked(name):
    assert not make_optimizer(name, None).use_ema
    averaging = make_optimizer(name, None, ema=0.99)
    assert averaging.use_ema and averaging.ema_momentum == pytest.approx(0.99)


@pytest.mark.parametrize("name", ["adam", "adadelta"])
def test_weight_decay_shrinks_only_the_kernels_and_only_when_asked(name):
    """A step with zero gradients moves nothing but the decay: each kernel shrinks by lr x weight_decay;
    biases, batch-norm scales and offsets and the gray-level prior's table stay as they were."""
    model = build_model("unet", 16, 4, filters=2, depth=1, prior=np.zeros((256, 4), np.float32))
    variables = model.trainable_variables
    for decay, shrunk in ((0.0, set()), (0.5, {"kernel"})):
        for variable in variables:
            variable.assign(np.ones(variable.shape, np.float32))
        optimizer = make_optimizer(name, 0.1, weight_decay=decay)
        optimizer.apply([keras.ops.zeros_like(v) for v in variables], variables)
        names = {v.name for v in variables}
        assert {"kernel", "bias", "gamma", "beta", "table"} <= names
        for variable in variables:
            expected = 1 - 0.1 * decay if variable.name in shrunk else 1.0
            np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-6,
                                       err_msg=f"{name} {decay} {variable.path}")


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="train.optimizer"):
        make_optimizer("sgd", None)


# --- batch normalisation through the fused kernel -----------------------------------------------------

def bn_pair(channels: int):
    """Keras' own layer and the fused one, with the same (non-trivial) weights."""
    rng = np.random.default_rng(1)
    weights = [rng.normal(1, 0.2, channels), rng.normal(0, 0.2, channels), rng.normal(0, 0.3, channels),
               rng.uniform(0.5, 2, channels)]
    pair = []
    for layer in (keras.layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)):
        layer.build((None, 6, 6, channels))
        layer.set_weights([w.astype(np.float32) for w in weights])
        pair.append(layer)
    return pair


def test_fused_batch_norm_trains_and_predicts_as_keras_does():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (4, 6, 6, 5)).astype(np.float32))
    upstream = tf.constant(np.random.default_rng(2).normal(size=(4, 6, 6, 5)).astype(np.float32))
    results = []
    for layer in bn_pair(5):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    for keras_value, fused_value in zip(*results):
        np.testing.assert_allclose(np.asarray(fused_value), np.asarray(keras_value), rtol=1e-4, atol=1e-5)


def test_fused_batch_norm_runs_the_fused_kernel_in_training_only():
    import tensorflow as tf

    _, fused = bn_pair(3)
    x = tf.zeros((2, 6, 6, 3))

    def op_types(training: bool) -> set[str]:
        graph = tf.function(lambda t: fused(t, training=training)).get_concrete_function(x).graph
        return {op.type for op in graph.get_operations()}

    assert "FusedBatchNormV3" in op_types(True)
    assert "FusedBatchNormV3" not in op_types(False)


def test_unet_uses_the_fused_batch_norm_and_reloads_it(tmp_path):
    model = build_model("unet", 8, 3, filters=2, depth=1)
    assert {type(layer) for layer in model.layers if "bn" in layer.name} == {FusedBatchNormalization}
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert isinstance(loaded.get_layer("down0_bn1"), FusedBatchNormalization)


# --- the gray-level prior -----------------------------------------------------------------------------

def test_gray_level_log_prior_counts_colours_per_gray_level():
    gray = np.array([[[0.0, 0.0, 0.0, 1.0]]], np.float32)
    labels = np.array([[[1, 1, 0, 2]]], np.uint8)
    prior = gray_level_log_prior(gray, labels, 3, levels=4, smoothing=1.0)
    assert prior.shape == (4, 3) and prior.dtype == np.float32
    np.testing.assert_allclose(np.exp(prior[0]), [2 / 6, 3 / 6, 1 / 6], rtol=1e-6)   # level 0: 1, 2, 0 (+1 each)
    np.testing.assert_allclose(np.exp(prior[3]), [1 / 4, 1 / 4, 2 / 4], rtol=1e-6)   # level 3: 0, 0, 1
    np.testing.assert_allclose(prior[1], prior[0])  # unseen levels borrow the nearest seen one
    np.testing.assert_allclose(prior[2], prior[3])


def test_gray_level_prior_layer_looks_up_each_pixel_and_survives_a_safe_reload(tmp_path):
    prior = np.log(np.full((256, 3), 1 / 3, np.float32))
    prior[255] = np.log([0.01, 0.01, 0.98])
    model = build_model("unet", 8, 3, filters=2, depth=1, prior=prior)
    table = model.get_layer("gray_prior")
    gray = np.zeros((1, 8, 8, 1), np.float32)
    gray[0, :4] = 1.0
    looked_up = np.asarray(table(gray))
    np.testing.assert_allclose(looked_up[0, 0, 0], prior[255])
    np.testing.assert_allclose(looked_up[0, 7, 7], prior[0])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(gray, verbose=0), model.predict(gray, verbose=0), atol=1e-6)
    assert keras.saving.get_registered_object("colorize>GrayLevelPrior") is GrayLevelPrior


def test_gray_level_prior_gradient_is_the_per_level_sum_of_the_pixels_gradients():
    import tensorflow as tf

    table = GrayLevelPrior(3, levels=4)
    gray = np.array([[[[0.0], [1.0]], [[1 / 3], [1.0]]]], np.float32)  # levels 0, 3, 1, 3
    table.build(gray.shape)
    upstream = tf.constant(np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(table(gray) * upstream)
    grad = tape.gradient(loss, table.table.value)
    assert isinstance(grad, tf.Tensor)  # dense: not one row per pixel
    np.testing.assert_array_equal(np.asarray(grad), [[0, 1, 2], [6, 7, 8], [0, 0, 0], [3 + 9, 4 + 10, 5 + 11]])
