"""Whether `medimg serve` can listen on its address, and what to do when it cannot.

Kept apart from `medimg.server` (which imports Gradio) so the CLI can say so before its slow start."""

from __future__ import annotations

import errno
import socket

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def cannot_listen(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on (the port is taken, the host is not this machine's) and what to do
    instead, or None."""
    try:
        # an empty --host is every interface, as asyncio's create_server (under uvicorn) takes it
        for family, kind, proto, _, address in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                                  flags=socket.AI_PASSIVE):
            _probe(family, kind, proto, address)
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = _hint(exc, host, port)
        return f"{why}; {hint}" if hint else why
    return None


def _probe(family: int, kind: int, proto: int, address: tuple) -> None:
    """Binds one of the host's addresses as the server will (asyncio's create_server under uvicorn): every address
    the name has, a family this machine lacks passed over, IPv6 apart from IPv4 (so `::` is free while another
    program has 0.0.0.0 on the port)."""
    try:
        probe = socket.socket(family, kind, proto)
    except OSError:
        return
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        probe.bind(address)


def _hint(exc: OSError, host: str, port: int) -> str:
    other = port + 1 if port < 65535 else 8080
    if isinstance(exc, socket.gaierror):
        return f"{host} is not a name or address of this machine: give --host 127.0.0.1, or 0.0.0.0 for every interface"
    if exc.errno == errno.EADDRINUSE:
        return (f"another program has that port (a medimg serve still running?): stop it, or give another port, "
                f"--port {other} (make serve PORT={other})")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{host} is not an address of this machine: give one of its own with --host (127.0.0.1, or 0.0.0.0 "
                "for every interface)")
    if exc.errno == errno.EACCES and port < 1024:
        return "a port under 1024 needs root: give one from 1024 up, --port 7860"
    return ""
