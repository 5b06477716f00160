"""Web page extraction speed: a gallery page with 30 JPEG photos (1024x768, ~200 KB each), each
also offered as a small srcset candidate, plus og:image, served on 127.0.0.1 by tests/webserver.py.

Prints images/s (fetch + sniff + decode, in page order) for max_concurrency 1, 4 and 8, with no
server latency and with 100 ms per image (a far server), then one rendered run with Chromium if it
is installed. The server runs in the same process, so it shares the CPU with the client.

Then what a page's 1 MB stylesheet of 10,000 rules costs: reading the sheet, matching its selectors against a
3,000-element page (class selectors, most naming classes the page lacks), the worst case (selectors lexbor must
walk the page for, on a 75,000-tag page: the rule cap and the time budget hold), and a whole static reading of the
page with and without the sheet linked, and the page with the sheet inline in a <style> (the cascade against a plain
scan of its url()s).

Then the cost of the pre-parse scan (html_cost.nesting_problem) on two large real-looking pages, as a ratio to
parsing the same page with lexbor alone (the baseline, measured in the same run) and to the whole extract.

Then static pages one by one (`--pages`, 20): article pages of 21 KB of HTML (270 links: navigation, text, a
footer), each showing a logo and 4 photos of 640×480 of its own, read with open_input (fetch, parse, find the images, fetch and
decode them). The baseline, in the same run, does the same downloads and decodes without finding anything: one
httpx client fetching the page and its 5 images by a list made beforehand, Pillow decoding each. CPU time (the
server's threads included, on both sides) per page, the median of `--repeat` passes after one not counted.

    .venv/bin/python benchmarks/bench_web.py [--repeat 3] [--pages 20] [--only gallery sheet scan static]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_web import old_site_page, sloppy_page  # noqa: E402
from webserver import WebServer  # noqa: E402
from selectolax.lexbor import LexborHTMLParser  # noqa: E402
from timing import clocks, ms  # noqa: E402
from timing import timed as best_of  # noqa: E402

from medimg.sources import ImageItem, Limits, open_input, registry  # noqa: E402
from medimg.sources import browser, css, html_cost, media, web  # noqa: E402

N = 30


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = 768, 1024
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    waves = (np.sin(x * rng.uniform(2, 9) + y * rng.uniform(2, 9) + rng.uniform(0, 6, 3)) + 1) * 110
    pixels = np.clip(waves + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def gallery(srv: WebServer, delay: float) -> str:
    body = ['<html><head><title>Cases</title><meta property="og:image" content="/img/p0.jpg"></head><body>']
    for i in range(N):
        data = photo(i)
        srv.add(f"/img/p{i}.jpg", data, "image/jpeg", delay=delay)
        srv.add(f"/img/p{i}-small.jpg", data, "image/jpeg", delay=delay)
        body.append(f'<figure><img src="/img/p{i}-small.jpg" alt="case {i}" '
                    f'srcset="/img/p{i}-small.jpg 320w, /img/p{i}.jpg 1024w"><figcaption>Case {i}</figcaption></figure>')
    return srv.add(f"/gallery-{delay}.html", "\n".join(body + ["</body></html>"]))


def timed(url: str, repeats: int, **limits) -> tuple[int, float, float]:
    times, n = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        items = list(open_input(url, Limits(allow_private=True, total_timeout=60, **limits)))
        times.append(time.perf_counter() - started)
        n = sum(isinstance(i, ImageItem) for i in items)
    return n, min(times), statistics.median(times)


def gallery_speed(repeat: int) -> None:
    with WebServer() as srv:
        for delay in (0.0, 0.1):
            url = gallery(srv, delay)
            for conc in (1, 4, 8):
                n, best, median = timed(url, repeat, max_concurrency=conc)
                print(f"latency {delay * 1000:.0f} ms, max_concurrency={conc}: {n} images, best {best:.2f} s "
                      f"(median {median:.2f} s) = {n / best:.0f} images/s")
        if browser.available() is None:
            n, best, median = timed(gallery(srv, 0.0), max(repeat - 1, 1), max_concurrency=8, render=True)
            print(f"rendered with Chromium: {n} images, best {best:.2f} s (median {median:.2f} s) "
                  f"= {n / best:.1f} images/s")
        else:
            print(f"render skipped: {browser.available()}")


def scan_cost() -> None:
    for name, page in (("sloppy HTML", sloppy_page(4000)), ("old-site HTML", old_site_page(5000))):
        parse = best_of(lambda: LexborHTMLParser(page))
        scan = best_of(lambda: html_cost.nesting_problem(page))
        extract = best_of(lambda: web.extract(page, "http://h/"))
        print(f"{name} ({len(page) / 1e6:.1f} MB, {page.count('<'):,} tags): lexbor parse {parse:.2f} s; "
              f"scan {scan:.2f} s = {scan / parse:.2f}x the parse; whole extract {extract:.2f} s = "
              f"{extract / parse:.2f}x the parse")


def article(srv: WebServer, k: int) -> tuple[str, list[str], int]:
    """An article page with a logo and 4 photos of its own; (its URL, its images' URLs, its HTML's length)."""
    logo = io.BytesIO()
    Image.new("RGB", (160, 40), (20 + k % 200, 60, 120)).save(logo, "PNG")
    images = [srv.add(f"/a{k}/logo.png", logo.getvalue(), "image/png")]
    nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(30))
    body = []
    for i in range(4):
        photo_data = io.BytesIO()
        Image.open(io.BytesIO(photo(1000 + k * 4 + i))).resize((640, 480)).save(photo_data, "JPEG", quality=85)
        images.append(srv.add(f"/a{k}/fig{i}.jpg", photo_data.getvalue(), "image/jpeg"))
        text = " ".join(f"Paragraph {i}.{j} of article {k}, with <a href=/ref/{j}>a link</a> and <em>words</em>."
                        for j in range(60))
        body.append(f'<p>{text}</p><figure><img src="fig{i}.jpg" alt="figure {i}" width="640" height="480">'
                    f"<figcaption>Figure {i}</figcaption></figure>")
    html = (f'<!doctype html><html><head><title>Article {k}</title><meta charset="utf-8"><script>var k = {k};'
            f'</script></head><body><header><img src="logo.png" alt="logo"><nav><ul>{nav}</ul></nav></header>'
            f'<main><h1>Article {k}</h1>{"".join(body)}</main><footer>© the site</footer></body></html>')
    return srv.add(f"/a{k}/index.html", html), images, len(html.encode())


def static_pages(pages: int, repeat: int) -> None:
    import httpx

    limits = Limits(allow_private=True)
    with WebServer() as srv:
        made = [article(srv, k) for k in range(pages)]

        def ours() -> None:
            for url, images, _ in made:
                got = list(open_input(url, limits))
                assert sum(isinstance(i, ImageItem) for i in got) == 4 and len(got) == len(images), got  # logo: small

        def bare() -> None:
            with httpx.Client() as client:
                for url, images, _ in made:
                    client.get(url).raise_for_status()
                    for image in images:
                        Image.open(io.BytesIO(client.get(image).content)).load()

        mine, base = clocks(ours, repeat), clocks(bare, repeat)
    per_page = [c._replace(cpu=c.cpu / pages, wall=c.wall / pages) for c in (base, mine)]
    print(f"static pages: {pages} article pages ({made[0][2] / 1000:.0f} KB of HTML, a logo and 4 photos of 640×480 "
          f"each); per page, CPU time (fastest wall clock)")
    print(f"  baseline, httpx fetching the page and its images, Pillow decoding  {ms(per_page[0])}")
    print(f"  medimg open_input(page URL)                                        {ms(per_page[1])}  "
          f"{mine.cpu / base.cpu:5.2f}x the baseline")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pages", type=int, default=20, help="static article pages read one by one")
    ap.add_argument("--only", nargs="*", choices=("gallery", "sheet", "scan", "static"), default=None)
    args = ap.parse_args()
    parts = set(args.only or ("gallery", "sheet", "scan", "static"))
    registry.plugins()  # import every source once, outside the timings
    if "gallery" in parts:
        gallery_speed(args.repeat)
    if "sheet" in parts:
        stylesheet_cost()
    if "scan" in parts:
        scan_cost()
    if "static" in parts:
        static_pages(args.pages, args.repeat)


def site_sheet(rules: int = 10_000, tags: bool = False) -> str:
    """A site's stylesheet: `rules` rules (about 100 bytes each), every one with a background image; with `tags`,
    selectors without classes, which no cheap test can turn down."""
    out = []
    for i in range(rules):
        sel = f'p > a[title="{i}"]' if tags else f".section-{i % 997} .item-{i}, .alt-{i}:hover"
        out.append(f"{sel} {{ margin: 0 auto; background: url(../img/bg-{i}.jpg) no-repeat }}")
    return "\n".join(out)


def match_all(found: web.Found, sheet: css.Sheet) -> tuple[int, int, int]:
    """(rules that match, rules lexbor was asked about, rules left out by its caps), as web_fetch.Stylesheets matches."""
    matcher = css.Matcher(found.tree, found.classes, found.ids)
    hits = [matcher.matches(prelude) for prelude, _ in sheet.rules]
    return hits.count(True), matcher.asked, hits.count(None)


def stylesheet_cost() -> None:
    text = site_sheet()
    body = "".join(f'<div class="section-{i * 10 % 997}"><p class="item-{i * 10 if i % 50 == 0 else "x"}">t<a '
                   f'href=#>x</a></p></div>' for i in range(1000))  # 3,000 elements; 20 items the sheet names
    html = f'<html><head><link rel="stylesheet" href="/css/site.css"></head><body>{body}</body></html>'
    read = best_of(lambda: css.read_sheet(text, media.media_matches))
    sheet = css.read_sheet(text, media.media_matches)
    found = web.extract(html, "http://h/")
    inline = html.replace('<link rel="stylesheet" href="/css/site.css">', f"<style>{text}</style>")
    scan = best_of(lambda: css.css_urls(text, lambda *_: None))  # the sheet's url()s only, no cascade
    cascade = best_of(lambda: css.cascaded(text, media.media_matches))
    whole = best_of(lambda: web.extract(inline, "http://h/"))
    print(f"the same sheet inline in a <style>: the page's extract {whole:.2f} s, of which the cascade (blocks "
          f"split, overridden declarations and other media left out) {cascade:.3f} s = {cascade / scan:.2f}x a plain "
          f"scan of its url()s ({scan:.3f} s)")
    match = best_of(lambda: match_all(found, sheet))
    hits, asked, cut = match_all(found, sheet)
    print(f"stylesheet {len(text) / 1e6:.1f} MB, {len(sheet.rules):,} rules with an image: read {read:.2f} s; "
          f"matched against a 3,000-element page {match:.2f} s ({asked:,} rules went to lexbor, {hits} match, "
          f"{cut} left out)")
    worst = css.read_sheet(site_sheet(tags=True), media.media_matches)
    big = web.extract(old_site_page(5000).replace("<html>", '<html><link rel="stylesheet" href="/s.css">'), "http://h/")
    started = time.perf_counter()
    hits, asked, cut = match_all(big, worst)
    print(f"worst case, 10,000 selectors with no class or id on a 75,000-tag page: {time.perf_counter() - started:.2f} s "
          f"({asked:,} rules went to lexbor, {hits} match, {cut:,} left out by the {css.MATCH_SECONDS:g} s budget "
          f"or the {css.MAX_RULES:,}-rule cap)")
    with WebServer() as srv:
        srv.add("/css/site.css", text, "text/css")
        for i in range(0, 10_000, 500):
            srv.add(f"/img/bg-{i}.jpg", photo(i), "image/jpeg")
        with_sheet = srv.add("/with.html", html)
        tags = "".join(f'<img src="/img/bg-{i}.jpg">' for i in range(0, 10_000, 500))
        without = srv.add("/without.html", html.replace('<link rel="stylesheet" href="/css/site.css">', tags))
        for name, url in (("the 20 images as <img>, no sheet", without), ("the 20 from the sheet", with_sheet)):
            n, best, median = timed(url, 3, max_concurrency=8)
            print(f"whole static reading {name}: {n} images, best {best:.2f} s (median {median:.2f} s)")


if __name__ == "__main__":
    main()
