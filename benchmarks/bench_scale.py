"""Ray Data job throughput on web pages from a far server, against the one-process pipeline.

Serves N pages on 127.0.0.1 (tests/webserver.py), each with two 512 px JPEGs; every page answers after
`--delay` seconds and every image after half that, as a far server would. Prints wall time and
pages/s for `medimg classify`'s pipeline in this process (the baseline, default workers) and for
the Ray job (`medimg scale`) with the given concurrency, and their ratio. The server runs in this
process, so it shares the 2 cores with everything else.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webserver import WebServer  # noqa: E402

from medimg.pipeline import classify, default_workers  # noqa: E402
from medimg.sources import Limits  # noqa: E402


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(pixels).resize((512, 512), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def serve(srv: WebServer, n: int, delay: float) -> list[str]:
    urls = []
    for i in range(n):
        for k in range(2):
            srv.add(f"/img/{i}-{k}.jpg", jpeg(2 * i + k), "image/jpeg", delay=delay / 2)
        body = f"<html><body><h1>Case {i}</h1><img src='/img/{i}-0.jpg'><img src='/img/{i}-1.jpg'></body></html>"
        urls.append(srv.add(f"/page/{i}.html", body, delay=delay))
    return urls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=60)
    ap.add_argument("--delay", type=float, default=0.4, help="seconds before each page answers")
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    import ray

    from medimg.scale.ray_job import run

    limits = Limits(allow_private=True)
    with WebServer() as srv:
        urls = serve(srv, args.pages, args.delay)
        list(classify(urls[:2], limits=limits))  # load the model, warm up
        start = time.perf_counter()
        recs = list(classify(urls, limits=limits))
        base = time.perf_counter() - start
        assert sum(r.ok for r in recs) == 2 * args.pages, [r.error for r in recs if not r.ok][:3]
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        with tempfile.TemporaryDirectory() as tmp:
            run(urls[:2], Path(tmp) / "warm", limits=limits, concurrency=args.concurrency)
            start = time.perf_counter()
            n = run(urls, Path(tmp) / "out", limits=limits, concurrency=args.concurrency)
            job = time.perf_counter() - start
        ray.shutdown()
    assert n == 2 * args.pages, n
    floor = args.pages * args.delay * 1.5  # one page then its two images, one input after another
    print(f"{args.pages} pages × 2 images, page delay {args.delay:.2f} s, image delay {args.delay / 2:.2f} s; "
          f"one input at a time would wait {floor:.1f} s")
    print(f"pipeline, {default_workers()} workers, one process: {base:6.1f} s  {args.pages / base:5.2f} pages/s")
    print(f"Ray job, concurrency {args.concurrency}:          {job:6.1f} s  {args.pages / job:5.2f} pages/s  "
          f"({job / base:.2f}× the pipeline's time)")


if __name__ == "__main__":
    main()
