"""Session 38's speed fixes keep their answers: a stylesheet's blocks are split as the token loop splits them (a block
without blocks inside is now taken in one match), the model's input is the same floats (normalised a channel at a
time), and a truncated JPEG is told from one missing only its end marker strip by strip. No timings here: the
benchmarks time them (docs/benchmarks.md)."""

from __future__ import annotations

import io
import random
import re

import numpy as np
import pytest
from PIL import Image

import builders as b
from medimg.model.preprocess import MEAN, STD, normalize, prepare, resize_rgb
from medimg.sources import Blob, ImageItem, ItemError, Limits, css, open_input

# The splitting rule written as a plain token loop (the code before session 38): at the top level "{", "}" and ";"
# count, inside a block only the braces; strings and url()s are skipped whole, whatever they hold.
_TOP = re.compile(r"""[{};"']|url\(""", re.I)
_INSIDE = re.compile(r"""[{}"']|url\(""", re.I)


def loop_parts(text: str) -> list[tuple[str, str | None]]:
    out, start, open_at, pos, depth = [], 0, 0, 0, 0
    while (m := (_TOP if depth == 0 else _INSIDE).search(text, pos)) is not None:
        mark = m.group()
        if mark in ('"', "'") or len(mark) > 1:
            pos = css._SKIP[mark[0].lower()].match(text, m.start()).end()
            continue
        pos = m.end()
        if mark == "{":
            open_at = m.start() if depth == 0 else open_at
            depth += 1
        elif mark == ";":
            out.append((text[start:m.start()].strip(), None))
            start = pos
        elif depth:
            depth -= 1
            if depth == 0:
                out.append((text[start:open_at].strip(), text[open_at + 1:m.start()]))
                start = pos
        else:
            start = pos
    if depth:
        out.append((text[start:open_at].strip(), text[open_at + 1:]))
    elif text[start:].strip():
        out.append((text[start:].strip(), None))
    return out


CASES = [
    "a { background: url(x.png) }",
    "a{b:url(a}b.png)} c{d:e}",  # a brace inside an unquoted url(): skipped with it
    'a{content:"}"} b{c:d}',  # and inside a string
    "a{content:'x\\'}'} b{}",  # an escaped quote
    'a{content:"line\nb{c:d}',  # a string ends at its line's end
    "a{x:URL( 'y}' ) ;Url(z} } q{}",  # url( in any case, quoted, with spaces
    "a{x:curl(}}",  # "url(" inside a longer word still is one
    "@media screen{a{b:url(c)}} d{e:f}",  # a block inside a block: the loop's way
    "a{b:c", "}a{b}", "a{b:url(", 'a{b:"', "a{\\}b}", "a{u}b{ur}c{URL}",
    "a{b:url(\"x\" y)} c{d:url('e'}",
]


@pytest.mark.parametrize("text", CASES)
def test_a_stylesheet_is_split_as_the_token_loop_splits_it(text):
    assert list(css.parts(text)) == loop_parts(text)


def test_random_stylesheets_are_split_as_the_token_loop_splits_them():
    tokens = ["{", "}", "{", "}", ";", '"', "'", "\\", "\n", " ", "url(", "URL(", "uRl(", "u", "U", ")", "(", "a",
              "b:c", "@media x", "x.png", "curl(", '\\"', "\\'", "url( \"a", "url('b')", "\u00a0", "é", "ſ"]
    rng = random.Random(38)
    for _ in range(20_000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        assert list(css.parts(text)) == loop_parts(text), text


def test_the_model_input_is_the_plain_formula_in_the_same_layout():
    """(pixel / 255 − mean) / std, float32, as NumPy computes it with the channels last: the same bytes."""
    rng = np.random.default_rng(0)
    for shape in [(40, 30, 3), (2, 17, 5, 3), (1, 1, 3)]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        plain = (x.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
        got = normalize(x)
        assert got.shape == x.shape and got.dtype == np.float32
        assert np.ascontiguousarray(got).tobytes() == plain.tobytes()
    for img in (b.pattern((300, 200)), b.pattern((300, 200)).convert("L"), b.pattern((64, 64)).convert("RGBA")):
        arr = prepare(img, 48)
        x = resize_rgb(img, 48)
        plain = (x.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
        assert arr.shape == (3, 48, 48) and arr.flags["C_CONTIGUOUS"] and arr.dtype == np.float32
        assert arr.tobytes() == np.ascontiguousarray(plain.transpose(2, 0, 1)).tobytes()


def items(data: bytes, **limits) -> list:
    return list(open_input(Blob("photo.jpg", data, name="photo.jpg"), Limits(**limits)))


@pytest.mark.parametrize("progressive", [False, True])
def test_a_tall_jpeg_cut_anywhere_is_an_error_and_one_missing_its_end_marker_is_whole(progressive):
    """Many strips of rows: a cut in the first strip, in the middle or near the end is told from a file that
    lacks only FF D9, whether the strips differ early or late."""
    data = b.encode(b.pattern((320, 1100)), "JPEG", quality=90, progressive=progressive)
    whole = np.asarray(Image.open(io.BytesIO(data)))
    for limits in ({}, {"decode_side": 64}):
        (item,) = items(data[:-2], **limits)
        assert isinstance(item, ImageItem), item
        if not limits:
            assert np.array_equal(np.asarray(item.image), whole)
        for cut in (len(data) // 10, len(data) // 2, len(data) - 30):
            (item,) = items(data[:cut], **limits)
            assert isinstance(item, ItemError) and "truncated" in item.error, (cut, limits, item)


def test_a_whole_jpeg_with_a_grey_corner_is_not_decoded_again(monkeypatch):
    """A photo or chart whose bottom-right block is flat mid-grey, but not its whole last row, is not checked for
    a cut (two more full decodes: 490 ms against 139 ms for a 12 MP photo); one grey along its last row is."""
    import io

    import numpy as np
    from PIL import Image

    from medimg.sources import Blob, ImageItem, open_input
    from medimg.sources import files

    calls = []
    real = files._scans_whole
    monkeypatch.setattr(files, "_scans_whole", lambda data: calls.append(1) or real(data))
    rng = np.random.default_rng(3)
    for grey_row, want in ((False, 0), (True, 1)):
        px = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        px[-16:, -16:] = 128  # the corner
        if grey_row:
            px[-16:] = 128
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, "JPEG", quality=95)
        calls.clear()
        (item,) = list(open_input(Blob("c.jpg", buf.getvalue(), name="c.jpg")))
        assert isinstance(item, ImageItem), item  # whole: read either way
        assert len(calls) == want, grey_row
