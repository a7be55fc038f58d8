"""The built-in data set: deterministic cartoon-character images drawn in code, needing no network.

Style "pika" follows the origin's data set (a Pikachu-like "Bika Qiu"): a yellow creature with a dark
outline, red cheeks, black-tipped ears and brown back stripes, with a few simple objects around it, on a
white or transparent background. Style "blob" is a differently styled set (blue/purple round creatures on
coloured or gradient backgrounds) for testing generalisation.

Some colours are chosen in pairs that share a gray value under gray = 0.21 R + 0.72 G + 0.07 B but differ
in hue (see `AMBIGUOUS_PAIRS`), so only shape and position can tell them apart in a grayscale image.

Every shape is a polygon in the shape's own coordinates, mapped to pixels by a similarity transform (so
rotation and scale cost nothing), drawn at `SUPERSAMPLE` times the final size and reduced by Pillow for
anti-aliased edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from colorize.core.figures import png_bytes

STYLES: tuple[str, ...] = ("pika", "blob")

Color = tuple[int, int, int]

GRAY_WEIGHTS: tuple[float, float, float] = (0.21, 0.72, 0.07)
SUPERSAMPLE = 3
MIN_SIDE, MAX_SIDE = 40, 220
MAX_ASPECT = 2.0
TRANSPARENT_FRACTION = 0.35  # share of images saved as RGBA with a transparent background

# --- "pika" palette -------------------------------------------------------------------------------
BODY_YELLOW: Color = (250, 212, 45)
OUTLINE_BLACK: Color = (32, 26, 24)  # outline, eyes and ear tips: one near-black
CHEEK_RED: Color = (228, 42, 40)
STRIPE_BROWN: Color = (110, 60, 24)
# Partners of the same gray but another hue; their objects share the scene with the character.
LEAF_GREEN: Color = (36, 98, 40)  # leaf and grass vs. the red cheeks
BALL_PURPLE: Color = (114, 41, 204)  # ball vs. the brown stripes
BALLOON_CYAN: Color = (135, 226, 252)  # balloon vs. the yellow body
STAR_ORANGE: Color = (250, 140, 30)
MOUTH_RED: Color = (150, 30, 40)
WHITE: Color = (255, 255, 255)

AMBIGUOUS_PAIRS: dict[str, tuple[Color, Color]] = {
    "cheek red / leaf green": (CHEEK_RED, LEAF_GREEN),
    "stripe brown / ball purple": (STRIPE_BROWN, BALL_PURPLE),
    "body yellow / balloon cyan": (BODY_YELLOW, BALLOON_CYAN),
}

# --- "blob" palette -------------------------------------------------------------------------------
BLOB_BODIES: tuple[Color, ...] = ((70, 112, 222), (138, 84, 206), (52, 170, 186), (96, 70, 170),
                                  (226, 110, 172))
BLOB_ACCENTS: tuple[Color, ...] = ((255, 196, 70), (255, 120, 120), (130, 230, 140), (255, 255, 255))
BLOB_BACKGROUNDS: tuple[Color, ...] = ((255, 226, 204), (206, 244, 226), (226, 216, 250), (250, 246, 196),
                                       (190, 222, 250), (250, 206, 226), (70, 60, 110), (40, 80, 90))
BLOB_PUPIL: Color = (24, 20, 60)
BLOB_MOUTH: Color = (60, 20, 50)


def gray_level(color: Sequence[float]) -> float:
    """Gray value of an RGB colour under `GRAY_WEIGHTS` (0..255)."""
    return float(sum(w * c for w, c in zip(GRAY_WEIGHTS, color, strict=True)))


# --- geometry ---------------------------------------------------------------------------------------
def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 40) -> np.ndarray:
    """Points (n, 2) around an ellipse rotated by `angle` radians."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def arc(cx: float, cy: float, rx: float, ry: float, t0: float, t1: float, n: int = 16) -> np.ndarray:
    """Points (n, 2) along an ellipse from angle t0 to t1 (radians; y points down, so pi..2pi is the top)."""
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rotate(points: np.ndarray, angle: float, pivot: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    p = np.asarray(points, dtype=float) - pivot
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1) + pivot


