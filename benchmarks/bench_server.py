"""The HTTP server: memory of `medimg serve` and latency of /api/classify.

    .venv/bin/python benchmarks/bench_server.py [--model DIR] [--runs 5]

Starts `medimg serve` on a free 127.0.0.1 port and reports its resident memory (RSS) after start-up and after the
first request, then the median wall time of POST /api/classify (seen by a client that keeps its connection, upload
included) for one photo, one 12-megapixel JPEG and a 20-image PDF, with the fastest and slowest of the runs.
Then its throughput: 64 distinct photos (512–1024 px JPEGs) sent as 16 requests of 4 files by 1 and by 4 clients
at once (the server classifies 2 requests at a time), as images/s, against the baseline measured in the same run
before the server starts: `medimg.classify` of the same 64 photos in this process, as the Python API does it. Every
request must come back with all its images classified. The client shares the CPU with the server. Inputs are made
from files that ship with installed packages (Gradio's sample photos, pydicom's test scans); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its children, in MB."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def sample_images() -> list[Image.Image]:
    import gradio
    import pydicom

    from medimg.sources import ImageItem, open_input

    photos = Path(gradio.__file__).parent / "media_assets" / "images"
    scans = Path(pydicom.__file__).parent / "data" / "test_files"
    images = [Image.open(p).convert("RGB") for p in sorted(photos.glob("*.jpg"))]
    for name in ("CT_small.dcm", "MR_small.dcm"):
        for item in open_input(scans / name):
            if isinstance(item, ImageItem):
                from medimg.model.preprocess import to_rgb

                images.append(to_rgb(item.image))
    return images


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def pdf_of(images: list[Image.Image], n: int) -> bytes:
    """n distinct images (each resized differently, so none is a duplicate), two per page."""
    import pymupdf

    doc = pymupdf.open()
    for i in range(n):
        src = images[i % len(images)]
        w = 280 + 12 * i
        img = src.resize((w, max(64, round(src.height * w / src.width))))
        if i % 2 == 0:
            page = doc.new_page(width=595, height=842)
        y = 60 + (i % 2) * 380
        page.insert_text((50, y - 10), f"Figure {i + 1}", fontsize=11)
        page.insert_image(pymupdf.Rect(50, y, 545, y + 340), stream=jpeg(img))
    data = doc.tobytes()
    doc.close()
    return data


def photos(images: list[Image.Image], n: int) -> list[bytes]:
    """n distinct JPEGs of 512–1024 px (each image resized differently, so none is a duplicate)."""
    out = []
    for i in range(n):
        src = images[i % len(images)]
        w = 512 + 8 * i
        out.append(jpeg(src.resize((w, max(64, round(src.height * w / src.width))))))
    return out


def in_process(datas: list[bytes], model: str | None) -> float:
    """Seconds for medimg.classify to classify `datas` in this process (the model loaded beforehand)."""
    from medimg.model import Classifier
    from medimg.pipeline import classify
    from medimg.sources import Blob

    clf = Classifier.load(model)
    blobs = [Blob(f"p{i}.jpg", d, name=f"p{i}.jpg") for i, d in enumerate(datas)]
    list(classify(blobs[:4], classifier=clf))  # warm-up
    start = time.perf_counter()
    recs = list(classify(blobs, classifier=clf))
    took = time.perf_counter() - start
    if sum(r.ok for r in recs) != len(datas):
        raise SystemExit(f"in-process baseline: {sum(r.ok for r in recs)} of {len(datas)} images classified")
    return took


def throughput(base: str, datas: list[bytes], per_request: int, clients: int) -> float:
    """Seconds for `clients` clients at once (each its own connection) to post `datas`, `per_request` files a
    request, the requests dealt out in turn."""
    requests = [[(f"p{i + j}.jpg", d) for j, d in enumerate(datas[i:i + per_request])]
                for i in range(0, len(datas), per_request)]

    def post_all(mine: list[list[tuple[str, bytes]]]) -> None:
        with httpx.Client(timeout=300) as client:
            for files in mine:
                r = client.post(base + "/api/classify", files=[("files", f) for f in files])
                r.raise_for_status()
                if r.json()["summary"]["images"] != len(files):
                    raise SystemExit(f"expected {len(files)} images, the server answered {r.json()}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post_all, [requests[k::clients] for k in range(clients)]))
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_post(client: httpx.Client, base: str, name: str, data: bytes, expect: int) -> float:
    start = time.perf_counter()
    r = client.post(base + "/api/classify", files=[("files", (name, data))])
    took = time.perf_counter() - start
    r.raise_for_status()
    got = r.json()["summary"]["images"]
    if got != expect:
        raise SystemExit(f"{name}: expected {expect} images, the server found {got}: {r.json()}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="folder with model.onnx and labels.json (default: the shipped model)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    images = sample_images()
    photo = jpeg(images[0])
    big_photo = jpeg(images[0].resize((4000, 3000)))  # a 12-megapixel camera picture
    report = pdf_of(images, 20)
    many = photos(images, 64)
    alone = min(in_process(many, args.model) for _ in range(2))
    port = free_port()
    cmd = [sys.executable, "-m", "medimg.cli", "serve", "--port", str(port)]
    if args.model:
        cmd += ["--model", args.model]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("medimg serve exited during start-up")
            try:
                model = httpx.get(base + "/api/health", timeout=2).json()["model"]
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        startup = time.perf_counter() - t0
        time.sleep(1.0)
        rss_start = rss_mb(proc.pid)
        # one client kept, as a program calling the API keeps its connection: httpx.post() makes a new client each
        # call, whose TLS context alone costs ~45 ms of CPU, most of what a photo's request took to answer
        client = httpx.Client(timeout=300)
        first = timed_post(client, base, "photo.jpg", photo, 1)
        rss_first = rss_mb(proc.pid)
        one = [timed_post(client, base, "photo.jpg", photo, 1) for _ in range(args.runs)]
        big = [timed_post(client, base, "camera.jpg", big_photo, 1) for _ in range(args.runs)]
        twenty = [timed_post(client, base, "report.pdf", report, 20) for _ in range(args.runs)]
        client.close()
        rates = {}
        for _ in range(2):  # by turns, each one's best
            for clients in (1, 4):
                took = throughput(base, many, 4, clients)
                rates[clients] = max(rates.get(clients, 0.0), len(many) / took)
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    result = {
        "model": f"{model['name']} {model['version']} (input {model['input_size']})",
        "cpus": os.cpu_count(),
        "startup_s": round(startup, 2),
        "rss_after_start_mb": round(rss_start, 1),
        "rss_after_first_request_mb": round(rss_first, 1),
        "rss_after_all_mb": round(rss_end, 1),
        "first_request_s": round(first, 3),
        "one_image_median_s": round(statistics.median(one), 3),
        "one_image_range_s": [round(min(one), 3), round(max(one), 3)],
        "one_12mp_jpeg_median_s": round(statistics.median(big), 3),
        "one_12mp_jpeg_range_s": [round(min(big), 3), round(max(big), 3)],
        "pdf_20_images_median_s": round(statistics.median(twenty), 3),
        "pdf_20_images_range_s": [round(min(twenty), 3), round(max(twenty), 3)],
        "in_process_64_photos_img_s": round(len(many) / alone, 1),
        "api_1_client_img_s": round(rates[1], 1),
        "api_4_clients_img_s": round(rates[4], 1),
        "api_4_clients_vs_in_process": round(rates[4] * alone / len(many), 2),
        "pdf_bytes": len(report),
        "runs": args.runs,
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
