"""Tests of the built-in cartoon data set generator."""

from __future__ import annotations

import colorsys
import io
import struct
from functools import cache

import numpy as np
import pytest
from PIL import Image

from colorize.fetch import synthetic
from colorize.fetch.synthetic import (
    AMBIGUOUS_PAIRS,
    STYLES,
    generate_builtin,
    gray_level,
    render_image,
)

SAMPLE = 40


@cache
def _sample(style: str, count: int = SAMPLE, seed: int = 0) -> tuple[tuple[str, bytes], ...]:
    return tuple(generate_builtin(count, seed, style))


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _images(style: str) -> list[Image.Image]:
    return [_decode(data) for _, data in _sample(style)]


def _foreground(image: Image.Image) -> np.ndarray:
    """Mask of non-background pixels: opaque ones in RGBA, non-white ones in RGB (pika's background)."""
    rgba = np.asarray(image.convert("RGBA")).astype(int)
    if image.mode == "RGBA":
        return rgba[..., 3] > 128
    return (rgba[..., :3] < 235).any(axis=-1)


def _hue_histogram(images: list[Image.Image], bins: int = 12) -> np.ndarray:
    """Share of saturated, non-transparent pixels per hue bin, over all images."""
    counts = np.zeros(bins)
    for image in images:
        rgba = np.asarray(image.convert("RGBA"))
        hsv = np.asarray(image.convert("RGB").convert("HSV")).astype(int)
        keep = (hsv[..., 1] > 80) & (hsv[..., 2] > 60) & (rgba[..., 3] > 128)
        counts += np.bincount(hsv[..., 0][keep] * bins // 256, minlength=bins)
    return counts / counts.sum()


def _png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        types.append(kind)
        pos += 12 + length
    return types


@pytest.mark.parametrize("style", STYLES)
def test_same_arguments_give_identical_bytes(style):
    assert list(generate_builtin(6, 7, style)) == list(generate_builtin(6, 7, style))


@pytest.mark.parametrize("style", STYLES)
def test_image_does_not_depend_on_count(style):
    assert list(generate_builtin(5, 3, style)) == list(generate_builtin(10, 3, style))[:5]


def test_seed_and_style_change_the_images():
    base = [data for _, data in generate_builtin(4, 0, "pika")]
    other_seed = [data for _, data in generate_builtin(4, 1, "pika")]
    other_style = [data for _, data in generate_builtin(4, 0, "blob")]
    assert all(a != b for a, b in zip(base, other_seed))
    assert all(a != b for a, b in zip(base, other_style))
    assert len(set(base)) == 4


def test_render_image_is_a_function_of_the_generator_state():
    first = render_image(np.random.default_rng([5, 1, 0]), "pika")
    second = render_image(np.random.default_rng([5, 1, 0]), "pika")
    assert first.mode in ("RGB", "RGBA")
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("style", STYLES)
def test_file_names_and_png_without_metadata(style):
    names = [name for name, _ in _sample(style)]
    assert names[:3] == [f"{style}-00000.png", f"{style}-00001.png", f"{style}-00002.png"]
    assert len(set(names)) == len(names)
    for _, data in _sample(style)[:10]:
        assert set(_png_chunk_types(data)) <= {b"IHDR", b"IDAT", b"IEND"}


@pytest.mark.parametrize("style", STYLES)
def test_modes_are_mixed_about_a_third_transparent(style):
    modes = [image.mode for image in _images(style)]
    assert set(modes) == {"RGB", "RGBA"}
    assert 0.15 <= modes.count("RGBA") / len(modes) <= 0.6


@pytest.mark.parametrize("style", STYLES)
def test_rgba_images_have_transparent_background_and_opaque_figure(style):
    for image in _images(style):
        if image.mode != "RGBA":
            continue
        alpha = np.asarray(image)[..., 3]
        assert (alpha == 0).mean() > 0.2
        assert (alpha == 255).mean() > 0.05
        assert ((alpha > 0) & (alpha < 255)).any()  # anti-aliased edges


def test_pika_rgb_background_is_white_and_blob_background_is_coloured():
    for image in _images("pika"):
        if image.mode == "RGB":
            assert (np.asarray(image) == 255).all(axis=-1).mean() > 0.2
    blob_corners = [np.asarray(image)[0, 0] for image in _images("blob") if image.mode == "RGB"]
    assert sum(not (corner >= 250).all() for corner in blob_corners) >= 0.8 * len(blob_corners)


@pytest.mark.parametrize("style", STYLES)
def test_sizes_and_aspect_ratios_vary(style):
    sizes = np.array([image.size for image in _images(style)])
    assert sizes.min() >= synthetic.MIN_SIDE and sizes.max() <= synthetic.MAX_SIDE
    assert len({tuple(s) for s in sizes}) > 0.8 * len(sizes)
    assert sizes.max() - sizes.min() > 120
    aspect = sizes[:, 0] / sizes[:, 1]
    assert aspect.min() < 0.7 and aspect.max() > 1.4
    assert aspect.min() >= 0.45 and aspect.max() <= 2.2


def test_edges_are_anti_aliased():
    # For "blob" (gradients have many colours anyway) partial alpha in RGBA images shows it instead.
    for image in _images("pika")[:10]:
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
        # Flat cartoon colours alone would give ~10-20 colours; blended edges give many more.
        assert len(np.unique(rgb, axis=0)) > 40


@pytest.mark.parametrize("name", sorted(AMBIGUOUS_PAIRS))
def test_ambiguous_pairs_share_gray_but_not_hue(name):
    first, second = AMBIGUOUS_PAIRS[name]
    assert abs(gray_level(first) - gray_level(second)) <= 2
    hue_a = colorsys.rgb_to_hsv(*(c / 255 for c in first))[0]
    hue_b = colorsys.rgb_to_hsv(*(c / 255 for c in second))[0]
    hue_gap = min(abs(hue_a - hue_b), 1 - abs(hue_a - hue_b)) * 360
    assert hue_gap > 60, f"{name}: hues only {hue_gap:.0f} degrees apart"


def test_gray_level_uses_the_pipeline_weights():
    assert gray_level((100, 0, 0)) == pytest.approx(21)
    assert gray_level((0, 100, 0)) == pytest.approx(72)
    assert gray_level((0, 0, 100)) == pytest.approx(7)


@pytest.mark.parametrize("name", sorted(AMBIGUOUS_PAIRS))
def test_both_colours_of_each_ambiguous_pair_are_drawn(name):
    for color in AMBIGUOUS_PAIRS[name]:
        images_with_color = 0
        for image in _images("pika"):
            rgb = np.asarray(image.convert("RGB"))
            if (rgb == color).all(axis=-1).sum() >= 10:
                images_with_color += 1
        assert images_with_color >= 4, f"{name}: {color} appears in only {images_with_color} images"


def test_yellow_is_a_large_share_of_the_pika_figure():
    shares = []
    for image in _images("pika"):
        hsv = np.asarray(image.convert("RGB").convert("HSV")).astype(int)
        yellow = (np.abs(hsv[..., 0] - 35) < 8) & (hsv[..., 1] > 150) & (hsv[..., 2] > 180)
        foreground = _foreground(image)
        shares.append((yellow & foreground).sum() / max(foreground.sum(), 1))
    assert np.mean(shares) > 0.25
    assert np.mean(np.array(shares) > 0.1) > 0.85


def test_styles_have_different_colour_distributions():
    pika = _hue_histogram(_images("pika"))
    blob = _hue_histogram(_images("blob"))
    assert np.abs(pika - blob).sum() > 0.6
    yellow_bin, blue_purple_bins = 1, slice(7, 10)  # hue 30-60 degrees; 210-300 degrees
    assert pika[yellow_bin] > 0.4 and blob[yellow_bin] < 0.15
    assert blob[blue_purple_bins].sum() > 0.3 and pika[blue_purple_bins].sum() < 0.2


def test_kmeans_palette_at_64px_holds_the_key_colours():
    """As the default pipeline sees them: padded to square on white, 64x64, K-means with 32 colours."""
    from sklearn.cluster import KMeans

    pixels = []
    for _, data in _sample("pika", 120):
        image = _decode(data).convert("RGBA")
        side = max(image.size)
        square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        square.alpha_composite(image, ((side - image.width) // 2, (side - image.height) // 2))
        pixels.append(np.asarray(square.convert("RGB").resize((64, 64), Image.Resampling.LANCZOS)))
    flat = np.stack(pixels).reshape(-1, 3).astype(float)
    centers = KMeans(32, n_init=1, random_state=0).fit(flat[::2]).cluster_centers_
    wanted = {
        "yellow": synthetic.BODY_YELLOW, "red": synthetic.CHEEK_RED, "brown": synthetic.STRIPE_BROWN,
        "black": synthetic.OUTLINE_BLACK,
        **{f"partner in {pair}": colors[1] for pair, colors in AMBIGUOUS_PAIRS.items()},
    }
    for name, color in wanted.items():
        distance = np.linalg.norm(centers - color, axis=1).min()
        assert distance < 25, f"no palette colour near {name} {color}: nearest is {distance:.0f} away"


@pytest.mark.parametrize("call", [
    lambda: generate_builtin(3, 0, "pikachu"),
    lambda: render_image(np.random.default_rng(0), "pikachu"),
])
def test_unknown_style_is_rejected_naming_it_and_the_choices(call):
    with pytest.raises(ValueError, match=r"'pikachu'.*pika, blob"):
        call()


@pytest.mark.parametrize("count", [0, -1, 2.5, True, "3"])
def test_bad_count_is_rejected_at_the_call(count):
    with pytest.raises(ValueError, match="count"):
        generate_builtin(count, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, None])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        generate_builtin(3, seed)

