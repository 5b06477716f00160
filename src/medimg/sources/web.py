"""Web pages: a URL that is an image, PDF or DICOM file is opened as such; an HTML page yields its images.

Every download goes through `net.Fetcher` (timeouts, byte cap, private-address guard). Images are
fetched concurrently (at most `max_concurrency` at once, a bounded window ahead of the reader) and
yielded in page order; each one is decoded by whichever registered source accepts its bytes. The page's external
stylesheets are fetched in the same pool, and the backgrounds they set for its elements come after its own images
(css.py reads them).

This module walks the page; web_page.py finds its image references and web_fetch.py fetches them and tells
repeats. Their names used elsewhere (tests, html_file.py, browser.py) stay importable from here.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import Callable, Generator, Iterator
from urllib.parse import urlsplit

from . import net
from .base import Blob, Context, ImageItem, Item, ItemError, more
from .html_cost import PageTooDeep
from .prints import picture_print
from .registry import describe
from .svg import open_svg
from .web_fetch import HTML_STARTS, Note, Seen, Stylesheets, _download, _name, _not_an_image, classify, short_url
from .web_page import Candidate, _same, extract

# also importable from here, as before the split (tests, html_file.py, browser.py and benchmarks name them web.NAME)
from .charset import page_charset  # noqa: F401
from .media import media_matches  # noqa: F401
from .web_fetch import PEEK_BYTES, _disposition_name, _sheet_charset, decode_data_uri  # noqa: F401
from .web_page import LINK_DEPTH, LINK_NAMES, MAX_GUESSES, Found, _resolve  # noqa: F401

ACCEPT_PAGE = "text/html,application/xhtml+xml,image/*,application/pdf,application/dicom;q=0.9,*/*;q=0.8"
EMBEDDING = ("iframe", "frame", "object", "embed")  # tags whose URL may be a page of its own: its images are read
MAX_FRAMES = 10  # embedded pages read per page
FRAME_IMAGES = 100  # images read per embedded page


def open_url(url: str, ctx: Context) -> Iterator[Item]:
    """Every image a URL leads to; problems come out as ItemError items, never as exceptions."""
    fetcher = net.Fetcher(ctx.limits, ctx.cancel)
    try:
        at, refreshes = url, 0
        while at is not None:  # a loop, not a call in a call: a long chain under a high max_redirects overflowed
            at = yield from _open_url(url, at, ctx, fetcher, refreshes)
            refreshes += 1
    finally:
        fetcher.close()


def _open_url(url: str, at: str, ctx: Context, fetcher: net.Fetcher, refreshes: int = 0
              ) -> Generator[Item, None, str | None]:
    """The items of the page or file at `at`, reached from `url` (the input) by `refreshes` meta refreshes; returns
    where its meta refresh sends the browser when it is only that (no image of its own), to be read instead."""
    try:
        page = fetcher.fetch(at, accept=ACCEPT_PAGE)
    except net.FetchError as exc:  # a page or image its X-Robots-Tag keeps from use: a note
        yield ItemError(url, "", str(exc), skipped=isinstance(exc, net.RobotsTag))
        return
    blob = Blob(origin=url, data=page.data, name=_name(page.url), content_type=page.content_type)
    kind = classify(blob, page=True)
    if kind == "svg":
        yield from open_svg(blob, ctx)
    elif kind == "blob":
        yield from ctx.open_blob(blob)
    elif kind == "html" and ctx.limits.render:
        try:
            static = extract(page.data, page.url, page.headers.get("content-type"), alternatives=True)
        except Exception:  # the browser's view still counts
            static = []
        yield from _rendered(url, page.url, ctx, fetcher, static)
    elif kind == "html":
        try:
            found = extract(page.data, page.url, page.headers.get("content-type"), refresh=page.headers.get("refresh"))
        except PageTooDeep as exc:
            yield ItemError(url, "", str(exc))
            return
        except Exception as exc:  # never seen with lexbor, but one bad page must not stop a batch
            yield ItemError(url, "", f"could not parse the page: {type(exc).__name__}: {exc}")
            return
        if not found and found.refresh:  # a page that only sends the browser on
            if found.sheets and (yield from _sheets_images(url, page.url, found, ctx, fetcher)):
                return None  # its stylesheets gave it images of its own: it is read, not the page it goes on to
            if refreshes >= ctx.limits.max_redirects:
                yield ItemError(url, "", f"too many meta refreshes (more than {ctx.limits.max_redirects}) "
                                         f"starting at {url}")
                return
            return found.refresh
        yield from fetch_images(url, page.url, found, ctx, fetcher)
    else:
        said = describe(page.data, len(page.data)) if page.data else "an empty body"
        yield ItemError(url, "", f"not a web page or an image: {page.content_type or 'no content type'}, {said}")


def _sheets_images(url: str, page_url: str, found, ctx: Context,
                   fetcher: net.Fetcher) -> Generator[Item, None, bool]:
    """The items of a page with no image of its own but its stylesheets' backgrounds, if those give an image; else
    none of them (its "no images found", a stylesheet that failed) and False: a moved page ("this page has moved")
    links its site's stylesheet, and was read as a page with no images, not followed."""
    held: list[Item] | None = []
    # a client of their own: fetch_images closes the one it is given, and the page it goes on to needs one; with
    # the cookies the page set (a session cookie its images need, as a browser sends it)
    own = net.Fetcher(ctx.limits, ctx.cancel, cookies=fetcher.client.cookies)
    for item in fetch_images(url, page_url, found, ctx, own):
        if held is not None and not isinstance(item, ImageItem):
            held.append(item)
            continue
        if held:
            yield from held
        held = None
        yield item
    return held is None


