"""What a model needs before it is built: parameter counts and training memory, without importing Keras,
so the train stage refuses what cannot run before any heavy import or work."""

from __future__ import annotations

import os


def seed_param_count(size: int, k: int) -> int:
    """Parameters of the seed model, without building it (about 1.07 billion at S=64, K=32)."""
    filters = 32
    conv = 3 * 3 * 1 * filters + filters
    hidden = size * size * filters * size * size + size * size
    output = size * size * size * size * k + size * size * k
    return conv + hidden + output


def training_bytes(param_count: int) -> int:
    """Peak memory to train a model on the TensorFlow CPU backend, as measured by
    bench/train_throughput.py: about 32 bytes per parameter (fp32 weights, gradients, two optimizer
    slots and temporaries: 3.3 GB for 67 M parameters, 11.7 GB for 340 M) plus ~1 GiB for the runtime."""
    return param_count * 32 + 2**30


def total_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
