"""Memory stays bounded: caps hold before pixels are decoded (session 41's memory review)."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib

from medimg.sources import Blob, ImageItem, ItemError, Limits
from medimg.sources.base import Context
from medimg.sources.files import open_image

from builders import image_bytes

SIDE = 10_000  # a grey PNG of 100 MP: 100 MB once decoded, about 100 kB in its file


def _blank_png(side: int) -> bytes:
    """A grey PNG of side × side zero pixels, made a row at a time (never whole in memory)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(9), bytes(side + 1)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _icon(picture: bytes, said: int = 16) -> bytes:
    """An .ico of one picture whose directory entry says it is `said` × `said`."""
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", said, said, 0, 0, 1, 32, len(picture), 22) + picture


def test_icon_over_max_pixels_is_refused_before_it_is_decoded(tmp_path):
    """Pillow decodes an icon's picture as it opens it, whatever the PNG inside says (its own bomb check is at twice
    89 MP, or twice max_pixels when raised). So an 8 kB .ico whose directory says 16×16 made a run decode 100 MB
    with max_pixels=10,000, and only then say the image was over the cap and "not decoded". It is now refused from
    the picture's own header, before Pillow opens it: the process's peak memory does not grow by the picture."""
    path = tmp_path / "bomb.ico"
    path.write_bytes(_icon(_blank_png(SIDE)))
    script = textwrap.dedent(f"""
        import resource
        from medimg.sources import Blob, Limits
        from medimg.sources.base import Context
        from medimg.sources.files import open_image
        data = open({str(path)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        items = list(open_image(Blob("bomb.ico", data, name="bomb.ico"), Context(Limits(max_pixels=10_000))))
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grew // 1024, items[0].error)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grew, error = out.stdout.strip().split(" ", 1)
    assert int(grew) < 40, f"peak memory grew by {grew} MB opening a refused icon ({error})"
    assert "10000×10000 = 100,000,000 pixels as stored, over the max_pixels cap of 10,000" in error


def test_icon_within_the_cap_still_reads_and_bitmap_pictures_are_measured_too():
    """Icons under the cap read as before; a bitmap picture's height in its header counts its mask too (halved)."""
    data = image_bytes("ICO", (64, 64), sizes=[(16, 16), (64, 64)], bitmap_format="bmp")
    items = list(open_image(Blob("a.ico", data, name="a.ico"), Context(Limits(max_pixels=64 * 64))))
    assert isinstance(items[0], ImageItem) and items[0].image.size == (64, 64)
    items = list(open_image(Blob("a.ico", data, name="a.ico"), Context(Limits(max_pixels=64 * 64 - 1))))
    assert isinstance(items[0], ItemError) and "64×64 = 4,096 pixels as stored" in items[0].error
    png = _icon(image_bytes("PNG", (300, 200)), said=0)  # 0: the directory's 256
    items = list(open_image(Blob("b.ico", png, name="b.ico"), Context(Limits(max_pixels=300 * 200 - 1))))
    assert isinstance(items[0], ItemError) and "300×200" in items[0].error


def test_a_dicom_slide_tile_that_is_an_icon_is_not_decoded_by_pillow(tmp_path):
    """A whole-slide DICOM's baseline-JPEG tiles were opened by Pillow in any format it knows; a tile that was an
    icon holding a 100 MP picture was decoded (Pillow decodes icons as it opens them) before its size was checked
    against Rows/Columns. Only a JPEG is opened so now; the tile goes to pydicom's path, which refuses it."""
    from builders import jpeg_slide_dicom

    tile = _icon(_blank_png(SIDE))
    path, plain = tmp_path / "slide.dcm", tmp_path / "plain.dcm"
    path.write_bytes(jpeg_slide_dicom([tile, tile], across=2, tile=64))
    plain.write_bytes(jpeg_slide_dicom([image_bytes("JPEG", (64, 64))] * 2, across=2, tile=64))
    script = textwrap.dedent(f"""
        import resource
        from medimg.sources import open_input
        list(open_input({str(plain)!r}))  # the readers' own imports are not counted
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        items = list(open_input({str(path)!r}))
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grew // 1024, [getattr(i, "error", None) for i in items])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grew, errors = out.stdout.strip().split(" ", 1)
    assert int(grew) < 40, f"peak memory grew by {grew} MB reading a slide of icon tiles ({errors})"
    assert "None" not in errors  # nothing read as an image