def _rendered(origin: str, page_url: str, ctx: Context, fetcher: net.Fetcher,
              static: list[Candidate] = ()) -> Iterator[Item]:
    """The images the rendered page loaded, then those the HTML names that it did not load (lazy images no
    script brought in, og:image), so rendering finds at least what the static reading does."""
    from . import browser

    try:
        found = browser.collect(page_url, ctx.limits, ctx.cancel)
    except Exception as exc:  # an unexpected browser failure still ends as one clear error
        said = str(exc) if isinstance(exc, browser.BrowserError) else f"rendering failed: {type(exc).__name__}: {exc}"
        # a render that broke down (a page still busy, a crash) still gives what the HTML names, as without
        # --render; not when the run was given up, or the browser cannot start here at all
        named = bool(static or getattr(static, "sheets", None))  # its stylesheets' images too
        fallback = named and not (ctx.cancel is not None and ctx.cancel.is_set()) and browser.available() is None
        yield ItemError(origin, "", said + ("; the images its HTML names are read without rendering" if fallback
                                            else ""))
        if fallback:  # the Found itself, not a list of it: its stylesheets are read as without --render
            yield from fetch_images(origin, page_url, static, ctx, fetcher)
        return
    for went, reason in getattr(found, "refused", ()):  # the page went on to an address the guard refused
        yield ItemError(origin, "", f"the page went on to {went}: {reason}; the images it showed before are read")
    # a lazy element's placeholder (a 1x1 GIF, a blur) is no picture of its own: the static reading took its lazy
    # URL. One that is also some element's picture is kept.
    pictures = {_same(u) for c in static for u in (c.url, *c.alternatives)}
    held = {_same(u) for c in static for u in c.placeholders} - pictures
    found = [c for c in found if _same(c.url) not in held]
    # an image loaded for no element (a <link rel=preload imagesrcset>'s choice) that is another size of a picture
    # an element shows is that picture again
    shown = {_same(c.url) for c in found if c.tag != "response"}
    element_of = {_same(u): c for c in static for u in (c.url, *c.alternatives)}

    def shown_in_another_size(cand: Candidate) -> bool:
        element = element_of.get(_same(cand.url))
        return element is not None and any(_same(u) in shown for u in (element.url, *element.alternatives))

    found = [c for c in found if c.tag != "response" or not shown_in_another_size(c)]
    loaded = {_same(c.url) for c in found}
    # an element whose picture the browser loaded under any of its URLs (another srcset candidate) is found
    missed = [c for c in static if not any(_same(u) in loaded for u in (c.url, *c.alternatives))]
    fulls = {_same(u): c.full for c in static if c.full for u in (c.url, *c.alternatives)}
    pixels = {_same(u) for c in static if c.pixel for u in (c.url, *c.alternatives)}
    named = {_same(u) for c in found + missed for u in (c.url, *c.alternatives)}
    linked = []  # the full images the links of thumbnails a script made lead to (the static reading never saw them)
    for cand in found:  # a thumbnail the browser showed: the image its link leads to, as the static reading has it
        cand.full = fulls.get(_same(cand.url)) or cand.full
        cand.pixel = cand.tag != "response" and _same(cand.url) in pixels  # and a tracking pixel, a pixel
        if cand.full and _same(cand.full) not in named:
            named.add(_same(cand.full))
            linked.append(Candidate(cand.full, "a", cand.alt))
    # an embedded page's images are among what the browser loaded: it is not read again (a PDF or image still is).
    # A plain list: the stylesheets' images are the browser's too, and are not read again either
    yield from fetch_images(origin, page_url, _fulls_after_thumbnails(found + missed + linked), ctx, fetcher, frames=0)
    yield from guesses_note(origin, len(getattr(static, "passed", ())))


