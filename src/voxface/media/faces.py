"""Read face crops: any image mode to RGB, resized, normalised the ArcFace way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from voxface.errors import MediaError

FACE_SIZE = 112  # ArcFace-style ResNet-34 teachers take 112x112 (DESIGN.md §1); the paper says 122.


def read_face(path: str | Path, size: int = FACE_SIZE) -> np.ndarray:
    """Return an RGB ``(size, size, 3)`` uint8 array from any image file Pillow reads."""
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            image = to_rgb(image)
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.array(image, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise MediaError(f"{path}: image file does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise MediaError(f"{path}: cannot read image ({err})") from None
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise MediaError(f"{path}: empty image")
    return array


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert L, LA, RGBA, CMYK, P (with or without transparency), I;16, F ... to RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    return image.convert("RGB")


def face_to_tensor(face: np.ndarray, flip: bool = False) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float, scaled (x / 255 - 0.5) / 0.5 as insightface does."""
    if flip:
        face = face[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1).float()
    return (tensor / 255.0 - 0.5) / 0.5
