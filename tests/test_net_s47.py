"""Fetching as real servers answer (session 47): a kept-alive connection that goes bad between two requests."""

from __future__ import annotations

import socket
import threading

import pytest

from medimg.sources import Limits, net

LIMITS = Limits(allow_private=True, connect_timeout=5, read_timeout=5, total_timeout=20)


class RawServer:
    """HTTP/1.1 by hand on 127.0.0.1, one thread a connection: `answer(path, n)` gives the bytes sent for the n-th
    request (from 0) on its connection, or None to close the connection without answering."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[tuple[int, int, str]] = []  # (connection, request on it, path)
        self.heads: dict[str, bytes] = {}  # the last request head for each path
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(conn, self.conns), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf, n = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        got = conn.recv(65536)
                    except OSError:
                        return
                    if not got:
                        return
                    buf += got
                head, _, buf = buf.partition(b"\r\n\r\n")
                path = head.split(b"\r\n")[0].split()[1].decode()
                self.requests.append((number, n, path))
                self.heads[path] = head
                out = self.answer(path, n)
                n += 1
                if out is None:
                    return
                conn.sendall(out)

    def close(self) -> None:
        self.sock.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(body) + body + extra


def test_an_answer_longer_than_its_content_length_does_not_fail_the_next_request_on_its_connection():
    """The bytes past a Content-Length were read as the next answer on the kept-alive connection: an image after a
    server's wrong length failed with "illegal status line"; browsers drop such a connection and go on."""
    srv = RawServer(lambda path, n: ok(path.encode() * 3, b"<!-- footer the length left out -->\r\n\r\n"))
    try:
        with net.Fetcher(LIMITS) as fetcher:
            assert fetcher.fetch(srv.url("/a")).data == b"/a/a/a"  # as its Content-Length says
            assert fetcher.fetch(srv.url("/b")).data == b"/b/b/b"
    finally:
        srv.close()


def test_a_kept_alive_connection_the_server_closes_as_the_request_goes_is_asked_again_on_a_new_one():
    """A server ends an idle connection (its keep-alive timeout) as the next request is sent: the request was an
    error ("closed the connection without answering"); browsers send it again on a new connection."""
    srv = RawServer(lambda path, n: ok(b"picture") if n == 0 else None)
    try:
        with net.Fetcher(LIMITS) as fetcher:
            assert fetcher.fetch(srv.url("/a")).data == b"picture"
            assert fetcher.fetch(srv.url("/b")).data == b"picture"
        assert [r for r in srv.requests if r[2] == "/b"] == [(1, 1, "/b"), (2, 0, "/b")]
    finally:
        srv.close()


def test_a_new_connection_that_fails_is_not_asked_again():
    """Only a reused connection earns the second try: a server that never answers is asked once."""
    srv = RawServer(lambda path, n: None)
    try:
        with net.Fetcher(LIMITS) as fetcher, pytest.raises(net.FetchError, match="without answering"):
            fetcher.fetch(srv.url("/a"))
        assert [r[2] for r in srv.requests] == ["/a"]
    finally:
        srv.close()


def test_a_post_on_a_reused_connection_is_not_sent_twice():
    """`exchange` (a browser's request routed through the guard) asks a GET again, never a POST."""
    srv = RawServer(lambda path, n: ok(b"x") if n == 0 else None)
    try:
        with net.Fetcher(LIMITS) as fetcher:
            assert fetcher.exchange("GET", srv.url("/a")).data == b"x"
            with pytest.raises(net.FetchError):
                fetcher.exchange("POST", srv.url("/form"), body=b"q=1")
        assert [r[2] for r in srv.requests] == ["/a", "/form"]
    finally:
        srv.close()


def answer(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(h + "\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_a_206_with_part_of_the_file_or_a_204_or_304_says_so_and_a_206_of_the_whole_file_is_read():
    """A GET asks no range and no condition: a 206 of bytes 0-999 of 11,000 was read as a corrupt or truncated
    image, and a 204 or 304 as "an empty body"; a 206 that holds the whole file (some CDNs send one) is read."""
    def route(path: str, n: int) -> bytes:
        if path == "/part.jpg":
            return answer("206 Partial Content", b"x" * 1000, "Content-Range: bytes 0-999/11000")
        if path == "/whole.png":
            return answer("206 Partial Content", b"png", "Content-Range: bytes 0-2/3")
        return answer("204 No Content", b"") if path == "/none" else answer("304 Not Modified", b"")
    srv = RawServer(route)
    try:
        with net.Fetcher(LIMITS) as fetcher:
            with pytest.raises(net.FetchError, match=r"HTTP 206 Partial Content for .*/part.jpg: the server sent only "
                                                     r"bytes 0-999 of 11,000 \(no range was asked\)"):
                fetcher.fetch(srv.url("/part.jpg"))
            assert fetcher.fetch(srv.url("/whole.png")).data == b"png"
            with pytest.raises(net.FetchError, match="HTTP 204 No Content for .*: the server sent no content"):
                fetcher.fetch(srv.url("/none"))
            with pytest.raises(net.FetchError, match="HTTP 304 Not Modified for .*: the server sent no content"):
                fetcher.fetch(srv.url("/old"))
    finally:
        srv.close()


def test_a_moved_page_whose_only_image_is_a_stylesheet_background_sends_the_cookie_it_set_with_that_image():
    """A page's session cookie (Set-Cookie on the page) went with its <img>s but not with its stylesheets' images
    when it only sends the browser on (a meta refresh) and those were all it had: they were fetched by a client of
    their own, without it, and a site that needs the cookie answered 403. Browsers send it."""
    from test_web_s45 import jpeg

    from medimg.sources import ImageItem, open_input

    picture = jpeg(3, (300, 200))
    srv = RawServer(lambda path, n: None)

    def route(path: str, n: int) -> bytes:
        if path == "/page.html":
            return answer("200 OK", b'<html><head><meta http-equiv=refresh content="0; url=/next.html">'
                                    b'<link rel=stylesheet href="/s.css"></head><body>Moved</body></html>',
                          "Content-Type: text/html", "Set-Cookie: sid=abc; Path=/; HttpOnly")
        if b"sid=abc" not in srv.heads[path]:
            return answer("403 Forbidden", b"no session", "Content-Type: text/plain")
        if path == "/s.css":
            return answer("200 OK", b"body { background: url(/bg.jpg) }", "Content-Type: text/css")
        return answer("200 OK", picture, "Content-Type: image/jpeg")
    srv.answer = route
    try:
        items = list(open_input(srv.url("/page.html"), Limits(allow_private=True, read_timeout=5, total_timeout=20)))
    finally:
        srv.close()
    assert [i.metadata["url"].rsplit("/", 1)[1] for i in items if isinstance(i, ImageItem)] == ["bg.jpg"], items
