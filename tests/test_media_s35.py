"""Clips and animations as an endoscopy or ultrasound unit exports them (review s35_media): downloads cut short
and animated cine loops whose first frame is blank."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input, video

seek = video._seek

av = pytest.importorskip("av")


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


def marked(i: int, size=(64, 48)) -> np.ndarray:
    """A frame whose white bar sits 2 × (i mod 12) px from the left, so the frame shown can be told."""
    w, h = size
    a = np.full((h, w, 3), 40, np.uint8)
    x = 2 * (i % 12)
    a[:, x:x + 8] = 255
    return a


def bar_of(item: ImageItem) -> int:
    image = item.image
    row = np.asarray(image.convert("L"))[image.height // 2]
    return int(np.argmax(row > 150)) // 2


def write_frames(container, rate: int, n: int, options: dict | None = None) -> None:
    """`n` marked 64 × 48 frames at `rate` a second, as H.264, into an open output container."""
    s = container.add_stream("libx264", rate=rate)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    if options:
        s.options = options
    for i in range(n):
        for p in s.encode(av.VideoFrame.from_ndarray(marked(i), format="rgb24")):
            container.mux(p)
    for p in s.encode():
        container.mux(p)


def index_first_clip(tmp_path, seconds: int, rate: int) -> bytes:
    """An MP4 with its index (moov box) before the frames, as a server streams it: one key frame a second."""
    path = tmp_path / "streamed.mp4"
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        write_frames(c, rate, seconds * rate, {"g": str(rate)})
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    return data


def cut_short(data: bytes, kept: float) -> bytes:
    """`data` cut after `kept` of its frames' bytes (the mdat box), its index whole."""
    frames = data.index(b"mdat")
    return data[: frames + int((len(data) - frames) * kept)]


def test_a_long_download_cut_short_shows_its_last_frame_with_a_note(tmp_path, monkeypatch):
    """A 10-minute recording downloaded 30 %: the index names the middle frame (5:00), whose bytes are not there,
    nor those 1, 5 or 30 s before it, and the last packet is cut mid-way. It gave "the video has no decodable
    frame"; now the seek goes back further (halfway, a quarter, …), the cut packet ends the frames, and the last
    frame there stands for the middle, with a note saying the frames stop before the header's duration."""
    data = index_first_clip(tmp_path, 600, 2)
    cut = cut_short(data, 0.3)
    image, note = items_of(cut, "scope.mp4")
    assert isinstance(image, ImageItem), image
    t = image.metadata["time_s"]
    assert 60 < t < 300 and image.locator == f"frame {round(2 * t) + 1} at {int(t // 60)}:{t % 60:04.1f}"
    assert bar_of(image) == round(2 * t) % 12  # the frame its time names
    assert isinstance(note, ItemError) and note.skipped and note.error == (
        f"the frames stop at {image.locator.split(' at ')[1]} of the 10:00.0 the file's header gives (a file cut "
        "short?); the last one stands for the times after it")
    # one a second: the frames there, once each (read coarse to fine, the middle first: past the cut, so the last
    # frame), then the note; the times past the cut are not sought one by one
    seeks = []
    monkeypatch.setattr(video, "_seek", lambda *a: seeks.append(a[2]) or seek(*a))
    got = items_of(cut, "scope.mp4", all_frames=True, max_images_per_input=20)
    shown = [i for i in got if isinstance(i, ImageItem)]
    assert shown[0].metadata["time_s"] == t
    assert sorted(i.metadata["time_s"] for i in shown) == [15 + 30 * k for k in range(len(shown) - 1)] + [t]
    assert got[-1].error == note.error and len(got) == len(shown) + 1
    assert len(seeks) == len(shown), seeks  # the last one past the cut, and none after it


def test_a_short_download_cut_short_says_so(tmp_path):
    """A one-minute clip cut at 30 %: its last frame stood for the middle (0:30) with nothing said."""
    data = index_first_clip(tmp_path, 60, 10)
    image, note = items_of(cut_short(data, 0.3), "scope.mp4")
    assert isinstance(image, ImageItem) and image.metadata["time_s"] < 25
    assert note.skipped and note.error.startswith("the frames stop at ") and "of the 1:00.0" in note.error
    (whole,) = items_of(data, "scope.mp4")  # the whole clip: its middle frame, no note
    assert whole.locator == "frame 301 at 0:30.0"