def _fulls_after_thumbnails(found: list[Candidate]) -> list[Candidate]:
    """The list with each full image a shown thumbnail links to moved right after it (the browser never loads
    them, so they come last): read just after its thumbnail, not held from there to the end of the page."""
    links = {}
    for cand in found:
        if cand.tag == "a":
            links.setdefault(_same(cand.url), cand)
    after: dict[int, Candidate] = {}  # id of a thumbnail → the full image that follows it
    moved: set[int] = set()
    for cand in found:
        full = links.get(_same(cand.full)) if cand.full else None
        if full is not None and full is not cand and id(full) not in moved:
            after[id(cand)] = full
            moved.add(id(full))
    out = []
    for cand in found:
        if id(cand) not in moved:
            out.append(cand)
            if id(cand) in after:
                out.append(after[id(cand)])
    return out


def fetch_images(origin: str, page_url: str, found: list[Candidate], ctx: Context,
                 fetcher: net.Fetcher, frames: int = MAX_FRAMES, seen: Seen | None = None,
                 label: str = "") -> Iterator[Item]:
    """Download the candidates concurrently (bounded) and yield their items in page order; the first `frames`
    embedded pages (iframes, objects) are read for their images too. An image the page (or the page embedding
    this one: `seen`, `label` the frame's "iframe #2, ") already gave is a note naming the first."""
    if not found and not getattr(found, "sheets", None):
        yield from _no_images(origin, found)
        return
    limits = ctx.limits
    cap = max(0, limits.max_images_per_input)
    extra = max(0, len(found) - cap)
    page, found = found, list(found[:cap])  # the stylesheets' images are added to this copy
    not_read = ("its images are among those the browser loaded" if frames == 0 else
                f"only the first {frames} embedded pages of a page are read")
    workers = max(1, limits.max_concurrency)
    seen = Seen() if seen is None else seen
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medimg-web")
    queue: deque[tuple[int, Candidate]] = deque()
    todo = iter(enumerate(found, 1))
    at = places(found)
    # the page's stylesheets, fetched first in the same pool; their images come after the page's own
    styles = Stylesheets(page, pool, fetcher, limits) if getattr(page, "sheets", None) else None
    pending = styles
    started: dict[int, Future] = {}  # downloads under way, by index (a thumbnail's full image: with the thumbnail)
    ahead: dict[int, Iterator[Item]] = {}  # items of a full image read before its turn, for its thumbnail
    # thumbnails whose full image comes within reach on the page: fetched only once that image is seen to give none
    # (a 404, a page), else they are notes and never downloaded
    waiting: set[int] = set()
    lock = threading.Lock()  # a waiting thumbnail is started from the thread its full image's download ended in

    def fetch(index: int, cand: Candidate) -> None:
        if seen.written(cand):  # read already (the page's own, in a frame): not fetched again
            started[index] = Future()
            started[index].set_result(None)
        else:
            started[index] = pool.submit(_download, cand, fetcher, limits.max_download_bytes)

    def release(index: int) -> None:
        """Start a waiting thumbnail's download, once."""
        with lock:
            if index in waiting:
                waiting.discard(index)
                fetch(index, found[index - 1])

    def after_full(index: int, future: Future) -> None:
        """Start a waiting thumbnail as soon as its full image's download brings no image's bytes."""
        got = None if future.cancelled() else future.result()
        if isinstance(got, str) or (isinstance(got, Blob) and classify(got) != "blob"):
            try:
                release(index)
            except RuntimeError:  # the page was given up: its pool is shut
                pass

    def start(index: int, cand: Candidate) -> None:
        if index in started or index in waiting:
            return
        j, name = at.get(_same(cand.full), (0, "")) if cand.full else (0, "")
        if not j or j == index or j > index + READ_AHEAD:  # no full image within reach: read as it is
            fetch(index, cand)
            return
        waiting.add(index)
        if j > index:
            start(j, found[j - 1])
        if j in started:
            started[j].add_done_callback(lambda future, i=index: after_full(i, future))
        elif j not in waiting and f"{label}{name}" not in seen.images:  # its turn passed without an image
            release(index)

    def fill() -> None:
        nonlocal todo, pending, extra
        if pending is not None:
            pending.poll()  # a sheet that came: its @imports are fetched now
        while len(queue) < 2 * workers:
            nxt = next(todo, None)
            if nxt is None:
                if pending is None or (queue and not pending.done()):  # waited for only when nothing else is
                    return
                more = pending.candidates({_same(c.url) for c in found}, ctx.cancel)
                room = max(0, cap - len(found))
                extra += max(0, len(more) - room)
                todo = iter(enumerate(more[:room], len(found) + 1))
                found.extend(more[:room])
                pending = None
                continue
            start(*nxt)
            queue.append(nxt)

    def full_image(j: int) -> Iterator[Item]:
        release(j)  # a thumbnail itself: read in full here
        return _emit(origin, page_url, j, found[j - 1], started[j].result(), ctx, True, seen, label)

    try:
        fill()
        while queue:
            index, cand = queue.popleft()
            fill()
            if index in ahead:
                started.pop(index)
                yield from ahead.pop(index)
                continue
            note = thumbnail(index, cand, at, seen, label, ahead, full_image)
            if note is not None:
                with lock:
                    waiting.discard(index)
                started.pop(index, None)
                yield from _emit(origin, page_url, index, cand, note, ctx, True, seen, label)
                continue
            release(index)  # a thumbnail whose full image gave none after all (a decoration, damaged bytes)
            got = started.pop(index).result()
            follow = True
            if cand.tag in EMBEDDING and isinstance(got, Blob) and classify(got, page=True) == "html":
                follow = not_read if frames <= 0 else True
                frames -= 1
            yield from _emit(origin, page_url, index, cand, got, ctx, follow, seen, label)
        if not found:
            yield from _no_images(origin, page)
        if extra:
            yield ItemError(origin, "", f"{extra} more image{'s' * (extra != 1)} on the page "
                                        f"{'was' if extra == 1 else 'were'} not fetched "
                                        f"(max_images_per_input = {cap})", skipped=True)
        yield from guesses_note(origin, len(getattr(page, "passed", ())))
        for note in styles.notes() if styles is not None else ():
            yield ItemError(origin, "", note, skipped=True)
    finally:
        fetcher.close()
        pool.shutdown(wait=False, cancel_futures=True)


