"""Training-time augmentation on uint8 RGB arrays; breaks the corpus' shortcuts.

Corpus files are all WebP ≤ 256 px, some sources are 32/64 px and many medical sources are grey:
so we re-encode, rescale, crop, pad, grey out, jitter colour, blur and draw figure-style text and
arrows at random, so that neither compression, resolution, colour nor clean framing gives the label away.
"""

from __future__ import annotations

import io
import string

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

_FONTS: dict[int, ImageFont.FreeTypeFont] = {}
_CHARS = string.ascii_letters + string.digits + "  .,:%()-/"


def _font(size: int):
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r = rng.random()
    if r < 0.35:
        return (255, 255, 255)
    if r < 0.6:
        return (0, 0, 0)
    if r < 0.75:
        return (255, 255, 0)
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def crop(img: Image.Image, rng: np.random.Generator, min_area: float = 0.45) -> Image.Image:
    w, h = img.size
    for _ in range(5):
        area = rng.uniform(min_area, 1.0) * w * h
        ratio = np.exp(rng.uniform(np.log(0.6), np.log(1.66)))
        cw, ch = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
        if 8 <= cw <= w and 8 <= ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BILINEAR)
    return img


def pad(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Shrink onto a plain background: borders, letterboxing, a panel inside a figure."""
    w, h = img.size
    s = rng.uniform(0.55, 0.95)
    sx, sy = (s, s * rng.uniform(0.7, 1.0)) if rng.random() < 0.5 else (s * rng.uniform(0.7, 1.0), s)
    nw, nh = max(8, int(w * sx)), max(8, int(h * sy))
    bg = Image.new("RGB", (w, h), _colour(rng))
    bg.paste(img.resize((nw, nh), Image.BILINEAR), (int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))))
    return bg


def annotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Figure-style overlays: labels, scale bars, arrows, a caption strip."""
    d = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.random()
        col = _colour(rng)
        if kind < 0.5:
            n = int(rng.integers(1, 14))
            text = "".join(rng.choice(list(_CHARS), n))
            size = int(rng.integers(7, 20))
            d.text((int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))), text, fill=col, font=_font(size))
        elif kind < 0.8:  # arrow
            x1, y1 = rng.integers(10, w - 10), rng.integers(10, h - 10)
            ang = rng.uniform(0, 2 * np.pi)
            ln = rng.uniform(12, 40)
            x0, y0 = x1 - ln * np.cos(ang), y1 - ln * np.sin(ang)
            wd = int(rng.integers(1, 4))
            d.line([(x0, y0), (x1, y1)], fill=col, width=wd)
            hs = 4 + 2 * wd
            pts = [(x1, y1)] + [(x1 - hs * np.cos(ang + a), y1 - hs * np.sin(ang + a)) for a in (0.5, -0.5)]
            d.polygon(pts, fill=col)
        elif kind < 0.9:  # scale bar or box
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 6))
            d.rectangle([x0, y0, x0 + int(rng.integers(10, 40)), y0 + int(rng.integers(1, 4))], fill=col)
        else:  # caption strip along an edge
            sh = int(rng.integers(10, 24))
            top = rng.random() < 0.5
            box = [0, 0, w, sh] if top else [0, h - sh, w, h]
            bg = (255, 255, 255) if rng.random() < 0.6 else (0, 0, 0)
            d.rectangle(box, fill=bg)
            text = "".join(rng.choice(list(_CHARS), int(rng.integers(8, 30))))
            d.text((2, box[1] + 1), text, fill=(255 - bg[0],) * 3, font=_font(sh - 3))
    return img


