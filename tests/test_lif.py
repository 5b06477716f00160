"""Leica LIF projects written here in the layout LAS X uses (XML header, then memory blocks), read by readlif."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

import builders as b
from medimg.sources import Blob, ImageItem, Limits, open_input

pytest.importorskip("readlif")


def lif_bytes(images, dtype=np.uint16, luts=("Red", "Green", "Blue", "Gray"), prolog: str = "") -> bytes:
    """`images`: (name, array Z × C × Y × X). One memory block per image; X fastest, then Y, C, Z.
    `prolog`: XML text put before the header's root element."""
    bits = 8 * np.dtype(dtype).itemsize
    elements, blocks = [], []
    for k, (name, a) in enumerate(images):
        z, c, y, x = a.shape
        plane = x * y * bits // 8
        chans = "".join(
            f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="{bits}" Min="0" Max="{2 ** bits - 1}" '
            f'LUTName="{luts[i % len(luts)]}" IsLUTInverted="0" BytesInc="{i * plane}" BitInc="0"/>' for i in range(c))
        dims = (f'<DimensionDescription DimID="1" NumberOfElements="{x}" Origin="0" Length="{(x - 1) * 0.2e-6}" '
                f'Unit="m" BitInc="0" BytesInc="{bits // 8}"/>'
                f'<DimensionDescription DimID="2" NumberOfElements="{y}" Origin="0" Length="{(y - 1) * 0.2e-6}" '
                f'Unit="m" BitInc="0" BytesInc="{x * bits // 8}"/>')
        if z > 1:
            dims += (f'<DimensionDescription DimID="3" NumberOfElements="{z}" Origin="0" Length="1e-5" Unit="m" '
                     f'BitInc="0" BytesInc="{plane * c}"/>')
        data = np.ascontiguousarray(a.astype(dtype)).tobytes()
        block = f"MemBlock_{k + 1}"
        elements.append(f'<Element Name="{name}"><Data><Image><ImageDescription><Channels>{chans}</Channels>'
                        f'<Dimensions>{dims}</Dimensions></ImageDescription></Image></Data>'
                        f'<Memory Size="{len(data)}" MemoryBlockID="{block}"/><Children/></Element>')
        blocks.append((block, data))
    xml = (prolog + '<LMSDataContainerHeader Version="2"><Element Name="project.lif"><Data><Experiment/></Data>'
           '<Memory Size="0" MemoryBlockID="MemBlock_0"/><Children>' + "".join(elements) +
           '</Children></Element></LMSDataContainerHeader>')
    text = xml.encode("utf-16-le")
    out = b"\x70\x00\x00\x00" + struct.pack("<I", len(text) + 5) + b"\x2a" + struct.pack("<I", len(xml)) + text
    for block, data in blocks:
        out += (b"\x70\x00\x00\x00" + struct.pack("<I", 0) + b"\x2a" + struct.pack("<Q", len(data)) + b"\x2a"
                + struct.pack("<I", len(block)) + block.encode("utf-16-le") + data)
    return out


def stack(z=3, c=2, y=60, x=80) -> np.ndarray:
    """Channel c of slice z lights a square at x = 10 z + 25 c (rows 20–30)."""
    a = np.random.default_rng(0).integers(0, 40, (z, c, y, x), dtype=np.uint16)
    for zi in range(z):
        for ci in range(c):
            a[zi, ci, 20:30, 10 * zi + 25 * ci:10 * zi + 25 * ci + 6] = 2000
    return a


def squares(item: ImageItem) -> dict:
    """Where each colour component's square starts on row 25."""
    px = np.asarray(item.image.convert("RGB"))[25]
    return {k: int(np.argmax(px[:, k] > 200)) for k in range(3) if (px[:, k] > 200).any()}


def items_of(data: bytes, **limits) -> list:
    return list(open_input(Blob("project.lif", data, name="project.lif"), Limits(**limits)))


def test_each_series_is_an_image_of_merged_channels():
    items = items_of(lif_bytes([("Series001", stack()), ("Series002", stack(z=1, c=3))]))
    assert [i.locator for i in items] == ["Series001, z 2 of 3", "Series002"]
    first, second = items
    assert first.format == "LIF" and first.image.mode == "RGB" and first.image.size == (80, 60)
    assert squares(first) == {0: 10, 1: 35}  # slice 2: red channel 0 at 10, green channel 1 at 35
    assert squares(second) == {0: 0, 1: 25, 2: 50}
    assert first.metadata["channels"] == 2 and first.metadata["um_per_px"] == 0.2


def test_all_frames_and_lut_colours():
    items = items_of(lif_bytes([("s", stack())], luts=("Magenta", "Cyan")), all_frames=True)
    assert [i.locator for i in items] == ["s, z 1 of 3", "s, z 2 of 3", "s, z 3 of 3"]
    px = np.asarray(items[0].image)[25]
    assert px[2][0] > 200 and px[2][2] > 200 and px[2][1] < 60  # magenta at x 0–6
    assert px[27][1] > 200 and px[27][2] > 200 and px[27][0] < 60  # cyan at x 25–31


