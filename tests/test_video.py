"""Video files and DICOM video: clips encoded here with PyAV (FFmpeg), read back through the sources.

Every frame carries a white square whose x position is 4 × its index, so a test can tell which frame
came out by looking at the pixels.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, MPEG4HP41

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from medimg.sources.video import video_kind
from fractions import Fraction

av = pytest.importorskip("av")

W, H = 320, 240


def frame_pixels(i: int, size=(W, H)) -> np.ndarray:
    w, h = size
    a = np.full((h, w, 3), 40, np.uint8)
    x = (4 * i) % (w - 40)
    a[h // 2 - 20:h // 2 + 20, x:x + 40] = 255
    return a


def video_bytes(fmt: str = "mp4", codec: str = "libx264", frames: int = 300, rate: int = 30,
                size=(W, H), gop: int | None = 30) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height = size
        s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if gop and codec != "mjpeg":
            s.options = {"g": str(gop)}
        for i in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_pixels(i, size), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def square_index(item: ImageItem) -> int:
    """Which frame an item shows, from its square's left edge."""
    row = np.asarray(item.image.convert("L"))[item.image.height // 2]
    return int(np.argmax(row > 150)) // 4


def items_of(data: bytes, name: str, **limits) -> list:
    return list(open_input(Blob(name, data, name=name), Limits(**limits)))


CONTAINERS = [("mp4", "libx264", "clip.mp4"), ("mov", "mpeg4", "clip.mov"), ("matroska", "libx264", "clip.mkv"),
              ("webm", "libvpx-vp9", "clip.webm"), ("avi", "mjpeg", "clip.avi"), ("mpegts", "mpeg2video", "clip.ts"),
              ("mpeg", "mpeg2video", "clip.mpg"), ("flv", "flv", "clip.flv"), ("asf", "wmv2", "clip.wmv")]


@pytest.mark.parametrize("fmt,codec,name", CONTAINERS)
def test_middle_frame_of_each_container(fmt, codec, name):
    data = video_bytes(fmt, codec, frames=60, rate=10, gop=10)
    assert video_kind(data[:4096]) is not None
    items = items_of(data, name)
    assert len(items) == 1 and isinstance(items[0], ImageItem), items
    item = items[0]
    n = int(item.locator.split()[1])
    assert abs(n - 31) <= 1 and item.locator.startswith(f"frame {n} at 0:0")  # MPEG-PS: its duration is an estimate
    assert square_index(item) == n - 1
    assert item.image.size == (W, H) and item.format.startswith("video (")
    assert item.metadata["fps"] == 10 and abs(item.metadata["duration_s"] - 6.0) < 0.5


@pytest.mark.parametrize("codec", ["mpeg2video", "libx264"])
def test_a_short_transport_stream_gives_its_middle_frame(codec):
    """MPEG-TS seeks land past the key frame before the time asked for; in a clip of a few seconds, past the
    last one, where nothing decodes. The seek is then tried further back (it gave "no decodable frame")."""
    data = video_bytes("mpegts", codec, frames=60, rate=25)  # 2.4 s, key frames at 0 and 1.2 s
    item, = items_of(data, "clip.ts")
    assert isinstance(item, ImageItem) and square_index(item) == 30, item
    items = items_of(data, "clip.ts", all_frames=True)
    assert [square_index(i) for i in items] == [15, 45], items  # at 0.6 s and 1.8 s


def test_a_seek_past_everything_a_transport_stream_decodes_goes_back_to_its_frames_never_a_none():
    """Every back-off of a seek far past a short MPEG-TS clip (1, 5, 30 s) lands where nothing decodes; the seek
    then goes back halfway, a quarter, … to the start (as for a download cut short, test_media_s35), whose
    frames come out, never a None among them (_by_time would end in an AttributeError; mutation round
    s32_mut2)."""
    from medimg.sources.video import _seek

    container = av.open(io.BytesIO(video_bytes("mpegts", "mpeg2video", frames=60, rate=25, gop=12)))
    with container:
        frames = list(_seek(container, container.streams.video[0], 1000.0, time.monotonic() + 60))
    assert len(frames) == 60 and None not in frames


def test_all_frames_gives_one_a_second_over_the_whole_clip():
    data = video_bytes(frames=300, rate=30)  # 10 s, a key frame each second
    items = items_of(data, "clip.mp4", all_frames=True)
    order = [5, 0, 7, 2, 6, 1, 8, 3, 9, 4]  # read coarse to fine (test_video_s39): the middle, the start, …
    assert [i.locator for i in items] == [f"frame {30 * k + 16} at 0:0{k}.5" for k in order]
    assert [square_index(i) for i in items] == [(30 * k + 15) % 70 for k in order]


def test_all_frames_spread_evenly_within_the_image_cap():
    data = video_bytes(frames=300, rate=30)
    items = items_of(data, "clip.mp4", all_frames=True, max_images_per_input=4)
    assert [i.metadata["time_s"] for i in items] == [6.267, 1.267, 8.767, 3.767]  # the first at or after 1.25, …
    assert not any(isinstance(i, ItemError) for i in items)


def test_sparse_key_frames_still_reach_the_middle():
    data = video_bytes(frames=300, rate=30, gop=300)  # one key frame, at the start
    item, = items_of(data, "clip.mp4")
    assert item.locator == "frame 151 at 0:05.0" and square_index(item) == 150 % 70


def test_video_on_disk_is_read_in_place_past_the_input_cap(tmp_path):
    path = tmp_path / "endoscopy.mp4"
    path.write_bytes(video_bytes())
    items = list(open_input(path, Limits(max_input_bytes=1000)))
    assert len(items) == 1 and isinstance(items[0], ImageItem) and items[0].origin == str(path)
    err, = list(open_input(path, Limits(max_video_bytes=1000)))
    assert isinstance(err, ItemError) and "max_video_bytes" in err.error


def test_videos_in_folders_and_zips(tmp_path):
    data = video_bytes(frames=30, rate=10)
    (tmp_path / "a.mp4").write_bytes(data)
    (tmp_path / "b.zip").write_bytes(b.zip_bytes([("inner/c.webm", video_bytes("webm", "libvpx-vp9", 30, 10))]))
    items = list(open_input(tmp_path))
    assert [(type(i).__name__, i.origin.replace(f"{tmp_path}/", "")) for i in items] == [
        ("ImageItem", "a.mp4"), ("ImageItem", "b.zip:inner/c.webm")]


def test_rotation_from_the_display_matrix():
    """A phone clip stored landscape with a 90° turn in its track header is shown portrait."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        a = np.zeros((96, 160, 3), np.uint8)
        a[:20, :40] = 255  # top left as stored
        for _ in range(10):
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = bytearray(buf.getvalue())
    m = data.index(b"tkhd") + 44  # version 0 header: the matrix follows 40 bytes of fields
    data[m:m + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 96 << 16, 0, 0x40000000)  # 90° clockwise
    item, = items_of(bytes(data), "phone.mp4")
    px = np.asarray(item.image.convert("L"))
    assert item.image.size == (96, 160) and (item.width, item.height) == (96, 160)
    assert px[:40, -20:].mean() > 200 and px[:40, :20].mean() < 50  # now top right
    assert item.metadata["rotation"] == 270


def test_large_frames_decode_smaller_when_the_model_allows():
    data = video_bytes(frames=20, rate=10, size=(1280, 720))
    item, = items_of(data, "hd.mp4", decode_side=160)
    assert item.image.size == (320, 180) and (item.width, item.height) == (1280, 720)
    item, = items_of(data, "hd.mp4")
    assert item.image.size == (1280, 720)


def test_audio_only_is_a_note():
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for k in range(20):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, k * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    note, = items_of(buf.getvalue(), "voice.m4a")
    assert isinstance(note, ItemError) and note.skipped and note.error == "no video stream (audio only)"


def test_limits_pixels_and_time():
    data = video_bytes(frames=30, rate=10)
    err, = items_of(data, "clip.mp4", max_pixels=1000)
    assert isinstance(err, ItemError) and "max_pixels" in err.error and not err.skipped
    err, = items_of(data, "clip.mp4", video_timeout=0)
    assert isinstance(err, ItemError) and "video_timeout" in err.error


def test_frames_that_grow_mid_stream_are_refused():
    """MJPEG frames are separate JPEGs: three small ones first, then 6000 × 6000. Only the first is checked
    from the stream header, so every frame is checked (and the decoder has its own cap)."""
    from fractions import Fraction

    small, big = b.image_bytes("JPEG", size=(320, 240)), b.image_bytes("JPEG", size=(6000, 6000))
    buf = io.BytesIO()
    with av.open(buf, "w", format="avi") as c:
        s = c.add_stream("mjpeg", rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuvj420p"
        for i in range(21):
            p = av.Packet(big if i >= 3 else small)
            p.stream, p.pts, p.dts, p.time_base = s, i, i, Fraction(1, 10)
            c.mux(p)
    items = items_of(buf.getvalue(), "clip.avi", max_pixels=1_000_000)
    assert items and not any(isinstance(i, ImageItem) and i.image.width > 320 for i in items)
    assert all(isinstance(i, ItemError) for i in items)


def test_playlists_and_lookalikes_are_not_videos(tmp_path):
    """FFmpeg's own probing could take a playlist that opens other files; only sniffed containers are read."""
    (tmp_path / "secret.mp4").write_bytes(video_bytes(frames=10, rate=10))
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nsecret.mp4\n#EXT-X-ENDLIST\n"
    assert video_kind(playlist) is None
    err, = items_of(playlist, "list.m3u8")
    assert isinstance(err, ItemError) and "unrecognised" in err.error
    assert video_kind(b"G" + bytes(600)) is None and video_kind(b.image_bytes("PNG")) is None
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    assert video_kind(heic) is None


@pytest.mark.parametrize("fmt,codec,name", CONTAINERS)
def test_damaged_videos_give_clear_errors(fmt, codec, name):
    """Cut and byte-flipped clips: every one gives images or errors in plain words, quickly."""
    clean = video_bytes(fmt, codec, frames=60, rate=10, gop=10)
    started = time.monotonic()
    for k, data in b.damaged(clean, seed=7, n=24, start=32, cut_every=3, flips=(1, 10, 200)):
        items = items_of(data, name, all_frames=k % 2 == 1)
        b.assert_clear(items)
        for i in items:
            if isinstance(i, ItemError):
                assert i.error and not any(w in i.error for w in ("Traceback", "Errno", "<none>", "codec can't"))
    assert time.monotonic() - started < 30
    first, = items_of(clean[:200], name)  # MPEG-PS shows the part of a frame that is there
    assert isinstance(first, ImageItem) or not first.skipped


def test_cut_video_says_so():
    err, = items_of(video_bytes()[:200], "cut.mp4")
    assert err.error.startswith("not a readable video: ")


# ---------------------------------------------------------------- DICOM video

def elementary_stream(codec: str, frames: int) -> bytes:
    fmt = {"libx264": "h264", "mpeg2video": "mpeg2video"}[codec]
    return video_bytes(fmt, codec, frames=frames, rate=25, gop=12)


def video_dicom(syntax, codec: str, frames: int = 60, frame_time_ms: float | None = 40.0) -> bytes:
    """A Video Endoscopic Image: one MPEG stream, split into fragments of one frame item."""
    ds = b.dicom_dataset(syntax, "1.2.840.10008.5.1.4.1.1.77.1.1.1", "ES")
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = H, W, frames, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_PARTIAL_420", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frame_time_ms:
        ds.FrameTime = frame_time_ms
    ds.PixelData = encapsulate([elementary_stream(codec, frames)])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("syntax,codec", [(MPEG4HP41, "libx264"), (MPEG2MPML, "mpeg2video")])
def test_dicom_video_middle_and_all_frames(syntax, codec):
    data = video_dicom(syntax, codec)
    item, = items_of(data, "scope.dcm")
    assert isinstance(item, ImageItem) and item.locator == "frame 31" and square_index(item) == 30
    assert item.format == "DICOM" and item.metadata["Modality"] == "ES" and item.metadata["fps"] == 25.0
    assert "Doe" not in repr(item.metadata)
    # 60 frames at 25 a second (FrameTime 40 ms) is 2.4 s: one frame a second, as for any video
    items = items_of(data, "scope.dcm", all_frames=True, max_images_per_input=6)
    assert [i.locator for i in items] == ["frame 16", "frame 46"]
    assert [square_index(i) for i in items] == [15, 45]
    # without a rate, every frame (spread within the image cap)
    items = items_of(video_dicom(syntax, codec, frame_time_ms=None), "scope.dcm", all_frames=True,
                     max_images_per_input=6)
    assert [i.locator for i in items] == [f"frame {k}" for k in (6, 16, 26, 36, 46, 56)]
    assert [square_index(i) for i in items] == [5, 15, 25, 35, 45, 55]


def test_dicom_video_that_is_not_a_stream():
    ds = pydicom.dcmread(io.BytesIO(video_dicom(MPEG4HP41, "libx264", frames=12)))
    ds.PixelData = encapsulate([b"\x00\x00\x00\x01" + bytes(range(256)) * 20])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    item, = items_of(out.getvalue(), "broken.dcm")
    assert isinstance(item, ItemError) and "Doe" not in item.error


def test_classify_a_video_file(tmp_path):
    from medimg.pipeline import classify

    path = tmp_path / "clip.mp4"
    path.write_bytes(video_bytes(frames=30, rate=10))
    with zipfile.ZipFile(tmp_path / "both.zip", "w") as z:
        z.writestr("scope.dcm", video_dicom(MPEG4HP41, "libx264", frames=12))
    records = list(classify([str(path), str(tmp_path / "both.zip")]))
    assert [(r.locator, r.error) for r in records] == [("frame 16 at 0:01.5", None), ("frame 7", None)]
    assert all(r.label and 0 <= r.confidence <= 1 for r in records)


def test_a_table_claiming_more_memory_than_there_is_is_told_in_plain_words():
    """An MP4 whose time-to-sample table claims 2³²−1 entries: FFmpeg refuses to allocate it (ENOMEM), which
    came out as "Cannot allocate memory"."""
    data = video_bytes(frames=10)
    at = data.index(b"stts") + 8  # after the box's type, its version and flags: the entry count
    bad = data[:at] + b"\xff\xff\xff\xff" + data[at + 4:]
    err, = items_of(bad, "clip.mp4")
    assert err.error == "not a readable video: the file is damaged (it claims more memory than is available)"


def test_video_timeout_stops_a_long_reading_part_way_with_a_note():
    """video_timeout = 0 stops at once; a real budget (half the measured work) stops part-way through a clip,
    keeping the frames read so far."""
    data = video_bytes(frames=600, rate=30, gop=300)  # 20 s, a key frame every 10 s: 20 frames, slow seeks
    items_of(data, "clip.mp4")  # FFmpeg warmed up
    for _ in range(3):  # a load that changes between the two runs can end the second too early or too late
        started = time.monotonic()
        assert len(items_of(data, "clip.mp4", all_frames=True)) == 20
        budget = round(max(time.monotonic() - started, 0.05) / 2, 3)
        items = items_of(data, "clip.mp4", all_frames=True, video_timeout=budget)
        if 0 < sum(isinstance(i, ImageItem) for i in items) < 20:
            break
    shown = [i for i in items if isinstance(i, ImageItem)]
    (note,) = [i for i in items if isinstance(i, ItemError)]
    assert note.skipped and note.error.startswith(
        f"stopped after {budget:g} s (video_timeout) with {len(shown)} frame(s) read")
    assert 0 < len(shown) < 20


def _clip(size=(160, 96), frames: int = 10, rate=10) -> bytearray:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            a = np.full((size[1], size[0], 3), 40, np.uint8)
            a[:20, 10 * i:10 * i + 10] = 255  # a mark that moves 10 px a frame
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return bytearray(buf.getvalue())


def test_a_turned_clip_decoded_smaller_reports_its_stored_size_turned_too():
    """A 160×96 clip with a 90° display matrix, decoded at half size, says it is 96×160 (as shown), not 160×96."""
    data = _clip()
    m = data.index(b"tkhd") + 44  # version 0 header: the matrix follows 40 bytes of fields
    data[m:m + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 96 << 16, 0, 0x40000000)  # 90° clockwise
    (item,) = open_input(Blob("phone.mp4", bytes(data), name="phone.mp4"), Limits(decode_side=48))
    assert isinstance(item, ImageItem), item
    assert item.image.size == (48, 80) and item.full_size == (96, 160) and (item.width, item.height) == (96, 160)


def test_a_clip_slower_than_a_frame_a_second_gives_each_frame_once_with_all_frames():
    """With all_frames, a clip of one frame every 2 s gives each of its frames once, not the same frame twice."""
    data = bytes(_clip(frames=5, rate=Fraction(1, 2)))
    items = list(open_input(Blob("slow.mp4", data, name="slow.mp4"), Limits(all_frames=True)))
    assert not [i for i in items if isinstance(i, ItemError)], items
    times = [i.metadata["time_s"] for i in items]
    assert len(times) == len(set(times)) and len(times) <= 5, times
