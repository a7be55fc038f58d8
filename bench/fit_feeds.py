"""What feeding Keras' `fit` costs on the TensorFlow backend: the train stage's model step, on the same
augmented batches (`AugmentedBatches`, with class weights unless `train.rebalance` is 0), fed six ways, in ms a step:

    bare       `train_on_batch` per batch (the limit)
    stage      the train stage's loop (`training.fit_step_by_step`: each batch handed to the step as arrays)
    pydataset  `fit` on the PyDataset, as the train stage did until session 26 (Keras' tf.data reader)
    generator  `fit` on a `from_generator` of the same batches, computed beforehand (no augmentation work)
    chunks     `fit` on a `from_generator` that yields a whole epoch's batches at once, cut by tf.data
    tensors    `fit` on `from_tensor_slices` of the batches, computed beforehand (no Python per batch)

    python bench/fit_feeds.py --rounds 2
    python bench/fit_feeds.py --interleaved 5      # bare, stage and pydataset in one process, one trace

Each variant runs in its own process; epoch 1 (tracing) and 2 are not timed. The `fit` variants trace
the step on a first batch before `fit` (`trace_train_step_first`), as the stage did: traced first inside
tf.data's reader, the step ran ~1.5x slower for the whole process. Every other round runs the
variants in reverse order (the machine's speed drifts by more than the differences measured).
`tensors` drops each epoch's short last batch (one tensor needs equal batches).

`--interleaved N` runs `bare`, `stage` and `pydataset` in one process on one model and one trace of its
step, one epoch each in turn (every other cycle in reverse order), N timed cycles after one untimed: the
feeds compared without the spread between processes. Each `pydataset` epoch is its own `fit` call.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("bare", "stage", "pydataset", "generator", "chunks", "tensors")


def model_and_batches(args: argparse.Namespace):
    """The train stage's model (params.yaml's train section, the bench's batch size) and its augmented
    batches over random data, with class weights unless `train.rebalance` is 0."""
    from dataclasses import replace

    from colorize.core.params import load_section
    from colorize.model.training import AugmentedBatches, make_deterministic, model_for_training
    from train_throughput import bench_class_weights, random_data

    params = load_section("train", os.path.join(ROOT, "params.yaml"))
    params = replace(params, epochs=args.epochs, batch_size=args.batch_size)
    gray, labels = random_data(args.images, args.size, args.k, 0)
    make_deterministic(0)
    model = model_for_training(params, args.size, args.k, gray, labels)
    batches = AugmentedBatches(gray, labels, args.batch_size, 0, flip=params.flip, shift=params.shift,
                               rotate=params.rotate, class_weights=bench_class_weights(params, args.k))
    return model, batches


def measure(variant: str, args: argparse.Namespace) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from colorize.model.training import fit_step_by_step

    model, batches = model_and_batches(args)
    steps = len(batches)
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    if variant == "bare":
        for epoch in range(args.epochs):
            for index in range(steps):
                bare_step(model, batches[epoch * steps + index])
            ends.append(time.perf_counter())
    elif variant == "stage":
        fit_step_by_step(model, batches, args.epochs, [Clock()], verbose=0)
    else:
        trace_train_step_first(model, batches[0])
        spec = tuple(tf.TensorSpec((None, *array.shape[1:]), array.dtype) for array in batches[0])
        made = ([batches[index] for index in range(steps * args.epochs)] if variant in ("generator", "tensors")
                else [])
        if variant == "pydataset":
            data = batches
        elif variant == "generator":
            data = tf.data.Dataset.from_generator(lambda: iter(made), output_signature=spec).prefetch(2)
        elif variant == "chunks":
            def epochs():
                for epoch in itertools.count():
                    run = [batches[epoch * steps + index] for index in range(steps)]
                    yield tuple(np.concatenate(arrays) for arrays in zip(*run, strict=True))

            data = tf.data.Dataset.from_generator(epochs, output_signature=spec).flat_map(
                lambda *arrays: tf.data.Dataset.from_tensor_slices(arrays).batch(args.batch_size)).prefetch(2)
        else:
            made = [batch for batch in made if len(batch[0]) == args.batch_size]
            steps = len(made) // args.epochs
            data = tf.data.Dataset.from_tensor_slices(
                tuple(np.stack(arrays) for arrays in zip(*made, strict=True))).prefetch(2)

        model.fit(data, steps_per_epoch=steps, epochs=args.epochs, shuffle=False, verbose=0, callbacks=[Clock()])
    timed = [later - earlier for earlier, later in itertools.pairwise(ends[1:])]
    return {"variant": variant, "ms_per_step": 1000 * sum(timed) / (len(timed) * steps)}


def interleaved(args: argparse.Namespace) -> None:
    import statistics

    from colorize.model.training import fit_step_by_step, fit_with_keras

    model, batches = model_and_batches(args)
    steps = len(batches)
    trace_train_step_first(model, batches[0])

    def epoch(variant: str) -> None:
        if variant == "bare":
            for index in range(steps):
                bare_step(model, batches[index])
        elif variant == "stage":
            fit_step_by_step(model, batches, 1, [], verbose=0)
        else:
            fit_with_keras(model, batches, 1, [], verbose=0)

    order = ("bare", "stage", "pydataset")
    timed: dict[str, list[float]] = {variant: [] for variant in order}
    for cycle in range(args.interleaved + 1):
        for variant in order if cycle % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            epoch(variant)
            if cycle:  # the first cycle traces
                timed[variant].append(1000 * (time.perf_counter() - started) / steps)
    for variant, values in timed.items():
        each = " ".join(f"{value:.0f}" for value in values)
        print(f"{variant:10s} {statistics.median(values):7.1f} ms a step (median; cycles: {each})", flush=True)


def bare_step(model, batch) -> None:
    """One `train_on_batch` on an (x, y[, per-pixel weights]) batch of AugmentedBatches."""
    model.train_on_batch(*batch[:2], sample_weight=batch[2] if len(batch) > 2 else None)


def trace_train_step_first(model, batch) -> None:
    """Trace the TensorFlow train step on one batch outside fit, then put every variable back (the
    weights, the optimizer's slots and step count), so that fit reuses that trace."""
    import keras
    import numpy as np

    if not model.optimizer.built:  # its slots, made at the first step, must be put back too
        model.optimizer.build(model.trainable_variables)
    variables = [*model.variables, *model.optimizer.variables]
    saved = [np.array(keras.ops.convert_to_numpy(variable)) for variable in variables]
    bare_step(model, batch)
    for variable, value in zip(variables, saved, strict=True):
        variable.assign(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=357)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--interleaved", type=int, metavar="N",
                        help="bare, stage and pydataset interleaved in one process, N timed cycles")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.interleaved:
        interleaved(args)
        return
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (the first two are not timed)")
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    variants = args.variants.split(",")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_} of {args.rounds}", flush=True)
        for variant in variants if round_ % 2 else variants[::-1]:
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", variant],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{variant}: failed\n{done.stderr[-3000:]}", flush=True)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{variant:10s} {result['ms_per_step']:7.1f} ms a step", flush=True)


if __name__ == "__main__":
    main()
