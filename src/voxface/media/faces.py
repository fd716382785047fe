"""Read face crops: any image file as the picture it shows, upright, in 8-bit RGB, resized, normalised the ArcFace way.

``read_face`` is the one image reader of voxface (training, the teacher's pretraining and cache, evaluation,
``score``, ``embed``, the app, ``protocol check``), so every path sees one picture the same way:

- the EXIF orientation is applied (phones store photos sideways with a tag that says how to turn them);
- depth is mapped by the format's range, never by the picture's own: a 16-bit sample keeps its high byte
  (``x >> 8``, what Pillow itself does for 16-bit colour PNGs), so a 16-bit save of an 8-bit picture reads
  back exactly;
- transparent pixels are composed on black, the colour insightface's ``norm_crop`` (``cv2.warpAffine`` with
  ``borderValue=0``) fills a face crop with where it leaves the photo, so an ArcFace teacher sees the same
  thing either way; an opaque image is unchanged;
- an image above Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is a bad file like any other,
  and so is one under ``MIN_FACE_PIXELS`` on its short side (an icon or a thumbnail, not a face crop).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from voxface.errors import MediaError

FACE_SIZE = 112  # ArcFace-style ResNet-34 teachers take 112x112 (DESIGN.md §1); the paper says 122.

# The smallest face voxface reads, on its short side. 16 px is the smallest anchor of RetinaFace, the detector
# insightface crops faces with: a smaller face is not found, let alone aligned, and a crop of under 16 px holds too
# little to draw a 112-px input from (7x upsampling and more). Such a file is an icon, a thumbnail or a slip.
MIN_FACE_PIXELS = 16

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # I: Pillow's 32-bit mode, as 16-bit PGM/TIFF open


def read_face(path: str | Path, size: int = FACE_SIZE) -> np.ndarray:
    """Return the picture of an image file as an upright RGB ``(size, size, 3)`` uint8 array.

    Raises MediaError (naming the file) for a missing, corrupt or unreadable image, for one larger than
    Pillow's safety limit, and for one under ``MIN_FACE_PIXELS`` on its short side.
    """
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that (and refuses above): either way no face crop
            # is that large, and decoding it could take all the memory. catch_warnings swaps the process's filters,
            # so threads reading at once (protocol check) may miss this one; the size test below covers them.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > (Image.MAX_IMAGE_PIXELS or float("inf")):
                    raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels, more than "
                                                       f"Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}")
                image.load()
                image = to_rgb(ImageOps.exif_transpose(image))
        if min(image.size) < MIN_FACE_PIXELS:
            if min(image.size) == 0:
                raise MediaError(f"{path}: empty image ({image.width}x{image.height} pixels)")
            raise MediaError(f"{path}: image of {image.width}x{image.height} pixels, too small to be a face: voxface "
                             f"needs at least {MIN_FACE_PIXELS} pixels a side (face crops are usually 112 or more)")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        array = np.array(image, dtype=np.uint8)  # a writable copy
    except FileNotFoundError:
        raise MediaError(f"{path}: image file does not exist") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise MediaError(f"{path}: image too large to read safely ({err}); a face crop needs a few hundred pixels "
                         "a side: downscale it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise MediaError(f"{path}: cannot read image ({err})") from None
    return array


def to_rgb(image: Image.Image) -> Image.Image:
    """The 8-bit RGB picture of an image of any mode: L, LA, RGBA, CMYK, P (with or without transparency), 1,
    16-bit grey (I;16, I). Raises ValueError for samples whose scale is not defined (32-bit float, F)."""
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{image.mode} samples outside 0..65535; save it as an 8- or 16-bit image")
        return Image.fromarray((values >> 8).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        raise ValueError("32-bit float samples have no fixed scale; save it as an 8- or 16-bit image")
    if image.has_transparency_data:  # an alpha channel, a transparent palette entry or a PNG colour key
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return image.convert("RGB")


def face_to_tensor(face: np.ndarray, flip: bool = False) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float, scaled (x / 255 - 0.5) / 0.5 as insightface does."""
    if flip:
        face = face[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1).float()
    return (tensor / 255.0 - 0.5) / 0.5
