"""Found by fuzzing session 41's readers with mutated files (s41 round 2)."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib

from medimg.sources import Blob, ImageItem, Limits, open_inputs

from builders import image_bytes
from test_memory_s41 import SIDE, _blank_png, _icon


def _text_first(png: bytes) -> bytes:
    """The PNG with a tEXt chunk before its IHDR (Pillow reads chunks in order until IDAT, IHDR wherever it is)."""
    body = b"a\0" + bytes(10)
    text = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:8] + text + png[8:]


def test_an_icon_whose_png_has_a_chunk_before_ihdr_is_refused_before_it_is_decoded(tmp_path):
    """The icon check read a PNG picture's size at a fixed offset (IHDR first); a 97 kB .ico holding a 100 MP PNG
    with a tEXt chunk first got past it, and Pillow decoded 100 MB with max_pixels=10,000 before the size was
    checked again. The picture Pillow would decode is now measured by Pillow's own header reader."""
    path = tmp_path / "bomb.ico"
    path.write_bytes(_icon(_text_first(_blank_png(SIDE))))
    script = textwrap.dedent(f"""
        import resource
        from medimg.sources import Blob, Limits, open_inputs
        list(open_inputs([Blob("x.ico", {image_bytes("ICO", (16, 16))!r}, name="x.ico")]))  # imports not counted
        data = open({str(path)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        items = list(open_inputs([Blob("bomb.ico", data, name="bomb.ico")], Limits(max_pixels=10_000)))
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grew // 1024, items[0].error)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grew, error = out.stdout.strip().split(" ", 1)
    assert int(grew) < 40, f"peak memory grew by {grew} MB opening a refused icon ({error})"
    assert error.startswith("icon holds a picture of 10000×10000 = 100,000,000 pixels as stored"), error


def test_icons_and_cursors_within_the_cap_still_read():
    ico = _icon(_text_first(image_bytes("PNG", (40, 30))))
    cur = bytearray(image_bytes("ICO", (64, 64), sizes=[(16, 16), (64, 64)], bitmap_format="bmp"))
    cur[2] = 2
    items = list(open_inputs([Blob("a.ico", ico, name="a.ico"), Blob("a.cur", bytes(cur), name="a.cur")],
                             Limits(max_pixels=64 * 64)))
    assert [(type(i), i.image.size) for i in items] == [(ImageItem, (40, 30)), (ImageItem, (64, 64))], items
    (refused,) = open_inputs([Blob("a.cur", bytes(cur), name="a.cur")], Limits(max_pixels=64 * 64 - 1))
    assert "64×64 = 4,096 pixels as stored" in refused.error, refused
