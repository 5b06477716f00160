"""Speed of the PDF source against PyMuPDF's bare image loop, on PDFs given on the command line.

    .venv/bin/python benchmarks/bench_pdf.py a.pdf b.pdf [--max-pages N] [--repeat R]

For each PDF: what the extractor found (embedded images, rendered figures, skipped decorations,
errors), wall time, images/s and pages/s; then the baseline over the same pages (every xref from
page.get_images() passed to doc.extract_image, each xref once) and the time ratio. The baseline only
copies the stored bytes (no decoding, no positions, no figures), so it is a floor, not a rival.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import pymupdf

from medimg.sources import pdf
from medimg.sources.base import Blob, Context, ImageItem, Limits


def run_extractor(data: bytes, name: str, max_pages: int) -> dict:
    counts = {"embedded": 0, "rendered": 0, "skipped": 0, "errors": 0}
    limits = Limits(max_pdf_pages=max_pages, max_images_per_input=1_000_000)
    start = time.perf_counter()
    for item in pdf.open_pdf(Blob(name, data), Context(limits)):
        if isinstance(item, ImageItem):
            counts["rendered" if item.metadata.get("rendered") else "embedded"] += 1
        elif item.skipped:
            match = re.match(r"skipped (\d+) image", item.error)
            counts["skipped"] += int(match.group(1)) if match else 0
        else:
            counts["errors"] += 1
    counts["seconds"] = time.perf_counter() - start
    return counts


def run_baseline(data: bytes, max_pages: int) -> dict:
    start = time.perf_counter()
    doc = pymupdf.open(stream=data, filetype="pdf")
    seen, n_bytes = set(), 0
    for pno in range(min(doc.page_count, max_pages)):
        for item in doc[pno].get_images():
            if item[0] in seen:
                continue
            seen.add(item[0])
            try:
                n_bytes += len(doc.extract_image(item[0])["image"])
            except Exception:
                pass
    doc.close()
    return {"images": len(seen), "bytes": n_bytes, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="+", type=Path)
    parser.add_argument("--max-pages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs")
    args = parser.parse_args()
    for path in args.pdfs:
        data = path.read_bytes()
        doc = pymupdf.open(stream=data, filetype="pdf")
        total_pages = doc.page_count
        doc.close()
        pages = min(total_pages, args.max_pages)
        ours = min((run_extractor(data, str(path), args.max_pages) for _ in range(args.repeat)),
                   key=lambda r: r["seconds"])
        base = min((run_baseline(data, args.max_pages) for _ in range(args.repeat)), key=lambda r: r["seconds"])
        found = ours["embedded"] + ours["rendered"]
        print(f"{path.name}: {pages} of {total_pages} pages, {len(data) / 1e6:.1f} MB")
        print(f"  medimg pdf: {ours['embedded']} embedded, {ours['rendered']} rendered figures, "
              f"{ours['skipped']} skipped decorations, {ours['errors']} errors in {ours['seconds']:.2f} s "
              f"= {found / ours['seconds']:.1f} images/s, {pages / ours['seconds']:.1f} pages/s")
        print(f"  baseline get_images+extract_image: {base['images']} xrefs, {base['bytes'] / 1e6:.1f} MB "
              f"in {base['seconds']:.2f} s = {base['images'] / base['seconds']:.1f} images/s, "
              f"{pages / base['seconds']:.1f} pages/s")
        print(f"  time ratio medimg/baseline: {ours['seconds'] / base['seconds']:.1f}x")


if __name__ == "__main__":
    main()
