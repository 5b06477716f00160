"""Microscopy files as labs write them (session 41): a colour camera's 12-bit RGB stored in 16 bits, a Zeiss LSM
confocal stack, and microscope formats medimg does not read."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

tifffile = pytest.importorskip("tifffile")


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def tiff(array: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, metadata=None, **kw)
    return buf.getvalue()


def brightfield() -> np.ndarray:
    """uint8 RGB: pale background with pink and purple patches (an H&E-like field)."""
    rng = np.random.default_rng(3)
    rgb = np.empty((96, 128, 3), np.uint8)
    rgb[:] = (235, 225, 238)
    rgb[10:50, 10:70] = (200, 90, 170)
    rgb[55:90, 60:120] = (90, 60, 150)
    return np.clip(rgb.astype(int) + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("planar", ["contig", "separate"])  # Pillow's reading, tifffile's
def test_a_12_bit_camera_s_rgb_in_16_bits_is_shown_by_its_depth_not_nearly_black(planar):
    rgb8 = brightfield()
    twelve = rgb8.astype(np.uint16) << 4 | 0xF  # the camera's 12 bits, 0–4095, in 16-bit samples
    array = np.moveaxis(twelve, -1, 0) if planar == "separate" else twelve
    [item] = items_of(tiff(array, photometric="rgb", planarconfig=planar), "camera.tif")
    assert isinstance(item, ImageItem) and item.image.mode == "RGB"
    assert np.array_equal(np.asarray(item.image), rgb8)  # was the top 8 bits of 16: at most 15 of 255
    # the same picture using all 16 bits is unchanged (its top 8 bits); planar and uncompressed, Pillow's own
    # decoder read it as 8-bit samples (wrong pixels)
    wide = rgb8.astype(np.uint16) * 257
    [full] = items_of(tiff(np.moveaxis(wide, -1, 0) if planar == "separate" else wide, photometric="rgb",
                           planarconfig=planar), "full.tif")
    assert np.array_equal(np.asarray(full.image), rgb8)
    assert item.metadata.get("bits") == 16


def lsm(z: int, channels: int, colours: list[tuple[int, int, int]] | None) -> bytes:
    """A Zeiss LSM as an LSM 510/710 writes one: per z-slice, an image page holding the channels as planar samples
    (12-bit values in 16 bits), then its RGB thumbnail page (NewSubfileType 1); CZ_LSMINFO (tag 34412) on the
    first page, its ChannelColors block at the end. Channel c of slice k is bright in a square at column 20 × c,
    over a dark field, with k + 1 bright pixels in row 0 to tell the slices apart."""
    info = np.zeros(1, np.dtype(tifffile.TIFF.CZ_LSMINFO))
    info["MagicNumber"], info["StructureSize"] = 67127628, info.dtype.itemsize
    info["DimensionX"], info["DimensionY"], info["DimensionZ"] = 128, 96, z
    info["DimensionChannels"], info["DimensionTime"], info["DataType"] = channels, 1, 2
    blob = info.tobytes()
    buf = io.BytesIO()
    rng = np.random.default_rng(5)
    with tifffile.TiffWriter(buf) as tw:
        for k in range(z):
            planes = rng.integers(40, 60, (channels, 96, 128)).astype(np.uint16)
            for c in range(channels):
                planes[c, 30:60, 10 + 20 * c:28 + 20 * c] = 3000
            planes[:, 0, :k + 1] = 4000
            tw.write(planes, photometric="minisblack", planarconfig="separate", metadata=None,
                     extratags=[(34412, 1, len(blob), blob, True)] if k == 0 else [])
            tw.write(np.full((24, 32, 3), 7, np.uint8), photometric="rgb", subfiletype=1, metadata=None)
    data = bytearray(buf.getvalue())
    if colours:
        names = b"".join(struct.pack("<I", 5) + b"Ch%d\0" % c for c in range(channels))
        block = struct.pack("<IIIIII", 24 + 4 * channels + len(names), channels, channels, 24,
                            24 + 4 * channels, 0) + bytes(b for col in colours for b in (*col, 0)) + names
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            at = tif.pages.first.tags[34412].valueoffset + info.dtype.fields["OffsetChannelColors"][1]
        data[at:at + 4] = struct.pack("<I", len(data))
        data += block
    return bytes(data)


def test_a_zeiss_lsm_is_one_stack_item_its_channels_merged_its_thumbnails_never_shown():
    data = lsm(5, 3, [(255, 0, 0), (0, 255, 0), (255, 0, 255)])
    items = items_of(data, "confocal.lsm")
    # was 10 items, page 1 … page 10: every slice and every thumbnail
    assert [(type(i), i.locator, i.format) for i in items] == [(ImageItem, "z 3 of 5", "Zeiss LSM")]
    item = items[0]
    assert item.image.size == (128, 96) and item.metadata["channels"] == 3
    arr = np.asarray(item.image).astype(int)
    assert (arr[45, 15] > [200, -1, -1]).all() and arr[45, 15, 1] < 60 and arr[45, 15, 2] < 60  # channel 1 red
    assert arr[45, 35, 1] > 200 and arr[45, 35, 0] < 60  # channel 2 green
    assert arr[45, 55, 0] > 200 and arr[45, 55, 2] > 200 and arr[45, 55, 1] < 60  # channel 3 magenta
    assert (arr[90, 100] < 60).all()  # the dark field stays dark
    every = items_of(data, "confocal.lsm", all_frames=True)
    assert [i.locator for i in every] == [f"z {k} of 5" for k in range(1, 6)]
    assert [int((np.asarray(i.image)[0] > 200).any(axis=-1).sum()) for i in every] == [1, 2, 3, 4, 5]


def test_an_lsm_on_disk_is_read_in_place_and_without_colours_takes_imagej_s(tmp_path):
    path = tmp_path / "scan.lsm"
    path.write_bytes(lsm(3, 4, None))  # (tifffile takes 2 channels' BitsPerSample as an old LSM writer's offset)
    # over max_input_bytes: read in place as a stack (max_slide_bytes), as an OME-TIFF is
    [item] = list(open_input(str(path), Limits(max_input_bytes=1000)))
    assert isinstance(item, ImageItem) and item.locator == "z 2 of 3"
    arr = np.asarray(item.image).astype(int)
    assert arr[45, 15, 0] > 200 and arr[45, 15, 1] < 60 and arr[45, 35, 1] > 200 and arr[45, 35, 0] < 60


UNREAD = {"cells.nd2": b"\xda\xce\xbe\x0a" + bytes(60), "grid.dm3": struct.pack(">III", 3, 50, 1) + bytes(60),
          "grid.dm4": struct.pack(">IQI", 4, 50, 1) + bytes(60), "stack.ims": b"\x89HDF\r\n\x1a\n" + bytes(60),
          "scan.oib": bytes.fromhex("D0CF11E0A1B11AE1") + bytes(60), "scan.oir": b"OLYMPUSRAWFORMAT" + bytes(60)}
NAMES = {"cells.nd2": "Nikon NIS-Elements ND2", "grid.dm3": "Gatan DigitalMicrograph DM3",
         "grid.dm4": "Gatan DigitalMicrograph DM4", "stack.ims": "Imaris IMS", "scan.oib": "Olympus FluoView OIB",
         "scan.oir": "Olympus OIR"}


def test_microscope_formats_not_read_are_errors_naming_the_format_alone_or_in_a_folder(tmp_path):
    for name, data in UNREAD.items():
        (tmp_path / name).write_bytes(data)
        [alone] = items_of(data, name)
        assert isinstance(alone, ItemError) and not alone.skipped
        assert alone.error.startswith(f"{NAMES[name]} file: a microscopy format medimg does not read")
        assert "OME-TIFF" in alone.error
    (tmp_path / "notes.txt").write_bytes(b"\x00\x01 not text at all" * 4)
    found = {i.origin.rsplit("/", 1)[-1]: i for i in open_input(str(tmp_path))}
    for name in UNREAD:  # was a skipped note: "not an image or a supported container"
        assert not found[name].skipped and NAMES[name] in found[name].error
    assert found["notes.txt"].skipped  # anything else unread stays a note
