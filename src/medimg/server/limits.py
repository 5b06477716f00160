"""Cap every request body, counted as it streams in (chunked bodies have no Content-Length), with a JSON 413;
and how many uploads may be in the server at once (more get a 503 before their body is read)."""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

URL_BODY_BYTES = 64 * 1024  # /api/classify-url takes a small JSON object
UPLOAD_PATHS = ("/api/classify", "/gradio_api/upload")  # capped at max_upload_bytes; any other path at max_body_bytes


def size_text(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 1024:g} KB"


class BodyLimit:
    """Answers 413 (JSON, connection closed) as soon as a body is known to pass its path's cap: from its
    Content-Length, or while counting the bytes the app reads; the app then reads a disconnect. Under /api
    a 413 of the app's own gets the same JSON."""

    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_body_bytes: int, max_uploads: int = 0):
        self.app = app
        self.caps = {path: max_upload_bytes for path in UPLOAD_PATHS}
        self.caps["/api/classify-url"] = URL_BODY_BYTES
        self.default = max_body_bytes
        # requests to each upload path at once (arriving, waiting or being classified), so uploads spooled to
        # disk stay bounded: max_uploads × max_upload_bytes per path; 0 for no limit
        self.max_uploads = max_uploads
        self.uploading = dict.fromkeys(UPLOAD_PATHS, 0)

    def payload(self, path: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        cap = self.caps.get(path, self.default)
        what = "uploads" if path in UPLOAD_PATHS else f"a request to {path}"
        text = f"the request is too large: {what} may be at most {size_text(cap)} per request"
        if not path.startswith("/api/"):  # the page shows this text in a toast as it is: plain words
            body = (text + (" (drop fewer files at once)" if path in UPLOAD_PATHS else "")).encode()
            ctype = b"text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps({"error": text, "detail": text}).encode(), b"application/json"
        return body, [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                      (b"connection", b"close")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        cap = self.caps.get(path, self.default)
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > cap:
            await self._send_413(send, path)
            return
        if path in self.uploading and scope.get("method") == "POST":
            if self.max_uploads and self.uploading[path] >= self.max_uploads:
                await self._send_busy(send, path)
                return
            self.uploading[path] += 1
            try:
                await self._limited(scope, receive, send, path, cap)
            finally:
                self.uploading[path] -= 1
            return
        await self._limited(scope, receive, send, path, cap)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, path: str, cap: int) -> None:
        seen, started, refused, rewriting = 0, False, False, False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    refused = True
                    if not started:
                        await self._send_413(send, path)
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
                    await self._send_413(send, path)
                    return
            if rewriting:
                return
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not refused:  # after a 413 the app may fail on the disconnect it was given: already answered
                raise

    async def _send_busy(self, send: Send, path: str) -> None:
        """503 before the body is read: this many uploads at once are all the server takes."""
        text = (f"the server is busy: {self.max_uploads} uploads are arriving or being classified; try again "
                "shortly")
        if path.startswith("/api/"):
            body, ctype = json.dumps({"error": text, "detail": text}).encode(), b"application/json"
        else:
            body, ctype = text.encode(), b"text/plain; charset=utf-8"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
                   (b"retry-after", b"5")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_413(self, send: Send, path: str) -> None:
        body, headers = self.payload(path)
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