def rescale(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Down to a low resolution and back: the model must not read the label off sharpness."""
    w, h = img.size
    s = int(rng.integers(24, max(25, int(0.8 * min(w, h)))))
    methods = [Image.NEAREST, Image.BILINEAR, Image.BICUBIC, Image.LANCZOS]
    small = img.resize((s, max(8, int(s * h / w))), methods[int(rng.integers(0, 4))])
    return small.resize((w, h), methods[int(rng.integers(1, 4))])


def recode(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    if rng.random() < 0.75:
        img.save(buf, "JPEG", quality=int(rng.integers(25, 96)), subsampling=int(rng.integers(0, 3)))
    else:
        img.save(buf, "WEBP", quality=int(rng.integers(30, 96)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def colour(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    for enh, lo, hi in ((ImageEnhance.Brightness, 0.65, 1.35), (ImageEnhance.Contrast, 0.65, 1.4),
                        (ImageEnhance.Color, 0.5, 1.5)):
        if rng.random() < 0.6:
            img = enh(img).enhance(rng.uniform(lo, hi))
    if rng.random() < 0.25:  # hue shift
        hsv = np.asarray(img.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-20, 21))) % 256
        img = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.15:  # gamma
        g = rng.uniform(0.7, 1.4)
        img = img.point([int(255 * (i / 255) ** g) for i in range(256)] * 3)
    return img


def icon(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A made-up icon, emoji or logo: flat or shaded shapes, maybe a face or a glyph, on a plain ground.

    The corpus' graphics hold few of these, and a round yellow face otherwise reads as a fundus photo;
    drawn at 2× and downsampled, as real icons are antialiased.
    """
    big = 2 * size
    r = rng.random()
    ground = (255, 255, 255) if r < 0.55 else _pastel(rng) if r < 0.8 else tuple(int(v) for v in rng.integers(0, 60, 3))
    img = Image.new("RGB", (big, big), ground)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 5))):
        fill = _vivid(rng)
        outline = tuple(int(v) for v in rng.integers(0, 90, 3)) if rng.random() < 0.5 else None
        wd = int(rng.integers(2, 12))
        cx, cy = rng.uniform(0.25, 0.75, 2) * big
        rx, ry = rng.uniform(0.12, 0.48) * big, rng.uniform(0.12, 0.48) * big
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        kind = rng.random()
        if kind < 0.4:
            if rng.random() < 0.5:  # shaded: lighter discs towards the top left
                for k in range(8, 0, -1):
                    f = k / 8
                    c = tuple(int(v + (255 - v) * (1 - f) * 0.6) for v in fill)
                    x0, y0 = cx - (1 - f) * rx * 0.3, cy - (1 - f) * ry * 0.3  # the lighter, the further up-left
                    d.ellipse([x0 - rx * f, y0 - ry * f, x0 + rx * f, y0 + ry * f], fill=c)
                if outline:
                    d.ellipse(box, outline=outline, width=wd)
            else:
                d.ellipse(box, fill=fill, outline=outline, width=wd)
        elif kind < 0.6:
            d.rounded_rectangle(box, radius=int(min(rx, ry) * rng.uniform(0, 0.6)), fill=fill, outline=outline,
                                width=wd)
        elif kind < 0.8:
            n = int(rng.integers(3, 9))
            star = rng.random() < 0.4
            m = 2 * n if star else n  # a star alternates outer and inner corners
            reach = [0.45 if star and j % 2 else 1 for j in range(m)]
            pts = [(cx + rx * reach[j] * np.cos(2 * np.pi * j / m), cy + ry * reach[j] * np.sin(2 * np.pi * j / m))
                   for j in range(m)]
            d.polygon(pts, fill=fill, outline=outline)
        else:
            d.arc(box, float(rng.uniform(0, 360)), float(rng.uniform(0, 360)), fill=fill, width=int(rng.integers(6, 30)))
    if rng.random() < 0.35:  # a face
        cx, cy, rad = big / 2, big / 2, rng.uniform(0.3, 0.46) * big
        skin = (255, int(rng.integers(170, 230)), int(rng.integers(0, 80))) if rng.random() < 0.7 else _vivid(rng)
        d.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=skin,
                  outline=(int(rng.integers(80, 180)), int(rng.integers(40, 120)), 0) if rng.random() < 0.6 else None,
                  width=int(rng.integers(2, 8)))
        ink = tuple(int(v) for v in rng.integers(0, 80, 3))
        ex, ey, er = rad * rng.uniform(0.25, 0.45), rad * rng.uniform(0.15, 0.35), rad * rng.uniform(0.07, 0.16)
        for sx in (-1, 1):
            d.ellipse([cx + sx * ex - er, cy - ey - er * 1.4, cx + sx * ex + er, cy - ey + er * 1.4], fill=ink)
        m = rad * rng.uniform(0.3, 0.6)
        a0, a1 = (20, 160) if rng.random() < 0.7 else (200, 340)
        d.arc([cx - m, cy - m * 0.2, cx + m, cy + m * 0.8], a0, a1, fill=ink, width=int(rng.integers(3, 10)))
    if rng.random() < 0.2:  # a glyph
        d.text((big * rng.uniform(0.1, 0.5), big * rng.uniform(0.1, 0.5)), str(rng.choice(list(_CHARS[:62]))),
               fill=_vivid(rng), font=_font(int(big * rng.uniform(0.2, 0.5))))
    return np.asarray(img.resize((size, size), Image.LANCZOS), dtype=np.uint8)


