"""The model bundle: one folder holding the Keras model, its palette and what it was trained with.

Everything loads safely: JSON for data, Keras' safe mode for the model, never pickle.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colorize.core.artifacts import atomic_dir, json_bytes, read_json
from colorize.core.errors import BundleError
from colorize.quantize.palette import palette_from_dict

if TYPE_CHECKING:
    import keras

BUNDLE_FORMAT = 1
MODEL_FILE = "model.keras"
PALETTE_FILE = "palette.json"
META_FILE = "bundle.json"
REQUIRED_META = ("image_size", "gray_weights", "fill")
# Every member of model.keras gets this timestamp: the archive's bytes depend on the model only.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class Bundle:
    model: keras.Model
    palette: np.ndarray
    space: str
    meta: dict[str, Any]

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def gray_weights(self) -> list[float]:
        return list(self.meta["gray_weights"])

    @property
    def fill(self) -> list[int]:
        return list(self.meta["fill"])


def write_bundle(folder: Path, model: keras.Model, palette_data: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write model, palette and metadata into `folder`, replacing it whole (atomically)."""
    with atomic_dir(folder) as tmp:
        model.save(tmp / MODEL_FILE)
        normalize_keras_archive(tmp / MODEL_FILE)
        (tmp / PALETTE_FILE).write_bytes(json_bytes(palette_data))
        (tmp / META_FILE).write_bytes(json_bytes({"format": BUNDLE_FORMAT, **meta,
                                                  "model_sha256": file_sha256(tmp / MODEL_FILE)}))


def normalize_keras_archive(path: Path) -> None:
    """Rewrite a `.keras` zip so equal models give equal bytes: members sorted, one fixed timestamp and
    mode, and no save date in metadata.json (Keras stamps both with the time of saving)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in sorted(members, key=lambda member: member[0].filename):
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata, sort_keys=True).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type, fixed.create_system, fixed.external_attr = info.compress_type, 3, 0o644 << 16
            archive.writestr(fixed, data)


def _renumber_shared_objects(config: Any) -> Any:
    """Replace Keras' `shared_object_id`s (Python object addresses, new each run) by 1, 2, ... in order of
    first appearance: the same links between shared objects, the same bytes every run."""
    numbers: dict[Any, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id" else walk(value)
                    for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(config)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_file(folder: Path, meta: dict[str, Any]) -> None:
    """A truncated or altered model.keras fails here with one line, before Keras reads it."""
    path = Path(folder) / MODEL_FILE
    expected = meta.get("model_sha256")  # bundles written before it was recorded have none
    if expected is not None and (actual := file_sha256(path)) != expected:
        raise BundleError(f"model bundle {folder}: {path} is truncated or corrupt (sha256 expected "
                          f"{expected}, got {actual}); rerun `dvc repro` to restore or retrain it")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BundleError(f"model bundle {folder}: {path} is truncated or corrupt (not a complete "
                          f"zip archive: {exc})") from None
    if bad is not None:
        raise BundleError(f"model bundle {folder}: {path} is corrupt (member {bad} fails its CRC)")


def read_meta(folder: Path) -> dict[str, Any]:
    """The bundle's metadata, checked, without importing Keras."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"model bundle not found: {folder} (train one with `dvc repro train`)")
    missing = [name for name in (MODEL_FILE, PALETTE_FILE, META_FILE) if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"model bundle {folder} is incomplete: missing {', '.join(missing)}")
    try:
        meta = read_json(folder / META_FILE)
    except ValueError as exc:
        raise BundleError(f"model bundle {folder}: {META_FILE} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise BundleError(f"model bundle {folder} has format {found!r}, this version reads format {BUNDLE_FORMAT}")
    missing_keys = [key for key in REQUIRED_META if key not in meta]
    if missing_keys:
        raise BundleError(f"model bundle {folder}: {META_FILE} lacks {', '.join(missing_keys)}")
    return meta


def load_bundle(folder: Path) -> Bundle:
    """Load and cross-check a bundle: the model's input size and class count must match its metadata."""
    import colorize.model.models  # noqa: F401  registers the project's layers (GrayLevelPrior) for safe loading
    from colorize.model.backend import import_keras

    folder = Path(folder)
    meta = read_meta(folder)
    check_model_file(folder, meta)
    keras = import_keras()
    try:
        palette, space = palette_from_dict(read_json(folder / PALETTE_FILE))
    except (ValueError, KeyError) as exc:
        raise BundleError(f"model bundle {folder}: unreadable palette ({exc})") from None
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a corrupt or foreign file.
        raise BundleError(f"model bundle {folder}: cannot load {MODEL_FILE} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    _, height, width, channels = model.input_shape
    k = model.output_shape[-1]
    if (height, width, channels) != (meta["image_size"], meta["image_size"], 1) or k != len(palette):
        raise BundleError(f"model bundle {folder} is mismatched: model takes {height}x{width}x{channels} "
                          f"and predicts {k} colours, metadata says {meta['image_size']} and the palette "
                          f"has {len(palette)}")
    return Bundle(model=model, palette=palette, space=space, meta=meta)


# Test-time augmentation: the copies of the input the model also runs on, as (mirrored, dy, dx), the
# training augmentation's flips and shifts; their probabilities, moved back into place, are averaged.
TTA_VIEWS: dict[str, tuple[tuple[bool, int, int], ...]] = {
    "none": ((False, 0, 0),),
    "flip": ((False, 0, 0), (True, 0, 0)),
    "flip_shift": tuple((mirrored, dy, dx) for mirrored in (False, True)
                        for dy, dx in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))),
}
# Where no params.yaml applies (library calls, `colorize` without --tta); evaluate.tta agrees (tested).
DEFAULT_TTA = "flip"


def predict_probabilities(model: keras.Model, gray01: np.ndarray, batch_size: int = 64,
                          tta: str = DEFAULT_TTA) -> np.ndarray:
    """Per-pixel probabilities (N, S, S, K) float32, run through the model in batches: with `tta`, the mean
    over TTA_VIEWS[tta], each pixel over the views that saw it (a shift's repeated border is left out)."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"tta must be one of {', '.join(TTA_VIEWS)}, got {tta!r}")
    if len(gray01) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    gray01 = np.asarray(gray01, dtype=np.float32)

    def run(gray: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(gray[..., None], batch_size=batch_size, verbose=0), dtype=np.float32)

    views = TTA_VIEWS[tta]
    if len(views) == 1:
        return run(gray01)
    from colorize.model.training import shift_images

    side = gray01.shape[1]
    total, seen = 0.0, np.zeros((side, side, 1), np.float32)
    for mirrored, dy, dx in views:
        view = gray01[:, :, ::-1] if mirrored else gray01
        probs = shift_images(run(np.ascontiguousarray(shift_images(view, dy, dx))), -dy, -dx)
        covered = np.zeros((side, side, 1), np.float32)
        covered[max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0)] = 1
        if mirrored:
            probs, covered = probs[:, :, ::-1], covered[:, ::-1]
        total = total + probs * covered
        seen += covered
    return (total / seen).astype(np.float32)