def test_eight_bit_on_disk_and_caps(tmp_path):
    path = tmp_path / "p.lif"
    path.write_bytes(lif_bytes([("s", (stack() // 10).astype(np.uint8))], dtype=np.uint8))
    item, = list(open_input(path, Limits(max_input_bytes=1000)))  # read in place
    assert isinstance(item, ImageItem) and item.origin == str(path) and item.metadata["bits"] == [8, 8]
    err, = list(open_input(path, Limits(max_pixels=100)))
    assert "max_pixels" in err.error and err.locator == "s"
    err, = list(open_input(path, Limits(max_slide_bytes=100)))
    assert "max_slide_bytes" in err.error


def test_damaged_projects_give_clear_errors():
    clean = lif_bytes([("s", stack()), ("t", stack(z=1))])
    for _, data in b.damaged(clean, seed=2, n=60, start=13):
        b.assert_clear(items_of(data))


def test_sniffing():
    from medimg.sources.lif import accepts

    head = lif_bytes([("s", stack(z=1, c=1))])[:4096]
    assert accepts(head, Blob("x", head))
    assert not accepts(b"\x70\x00\x00\x00" + bytes(100), Blob("x", b""))
    assert not accepts(io.BytesIO(b"p\x00\x00\x00").getvalue(), Blob("x", b""))


def test_xml_header_with_entities_is_refused(tmp_path):
    """An entity expansion bomb in the XML header (2.7 GB from 25 MB) is refused before readlif parses it."""
    prolog = '<!--<LMSDataContainerHeader--><!DOCTYPE LMSDataContainerHeader [<!ENTITY e "x">]><!-- &e; -->'
    data = lif_bytes([("s", stack())], prolog=prolog)
    path = tmp_path / "bomb.lif"
    path.write_bytes(data)
    for items in (items_of(data), list(open_input(path))):
        err, = items
        assert "DOCTYPE or entities" in err.error and not isinstance(err, ImageItem)
    assert len(items_of(lif_bytes([("s", stack())], prolog="<!--<LMSDataContainerHeader-->"))) == 1


pytest.importorskip("readlif")


def lif_time_series(a: np.ndarray) -> bytes:
    """One image of uint16 `a` (T × C × Y × X) in the layout LAS X writes: X fastest, then Y, C, T."""
    t, c, y, x = a.shape
    plane = x * y * 2
    chans = "".join(f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="16" Min="0" Max="65535" '
                    f'LUTName="{("Red", "Green")[i % 2]}" IsLUTInverted="0" BytesInc="{i * plane}" BitInc="0"/>'
                    for i in range(c))
    dims = (f'<DimensionDescription DimID="1" NumberOfElements="{x}" Origin="0" Length="{(x - 1) * 0.2e-6}" '
            f'Unit="m" BitInc="0" BytesInc="2"/>'
            f'<DimensionDescription DimID="2" NumberOfElements="{y}" Origin="0" Length="{(y - 1) * 0.2e-6}" '
            f'Unit="m" BitInc="0" BytesInc="{x * 2}"/>'
            f'<DimensionDescription DimID="4" NumberOfElements="{t}" Origin="0" Length="{t - 1}" Unit="s" '
            f'BitInc="0" BytesInc="{plane * c}"/>')
    data = np.ascontiguousarray(a.astype("<u2")).tobytes()
    xml = ('<LMSDataContainerHeader Version="2"><Element Name="project.lif"><Data><Experiment/></Data>'
           '<Memory Size="0" MemoryBlockID="MemBlock_0"/><Children>'
           f'<Element Name="timelapse"><Data><Image><ImageDescription><Channels>{chans}</Channels>'
           f'<Dimensions>{dims}</Dimensions></ImageDescription></Image></Data>'
           f'<Memory Size="{len(data)}" MemoryBlockID="MemBlock_1"/><Children/></Element>'
           '</Children></Element></LMSDataContainerHeader>')
    text = xml.encode("utf-16-le")
    out = b"\x70\x00\x00\x00" + struct.pack("<I", len(text) + 5) + b"\x2a" + struct.pack("<I", len(xml)) + text
    block = "MemBlock_1"
    return (out + b"\x70\x00\x00\x00" + struct.pack("<I", 0) + b"\x2a" + struct.pack("<Q", len(data)) + b"\x2a"
            + struct.pack("<I", len(block)) + block.encode("utf-16-le") + data)


def test_a_time_series_is_shown_at_its_middle_time_point():
    """Of 5 time points the third is shown, and the locator says so."""
    a = np.random.default_rng(0).integers(0, 40, (5, 2, 40, 60), dtype=np.uint16)
    for t in range(5):
        a[t, :, 10:20, 8 * t:8 * t + 6] = 3000  # time point t lights a square at x = 8 t in both channels
    (item,) = items_of(lif_time_series(a))
    assert item.locator == "timelapse, t 3 of 5"
    row = np.asarray(item.image.convert("RGB"))[15]
    assert int(np.argmax(row[:, 0] > 200)) == 16 and int(np.argmax(row[:, 1] > 200)) == 16
