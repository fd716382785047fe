"""Render procedural face crops from an identity's face knobs.

Geometry (face shape, jaw, eye spacing and size, nose, mouth, lips, brows), skin tone, hair colour
and length, grey hair and wrinkles follow the identity; background, lighting, head pose and scale
follow the video; expression (smile, brow raise, eye opening) and small jitter follow the frame.
Drawn at twice the size and downsampled, for anti-aliased edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from voxface.synth.model import FACE_KNOBS

FACE_IMAGE_SIZE = 128  # written crops; loaders resize to the model's input (112 by default)


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def _linear(x: float, limit: float = 3.0) -> float:
    """A knob as it moves a feature: proportionally, clipped at +-limit so that shapes stay faces.

    Linear rather than tanh, so that a small teacher can read a knob over its whole range."""
    return float(np.clip(x, -limit, limit))


@dataclass(frozen=True)
class Scene:
    """Per-video conditions."""

    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    light_side: float  # -1 (lit from the left) .. 1
    light_level: float
    cast: tuple[float, float, float]
    roll: float  # degrees
    yaw: float  # -1 .. 1, shifts features sideways
    scale: float
    shift: tuple[float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Scene:
        colours = rng.integers(70, 190, size=(2, 3))
        return cls(background=(tuple(map(int, colours[0])), tuple(map(int, colours[1]))),
                   light_side=float(rng.uniform(-0.5, 0.5)), light_level=float(rng.uniform(0.92, 1.08)),
                   cast=tuple(float(c) for c in rng.uniform(0.96, 1.04, 3)), roll=float(rng.uniform(-2, 2)),
                   yaw=float(rng.uniform(-0.15, 0.15)), scale=float(rng.uniform(0.97, 1.03)),
                   shift=(float(rng.uniform(-0.015, 0.015)), float(rng.uniform(-0.015, 0.015))))


def render_face(knobs: np.ndarray, scene: Scene, rng: np.random.Generator, size: int = FACE_IMAGE_SIZE) -> Image.Image:
    """One RGB face crop of ``size`` x ``size``."""
    k = dict(zip(FACE_KNOBS, np.asarray(knobs, dtype=np.float64), strict=True))
    big = 2 * size
    smile, brow_raise, eye_open = rng.uniform(-0.2, 0.6), rng.uniform(-0.2, 0.5), rng.uniform(0.7, 1.0)
    jitter = rng.normal(0, 0.006, 2)
    # Background: a vertical gradient between the video's two colours.
    top, bottom = (np.array(c, dtype=np.float64) for c in scene.background)
    ramp = np.linspace(0, 1, big)[:, None, None]
    canvas = Image.fromarray(np.broadcast_to(top + (bottom - top) * ramp, (big, big, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    s = big * scene.scale
    cx, cy = big / 2 + (scene.shift[0] + jitter[0]) * big, big / 2 + (scene.shift[1] + jitter[1]) * big
    yaw = scene.yaw * 0.06 * s

    light = _sigmoid(1.1 * k["skin_light"])
    skin = np.array([70 + 180 * light, 45 + 165 * light, 35 + 150 * light])
    skin += np.array([14, 0, -14]) * k["skin_warm"]
    skin_rgb = tuple(int(c) for c in np.clip(skin, 0, 255))
    shade = tuple(int(c * 0.6) for c in skin_rgb)
    # Issue 22: hair_dark through sigmoid(-1.2 k) under full grey read at R² 0.57: a gentler slope, and grey
    # that whitens at most 80%, keep the natural colour visible over the knob's range.
    hair_base = 20 + 170 * _sigmoid(-0.75 * k["hair_dark"])
    grey = 0.8 * _sigmoid(1.6 * k["grey"] - 1.0)
    hair = np.array([hair_base * 1.1, hair_base * 0.9, hair_base * 0.7]) * (1 - grey) + 195 * grey
    hair_rgb = tuple(int(c) for c in np.clip(hair, 0, 255))

    half_w = s * 0.275 * np.exp(-0.12 * _linear(k["aspect"]))
    half_h = s * 0.36 * np.exp(0.08 * _linear(k["aspect"]))
    jaw_w = half_w * (0.72 + 0.12 * _linear(k["jaw"]))
    hair_len = _sigmoid(2.5 * k["hair_len"])
    # Long hair falls behind the head.
    if hair_len > 0.1:
        drop = half_h * (-0.2 + 1.8 * hair_len)
        draw.rounded_rectangle([cx - half_w * 1.2, cy - half_h * 1.05, cx + half_w * 1.2, cy + drop],
                               radius=int(half_w * 0.5), fill=hair_rgb)
    # Ears, cranium and jaw.
    for side in (-1, 1):
        ex = cx + side * half_w * 0.98 - yaw * 0.5
        draw.ellipse([ex - s * 0.03, cy - s * 0.05, ex + s * 0.03, cy + s * 0.05], fill=shade)
    draw.ellipse([cx - half_w, cy - half_h, cx + half_w, cy + half_h * 0.55], fill=skin_rgb)
    draw.polygon([(cx - half_w, cy - half_h * 0.05), (cx + half_w, cy - half_h * 0.05),
                  (cx + jaw_w, cy + half_h * 0.72), (cx + jaw_w * 0.45, cy + half_h),
                  (cx - jaw_w * 0.45, cy + half_h), (cx - jaw_w, cy + half_h * 0.72)], fill=skin_rgb)
    # Hair cap.
    cap_bottom = cy + half_h * (0.1 - 0.25 * (1 - hair_len))
    draw.chord([cx - half_w * 1.04, cy - half_h * 1.08, cx + half_w * 1.04, cap_bottom], start=180, end=360,
               fill=hair_rgb)
    # Eyes and brows.
    gap = half_w * (0.42 + 0.1 * _linear(k["eye_gap"]))
    eye_r = s * (0.042 + 0.008 * _linear(k["eye_size"]))
    ey = cy - half_h * 0.12
    brow_w = max(1, round(s * (0.032 + 0.011 * _linear(k["brow"]))))
    for side in (-1, 1):
        ex = cx + side * gap + yaw
        opening = eye_r * 0.65 * eye_open
        draw.ellipse([ex - eye_r, ey - opening, ex + eye_r, ey + opening], fill=(240, 240, 235))
        draw.ellipse([ex - eye_r * 0.45, ey - min(opening, eye_r * 0.45), ex + eye_r * 0.45,
                      ey + min(opening, eye_r * 0.45)], fill=(40, 30, 25))
        by = ey - eye_r * (1.5 + 0.6 * brow_raise)
        brow_rgb = hair_rgb if grey < 0.6 else (120, 110, 100)
        draw.line([(ex - eye_r * 1.2, by), (ex + eye_r * 1.2, by - eye_r * 0.15)], fill=brow_rgb, width=brow_w)
    # Nose.
    nose_len = half_h * (0.36 + 0.09 * _linear(k["nose_len"]))
    nose_w = s * (0.06 + 0.02 * _linear(k["nose_wid"]))
    nx = cx + yaw * 1.3
    draw.polygon([(nx, ey + eye_r * 0.3), (nx + nose_w, ey + nose_len), (nx - nose_w, ey + nose_len)], fill=shade)
    # Mouth: width, lip thickness, smile.
    mouth_w = half_w * (0.46 + 0.14 * _linear(k["mouth"]))
    lip = s * (0.028 + 0.011 * _linear(k["lips"]))  # half the lips' height at the centre
    my = ey + nose_len + half_h * 0.22
    curve = smile * s * 0.02
    lips_rgb = tuple(int(c) for c in np.clip(np.array(skin_rgb) * np.array([0.75, 0.45, 0.45]), 0, 255))
    # Lips as one shape: thickest at the centre, corners lifted by the smile.
    x = np.linspace(-1, 1, 25)
    centre = my - curve * x**2
    half = lip * np.sqrt(1 - x**2) + 0.5
    draw.polygon([(nx + mouth_w * a, c - h) for a, c, h in zip(x, centre, half, strict=True)]
                 + [(nx + mouth_w * a, c + h) for a, c, h in zip(x[::-1], centre[::-1], half[::-1], strict=True)],
                 fill=lips_rgb)
    # Signs of age where hair never covers them: bags under the eyes (an area, readable at 64 px), folds
    # from nose to mouth, crow's feet, a forehead line.
    wrinkle = _sigmoid(1.6 * k["wrinkles"] - 1.0)
    tone = tuple(int(c * (1 - 0.6 * wrinkle)) for c in skin_rgb)
    width = max(1, round(s * (0.004 + 0.022 * wrinkle)))
    for side in (-1, 1):
        ex = cx + side * gap + yaw
        bag = eye_r * (0.4 + 0.9 * wrinkle)
        draw.chord([ex - eye_r * 1.1, ey + eye_r * 0.5 - bag, ex + eye_r * 1.1, ey + eye_r * 0.7 + bag], start=0,
                   end=180, fill=tone)
    for side in (-1, 1):
        draw.line([(nx + side * nose_w * 1.3, ey + nose_len * 0.85), (nx + side * mouth_w * 1.15, my + s * 0.01)],
                  fill=tone, width=width)
        corner = cx + side * (gap + eye_r * 1.25) + yaw
        draw.line([(corner, ey - eye_r * 0.4), (corner + side * eye_r * 0.7, ey - eye_r * 0.8)], fill=tone,
                  width=width)
        draw.line([(corner, ey + eye_r * 0.4), (corner + side * eye_r * 0.7, ey + eye_r * 0.8)], fill=tone,
                  width=width)
    fy = ey - eye_r * 3.0
    draw.line([(cx - half_w * 0.4, fy), (cx + half_w * 0.4, fy)], fill=tone, width=width)
    canvas = canvas.rotate(scene.roll + rng.normal(0, 0.8), resample=Image.Resampling.BILINEAR,
                           fillcolor=scene.background[0])
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=0.6)).resize((size, size), Image.Resampling.BILINEAR)
    # Lighting: a left-right gradient and a colour cast; then sensor noise.
    pixels = np.asarray(canvas, dtype=np.float32)
    gradient = 1 + 0.25 * scene.light_side * np.linspace(-1, 1, size)[None, :, None]
    pixels = pixels * gradient * scene.light_level * np.array(scene.cast, dtype=np.float32)
    pixels += rng.normal(0, 3.0, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
