"""PIL image → model input. Shared by training and inference so both see the same pixels."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..levels import SAMPLE, STRIP, bounds, levels

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
GREY = ("I;16", "I;16B", "I;16L", "I", "F")  # scaled to 8-bit L by their percentiles
ALPHA = ("P", "RGBA", "LA", "PA", "RGBa", "La")  # composited on white, and so is a colour key (PNG tRNS) in any mode


def _plain(img: Image.Image) -> bool:
    """L or RGB without a colour key: already the model's pixels."""
    return img.mode in ("L", "RGB") and "transparency" not in img.info


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white, as a browser shows it (always a new image)."""
    flat = _flat(img)
    return flat if flat is not img and flat.mode == "RGB" else flat.convert("RGB")


def thumbnail(img: Image.Image, side: int) -> Image.Image:
    """RGB within side × side, transparency on white (a new image): to_rgb(img).thumbnail((side, side))'s pixels,
    but a big image reduced first a strip at a time, by the factors Image.thumbnail reduces by (its reducing_gap
    of 2). to_rgb's whole-image RGB copy took 310 MB more for one 81 Mpx greyscale PNG, on each reading thread."""
    size = _thumb_size(img.width, img.height, side)
    if size is None:  # small enough already
        return to_rgb(img)
    factor = (int(img.width / size[0] / 2.0) or 1, int(img.height / size[1] / 2.0) or 1)
    if factor == (1, 1):
        return to_rgb(img).resize(size, Image.BICUBIC)
    if _plain(img):
        small = img.reduce(factor)
    else:
        small = Image.new("L" if img.mode in GREY else "RGB", (-(-img.width // factor[0]), -(-img.height // factor[1])))
        for top, part in _flat_strips(img, _rows(img, factor[1])):
            small.paste(part.reduce(factor), (0, top // factor[1]))
    box = (0, 0, img.width / factor[0], img.height / factor[1])
    return small.convert("RGB").resize(size, Image.BICUBIC, box=box)


def _thumb_size(width: int, height: int, side: int) -> tuple[int, int] | None:
    """The size Image.thumbnail((side, side)) gives an image of width × height (None: it stays as it is)."""
    if side >= width and side >= height:
        return None
    aspect, x, y = width / height, side, side
    if x / y >= aspect:
        x = max(min(math.floor(y * aspect), math.ceil(y * aspect), key=lambda n: abs(aspect - n / y)), 1)
    else:
        y = max(min(math.floor(x / aspect), math.ceil(x / aspect),
                    key=lambda n: 0 if n == 0 else abs(aspect - x / n)), 1)
    return x, y


def _flat(img: Image.Image) -> Image.Image:
    """L or RGB: `img` itself when it is one, else pasted together from `_flat_strips`."""
    if _plain(img):
        return img
    out = Image.new("L" if img.mode in GREY else "RGB", img.size)
    for top, part in _flat_strips(img, _rows(img)):
        out.paste(part, (0, top))
    return out


def _flat_strips(img: Image.Image, rows: int):
    """(top, the next `rows` rows as L or RGB) down an image of another mode: 16-bit and float greyscale scaled
    to 8 bits, transparency composited on white, other modes as RGB. A strip at a time, as a whole-image float
    or RGBA copy of a 100 Mpx image would take gigabytes."""
    if img.mode in GREY:
        key = img.info.get("transparency")  # a grey PNG's tRNS value, in the decoded pixels' scale
        lo, hi = _percentiles(img, key)
        for top, arr in _grey_strips(img, rows):
            keyed = arr == key if key is not None else None
            arr = levels(arr, lo, hi)
            if keyed is not None:
                arr[keyed] = 255
            yield top, Image.fromarray(arr, "L")
        return
    for top in range(0, img.height, rows):
        part = img.crop((0, top, img.width, min(top + rows, img.height)))
        if img.mode in ALPHA or "transparency" in img.info:  # convert() turns a colour key into alpha
            part = part.convert("LA" if part.mode == "La" else "RGBA").convert("RGBA")  # La goes only to LA
            part = Image.alpha_composite(Image.new("RGBA", part.size, (255, 255, 255, 255)), part)
        yield top, part.convert("RGB")


def _rows(img: Image.Image, step: int = 1) -> int:
    """Rows of `img` in one strip: about STRIP pixels, a multiple of `step`."""
    return max(step, STRIP // max(img.width, 1) // step * step)


def _grey_strips(img: Image.Image, rows: int):
    """(top, float32 array of the next `rows` rows) down a one-band image."""
    for top in range(0, img.height, rows):
        yield top, np.asarray(img.crop((0, top, img.width, min(top + rows, img.height))), dtype=np.float32)


def _percentiles(img: Image.Image, key=None):
    """The 0.5 and 99.5 percentiles of a one-band image's finite values other than the colour `key`, from an
    even grid of about SAMPLE pixels when it has more; one NaN or inf must not blacken the rest. Where they
    meet (a blank page, a few lines of ink) the extremes, and where those meet too the type's own range
    (0–65535, floats 0–1), so that a white page stays white."""
    step = max(1, int(np.ceil(np.sqrt(img.width * img.height / SAMPLE))))
    sample = np.empty((-(-img.height // step), -(-img.width // step)), np.float32)
    for top, arr in _grey_strips(img, _rows(img, step)):
        part = arr[::step, ::step]
        sample[top // step:top // step + len(part)] = part
    return bounds(sample, img.mode == "F", (0.0, 1.0) if img.mode == "F" else (0.0, 65535.0), key)


def resize_rgb(img: Image.Image, size: int) -> np.ndarray:
    """Uint8 HWC array: the image as RGB, squashed to size × size. The pixels the model sees."""
    # the factor Image.resize first reduces by with reducing_gap=2.0
    factor = (int(img.width / size / 2.0) or 1, int(img.height / size / 2.0) or 1)
    if not _plain(img) and factor != (1, 1):  # flattened and reduced a strip at a time, never whole
        small = Image.new("L" if img.mode in GREY else "RGB", (-(-img.width // factor[0]), -(-img.height // factor[1])))
        for top, part in _flat_strips(img, _rows(img, factor[1])):
            small.paste(part.reduce(factor), (0, top // factor[1]))
        img = small.resize((size, size), Image.BILINEAR, box=(0, 0, img.width / factor[0], img.height / factor[1]))
    else:
        img = _flat(img)  # greyscale is resized before it becomes RGB, to the same pixels
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def normalize(arr: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    """Uint8 HWC (or NHWC) → float32 normalised by a model's per-channel `mean` and `std` (of values in 0–1), same
    layout (a view of channel-first memory). Each channel is worked on as one run: with the channels last, NumPy's
    loops took 3 values at a time (3.5× slower in all)."""
    planes = np.ascontiguousarray(np.moveaxis(arr, -1, 0)).astype(np.float32) / 255.0
    shape = (-1,) + (1,) * (arr.ndim - 1)
    planes = (planes - np.asarray(mean, np.float32).reshape(shape)) / np.asarray(std, np.float32).reshape(shape)
    return np.moveaxis(planes, 0, -1)


def prepare(img: Image.Image, size: int, mean=MEAN, std=STD) -> np.ndarray:
    """Float32 CHW array of one image, resized (squashed) to size × size and normalised."""
    return np.ascontiguousarray(normalize(resize_rgb(img, size), mean, std).transpose(2, 0, 1))
