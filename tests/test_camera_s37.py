"""Photos from phones and cameras (session 37): HEIC/AVIF sizes as stored, a HEIF's primary image, libheif's
refusals, JPEGs that lack only their end marker, and orientation as the phone shows it."""

from __future__ import annotations

import io
import struct

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageOps

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

pillow_heif.register_heif_opener()


def items(data: bytes, name: str = "photo", **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def declaring(data: bytes, width: int, height: int) -> bytes:
    """`data` with every `ispe` box (an item's size as stored) patched to width × height."""
    out = bytearray(data)
    at = out.find(b"ispe")
    while at >= 0:
        out[at + 8:at + 16] = struct.pack(">II", width, height)
        at = out.find(b"ispe", at + 4)
    return bytes(out)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_the_pixel_cap_is_checked_against_the_size_as_stored(fmt):
    """A 64×40 HEIC is stored 64×64 with a clean aperture (`clap`) cropping it: libheif reports the crop, so a
    file whose `ispe` says 20000×20000 passed the cap and went to the decoder; libavif refuses such a size itself,
    which was told as "Pillow cannot read it". Both now say it is over max_pixels, before decoding."""
    small = b.encode(b.pattern((64, 40)), fmt, quality=80)
    (item,) = items(declaring(small, 20_000, 20_000))
    assert isinstance(item, ItemError), item
    assert "max_pixels" in item.error and "20000×20000" in item.error and "not decoded" in item.error
    (item,) = items(small, max_pixels=64 * 64)  # at the cap as stored: read
    assert isinstance(item, ImageItem) and item.image.size == (64, 40)


def test_a_tiled_heic_with_thumbnails_is_one_photo_within_its_own_size():
    """As an iPhone writes it: a grid of 512-px tiles and a thumbnail. One record, the whole picture; the cap
    holds for each item as stored (here a 512×512 tile), not for them added up."""
    photo = b.pattern((600, 200))
    data = b.encode(photo, "HEIF", quality=50, tile_size=512, thumbnails=[64])
    got = items(data, max_pixels=512 * 512)
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    assert got[0].image.size == (600, 200) and got[0].locator == ""
    assert np.abs(np.asarray(got[0].image, float) - np.asarray(photo, float)).mean() < 10


def test_a_heif_shows_its_primary_image_and_all_frames_gives_each_once():
    """pillow-heif opens a HEIF at its primary image: frame 1 was that image whichever it was, and with all_frames
    the primary came twice and the file's first image never."""
    red, green, blue = (Image.new("RGB", (64, 48), c) for c in b.COLOURS[:3])
    data = b.encode(red, "HEIF", save_all=True, append_images=[green, blue], primary_index=1, quality=90)

    def colour(item):
        assert isinstance(item, ImageItem), item
        return int(np.argmax(np.asarray(item.image)[10, 10]))  # 0 red, 1 green, 2 blue

    (shown,) = items(data)
    assert colour(shown) == 1 and shown.locator == "frame 2"
    every = items(data, all_frames=True)
    assert [colour(i) for i in every] == [0, 1, 2]
    assert [i.locator for i in every] == ["frame 1", "frame 2", "frame 3"]


def test_libheif_refusing_a_codec_is_the_items_error():
    """AV1 in a file branded only `mif1` goes to libheif, which has no AV1 decoder here: its RuntimeError escaped
    the image reader and came out as "image: could not read"."""
    if any("av1" in name.lower() or "dav1d" in name.lower() or "aom" in name.lower()
           for name in pillow_heif.libheif_info().get("decoders", {})):
        pytest.skip("this libheif decodes AV1")
    data = b.encode(b.pattern((64, 48)), "AVIF").replace(b"avif", b"mif1")
    (item,) = items(data)
    assert isinstance(item, ItemError) and item.error.startswith("could not decode HEIF image: "), item
    assert "AV1" in item.error


def test_a_truncated_heic_error_has_no_trailing_newline():
    data = b.encode(b.pattern((200, 100)), "HEIF", quality=80)
    (item,) = items(data[: len(data) // 2])
    assert isinstance(item, ItemError) and "truncated" in item.error and item.error == item.error.strip()


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_lacking_only_its_end_marker_is_the_whole_photo(progressive):
    """Viewers show a JPEG whose scans are whole but whose last two bytes (FF D9) are missing; Pillow called it
    truncated. One cut inside its data stays an error, however near the end: its rest would be grey."""
    data = b.encode(b.pattern((400, 300)), "JPEG", quality=90, progressive=progressive)
    whole = np.asarray(Image.open(io.BytesIO(data)))
    (item,) = items(data[:-2], "IMG_0001.jpg")
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), whole)
    for cut in (len(data) - 40, len(data) // 2, data.rindex(b"\xff\x00") + 1):  # the last: ends in FF
        (item,) = items(data[:cut], "IMG_0001.jpg")
        assert isinstance(item, ItemError) and "truncated" in item.error, (cut, item)


def test_a_jpeg_with_restart_markers_cut_just_before_one_stays_an_error():
    """Phones write restart markers (FF D0-D7) every few blocks; a file cut just before one is cut mid-scan too."""
    data = b.encode(b.pattern((400, 300)), "JPEG", quality=90, restart_marker_blocks=4)
    assert isinstance(items(data[:-2])[0], ImageItem)
    for marker in range(0xD0, 0xD8):
        cut = data.index(bytes((0xFF, marker)), len(data) // 2)
        (item,) = items(data[:cut])
        assert isinstance(item, ItemError) and "truncated" in item.error, (hex(marker), item)


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "AVIF"])
def test_every_exif_orientation_is_shown_as_the_phone_shows_it(fmt):
    """All eight orientations (HEIF and AVIF store them as irot/imir, JPEG in EXIF): the picture upright, once."""
    stored = b.pattern((64, 40))
    for orientation in range(1, 9):
        exif = stored.getexif()
        exif[0x0112] = orientation
        (item,) = items(b.encode(stored, fmt, exif=exif.tobytes(), quality=95))
        tagged = stored.copy()
        tagged.info["exif"] = exif.tobytes()
        want = np.asarray(ImageOps.exif_transpose(tagged), float)
        got = np.asarray(item.image.convert("RGB"), float)
        assert got.shape == want.shape, (orientation, got.shape)
        assert np.abs(got - want).mean() < 12, orientation


def test_deeply_nested_heif_boxes_are_not_walked():
    """The stored-size reader follows meta/iprp/ipco only (a first version recursed into every nested meta box:
    3,000 of them raised RecursionError)."""
    import struct

    from medimg.sources import heif

    body = b""
    for _ in range(3000):
        body = struct.pack(">I", len(body) + 12) + b"meta" + bytes(4) + body
    assert heif.largest_size(body) is None
