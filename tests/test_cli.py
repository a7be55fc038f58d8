"""cli.py: the `colorize` command end to end on a tiny bundle trained here in a few seconds.

In process through `colorize.app.cli.main([...])`, and as real processes: `python -m colorize` and the
`colorize` console script installed next to this interpreter.

Gray tolerance (the output's w . RGB against the input's, in gray levels of 255), measured on the tiny
bundle over this file's 11 test pictures: annealed_mean (the default) and mean: mean error per picture
0.05 to 2.7, max 3.8; argmax: mean 0.12 to 0.37, max 2.1. Where no output channel is 0 or 255 nothing was
clipped and the error is rounding only, at most 0.5 * sum(w) (measured 0.50). The rest is `match_gray`
clipping near white: a tint predicted for a white background cannot keep gray 255 exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorize.app.cli import main
from colorize.core.images import decode_image
from colorize.evaluate.evaluation import Images
from colorize.model import bundle as bundle_module
from colorize.model.bundle import DEFAULT_TTA, TTA_VIEWS
from colorize.prep.transforms import composite_on_fill, rgb_to_gray, square_resize
from gray_pairs import equal_gray_pair
from repo_params import repo_params

WEIGHTS = [0.21, 0.72, 0.07]
FILL = [255, 255, 255]
SIZE, K = 16, 8
TINY_PARAMS = repo_params("train", arch="unet", dropout=0.5, unet_filters=4, unet_depth=2, optimizer="adam",
                          precision="float32", lr=None, loss="categorical_crossentropy")
BIN = Path(sys.executable).parent  # the venv's bin: its `colorize` console script sits next to python
MEAN_GRAY_TOLERANCE, MAX_GRAY_TOLERANCE = 4.0, 6.0  # measured 2.7 and 3.8 (see the module docstring)
ROUNDING = 0.5 * sum(WEIGHTS) + 1e-3


# --- the tiny bundle (also used by test_generalisation.py and bench/colorize_cli.py) -------------------------

@dataclass
class TinyBundle:
    folder: Path
    train: Images  # the images it was trained on, as `evaluate` would hold them


def train_tiny_bundle(folder: Path, count: int = 24, seed: int = 0) -> Images:
    """Train a 16x16, K=8 U-Net for one epoch on `count` built-in images and write it as a bundle.

    The bundle's metadata is what stages/train.py writes. Takes a few seconds on a CPU.
    """
    from colorize.fetch.synthetic import generate_builtin
    from colorize.model.bundle import write_bundle
    from colorize.model.training import (
        compile_model,
        make_deterministic,
        weights_digest,
    )
    from colorize.quantize.palette import (
        fit_palette,
        nearest_palette_index,
        palette_to_dict,
    )

    names, rgb = [], []
    for name, data in generate_builtin(count, seed, "pika"):
        names.append(name)
        rgb.append(square_resize(decode_image(data, 10**8), SIZE, FILL, "lanczos"))
    rgb_array = np.stack(rgb)
    gray = rgb_to_gray(rgb_array, WEIGHTS)
    palette = fit_palette(rgb_array, K, "rgb", seed)
    labels = nearest_palette_index(rgb_array, palette, "rgb")
    make_deterministic(seed)
    model = compile_model(TINY_PARAMS, SIZE, K)
    model.fit(gray[..., None], labels, epochs=1, batch_size=8, verbose=0)
    meta = {"arch": "unet", "image_size": SIZE, "k": K, "palette_space": "rgb", "gray_weights": WEIGHTS,
            "fill": FILL, "resize_method": "lanczos", "train_params": asdict(TINY_PARAMS), "class_weights": None,
            "parameters": int(model.count_params()), "weights_sha256": weights_digest(model)}
    write_bundle(folder, model, palette_to_dict(palette, "rgb"), meta)
    return Images(names, rgb_array, gray, labels)


_TRAINED: dict[str, TinyBundle] = {}


def shared_tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    """One tiny bundle per test session, whichever module asks first (trained once, read only)."""
    if "tiny" not in _TRAINED:
        folder = tmp_path_factory.mktemp("tiny-bundle") / "models"
        _TRAINED["tiny"] = TinyBundle(folder, train_tiny_bundle(folder))
    return _TRAINED["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyBundle:
    return shared_tiny_bundle(tmp_path_factory)


# --- input pictures ---------------------------------------------------------------------------------------

SHAPES = [(1, 1), (17, 5), (5, 17), (301, 517), (7, 300), (300, 7)]  # (width, height)


def builtin_picture(index: int) -> Image.Image:
    """A built-in cartoon (another seed than the bundle's training images), as RGB."""
    from colorize.fetch.synthetic import generate_builtin

    data = list(generate_builtin(index + 1, 3, "pika"))[index][1]
    return decode_image(data, 10**8).convert("RGB")


def write_pictures(folder: Path) -> dict[str, Path]:
    """Odd sizes, RGBA, gray (L), palette (P) and JPEG inputs, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    base = builtin_picture(0)
    paths = {}
    for width, height in SHAPES:
        paths[f"rgb {width}x{height}"] = folder / f"rgb-{width}x{height}.png"
        base.resize((width, height), Image.Resampling.LANCZOS).save(paths[f"rgb {width}x{height}"])
    rgba = base.resize((40, 60)).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (60, 1))  # transparent on the left
    rgba.putalpha(Image.fromarray(alpha))
    paths["rgba"] = folder / "rgba.png"
    rgba.save(paths["rgba"])
    paths["gray"] = folder / "gray.png"
    base.resize((60, 41)).convert("L").save(paths["gray"])
    paths["palette"] = folder / "palette.png"
    base.resize((33, 20)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(paths["palette"])
    paths["jpeg"] = folder / "photo.jpg"
    base.resize((121, 80)).save(paths["jpeg"], quality=85)
    paths["gray jpeg"] = folder / "gray photo.jpeg"
    base.resize((64, 99)).convert("L").save(paths["gray jpeg"], quality=90)
    return paths


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> dict[str, Path]:
    return write_pictures(tmp_path_factory.mktemp("pictures"))


def input_gray(path: Path) -> np.ndarray:
    """The input's gray (0-255) as the command sees it: decoded, composited onto the fill, w . RGB."""
    image = composite_on_fill(decode_image(path.read_bytes(), 10**8), FILL)
    return rgb_to_gray(np.asarray(image), WEIGHTS) * 255


def run_main(capsys, *argv: str | Path) -> tuple[int, list[str]]:
    """Run the command in this process; (exit code, stderr lines)."""
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.splitlines()


def output_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# --- one picture in, one picture out ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def colorized(tiny, pictures, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("colorized")
    assert main([*map(str, pictures.values()), "-o", str(out), "--model", str(tiny.folder), "-q"]) == 0
    return out


def test_every_output_has_its_input_size_and_is_rgb(pictures, colorized):
    assert output_files(colorized) == {p.with_suffix(".png").name for p in pictures.values()}
    for path in pictures.values():
        with Image.open(colorized / path.with_suffix(".png").name) as out, Image.open(path) as given:
            assert out.format == "PNG" and out.mode == "RGB"
            assert out.size == given.size, path.name


@pytest.mark.parametrize("name", ["rgb 1x1", "rgb 17x5", "rgb 5x17", "rgb 301x517", "rgb 7x300", "rgb 300x7",
                                  "rgba", "gray", "palette", "jpeg", "gray jpeg"])
def test_output_gray_is_the_input_gray(pictures, colorized, name):
    path = pictures[name]
    out = np.asarray(Image.open(colorized / path.with_suffix(".png").name).convert("RGB"))
    error = np.abs(rgb_to_gray(out, WEIGHTS) * 255 - input_gray(path))
    assert error.mean() <= MEAN_GRAY_TOLERANCE and error.max() <= MAX_GRAY_TOLERANCE, (error.mean(), error.max())
    unclipped = ((out > 0) & (out < 255)).all(axis=-1)
    assert error[unclipped].max(initial=0) <= ROUNDING


def test_the_lightness_option_changes_the_colour_and_keeps_the_gray(tiny, pictures, colorized, tmp_path, capsys):
    """--lightness cielab (the gray's CIELAB lightness first) gives other colours than the default
    match_gray, with the same gray; the default is evaluate's (params.yaml's evaluate.lightness)."""
    path = pictures["rgb 301x517"]
    code, _ = run_main(capsys, path, "-o", tmp_path, "--model", tiny.folder, "-q", "--lightness", "cielab")
    assert code == 0
    cielab = np.asarray(Image.open(tmp_path / path.with_suffix(".png").name))
    default = np.asarray(Image.open(colorized / path.with_suffix(".png").name))
    moved = np.abs(cielab.astype(int) - default).max(axis=-1)
    assert moved.max() > 3 and (moved > 1).mean() > 0.05
    for out in (cielab, default):
        error = np.abs(rgb_to_gray(out, WEIGHTS) * 255 - input_gray(path))
        assert error.mean() <= MEAN_GRAY_TOLERANCE and error.max() <= MAX_GRAY_TOLERANCE


def test_regions_give_a_flat_region_one_colour_and_none_turns_that_off(tiny, tmp_path, capsys):
    """At the model's size (no resampling): two flat halves, each one colour by default (evaluate's
    region_tolerance); with --regions none the model's own pixel-to-pixel differences come back."""
    gray = np.full((SIZE, SIZE), 90, np.uint8)
    gray[:, SIZE // 2:] = 170
    Image.fromarray(gray).save(tmp_path / "halves.png")
    outputs = {}
    for name, argv in (("default", []), ("none", ["--regions", "none"])):
        code, _ = run_main(capsys, tmp_path / "halves.png", "-o", tmp_path / name, "--model", tiny.folder, *argv)
        assert code == 0
        outputs[name] = np.asarray(Image.open(tmp_path / name / "halves.png")).astype(int)
    for half in (slice(0, SIZE // 2), slice(SIZE // 2, SIZE)):
        assert np.ptp(outputs["default"][:, half].reshape(-1, 3), axis=0).max() == 0
    assert np.ptp(outputs["none"][:, :SIZE // 2].reshape(-1, 3), axis=0).max() > 0  # the test can fail
    for out in outputs.values():
        np.testing.assert_allclose(rgb_to_gray(out.astype(np.uint8), WEIGHTS) * 255, gray, atol=MAX_GRAY_TOLERANCE)


def test_gray_inputs_get_colour(pictures, colorized):
    """The model adds colour: a gray input does not come back gray."""
    out = np.asarray(Image.open(colorized / "gray.png")).astype(int)
    assert np.ptp(out, axis=-1).mean() > 1.0


def test_same_inputs_give_byte_identical_outputs_whatever_the_batch_size(tiny, pictures, colorized, tmp_path,
                                                                         capsys):
    code, _ = run_main(capsys, *pictures.values(), "-o", tmp_path, "--model", tiny.folder, "--batch-size", "1")
    assert code == 0
    for path in pictures.values():
        name = path.with_suffix(".png").name
        assert (tmp_path / name).read_bytes() == (colorized / name).read_bytes(), name


def colorize_pair(tiny, tmp_path, capsys, height: int, width: int) -> tuple[bytes, bytes]:
    a, b = equal_gray_pair(height, width, seed=height)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    code, _ = run_main(capsys, tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", "--model", tiny.folder)
    assert code == 0
    return (tmp_path / "out" / "a.png").read_bytes(), (tmp_path / "out" / "b.png").read_bytes()


def test_colour_inputs_are_turned_gray_first_at_the_model_size(tiny, tmp_path, capsys):
    first, second = colorize_pair(tiny, tmp_path, capsys, SIZE, SIZE)
    assert first == second


def test_colour_inputs_are_turned_gray_first_at_any_size(tiny, tmp_path, capsys):
    first, second = colorize_pair(tiny, tmp_path, capsys, 301, 517)
    assert first == second


def test_outputs_get_the_usual_file_permissions(tiny, pictures, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        code, _ = run_main(capsys, pictures["rgb 17x5"], "-o", tmp_path, "--model", tiny.folder)
    finally:
        os.umask(previous)
    assert code == 0
    assert stat.S_IMODE((tmp_path / "rgb-17x5.png").stat().st_mode) == 0o644


# --- folders ---------------------------------------------------------------------------------------------

def make_tree(root: Path) -> dict[str, str]:
    """A nested folder of pictures; returns {input path relative to root: expected output path}."""
    base = builtin_picture(1)
    layout = {
        "top.png": "top.png",
        "été 2024/plage 1.jpg": "été 2024/plage 1.png",
        "été 2024/日本語 写真.png": "été 2024/日本語 写真.png",
        "deep/er/still/IMG_0001.JPG": "deep/er/still/IMG_0001.png",
        "deep/same.png": "deep/same.png",
        "deep/same.jpg": "deep/same-1.png",  # one name from two inputs: both kept
    }
    for i, relative in enumerate(layout):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        base.resize((20 + 3 * i, 30 - 2 * i)).save(path, format="JPEG" if path.suffix.lower() == ".jpg" else "PNG")
    for ignored in [".hidden.png", ".git/objects/x.png", "deep/.cache/y.png", "notes.txt", "deep/data.npy"]:
        path = root / ignored
        path.parent.mkdir(parents=True, exist_ok=True)
        base.resize((9, 9)).save(path, format="PNG")
    return layout


def test_a_folder_is_walked_recursively_and_its_layout_kept(tiny, tmp_path, capsys):
    root = tmp_path / "my photos"
    layout = make_tree(root)
    out = tmp_path / "out"
    code, err = run_main(capsys, root, "-o", out, "--model", tiny.folder)
    assert code == 0, err
    assert output_files(out) == {f"my photos/{target}" for target in layout.values()}
    assert err == [f"colorize: {len(layout)} of {len(layout)} pictures written to {out}"]
    # Each output has the size of its own input (same.png and same.jpg are not mixed up).
    expected = {(20 + 3 * i, 30 - 2 * i) for i in range(len(layout))}
    sizes = {Image.open(out / "my photos" / target).size for target in layout.values()}
    assert sizes == expected


def test_broken_and_missing_inputs_are_reported_and_the_rest_written(tiny, pictures, tmp_path, capsys):
    root = tmp_path / "batch"
    layout = make_tree(root)
    (root / "deep" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "empty.jpg").write_bytes(b"")
    missing = tmp_path / "no such picture.png"
    out = tmp_path / "out"
    code, err = run_main(capsys, root, pictures["jpeg"], missing, "-o", out, "--model", tiny.folder,
                         "--batch-size", "3")
    assert code == 1
    assert output_files(out) == {f"batch/{t}" for t in layout.values()} | {"photo.png"}
    errors = [line for line in err if line.startswith("colorize: error: ")]
    assert len(errors) == 3 and len(err) == 4, err
    assert any(str(root / "deep" / "broken.png") in line for line in errors)
    assert any(str(root / "empty.jpg") in line and "empty" in line for line in errors)
    assert any(str(missing) in line and "no such file or folder" in line for line in errors)
    total = len(layout) + 3
    assert err[-1] == f"colorize: {total - 2} of {total} pictures written to {out}; 3 failed"


def test_too_many_pixels_is_a_reported_failure(tiny, pictures, tmp_path, capsys):
    code, err = run_main(capsys, pictures["rgb 301x517"], pictures["rgb 1x1"], "-o", tmp_path,
                         "--model", tiny.folder, "--max-pixels", "1000")
    assert code == 1
    assert output_files(tmp_path) == {"rgb-1x1.png"}
    assert "decompression_bomb" in err[0] and str(pictures["rgb 301x517"]) in err[0]
    assert "over --max-pixels 1000" in err[0] and "fetch.max_pixels" not in err[0]


def test_a_max_pixels_above_pillows_own_limit_is_honoured(tiny, pictures, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow refuses above twice this: 301x517 is
    code, err = run_main(capsys, pictures["rgb 301x517"], "-o", tmp_path, "--model", tiny.folder,
                         "--max-pixels", "1000000")
    assert code == 0, err
    assert output_files(tmp_path) == {"rgb-301x517.png"}


def test_batches_are_cut_by_the_memory_budget_not_only_by_count(tmp_path):
    from colorize.app.cli import Job, batch_bytes, memory_batches

    jobs = [Job(tmp_path / f"{i}.png", tmp_path / f"{i}-out.png") for i in range(6)]
    pixels = {job.source: n for job, n in zip(jobs, [10**6, 10**6, 10**6, 4 * 10**6, 10**6, 10**8])}
    budget = batch_bytes([10**6] * 3)
    planned = list(memory_batches(jobs, 32, budget, pixels_of=pixels.__getitem__))
    batches = [[job.source.name for job in batch] for batch, _ in planned if batch]
    assert batches == [["0.png", "1.png", "2.png"], ["4.png"]]
    refused = [line for _, errors in planned for line in errors]
    assert len(refused) == 2 and all("over --max-memory" in line for line in refused)
    assert refused[0].startswith(str(jobs[3].source)) and refused[1].startswith(str(jobs[5].source))
    for batch, _ in planned:
        assert batch_bytes([pixels[job.source] for job in batch]) <= budget
    assert [len(b) for b, _ in memory_batches(jobs[:3], 2, budget, pixels_of=pixels.__getitem__)] == [2, 1]


@pytest.mark.parametrize(("text", "expected"), [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29),
                                                ("1000", 1000)])
def test_memory_sizes_are_parsed(text, expected):
    from colorize.app.cli import parse_bytes

    assert parse_bytes(text) == expected


def test_a_bad_memory_size_exits_2(pictures, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        run_main(capsys, pictures["gray"], "-o", tmp_path, "--max-memory", "lots")
    assert caught.value.code == 2


def test_an_unwritable_output_is_reported(tiny, pictures, tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    code, err = run_main(capsys, pictures["gray"], "-o", blocker, "--model", tiny.folder)
    assert code == 1
    assert err[0].startswith(f"colorize: error: {pictures['gray']}: cannot write")


def test_an_empty_folder_writes_nothing_and_succeeds(tiny, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = run_main(capsys, tmp_path / "empty", "-o", tmp_path / "out", "--model", tiny.folder)
    assert code == 0 and err == [f"colorize: 0 of 0 pictures written to {tmp_path / 'out'}"]


# --- batching ----------------------------------------------------------------------------------------------

class CountingModel:
    """Stands in for the Keras model and records the size of every `predict` call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    @property
    def output_shape(self):
        return self.model.output_shape

    def predict(self, x, **kwargs):
        self.calls.append((len(x), kwargs.get("batch_size")))
        return self.model.predict(x, **kwargs)


@pytest.mark.parametrize("tta", [None, "none", "flip_shift"])
def test_pictures_go_through_the_model_in_batches(tiny, tmp_path, capsys, monkeypatch, tta):
    for i in range(10):
        builtin_picture(0).resize((10 + i, 30)).save(tmp_path / f"in-{i}.png")
    counting: list[CountingModel] = []
    probabilities: list[int] = []
    real_load, real_predict = bundle_module.load_bundle, bundle_module.predict_probabilities

    def load(folder):
        loaded = real_load(folder)
        loaded.model = CountingModel(loaded.model)
        counting.append(loaded.model)
        return loaded

    def predict(model, gray01, batch_size=64, tta=DEFAULT_TTA):
        probabilities.append(len(gray01))
        return real_predict(model, gray01, batch_size, tta)

    monkeypatch.setattr(bundle_module, "load_bundle", load)
    monkeypatch.setattr(bundle_module, "predict_probabilities", predict)
    code, _ = run_main(capsys, *sorted(tmp_path.glob("in-*.png")), "-o", tmp_path / "out",
                       "--model", tiny.folder, "--batch-size", "4", *(["--tta", tta] if tta else []))
    assert code == 0 and len(output_files(tmp_path / "out")) == 10
    assert probabilities == [4, 4, 2]
    views = len(TTA_VIEWS[tta or DEFAULT_TTA])  # the model runs once per view of each batch
    assert counting[0].calls == [(4, 4)] * views + [(4, 4)] * views + [(2, 4)] * views


# --- bad bundles and bad arguments --------------------------------------------------------------------------

def broken_copy(tiny, tmp_path: Path, change) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(tiny.folder, folder)
    change(folder)
    return folder


def edit_meta(**values):
    def change(folder: Path) -> None:
        meta = json.loads((folder / "bundle.json").read_text())
        for key, value in values.items():
            if value is None:
                meta.pop(key)
            else:
                meta[key] = value
        (folder / "bundle.json").write_text(json.dumps(meta))
    return change


@pytest.mark.parametrize(("change", "words"), [
    (lambda folder: shutil.rmtree(folder), "not found"),
    (lambda folder: (folder / "palette.json").unlink(), "missing palette.json"),
    (lambda folder: (folder / "model.keras").write_bytes(b"junk"), "model.keras is truncated or corrupt"),
    (edit_meta(image_size=32), "mismatched"),
    (edit_meta(format=99), "format 99"),
    (edit_meta(decode="median"), "decode must be one of argmax, mean, annealed_mean, got 'median'"),
], ids=["missing", "incomplete", "corrupt model", "mismatched size", "newer format", "bad decode"])
def test_a_bad_bundle_is_one_line_and_exit_2(tiny, pictures, tmp_path, capsys, change, words):
    folder = broken_copy(tiny, tmp_path, change)
    code, err = run_main(capsys, pictures["gray"], "-o", tmp_path / "out", "--model", folder)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("colorize: error: ") and words in err[0], err
    assert str(folder) in err[0]
    assert not (tmp_path / "out").exists()


def test_the_default_decoding_is_the_bundles_where_it_records_one(tiny, pictures, tmp_path, capsys):
    """bundle.json's decode/temperature, when there, are the defaults; the options still win."""
    folder = broken_copy(tiny, tmp_path, edit_meta(decode="annealed_mean", temperature=1.0))
    outputs = {}
    for name, model, options in [("bundle's", folder, []), ("explicit", tiny.folder, ["--temperature", "1.0"]),
                                 ("constant", tiny.folder, []), ("option wins", folder, ["--temperature", "0.6"])]:
        code, _ = run_main(capsys, pictures["rgb 17x5"], "-o", tmp_path / name, "--model", model, "-q", *options)
        assert code == 0
        outputs[name] = (tmp_path / name / "rgb-17x5.png").read_bytes()
    assert outputs["bundle's"] == outputs["explicit"] != outputs["constant"] == outputs["option wins"]


def test_a_bundle_without_image_size_is_one_line_and_exit_2(tiny, pictures, tmp_path, capsys):
    folder = broken_copy(tiny, tmp_path, edit_meta(image_size=None))
    code, err = run_main(capsys, pictures["gray"], "-o", tmp_path / "out", "--model", folder)
    assert code == 2 and len(err) == 1 and err[0].startswith("colorize: error: ") and "image_size" in err[0], err


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--temperature", "0"], ["--decode", "median"], [],
                                  ["--regions", "256"], ["--regions", "-1"], ["--regions", "some"],
                                  ["--region-min-pixels", "0"]])
def test_bad_arguments_exit_2(pictures, tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as info:
        main([str(pictures["gray"]), *(["-o", str(tmp_path)] if argv else []), *argv])
    assert info.value.code == 2
    assert "colorize: error: " in capsys.readouterr().err


# --- as real processes --------------------------------------------------------------------------------------

def run_command(command: list[str | Path], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def module_run(tiny, pictures, colorized, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`python -m colorize` on every picture (relative paths, default --model models/ in its folder)."""
    work = tmp_path_factory.mktemp("module-run")
    shutil.copytree(tiny.folder, work / "models")
    shutil.copytree(pictures["gray"].parent, work / "in")
    return run_command([sys.executable, "-m", "colorize", "in", "-o", "out"], cwd=work), work


def test_python_m_colorize_writes_what_main_writes(module_run, pictures, colorized):
    done, work = module_run
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert output_files(work / "out") == {f"in/{p.with_suffix('.png').name}" for p in pictures.values()}
    for path in pictures.values():
        name = path.with_suffix(".png").name
        assert (work / "out" / "in" / name).read_bytes() == (colorized / name).read_bytes(), name


def test_the_command_prints_only_its_own_lines(module_run, pictures):
    done, _ = module_run
    assert done.stderr.splitlines() == [f"colorize: {len(pictures)} of {len(pictures)} pictures written to out"]


def test_console_script_on_a_folder_with_a_broken_file(tiny, tmp_path):
    script = BIN / "colorize"
    assert script.is_file(), f"no console script at {script}"
    layout = make_tree(tmp_path / "photos")
    (tmp_path / "photos" / "deep" / "broken.png").write_bytes(b"GIF89a not a gif")
    done = run_command([script, "photos", "-o", "out", "--model", tiny.folder, "-q"], cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("colorize: ")]
    assert ours[0].startswith(f"colorize: error: {Path('photos/deep/broken.png')}: ")
    assert ours[1] == f"colorize: {len(layout)} of {len(layout) + 1} pictures written to out; 1 failed"
    assert output_files(tmp_path / "out") == {f"photos/{t}" for t in layout.values()}


def test_console_script_without_a_bundle(tmp_path, pictures):
    done = run_command([BIN / "colorize", pictures["gray"], "-o", "out"], cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorize: error: model bundle not found: models"), lines
    assert not (tmp_path / "out").exists()


def test_help_prints_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    for option in ("--model", "--decode", "--temperature", "--lightness", "--max-pixels", "--max-memory", "--quiet",
                   "--regions", "--region-min-pixels"):
        assert option in text, option
    assert "the bundle's, else annealed_mean)" in text and "the bundle's, else 0.6)" in text and "of RAM)" in text
