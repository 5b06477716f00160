"""A small threaded HTTP server on 127.0.0.1 for tests (no internet needed).

    from webserver import WebServer          # tests/ is on sys.path under pytest

    with WebServer() as srv:                  # binds 127.0.0.1 on a free port; WebServer("127.0.0.2") works too
        srv.add("/a.png", png_bytes, "image/png")         # static bytes (status=, headers= optional)
        srv.add("/page.html", "<html>…</html>")           # str bodies are sent as UTF-8 text/html
        srv.add("/late.png", png_bytes, "image/png", delay=0.1)  # answers after 0.1 s, like a far server
        srv.add("/a.php?id=3", png_bytes, "image/png")    # a route with a query: before the path's own
        srv.redirect("/old", "/new", status=302)          # Location may be a path or a full URL
        srv.answers("/busy.png", [(429, b"", "text/plain", {"Retry-After": "1"}), (200, png_bytes, "image/png", {})])
        srv.slow("/slow", b"x" * 100, interval=0.2)       # headers at once, then one byte (or `piece`) per interval
        srv.huge("/huge", 500 * 2**20, declare_length=False)  # streams zeros until done or disconnected
        url = srv.url("/page.html")                       # "http://127.0.0.1:PORT/page.html"
        ...
        srv.hits["/a.png"]     # how many requests reached that path (0 if none); "/a.php?id=3": with that query
        srv.sent["/huge"]      # body bytes the server managed to write for that path
        srv.headers["/a.png"]  # the headers of the last request for that path
        srv.peak_waiting       # the most requests ever waiting out their `delay` at the same time

`WebServer(tls=server_ssl_context)` serves HTTPS instead. Unknown paths answer 404. The server is HTTP/1.1 with keep-alive; `close()` (or leaving the `with`)
stops it and ends slow or huge responses still being written. Fetching from it needs
`Limits(allow_private=True)`, since 127.0.0.1 is a loopback address.
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["WebServer"]


class WebServer:
    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        self.host = host
        self.scheme = "https" if tls else "http"
        self.routes: dict[str, tuple] = {}
        self.hits: Counter = Counter()
        self.sent: Counter = Counter()
        self.headers: dict[str, dict] = {}
        self.waiting = self.peak_waiting = 0
        self._count = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _QuietServer((host, 0), _handler(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    # routes
    def add(self, path: str, body: bytes | str, content_type: str | None = None, status: int = 200,
            headers: dict | None = None, delay: float = 0.0) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
            content_type = content_type or "text/html; charset=utf-8"
        self.routes[path] = ("static", body, content_type or "application/octet-stream", status, headers or {},
                             delay)
        return self.url(path)

    def answers(self, path: str, answers: list[tuple]) -> str:
        """Answer the requests for `path` in turn with (status, body, content_type, headers), the last one again
        for every request after it (a 429 and then the image, say)."""
        self.routes[path] = ("answers", list(answers))
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = ("redirect", location, status)
        return self.url(path)

    def slow(self, path: str, body: bytes = b"x" * 1000, interval: float = 0.2,
             content_type: str = "image/png", piece: int = 1) -> str:
        self.routes[path] = ("slow", body, interval, content_type, piece)
        return self.url(path)

    def huge(self, path: str, size: int, declare_length: bool = False,
             content_type: str = "image/png") -> str:
        self.routes[path] = ("huge", size, declare_length, content_type)
        return self.url(path)

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def _wait(self, delay: float) -> bool:
        """Sleep `delay` s as a delayed route does, counting overlapping waits; True when the server stops."""
        with self._count:
            self.waiting += 1
            self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            return self._stop.wait(delay)
        finally:
            with self._count:
                self.waiting -= 1

    # lifetime
    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "WebServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """Clients hanging up (a refused download, a cancelled fetch) are expected here; say nothing."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler(server: WebServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            server.hits[path] += 1
            if parts.query:
                server.hits[f"{path}?{parts.query}"] += 1
            server.headers[path] = dict(self.headers.items())
            route = server.routes.get(f"{path}?{parts.query}") or server.routes.get(path)
            try:
                if route is None:
                    self._send(404, b"not found", "text/plain", {})
                elif route[0] == "static":
                    _, body, ctype, status, headers, delay = route
                    if delay and server._wait(delay):
                        return
                    self._send(status, body, ctype, headers, path)
                elif route[0] == "answers":
                    status, body, ctype, headers = route[1][min(server.hits[path], len(route[1])) - 1]
                    self._send(status, body, ctype, headers, path)
                elif route[0] == "redirect":
                    self.send_response(route[2])
                    self.send_header("Location", route[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif route[0] == "slow":
                    self._slow(path, *route[1:])
                elif route[0] == "huge":
                    self._huge(path, *route[1:])
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.close_connection = True

        def _send(self, status, body, ctype, headers, path=None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers.items() if isinstance(headers, dict) else headers):  # a list: repeats
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
            if path:
                server.sent[path] += len(body)

        def _slow(self, path, body, interval, ctype, piece) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            for i in range(0, len(body), piece):
                if server._stop.wait(interval):
                    break
                self.wfile.write(body[i:i + piece])
                self.wfile.flush()
                server.sent[path] += len(body[i:i + piece])
            self.close_connection = True

        def _huge(self, path, size, declare_length, ctype) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            if declare_length:
                self.send_header("Content-Length", str(size))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            chunk = bytes(64 * 1024)
            left = size
            started = time.monotonic()
            while left > 0 and not server._stop.is_set() and time.monotonic() - started < 60:
                n = min(left, len(chunk))
                self.wfile.write(chunk[:n])
                server.sent[path] += n
                left -= n
            self.close_connection = True

    return Handler


def settled(count, within: float, quiet: float = 1.0) -> int:
    """count() once it has stayed the same for `quiet` seconds, within `within` seconds (the time a stop may take
    on a slow machine); fails if it still changes then. (A fixed sleep, then watching it for `quiet` seconds, fails
    when a stall makes the stop come later than the sleep.)"""
    deadline = time.monotonic() + within
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"still going after {within} s: {last}")


OPEN = dict(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=8)  # loopback: the opt-in


def read(url: str, **limits) -> tuple[list[tuple[str, str]], list]:
    """A page's images as (tag, file name) pairs, and its errors, read statically with OPEN's limits."""
    from medimg.sources import ImageItem, ItemError, Limits, open_input

    items = list(open_input(url, Limits(**{**OPEN, **limits})))
    shown = [(i.locator.split(" ")[0], i.metadata.get("url", "").rsplit("/", 1)[-1]) for i in items
             if isinstance(i, ImageItem)]
    return shown, [i for i in items if isinstance(i, ItemError)]
