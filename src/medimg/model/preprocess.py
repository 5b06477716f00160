"""PIL image → model input. Shared by training and inference so both see the same pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white, as a browser shows it."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        finite = arr[np.isfinite(arr)] if img.mode == "F" else arr  # one NaN or inf must not blacken the rest
        lo, hi = np.percentile(finite, (0.5, 99.5)) if finite.size else (0.0, 1.0)
        arr = np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo)
        arr = np.clip((arr - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGBa"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def resize_rgb(img: Image.Image, size: int) -> np.ndarray:
    """Uint8 HWC array: the image as RGB, squashed to size × size. The pixels the model sees."""
    img = to_rgb(img)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8)


def normalize(arr: np.ndarray) -> np.ndarray:
    """Uint8 HWC (or NHWC) → float32 normalised, same layout."""
    x = arr.astype(np.float32) / 255.0
    return (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)


def prepare(img: Image.Image, size: int) -> np.ndarray:
    """Float32 CHW array of one image, resized (squashed) to size × size and normalised."""
    return np.ascontiguousarray(normalize(resize_rgb(img, size)).transpose(2, 0, 1))