def guesses_note(origin: str, more: int) -> Iterator[Item]:
    """A note for the links past MAX_GUESSES that may have led to files (`Found.passed`), when there are."""
    if more:
        yield ItemError(origin, "", f"{more} more link{'s' * (more != 1)} that may lead to files (a download, a "
                                    f"listing's file without a type) not fetched: at most {MAX_GUESSES} a page",
                        skipped=True)


def _no_images(origin: str, found: list[Candidate]) -> Iterator[Item]:
    """A note for a page without images, so it does not vanish from the results."""
    runs = " (the page runs scripts: --render may find images they add)" if getattr(found, "scripts", 0) else ""
    yield ItemError(origin, "", "no images found on the page" + runs, skipped=True)


def places(found: list[Candidate]) -> dict[str, tuple[int, str]]:
    """Each candidate's index and name ("a #20") by its URL, for finding a thumbnail's full image."""
    at: dict[str, tuple[int, str]] = {}
    for index, cand in enumerate(found, 1):
        if cand.tag not in EMBEDDING:
            at.setdefault(_same(cand.url), (index, f"{cand.tag} #{index}"))
    return at


READ_AHEAD = 8  # a thumbnail's full image is read ahead of its turn only this many places later


def thumbnail(index: int, cand: Candidate, at: dict[str, tuple[int, str]], seen: Seen, label: str,
              ahead: dict[int, Iterator[Item]], full_image: Callable[[int], Iterator[Item]]) -> Note | None:
    """A note for a thumbnail whose link led to an image that was read (the full picture is the one reported);
    None keeps the thumbnail (the link led to a page, a 404, a decoration). A full image later on the page is
    read now, up to its first image, by `full_image(j)`: its items wait in `ahead` for their turn."""
    j, name = at.get(_same(cand.full), (0, "")) if cand.full else (0, "")
    if not j or j == index or j > index + READ_AHEAD:  # far later: kept, not held in memory until its turn
        return None
    if j > index and j not in ahead:
        items = full_image(j)
        pulled: list[Item] = []
        for item in items:
            pulled.append(item)
            if isinstance(item, ImageItem):
                break
        ahead[j] = chain(pulled, items)
    return Note(f"thumbnail of {label}{name}") if f"{label}{name}" in seen.images else None


