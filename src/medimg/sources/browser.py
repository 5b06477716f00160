"""Render a page in headless Chromium (Playwright), scroll to trigger lazy loading, collect the images it loaded.

Playwright is an optional extra and is imported only here, only when rendering. The browser is
Debian's /usr/bin/chromium (`playwright install` is not needed). Every request of the page, its
frames and popups passes `RouteGuard`, which aborts those whose host resolves to a blocked address
unless `allow_private`. The guard then makes each request itself through `net.Fetcher` (which
connects to the very address it checked, so DNS rebinding cannot steer it elsewhere, and caps its
bytes and time), follows redirects hop by hop, checking each (a site's cookies and credentials are not sent on to
another site), and hands the browser the response.
The page itself is always fetched by the guard (with `allow_private` too): one that names no charset but is
UTF-8 is handed over as UTF-8, as the static reading takes it. WebSockets and service workers are blocked;
each render uses a fresh, temporary profile, and is killed when its processes take over `max_browser_memory`
(a page's script may allocate without end, and nothing else stops it short of the machine's memory).
With the guard on, Chromium's own network goes to a proxy that is not there, so what routing never sees
(speculation-rules prefetch and prerender, preconnects) reaches nothing; WebRTC is removed from every page before it runs.
Small scripts run before the page's own note what it does that the finished page no longer shows: its timers still
to run, the pictures each <img> showed before, where a blob: URL's bytes came from, which canvases it drew on.
A file the page goes on to (a meta refresh's or a script's image or PDF) is read, and so are the pictures its frames
name but never loaded (lazy, below a frame's own fold), as the static reading reads them.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urldefrag, urljoin, urlsplit

from . import net
from ..scratch import work_folder
from .base import Blob, Limits
from .charset import known_codec, page_charset
from .media import VIEWPORT
from .web import FRAME_IMAGES, LINK_NAMES, MAX_FRAMES, Candidate, classify, decode_data_uri

# the Chromium Playwright drives: MEDIMG_CHROMIUM when set, else the first of Debian's, Fedora's and RHEL's (EPEL),
# and Ubuntu's snap that is there (Debian's when none is)
CHROMIUM_PLACES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium")


def _chromium() -> str:
    named = os.environ.get("MEDIMG_CHROMIUM", "").strip()
    if named:
        return os.path.expanduser(named)
    return next((p for p in CHROMIUM_PLACES if os.access(p, os.X_OK)), CHROMIUM_PLACES[0])


CHROMIUM = _chromium()
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--webrtc-ip-handling-policy=disable_non_proxied_udp"]
# With the guard on, Chromium's own network leads nowhere: RouteGuard makes every request the page may make,
# and what Playwright's routing never sees (speculation-rules prefetch and prerender, preconnects) fails
NO_NETWORK = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
NO_WEBRTC = """for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel", "RTCIceCandidate"])
  { try { delete window[name]; } catch (e) {} }"""  # STUN/TURN packets would go out past every guard (and the
# flag above keeps them in where this script does not reach: sandboxed and about:blank frames)
MAX_SCROLLS = 40
MAX_GOING_ON = 5  # documents a page may go on to (a meta refresh, a redirect at load) while it is read
SCROLL_PAUSE_MS = 100
LOAD_SHARE = 0.5  # of the page's time left once it has come, the most spent waiting for its `load`
SETTLE_MS = 3000  # after load, and at the bottom, the longest wait for the page to go quiet
QUIET_MS = 500  # quiet: no request in flight or started, no timer of the page's due, for this long
# A page's timers (setTimeout, up to SETTLE_MS ahead) are tracked: an app that fetches its gallery a second after
# load, or a scroll handler that waits before it fetches, is still busy to the wait below
TIMERS = """(() => {
  const due = new Map(), set = window.setTimeout, clear = window.clearTimeout, clearEvery = window.clearInterval;
  window.setTimeout = function (handler, ms, ...args) {
    const wait = Number(ms) || 0;
    if (typeof handler !== "function" || !(wait <= %d)) return set.call(window, handler, ms, ...args);
    const id = set.call(window, function () { due.delete(id); return handler.apply(this, args); }, wait);
    due.set(id, performance.now() + wait);
    return id;
  };
  window.clearTimeout = function (id) { due.delete(id); return clear.call(window, id); };
  window.clearInterval = function (id) { due.delete(id); return clearEvery.call(window, id); };
  Object.defineProperty(window, "__medimgSoon", {value: () => {
    let last = 0; for (const at of due.values()) last = Math.max(last, at);
    return Math.max(0, last - performance.now()); }});
})();""" % SETTLE_MS
# the URLs each <img> has shown: a script that swaps a small picture for a large one (a blur-up), or a slideshow,
# leaves the earlier ones behind it
SHOWN = """(() => {
  const shown = new WeakMap();
  document.addEventListener("load", (e) => {
    const img = e.target;
    if (!(img instanceof HTMLImageElement) || !img.currentSrc) return;
    if (!shown.has(img)) shown.set(img, new Set());
    shown.get(img).add(img.currentSrc);
  }, true);
  Object.defineProperty(window, "__medimgShown", {value: (img) => [...(shown.get(img) || [])]});
})();"""
# the URL each blob: URL's bytes were fetched from (fetch or XHR, then URL.createObjectURL): a picture a script
# loads so (with its own headers, say) is read under that URL, with the bytes the page had
BLOBS = """(() => {
  const from = new WeakMap(), made = new Map();
  const keep = (blob, url) => { if (blob instanceof Blob && url) from.set(blob, url); return blob; };
  const blob = Response.prototype.blob;
  Response.prototype.blob = function () { const url = this.url; return blob.call(this).then((b) => keep(b, url)); };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    this.addEventListener("load", () => { if (this.responseType === "blob") keep(this.response, this.responseURL); });
    return send.apply(this, args);
  };
  const create = URL.createObjectURL;
  URL.createObjectURL = function (obj) {
    const url = create.call(URL, obj);
    if (from.has(obj)) made.set(url, from.get(obj));
    return url;
  };
  Object.defineProperty(window, "__medimgFrom", {value: (url) => made.get(url) || ""});
})();"""
MAX_BLOBS = 50  # blob: pictures read from one page
# the <canvas>es a script draws on in 2D: one it draws from shapes and text only (a chart, an ECG trace) is a
# picture found nowhere else; one it puts a picture in (drawImage: a viewer showing a fetched image) is not read
CANVASES = """(() => {
  const drawn = new WeakMap();
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (kind, ...args) {
    const context = getContext.call(this, kind, ...args);
    if (context && kind === "2d" && !drawn.has(this)) drawn.set(this, "shapes");
    return context;
  };
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of ["drawImage", "putImageData", "createPattern"]) {
    const real = proto[name];
    proto[name] = function (...args) {
      if (this.canvas) drawn.set(this.canvas, "picture");
      return real.apply(this, args);
    };
  }
  Object.defineProperty(window, "__medimgCanvas", {value: (canvas) => drawn.get(canvas) || ""});
})();"""
MAX_CANVASES = 20  # drawn canvases read from one page
# what a script fetches (fetch, XHR) with these types is a picture it shows (drawn to a canvas, a DICOM viewer)
FETCHED_IMAGES = ("image/", "application/dicom")
# how often a render's memory is read: a page's script can take ~3 GB a second (typed arrays), so in a tick it
# goes at most ~0.15 GB past max_browser_memory (at 0.5 s, 1 GB)
MEMORY_TICK = 0.05
SOCKET_PATH_MAX = 108  # bytes of a Unix socket's path (sun_path), its final NUL included
WATCHDOG_GRACE = 8.0  # seconds past total_timeout before a stuck browser is killed
_slots = threading.BoundedSemaphore(2)  # at most two browsers at once in one process


def _fresh_slots() -> None:  # in a forked child: the parent's browsers are not its own
    global _slots
    _slots = threading.BoundedSemaphore(2)


os.register_at_fork(after_in_child=_fresh_slots)

_COLLECT_JS = """async ([cap, most, canvasMost, pixels]) => {
  const out = [], sent = new Set();
  // each URL once (a script's data: URL on 300 elements is 300 copies of its bytes to hand back)
  const put = (entry) => {
    const key = (entry.tag === "replaced" ? "r" : "c") + entry.url;
    if (!sent.has(key)) { sent.add(key); out.push(entry); }
  };
  let blobs = 0, left = 4 * cap;  // bytes of blobs and canvases handed back in all
  // a blob: URL's bytes (a picture a script made, or fetched and handed over so), read while the page holds them
  const read = async (url) => {
    if (blobs >= most) return null;
    blobs++;
    try {
      const blob = await (await fetch(url)).blob();
      if (blob.size > Math.min(cap, left)) return null;
      left -= blob.size;
      return await new Promise((done) => {
        const reader = new FileReader(); reader.onload = () => done(reader.result); reader.onerror = () => done(null);
        reader.readAsDataURL(blob); });
    } catch (e) { return null; }
  };
  // the picture an <img> shows, as PNG: one whose blob: URL the script revoked once it had loaded (as it is told to)
  const shown = (img) => {
    try {
      const w = img.naturalWidth, h = img.naturalHeight;
      if (!w || !h || w * h > pixels) return null;
      const c = document.createElement("canvas"); c.width = w; c.height = h;
      c.getContext("2d").drawImage(img, 0, 0);
      const url = c.toDataURL("image/png");
      if (url.length * 3 / 4 > Math.min(cap, left)) return null;
      left -= url.length * 3 / 4;
      return url;
    } catch (e) { return null; }
  };
  // Chromium's own error page (the page went on to an address that failed or was refused): its pictures (the
  // dinosaur's sprites) are none of the page's; what the page loaded before is among the responses
  if (document.location.protocol === "chrome-error:") return out;
  // the page's elements, each open shadow root's (a web component's) right after its host
  const els = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) { els.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  for (const img of els) {
    // an inline SVG's <image>, an image input: in their place and under their tags, as the static reading has them
    const svg = img instanceof SVGImageElement, input = img instanceof HTMLInputElement && img.type === "image";
    if (svg || input) {
      const href = svg ? img.href.baseVal : img.getAttribute("src");
      try {
        if (href && href.trim()) put({url: new URL(href.trim(), document.baseURI).href,
                                      alt: img.getAttribute("alt") || "", tag: svg ? "svg" : "input"});
      } catch (e) {}
      continue;
    }
    if (!(img instanceof HTMLImageElement)) continue;  // not its tagName: "img" in an XHTML page
    const src = img.currentSrc || img.src;
    // no source at all, or src="" (which browsers resolve to the page)
    if (!src || src === document.location.href) continue;
    // one still loading is kept if the browser asked for it (a slow server; not a lazy one never reached)
    if (!img.complete) { put({url: src, alt: img.alt || "", tag: "img", pending: true}); continue; }
    // a broken one (complete, no pixels) is listed too: fetched again, it gets its HTTP error as a row
    const inPicture = img.parentElement instanceof HTMLPictureElement;
    const entry = {url: src, alt: img.alt || "", tag: inPicture ? "picture" : "img"};
    const link = img.closest("a[href]");  // a thumbnail's link: the full image, as the static reading takes it
    if (link && /^https?:/i.test(link.href)) entry.link = link.href;
    if (/^blob:/i.test(src) && !sent.has("c" + src)) {
      entry.from = window.__medimgFrom ? window.__medimgFrom(src) : "";
      const within = blobs < most;
      entry.data = await read(src);
      if (!entry.data && !entry.from && within) entry.data = shown(img);  // one fetched is fetched again
    }
    put(entry);
    // what a script showed in it before (a small or blurred version, a slideshow's earlier slides), right after it
    for (const was of (window.__medimgShown ? window.__medimgShown(img) : []))
      if (was !== src) put({url: was, alt: img.alt || "", tag: "replaced"});
  }
  for (const v of els) {  // a video's poster, then the clip (not a blob: stream)
    if (!(v instanceof HTMLVideoElement)) continue;
    if (v.poster) put({url: v.poster, alt: "", tag: "video"});
    const clip = v.currentSrc || v.src || (v.querySelector("source[src]") || {}).src;
    if (clip && /^https?:/i.test(clip)) put({url: clip, alt: "", tag: "video"});
  }
  let canvases = 0;
  for (const c of els) {  // a canvas drawn from shapes only, as it shows now (not blank, not hidden, not tiny)
    if (!(c instanceof HTMLCanvasElement) || canvases >= canvasMost || !window.__medimgCanvas) continue;
    if (window.__medimgCanvas(c) !== "shapes" || c.width < 32 || c.height < 32 || c.width * c.height > pixels
        || !c.getClientRects().length) continue;
    try {
      const probe = document.createElement("canvas"); probe.width = probe.height = 16;
      const g = probe.getContext("2d"); g.drawImage(c, 0, 0, 16, 16);
      if (!g.getImageData(0, 0, 16, 16).data.some((v, k) => k % 4 === 3 && v > 0)) continue;  // nothing drawn
      const url = c.toDataURL("image/png");
      if (url.length * 3 / 4 > Math.min(cap, left)) continue;
      canvases++;
      left -= url.length * 3 / 4;
      put({url, alt: c.getAttribute("aria-label") || c.textContent.trim().slice(0, 200), tag: "canvas"});
    } catch (e) {}
  }
  for (let i = 0; i < els.length && i < 20000; i++) {
    const bg = getComputedStyle(els[i]).backgroundImage;
    if (!bg || bg === "none") continue;
    for (const m of bg.matchAll(/url\\(\\s*["']?(.*?)["']?\\s*\\)/g)) {
      const entry = {url: m[1], alt: "", tag: "style"};
      if (/^blob:/i.test(entry.url) && !sent.has("c" + entry.url)) {  // read as an <img>'s (no element to draw)
        entry.from = window.__medimgFrom ? window.__medimgFrom(entry.url) : "";
        entry.data = await read(entry.url);
      }
      put(entry);
    }
  }
  return out;
}"""

# the pictures a frame's <img>s have not loaded (lazy, below the frame's own fold, which nothing scrolls): the static
# reading of the frame, which rendering stands in for, would have read them
_FRAME_LAZY_JS = """(most) => {
  const out = [];
  for (const img of document.querySelectorAll("img")) {
    if (out.length >= most) break;
    const src = img.currentSrc || img.src;
    if (!img.complete && src && src !== document.location.href) out.push({url: src, alt: img.alt || "", tag: "img"});
  }
  return out;
}"""

# One step down the page (move), or whether it is at its bottom (not move): the window, then, once it is at its bottom
# or cannot scroll (an app whose panel scrolls, the page itself not), the largest panel that still can
_SCROLL_JS = """(move) => {
  const doc = document.scrollingElement || document.documentElement;
  // the window, even with overflow hidden (a cookie dialog's open): a script still scrolls it, unless it did not move
  if (window.innerHeight + window.scrollY < doc.scrollHeight - 2 && !window.__medimgStuck) {
    if (!move) return false;
    const was = window.scrollY;
    window.scrollBy(0, window.innerHeight);
    if (window.scrollY !== was) return false;
    Object.defineProperty(window, "__medimgStuck", {value: true});
  }
  let panel = null, area = 0, seen = 0;
  for (const el of document.body ? document.body.querySelectorAll("*") : []) {
    if (++seen > 20000) break;
    if (el.clientHeight < 200 || el.clientWidth < 200) continue;
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 2) continue;
    if (!["auto", "scroll", "overlay"].includes(getComputedStyle(el).overflowY)) continue;
    if (el.clientWidth * el.clientHeight > area) { panel = el; area = el.clientWidth * el.clientHeight; }
  }
  if (!panel) return true;
  if (move) panel.scrollBy(0, panel.clientHeight);
  return false;
}"""  # the bottom is looked for a pause after the last step: a page may have grown when it was reached


class BrowserError(Exception):
    """Rendering is unavailable or the page could not be rendered; the message says why."""


class RouteGuard:
    """Decides, per request URL, whether the browser may make it (resolving each host once), and makes the
    allowed ones itself through `net.Fetcher`, which connects to the address it checked."""

    def __init__(self, allow_private: bool, timeout: float = 5.0, max_redirects: int = 5,
                 fetch_timeout: float = 20.0, limits: Limits | None = None, cancel=None):
        self.allow_private = allow_private
        self.timeout = timeout  # for DNS lookups
        self.max_redirects = max_redirects
        base = limits or Limits()
        # each request the page makes: the page's byte cap, and at most fetch_timeout seconds
        self.limits = dataclasses.replace(base, allow_private=allow_private, max_redirects=0,
                                          total_timeout=min(base.total_timeout, fetch_timeout))
        self._fetcher: net.Fetcher | None = None
        self._cancel = cancel  # the run's: once set, requests in progress stop
        self._pool: ThreadPoolExecutor | None = None  # requests are made here, several at once
        # (url, resource type, reason, the page's request url, which differs after a redirect) of aborted requests
        self.blocked: list[tuple[str, str, str, str]] = []
        self._hosts: dict[tuple[str, int], str | None] = {}
        self.page = None  # the page rendered (not a popup it opens)
        # files the page went on to (a meta refresh's or a script's target: an image, a PDF), which no element shows
        self.files: list[str] = []
        self._lock = threading.Lock()

    def decide(self, url: str) -> str | None:
        """None to let the request go, else the reason to abort it."""
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return None
        if parts.scheme not in net.SCHEMES:
            return f"scheme {parts.scheme or 'none'} is not allowed"
        if self.allow_private:
            return None
        try:
            host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return "invalid URL"
        key = (host, port)
        with self._lock:
            if key in self._hosts:
                return self._hosts[key]
        try:
            net.resolve(host, port, allow_private=False, timeout=self.timeout)
            reason = None
        except net.FetchError as exc:
            reason = str(exc)
        with self._lock:
            self._hosts[key] = reason
        return reason

    def exchange(self, method: str, url: str, headers: dict, body: bytes | None) -> net.Fetched:
        """One hop of a request, made here: Chromium would resolve the name again itself, and a DNS
        rebinding answer could then steer it to a private address the check never saw."""
        if self._fetcher is None:
            self._fetcher = net.Fetcher(self.limits, self._cancel)
        return self._fetcher.exchange(method, url, headers, body)

    def _waiting(self, route, call):
        """call() in a thread, waited for with Playwright's own timer: its sync API runs every route handler on
        one thread, so a plain blocking wait would make the page's requests go one at a time."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="medimg-guard")
        future = self._pool.submit(call)
        try:
            page = route.request.frame.page
        except Exception:  # no frame (a worker's request): wait plainly
            page = None
        while page is not None and not future.done():
            try:
                page.wait_for_timeout(20)
            except Exception:  # the page is closing: nobody waits for this request any more
                future.cancel()
                raise
        return future.result()

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, route) -> None:
        """Abort blocked requests. When the guard is on, every http(s) request is made here (the page itself
        always), redirects followed hop by hop with each hop checked, and the browser is given the response."""
        request = route.request
        url = request.url
        if self._cancel is not None and self._cancel.is_set():  # the run was given up: nothing more is fetched
            _quietly(route.abort, "aborted")
            return
        reason = self.decide(url)
        if reason is not None:
            self._refuse(route, url, request.resource_type, reason)
            return
        top = _top_page(request)
        if (self.allow_private and not top) or urlsplit(url).scheme not in net.SCHEMES:
            route.continue_()
            return
        method, headers, body = request.method, dict(request.headers), request.post_data_buffer
        for _ in range(self.max_redirects + 1):
            try:
                got = self._waiting(route, lambda: self.exchange(method, url, headers, body))
            except net.BlockedAddress as exc:  # the name's answer changed since the check (rebinding)
                self._refuse(route, url, request.resource_type, str(exc))
                return
            except Exception as exc:  # refused connection, timeout, over the byte cap: the request just fails
                if top and _page_of(request) is self.page and str(exc).startswith("too large:"):
                    self._went_to(url)  # a file the page goes on to over the cap: its fetch says so, not silence
                _quietly(route.abort, "failed")
                return
            location = {k.lower(): v for k, v in got.headers.items()}.get("location")
            if got.status not in net.REDIRECTS or not location:
                # the page itself is shown, as the static reading reads it, also when its server says to save it
                # (Content-Disposition: attachment, an exported report): Chromium would download it instead
                headers = _charset_told(_shown(got.headers), got.data) if top else got.headers
                if top and _page_of(request) is self.page:
                    self._went_to(url, got)
                if _origin(url) != _origin(request.url):  # the browser files the answer under the URL asked: the
                    headers = {k: v for k, v in headers.items() if k.lower() != "set-cookie"}  # cookies of a site
                    # a redirect led to would be set for the first one
                _quietly(route.fulfill, status=got.status, headers=headers, body=got.data)
                return
            url, came_from = urljoin(url, location.strip()), url
            if got.status in (301, 302, 303) and method != "HEAD":
                method, body = "GET", None
            if _origin(url) != _origin(came_from):  # a site's cookies and credentials are not sent to another
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            reason = self.decide(url)
            if reason is not None:
                self._refuse(route, url, request.resource_type, reason)
                return
        _quietly(route.abort, "failed")  # too many redirects

    def _went_to(self, url: str, got: net.Fetched | None = None) -> None:
        """Note a document of the page's that is a file a source reads (an image, a PDF), not a page: the browser
        shows it in no element the collecting script reads, and the page's own URL is not one. Without `got`: one
        too large to fetch, whose fetch again gives the error."""
        if url not in self.files and len(self.files) < MAX_GOING_ON and (got is None or classify(
                Blob(origin=url, data=got.data, content_type=got.content_type), page=True) in ("blob", "svg")):
            self.files.append(url)

    def _refuse(self, route, url: str, kind: str, reason: str) -> None:
        if _top_page(route.request) and _page_of(route.request) is self.page:  # the page going on to another
            kind = "page"  # address (a script, a redirect); not a popup
        self.blocked.append((url, kind, reason, route.request.url))
        _quietly(route.abort, "blockedbyclient")


# request headers that carry the page's credentials for the site asked: not sent on to another site a redirect
# names (a browser sends that site's own cookies, and drops Authorization: the Fetch standard)
_CREDENTIALS = {"cookie", "authorization", "proxy-authorization"}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port out of range: no origin to share
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _top_page(request) -> bool:
    """Whether the request is for the page itself (not a frame's, an image's)."""
    try:
        return request.resource_type == "document" and request.frame.parent_frame is None
    except Exception:  # no frame (a worker's request)
        return False


def _page_of(request):
    try:
        return request.frame.page
    except Exception:  # no frame (a worker's request)
        return None


def _shown(headers: dict) -> dict:
    """The headers without Content-Disposition."""
    return {k: v for k, v in headers.items() if k.lower() != "content-disposition"}


def _charset_told(headers: dict, body: bytes) -> dict:
    """The page's response headers, with `charset=utf-8` when it names no charset (or one no browser knows,
    `charset=none`) but its bytes are UTF-8: Chromium would read it as windows-1252 (it never guesses UTF-8 for a
    web page) and the static reading as UTF-8, so an image with a non-ASCII name would be found twice, once as a
    404."""
    name = next((k for k in headers if k.lower() == "content-type"), "")
    ctype = headers.get(name, "")
    told = ctype.lower().split("charset=")[1].split(";")[0] if "charset=" in ctype.lower() else ""
    if (ctype.split(";")[0].strip().lower() != "text/html" or known_codec(told)
            or page_charset(body, ctype) != "utf-8"):
        return headers
    return {**headers, name: f"{ctype.split(';')[0].strip()}; charset=utf-8"}


def _quietly(call, *args, **kwargs) -> None:
    """Answer a route; if the page is already gone there is nobody left to answer."""
    try:
        call(*args, **kwargs)
    except Exception:
        pass


def available() -> str | None:
    """None if rendering can work here, else how to make it work."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("MEDIMG_CHROMIUM", "").strip():
            return f"rendering needs Chromium at {CHROMIUM} (MEDIMG_CHROMIUM), which is not an executable file"
        return (f"rendering needs Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`, or name "
                "another with the MEDIMG_CHROMIUM environment variable")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("rendering needs Playwright: install the browser extra with `pip install 'medimg[browser]'` (from a "
                "checkout: `.venv/bin/pip install -e '.[browser]'`)")
    return None


def collect(url: str, limits: Limits, cancel=None) -> list[Candidate]:
    """The images the rendered page loaded, in page order, with the bytes the browser received."""
    missing = available()
    if missing:
        raise BrowserError(missing)
    # browser start, page budget, watchdog grace, and time to shut down: past that the thread is stuck
    budget = limits.connect_timeout + 20 + limits.total_timeout + WATCHDOG_GRACE + 10
    # Playwright's sync API refuses to run inside an asyncio loop, so it always gets its own thread.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medimg-render")
    try:
        return pool.submit(_render_slot, url, limits, cancel).result(timeout=budget)
    except FutureTimeout:
        raise BrowserError(f"rendering {url} took longer than {budget:g}s") from None
    finally:
        pool.shutdown(wait=False)


def _render_slot(url: str, limits: Limits, cancel=None) -> list[Candidate]:
    with _slots:
        if cancel is not None and cancel.is_set():  # given up while it waited for a slot: no browser started
            raise BrowserError(f"cancelled: the run was stopped before rendering {url}")
        return _render(url, limits, cancel)


def _render(url: str, limits: Limits, cancel=None) -> list[Candidate]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    guard = RouteGuard(limits.allow_private, limits.connect_timeout, limits.max_redirects,
                       limits.connect_timeout + limits.read_timeout, limits, cancel)
    responses, finished, requested = [], set(), set()
    fired, done, hog = threading.Event(), threading.Event(), threading.Event()
    # the profile, and Playwright's own folder for the render (left behind when a stopped run ends its driver)
    with work_folder() as folder:
        profile = os.path.join(folder, "profile")
        try:
            with sync_playwright() as pw:
                launch = pw.chromium.launch_persistent_context
                own = {"artifacts_dir": os.path.join(folder, "artifacts")} if _takes(launch, "artifacts_dir") else {}
                context = launch(
                    profile, executable_path=CHROMIUM, headless=True,
                    args=FLAGS + ([] if limits.allow_private else NO_NETWORK),
                    user_agent=limits.user_agent, service_workers="block", accept_downloads=False,
                    ignore_default_args=["--disable-popup-blocking"],  # a popup without a click is blocked
                    viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]},
                    env={**os.environ, "TMPDIR": _chromium_tmp(folder)},
                    timeout=limits.connect_timeout * 1000 + 20000, **own)
                # The page budget starts once the browser is up. A script that never yields blocks
                # every browser call (evaluate has no timeout), so past the budget plus a grace
                # period, or once the run is given up, the watchdog kills this render's Chromium processes.
                deadline = time.monotonic() + limits.total_timeout
                threading.Thread(target=_watch, args=(profile, fired, done, limits.total_timeout + WATCHDOG_GRACE,
                                                      cancel, hog, limits.max_browser_memory), daemon=True).start()
                if limits.allow_private:
                    _allow_local_network(context)
                try:
                    context.add_init_script(NO_WEBRTC)
                    context.add_init_script(TIMERS)
                    context.add_init_script(SHOWN)
                    context.add_init_script(BLOBS)
                    context.add_init_script(CANVASES)
                    context.route("**/*", guard.handle)
                    context.route_web_socket("**/*", lambda ws: ws.close())
                    page = guard.page = context.pages[0] if context.pages else context.new_page()
                    page.on("response", lambda response: responses.append(response))
                    page.on("requestfinished", lambda request: finished.add(request))
                    page.on("request", lambda request: requested.add(urldefrag(request.url)[0]))
                    network = Network()
                    page.on("request", network.started)
                    page.on("requestfinished", network.ended)
                    page.on("requestfailed", network.ended)
                    try:
                        page.goto(url, wait_until="commit", timeout=_ms_left(deadline))
                        # an image or frame that never finishes holds `load` back: half the time left at most, so
                        # that scrolling still brings in what only it does
                        page.wait_for_load_state("load", timeout=_ms_left(deadline) * LOAD_SHARE)
                    except PlaywrightTimeout:  # what the page did load is read (none of it: an error)
                        if page.url == "about:blank":
                            raise
                    _scroll(page, deadline, cancel, network)
                    found = _evaluate(page, _COLLECT_JS, deadline, [limits.max_download_bytes, MAX_BLOBS, MAX_CANVASES,
                                                                 limits.max_pixels])
                    found += _frames_lazy(page)
                    bodies, moved = _image_bodies(responses, finished, limits.max_download_bytes,
                                                  limits.user_agent if limits.respect_robots_tag else None)
                finally:
                    try:
                        context.close()
                    except PlaywrightError:  # already gone (the watchdog, or a crash)
                        pass
        except PlaywrightError as exc:
            if fired.is_set() and cancel is not None and cancel.is_set():
                raise BrowserError(f"cancelled: the run was stopped while rendering {url}") from None
            if hog.is_set():
                raise BrowserError(f"rendering stopped: the page took over {limits.max_browser_memory // 2**20} MB of "
                                   f"memory (max_browser_memory)") from None
            if fired.is_set():
                raise BrowserError(f"rendering stopped: the page was still busy after "
                                   f"{limits.total_timeout + WATCHDOG_GRACE:g}s") from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "ERR_BLOCKED_BY_CLIENT" in first and guard.blocked:
                first = guard.blocked[0][2]
            raise BrowserError(f"rendering failed: {first}") from None
        finally:
            done.set()
            guard.close()
            _remove_singleton(profile)
    # an image still loading is fetched again, under the download limits; one the browser never asked for (lazy,
    # never reached) is left to the static reading
    found = [entry for entry in found if not entry.get("pending") or urldefrag(entry["url"])[0] in requested]
    # blocked images the page does not list (made by a script, or on a page it left) are listed too: the guarded
    # download refuses them again, as one clear error each; each under the URL the page asked for (refused at a
    # redirect, as without rendering), which the static reading may name too: one row, not two
    listed = {urldefrag(entry.get("url") or "")[0] for entry in found}
    for _, kind, _, asked in guard.blocked:
        if kind == "image" and urldefrag(asked)[0] not in listed:
            listed.add(urldefrag(asked)[0])
            found.append({"url": asked, "tag": "img"})
    for went in guard.files:  # an image or PDF the page went on to (a meta refresh, a script): fetched and read
        if urldefrag(went)[0] not in listed:
            listed.add(urldefrag(went)[0])
            found.append({"url": went, "tag": "page"})
    out = Rendered(_candidates(found, bodies, limits.max_download_bytes, moved))
    for blocked, kind, reason, _ in guard.blocked:
        if kind == "page" and (blocked, reason) not in out.refused:
            out.refused.append((blocked, reason))
    return out


def _takes(call, name: str) -> bool:
    """Whether this Playwright's `call` takes the keyword `name` (older ones lack some)."""
    try:
        return name in inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False


def _allow_local_network(context) -> None:
    """Let the page reach other private addresses (allow_private). The guard hands Chromium the page itself, so it
    takes the page for a public one, and its Local Network Access checks then block every request to another
    private or loopback origin: an API on another port (a gallery never fetched), a cross-origin iframe. A
    Playwright or Chromium without those checks has nothing to grant."""
    try:
        context.grant_permissions(["local-network-access"])
    except Exception:  # an older Playwright names no such permission
        pass


class Rendered(list):
    """The images of a rendered page, and the addresses it went on to that the guard refused, with why."""

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.refused: list[tuple[str, str]] = []


def _watch(profile: str, fired: threading.Event, done: threading.Event, seconds: float, cancel=None,
           hog: threading.Event | None = None, memory: int = 0) -> None:
    """Kill the render's Chromium if it is not done `seconds` from now, or at once when the run is given up:
    a page whose script never yields would otherwise hold a stopped run (Ctrl-C, SIGTERM) until then. Every
    MEMORY_TICK its memory is read too (its processes looked up every quarter second, 5 ms of /proc): past `memory`
    bytes it is killed, and `hog` set."""
    end = time.monotonic() + seconds
    ticks, pids = 0, []
    while not done.wait(MEMORY_TICK):
        if time.monotonic() >= end or (cancel is not None and cancel.is_set()):
            _kill_browser(profile, fired)
            return
        if hog is None:
            continue
        if ticks % max(1, round(0.25 / MEMORY_TICK)) == 0:
            pids = _browser_pids(profile)
        ticks += 1
        if _memory(pids) > memory:
            hog.set()
            _kill_browser(profile, fired)
            return


def _browser_pids(profile: str) -> list[int]:
    """The Chromium processes started with this (unique, temporary) profile folder."""
    marker = f"--user-data-dir={profile}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if marker in f.read():
                    pids.append(int(entry.name))
        except OSError:  # gone already, or not ours to read
            continue
    return pids


def _memory(pids: list[int]) -> int:
    """Bytes of the processes' own resident memory (RssAnon: not the shared libraries each maps)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:")), 0)
        except (OSError, ValueError):
            continue
    return total


def _kill_browser(profile: str, fired: threading.Event) -> None:
    """SIGKILL the Chromium processes started with this profile folder."""
    fired.set()
    for pid in _browser_pids(profile):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _chromium_tmp(folder: str) -> str:
    """The temporary directory Chromium is given: the render's own folder (removed with it), or /tmp when the path
    of Chromium's SingletonSocket in it (`org.chromium.Chromium.XXXXXX/SingletonSocket`) would be too long for a
    Unix socket, which stops Chromium from starting (a long TMPDIR: pytest's, a build agent's)."""
    for place in (folder, "/tmp"):
        if len(os.path.join(place, "org.chromium.Chromium.XXXXXX", "SingletonSocket").encode()) < SOCKET_PATH_MAX:
            return place
    return folder


def _remove_singleton(profile: str) -> None:
    """Remove the folder Chromium makes in the temporary directory for its SingletonSocket (the profile links to
    it): it removes it itself when it closes, but not when it was killed (past the time budget or the memory cap,
    or the run stopped), and one was left in /tmp for each such render."""
    try:
        folder = os.path.dirname(os.readlink(os.path.join(profile, "SingletonSocket")))
    except OSError:  # none made, or removed already
        return
    if os.path.basename(folder).startswith("org.chromium.Chromium."):
        shutil.rmtree(folder, ignore_errors=True)


def _ms_left(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _evaluate(page, script: str, deadline: float, *arg):
    """page.evaluate, done again on the new document when the page went on to another meanwhile (a meta refresh or
    a script's redirect at load destroyed the one it ran in), at most MAX_GOING_ON times."""
    for _ in range(MAX_GOING_ON):
        try:
            return page.evaluate(script, *arg)
        except Exception as exc:
            if "Execution context was destroyed" not in str(exc):
                raise
        try:
            page.wait_for_load_state("load", timeout=min(3000.0, _ms_left(deadline)))
        except Exception:  # still loading: what it has is read
            pass
    try:
        return page.evaluate(script, *arg)
    except Exception as exc:  # a page that sends itself on without end (a script's location.replace at once)
        if "Execution context was destroyed" not in str(exc):
            raise
        raise BrowserError(f"rendering stopped: the page kept going on to other pages (a script or a refresh sends "
                           f"it on each time it loads), more than {MAX_GOING_ON} times while it was read") from None


def _frames_lazy(page) -> list[dict]:
    """The pictures the page's frames (the first MAX_FRAMES) name but did not load (`_FRAME_LAZY_JS`)."""
    out = []
    for frame in page.frames[1:MAX_FRAMES + 1]:
        try:
            out += frame.evaluate(_FRAME_LAZY_JS, FRAME_IMAGES)
        except Exception:  # detached, or gone on to another document meanwhile
            continue
    return out


def _scroll(page, deadline: float, cancel=None, network: "Network | None" = None) -> None:
    """Let the page settle after load (an app fetching its gallery), then scroll down a screen at a time (at most
    MAX_SCROLLS steps, within the time budget, until the run is given up); at the bottom, let it settle again and
    go on if it grew meanwhile (infinite scroll, its next part fetched)."""
    _settle(page, deadline, cancel, network)
    for step in range(MAX_SCROLLS):
        if time.monotonic() > deadline - 1 or (cancel is not None and cancel.is_set()):
            return
        at_bottom = _evaluate(page, _SCROLL_JS, deadline, True)
        if at_bottom and step == 0:  # one screen, never scrolled: it has settled
            return
        page.wait_for_timeout(SCROLL_PAUSE_MS)
        if at_bottom:
            _settle(page, deadline, cancel, network)
            if _evaluate(page, _SCROLL_JS, deadline, False):
                return
    _settle(page, deadline, cancel, network)


class Network:
    """The page's requests in flight (those started within SETTLE_MS: a long poll stops counting), and when the
    last one started or ended."""

    def __init__(self) -> None:
        self.flying: dict = {}
        self.last = time.monotonic()

    def started(self, request) -> None:
        self.flying[request] = self.last = time.monotonic()

    def ended(self, request) -> None:
        self.flying.pop(request, None)
        self.last = time.monotonic()

    def busy(self) -> bool:
        recent = time.monotonic() - SETTLE_MS / 1000
        return any(at > recent for at in list(self.flying.values()))


def _settle(page, deadline: float, cancel=None, network: Network | None = None) -> None:
    """Wait until the page has been quiet for QUIET_MS (no request in flight or just made, no timer of its due),
    at most SETTLE_MS."""
    end = min(time.monotonic() + SETTLE_MS / 1000, deadline - 1)
    quiet = time.monotonic()
    while time.monotonic() < end and not (cancel is not None and cancel.is_set()):
        page.wait_for_timeout(min(100.0, max(1.0, (end - time.monotonic()) * 1000)))
        now = time.monotonic()
        soon = _evaluate(page, "() => window.__medimgSoon ? window.__medimgSoon() : 0", deadline) or 0
        if soon > 0 or (network is not None and network.busy()):
            quiet = now + soon / 1000  # a timer due: quiet from when it has run
        quiet = max(quiet, network.last if network is not None else 0)
        if now - quiet >= QUIET_MS / 1000:
            return


def _image_bodies(responses: list, finished: set, cap: int,
                  robots: str | None = None) -> tuple[dict, dict[str, str]]:
    """The bodies of the images the browser loaded whole, and of those a script fetched (`FETCHED_IMAGES`), by
    URL (a redirected one's under the URL it started from too, and {its final URL: that one}). One
    still coming (a server that trickles it) is not waited for, since `body()` would wait for its end: it is
    fetched again, under the download limits. So is a script's image whose body the browser did not keep (one
    read as a blob comes back empty): it is listed with no bytes. With `robots` (the User-Agent, when
    respect_robots_tag), one whose X-Robots-Tag forbids its use is left out: an element's is fetched again, and
    refused with a note."""
    bodies: dict[str, tuple[bytes | None, str | None]] = {}
    moved: dict[str, str] = {}
    for response in responses:
        try:
            kind = response.request.resource_type
            fetched = kind in ("fetch", "xhr") and _type(response.headers).startswith(FETCHED_IMAGES)
            if (kind != "image" and not fetched) or not response.ok:
                continue
            if robots is not None and net.robots_refusal(_each_header(response), robots):
                continue
            url = urldefrag(response.url)[0]
            if fetched and url not in bodies:  # no element names it: it is listed here or nowhere
                bodies[url] = (None, _type(response.headers) or None)
            if bodies.get(url, (None,))[0] is not None or response.request not in finished:
                continue
            declared = (response.headers.get("content-length") or "").strip()
            if declared.isdigit() and int(declared) > cap:
                continue  # an oversized image is fetched again by the capped downloader, which refuses it
            body = response.body()
        except Exception:  # evicted from the browser's cache, or a redirect: fetched again later
            continue
        if 0 < len(body) <= cap:
            bodies[url] = (body, _type(response.headers) or None)
            start = _first_url(response.request)
            if start != url and start not in bodies:  # redirected: the element names the URL it started from
                bodies[start] = bodies[url]
                moved[url] = start
    return bodies, moved


def _each_header(response) -> "net.httpx.Headers":
    """A response's headers, repeated ones apart (`response.headers` joins them with ", ", which makes
    `googlebot: noindex` and `noai` one header for googlebot)."""
    return net.httpx.Headers([(h["name"], h["value"]) for h in response.headers_array()])


def _first_url(request) -> str:
    """The URL a request started from, before the redirects that led to it."""
    try:
        for _ in range(20):
            if request.redirected_from is None:
                break
            request = request.redirected_from
        return urldefrag(request.url)[0]
    except Exception:
        return ""


def _type(headers: dict) -> str:
    return (headers.get("content-type") or "").split(";")[0].strip().lower()


def _plain(url: str) -> str:
    """The URL without its fragment (a data: URI whole), or "" for one of another scheme (blob:, chrome:)."""
    if url[:5].lower() == "data:":
        return url
    url = urldefrag(url)[0]
    return url if urlsplit(url).scheme in net.SCHEMES else ""


def _linked_image(link: str, url: str) -> str | None:
    """The full image a shown picture's link leads to (named as an image file: `LINK_NAMES`), else None."""
    link = _plain(link)
    if not link or link == url or not urlsplit(link).path.lower().endswith(LINK_NAMES):
        return None
    return link


def _candidates(found: list[dict], bodies: dict[str, tuple[bytes | None, str | None]],
                cap: int = 2**62, moved: dict[str, str] | None = None) -> list[Candidate]:
    out: list[Candidate] = []
    seen: set[str] = set()
    current = {_plain(entry.get("url") or "") for entry in found if entry.get("tag") != "replaced"}
    for entry in found:
        url = _plain(entry.get("url") or "")
        data, ctype = None, None
        if (entry.get("url") or "")[:5].lower() == "blob:":  # read in the page, under the URL it was fetched from
            url = _plain(entry.get("from") or "") or entry["url"]
            try:
                data, ctype = decode_data_uri(entry.get("data") or "", cap)
            except ValueError:  # too large, revoked: fetched again from where it came, or left out
                if url == entry["url"]:
                    continue
        if not url or (entry.get("tag") == "replaced" and url in current):  # another element's picture
            continue
        if url in seen:
            continue
        seen.add(url)
        if data is None:
            data, ctype = bodies.get(url, (None, None))
        out.append(Candidate(url, entry.get("tag") or "img", entry.get("alt") or "", data, ctype,
                             full=_linked_image(entry.get("link") or "", url)))
    moved = moved or {}
    starts = set(moved.values())  # a redirected image's first URL: for an element naming it, else listed as its end
    for url, (data, ctype) in bodies.items():  # loaded but not in the DOM: CSS, preloads, sprites
        if url not in seen and url not in starts and moved.get(url) not in seen:
            seen.add(url)
            out.append(Candidate(url, "response", "", data, ctype))
    return out
