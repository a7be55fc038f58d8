"""Tuning sweep on real pictures, scored on validation splits only (never test): issue 7's tuning table.

Each run is the pipeline's own code, stage by stage (resize -> grayscale -> palette -> encode -> train ->
evaluate), on one set's fetched images with a few params changed, scored on that set's validation split
with every baseline. Runs go in parallel processes (one GPU is shared well: a small U-Net at batch 16
leaves it mostly idle) and each result is appended to a JSON-lines file as soon as it is done, so a run
cut short still reports what finished.

    python bench/tuning_sweep.py prepare --out /tmp/sweep           # fetch + split every set, on this machine
    KERAS_BACKEND=jax python bench/tuning_sweep.py run --data /tmp/sweep --jobs 8 --results out.jsonl
    python bench/tuning_sweep.py table out.jsonl                    # the table, against each set's default
    python bench/tuning_sweep.py run --data /tmp/sweep --configs default --train-shares 1 0.5 0.25 \
        --jobs 1 --results curve.jsonl                              # a learning curve on the same validation

`prepare` reads the real sets that `bench/realdata.py` builds (its cache) plus the built-in set; `run`
needs neither DVC nor the network, so the prepared folder can travel to a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from colorize.evaluate.decoding import DEFAULT_TEMPERATURE  # noqa: E402
from realdata import CACHE, parse_overrides  # noqa: E402
from workspace import merge  # noqa: E402

# name -> param overrides ("section.key": value); the order is the order of the runs.
CONFIGS: dict[str, dict] = {
    "default": {},
    "rebalance 0": {"train.rebalance": 0.0},
    "unet_filters 32": {"train.unet_filters": 32},
    "min_steps 3000": {"train.min_steps": 3000},
    "palette lab": {"palette.space": "lab"},
    "k 16": {"palette.k": 16},
    "k 64": {"palette.k": 64},
    "loss seed_ordinal": {"train.loss": "seed_ordinal"},
    "gray_prior off": {"train.gray_prior": False},
    "crop content": {"resize.crop": "content"},
    "filters 32, depth 4": {"train.unet_filters": 32, "train.unet_depth": 4},
    "depth 4": {"train.unet_depth": 4},
    "min_epochs 20, min_steps 3000": {"train.min_epochs": 20, "train.min_steps": 3000},
    "monitor val_loss": {"train.monitor": "val_loss"},
    "monitor val_psnr": {"train.monitor": "val_psnr"},
    "monitor val_ciede2000": {"train.monitor": "val_ciede2000"},
    "monitor val_psnr, k 16": {"train.monitor": "val_psnr", "palette.k": 16},
    "monitor val_psnr, k 16, min_epochs 40": {"train.monitor": "val_psnr", "palette.k": 16, "train.min_epochs": 40},
    "monitor val_accuracy": {"train.monitor": "val_accuracy"},
    "ema 0.99": {"train.ema": 0.99},
    "ema 0.998": {"train.ema": 0.998},
    "ema 0.998, min_epochs 40": {"train.ema": 0.998, "train.min_epochs": 40},
    "weight_decay 1": {"train.weight_decay": 1.0},
    "weight_decay 4": {"train.weight_decay": 4.0},
    "weight_decay 16": {"train.weight_decay": 16.0},
    "rotate": {"train.rotate": True},
    "lr 0.003": {"train.lr": 0.003},
    "loss l1": {"train.loss": "l1"},
    # On a small set min_steps makes the epochs: batch 8 takes as many steps on half the images seen, with
    # min_steps 2000 twice the steps on as many images.
    "batch 8": {"train.batch_size": 8},
    "batch 8, min_steps 2000": {"train.batch_size": 8, "train.min_steps": 2000},
    "filters 32, min_steps 3000, rebalance 0": {"train.unet_filters": 32, "train.min_steps": 3000,
                                                "train.rebalance": 0.0},
    "soft_targets 5": {"train.soft_targets": 5.0},
    "soft_targets 10": {"train.soft_targets": 10.0},
    "chroma_weight 0.1": {"train.chroma_weight": 0.1},
    "chroma_weight 0.5": {"train.chroma_weight": 0.5},
    # Session 29: a longer schedule, with and without early stopping, and the same images in twice the steps.
    "min_steps 4000": {"train.min_steps": 4000},
    "min_steps 4000, patience off": {"train.min_steps": 4000, "train.patience": 100000},
    "batch 4, min_steps 4000": {"train.batch_size": 4, "train.min_steps": 4000},
}
REAL_SETS = ("openmoji", "twemoji", "wesnoth")
# The default decoding temperature (evaluate.temperature; first: the tables report it) and the previous one.
TEMPERATURES = (DEFAULT_TEMPERATURE, 0.38)
DEFAULT_T = str(TEMPERATURES[0])


def load_params() -> dict:
    from colorize.core.params import read_yaml

    return read_yaml(ROOT / "params.yaml")


def with_overrides(params: dict, *changes: dict) -> dict:
    """params.yaml with nested changes merged in, every section validated as the stages validate it."""
    from colorize.core.params import SECTIONS, validate

    for change in changes:
        params = merge(params, change)
    return {name: validate(name, params[name], cls) for name, cls in SECTIONS.items()}


def config_change(config: str) -> dict:
    """A config's `section.key` overrides as the nested change `dvc exp run -S` would make."""
    return parse_overrides([f"{key}={json.dumps(value)}" for key, value in CONFIGS[config].items()])


