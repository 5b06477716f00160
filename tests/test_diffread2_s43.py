"""Session 43's second critical read: a deep JPEG's memory, serve's listening probe."""

from __future__ import annotations

import asyncio
import socket
import tracemalloc

import numpy as np
import pytest

from medimg.listening import cannot_listen
from medimg.sources import deep_jpeg
from medimg.sources.base import ImageItem, Limits

imagecodecs = pytest.importorskip("imagecodecs", reason="12-bit JPEGs are decoded through imagecodecs")


@pytest.mark.parametrize("colour", [False, True])
def test_a_12_bit_jpeg_holds_one_decoded_picture_at_a_time(colour):
    """The cut-short check decoded the file twice and compared both pictures, then copied the result again: 2.5 times
    the decoded picture at once (a 100-megapixel 12-bit colour JPEG, under max_pixels: 1.5 GB). Now the second
    decode goes over the first, compared by digest."""
    ramp = np.linspace(0, 4095, 1600)[None, :] * np.ones((1200, 1))
    a = np.ascontiguousarray(np.stack([ramp, ramp[::-1], ramp], -1) if colour else ramp).astype(np.uint16)
    data = imagecodecs.jpeg8_encode(a, bitspersample=12, level=90)
    deep_jpeg.read(imagecodecs.jpeg8_encode(np.zeros((8, 8), np.uint16), bitspersample=12), "warm", Limits())
    tracemalloc.start()
    try:
        item = deep_jpeg.read(data, "ct.jpg", Limits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(item, ImageItem) and item.image.size == (1600, 1200)
    assert peak < 1.6 * a.nbytes, (peak, a.nbytes)  # numpy's arrays (Pillow's own copy is not traced)
    cut = deep_jpeg.read(data[:len(data) * 2 // 3] + b"\xff\xd9", "cut.jpg", Limits())  # the check still holds
    assert "truncated 12-bit JPEG" in getattr(cut, "error", ""), cut


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6(), reason="no IPv6 on this machine")
def test_serve_on_ipv6_is_not_refused_for_a_port_another_program_has_on_ipv4():
    """uvicorn (asyncio's create_server) binds an IPv6 address IPv6-only, so `--host ::` starts while another program
    has 0.0.0.0 on the port; the probe bound dual-stack and said "Address already in use" (exit 3)."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = cannot_listen("::", port)

        async def serve() -> None:  # what the server will do: it can
            server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host="::", port=port)
            server.close()

        asyncio.run(serve())
        assert problem is None, problem
        # an address the port is taken on is still said
        with socket.socket(socket.AF_INET6) as v6:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(("::", 0))
            v6.listen()
            assert "Address already in use" in (cannot_listen("::", v6.getsockname()[1]) or "")


def _acr_nema(colour: bool) -> bytes:
    """An old file (no meta, implicit VR) that leaves out Samples per Pixel and Photometric Interpretation."""
    import io

    import pydicom
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Modality, ds.Rows, ds.Columns = "CT", 64, 80
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    y, x = np.mgrid[0:64, 0:80]
    a = np.stack([x * 3, y * 4, np.full_like(x, 200)], -1) if colour else x * 3
    ds.PixelData = a.astype(np.uint8).tobytes()
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, implicit_vr=True, little_endian=True)
    return out.getvalue()


def test_an_old_dicom_whose_pixel_data_holds_three_samples_is_not_read_as_grey():
    """`_fill_image_pixel` assumed one sample (MONOCHROME2) whenever both were left out, so an RGB frame's bytes were
    read as a grey picture three times too many pixels wide, cut to its first third, with a note. Its data holds three
    samples a pixel: it is left as before (an error naming what is missing); a grey one is still filled."""
    from medimg.sources import Blob, ItemError, open_input

    [grey] = open_input(Blob("old.dcm", _acr_nema(False), name="old.dcm"), Limits())
    assert isinstance(grey, ImageItem) and grey.image.mode == "L" and "MONOCHROME2 assumed" in grey.metadata["note"]
    [colour] = open_input(Blob("old.dcm", _acr_nema(True), name="old.dcm"), Limits())
    assert isinstance(colour, ItemError) and "Photometric Interpretation" in colour.error, colour


def test_channels_read_one_by_one_are_kept_within_max_pixels_together():
    """Channels that pass max_pixels only together are decoded a channel at a time (b4f95f4), but each was reduced only
    to MAX_SIDE (4096) a side: 12 channels of 600×600 under a cap of 1,000,000 were kept whole, 4.3 million pixels
    at once (40 channels of 3000×3000 under the default cap: 360 million). Each now keeps its share of the cap."""
    tifffile = pytest.importorskip("tifffile")
    import io

    from medimg.sources import Blob, open_input

    n, side = 12, 600
    a = np.zeros((n, side, side), np.uint8)
    for c in range(n):
        a[c, :, c * side // n:(c + 1) * side // n] = 200
    out = io.BytesIO()
    tifffile.imwrite(out, a, ome=True, metadata={"axes": "CYX"}, photometric="minisblack")
    [item] = open_input(Blob("cycif.ome.tif", out.getvalue(), name="cycif.ome.tif"), Limits(max_pixels=1_000_000))
    assert isinstance(item, ImageItem), item
    w, h = item.image.size
    assert n * w * h <= 1_000_000 and (w, h) == (200, 200), item.image.size
    assert item.full_size == (side, side)
