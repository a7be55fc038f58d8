"""Stage train: fit the chosen architecture on the training split, early-stopped on validation."""

from __future__ import annotations

import _bootstrap  # noqa: F401  (first: this checkout's src/ ahead of the editable install)

from typing import TYPE_CHECKING

from colorize.core.stage import run_stage, stage_args

if TYPE_CHECKING:
    from colorize.core.params import TrainParams


def check_fits(params: TrainParams, size: int, k: int, memory_bytes: int | None = None) -> None:
    """Refuse, before any work, what cannot run: soft targets or the chroma term for another loss, or both
    together; odd sizes for the U-Net; the seed model beyond RAM.

    `memory_bytes` is the RAM to judge against (default: this machine's), so tests need not depend on
    the machine they run on.
    """
    from colorize.core.errors import ParamError
    from colorize.model.budget import seed_param_count, total_memory_bytes, training_bytes

    depth = params.unet_depth
    for key, used in (("soft_targets", params.soft_targets is not None), ("chroma_weight", params.chroma_weight > 0)):
        if used and params.loss != "categorical_crossentropy":
            raise ParamError(f"params.yaml: train.{key} is for train.loss categorical_crossentropy, "
                             f"got {params.loss}")
    if params.soft_targets is not None and params.chroma_weight > 0:
        raise ParamError("params.yaml: train.soft_targets and train.chroma_weight do not combine "
                         "(set one of them to null / 0)")
    if params.arch == "unet" and size % 2**depth:
        raise ParamError(f"params.yaml: train.unet_depth={depth} needs resize.image_size divisible by {2**depth}, "
                         f"got {size}")
    if params.arch == "seed":
        count = seed_param_count(size, k)
        need = training_bytes(count)
        have = total_memory_bytes() if memory_bytes is None else memory_bytes
        if need > 0.8 * have:
            raise ParamError(f"params.yaml: train.arch=seed at {size}x{size} with {k} colours has "
                             f"{count:,} parameters and needs about {need / 2**30:.1f} GiB to "
                             f"train; this machine has {have / 2**30:.1f} GiB "
                             "(use a smaller resize.image_size or a GPU)")


def main() -> None:
    import time
    from dataclasses import asdict

    from colorize.core.artifacts import atomic_dir, read_json
    from colorize.core.dataset import artifact_info, load_split, part_rows
    from colorize.core.params import load_section
    from colorize.quantize.palette import palette_from_dict

    args = stage_args(__doc__, gray="data/gray", labels="data/labels", split="data/split.json",
                      palette="data/palette", resized="data/resized", model="models", live="metrics/train")
    params = load_section("train", args.params)
    gray_info = artifact_info(args.gray)
    palette_data = read_json(args.palette / "palette.json")
    palette, space = palette_from_dict(palette_data)
    size, k = gray_info["size"], len(palette)
    check_fits(params, size, k)  # before Keras, TensorFlow and DVCLive load

    from dvclive import Live

    from colorize.model.bundle import write_bundle
    from colorize.model.devices import use_all_local_devices
    from colorize.model.training import (
        DECODED_MONITORS,
        DecodedTarget,
        LiveLogger,
        check_finite_weights,
        class_weights_for,
        fit,
        make_deterministic,
        model_for_training,
        weights_digest,
    )

    split = load_split(args.split)
    # Read batch by batch from the shards: memory does not grow with the data set.
    train = (part_rows(args.gray, split["train"]), part_rows(args.labels, split["train"]))
    val = (part_rows(args.gray, split["val"]), part_rows(args.labels, split["val"]))
    # The original colours, for the monitors that score the decoded validation images (train.monitor);
    # opening them verifies every shard, so only when monitored.
    target = (DecodedTarget(part_rows(args.resized, split["val"]), palette, gray_info["weights"])
              if params.monitor in DECODED_MONITORS else None)
    weights = class_weights_for(params, train[1], k, palette)
    make_deterministic(params.seed)
    devices = use_all_local_devices()
    model = model_for_training(params, size, k, *train, palette=palette)
    print(f"train: {params.arch} with {model.count_params():,} parameters on {len(train[0])} images "
          f"({len(val[0])} for validation), {size}x{size}, {k} colours"
          + (f", data parallel over {devices} devices" if devices > 1 else ""))
    started = time.perf_counter()
    with atomic_dir(args.live) as live_dir, Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        summary = fit(model, params, train, val, weights, callbacks=[LiveLogger(live)], target=target)
        check_finite_weights(model)
        # A lean summary (the bundle keeps the full one): DVCLive's train.loss would clash with the
        # train.loss param in `dvc exp show`. Wall time varies run to run, so it is only printed: tracked
        # metrics stay byte-identical across reruns.
        live.summary.clear()
    seconds = time.perf_counter() - started
    meta = {
        "arch": params.arch,
        "image_size": size,
        "k": k,
        "palette_space": space,
        "gray_weights": gray_info["weights"],
        "fill": gray_info["fill"],
        "resize_method": gray_info["method"],
        "resize_crop": gray_info.get("crop", "none"),
        "train_params": asdict(params),
        "class_weights": None if weights is None else [float(w) for w in weights],
        "parameters": int(model.count_params()),
        "weights_sha256": weights_digest(model),
        **summary,
    }
    write_bundle(args.model, model, palette_data, meta)
    epochs = summary["epochs_run"]
    print(f"train: {epochs} epochs ({summary['steps_run']} steps) in {seconds:.0f} s "
          f"({epochs * len(train[0]) / seconds:.1f} images/s), "
          f"best epoch {summary['best_epoch']} -> {args.model}")


if __name__ == "__main__":
    run_stage(main)
