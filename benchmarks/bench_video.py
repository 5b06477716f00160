"""Speed of the video source against bare PyAV in the same run.

    .venv/bin/python benchmarks/bench_video.py [--seconds S] [--repeat R]

One clip is encoded here (H.264 in MP4, 640 × 480 at 30 fps, a key frame every 2 s, S seconds long: a
textured scene panning slowly, as an endoscope's view drifts, so frames cost what real ones do) and
written to a temporary folder. Timed, CPU time, the median of R runs after one not counted (the fastest
wall clock in brackets):
  - middle frame: the source's item (open by path, seek, decode, RGB image) against bare PyAV doing the
    same seek and decode, and against decoding in order up to the middle (what a reader without seeking does);
  - one frame a second (`all_frames`): the source against bare PyAV decoding the whole clip in order and
    converting one frame a second.
Ratios (of CPU times) > 1 mean the source is slower than the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from medimg.sources import ImageItem, Limits, open_input
from timing import clocks, ms



def clip(path: str, seconds: int, size=(640, 480), rate: int = 30) -> None:
    w, h = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h * 2, 0:w * 2]
    scene = np.stack([128 + 60 * np.sin(xx / 23.0) + 40 * np.cos(yy / 17.0),
                      100 + 50 * np.sin((xx + yy) / 31.0), 90 + 30 * np.cos(xx / 11.0)], -1)
    scene = np.clip(scene + rng.normal(0, 12, scene.shape), 0, 255).astype(np.uint8)
    with av.open(path, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": str(2 * rate), "preset": "veryfast"}
        for i in range(seconds * rate):
            x, y = (i // 2) % w, (i // 3) % h
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(scene[y:y + h, x:x + w]),
                                                         format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def bare_seek(path: str) -> None:
    with av.open(path) as c:
        s = c.streams.video[0]
        target = float(s.duration * s.time_base) / 2
        c.seek(int(target / s.time_base), stream=s)
        for frame in c.decode(s):
            if frame.time >= target:
                frame.to_image()
                return


def bare_in_order(path: str, every_second: bool) -> None:
    with av.open(path) as c:
        s = c.streams.video[0]
        middle = float(s.duration * s.time_base) / 2
        next_t = 0.5
        for frame in c.decode(s):
            if not every_second and frame.time >= middle:
                frame.to_image()
                return
            if every_second and frame.time >= next_t:
                frame.to_image()
                next_t += 1.0


def source(path: str, all_frames: bool) -> int:
    items = list(open_input(path, Limits(all_frames=all_frames)))
    assert all(isinstance(i, ImageItem) for i in items), items
    return len(items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clip.mp4")
        start = time.perf_counter()
        clip(path, args.seconds)
        print(f"clip: {args.seconds} s, 640×480 H.264, {Path(path).stat().st_size / 1e6:.1f} MB "
              f"(encoded in {time.perf_counter() - start:.1f} s)")
        t_src = clocks(lambda: source(path, False), args.repeat)
        t_seek = clocks(lambda: bare_seek(path), args.repeat)
        t_order = clocks(lambda: bare_in_order(path, False), args.repeat)
        print(f"middle frame: source {ms(t_src)}; bare PyAV seek {ms(t_seek)} (ratio {t_src.cpu / t_seek.cpu:.2f}); "
              f"decoding in order to the middle {t_order.cpu * 1000:.0f} ms "
              f"(source is {t_order.cpu / t_src.cpu:.0f}× faster)")
        n = source(path, True)
        t_all = clocks(lambda: source(path, True), args.repeat)
        t_all_bare = clocks(lambda: bare_in_order(path, True), args.repeat)
        print(f"one frame a second ({n} frames): source {t_all.cpu:.2f} s ({t_all.wall:.2f}); bare PyAV decoding the "
              f"whole clip in order {t_all_bare.cpu:.2f} s ({t_all_bare.wall:.2f}) "
              f"(ratio {t_all.cpu / t_all_bare.cpu:.2f})")


if __name__ == "__main__":
    main()
