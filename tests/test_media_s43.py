"""Camera, phone and scanner pictures and clips (review s43_media): JPEGs of more than 8 bits a sample."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

imagecodecs = pytest.importorskip("imagecodecs")


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def ramp12(h: int = 96, w: int = 128) -> np.ndarray:
    """12-bit grey, darker at the left: a CT or NM frame's range (0..4095)."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 30 + y * 3) % 4096).astype(np.uint16)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    block = exif.tobytes()  # b"Exif\0\0" and the TIFF block
    return jpeg[:2] + b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block + jpeg[2:]


def test_a_12_bit_jpeg_is_read_as_16_bit_grey():
    """A 12-bit JPEG (DICOM's JPEG Extended, saved as .jpg) was "corrupt or truncated JPEG image: Pillow cannot
    read it": Pillow reads 8-bit samples only."""
    a = ramp12()
    data = imagecodecs.jpeg8_encode(a, bitspersample=12, level=95)
    assert data[:2] == b"\xff\xd8" and b"\xff\xc1" in data[:400]  # SOF1, 12 bits
    [item] = items_of(data, "nm.jpg")
    assert isinstance(item, ImageItem), item
    assert item.format == "JPEG" and item.image.mode == "I;16" and item.image.size == (128, 96)
    assert item.metadata["bits"] == 12
    got = np.asarray(item.image).astype(int)
    assert np.abs(got - a).max() <= 8  # the stored values, not cut to their top 8 bits


def test_lossless_16_bit_grey_and_12_bit_colour_jpegs():
    a = ramp12()
    lossless = imagecodecs.jpeg8_encode(a * 16, lossless=True, bitspersample=16)
    [item] = items_of(lossless, "ct.jpg")
    assert isinstance(item, ImageItem), item
    assert np.array_equal(np.asarray(item.image), a * 16)  # lossless: every value as stored
    rgb = np.stack([a, np.full_like(a, 4095), np.zeros_like(a)], -1)
    [item] = items_of(imagecodecs.jpeg8_encode(rgb, bitspersample=12, level=95), "scope.jpg")
    assert isinstance(item, ImageItem) and item.image.mode == "RGB", item
    px = np.asarray(item.image).astype(int)
    assert abs(px[..., 1].mean() - 255) < 3 and px[..., 2].mean() < 3  # by its 12-bit depth, not dark


def test_a_12_bit_jpeg_is_turned_by_its_exif_orientation():
    a = ramp12()
    data = with_exif_orientation(imagecodecs.jpeg8_encode(a, bitspersample=12, level=95), 6)
    [item] = items_of(data, "turned.jpg")
    assert isinstance(item, ImageItem), item
    assert item.image.size == (96, 128)  # 90° clockwise: portrait
    got = np.asarray(item.image).astype(int)
    assert got[0, :8].mean() < got[-1, :8].mean()  # the dark left column is now the top row


