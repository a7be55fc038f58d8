"""devices.py: training under JAX on the CPU, data parallelism over two virtual devices (same loss
curve as one device), and bf16 mixed precision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from colorize.model.devices import precision

HERE = Path(__file__).resolve().parent


def start_jax_training(params_file: Path, devices: int, monitor: str) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    return subprocess.Popen([sys.executable, str(HERE / "jax_training.py"), str(params_file), monitor],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def summary_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow  # two JAX trainings in subprocesses, side by side (compiling is mostly one core each)
def test_jax_trains_on_one_device_and_on_two_with_the_same_validation_curves(params_file):
    import jax  # noqa: F401  (the jax extra is installed by make setup: a missing one fails here)

    # The default, decoded monitor (one forward pass gives loss, accuracy and PSNR); on two devices the
    # last validation batch is padded (test_training covers the test step's path with padding).
    runs = {devices: start_jax_training(params_file, devices, "val_psnr") for devices in (1, 2)}
    one, two = (summary_of(runs[devices]) for devices in (1, 2))
    assert one["backend"] == "jax" and one["devices"] == 1 and one["epochs_run"] == 3
    losses = one["curves"]["val_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert two["backend"] == "jax" and two["devices"] == 2
    # Each batch is split over the two devices; only the order of float sums differs. Padding rows
    # count in neither the loss nor the accuracy.
    for name in ("val_loss", "val_accuracy", "val_psnr"):
        assert np.allclose(two["curves"][name], one["curves"][name], rtol=1e-4, atol=1e-5), name


def test_mixed_bfloat16_computes_in_bf16_keeps_float32_weights_and_outputs_and_restores_the_policy():
    from colorize.model.models import build_model

    before = keras.config.dtype_policy().name
    with precision("mixed_bfloat16"):
        model = build_model("unet", 16, 4, filters=4, depth=2)
    assert keras.config.dtype_policy().name == before == "float32"
    conv = model.get_layer("down0_conv1")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    probs = model(np.zeros((1, 16, 16, 1), np.float32))
    assert keras.backend.standardize_dtype(probs.dtype) == "float32"
    with pytest.raises(ValueError, match="train.precision must be one of float32, mixed_bfloat16"):
        with precision("float16"):
            pass
