"""Optional shared-secret access for a deployed server: every path but /api/health needs the token.

Given as `Authorization: Bearer <token>` (programs) or as the password of HTTP Basic auth with any user
name (browsers ask for it themselves and then send it with every request the page makes, so the Gradio
page works unchanged). Set with `medimg serve --token-file FILE` or the MEDIMG_TOKEN environment variable;
use it behind TLS, as Basic auth sends the token in the clear.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import error_body, route_path

log = logging.getLogger("medimg.server")

OPEN_PATHS = {"/api/health"}  # for load balancers and monitoring: says only that the model is up


class TokenAuth:
    def __init__(self, app: ASGIApp, token: str):
        if not token:
            raise ValueError("an empty token would let everyone in")
        self.app = app
        self.token = token.encode()  # UTF-8, as browsers send a Basic password and curl sends a header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_open(scope) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if Headers(scope=scope).get("authorization"):  # a token given and wrong (a browser's first try has none)
            client = scope.get("client") or ("?", 0)  # the proxy's client, as the access log names it
            log.warning("a wrong access token from %s was refused", client[0])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(error_body("this server needs its access token (HTTP Basic password or Bearer "
                                     "token)")).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Basic realm="medimg", charset="UTF-8"')]})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        scheme, _, value = Headers(scope=scope).get("authorization", "").partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer":
            given = value.encode("latin-1", errors="replace")  # headers arrive as latin-1 text
        elif scheme == "basic":
            try:
                given = base64.b64decode(value, validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        else:
            return False
        return secrets.compare_digest(given, self.token)


def is_open(scope: Scope) -> bool:
    """GET or HEAD of an open path: any other method there is refused without the token, as everywhere."""
    return scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and route_path(scope) in OPEN_PATHS


def read_token(path) -> str:
    """The first line of a token file, stripped; ValueError when it is empty or cannot be read."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a BOM (Notepad's "UTF-8 with BOM") is not part of it
            token = f.readline().strip()
    except OSError as exc:  # "[Errno 2] No such file or directory: 'tok'" said neither what nor what to do
        raise ValueError(f"{path}: cannot read the token file ({exc.strerror or exc}); give a file whose first line "
                         "is the token, readable by the user running the server") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the token file is not UTF-8 text") from None
    if not token:
        raise ValueError(f"{path}: the token file is empty")
    return token
