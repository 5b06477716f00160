"""Which `Host` names the server answers to, against DNS rebinding.

A page on another site can make a name of its own point at 127.0.0.1; the browser then takes the server for that
site's and lets the page use it as its own. The request still carries the other site's name in `Host`, so a
server that answers only to its own names (localhost, IP addresses, names it was given) is out of that page's
reach. `medimg serve` turns this on for a token-less server on loopback (a token stops such a page too).
"""

from __future__ import annotations

import ipaddress
import json
import logging

import idna

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import is_open  # GET|HEAD /api/health, which says only that the model is up: a probe by any name
from .limits import error_body, route_path

log = logging.getLogger("medimg.server")

LOGGED_NAMES = 100  # distinct refused names logged, then no more (a scan would fill the log)


def host_name(header: str) -> str:
    """The name in a Host header, lower case, without its port or a trailing dot ("[::1]:7860" → "::1")."""
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 literal, maybe with a port
        return header[1:header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return ascii_name(header.rstrip("."))


def ascii_name(name: str) -> str:
    """A name with letters beyond ASCII as browsers send it in Host, in punycode ("klinikum-fürth.de" →
    "xn--klinikum-frth-5ob.de"); ASCII names, and names IDNA refuses, as they are."""
    if name.isascii():
        return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name


def local_name(name: str) -> bool:
    """An IP address or localhost (and *.localhost, which browsers keep on loopback): no other site can make
    its pages' origin one of these, so they are never a rebinding."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.partition("%")[0])  # a zone (fe80::1%eth0) is part of an address
    except ValueError:
        return False
    return True


class OwnHostsOnly:
    """Answers requests whose Host is a local name (see `local_name`) or one of `names`, and GET|HEAD /api/health
    (as the token does: a load balancer's probe by the site's name); refuses others with 403.
    A request without a Host (HTTP/1.0) is answered: a browser always sends one."""

    def __init__(self, app: ASGIApp, names=()):
        self.app = app
        self.names = {host_name(n) for n in names}
        self.logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        name = host_name(header) if header is not None else ""
        if header is None or local_name(name) or name in self.names or is_open(scope):
            await self.app(scope, receive, send)
            return
        if name not in self.logged and len(self.logged) < LOGGED_NAMES:
            self.logged.add(name)
            log.warning("a request for the name %r was refused: this server answers only to localhost, IP "
                        "addresses and --allowed-host names", name[:200])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        given = "".join(f", {n}" for n in sorted(self.names)[:5]) + (", …" if len(self.names) > 5 else "")
        text = (f"this server does not answer to the name {name[:200]!r}: it answers to localhost, IP addresses"
                f"{given} (a page of another site could point another name at it). Start it with --allowed-host "
                f"{name[:200]} (behind a reverse proxy: the name the proxy passes on in Host), or with an access "
                f"token, to answer to that name")
        path = route_path(scope)
        if path == "/api" or path.startswith("/api/"):  # the API's error shape; the page's, plain text
            body, kind = json.dumps(error_body(text)).encode(), b"application/json"
        else:
            body, kind = text.encode(), b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", kind), (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