def read_in_order(origin: str, cands: list, cap: int, at, seen, ahead: dict, read) -> Iterator[Item]:
    """The first `cap` candidates' items in page order, through `read(index, note)` (a thumbnail's full image,
    read ahead, comes from `ahead` at its own place), then a note of how many more were not read."""
    for index, cand in enumerate(cands[:cap], 1):
        if index in ahead:
            yield from ahead.pop(index)
        else:
            yield from read(index, thumbnail(index, cand, at, seen, "", ahead, read))
    if len(cands) > cap:
        yield ItemError(origin, "", f"{more(len(cands) - cap, 'image')} not read "
                                    f"(max_images_per_input = {cap})", skipped=True)


def _emit(origin: str, page_url: str, index: int, cand: Candidate, got: Blob | str | None, ctx: Context,
          follow: bool | str = True, seen: Seen | None = None, label: str = "") -> Iterator[Item]:
    """One candidate's items. An embedded page is read for its images when `follow` is True; else `follow`
    says why not. With `seen` (the page's), an image read before on the page is a note naming the first
    (`got` is None when its URL was known to be read before it was fetched)."""
    shown = short_url(cand.url)
    locator = f"{cand.tag} #{index} {shown}"
    first = seen.written(cand) if seen is not None else None
    if first is not None:
        seen.images.add(f"{label}{cand.tag} #{index}")
        yield ItemError(origin, locator, first, skipped=True)
        return
    if got is None:  # never: a candidate is left unfetched only when `seen` knows its URL
        yield ItemError(origin, locator, "not fetched")
        return
    if isinstance(got, str):
        if cand.guess and not isinstance(got, Note):  # nothing said it was an image: a 404 there is no image lost
            got = Note(f"a link that may lead to a file, not read: {got}")
        elif cand.pixel and not isinstance(got, Note):  # a beacon answering 204 or an error: no picture lost
            got = Note(f"a tracking pixel (1x1 in the page), not read: {got}")
        yield ItemError(origin, locator, got, skipped=isinstance(got, Note))
        return
    kind = classify(got, page=cand.tag in EMBEDDING)
    if kind == "html" and cand.tag in EMBEDDING:
        if follow is True:
            yield from _embedded(origin, locator, got, ctx, seen, f"{label}{cand.tag} #{index}, ")
        else:
            yield ItemError(origin, locator, f"an embedded page, not read: {follow}", skipped=True)
        return
    if kind not in ("blob", "svg") and cand.tag in ("object", "embed"):  # a plugin's content (Flash, a widget)
        yield ItemError(origin, locator, f"an embedded object that is not an image ({got.content_type or 'unknown'})",
                        skipped=True)
        return
    if kind == "html" and cand.tag == "a":  # a link named like an image that leads to a page (a wiki's File: page,
        # a forum's viewer): no image of the page is lost, so no error
        yield ItemError(origin, locator, f"a link to a page, not an image ({len(got.data)} bytes of HTML)",
                        skipped=True)
        return
    why = _not_an_image(got, kind) if cand.guess and kind != "svg" else None
    if why:
        yield ItemError(origin, locator, why, skipped=True)
        return
    if kind not in ("blob", "svg"):
        said = f"not an image: got {_what(got, kind)} ({len(got.data)} bytes)"
        yield ItemError(origin, locator, f"a tracking pixel (1x1 in the page), {said}" if cand.pixel else said,
                        skipped=cand.pixel)
        return
    first = seen.fetched(cand, got) if seen is not None else None
    if first is not None:
        seen.images.add(f"{label}{cand.tag} #{index}")
        yield ItemError(origin, locator, first, skipped=True)
        return
    meta = {"url": shown, "alt": cand.alt, "tag": cand.tag, "page": page_url}
    floor = ctx.limits.min_side
    read = False
    for item in open_svg(got, ctx) if kind == "svg" else ctx.open_blob(got):  # an SVG: the pictures it embeds
        where = f"{locator}, {item.locator}" if item.locator else locator
        if isinstance(item, ImageItem):
            if min(item.width, item.height) < floor:  # as in PDFs: a 120x18 wordmark, an 88x31 badge
                yield ItemError(origin, where, f"decoration: {item.width}x{item.height} is below min_side "
                                               f"{floor}", skipped=True)
                continue
            item.origin, item.locator = origin, where
            item.metadata = {**item.metadata, **meta}
            if not read and seen is not None:
                mark = picture_print(item)
                first = seen.resized(cand, mark)
                if first is not None:  # another size or encoding of a picture read before: not read further
                    seen.images.add(f"{label}{cand.tag} #{index}")
                    yield ItemError(origin, locator, first, skipped=True)
                    return
                seen.add(cand, got, f"{label}{cand.tag} #{index}", mark)
                read = True
            yield item
        else:
            yield ItemError(origin, where, item.error, item.skipped)


