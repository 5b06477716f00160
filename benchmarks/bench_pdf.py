"""Speed of the PDF source against PyMuPDF's bare image loop, on PDFs given on the command line.

    .venv/bin/python benchmarks/bench_pdf.py a.pdf b.pdf [--max-pages N] [--repeat R] [--scans N] [--threads T]

--scans N adds a PDF built in memory: N pages, each one 1700x2200 grayscale JPEG "scan" (150 dpi A4-ish)
plus one 800x600 colour photo on every other page, the case of scanned hospital paperwork.

For each PDF: what the extractor found (embedded images, rendered figures, skipped decorations,
errors), wall and CPU time, images/s and pages/s (wall); then the baseline over the same pages (every xref from
page.get_images() passed to doc.extract_image, each xref once) and the time ratio. The baseline only
copies the stored bytes (no decoding, no positions, no figures), so it is a floor, not a rival; a
second baseline also decodes those bytes with Pillow, which is the least a caller must do for pixels.
"""

from __future__ import annotations

import argparse
import io
import re
import time
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def run_extractor(data: bytes, name: str, max_pages: int) -> dict:
    counts = {"embedded": 0, "rendered": 0, "skipped": 0, "errors": 0}
    limits = Limits(max_pdf_pages=max_pages, max_images_per_input=1_000_000)
    start, cpu = time.perf_counter(), time.process_time()
    for item in pdf.open_pdf(Blob(name, data), Context(limits)):
        if isinstance(item, ImageItem):
            counts["rendered" if item.metadata.get("rendered") else "embedded"] += 1
        elif item.skipped:
            match = re.match(r"skipped (\d+) image", item.error)
            counts["skipped"] += int(match.group(1)) if match else 0
        else:
            counts["errors"] += 1
    counts["seconds"] = time.perf_counter() - start
    counts["cpu"] = time.process_time() - cpu
    return counts


def run_baseline(data: bytes, max_pages: int, decode: bool = False) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    doc = pymupdf.open(stream=data, filetype="pdf")
    seen, n_bytes = set(), 0
    for pno in range(min(doc.page_count, max_pages)):
        for item in doc[pno].get_images():
            if item[0] in seen:
                continue
            seen.add(item[0])
            try:
                raw = doc.extract_image(item[0])["image"]
                n_bytes += len(raw)
                if decode:  # what a caller needs next: pixels (no smask, no Decode arrays)
                    Image.open(io.BytesIO(raw)).load()
            except Exception:
                pass
    doc.close()
    return {"images": len(seen), "bytes": n_bytes, "seconds": time.perf_counter() - start,
            "cpu": time.process_time() - cpu}


def scanned_pdf(pages: int) -> bytes:
    rng = np.random.default_rng(0)
    doc = pymupdf.open()
    for k in range(pages):
        scan = np.full((2200, 1700), 235, dtype=np.uint8)
        for line in range(60):
            y = 150 + 32 * line
            scan[y:y + 14, 150:1550] = rng.integers(0, 120, size=(14, 1400), dtype=np.uint8)
        page = doc.new_page()
        page.insert_image(page.rect, stream=_jpeg(Image.fromarray(scan)))
        if k % 2:
            photo = Image.fromarray(rng.integers(0, 255, size=(600, 800, 3), dtype=np.uint8))
            page.insert_image(pymupdf.Rect(100, 400, 500, 700), stream=_jpeg(photo))
    return doc.tobytes()


def threads_run(data: bytes, copies: int, threads: int, decode_side: int | None) -> float:
    """Seconds to extract `copies` of one PDF by `threads` threads at once (MuPDF steps take turns under
    the source's lock; Pillow's JPEG decodes overlap)."""
    from concurrent.futures import ThreadPoolExecutor

    limits = Limits(max_images_per_input=1_000_000, decode_side=decode_side)

    def one(k: int) -> int:
        return sum(isinstance(i, ImageItem) for i in pdf.open_pdf(Blob(f"{k}.pdf", data), Context(limits)))

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(copies)))
    return time.perf_counter() - start


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--scans", type=int, default=0, help="also run on an N-page scanned PDF built in memory")
    parser.add_argument("--max-pages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs")
    parser.add_argument("--threads", type=int, default=0,
                        help="also extract 4 copies of each PDF by this many threads at once, against one thread")
    args = parser.parse_args()
    inputs = [(path, None) for path in args.pdfs]
    if args.scans:
        inputs.append((Path(f"synthetic-scans-{args.scans}.pdf"), scanned_pdf(args.scans)))
    for path, data in inputs:
        data = data if data is not None else path.read_bytes()
        doc = pymupdf.open(stream=data, filetype="pdf")
        total_pages = doc.page_count
        doc.close()
        pages = min(total_pages, args.max_pages)
        ours = min((run_extractor(data, str(path), args.max_pages) for _ in range(args.repeat)),
                   key=lambda r: r["seconds"])
        base = min((run_baseline(data, args.max_pages) for _ in range(args.repeat)), key=lambda r: r["seconds"])
        dec = min((run_baseline(data, args.max_pages, decode=True) for _ in range(args.repeat)),
                  key=lambda r: r["seconds"])
        found = ours["embedded"] + ours["rendered"]
        print(f"{path.name}: {pages} of {total_pages} pages, {len(data) / 1e6:.1f} MB")
        print(f"  medimg pdf: {ours['embedded']} embedded, {ours['rendered']} rendered figures, "
              f"{ours['skipped']} skipped decorations, {ours['errors']} errors in {ours['seconds']:.2f} s "
              f"({ours['cpu']:.2f} s CPU) "
              f"= {found / ours['seconds']:.1f} images/s, {pages / ours['seconds']:.1f} pages/s")
        print(f"  baseline get_images+extract_image: {base['images']} xrefs, {base['bytes'] / 1e6:.1f} MB "
              f"in {base['seconds']:.2f} s ({base['cpu']:.2f} s CPU) = {base['images'] / base['seconds']:.1f} images/s, "
              f"{pages / base['seconds']:.1f} pages/s")
        print(f"  baseline + Pillow decode: {dec['seconds']:.2f} s ({dec['cpu']:.2f} s CPU) "
              f"= {dec['images'] / dec['seconds']:.1f} images/s")
        print(f"  time ratio medimg/(baseline + decode): {ours['seconds'] / dec['seconds']:.1f}x wall, "
              f"{ours['cpu'] / max(dec['cpu'], 1e-9):.1f}x CPU")
        print(f"  time ratio medimg/baseline: {ours['seconds'] / base['seconds']:.1f}x wall, "
              f"{ours['cpu'] / max(base['cpu'], 1e-9):.1f}x CPU")
        if args.threads > 1:
            for side, what in ((None, "full decode"), (256, "decode_side 256, as classify runs")):
                one = min(threads_run(data, 4, 1, side) for _ in range(args.repeat))
                many = min(threads_run(data, 4, args.threads, side) for _ in range(args.repeat))
                print(f"  4 copies, {what}: 1 thread {one:.2f} s, {args.threads} threads {many:.2f} s, "
                      f"speed-up {one / many:.2f}x")


if __name__ == "__main__":
    main()
