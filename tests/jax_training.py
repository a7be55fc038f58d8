"""Train the tiny model of tests/conftest.py under KERAS_BACKEND=jax (run as a subprocess by
test_devices.py, since the backend is fixed when Keras is first imported); print a JSON summary."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np

from colorize.core.params import load_section
from colorize.model.devices import use_all_local_devices
from colorize.model.training import DecodedTarget, compile_model, fit, keras, make_deterministic


class ValCurves(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.curves: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in logs.items():
            if name.startswith("val_"):
                self.curves.setdefault(name, []).append(float(value))


PALETTE = np.array([[20, 40, 200], [200, 30, 30], [40, 180, 60], [240, 220, 40]], np.uint8)


def main(params_file: str, monitor: str) -> None:
    # Patience covers every epoch: the curves are the same whatever the monitor.
    params = replace(load_section("train", params_file), unet_filters=4, unet_depth=2, epochs=3, batch_size=4,
                     patience=3, shift=1, flip=True, min_steps=0, lr_schedule="constant", monitor=monitor)
    rng = np.random.default_rng(7)
    # 8 training images (two full batches) and 5 validation ones: a batch of 4 and one of 1, which two
    # devices pad to 2 with a zero-weight row.
    levels = rng.integers(0, 4, size=(13, 4, 4)).repeat(4, axis=1).repeat(4, axis=2)
    gray = (levels * 0.25 + 0.125).astype(np.float32)
    labels = levels.astype(np.uint8)
    devices = use_all_local_devices()
    make_deterministic(0)
    model = compile_model(params, 16, 4)
    curves = ValCurves()
    summary = fit(model, params, (gray[:8], labels[:8]), (gray[8:], labels[8:]),
                  np.linspace(0.5, 1.5, 4).astype(np.float32), callbacks=[curves], verbose=0,
                  target=DecodedTarget(PALETTE[labels[8:]], PALETTE, (0.21, 0.72, 0.07)))
    print(json.dumps({"backend": keras.backend.backend(), "devices": devices, "curves": curves.curves,
                      **summary}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
