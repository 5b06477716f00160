"""The benchmarks still run against the code (on tiny inputs), measure what they say, and `make bench` fails
when one of them does. Speed itself is the benchmarks' business (docs/benchmarks.md), not a test's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
ENV = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False",
       "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(autouse=True)
def benchmarks_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def run_bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=BENCH, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_clocks_count_cpu_not_waiting_and_leave_out_the_first_call():
    from timing import clocks

    calls = []

    def fn():
        if not calls:  # a first call that imports or fills caches: not counted
            end = time.process_time() + 0.3
            while time.process_time() < end:
                pass
        calls.append(1)
        time.sleep(0.05)  # waiting, as a niced run on a busy machine waits: no CPU

    got = clocks(fn, 3)
    assert len(calls) == 4
    assert got.cpu < 0.03 and got.wall >= 0.05 and got.spread >= 1


def test_every_benchmark_imports():
    """Each script's imports (names of medimg and of the tests' helpers it uses) still exist."""
    names = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "run_all")
    code = f"import sys; sys.path[:0] = [{str(BENCH)!r}, {str(ROOT / 'tests')!r}]\nfor n in {names!r}: __import__(n)"
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("args, said", [
    (["bench_jpeg_errors.py", "--side", "320", "--repeat", "1"], "missing only FF D9: image"),
    (["bench_dicom.py", "--slices", "3", "--repeat", "1"], "baseline dcmread + pixel_array"),
    (["bench_video.py", "--seconds", "2", "--repeat", "1"], "one frame a second (2 frames)"),
    (["bench_web.py", "--only", "static", "--pages", "1", "--repeat", "1"], "x the baseline"),
])
def test_small_benchmarks_run(args, said):
    out = run_bench(*args)
    assert said in out, out


def test_media_benchmark_reduces_the_jpeg_2000_and_compares_like_with_like():
    """The JPEG 2000 baseline decodes in full and resizes to the size the source gives; the source decodes at a
    lower level, as fast as Pillow's bare decode at that level (not asserted: speed is the benchmark's business)."""
    out = run_bench("bench_media.py", "--side", "1024", "--repeat", "1")
    assert "JPEG 2000 1024×768" in out and "→ 512×384 (level 1)" in out, out
    assert "12-bit grey JPEG 1024×768" in out and out.count("x the baseline") == 2, out


def test_run_all_fails_naming_the_benchmark_that_failed(tmp_path):
    (tmp_path / "run_all.py").write_text((BENCH / "run_all.py").read_text())
    (tmp_path / "bench_a.py").write_text("print('fine')\n")
    (tmp_path / "bench_b.py").write_text("raise SystemExit('rotted')\n")
    done = subprocess.run([sys.executable, str(tmp_path / "run_all.py")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "fine" in done.stdout
    assert "failed: bench_b.py" in done.stderr and "bench_a.py" not in done.stderr.split("failed:")[1]


def jpegs(n: int) -> list[Image.Image]:
    return [Image.effect_noise((96 + 8 * i, 80), 30 + i).convert("RGB") for i in range(n)]


def test_server_throughput_against_a_live_server(tiny_model_dir, monkeypatch):
    """bench_server's throughput: requests by several clients at once, every image classified, and its
    in-process baseline on the same photos. Each client keeps its connection: httpx.post() made a new client (and
    TLS context, ~45 ms of CPU) per request, which the latencies counted as the server's."""
    import httpx
    from bench_server import in_process, photos, throughput, timed_post
    from test_api import LiveServer

    from medimg.server.app import create_app
    from medimg.server.config import ServerConfig
    from medimg.server.work import Worker

    datas = photos(jpegs(3), 6)
    assert len({len(d) for d in datas}) == 6  # distinct photos, none a duplicate of another
    cfg = ServerConfig(model_dir=tiny_model_dir)
    live = LiveServer(create_app(cfg, Worker(cfg), ui=False))
    made = []
    init = httpx.Client.__init__
    monkeypatch.setattr(httpx.Client, "__init__", lambda self, *a, **k: made.append(1) or init(self, *a, **k))
    try:
        assert throughput(live.url, datas, 1, 2) > 0  # 6 requests by 2 clients
        assert len(made) == 2
        with httpx.Client() as client:
            assert timed_post(client, live.url, "p.jpg", datas[0], 1) > 0
            assert timed_post(client, live.url, "p.jpg", datas[1], 1) > 0
        assert len(made) == 3
    finally:
        live.close()
    assert in_process(datas, str(tiny_model_dir)) > 0


def test_pipeline_cli_run_writes_every_record(tmp_path, tiny_model_dir):
    from bench_pipeline import cli

    files = []
    for i, img in enumerate(jpegs(3)):
        files.append(tmp_path / f"{i}.jpg")
        img.save(files[-1])
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{p}\n" for p in files))
    took, written = cli(listed, tmp_path / "out.jsonl", tiny_model_dir)
    assert took > 0 and written == 3

