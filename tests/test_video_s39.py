"""Clips as endoscopy, ultrasound and phones give them (review s39_video): a reading cut by video_timeout spans the
whole clip, a black middle frame gives way to one that shows something, variable frame rates, several streams.

Every frame carries a white bar whose x position tells the second it was made in (clips built here with PyAV)."""

from __future__ import annotations

import io
import time
from fractions import Fraction

import numpy as np
import pytest

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input, video

av = pytest.importorskip("av", reason="PyAV (FFmpeg) reads videos")


def scene(i: int, size=(160, 120), rate: int = 20) -> np.ndarray:
    """Reddish tissue with a white bar 3 px further right each second."""
    w, h = size
    a = np.full((h, w, 3), (150, 60, 50), np.uint8)
    x = 3 * (i // rate) % (w - 8)
    a[h // 3: 2 * h // 3, x:x + 8] = 255
    return a


def clip(frames, fmt: str = "mp4", rate: int = 20, gop: int = 20, size=(160, 120), pts=None) -> bytes:
    """H.264 in `fmt`: a key frame each `gop` frames (a phone writes one a second); `pts` in ms for a variable rate."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        s.options = {"g": str(gop), "preset": "ultrafast"}
        if pts is not None:
            s.time_base = Fraction(1, 1000)
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(a, format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def second_of(item: ImageItem) -> int:
    row = np.asarray(item.image.convert("L"))[item.image.height // 2]
    return int(np.argmax(row > 200)) // 3


@pytest.mark.parametrize("fmt,name", [("mp4", "clip.mp4"), ("matroska", "clip.mkv"), ("mpegts", "clip.ts")])
def test_all_frames_are_read_coarse_to_fine_the_middle_first(fmt, name):
    """One a second, read the middle first, then the start, three quarters, a quarter, … (runs of up to 10 s where
    the file has no index to seek by, MPEG-TS): each frame once, the frame its time names."""
    items = items_of(clip([scene(i) for i in range(40 * 20)], fmt), name, all_frames=True)
    assert all(isinstance(i, ImageItem) for i in items), items
    times = [i.metadata["time_s"] for i in items]
    assert sorted(times) == [k + 0.5 for k in range(40)] and times[0] == 20.5
    assert all(second_of(i) == int(t) for i, t in zip(items, times))
    if fmt != "mpegts":  # the first four span the clip
        assert times[:4] == [20.5, 0.5, 30.5, 10.5]


def test_a_reading_cut_by_video_timeout_still_spans_the_whole_clip():
    """A 10-minute 4K clip read with all_frames stopped at video_timeout with 116 frames of its first 1:55. Frames are
    now read coarse to fine, so those read by then span the clip, and the note says it was sampled more coarsely.
    Here: 40 s, a key frame a second, and a third of the time the whole reading takes."""
    size = (320, 240)
    data = clip([scene(i, size) for i in range(40 * 20)], size=size)
    items_of(data, "clip.mp4")  # FFmpeg warmed up
    for _ in range(5):  # a load that changes between the two runs can end the second too early or too late
        started = time.monotonic()
        assert len(items_of(data, "clip.mp4", all_frames=True)) == 40
        budget = round((time.monotonic() - started) / 3, 4)
        items = items_of(data, "clip.mp4", all_frames=True, video_timeout=budget)
        shown = [i.metadata["time_s"] for i in items if isinstance(i, ImageItem)]
        if 3 <= len(shown) < 40:
            break
    assert 3 <= len(shown) < 40, shown
    assert min(shown) < 10 and max(shown) > 30, shown  # the first and the last quarter (20.5, 0.5, 30.5, …)
    (note,) = [i for i in items if isinstance(i, ItemError)]
    assert note.skipped and note.error.startswith(
        f"stopped after {budget:g} s (video_timeout) with {len(shown)} frame(s) read, spread over the whole 0:40.0: "
        "the clip was sampled more coarsely than asked (frames up to ")
    assert note.error.endswith(" s apart, not 1.0 s)")


def test_a_clip_with_one_key_frame_is_decoded_once_not_once_a_frame(monkeypatch):
    """Coarse to fine must not cost more: where every seek would land on the same key frame, the frames are
    decoded on in one run (one seek), not from the start again for each."""
    seeks = []
    seek = video._seek
    monkeypatch.setattr(video, "_seek", lambda *a: seeks.append(a[2]) or seek(*a))
    items = items_of(clip([scene(i) for i in range(20 * 20)], gop=1000), "clip.mp4", all_frames=True)
    assert [i.metadata["time_s"] for i in items] == [k + 0.5 for k in range(20)] and len(seeks) == 1


def black(size=(160, 120)) -> np.ndarray:
    return np.zeros((size[1], size[0], 3), np.uint8)


def test_a_black_middle_frame_gives_way_to_the_nearest_that_shows_something():
    """A scope withdrawn half-way: 10 s, black at 4.5–5.5 s (and the first and last 2 s). The middle frame shown was
    black; the one nearest the middle that is not (of 16 spread over the clip) is shown now."""
    frames = [black() if (i < 40 or 90 <= i < 110 or i >= 160) else scene(i) for i in range(200)]
    (item,) = items_of(clip(frames), "scope.mp4")
    assert item.locator == "frame 83 at 0:04.1" and second_of(item) == 4
    assert np.asarray(item.image.convert("L")).max() > 200
    (item,) = items_of(clip([black()] * 100), "dark.mp4")  # all black: the middle stands
    assert item.locator == "frame 51 at 0:02.5"
    (item,) = items_of(clip([scene(i) for i in range(200)]), "scope.mp4")  # the middle when it shows something
    assert item.locator == "frame 101 at 0:05.0"


def test_a_variable_frame_rate_names_frames_by_their_time():
    """A phone in low light: 25 frames a second for 4 s, then 5. The middle frame, at 5.0 s (the 106th), was called
    "frame 67", from the mean rate; it is named by its time alone now."""
    pts = [i * 40 for i in range(100)] + [4000 + i * 200 for i in range(30)]
    data = clip([scene(i, rate=25) for i in range(130)], rate=25, pts=pts)
    (item,) = items_of(data, "phone.mp4")
    assert item.locator == "frame at 0:05.0" and item.metadata["time_s"] == 5.0
    (item,) = items_of(clip([scene(i) for i in range(100)]), "steady.mp4")  # a steady rate: numbered as before
    assert item.locator == "frame 51 at 0:02.5"


def test_of_several_video_streams_the_largest_is_shown():
    """A 64×48 preview stream before the 320×240 recording: the preview was shown."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        streams = []
        for w, h in ((64, 48), (320, 240)):
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            streams.append(s)
        for i in range(30):
            for s in streams:
                for p in s.encode(av.VideoFrame.from_ndarray(scene(i, (s.width, s.height), 10), format="rgb24")):
                    c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    (item,) = items_of(buf.getvalue(), "two.mp4")
    assert item.image.size == (320, 240) and item.metadata["video_streams"] == 2