def recorded_clip() -> bytes:
    """An MP4 as a phone or recorder writes it: the frames first, the index (moov box) last."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        write_frames(c, 10, 30)
    data = buf.getvalue()
    assert data.index(b"mdat") < data.index(b"moov")
    return data


def test_a_recording_without_its_index_says_it_is_cut_short(tmp_path):
    """A recording cut before its index (or inside it) said "Invalid data found when processing input" (or "no
    video stream found"); it now says the file ends early, from its top-level boxes, on disk as in memory."""
    data = recorded_clip()
    moov = data.index(b"moov") - 4
    missing = "not a readable video: the file ends early (truncated): its index (moov box), written last, is missing"
    inside = "not a readable video: the file ends early (truncated), inside its index (moov box)"
    for cut, said in [(len(data) // 2, missing), (moov, missing), (moov + 40, inside)]:
        (err,) = items_of(data[:cut], "clip.mp4")
        assert isinstance(err, ItemError) and not err.skipped and err.error == said, (cut, err)
        path = tmp_path / "clip.mov"
        path.write_bytes(data[:cut])
        (err,) = open_input(path, Limits())
        assert err.error == said
    (whole,) = items_of(data, "clip.mp4")
    assert isinstance(whole, ImageItem)


def animation(fmt: str, first: str) -> bytes:
    """Twelve frames, a bar moving across each; the first is black, dark, clear or marked like the rest."""
    frames = [Image.fromarray(marked(i)).convert("RGBA") for i in range(12)]
    if first == "black":
        frames[0] = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    elif first == "dark":  # a recorder's black, a few levels of noise
        dark = np.random.default_rng(2).integers(0, 7, (48, 64), np.uint8)
        frames[0] = Image.fromarray(dark, "L").convert("RGBA")
    elif first == "clear":  # colours left under alpha 0, as an editor may leave them
        noise = np.random.default_rng(1).integers(0, 256, (48, 64, 4), np.uint8)
        noise[..., 3] = 0
        frames[0] = Image.fromarray(noise, "RGBA")
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0, **extra)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_whose_first_frame_is_blank_shows_the_next(fmt):
    """A cine loop exported with a black (dark, or clear) first frame was classified from that blank frame; the first
    frame that shows something stands for it now. A first frame with content is still the one shown, and
    all_frames still gives every frame."""
    for first in ("black", "dark", "clear"):
        (item,) = items_of(animation(fmt, first), "loop")
        assert isinstance(item, ImageItem) and item.locator == "frame 2" and bar_of(item) == 1, (first, item)
    (item,) = items_of(animation(fmt, "marked"), "loop")
    assert item.locator == "frame 1" and bar_of(item) == 0
    got = items_of(animation(fmt, "black"), "loop", all_frames=True)
    assert [i.locator for i in got] == [f"frame {k}" for k in range(1, 13)]


def test_an_animation_of_blank_frames_shows_its_first():
    frames = [Image.new("RGB", (32, 24), c) for c in [(0, 0, 0), (10, 10, 10), (200, 0, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40)
    (item,) = items_of(buf.getvalue(), "flat.gif")
    assert item.locator == "frame 1" and item.image.convert("RGB").getpixel((5, 5)) == (0, 0, 0)


def test_the_boxes_walked_for_a_missing_index_are_capped():
    """A file of a million 8-byte boxes and no index would take the walk seconds; past MAX_TOP_BOXES FFmpeg's own
    reason stands (a recording has a handful of top-level boxes)."""
    data = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00" + b"\x00\x00\x00\x08free" * 1_000_000
    (err,) = items_of(data, "boxes.mp4")
    assert err.error.startswith("not a readable video: ") and "moov" not in err.error, err
    assert video._missing_index(io.BytesIO(data[:16 + 8 * 100])) is not None  # a few: the walk says why


def test_the_blank_frame_search_decodes_at_most_max_pixels():
    """Each frame looked at for one that is not blank is decoded whole: 32 frames of a large canvas (an 80 kB GIF
    of 8000×8000 blank frames took 20 s and 1 GB, not 1 s) were 32 times the max_pixels one image may take. The
    frames looked at now hold max_pixels pixels in all: 64×48 = 3,072 a frame."""
    data = animation("GIF", "black")
    (item,) = items_of(data, "loop.gif", max_pixels=2 * 3072)
    assert item.locator == "frame 2" and bar_of(item) == 1
    (item,) = items_of(data, "loop.gif", max_pixels=2 * 3072 - 1)  # room for one frame: the first stands
    assert item.locator == "frame 1" and np.asarray(item.image.convert("L")).max() == 0
