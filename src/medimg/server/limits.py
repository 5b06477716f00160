"""Refuse oversized API requests with a JSON 413 before reading their bodies."""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiBodyLimit:
    """For /api paths: answer 413 from Content-Length alone, and give every 413 the same readable JSON.

    Bodies without a Content-Length are still counted by the routes' own `max_body_size`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes
        mb = max_bytes / (1024 * 1024)
        text = f"the request is too large: uploads may be at most {mb:g} MB per request"
        self.payload = json.dumps({"error": text, "detail": text}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            await self._send_413(send)
            return
        rewriting = False

        async def send_json_413(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 413:
                rewriting = True
                message = {"type": "http.response.start", "status": 413, "headers": self._headers()}
            elif message["type"] == "http.response.body" and rewriting:
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": self.payload}
            await send(message)

        await self.app(scope, receive, send_json_413)

    def _headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", b"application/json"), (b"content-length", str(len(self.payload)).encode()),
                (b"connection", b"close")]

    async def _send_413(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 413, "headers": self._headers()})
        await send({"type": "http.response.body", "body": self.payload})
