"""Image geometry and gray conversion: composite, pad to a square, resize, weighted gray."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageChops, ImageOps

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
# What a caller gets without naming a method, and what a bundle that predates `resize_method` used.
DEFAULT_METHOD = "lanczos"
NO_CROP = "none"


def composite_on_fill(image: Image.Image, fill: Sequence[int]) -> Image.Image:
    """Flatten transparency onto `fill`; an image without alpha is only converted to RGB."""
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (*fill, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def drawing_box(image: Image.Image, fill: Sequence[int]) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels of an RGB image that are not the fill colour; None if none."""
    page = Image.new("RGB", image.size, tuple(fill))
    return ImageChops.difference(image.convert("RGB"), page).getbbox()


def crop_to_content(image: Image.Image, fill: Sequence[int]) -> Image.Image:
    """The composited picture cut to the box around its drawing (`resize.crop: content`): a small drawing
    on a large page then fills the square. A blank page stays whole."""
    box = drawing_box(image, fill)
    return image if box is None else image.crop(box)


def square_resize(image: Image.Image, size: int, fill: Sequence[int], method: str = DEFAULT_METHOD,
                  crop: str = NO_CROP) -> np.ndarray:
    """Composite, (crop to the drawing,) pad to a square with `fill`, resize to size x size: uint8 (size, size, 3).

    The picture is scaled first (each side at least one pixel, so a 7000x20 strip does not vanish) and
    then centred by ImageOps.pad: the same geometry as padding first and resizing after, without ever
    allocating the padded full-resolution square of a huge or extremely thin image.
    """
    image = composite_on_fill(image, fill)
    if crop == "content":
        image = crop_to_content(image, fill)
    padded = _fit_in_square(image, size, tuple(fill), method)
    return np.asarray(padded, dtype=np.uint8)


def square_resize_gray(gray01: np.ndarray, size: int, fill_gray: float, method: str = DEFAULT_METHOD,
                       high: float = 1.0) -> np.ndarray:
    """`square_resize` for a gray float image (H, W): float32 (size, size) in [0, high], same geometry."""
    image = Image.fromarray(np.ascontiguousarray(gray01, dtype=np.float32), mode="F")
    padded = _fit_in_square(image, size, float(fill_gray), method)
    # Lanczos overshoots at edges; clip back to the range the gray can take.
    return np.clip(np.asarray(padded, dtype=np.float32), 0.0, high)


def _fit_in_square(image: Image.Image, size: int, fill: tuple[int, ...] | float, method: str) -> Image.Image:
    """Scale to fit size x size (each side at least one pixel), then centre on `fill` with ImageOps.pad."""
    width, height = content_size(image.width, image.height, size)
    scaled = image.resize((width, height), RESAMPLING[method])
    return ImageOps.pad(scaled, (size, size), method=RESAMPLING[method], color=fill, centering=(0.5, 0.5))


def content_size(width: int, height: int, size: int) -> tuple[int, int]:
    """The picture's (width, height) inside its size x size square; each at least one pixel."""
    side = max(width, height)
    return max(1, round(width * size / side)), max(1, round(height * size / side))


def rgb_to_gray(rgb: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """gray = w . (R, G, B) / 255 as float32 in [0, sum(w)], for any leading shape."""
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected RGB with a last axis of 3, got shape {rgb.shape}")
    w = np.asarray(weights, dtype=np.float32) / np.float32(255.0)
    channels = rgb.astype(np.float32)
    # Separate products and sums, left to right: each rounded by IEEE rules, so the same bytes on every
    # CPU. A `@` product goes to BLAS, whose kernel (FMA or not) depends on the CPU: data/gray differed
    # between an AVX-512 and an AVX2 machine.
    return channels[..., 0] * w[0] + channels[..., 1] * w[1] + channels[..., 2] * w[2]