def _what(got: Blob, kind: str | None) -> str:
    """What a download that is no image holds, in words: an HTML page (an error page sent as image/png too), else
    its Content-Type."""
    if kind == "html":
        return "an HTML page"
    if got.data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower().startswith(HTML_STARTS):
        return f"an HTML page sent as {got.content_type or 'no content type'}"
    return got.content_type or "unknown content"


def _embedded(origin: str, locator: str, page: Blob, ctx: Context, seen: Seen | None = None,
              label: str = "") -> Iterator[Item]:
    """The images of a page embedded in another (an iframe, an object): one level only (its own frames are
    not followed, so a page of frames cannot fan out), fetched as a page's are, under the same limits. An
    image the outer page gave already (`seen`) is a note; `label` names the frame in it ("iframe #2, ")."""
    if urlsplit(page.origin).scheme not in net.SCHEMES:
        yield ItemError(origin, locator, "an embedded page that is not on the web: not read", skipped=True)
        return
    try:
        # not its frames, nor its links that only may lead to files (`guess`): a page of frames does not fan out
        found = [c for c in extract(page.data, page.origin, page.content_type)
                 if c.tag not in EMBEDDING and not c.guess]
    except PageTooDeep as exc:
        yield ItemError(origin, locator, f"embedded {exc}")
        return
    except Exception as exc:  # one odd frame must not stop the page
        yield ItemError(origin, locator, f"could not parse the embedded page: {type(exc).__name__}: {exc}")
        return
    if not found:
        yield ItemError(origin, locator, "an embedded page without images", skipped=True)
        return
    found = found[:FRAME_IMAGES]
    for item in fetch_images(origin, page.origin, found, ctx, net.Fetcher(ctx.limits, ctx.cancel), frames=0,
                             seen=seen, label=label):
        item.locator = f"{locator}, {item.locator}" if item.locator else locator
        yield item