def test_a_12_bit_jpeg_cut_short_is_an_error_not_half_grey():
    data = imagecodecs.jpeg8_encode(ramp12(), bitspersample=12, level=95)
    for cut in (data[:len(data) // 2], data[:len(data) // 2] + b"\xff\xd9"):
        [item] = items_of(cut, "cut.jpg")
        assert isinstance(item, ItemError) and "truncated 12-bit JPEG" in item.error, item
    [item] = items_of(data[:-2], "no_end_marker.jpg")  # whole but for its end marker: read, as viewers show it
    assert isinstance(item, ImageItem), item


def test_a_12_bit_jpeg_over_max_pixels_is_refused_from_its_header():
    data = imagecodecs.jpeg8_encode(ramp12(), bitspersample=12, level=95)
    [item] = items_of(data, "big.jpg", max_pixels=10_000)
    assert isinstance(item, ItemError) and "128×96" in item.error and "not decoded" in item.error


def test_a_damaged_12_bit_jpeg_names_its_depth():
    data = bytearray(imagecodecs.jpeg8_encode(ramp12(), bitspersample=12, level=95))
    sof = data.index(b"\xff\xc1")
    data[sof + 9] = 7  # seven components
    [item] = items_of(bytes(data), "bad.jpg")
    assert isinstance(item, ItemError) and item.error.startswith("corrupt or truncated 12-bit JPEG image: "), item


# --- videos cut short (a download or copy that did not finish) -------------------------------------------------------

def clip(fmt: str, codec: str, n: int = 12, pix: str = "yuv420p", options: dict | None = None) -> bytes:
    """`n` frames of 64 × 48 at 25 a second, each with a bar in another place; `options` the muxer's."""
    av = pytest.importorskip("av")
    out = tempfile.NamedTemporaryFile(suffix=f".{fmt}")  # a file: MP4's faststart rewrites it
    with out, av.open(out.name, "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, pix
        for i in range(n):
            a = np.full((48, 64, 3), 40, np.uint8)
            a[:, 4 * i:4 * i + 8] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        c.close()
        return Path(out.name).read_bytes()


def errors_when_cut(data: bytes, name: str, start: int = 128, step: int = 53) -> dict[int, str]:
    """The error each cut of `data` gives (cuts that give a frame left out)."""
    out = {}
    for cut in range(start, len(data), step):
        items = items_of(data[:cut], name)
        if not any(isinstance(i, ImageItem) for i in items):
            [item] = items
            out[cut] = item.error
    return out


@pytest.mark.parametrize("fmt,codec,name,pix", [
    ("matroska", "libx264", "scope.mkv", "yuv420p"),
    ("webm", "libvpx-vp9", "scope.webm", "yuv420p"),
    ("avi", "mjpeg", "scope.avi", "yuvj420p"),
])
def test_an_avi_or_matroska_file_cut_short_says_so(fmt, codec, name, pix):
    """FFmpeg's own words were all a user got: "Invalid data found when processing input", "Input/output error",
    and for a Matroska file cut inside its first frame "could not decode the video: Operation not permitted"
    (a seek FFmpeg refuses, its -1 read as EPERM)."""
    data = clip(fmt, codec, pix=pix)
    errors = errors_when_cut(data, name)
    assert errors, "no cut gave an error"
    for cut, error in errors.items():
        assert f"the file ends early: it has {cut:,} bytes of the {len(data):,} its header gives" in error, (cut, error)
        assert "Operation not permitted" not in error


def test_an_mp4_cut_inside_its_index_is_not_an_unknown_codec():
    """An MP4 whose index (moov, written last) is cut past its track's header was "video stream in a codec FFmpeg
    does not know"."""
    data = clip("mp4", "libx264")
    errors = errors_when_cut(data, "scope.mp4", step=29)
    assert errors and not any("codec" in e for e in errors.values()), errors
    assert all("the file ends early (truncated)" in e for e in errors.values()), errors
    data = clip("mp4", "libx264", options={"movflags": "faststart"})  # index first: cut among the frames
    assert data.index(b"moov") < data.index(b"mdat")
    moov_end = data.index(b"mdat") + 4
    errors = errors_when_cut(data, "streamed.mp4", start=moov_end, step=7)
    assert errors
    for cut, error in errors.items():
        assert error.endswith(f"the file ends early: it has {cut:,} bytes of the {len(data):,} its header gives"), error


def test_a_transport_stream_cut_before_its_first_frame_has_no_decodable_frame():
    """A frame grabber's MPEG-TS cut a few packets in was "could not decode the video: Operation not permitted"
    (a seek back to the start, after counting no packet)."""
    data = clip("mpegts", "libx264")
    errors = errors_when_cut(data, "grab.ts", start=188 * 3, step=47)
    assert errors
    assert all(e in ("the video has no decodable frame",) or e.startswith("unrecognised content") for e in
               errors.values()), errors


# --- JPEG 2000 decoded at a lower resolution level ----------------------------------------------------------------

def jp2(size: tuple[int, int], **save) -> bytes:
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(a).save(out, "JPEG2000", **save)
    return out.getvalue()


def test_a_large_jpeg_2000_decodes_at_a_lower_level_as_a_large_jpeg_does():
    """A 1600×1200 JPEG 2000 decoded whole for a model that sees 224 px (a 4000×3000 one: 5 s here, 0.2 s at 1/8)."""
    data = jp2((1600, 1200))
    [item] = items_of(data, "slide.jp2", decode_side=256)
    assert isinstance(item, ImageItem), item
    assert item.image.size == (400, 300) and item.full_size == (1600, 1200)  # 1/4: both sides stay ≥ 256
    px = np.asarray(item.image.convert("RGB")).astype(int)
    assert px[0, 0, 0] < 10 and px[-1, -1, 0] > 245 and px[-1, -1, 1] > 245  # the whole picture, smaller
    [whole] = items_of(data, "slide.jp2")  # no decode_side: every pixel
    assert whole.image.size == (1600, 1200) and whole.full_size is None


def test_a_jpeg_2000_is_reduced_only_as_far_as_its_levels_and_pillows_rounding_allow():
    """OpenJPEG refuses to drop more levels than the codestream has, and Pillow refuses ("broken data stream") a
    level where its rounding of the size differs from OpenJPEG's."""
    [item] = items_of(jp2((1024, 768), num_resolutions=2), "few_levels.j2k", decode_side=64)
    assert isinstance(item, ImageItem) and item.image.size == (512, 384), item  # one level to drop, not four
    [item] = items_of(jp2((1001, 803), irreversible=True), "odd.jp2", decode_side=64)
    assert isinstance(item, ImageItem) and item.image.size == (501, 402), item  # 1/4 would be 250 or 251 wide