def page(figures: list[np.ndarray], rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A page or a screenshot that shows images without being one: a paper page with body text and a
    figure of one to four panels and its caption, or an application window (title bar, toolbar, side panel,
    status bar) around a viewer. The brief's "figure pages and screenshots are graphics"; the panels are
    corpus images of any label, together at most ~30 % of the page."""
    W, H = (int(rng.integers(340, 420)), int(rng.integers(420, 540))) if rng.random() < 0.6 else \
        (int(rng.integers(440, 560)), int(rng.integers(300, 400)))
    screen = rng.random() < 0.45
    dark = screen and rng.random() < 0.6
    ground = (int(rng.integers(20, 50)),) * 3 if dark else (int(rng.integers(235, 256)),) * 3
    ink = (int(rng.integers(180, 230)),) * 3 if dark else (int(rng.integers(0, 70)),) * 3
    img = Image.new("RGB", (W, H), ground)
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = 0, 0, W, H
    if screen:  # window chrome
        bar = int(rng.integers(14, 26))
        d.rectangle([0, 0, W, bar], fill=_pastel(rng) if not dark else (60, 60, 70))
        d.text((6, 2), "".join(rng.choice(list(_CHARS), int(rng.integers(6, 24)))), fill=ink, font=_font(bar - 6))
        tool = int(rng.integers(16, 30))
        for bx in range(4, int(W * rng.uniform(0.3, 0.9)), tool + 4):
            d.rounded_rectangle([bx, bar + 3, bx + tool, bar + 3 + tool], radius=3, fill=_vivid(rng) if rng.random() < 0.3
                                else (200, 200, 205) if not dark else (80, 80, 90))
        side = int(W * rng.uniform(0.15, 0.3)) if rng.random() < 0.7 else 0
        y0 = bar + tool + 8
        for ty in range(y0 + 4, H - 20, int(rng.integers(12, 20))):
            d.text((4, ty), "".join(rng.choice(list(_CHARS), int(rng.integers(3, 12)))), fill=ink, font=_font(10))
            if ty > H * rng.uniform(0.4, 1.0):
                break
        d.rectangle([0, H - 16, W, H], fill=(70, 70, 80) if dark else (225, 225, 230))
        x0, x1, y1 = side + 6, W - 4, H - 20
        if rng.random() < 0.3:
            d.rectangle([x0, y0, x1, y1], fill=(0, 0, 0))
    else:  # body text above and below the figure
        margin = int(W * rng.uniform(0.08, 0.14))
        x0, x1 = margin, W - margin
        fs = int(rng.integers(8, 12))
        for ty in range(margin, H - margin, fs + 3):
            d.text((x0, ty), "".join(rng.choice(list(_CHARS), int((x1 - x0) / (fs * 0.55)))), fill=ink, font=_font(fs))
        top = int(rng.integers(margin, max(margin + 1, int(H * 0.45))))
        y0, y1 = top, min(H - margin, top + int(H * rng.uniform(0.3, 0.5)))
        d.rectangle([x0 - 2, y0 - 2, x1 + 2, y1 + 24], fill=ground)
        d.text((x0, y1 + 4), "Fig. " + "".join(rng.choice(list(_CHARS), int(rng.integers(20, 60)))), fill=ink,
               font=_font(fs))
    n = len(figures)
    cols = 1 if n == 1 else 2
    rows = (n + cols - 1) // cols
    cw, ch = (x1 - x0) // cols, (y1 - y0) // rows
    budget = 0.3 * W * H / n
    for k, fig in enumerate(figures):
        fw, fh = cw - 6, ch - 6
        scale = min(1.0, float(np.sqrt(budget / max(1, fw * fh)))) * rng.uniform(0.5, 1.0)
        fw, fh = max(8, int(fw * scale)), max(8, int(fh * scale))
        cx, cy = x0 + (k % cols) * cw + (cw - fw) // 2, y0 + (k // cols) * ch + (ch - fh) // 2
        img.paste(Image.fromarray(fig).resize((fw, fh), Image.BILINEAR), (cx, cy))
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _vivid(rng: np.random.Generator) -> tuple[int, int, int]:
    c = rng.integers(0, 256, 3)
    c[int(rng.integers(0, 3))] = int(rng.integers(180, 256))
    return tuple(int(v) for v in c)


def _pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(200, 256, 3))


def augment(arr: np.ndarray, rng: np.random.Generator, min_crop: float = 0.45) -> np.ndarray:
    """One random view of a uint8 HWC image; same shape out. Crops keep ≥ `min_crop` of the area."""
    img = Image.fromarray(arr)
    if rng.random() < 0.6:
        img = crop(img, rng, min_crop)
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    if rng.random() < 0.1:
        img = img.rotate(90 * int(rng.integers(1, 4)))
    if rng.random() < 0.5:
        img = colour(img, rng)
    if rng.random() < 0.2:
        img = ImageOps.grayscale(img).convert("RGB")
    if rng.random() < 0.2:
        img = pad(img, rng)
    if rng.random() < 0.25:
        img = annotate(img, rng)
    if rng.random() < 0.35:
        img = rescale(img, rng)
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.5:
        img = recode(img, rng)
    return np.asarray(img, dtype=np.uint8)
