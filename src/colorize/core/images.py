"""Decide whether a file's bytes are a usable colour image, and decode it to 8-bit RGB or RGBA.

Every rejection is an `ImageRejected` with a short fixed reason (see `REASONS` in `colorize.fetch.ingest`)
and one human line of detail, so the fetch stage can record it instead of crashing.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Extensions the fetch reads as images (matched case-insensitively); anything else is `unknown_format`.
IMAGE_EXTENSIONS = frozenset({
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".avif", ".ppm", ".pgm", ".pbm", ".pnm", ".qoi",
})

# Pillow format name -> extension, for sources whose names carry none (URLs like /img?id=3).
FORMAT_EXTENSIONS = {
    "PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "GIF": ".gif", "BMP": ".bmp", "DIB": ".bmp",
    "TIFF": ".tif", "WEBP": ".webp", "AVIF": ".avif", "PPM": ".ppm", "QOI": ".qoi",
}

# Only these Pillow decoders are tried: the others read formats that are no photos (EPS runs
# Ghostscript, ICO/CUR are icons, FITS/HDF5 are science data) or have no magic number to check (TGA
# would "decode" stray text files). MPO opens through the JPEG decoder.
DECODED_FORMATS = ("AVIF", "BMP", "DIB", "GIF", "JPEG", "PNG", "PPM", "QOI", "TIFF", "WEBP")

# Substrings of Pillow's messages that mean "the data stopped early".
_TRUNCATION_HINTS = ("truncated", "premature end", "end of file", "not enough data")
# Magic numbers: a file that starts like an image but that Pillow cannot identify is damaged, not "no image".
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}

# The decompression-bomb guard where no params.yaml applies (`colorize`); the pipeline's
# own value is fetch.max_pixels.
DEFAULT_MAX_PIXELS = 64_000_000


class ImageRejected(ValueError):
    """A file is not a usable image; `reason` is a short fixed code, `detail` one human line."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    """What the fetch records about an accepted image (sizes after EXIF orientation)."""

    id: str
    width: int
    height: int
    mode: str      # the file's own mode, e.g. "P", "CMYK", "I;16"
    format: str    # Pillow's format name, e.g. "PNG"


def _open(data: bytes, max_pixels: int, limit_name: str = "fetch.max_pixels") -> Image.Image:
    """Open (header only) and check the claimed size before any pixel is decoded."""
    if not data:
        raise ImageRejected("empty_file", "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=DECODED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("decompression_bomb", str(exc).splitlines()[0]) from None
    except UnidentifiedImageError:
        kind = next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)
        if kind is not None:
            raise ImageRejected("corrupt", f"starts like a {kind} file but its header cannot be read") from None
        raise ImageRejected("not_an_image", "the content is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageRejected("truncated" if _looks_truncated(exc) else "corrupt", _one_line(exc)) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageRejected("decompression_bomb",
                            f"{width}x{height} = {width * height} pixels is over {limit_name} {max_pixels}")
    if width < 1 or height < 1:
        raise ImageRejected("corrupt", f"the header claims a size of {width}x{height}")
    return img


def _looks_truncated(exc: BaseException) -> bool:
    return isinstance(exc, EOFError) or any(h in str(exc).lower() for h in _TRUNCATION_HINTS)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _load_first_frame(img: Image.Image) -> Image.Image:
    """Decode the first frame's pixels and apply the EXIF orientation."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.seek(0)
            img.load()
    except Exception as exc:  # Pillow's decoders raise many types (OSError, SyntaxError, zlib.error, ...)
        raise ImageRejected("truncated" if _looks_truncated(exc) else "corrupt", _one_line(exc)) from None
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block should not cost the picture: keep it as stored
        oriented = img
    return oriented if oriented is not None else img


def _gray16_to_l(img: Image.Image) -> Image.Image:
    """Scale 16-bit (or 32-bit int / float) gray to 8 bits: v * 255 / 65535, rounded; no clipping at 255."""
    values = np.asarray(img)
    if img.mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0)
        # Float images are either [0, 1] (scaled) or already in 8-bit units.
        scaled = values * 255.0 if values.size and values.max() <= 1.0 else values
    else:
        scaled = np.clip(values.astype(np.float64), 0, 65535) * (255.0 / 65535.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, or RGBA when the image carries transparency."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _gray16_to_l(img).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in img.info
    target = "RGBA" if has_alpha else "RGB"
    if mode == target:
        return img
    try:
        return img.convert(target)  # CMYK, YCbCr, P, 1, L, LA, ... all convert here
    except (ValueError, OSError) as exc:
        raise ImageRejected("unsupported_mode", f"cannot convert mode {mode} to {target}: {_one_line(exc)}") from None


def decode_image(data: bytes, max_pixels: int, limit_name: str = "fetch.max_pixels") -> Image.Image:
    """Decode bytes to an 8-bit "RGB" or "RGBA" image: first frame, EXIF orientation applied,
    CMYK -> RGB, 16-bit scaled to 8-bit, LA/P/transparency -> RGBA; or raise `ImageRejected`."""
    return _to_rgb_or_rgba(_load_first_frame(_open(data, max_pixels, limit_name)))


def has_colour(img: Image.Image) -> bool:
    """True if any visible pixel has R, G and B not all equal."""
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    pixels = np.asarray(img)
    coloured = (pixels[..., 0] != pixels[..., 1]) | (pixels[..., 1] != pixels[..., 2])
    if img.mode == "RGBA":
        coloured &= pixels[..., 3] > 0  # colour hidden under full transparency is never seen
    return bool(coloured.any())


def pixel_id(img: Image.Image) -> str:
    """First 16 hex digits of sha256 over (width, height, RGBA pixels): equal pictures share an id."""
    rgba = img if img.mode == "RGBA" else img.convert("RGBA")
    digest = hashlib.sha256(struct.pack("<II", *rgba.size))
    digest.update(rgba.tobytes())
    return digest.hexdigest()[:16]


def inspect_image(data: bytes, *, max_pixels: int, min_side: int, keep_gray: bool) -> ImageInfo:
    """Apply the fetch's rules to one file: decodable, not a bomb, big enough, coloured (unless
    `keep_gray`); return what the manifest records, or raise `ImageRejected`."""
    opened = _open(data, max_pixels)
    file_mode, file_format = opened.mode, opened.format or "unknown"
    img = _to_rgb_or_rgba(_load_first_frame(opened))
    width, height = img.size
    if min(width, height) < min_side:
        raise ImageRejected("too_small", f"{width}x{height} has a side under fetch.min_side {min_side}")
    if not keep_gray and not has_colour(img):
        raise ImageRejected("no_colour", f"{file_mode} {width}x{height} has no colour (R=G=B everywhere)")
    return ImageInfo(pixel_id(img), width, height, file_mode, file_format)
