"""Cap every request body, counted as it streams in (chunked bodies have no Content-Length), with a JSON 413;
and how many upload bytes the server holds at once (past that, a 503)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_IDLE_SECONDS = 60.0  # a request body may pause this long between pieces (nginx's client_body_timeout)
# and must come at this many bytes a second on average, after BODY_IDLE_SECONDS of grace (Apache's mod_reqtimeout
# body=20,MinRate=500): a byte now and then, never a long pause, held a connection (an open file) for ever
MIN_BODY_RATE = 500
# after an answer sent before the whole body came, the rest is read and dropped for at most this long, while its
# pieces come at most LINGER_IDLE_SECONDS apart (nginx's lingering_time and lingering_timeout)
LINGER_SECONDS = 30.0
LINGER_IDLE_SECONDS = 5.0
PAGE_UPLOADS = "/gradio_api/upload"
MIN_FREE_BYTES = 2**30  # free disk space an upload to the page must leave
URL_BODY_BYTES = 64 * 1024  # /api/classify-url takes a small JSON object
UPLOAD_PATHS = ("/api/classify", "/gradio_api/upload")  # capped at max_upload_bytes; any other path at max_body_bytes
API_BODIES = ("/api/classify", "/api/classify-url")  # the API's routes that read a body


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the root path a proxy that keeps its prefix sends along."""
    path, root = scope["path"], scope.get("root_path", "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root):] or "/"
    return path


async def whole_body(receive: Receive) -> tuple[bytes, Receive]:
    """A request's body, read whole (as BodyLimit, outside the caller, caps it), and a `receive` that gives the app
    the same messages again, then the rest."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay


def error_body(text: str, errors: list[dict] | None = None) -> dict:
    """The API's one error shape: `error` and `detail`, the same readable sentence, and for a 422 `errors`, the
    fields at fault ({"loc", "msg", "type"}, as FastAPI's validation gives them)."""
    body = {"error": text, "detail": text}
    if errors is not None:
        body["errors"] = errors
    return body


def size_text(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 1024:g} KB"


class BodyLimit:
    """Answers 413 (JSON, connection closed) as soon as a body is known to pass its path's cap: from its
    Content-Length, or while counting the bytes the app reads; the app then reads a disconnect. Under /api
    a 413 of the app's own gets the same JSON."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int, max_held_bytes: int = 0,
                 upload_folder: Path | None = None):
        self.app = app
        # the page's uploads stay on disk (about 15 minutes); one that would leave less than MIN_FREE_BYTES
        # free on that disk is refused (507), so uploads cannot fill the server's disk
        self.upload_folder = upload_folder
        self.caps = {path: max_upload_bytes for path in UPLOAD_PATHS}
        self.caps["/api/classify-url"] = URL_BODY_BYTES
        self.default = max_body_bytes
        # upload bytes the requests to each upload path hold at once (received, not yet answered: spooled to
        # disk); past it, the request whose bytes would pass it gets a 503. Bytes, not requests, so connections
        # that send nothing hold nothing. 0 for no limit.
        self.max_held = max_held_bytes
        self.held = dict.fromkeys(UPLOAD_PATHS, 0)

    def payload(self, path: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        cap = self.caps.get(path, self.default)
        what = "uploads" if path in UPLOAD_PATHS else f"a request to {path}"
        text = f"the request is too large: {what} may be at most {size_text(cap)} per request"
        if not path.startswith("/api/"):  # the page shows this text in a toast as it is: plain words
            if path in UPLOAD_PATHS:
                text = (f"these files add up to more than {size_text(cap)}, the most one upload may carry: drop "
                        "fewer at once (then drop the rest and run again)")
            body = text.encode()
            ctype = b"text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps(error_body(text)).encode(), b"application/json"
        return body, [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                      (b"connection", b"close")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = re.sub("/+", "/", route_path(scope)).rstrip("/") or "/"  # "/api/classify/": its cap (the app 404s)
        cap = self.caps.get(path, self.default)
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > cap:
            await self._send_413(send, path, receive)
            return
        # a gzipped upload was "expected boundary character 45, got 31", a gzipped JSON body "not UTF-8 text"
        coding = Headers(scope=scope).get("content-encoding", "").strip().lower()
        if path in API_BODIES and scope["method"] == "POST" and coding not in ("", "identity"):
            await self._send_415(send, coding, receive)
            return
        if path == PAGE_UPLOADS and self.upload_folder is not None:
            size = int(length) if length and length.isdigit() else cap
            if _free_bytes(self.upload_folder) - size < MIN_FREE_BYTES:
                await self._send_full(send)
                return
        held = self.held if path in self.held and self.max_held else {}
        seen, started, refused, rewriting, whole = 0, False, False, False, False
        began: float | None = None  # when the app first asked for the body
        last: float | None = None  # when its last piece came

        async def counted() -> Message:
            nonlocal seen, refused, whole, began, last
            if refused:
                return {"type": "http.disconnect"}
            if whole:  # the body is in: the app waits for the client to leave, as long as that takes
                return await receive()
            now = asyncio.get_running_loop().time()
            began = now if began is None else began
            last = now if last is None else last
            due = began + BODY_IDLE_SECONDS + seen / MIN_BODY_RATE  # the average rate's deadline
            wait = min(BODY_IDLE_SECONDS, due - now)
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except asyncio.TimeoutError:  # a body that stalls or trickles (slowloris) holds a connection and a task
                refused = True
                if not started:  # silent for half the allowed pause: stopped (the rate's deadline may come first)
                    silent = asyncio.get_running_loop().time() - last
                    await self._send_stalled(send, silent if silent >= BODY_IDLE_SECONDS / 2 else None)
                return {"type": "http.disconnect"}
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                last = asyncio.get_running_loop().time()
                n = len(message.get("body", b""))
                seen += n
                if held:
                    held[path] += n
                if seen > cap or (held and held[path] > self.max_held):
                    refused = True
                    rest = None if whole else receive  # the body's rest, still to come
                    if not started:
                        await (self._send_413(send, path, rest) if seen > cap else self._send_busy(send, path, rest))
                    return {"type": "http.disconnect"}  # the app stops reading; its answer goes nowhere
            return message

        async def answer(message: Message) -> None:
            nonlocal started, rewriting
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 413 and path.startswith("/api/"):
                    rewriting = True
                    await self._send_413(send, path, None if whole else receive)
                    return
            if rewriting:
                return
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not refused:  # after a 413 the app may fail on the disconnect it was given: already answered
                raise
        finally:
            if held:
                held[path] -= seen

    async def _send_busy(self, send: Send, path: str, rest: Receive | None = None) -> None:
        """503 as the body comes in: the uploads already held are all the server takes at once."""
        text = (f"the server is busy: it holds {size_text(self.max_held)} of uploads waiting or being classified; "
                "try again shortly")
        if path.startswith("/api/"):
            body, ctype = json.dumps(error_body(text)).encode(), b"application/json"
        else:
            body, ctype = text.encode(), b"text/plain; charset=utf-8"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                   (b"retry-after", b"5")]
        await _answer_early(send, 503, headers, body, rest)

    async def _send_stalled(self, send: Send, silent: float | None) -> None:
        """408: `silent` is how long the body sent nothing, None for one that came, too slowly."""
        rules = (f"a body may pause {BODY_IDLE_SECONDS:g} s at most, and after its first {BODY_IDLE_SECONDS:g} s "
                 f"must come at {MIN_BODY_RATE:g} bytes a second on average")
        text = (f"the request body arrived too slowly ({rules})" if silent is None
                else f"the request body stopped arriving for {silent:.1f} s ({rules})")
        body = json.dumps(error_body(text)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 408, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_full(self, send: Send) -> None:
        text = "the server's disk is too full to take these files now; try again in a few minutes"
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode()),
                   (b"connection", b"close"), (b"retry-after", b"300")]
        await send({"type": "http.response.start", "status": 507, "headers": headers})
        await send({"type": "http.response.body", "body": text.encode()})

    async def _send_415(self, send: Send, coding: str, rest: Receive) -> None:
        """415 before the body is read: the API takes bodies as sent, not compressed (Content-Encoding)."""
        text = (f"the request body is sent with Content-Encoding {coding[:40]!r}, which this server does not decode: "
                "send it uncompressed")
        body = json.dumps(error_body(text)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"accept-encoding", b"identity")]
        await _answer_early(send, 415, headers, body, rest)

    async def _send_413(self, send: Send, path: str, rest: Receive | None = None) -> None:
        body, headers = self.payload(path)
        await _answer_early(send, 413, headers, body, rest)


async def _answer_early(send: Send, status: int, headers: list, body: bytes, rest: Receive | None) -> None:
    """Answer a request whose body has not all come (`rest` receives the remainder; None when it has come). The
    answer is sent at once, then the rest of the body is read and dropped (LINGER_SECONDS at most) before the
    answer ends and the server closes the connection: closed with bytes unread, the connection is reset, and a
    client still sending (httpx's async client, …) often loses the answer, seeing a reset instead."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if rest is None:
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.body", "body": body, "more_body": True})  # all its bytes: the client has it
    loop = asyncio.get_running_loop()
    end = loop.time() + LINGER_SECONDS
    while (left := end - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(rest(), min(left, LINGER_IDLE_SECONDS))
        except asyncio.TimeoutError:
            break
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})


def _free_bytes(folder: Path) -> int:
    """Free space on the disk that holds `folder` (or the nearest folder above it that exists)."""
    for place in (folder, *folder.parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return 0
