"""Where training runs: numeric precision and Keras' own data parallelism over the local devices.

Data parallelism (`keras.distribution.DataParallel`) exists on the JAX backend: every local device
(GPUs, or virtual CPU devices under XLA_FLAGS=--xla_force_host_platform_device_count=N) holds the
weights and takes an equal share of each batch. Several hosts: call `jax.distributed.initialize()`
before this (see README, "Training on GPUs").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from colorize.model.backend import import_keras

keras = import_keras()

PRECISIONS = ("float32", "mixed_bfloat16")


def local_device_count() -> int:
    """Accelerators (or virtual CPU devices) JAX sees on this host; 1 on other backends."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.local_device_count()


def use_all_local_devices() -> int:
    """Set a DataParallel distribution over all local devices when there is more than one; their count."""
    count = local_device_count()
    if count > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
    return count


def data_parallel_devices() -> int:
    """Devices a batch is split over: those of the DataParallel distribution in force, else 1."""
    if keras.backend.backend() != "jax":
        return 1
    current = keras.distribution.distribution()
    if not isinstance(current, keras.distribution.DataParallel):
        return 1
    return int(current.device_mesh.devices.size)


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Build layers under `name` (float32 | mixed_bfloat16: bf16 compute, float32 weights)."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)
