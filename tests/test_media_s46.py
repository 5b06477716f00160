"""Clips as users keep them (review s46_media): one damaged packet in the middle of a clip (a bad sector, a bad
copy) no longer loses the whole clip. Clips built here with PyAV."""

from __future__ import annotations

import io

import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

av = pytest.importorskip("av", reason="PyAV (FFmpeg) reads videos")

from test_video_s39 import scene  # noqa: E402  (the same scene)


def clip(seconds: int = 20, rate: int = 20) -> bytes:
    """H.264 in MP4, a key frame a second."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.options = {"g": str(rate), "preset": "ultrafast"}
        for i in range(seconds * rate):
            for p in s.encode(av.VideoFrame.from_ndarray(scene(i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def damaged_at(data: bytes, second: float) -> bytes:
    """The clip with the length of the key frame packet at `second` overwritten (FFmpeg: "Invalid data")."""
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        pos = next(p.pos for p in c.demux(s) if p.size and p.is_keyframe and p.pts * s.time_base >= second)
    out = bytearray(data)
    out[pos:pos + 4] = b"\xff\xff\xff\xff"
    return bytes(out)


def items_of(data: bytes, **limits) -> list:
    return list(open_input(Blob("clip.mp4", data, name="clip.mp4"), Limits(**limits)))


def test_a_damaged_packet_at_the_middle_gives_a_frame_near_it_and_a_note():
    """4 bad bytes in the middle key frame's packet of a 20 s clip gave no image at all ("could not decode the
    video: Invalid data found"); now the packet is skipped, as players do: a frame near the middle, and a note."""
    items = items_of(damaged_at(clip(), 10))
    shown = [i for i in items if isinstance(i, ImageItem)]
    assert len(shown) == 1 and 9.0 <= shown[0].metadata["time_s"] <= 12.0, items
    notes = [i for i in items if isinstance(i, ItemError)]
    assert len(notes) == 1 and notes[0].skipped, items
    assert "1 damaged packet(s) skipped (Invalid data found" in notes[0].error


def test_a_damaged_packet_does_not_end_the_reading_of_all_frames():
    """With all_frames the same clip gave nothing; now every second but the one the packet spoils."""
    items = items_of(damaged_at(clip(), 10), all_frames=True)
    times = sorted(i.metadata["time_s"] for i in items if isinstance(i, ImageItem))
    assert len(times) >= 19 and times[0] == 0.5 and times[-1] == 19.5, items
    assert sum(isinstance(i, ItemError) and "damaged packet" in i.error for i in items) == 1


def test_a_clip_whose_every_packet_is_damaged_still_says_why():
    """Skipping has a bound: a clip that decodes nowhere is the decoder's error, as before."""
    data = bytearray(clip(4))
    with av.open(io.BytesIO(bytes(data))) as c:
        for p in c.demux(c.streams.video[0]):
            if p.size:
                data[p.pos:p.pos + 4] = b"\xff\xff\xff\xff"
    items = items_of(bytes(data))
    assert len(items) == 1 and isinstance(items[0], ItemError) and not items[0].skipped, items
    assert items[0].error.startswith("could not decode the video: Invalid data found"), items[0].error
