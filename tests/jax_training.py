"""Train the tiny model of tests/conftest.py under KERAS_BACKEND=jax (run as a subprocess by
test_devices.py, since the backend is fixed when Keras is first imported); print a JSON summary."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np

from colorize.core.params import load_section
from colorize.model.devices import use_all_local_devices
from colorize.model.training import compile_model, fit, keras, make_deterministic


class ValLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["val_loss"]))


def main(params_file: str) -> None:
    params = replace(load_section("train", params_file), unet_filters=4, unet_depth=2, epochs=3, batch_size=4,
                     patience=3, shift=1, flip=True, min_steps=0, lr_schedule="constant", monitor="val_loss")
    rng = np.random.default_rng(7)
    levels = rng.integers(0, 4, size=(12, 4, 4)).repeat(4, axis=1).repeat(4, axis=2)
    gray = (levels * 0.25 + 0.125).astype(np.float32)
    labels = levels.astype(np.uint8)
    devices = use_all_local_devices()
    make_deterministic(0)
    model = compile_model(params, 16, 4)
    curve = ValLosses()
    summary = fit(model, params, (gray[:8], labels[:8]), (gray[8:], labels[8:]),
                  np.linspace(0.5, 1.5, 4).astype(np.float32), callbacks=[curve], verbose=0)
    print(json.dumps({"backend": keras.backend.backend(), "devices": devices, "val_losses": curve.losses,
                      **summary}))


if __name__ == "__main__":
    main(sys.argv[1])
