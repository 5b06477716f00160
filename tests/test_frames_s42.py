"""Files of many frames with all_frames: a frame that shows again a picture an earlier frame of the file showed (a
GIF's held slide, a looped or frozen cine) is one note, not classified again, and the frames read stay capped."""

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input


def picture(k: int, size=(64, 48)) -> np.ndarray:
    """A grey frame with a bright bar at place k: each k a different picture."""
    a = np.full((size[1], size[0]), 60, np.uint8)
    a[10:30, 4 + 8 * k:12 + 8 * k] = 230
    return a


def rows(data: bytes, name: str, **limits) -> list[tuple[str, str, str | None]]:
    out = []
    for item in open_input(Blob(origin=name, data=data), Limits(all_frames=True, **limits)):
        kind = "image" if isinstance(item, ImageItem) else "note" if item.skipped else "error"
        out.append((kind, item.locator, None if isinstance(item, ImageItem) else item.error))
    return out


def looped(fmt: str, pictures=(0, 1, 2), times=3) -> bytes:
    """A loop of distinct pictures played `times` over in one file (Pillow merges only identical neighbours)."""
    frames = [Image.fromarray(picture(k)).convert("RGB") for _ in range(times) for k in pictures]
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=40, loop=0, **extra)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_a_loop_played_again_in_an_animation_is_classified_once(fmt):
    """A cine loop of 3 pictures saved 3 times over gave 9 images, each picture classified 3 times; now the 3
    pictures, then one note for the frames that repeat them."""
    got = rows(looped(fmt), "loop." + fmt.lower())
    assert [r[:2] for r in got] == [("image", "frame 1"), ("image", "frame 2"), ("image", "frame 3"),
                                    ("note", "frames 4–9")], got
    assert "same picture as an earlier frame (frame 4 as frame 1)" in got[-1][2]


def held_gif() -> bytes:
    """As FFmpeg writes a GIF from a clip: each picture held for 3 frames, a held frame a 1×1 delta."""
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    with av.open(buf, "w", format="gif") as out:
        stream = out.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "pal8"
        palette = np.zeros((256, 4), np.uint8)
        palette[:, 0] = 255
        palette[:, 1:] = np.arange(256)[:, None]
        for i in range(9):
            frame = av.VideoFrame.from_ndarray((picture(i // 3), palette), format="pal8")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def test_a_gif_holding_each_picture_for_several_frames_gives_each_picture_once():
    """FFmpeg's GIF of a clip holds a picture by 1×1 frames drawn over it: frames 2-3 showed frame 1 again (the
    first a palette image, those drawn over it RGB) and were classified again."""
    data = held_gif()
    with Image.open(io.BytesIO(data)) as im:
        assert im.n_frames == 9  # the held frames are in the file
    got = rows(data, "clip.gif")
    assert got == [("image", "frame 1", None), ("note", "frames 2–3", "the same picture as frame 1; not classified again"),
                   ("image", "frame 4", None), ("note", "frames 5–6", "the same picture as frame 4; not classified again"),
                   ("image", "frame 7", None), ("note", "frames 8–9", "the same picture as frame 7; not classified again")]


def dicom_cine(frames: list[np.ndarray]) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = frames[0].shape
    ds.NumberOfFrames = len(frames)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 7, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.stack(frames).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_a_frozen_dicom_cine_gives_each_picture_once():
    """An ultrasound cine whose operator froze it (frames 3-5 one picture), as pydicom's examples_ybr_color.dcm
    holds twice: each frozen frame was classified again."""
    data = dicom_cine([picture(0), picture(1), picture(2), picture(2), picture(2), picture(3)])
    got = rows(data, "cine.dcm")
    assert got == [("image", "frame 1", None), ("image", "frame 2", None), ("image", "frame 3", None),
                   ("note", "frames 4–5", "the same picture as frame 3; not classified again"),
                   ("image", "frame 6", None)]
    (default,) = open_input(Blob(origin="cine.dcm", data=data))
    assert default.locator == "frame 4"  # without all_frames: the middle frame, as before


@pytest.mark.parametrize("fmt", ["GIF", "DICOM"])
def test_repeated_frames_count_towards_the_frames_read(fmt):
    """Frames that repeat a picture cost a decode each, so the cap still bounds the frames read, and a note says
    where it stopped (listed by the CLI as an input cut short)."""
    if fmt == "GIF":
        data, name = looped("GIF", pictures=(0, 1), times=10), "loop.gif"
    else:
        data, name = dicom_cine([picture(k % 2) for k in range(20)]), "loop.dcm"
    got = rows(data, name, max_images_per_input=5)
    assert [r[:2] for r in got] == [("image", "frame 1"), ("image", "frame 2"), ("note", "frames 3–5"),
                                    ("note", "")], got
    assert got[-1][2] == "stopped after reading 5 frames, 3 of them repeats (max_images_per_input)"


def test_distinct_frames_are_capped_as_before():
    """Every frame a new picture: the cap's own note, as before."""
    frames = [picture(k) for k in range(6)]
    got = rows(dicom_cine(frames), "cine.dcm", max_images_per_input=3)
    assert got[-1] == ("note", "", "stopped after 3 images (max_images_per_input)")
    assert [r[1] for r in got[:-1]] == ["frame 1", "frame 2", "frame 3"]


def test_pydicoms_frozen_ultrasound_cine():
    """pydicom's own ultrasound cine (30 JPEG frames) repeats frames 11 and 28."""
    path = Path(next(iter(pydicom.__path__))) / "data" / "test_files" / "examples_ybr_color.dcm"
    if not path.is_file():
        pytest.skip("pydicom's test files are not installed")
    items = list(open_input(str(path), Limits(all_frames=True)))
    notes = [(i.locator, i.error) for i in items if isinstance(i, ItemError)]
    assert notes == [("frame 12", "the same picture as frame 11; not classified again"),
                     ("frame 29", "the same picture as frame 28; not classified again")]
    assert sum(isinstance(i, ImageItem) for i in items) == 28