def _star(n_points: int, inner: float) -> np.ndarray:
    t = np.arange(2 * n_points) * np.pi / n_points - np.pi / 2
    r = np.where(np.arange(2 * n_points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _ear(base: Sequence[float], angle: float, length: float, width: float, t0: float = 0.0) -> np.ndarray:
    """A pointed ear from `base` towards `angle` (0 = straight up); from fraction t0 of its length on."""
    t = np.linspace(t0, 1.0, 14)
    half = width * (1 - t) ** 0.8 * (1 + 1.6 * t) / 2
    left = np.stack([-half, -t * length], axis=1)
    right = np.stack([half, -t * length], axis=1)[::-1]
    return _rotate(np.concatenate([left, right]), angle) + base


def _band(rx: float, ry: float, cy: float, y0: float, y1: float, x_min: float) -> np.ndarray:
    """The part of an ellipse (centre (0, cy)) between heights y0..y1 and right of x_min, as a polygon."""
    ys = np.linspace(y0, y1, 10)
    xs = rx * np.sqrt(np.clip(1 - ((ys - cy) / ry) ** 2, 0, 1))
    right = np.stack([xs, ys], axis=1)
    left = np.stack([np.full_like(ys, x_min), ys], axis=1)[::-1]
    return np.concatenate([right, left])


# Pikachu-like tail: a zigzag bolt growing from its base at (0, 0) up and to the right.
_TAIL = np.array([(0.0, 0.0), (0.42, -0.28), (0.26, -0.42), (0.78, -0.74), (0.56, -0.88), (1.45, -1.75),
                  (1.75, -1.38), (1.02, -0.78), (1.2, -0.62), (0.64, -0.28), (0.8, -0.14), (0.18, 0.2)])
_TAIL_BASE = np.array([(0.0, 0.0), (0.42, -0.28), (0.26, -0.42), (0.59, -0.62), (0.75, -0.17), (0.8, -0.14),
                       (0.18, 0.2)])


def _sharp_corners(pixels: list[tuple[float, float]], min_turn: float = 0.35) -> list[tuple[float, float]]:
    """Inner vertices of a polyline where its direction turns by more than `min_turn` radians."""
    p = np.asarray(pixels)
    d = np.diff(p, axis=0)
    heading = np.arctan2(d[:, 1], d[:, 0])
    turn = np.abs((np.diff(heading) + np.pi) % (2 * np.pi) - np.pi)
    return [tuple(xy) for xy in p[1:-1][turn > min_turn].tolist()]


@dataclass(frozen=True)
class Pen:
    """Draws shapes given in local units: pixel = origin + scale * R(angle) * (x mirrored?, y)."""

    draw: ImageDraw.ImageDraw
    origin: tuple[float, float]
    scale: float
    angle: float = 0.0
    mirror: bool = False

    def to_pixels(self, points: np.ndarray) -> list[tuple[float, float]]:
        p = np.asarray(points, dtype=float)
        if self.mirror:
            p = p * (-1.0, 1.0)
        p = _rotate(p, self.angle) * self.scale + self.origin
        return [tuple(xy) for xy in p.tolist()]

    def fill(self, points: np.ndarray, color: Color) -> None:
        self.draw.polygon(self.to_pixels(points), fill=color)

    def outline(self, points: np.ndarray, color: Color, width: float) -> None:
        """The shape grown by `width` (local units) in `color`: drawn first, under the fill."""
        pixels = self.to_pixels(points)
        self.draw.polygon(pixels, fill=color)
        self._round_line(pixels, color, 2 * width, closed=True)

    def _round_line(self, pixels: list[tuple[float, float]], color: Color, width: float,
                    closed: bool = False) -> None:
        # A disc on each sharp vertex rounds the joint; much faster than ImageDraw's joint="curve".
        width_px = max(1, round(width * self.scale))
        self.draw.line(pixels + pixels[:1] if closed else pixels, fill=color, width=width_px)
        if width_px > 2 and len(pixels) > 2:
            r = width_px / 2
            for x, y in _sharp_corners(pixels[-1:] + pixels + pixels[:1] if closed else pixels):
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=color)

    def shape(self, points: np.ndarray, color: Color, outline: Color | None = None,
              width: float = 0.0) -> None:
        if outline is not None and width > 0:
            self.outline(points, outline, width)
        self.fill(points, color)

    def line(self, points: np.ndarray, color: Color, width: float) -> None:
        self._round_line(self.to_pixels(points), color, width)


# --- scene layout -----------------------------------------------------------------------------------
def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height): long side in [~60, MAX_SIDE], aspect ratio in [1/MAX_ASPECT, MAX_ASPECT]."""
    aspect = math.exp(rng.uniform(-math.log(MAX_ASPECT), math.log(MAX_ASPECT)))
    long_side = rng.uniform(60, MAX_SIDE)
    short_side = max(MIN_SIDE, long_side / max(aspect, 1 / aspect))
    width, height = (long_side, short_side) if aspect >= 1 else (short_side, long_side)
    return int(round(width)), int(round(height))


def _free_spot(rng: np.random.Generator, size: tuple[float, float], radius: float,
               taken: list[tuple[float, float, float]], tries: int = 12) -> tuple[float, float]:
    """A centre for a circle of `radius` inside `size` that overlaps the `taken` circles least."""
    width, height = size
    best, best_overlap = (width / 2, height / 2), math.inf
    for _ in range(tries):
        x = rng.uniform(min(radius, width / 2), max(width - radius, width / 2))
        y = rng.uniform(min(radius, height / 2), max(height - radius, height / 2))
        overlap = sum(max(0.0, r + radius - math.hypot(x - tx, y - ty)) for tx, ty, r in taken)
        if overlap < best_overlap:
            best, best_overlap = (x, y), overlap
        if overlap == 0:
            break
    return best


def _new_canvas(size: tuple[int, int], transparent: bool, background: Color = WHITE) -> Image.Image:
    big = (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE)
    if transparent:
        return Image.new("RGBA", big, (*background, 0))
    return Image.new("RGB", big, background)


def _finish(canvas: Image.Image) -> Image.Image:
    # reduce() averages premultiplied colours for RGBA, so transparent pixels do not bleed into edges.
    return canvas.reduce(SUPERSAMPLE)


# --- "pika" -----------------------------------------------------------------------------------------
def _draw_pika(pen: Pen, rng: np.random.Generator) -> None:
    """The character in local units: head radius ~1, ear tips near y=-2, feet near y=2.5."""
    ink, w = OUTLINE_BLACK, 0.085
    head = ellipse(0, 0, 1.0, 0.84, n=48)
    body_cy, body_rx, body_ry = 1.42, 0.92, 1.02
    body = ellipse(0, body_cy, body_rx, body_ry, n=48)
    feet = [ellipse(sx * 0.5, 2.38, 0.36, 0.17, angle=sx * -0.15, n=20) for sx in (-1, 1)]
    ears = []
    for sx in (-1, 1):
        angle = sx * rng.uniform(0.15, 1.0)
        length, width = rng.uniform(1.25, 1.6), rng.uniform(0.42, 0.55)
        base = (sx * 0.5, -0.55)
        ears.append((_ear(base, angle, length, width), _ear(base, angle, length, width, t0=0.62)))
    tail_pivot = (0.78, 1.75)
    tail_angle, tail_size = rng.uniform(-0.5, 0.35), rng.uniform(0.8, 1.15)
    tail = _rotate(_TAIL * tail_size, tail_angle) + tail_pivot
    tail_base = _rotate(_TAIL_BASE * tail_size, tail_angle) + tail_pivot

    # The tail sits behind the body with its own outline; the other parts merge into one silhouette
    # (every outline first, then every fill).
    pen.shape(tail, BODY_YELLOW, ink, w)
    pen.fill(tail_base, STRIPE_BROWN)
    for part in [*(e for e, _ in ears), body, *feet, head]:
        pen.outline(part, ink, w)
    for ear, tip in ears:
        pen.fill(ear, BODY_YELLOW)
        pen.fill(tip, ink)
    pen.fill(body, BODY_YELLOW)
    for foot in feet:
        pen.fill(foot, BODY_YELLOW)
    # Back stripes, on the tail's side of the turned body.
    x_min = rng.uniform(-0.45, 0.1)
    for y0 in (1.12, 1.6):
        pen.fill(_band(body_rx, body_ry, body_cy, y0, y0 + rng.uniform(0.26, 0.32), x_min), STRIPE_BROWN)
    pen.fill(head, BODY_YELLOW)

    for sx in (-1, 1):  # arms, in front of the body
        angle = rng.uniform(-2.4, 0.5)  # 0: pointing down and out, negative: raised
        shoulder = np.array([sx * 0.6, 0.95])
        direction = np.array([sx * math.sin(0.5 - angle), math.cos(0.5 - angle)])
        center = shoulder + 0.3 * direction
        arm = ellipse(*center, 0.36, 0.15, angle=math.atan2(direction[1], direction[0]), n=20)
        pen.shape(arm, BODY_YELLOW, ink, w * 0.8)

    eye_y, eye_dx = rng.uniform(-0.12, 0.0), rng.uniform(0.38, 0.46)
    happy = rng.random() < 0.2
    for sx in (-1, 1):
        if happy:  # closed, smiling eyes
            pen.line(arc(sx * eye_dx, eye_y + 0.06, 0.15, 0.12, 1.15 * np.pi, 1.85 * np.pi), ink, 0.09)
        else:
            pen.fill(ellipse(sx * eye_dx, eye_y, 0.15, 0.17, n=24), ink)
            pen.fill(ellipse(sx * eye_dx - 0.04, eye_y - 0.06, 0.06, 0.06, n=12), WHITE)
        pen.fill(ellipse(sx * 0.7, 0.3, 0.21, 0.19, n=28), CHEEK_RED)
    pen.fill(ellipse(0, 0.1, 0.05, 0.035, n=10), ink)
    if rng.random() < 0.5:  # open mouth
        pen.shape(arc(0, 0.3, 0.16, 0.14, 0, np.pi), MOUTH_RED, ink, 0.04)
    else:
        pen.line(np.array([(-0.2, 0.27), (-0.1, 0.33), (0.0, 0.27), (0.1, 0.33), (0.2, 0.27)]), ink, 0.055)


def _draw_ball(pen: Pen, rng: np.random.Generator) -> None:
    pen.shape(ellipse(0, 0, 1, 1), BALL_PURPLE, OUTLINE_BLACK, 0.08)
    pen.fill(ellipse(-0.38, -0.4, 0.2, 0.14, angle=-0.7, n=16), WHITE)


def _draw_pokeball(pen: Pen, rng: np.random.Generator) -> None:
    pen.shape(ellipse(0, 0, 1, 1), WHITE, OUTLINE_BLACK, 0.08)
    pen.fill(arc(0, 0, 1, 1, np.pi, 2 * np.pi, n=21), CHEEK_RED)  # upper half
    pen.fill(np.array([(-1, -0.09), (1, -0.09), (1, 0.09), (-1, 0.09)]), OUTLINE_BLACK)
    pen.shape(ellipse(0, 0, 0.3, 0.3, n=20), WHITE, OUTLINE_BLACK, 0.1)


def _draw_leaf(pen: Pen, rng: np.random.Generator) -> None:
    t = np.linspace(0, np.pi, 16)
    side = np.stack([0.42 * np.sin(t) ** 1.3, -np.cos(t)], axis=1)
    leaf = np.concatenate([side, side[::-1] * (-1, 1)])
    pen.shape(leaf, LEAF_GREEN, OUTLINE_BLACK, 0.07)
    pen.line(np.array([(0.0, 1.25), (0.0, -0.7)]), OUTLINE_BLACK, 0.06)


def _draw_star(pen: Pen, rng: np.random.Generator) -> None:
    pen.shape(_star(5, 0.45), STAR_ORANGE, OUTLINE_BLACK, 0.07)


def _draw_balloon(pen: Pen, rng: np.random.Generator) -> None:
    pen.line(np.array([(0.0, 0.9), (0.15, 1.3), (-0.1, 1.7), (0.05, 2.1)]), OUTLINE_BLACK, 0.05)
    pen.shape(np.array([(0, 0.85), (0.16, 1.02), (-0.16, 1.02)]), BALLOON_CYAN, OUTLINE_BLACK, 0.05)
    pen.shape(ellipse(0, 0, 0.75, 0.92), BALLOON_CYAN, OUTLINE_BLACK, 0.07)
    pen.fill(ellipse(-0.3, -0.42, 0.13, 0.2, angle=0.5, n=16), WHITE)


# Objects around the character: (drawer, relative size, weight of being chosen).
_PIKA_OBJECTS: tuple[tuple[Callable[[Pen, np.random.Generator], None], float, float], ...] = (
    (_draw_ball, 0.13, 3.0), (_draw_pokeball, 0.12, 2.0), (_draw_leaf, 0.16, 3.0), (_draw_star, 0.15, 1.5),
    (_draw_balloon, 0.14, 1.5),
)


def _draw_grass(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: tuple[int, int]) -> None:
    """A strip of pointed grass blades along the bottom edge (pixel units of the canvas)."""
    width, height = size
    top = height * (1 - rng.uniform(0.1, 0.2))
    blade = height * rng.uniform(0.05, 0.1)
    xs = np.arange(-blade, width + blade, blade * rng.uniform(0.5, 0.8))
    points = [(float(width + blade), float(height + 1)), (float(-blade), float(height + 1))]
    for x in xs:
        tip = (float(x + blade * 0.3), float(top - blade * rng.uniform(0.8, 1.6)))
        points += [(float(x), float(top)), tip]
    points.append((float(xs[-1] + blade * 0.6), float(top)))
    ink = max(1, round(height * 0.008))
    draw.polygon(points, fill=LEAF_GREEN, outline=OUTLINE_BLACK, width=ink)


def _render_pika(rng: np.random.Generator, transparent: bool) -> Image.Image:
    size = _image_size(rng)
    canvas = _new_canvas(size, transparent)
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    if rng.random() < 0.35:
        _draw_grass(draw, rng, (width, height))
    # The character spans about 4.6 local units tall and ~3.6 wide (centre near (0.2, 0.25)).
    char_height = min(height, width * 1.2) * rng.uniform(0.65, 0.95)
    scale = char_height / 4.6
    radius = char_height * 0.47
    center = _free_spot(rng, (width, height), radius, [])
    taken = [(center[0], center[1], radius * 0.8)]

    weights = np.array([o[2] for o in _PIKA_OBJECTS])
    n_objects = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.35, 0.35, 0.2]))
    chosen = rng.choice(len(_PIKA_OBJECTS), size=n_objects, replace=False, p=weights / weights.sum())
    in_front = []
    for index in chosen:
        drawer, rel_size, _ = _PIKA_OBJECTS[index]
        obj_radius = max(width, height) * rel_size * rng.uniform(0.8, 1.3)
        spot = _free_spot(rng, (width, height), obj_radius, taken)
        taken.append((spot[0], spot[1], obj_radius))
        pen = Pen(draw, spot, obj_radius, angle=rng.uniform(-np.pi, np.pi) if drawer is not _draw_balloon
                  else rng.uniform(-0.3, 0.3))
        if rng.random() < 0.2:  # some objects overlap the character
            in_front.append((drawer, pen))
        else:
            drawer(pen, rng)

    mirror = bool(rng.random() < 0.5)
    local_center = np.array([-0.2 if mirror else 0.2, 0.25])
    angle = rng.uniform(-0.4, 0.4)
    origin = np.array(center) - _rotate(local_center[None] * scale, angle)[0]
    _draw_pika(Pen(draw, tuple(origin.tolist()), scale, angle, mirror), rng)
    for drawer, pen in in_front:
        drawer(pen, rng)
    return _finish(canvas)


# --- "blob" -----------------------------------------------------------------------------------------
def _shade(color: Color, factor: float) -> Color:
    """Darker (factor < 1) or mixed towards white (factor > 1) version of a colour."""
    c = np.asarray(color, dtype=float)
    c = c * factor if factor <= 1 else c + (255 - c) * (factor - 1)
    return tuple(int(round(v)) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _gradient(size: tuple[int, int], top: Color, bottom: Color, angle: float) -> Image.Image:
    """A linear gradient from `top` to `bottom` along direction `angle` (radians), at `size`/SUPERSAMPLE
    scaled up (a smooth ramp loses nothing and this is 9x less work)."""
    width, height = max(1, size[0] // SUPERSAMPLE), max(1, size[1] // SUPERSAMPLE)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (x - width / 2) * math.sin(angle) + (y - height / 2) * math.cos(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    rgb = np.asarray(top, np.float32) * (1 - t[..., None]) + np.asarray(bottom, np.float32) * t[..., None]
    return Image.fromarray(np.round(rgb).astype(np.uint8), "RGB").resize(size, Image.Resampling.BILINEAR)


def _draw_blob(pen: Pen, rng: np.random.Generator) -> None:
    """A round creature in local units (body radius ~1): big eyes, antennae or horns, feet."""
    body_color = BLOB_BODIES[rng.integers(len(BLOB_BODIES))]
    accent = BLOB_ACCENTS[rng.integers(len(BLOB_ACCENTS))]
    ink = _shade(body_color, 0.5)
    w = 0.07
    t = np.linspace(0, 2 * np.pi, 56, endpoint=False)
    wobble = 1 + 0.05 * np.sin(rng.integers(2, 6) * t + rng.uniform(0, 2 * np.pi))
    rx, ry = rng.uniform(0.85, 1.15), rng.uniform(0.8, 1.05)
    body = np.stack([rx * wobble * np.cos(t), ry * wobble * np.sin(t)], axis=1)

    for sx in (-1, 1):
        pen.shape(ellipse(sx * 0.45 * rx, ry * 0.95, 0.3, 0.16, n=20), _shade(body_color, 0.75), ink, w)
    if rng.random() < 0.5:  # antennae with round tips
        for sx in (-1, 1):
            tip = np.array([sx * rng.uniform(0.3, 0.8), -ry - rng.uniform(0.45, 0.8)])
            pen.line(np.array([(sx * 0.3, -ry * 0.8), tip]), ink, 0.08)
            pen.shape(ellipse(*tip, 0.14, 0.14, n=16), accent, ink, w)
    else:  # horns
        for sx in (-1, 1):
            base = np.array([sx * 0.5 * rx, -ry * 0.8])
            horn = np.array([base - (0.18, 0), base + (0.18, 0), base + (sx * 0.2, -0.6)])
            pen.shape(horn, accent, ink, w)
    pen.shape(body, body_color, ink, w)
    pen.fill(ellipse(0, 0.35 * ry, 0.55 * rx, 0.45 * ry, n=32), _shade(body_color, 1.35))

    n_eyes = int(rng.choice([1, 2, 3], p=[0.25, 0.6, 0.15]))
    eye_r = {1: 0.38, 2: 0.26, 3: 0.2}[n_eyes]
    for k in range(n_eyes):
        ex = (k - (n_eyes - 1) / 2) * eye_r * 2.3
        ey = -0.25 * ry
        pen.shape(ellipse(ex, ey, eye_r, eye_r * 1.1, n=24), WHITE, ink, w * 0.7)
        look = rng.uniform(-0.3, 0.3, size=2) * eye_r
        pen.fill(ellipse(ex + look[0], ey + look[1], eye_r * 0.5, eye_r * 0.55, n=20), BLOB_PUPIL)
    mouth_w = rng.uniform(0.2, 0.4)
    if rng.random() < 0.5:
        pen.line(arc(0, 0.22 * ry, mouth_w, 0.16, 0.15 * np.pi, 0.85 * np.pi), ink, 0.07)
    else:
        pen.shape(arc(0, 0.25 * ry, mouth_w, 0.2, 0, np.pi), BLOB_MOUTH, ink, 0.04)


def _draw_bubble(pen: Pen, rng: np.random.Generator) -> None:
    pen.line(np.concatenate([ellipse(0, 0, 1, 1, n=32), ellipse(0, 0, 1, 1, n=32)[:2]]), WHITE, 0.12)
    pen.fill(ellipse(-0.4, -0.4, 0.18, 0.12, angle=-0.7, n=12), WHITE)


def _draw_crystal(pen: Pen, rng: np.random.Generator) -> None:
    color = BLOB_ACCENTS[rng.integers(len(BLOB_ACCENTS))]
    gem = np.array([(0, -1), (0.55, -0.2), (0, 1), (-0.55, -0.2)])
    pen.shape(gem, color, _shade(color, 0.5), 0.07)
    pen.fill(np.array([(0, -1), (0.55, -0.2), (0, -0.2)]), _shade(color, 1.4))


def _render_blob(rng: np.random.Generator, transparent: bool) -> Image.Image:
    size = _image_size(rng)
    big = (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE)
    if transparent:
        canvas = _new_canvas(size, True)
    else:
        colors = rng.choice(len(BLOB_BACKGROUNDS), size=2, replace=False)
        top, bottom = BLOB_BACKGROUNDS[colors[0]], BLOB_BACKGROUNDS[colors[1]]
        if rng.random() < 0.4:
            canvas = Image.new("RGB", big, top)
        else:
            canvas = _gradient(big, top, bottom, rng.uniform(-0.8, 0.8))
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    short = min(width, height)

    taken: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(0, 4))):
        radius = short * rng.uniform(0.06, 0.14)
        spot = _free_spot(rng, (width, height), radius, taken)
        drawer = _draw_bubble if rng.random() < 0.5 else _draw_crystal
        drawer(Pen(draw, spot, radius, rng.uniform(-0.6, 0.6)), rng)
    n_creatures = 1 if rng.random() < 0.7 or max(width, height) < 100 else 2
    for k in range(n_creatures):
        height_px = short * rng.uniform(0.6, 0.9) / (1 if k == 0 else 1.6)
        scale = height_px / 3.0
        spot = _free_spot(rng, (width, height), height_px * 0.5, taken)
        taken.append((spot[0], spot[1], height_px * 0.5))
        _draw_blob(Pen(draw, (spot[0], spot[1] + 0.2 * scale), scale, rng.uniform(-0.35, 0.35),
                       bool(rng.random() < 0.5)), rng)
    return _finish(canvas)


# --- public API -------------------------------------------------------------------------------------
_RENDERERS = {"pika": _render_pika, "blob": _render_blob}


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown built-in style {style!r}; choose one of: {', '.join(STYLES)}")


def render_image(rng: np.random.Generator, style: str) -> Image.Image:
    """Draw one image of `style` from `rng`: RGB, or RGBA with a transparent background."""
    _check_style(style)
    transparent = bool(rng.random() < TRANSPARENT_FRACTION)
    return _RENDERERS[style](rng, transparent)


def generate_builtin(count: int, seed: int, style: str = "pika") -> Iterator[tuple[str, bytes]]:
    """Yield (file_name, png_bytes) for `count` images, e.g. ("pika-00042.png", b"...").

    Image i is drawn from its own generator np.random.default_rng([seed, i, <style code>]) so it does not
    depend on count; the same arguments give byte-identical PNG bytes.
    """
    _check_style(style)
    if not _is_integer(count) or count < 1:
        raise ValueError(f"built-in image count must be an integer >= 1, got {count!r}")
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f"built-in seed must be an integer >= 0, got {seed!r}")
    return _generate(int(count), int(seed), style)  # checked above, not lazily at the first next()


def _is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _generate(count: int, seed: int, style: str) -> Iterator[tuple[str, bytes]]:
    style_code = STYLES.index(style)  # the style's position in STYLES
    for i in range(count):
        rng = np.random.default_rng([seed, i, style_code])
        yield f"{style}-{i:05d}.png", png_bytes(render_image(rng, style))

