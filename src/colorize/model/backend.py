"""Import Keras without TensorFlow's start-up notices on stderr.

TensorFlow 2.21 prints absl and oneDNN notices that TF_CPP_MIN_LOG_LEVEL no longer silences; they
would bury the one line a failed command prints.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_keras() -> ModuleType:
    """`import keras`, quietly the first time."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import keras
        # The backend is loaded lazily; touch it while stderr is still quiet.
        keras.backend.backend()
        keras.ops.zeros((1,))
    return keras
