"""Speed of the PDF source against PyMuPDF's bare image loop, on PDFs given on the command line.

    .venv/bin/python benchmarks/bench_pdf.py a.pdf b.pdf [--max-pages N] [--repeat R] [--scans N] [--journal N]
        [--threads T]

--scans N adds a PDF built in memory: N pages, each one 1700x2200 grayscale JPEG "scan" (150 dpi A4-ish)
plus one 800x600 colour photo laid over it on every other page, the case of scanned hospital paperwork (a scan
that a photo covers in part is rendered as seen).
--journal N adds N journal-like PDFs built in memory, timed together: 8 pages each of two text columns and 2-6
figures, a vector chart on every other page, the other figures 8-bit RGB photos (about a quarter Flate, the
rest JPEG) of which some share their pixel size with another on the same page.
(PyMuPDF's extract_image re-encodes a Flate image as PNG, so on these the bare baseline is no floor.)

For each PDF (or set of PDFs): what the extractor found (embedded images, rendered figures, skipped decorations,
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


def journal_pdfs(n: int) -> list[bytes]:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:2000, 0:2000] / 2000
    texture = np.stack([np.sin(9 * xx + c) * np.cos(7 * yy - c) for c in range(3)], -1)
    texture = np.clip(128 + 90 * texture + rng.normal(0, 6, texture.shape), 0, 255).astype(np.uint8)
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
            "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris. ") * 6
    pdfs = []
    for _ in range(n):
        doc = pymupdf.open()
        for p in range(8):
            page = doc.new_page(width=595, height=842)
            for col in (0, 1):
                page.insert_textbox(pymupdf.Rect(40 + col * 265, 40, 290 + col * 265, 800), text, fontsize=8)
            sizes = [(int(w), int(w * 3 / 4)) for w in rng.choice([480, 720, 960, 1200], 2, replace=False)]
            count = int(rng.integers(2, 7))
            for i in range(count):
                r = pymupdf.Rect(40 + i % 2 * 265, 60 + i // 2 * 250, 290 + i % 2 * 265, 260 + i // 2 * 250)
                page.draw_rect(r, color=None, fill=(1, 1, 1))
                if i == count - 1 and p % 2 == 0:
                    _chart(page, r, rng)
                    continue
                w, h = sizes[int(rng.integers(2))]  # two sizes a page: same-size images on most pages
                y, x = rng.integers(0, 2000 - h), rng.integers(0, 2000 - w)
                img, buf = Image.fromarray(texture[y:y + h, x:x + w]), io.BytesIO()
                img.save(buf, "PNG") if rng.random() < 0.25 else img.save(buf, "JPEG", quality=85)
                page.insert_image(r, stream=buf.getvalue())  # a PNG is stored as a plain Flate image
        pdfs.append(doc.tobytes(garbage=3, deflate=True))
    return pdfs


def _chart(page: pymupdf.Page, r: pymupdf.Rect, rng: np.random.Generator) -> None:
    page.draw_rect(r, color=(0, 0, 0), width=0.5)
    x0, y0, x1, y1 = r.x0 + 20, r.y0 + 10, r.x1 - 10, r.y1 - 20
    page.draw_line((x0, y1), (x1, y1))
    page.draw_line((x0, y0), (x0, y1))
    for c in range(3):
        ys = y1 - (0.5 + 0.4 * np.sin(np.arange(200) / 15 + c) * rng.uniform(0.8, 1, 200)) * (y1 - y0)
        page.draw_polyline([pymupdf.Point(x0 + i * (x1 - x0) / 199, v) for i, v in enumerate(ys)],
                           color=(c / 3, 0.3, 1 - c / 3), width=0.8)
    for i in range(5):
        page.insert_text((r.x0 + 2, y1 - i * (y1 - y0) / 4), f"{i * 25}", fontsize=6)


def threads_run(datas: list[bytes], threads: int, decode_side: int | None) -> float:
    """Seconds to extract the PDFs `datas` by `threads` threads at once (MuPDF steps take turns under
    the source's lock; Pillow's JPEG decodes and zlib's inflating overlap)."""
    from concurrent.futures import ThreadPoolExecutor

    limits = Limits(max_images_per_input=1_000_000, decode_side=decode_side)

    def one(k: int) -> int:
        return sum(isinstance(i, ImageItem) for i in pdf.open_pdf(Blob(f"{k}.pdf", datas[k]), Context(limits)))

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(len(datas))))
    return time.perf_counter() - start


def best(run, datas: list[bytes], repeat: int) -> dict:
    """The fastest of `repeat` passes of `run(data)` over every PDF, its counts and times summed."""
    def once() -> dict:
        runs = [run(data) for data in datas]
        return {key: sum(r[key] for r in runs) for key in runs[0]}
    return min((once() for _ in range(repeat)), key=lambda r: r["seconds"])


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--scans", type=int, default=0, help="also run on an N-page scanned PDF built in memory")
    parser.add_argument("--journal", type=int, default=0,
                        help="also run on N journal-like 8-page PDFs built in memory, timed together")
    parser.add_argument("--max-pages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs")
    parser.add_argument("--threads", type=int, default=0,
                        help="also extract 4 copies of each PDF (the journal PDFs once) by this many threads at "
                             "once, against one thread")
    args = parser.parse_args()
    inputs = [(path.name, None, path) for path in args.pdfs]
    if args.scans:
        inputs.append((f"synthetic-scans-{args.scans}.pdf", [scanned_pdf(args.scans)], None))
    if args.journal:
        inputs.append((f"synthetic-journal: {args.journal} PDFs", journal_pdfs(args.journal), None))
    for name, datas, path in inputs:
        datas = datas if datas is not None else [path.read_bytes()]
        counts = []
        for data in datas:
            with pymupdf.open(stream=data, filetype="pdf") as doc:
                counts.append(doc.page_count)
        total_pages, pages = sum(counts), sum(min(c, args.max_pages) for c in counts)
        ours = best(lambda d: run_extractor(d, name, args.max_pages), datas, args.repeat)
        base = best(lambda d: run_baseline(d, args.max_pages), datas, args.repeat)
        dec = best(lambda d: run_baseline(d, args.max_pages, decode=True), datas, args.repeat)
        found = ours["embedded"] + ours["rendered"]
        print(f"{name}: {pages} of {total_pages} pages, {sum(map(len, datas)) / 1e6:.1f} MB")
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
            work, what_of = (datas, f"{len(datas)} PDFs") if len(datas) > 1 else (datas * 4, "4 copies")
            for side, what in ((None, "full decode"), (256, "decode_side 256, as classify runs")):
                one = min(threads_run(work, 1, side) for _ in range(args.repeat))
                many = min(threads_run(work, args.threads, side) for _ in range(args.repeat))
                floor = base["seconds"] * len(work) / len(datas)  # the bare baseline over the same work
                print(f"  {what_of}, {what}: 1 thread {one:.2f} s, {args.threads} threads {many:.2f} s, "
                      f"speed-up {one / many:.2f}x; ratio to baseline {one / floor:.1f}x (1 thread), "
                      f"{many / floor:.1f}x ({args.threads} threads)")


if __name__ == "__main__":
    main()
