"""A URL list with dead hosts: how long the whole list takes when some URLs never answer.

    .venv/bin/python benchmarks/bench_dead_hosts.py [--urls 300] [--dead 10] [--timeout 6] [--workers 4 8 32]

Serves `--urls` small PNGs on 127.0.0.1 (tests/webserver.py); `--dead` of them, spread over the list, answer
nothing for longer than `--timeout`, as a dead host does. Each `--workers` value runs the whole list through
`medimg.classify` (input order kept, as the CLI writes it). The baseline, in the same run, is the same list
with no dead URL at the largest `--workers`; the ratio is the run's time to it. The least the dead URLs can
cost is one `--timeout`, all of them waited out at once.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webserver import WebServer  # noqa: E402

from medimg.pipeline import classify  # noqa: E402
from medimg.sources import Limits  # noqa: E402


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def run(urls: list[str], workers: int, timeout: float) -> tuple[float, int, int]:
    limits = Limits(allow_private=True, total_timeout=timeout, read_timeout=timeout)
    start = time.perf_counter()
    ok = errors = 0
    for rec in classify(urls, limits=limits, workers=workers):
        ok += rec.ok
        errors += rec.error is not None
    return time.perf_counter() - start, ok, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=300)
    ap.add_argument("--dead", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=6.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[4, 8, 32])
    args = ap.parse_args()
    with WebServer() as srv:
        every = max(1, args.urls // max(1, args.dead))
        dead = {i for i in range(0, args.urls, every)}
        dead = set(sorted(dead)[:args.dead])
        live, listed = [], []
        for i in range(args.urls):
            body = png(i)
            live.append(srv.add(f"/live/{i}.png", body, "image/png"))
            listed.append(srv.add(f"/dead/{i}.png", body, "image/png", delay=3600) if i in dead else live[-1])
        run(live[:20], max(args.workers), args.timeout)  # warm-up: the model loaded, the server's threads up
        base, ok, errors = run(live, max(args.workers), args.timeout)
        result = {"urls": args.urls, "dead": len(dead), "timeout_s": args.timeout, "cpus": os.cpu_count(),
                  "baseline_no_dead_s": round(base, 2), "baseline_images": ok, "baseline_errors": errors, "runs": []}
        for w in args.workers:
            took, ok, errors = run(listed, w, args.timeout)
            result["runs"].append({"workers": w, "seconds": round(took, 2), "ratio_to_baseline": round(took / base, 1),
                                   "images": ok, "errors": errors})
        result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
