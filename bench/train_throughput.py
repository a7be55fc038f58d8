"""Training throughput and peak memory of `unet` vs `seed`, side by side in one run, as a ratio.

Each architecture trains in its own process (so peak RSS is its own) on random data of the given size:
    python bench/train_throughput.py --size 32            # CPU (the README's figures)
    KERAS_BACKEND=jax python bench/train_throughput.py --size 64 --batch-size 32   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(arch: str, size: int, k: int, batch_size: int, steps: int, optimizer: str) -> dict:
    """Train `steps` batches after one warm-up batch; images/s and peak memory of this process."""
    import resource

    import keras
    import numpy as np

    from colorize.training import compile_model, make_deterministic

    params = {"arch": arch, "dropout": 0.5, "unet_filters": 16, "unet_depth": 3, "optimizer": optimizer,
              "lr": None, "loss": "categorical_crossentropy"}
    make_deterministic(0)
    model = compile_model(params, size, k)
    rng = np.random.default_rng(0)
    x = rng.random((batch_size * (steps + 1), size, size, 1), dtype=np.float32)
    y = rng.integers(0, k, (len(x), size, size)).astype("uint8")
    model.train_on_batch(x[:batch_size], y[:batch_size])
    started = time.perf_counter()
    for step in range(1, steps + 1):
        model.train_on_batch(x[step * batch_size:(step + 1) * batch_size], y[step * batch_size:(step + 1) * batch_size])
    seconds = time.perf_counter() - started
    result = {"arch": arch, "backend": keras.backend.backend(), "parameters": int(model.count_params()),
              "images_per_s": steps * batch_size / seconds,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            result["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
    except Exception:  # no JAX, or a device without memory stats
        pass
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--optimizer", default="adadelta", help="the seed model's own optimizer by default")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.size, args.k, args.batch_size, args.steps, args.optimizer)))
        return
    results = {}
    for arch in ("unet", "seed"):
        command = [sys.executable, __file__, "--child", arch, *sys.argv[1:]]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(f"{arch}: failed\n{out.stderr[-2000:]}")
            continue
        results[arch] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[arch]
        device = f", peak device memory {r['peak_device_mib']:.0f} MiB" if "peak_device_mib" in r else ""
        print(f"{arch:5s} ({r['backend']}): {r['parameters']:>13,} parameters, {r['images_per_s']:8.1f} images/s, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB{device}")
    if len(results) == 2:
        unet, seed = results["unet"], results["seed"]
        memory = "peak_device_mib" if "peak_device_mib" in unet else "peak_rss_mib"
        print(f"size {args.size}, K {args.k}, batch {args.batch_size}: unet/seed images/s = "
              f"{unet['images_per_s'] / seed['images_per_s']:.1f}x, "
              f"unet/seed memory = {unet[memory] / seed[memory]:.3f} ({memory})")


if __name__ == "__main__":
    main()
