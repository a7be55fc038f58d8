"""Training throughput and peak memory, side by side in one run, as ratios. Two comparisons:

`arch` (default): `unet` vs `seed`, a bare `train_on_batch` loop on random data of the given size:
    python bench/train_throughput.py --size 32                                     # CPU
    KERAS_BACKEND=jax python bench/train_throughput.py --size 64 --batch-size 32   # on a GPU
    KERAS_BACKEND=jax python bench/train_throughput.py --archs unet --precision mixed_bfloat16

`fit`: the pipeline's `fit` (augmentation, class weights when params.yaml's `train.rebalance` > 0,
validation, early stopping, DVCLive logging) vs a bare `model.train_on_batch` loop on the same arrays (the
limit), with class weights also vs the bare loop given fit's per-pixel weights (the same loss as fit's
model step, so that ratio is what the input pipeline, validation and callbacks cost), and optionally vs
the `fit` of another checkout's code (e.g. a `git worktree` of main) in the same run:
    python bench/train_throughput.py --compare fit --size 64 --epochs 6 --baseline-src /tmp/main/src
    python bench/train_throughput.py --compare fit --size 64 --epochs 6 --monitors val_psnr,val_accuracy --rounds 3

`fit --interleaved`: the same three in **one** process on one model, epoch by epoch: after each of the
pipeline's fit epochs (validation, early stopping and logging included), one bare epoch of
`train_on_batch` on the same arrays without and one with the class weights (their order alternating),
timed apart. Separate processes differ by ±15 % in the speed of the very same step on this project's CPUs
(sessions 21-26), more than the fit's overhead; in one process the ratio is what fit adds to the step:
    python bench/train_throughput.py --compare fit --size 64 --epochs 13 --interleaved

Each measurement runs in its own process (so peak RSS is its own); the first epoch (or batch), which
compiles, is left out of every rate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from colorize.core.params import TrainParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_params(args: argparse.Namespace, arch: str) -> TrainParams:
    """The pipeline's train section with the benchmark's model, batch and optimizer."""
    from dataclasses import replace

    from colorize.core.params import load_section

    params = load_section("train", os.path.join(ROOT, "params.yaml"))
    # Interleaved: exactly --epochs cycles (train.min_steps would stretch a small set's epochs).
    min_steps = 0 if args.interleaved else params.min_steps
    return replace(params, arch=arch, optimizer=args.optimizer or params.optimizer, batch_size=args.batch_size,
                   epochs=args.epochs, patience=args.epochs, precision=args.precision,
                   monitor=args.child_monitor or params.monitor, min_steps=min_steps)


def random_data(n: int, size: int, k: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    gray = rng.random((n, size, size), dtype=np.float32)
    # Labels follow the gray level, so the model has something to learn.
    return gray, np.minimum(gray * k, k - 1).astype("uint8")


def default_model(args: argparse.Namespace, arch: str, gray, labels):
    """The model the train stage builds for these params and training arrays (its gray-level prior and
    learning-rate schedule included)."""
    from colorize.model import training

    params = train_params(args, arch)
    if hasattr(training, "model_for_training"):
        return training.model_for_training(params, args.size, args.k, gray, labels)
    # A --baseline-src checkout older than model_for_training: the stage's rule of its time.
    prior = None
    if params.gray_prior and arch == "unet":
        from colorize.model.models import gray_level_log_prior

        prior = gray_level_log_prior(gray, labels, args.k)
    return training.compile_model(params, args.size, args.k, prior=prior)


def device_memory(result: dict) -> None:
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            result["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
        result["device"] = jax.devices()[0].device_kind
    except Exception:  # no JAX, or a device without memory stats
        pass


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_class_weights(params: TrainParams, k: int):
    """The per-colour loss weights the fit comparison trains with, or None when `train.rebalance` is 0 (as
    the stage's `class_weights_for`; fixed values here, the stage's are counted from the labels)."""
    import numpy as np

    return np.linspace(0.5, 1.5, k).astype(np.float32) if params.rebalance > 0 else None


def measure_bare(args: argparse.Namespace, arch: str, weighted: bool = False) -> dict:
    """`steps` batches of `train_on_batch` after one warm-up batch; `weighted`: with the fit's per-pixel
    class weights, i.e. the loss the pipeline's model step computes, so that fit against it is what the
    input pipeline, validation and callbacks cost."""
    import keras
    import numpy as np

    from colorize.model.training import make_deterministic

    make_deterministic(0)
    if args.compare == "fit":  # the same arrays as the fit, in batches of one shuffled epoch after another
        x, y = random_data(args.images, args.size, args.k, 0)
        model = default_model(args, arch, x, y)
        bs = args.batch_size
        batches = [rows for epoch in range(args.epochs)
                   for order in [np.random.default_rng([0, epoch]).permutation(len(x))]
                   for rows in np.array_split(order, range(bs, len(x), bs))]
        steps = len(batches) - len(batches) // args.epochs  # the first epoch warms up, as fit's does
        x = x[..., None]
    else:
        x, y = random_data(args.batch_size * (args.steps + 1), args.size, args.k, 0)
        model = default_model(args, arch, x, y)
        x = x[..., None]
        batches = [np.arange(i * args.batch_size, (i + 1) * args.batch_size) for i in range(args.steps + 1)]
        steps = args.steps
    class_weights = bench_class_weights(train_params(args, arch), args.k) if weighted else None

    def step(rows):
        model.train_on_batch(x[rows], y[rows],
                             sample_weight=None if class_weights is None else class_weights[y[rows]])

    warm = batches[:len(batches) - steps]
    for rows in warm:
        step(rows)
    started = time.perf_counter()
    images = 0
    for rows in batches[len(warm):]:
        step(rows)
        images += len(rows)
    seconds = time.perf_counter() - started
    what = f"bare train_on_batch{', class weights' if weighted else ''} ({arch})"
    result = {"what": what, "backend": keras.backend.backend(),
              "parameters": int(model.count_params()), "images_per_s": images / seconds,
              "peak_rss_mib": peak_rss_mib()}
    device_memory(result)
    return result


def measure_fit(args: argparse.Namespace, arch: str, label: str, interleaved: bool = False) -> dict:
    """The pipeline's fit on `images` training and `val` validation images; epochs 2.. timed. `interleaved`:
    after each fit epoch's callbacks, one bare `train_on_batch` epoch on the same arrays without and one
    with the class weights, timed apart (fit's epoch is timed from the end of the bare epochs before it)."""
    import inspect

    import keras
    import numpy as np
    from dvclive import Live

    from colorize.model.training import (
        LiveLogger,
        fit,
        make_deterministic,
    )

    class EpochClock(keras.callbacks.Callback):
        """Epoch ends, each epoch's first batch, and where an epoch's time goes: inside the train steps
        (batch begin to end), between them (reading and augmenting the next batch, Keras' loop), and after
        the last one (validation, early stopping and logging: the callbacks before this one)."""

        def __init__(self):
            super().__init__()
            self.resumed = time.perf_counter()  # when fit's next epoch started (interleaved: the bare ones ended)
            self.fit_s: list[float] = []
            self.bare_s: dict[bool, list[float]] = {False: [], True: []}
            self.ends: list[float] = []
            self.first_batch_s: list[float] = []
            self.parts: list[dict[str, float]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.began = self.last = time.perf_counter()
            self.parts.append({"steps_s": 0.0, "between_steps_s": 0.0})

        def on_train_batch_begin(self, batch, logs=None):
            now = time.perf_counter()
            self.parts[-1]["between_steps_s"] += now - self.last
            self.last = now

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            self.parts[-1]["steps_s"] += now - self.last
            self.last = now
            if batch == 0:
                self.first_batch_s.append(now - self.began)

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())
            self.parts[-1]["epoch_end_s"] = self.ends[-1] - self.last
            if interleaved:
                self.fit_s.append(self.ends[-1] - self.resumed)
                order = [False, True] if epoch % 2 == 0 else [True, False]
                for weighted in order:
                    began = time.perf_counter()
                    bare_epoch(epoch, weighted)
                    self.bare_s[weighted].append(time.perf_counter() - began)
                self.resumed = time.perf_counter()

    params = train_params(args, arch)
    gray, labels = random_data(args.images + args.val, args.size, args.k, 0)
    train = (gray[:args.images], labels[:args.images])
    val = (gray[args.images:], labels[args.images:])
    extra = {}
    if "target" in inspect.signature(fit).parameters:  # another checkout's fit may predate it
        from colorize.model.training import DecodedTarget

        # A grey ramp as the palette: validation RGB for a decoded train.monitor, timed like the stage's.
        palette = np.repeat(np.linspace(0, 255, args.k).astype(np.uint8)[:, None], 3, axis=1)
        from dataclasses import fields

        from colorize.core.params import load_section

        # Another checkout's DecodedTarget may predate the gray weights (session 28).
        weights = ([load_section("grayscale", os.path.join(ROOT, "params.yaml")).weights]
                   if "gray_weights" in {field.name for field in fields(DecodedTarget)} else [])
        extra["target"] = DecodedTarget(palette[val[1]], palette, *weights)
    weights = bench_class_weights(params, args.k)
    make_deterministic(0)
    model = default_model(args, arch, *train)
    bare_x = train[0][..., None]

    def bare_epoch(epoch: int, weighted: bool) -> None:
        """One epoch of `train_on_batch` on the training arrays as they are (no augmentation), shuffled."""
        order = np.random.default_rng([1, epoch]).permutation(args.images)
        for rows in np.array_split(order, range(args.batch_size, args.images, args.batch_size)):
            y = train[1][rows]
            model.train_on_batch(bare_x[rows], y, sample_weight=weights[y] if weighted and weights is not None
                                 else None)

    clock = EpochClock()
    with tempfile.TemporaryDirectory() as live_dir, Live(live_dir, dvcyaml=None, save_dvc_exp=False) as live:
        fit(model, params, train, val, weights, callbacks=[LiveLogger(live), clock], verbose=0, **extra)
    if interleaved:
        # Epoch 1 of fit compiles, and so does the first unweighted bare epoch (another trace): both left out.
        cycles = [{"fit": clock.fit_s[i], "bare": clock.bare_s[False][i], "bare_weighted": clock.bare_s[True][i]}
                  for i in range(1, len(clock.fit_s))]
        return {"what": label, "backend": keras.backend.backend(), "parameters": int(model.count_params()),
                "images": args.images, "cycles": cycles, "peak_rss_mib": peak_rss_mib()}
    seconds = clock.ends[-1] - clock.ends[0]
    later = clock.first_batch_s[1:]
    result = {"what": label, "backend": keras.backend.backend(), "parameters": int(model.count_params()),
              "images_per_s": (len(clock.ends) - 1) * args.images / seconds,
              "first_batch_s": max(later) if later else None,
              "slow_first_batches": sum(s > 0.5 for s in later), "epochs": len(clock.ends),
              "peak_rss_mib": peak_rss_mib(),
              # Mean seconds per timed epoch in each part.
              "epoch_parts_s": {part: statistics.mean(p[part] for p in clock.parts[1:]) for part in clock.parts[0]}}
    device_memory(result)
    return result


def run_child(args: argparse.Namespace, child: str, src: str | None = None,
              monitor: str | None = None) -> dict | None:
    command = [sys.executable, __file__, "--child", child, *sys.argv[1:]]
    if monitor:
        command += ["--child-monitor", monitor]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print(f"{child}: failed\n{out.stderr[-3000:]}", flush=True)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(r: dict) -> str:
    device = f", peak device memory {r['peak_device_mib']:.0f} MiB ({r.get('device', '')})" \
        if "peak_device_mib" in r else ""
    stall = "" if r.get("first_batch_s") is None else \
        f", slowest first batch of an epoch {r['first_batch_s']:.2f} s ({r['slow_first_batches']} over 0.5 s)"
    parts = "" if "epoch_parts_s" not in r else "; per epoch: " + ", ".join(
        f"{part.removesuffix('_s').replace('_', ' ')} {seconds:.2f} s" for part, seconds in r["epoch_parts_s"].items())
    return (f"{r['what']:38s} ({r['backend']}): {r['parameters']:>13,} parameters, {r['images_per_s']:8.1f} images/s, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB{device}{stall}{parts}")


def report_interleaved(args: argparse.Namespace, arch: str) -> None:
    """`--rounds` processes, each fit and the bare loops epoch by epoch; ratios of images/s per cycle."""
    ratios: dict[str, list[float]] = {"bare": [], "bare_weighted": []}
    for round_ in range(1, args.rounds + 1):
        result = run_child(args, f"pipeline fit, bare epochs interleaved:{arch}")
        if not result:
            continue
        print(f"round {round_} of {args.rounds}: {result['images']} images an epoch, peak RSS "
              f"{result['peak_rss_mib']:.0f} MiB; per cycle, seconds an epoch (fit / bare / bare with the class "
              "weights):", flush=True)
        for cycle in result["cycles"]:
            print(f"  {cycle['fit']:6.2f} / {cycle['bare']:6.2f} / {cycle['bare_weighted']:6.2f}", flush=True)
            for what in ratios:
                ratios[what].append(cycle[what] / cycle["fit"])  # images/s of fit over the bare loop's
        for what in ratios:
            fit_s = sum(c["fit"] for c in result["cycles"])
            bare_s = sum(c[what] for c in result["cycles"])
            print(f"  whole round: fit {result['images'] * len(result['cycles']) / fit_s:.1f} images/s, "
                  f"{what.replace('_', ' ')} {result['images'] * len(result['cycles']) / bare_s:.1f}: "
                  f"fit/{what.replace('_', ' ')} {bare_s / fit_s:.3f}", flush=True)
    for what, target in (("bare", " (target >= 0.9)"), ("bare_weighted", "")):
        values = ratios[what]
        if values:
            quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
            print(f"fit / {what.replace('_', ' ')} loop, one process, per cycle: median {statistics.median(values):.3f}"
                  f" (quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, {len(values)} cycles){target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", choices=("arch", "fit"), default="arch")
    parser.add_argument("--archs", default="unet,seed", help="arch comparison: which models (default unet,seed)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, help="default: params.yaml's train.batch_size for fit, 16 for "
                        "arch (the figures of earlier sessions)")
    parser.add_argument("--steps", type=int, default=10, help="arch comparison: timed batches")
    parser.add_argument("--optimizer", default=None,
                        help="default: adadelta (the seed model's own) for arch, params.yaml's for fit")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--images", type=int, default=357, help="fit comparison: training images (default "
                        "357, the built-in set's)")
    parser.add_argument("--val", type=int, default=63, help="fit comparison: validation images")
    parser.add_argument("--epochs", type=int, default=6, help="fit comparison: epochs (the first is not timed)")
    parser.add_argument("--baseline-src", help="fit comparison: also time the fit of the package in this src/")
    parser.add_argument("--monitors", help="fit comparison: time this checkout's fit once per train.monitor in "
                        "this comma-separated list (default: params.yaml's), e.g. val_psnr,val_accuracy: the "
                        "decoded monitors decode the validation split every epoch")
    parser.add_argument("--rounds", type=int, default=1, help="fit comparison: measure every variant this many "
                        "times, interleaved, and report the median of the per-round ratios")
    parser.add_argument("--interleaved", action="store_true", help="fit comparison: fit and the bare loops "
                        "epoch by epoch in one process (see above); --rounds processes")
    parser.add_argument("--child-monitor", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare == "arch" and args.optimizer is None:
        args.optimizer = "adadelta"
    from colorize.core.params import load_section

    train_section = load_section("train", os.path.join(ROOT, "params.yaml"))
    if args.batch_size is None:
        args.batch_size = train_section.batch_size if args.compare == "fit" else 16
    if args.child:
        kind, _, arch = args.child.partition(":")
        result = (measure_bare(args, arch, weighted=kind == "bare-weighted") if kind.startswith("bare")
                  else measure_fit(args, arch, kind, interleaved=args.interleaved))
        print(json.dumps(result))
        return
    header = (f"size {args.size}, K {args.k}, batch {args.batch_size}, {args.precision}, "
              f"{os.cpu_count()} CPU cores")
    print(header, flush=True)
    if args.compare == "arch":
        results = {}
        for arch in args.archs.split(","):
            results[arch] = run_child(args, f"bare:{arch}")
            if results[arch]:
                print(describe(results[arch]), flush=True)
        unet, seed = results.get("unet"), results.get("seed")
        if unet and seed:
            memory = "peak_device_mib" if "peak_device_mib" in unet else "peak_rss_mib"
            print(f"unet/seed images/s = {unet['images_per_s'] / seed['images_per_s']:.1f}x, "
                  f"unet/seed memory = {unet[memory] / seed[memory]:.3f} ({memory})")
        return
    arch = args.archs.split(",")[0]
    if args.interleaved:
        report_interleaved(args, arch)
        return
    weighted_fit = bench_class_weights(train_section, args.k) is not None
    monitors = args.monitors.split(",") if args.monitors else [None]
    fit_labels = {monitor: f"pipeline fit (this checkout{f', {monitor}' if monitor else ''}):{arch}"
                  for monitor in monitors}
    ratios: dict[tuple[str, str], list[float]] = {}  # (what, its target) -> one ratio per round
    for round_ in range(1, args.rounds + 1):
        # Every round measures each variant once, back to back: the machine's speed drifts by more than
        # the differences measured, so ratios are taken within a round. Every other round runs them in
        # the reverse order: a shared or burstable machine slows down under minutes of load, which would
        # favour whichever variant always ran first.
        children = [("bare", f"bare:{arch}", None, None),
                    *([("bare-weighted", f"bare-weighted:{arch}", None, None)] if weighted_fit else []),
                    *((monitor, label, None, monitor) for monitor, label in fit_labels.items()),
                    *([("baseline", f"pipeline fit ({args.baseline_src}):{arch}", args.baseline_src, None)]
                      if args.baseline_src else [])]
        if round_ % 2 == 0:
            children.reverse()
        results = {key: run_child(args, child, src, monitor) for key, child, src, monitor in children}
        bare, baseline = results.pop("bare"), results.pop("baseline", None)
        bare_weighted = results.pop("bare-weighted", None)
        fits = {monitor: results[monitor] for monitor in fit_labels}
        print(f"round {round_} of {args.rounds}{' (reverse order)' if round_ % 2 == 0 else ''}")
        for r in (bare, bare_weighted, *fits.values(), baseline):
            if r:
                print(describe(r), flush=True)
        for monitor, fitted in fits.items():
            label = f" ({monitor})" if monitor else ""
            if bare and fitted:
                ratios.setdefault((f"fit{label} / bare loop", ">= 0.9"), []).append(
                    fitted["images_per_s"] / bare["images_per_s"])
            if bare_weighted and fitted:  # what the input pipeline, validation and callbacks cost
                ratios.setdefault((f"fit{label} / bare loop with the class weights", ""), []).append(
                    fitted["images_per_s"] / bare_weighted["images_per_s"])
            if fitted and baseline:
                ratios.setdefault((f"fit{label} / baseline fit", ">= 1.5"), []).append(
                    fitted["images_per_s"] / baseline["images_per_s"])
    print(f"{args.images} training + {args.val} validation images, {args.epochs} epochs (first not timed), "
          f"{args.rounds} round(s)")
    for (name, target), values in ratios.items():
        each = ", ".join(f"{value:.2f}" for value in values)
        print(f"{name} = {statistics.median(values):.2f} median{f' (target {target})' if target else ''}; "
              f"rounds: {each}")


if __name__ == "__main__":
    main()