def prepare(out: Path) -> None:
    """Fetch (the stage's code and params) and split every set into `out/<set>/{raw,split.json}`."""
    from colorize.core.artifacts import write_json_atomic
    from colorize.core.rawstore import read_manifest
    from colorize.fetch.ingest import run_fetch
    from colorize.prep.splitting import split_ids

    params = with_overrides(load_params())
    sources = {"builtin": "builtin", **{name: str(CACHE / name / "images") for name in REAL_SETS}}
    for name, source in sources.items():
        if name != "builtin" and not Path(source).is_dir():
            raise SystemExit(f"{source} is missing: run `python bench/realdata.py` once to build the sets")
        folder = out / name
        run_fetch(replace(params["fetch"], source=source), folder / "raw", None, progress=False)
        ids = [entry["id"] for entry in read_manifest(folder / "raw")["accepted"]]
        split = params["split"]
        write_json_atomic(folder / "split.json", split_ids(ids, split.test_size, split.val_size, split.seed))
        print(f"{name}: {len(ids)} images -> {folder}")


def check_share(share: float) -> None:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise SystemExit(f"--train-share must be in (0, 1], got {share!r}")


def subsample_train(split: dict, share: float, seed: int) -> dict:
    """The split with its training ids cut to `share` of them (a seeded draw, their order kept); validation
    and test unchanged, so runs at several shares are scored on the same pictures: a learning curve."""
    check_share(share)
    if share == 1:
        return split
    train = list(split["train"])
    count = round(len(train) * share)
    if count < 1:
        raise SystemExit(f"--train-share {share} leaves no training picture of {len(train)}")
    kept = set(np.random.default_rng(seed).choice(len(train), count, replace=False).tolist())
    return {**split, "train": [item for index, item in enumerate(train) if index in kept]}


def run_label(config: str, share: float) -> str:
    return config if share == 1 else f"{config}, {share:g} of train"


