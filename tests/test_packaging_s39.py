"""Packaging (s39): dependency floors that the tests pass on, the README's links in the wheel, cover art in videos."""
import io
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _floor(name):
    """The specifier of `name` ("extra:name" for the one an extra lists), the core dependency before an extra's."""
    from packaging.requirements import Requirement

    project = PROJECT["project"]
    extra, _, name = name.rpartition(":")
    extras = project["optional-dependencies"]
    listed = extras[extra] if extra else project["dependencies"] + [r for e in extras.values() for r in e]
    return next(r.specifier for r in map(Requirement, listed) if r.name == name)


@pytest.mark.parametrize("name, too_old, why", [
    ("pydicom", "3.0.0", "`import pydicom` tries to download example files: ~2 minutes offline"),
    ("fastapi", "0.164.0", "add_api_route has max_body_size but no form_limits"),
    ("gradio", "6.23.1", "mount_gradio_app has no run_history"),
    ("gradio", "5.8.0", "imports requests, which huggingface-hub 1.x no longer brings"),
    ("av", "14.1.0", "14.0 has no av.stream.Disposition; 14.1 (older FFmpeg) misses an MPEG-PS middle frame by 2"),
    ("av", "16.0.0", "no Stream.index_entries: all_frames reads a clip in time order, not coarse to fine"),
    ("python-multipart", "0.0.26", "a cut-short upload is answered differently"),
    ("imagecodecs", "2024.1.1", "no wheel: pip builds it from source (needs libaec, …) and fails"),
    ("typer", "0.15.4", "caps click < 8.2; gradio's huggingface-hub needs click 8.4"),
    # s42_pkg: the code's own failures
    ("pymupdf", "1.25.5", "no mupdf.ll_fz_path_is_rect: a page with a filled path is 'could not read page'"),
    ("pymupdf", "1.26.7", "a page tree claiming 10^9 pages gives 501 error rows in ~30 s, not one clear error"),
    ("playwright", "1.47.0", "no BrowserContext.route_web_socket: every --render is 'rendering failed'"),
    # s43_floors: test_scale.py at each ray (pyarrow 17, NumPy 1.26); the rest import checks with NumPy 2.0.0
    ("ray", "2.47.1", "JSONL files are named without a write id: a resume overwrites the first run's rows"),
    ("ray", "2.58.1", "no ActorPoolStrategy(max_concurrent_calls_per_actor): an actor runs one batch at a time"),
    ("scale:numpy", "1.26.4", "pyarrow 26, which ray[data] brings, fails to import with NumPy 1 (undeclared)"),
    ("onnxruntime", "1.18.1", "fails to import with NumPy 2: _ARRAY_API not found"),
    ("h5py", "3.10.0", "fails to import with NumPy 2: numpy.dtype size changed"),
    ("nibabel", "5.1.0", "fails with NumPy 2: np.sctypes was removed"),
    ("pynrrd", "1.0.0", "fails with NumPy 2: np.bool8 was removed"),
    ("imagecodecs", "2024.6.1", "a 10-bit JPEG XL is read saturated (255 where the picture is 75 % yellow)"),
])
def test_dependency_floors_exclude_releases_the_tests_fail_on(name, too_old, why):
    pytest.importorskip("packaging")
    assert too_old not in _floor(name), why


def _relative_links(markdown: str) -> set[str]:
    """Targets of the Markdown links and images that are files beside it (no web address, no bare anchor)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return {t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")}


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    """The files of a wheel built from this checkout (without isolation: no network needed)."""
    pytest.importorskip("setuptools", minversion="77")
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named pip" in built.stderr:
        pytest.skip("this venv has no pip")
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("medimg-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_holds_every_file_the_readme_and_model_card_link_to(wheel_names):
    """A wheel user gets the README's MODEL_CARD.md and docs, links intact, in <venv>/share/doc/medimg."""
    (data,) = {n.split("/")[0] for n in wheel_names if n.endswith(".data/data/share/doc/medimg/README.md")}
    docs = f"{data}/data/share/doc/medimg/"
    readme_links = _relative_links((ROOT / "README.md").read_text())
    assert {"MODEL_CARD.md", "docs/server.md", "docs/screenshots/ui.png"} <= readme_links
    card_links = _relative_links((ROOT / "MODEL_CARD.md").read_text())
    missing = sorted(t for t in readme_links | card_links | {"README.md"} if docs + t not in wheel_names)
    assert not missing, missing


def _audio_with_cover(video: bool) -> bytes:
    """An MP4 with AAC sound and a cover picture (an attached_pic stream), and a real video stream if asked."""
    import av
    from av.stream import Disposition

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=8000)
        cover = out.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = Disposition.attached_pic.value  # av 14 takes an int here
        clip = out.add_stream("mpeg4", rate=10) if video else None
        if clip:
            clip.width, clip.height, clip.pix_fmt = 96, 64, "yuv420p"
        picture = np.full((48, 64, 3), 200, np.uint8)
        for p in cover.encode(av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuvj420p")):
            out.mux(p)
        for i in range(10 if clip else 0):
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), 20 * i, np.uint8), format="rgb24")
            for p in clip.encode(frame.reformat(format="yuv420p")):
                out.mux(p)
        for p in clip.encode(None) if clip else []:
            out.mux(p)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp", layout="mono")
        chunk.sample_rate = 8000
        for p in [*sound.encode(chunk), *sound.encode(None)]:
            out.mux(p)
    return buf.getvalue()


def test_a_cover_picture_is_not_taken_for_the_video():
    """Cover art is a video stream marked attached_pic: sound with a cover is a note, a film's frames come from
    its real stream (on av 14, whose Disposition flag int() refused, every video was an error)."""
    pytest.importorskip("av")
    from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input

    note, = open_input(Blob("song.m4a", _audio_with_cover(False), name="song.m4a"), Limits())
    assert isinstance(note, ItemError) and note.skipped and note.error == "no video stream (audio only)"
    item, = open_input(Blob("film.mp4", _audio_with_cover(True), name="film.mp4"), Limits())
    assert isinstance(item, ImageItem), item
    assert (item.width, item.height) == (96, 64)