def run_one(data: Path, set_name: str, config: str, common: dict, train_share: float = 1.0) -> dict:
    """One run: every stage's code on `set_name` with `config`'s params, scored on the validation split;
    `train_share` < 1 trains on that share of the training split (subsample_train)."""
    from colorize.core.dataset import load_part, load_split, part_rows
    from colorize.core.streaming import ShardedRows, sample_pixels_streamed
    from colorize.evaluate.evaluation import Images, model_probabilities, score_all
    from colorize.evaluate.headline import headline
    from colorize.model.training import (
        DecodedTarget,
        class_weights_for,
        fit,
        make_deterministic,
        model_for_training,
    )
    from colorize.prep.preprocess import gray_from_resized
    from colorize.prep.resizing import resize_raw
    from colorize.quantize.encode import encode_resized
    from colorize.quantize.palette import fit_palette

    params = with_overrides(load_params(), common, config_change(config))
    started = time.perf_counter()
    split = subsample_train(load_split(data / set_name / "split.json"), train_share, params["split"].seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        resize, train_p = params["resize"], params["train"]
        resize_raw(data / set_name / "raw", work / "resized", resize.image_size, resize.fill, resize.method,
                   workers=1, progress=False, crop=resize.crop)
        gray_from_resized(work / "resized", work / "gray", params["grayscale"].weights, progress=False)
        pal = params["palette"]
        pixels = sample_pixels_streamed(part_rows(work / "resized", split["train"]), pal.sample_pixels, pal.seed)
        palette = fit_palette(pixels, pal.k, pal.space, pal.seed)
        encode_resized(work / "resized", work / "labels", palette, pal.space, progress=False)

        train = (part_rows(work / "gray", split["train"]), part_rows(work / "labels", split["train"]))
        val = (part_rows(work / "gray", split["val"]), part_rows(work / "labels", split["val"]))
        k = len(palette)
        weights = class_weights_for(train_p, train[1], k, palette)  # as stages/train.py
        make_deterministic(train_p.seed)
        model = model_for_training(train_p, resize.image_size, k, *train, palette=palette)
        target = DecodedTarget(part_rows(work / "resized", split["val"]), palette,
                               params["grayscale"].weights)  # as stages/train.py
        summary = fit(model, train_p, train, val, weights, verbose=0, target=target)
        trained = time.perf_counter()

        folders = (work / "resized", work / "gray", work / "labels")
        val_images = Images(split["val"], *(load_part(folder, split["val"]) for folder in folders))
        train_images = Images(split["train"], *(ShardedRows(folder, split["train"]) for folder in folders))
        probs = model_probabilities(model, val_images.gray, params["evaluate"])
        scores = {}
        for temperature in TEMPERATURES:
            evaluate = replace(params["evaluate"], temperature=temperature)
            metrics, _, _ = score_all(probs, val_images, train_images, palette, evaluate,
                                      params["grayscale"].weights, fill=resize.fill)
            scores[str(temperature)] = {"model": headline(metrics),
                                        "baselines": {name: {key: metrics["baselines"][name].get(key) for key in
                                                             ("accuracy", "psnr", "ssim", "ciede2000")}
                                                      for name in ("gray", "gray_lookup", "example_transfer",
                                                                   "oracle_keep_luminance")}}
    return {"set": set_name, "config": config, "overrides": CONFIGS[config], "train_share": train_share,
            "val_images": len(split["val"]),
            "train_images": len(split["train"]), "parameters": int(model.count_params()), **summary,
            "train_s": round(trained - started, 1), "total_s": round(time.perf_counter() - started, 1),
            "scores": scores}


def run_all(data: Path, sets: list[str], configs: list[str], jobs: int, results: Path, common: list[str],
            shares: list[float] = (1.0,)) -> None:
    """Every (config, set, training share) in its own process, `jobs` at a time; each result appended as it
    finishes."""
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    todo = [(config, name, share) for config in configs for share in shares for name in sets]

    def one(item: tuple[str, str, float]) -> None:
        config, name, share = item
        command = [sys.executable, __file__, "one", "--data", str(data), "--set", name, "--config", config,
                   f"--train-share={share}", *(f"--override={item}" for item in common)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            line = {"set": name, "config": config, "train_share": share,
                    "error": done.stderr.strip().splitlines()[-5:]}
        else:
            line = json.loads(done.stdout.strip().splitlines()[-1])
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        print(summary_line(line), flush=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def summary_line(line: dict) -> str:
    label = run_label(line["config"], line.get("train_share", 1))
    if "error" in line:
        return f"{line['set']:9} {label:40} ERROR {' | '.join(line['error'])}"
    model = line["scores"][DEFAULT_T]["model"]
    lookup = line["scores"][DEFAULT_T]["baselines"]["gray_lookup"]
    return (f"{line['set']:9} {label:40} acc {model['acc']:.3f} (lookup {lookup['accuracy']:.3f}) "
            f"psnr {model['psnr']:.2f} ssim {model['ssim']:.3f} de00 {model['de00']:.2f} gap {model['gap']} "
            f"| T0.38 gap {line['scores']['0.38']['model']['gap']} | {line['epochs_run']} ep, best "
            f"{line['best_epoch']}, {line['total_s']} s")


def table(results: Path) -> str:
    """Validation figures of every run; the gap's change against the set's default run in brackets."""
    lines = [json.loads(text) for text in results.read_text(encoding="utf-8").splitlines() if text.strip()]
    done = {(line["set"], run_label(line["config"], line.get("train_share", 1))): line
            for line in lines if "error" not in line}
    shares = sorted({line.get("train_share", 1) for line in lines}, reverse=True)
    sets = sorted({name for name, _ in done})
    rows = ["| config | " + " | ".join(f"{name} acc / PSNR / SSIM / CIEDE2000 / gap" for name in sets) + " |",
            "| --- |" + " --- |" * len(sets)]
    for label in [run_label(config, share) for config in CONFIGS for share in shares]:
        cells = []
        for name in sets:
            line = done.get((name, label))
            if line is None:
                cells.append("")
                continue
            m = line["scores"][DEFAULT_T]["model"]
            base = done.get((name, "default"))
            delta = "" if base is None or label == "default" or m["gap"] is None else \
                f" ({m['gap'] - base['scores'][DEFAULT_T]['model']['gap']:+.2f})"
            cells.append(f"{m['acc']:.3f} / {m['psnr']:.2f} / {m['ssim']:.3f} / {m['de00']:.2f} / {m['gap']}{delta}")
        if any(cells):
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--sets", nargs="+", default=[*REAL_SETS, "builtin"])
    r.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    r.add_argument("--results", type=Path, required=True)
    o = sub.add_parser("one")
    o.add_argument("--data", type=Path, required=True)
    o.add_argument("--set", required=True)
    o.add_argument("--config", required=True, choices=list(CONFIGS))
    r.add_argument("--train-shares", nargs="+", type=float, default=[1.0], metavar="SHARE",
                   help="also train on these shares of each training split (a learning curve; validation unchanged)")
    o.add_argument("--train-share", type=float, default=1.0)
    for command in (r, o):
        command.add_argument("--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                             help="a param for every run, under each config's own")
    t = sub.add_parser("table")
    t.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out)
    elif args.command == "run":
        for share in args.train_shares:  # refused before any run starts
            check_share(share)
        run_all(args.data, args.sets, args.configs, args.jobs, args.results, args.override, args.train_shares)
    elif args.command == "one":
        print(json.dumps(run_one(args.data, args.set, args.config, parse_overrides(args.override),
                                 args.train_share)))
    else:
        print(table(args.results))


if __name__ == "__main__":
    main()
