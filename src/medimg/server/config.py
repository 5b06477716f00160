"""Server settings: what `medimg serve` passes in, with sane defaults for a shared deployment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..sources import Limits


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    allow_private: bool = False  # let URLs reach loopback/private/link-local addresses
    offline: bool = False  # fetch nothing: URL requests are refused, remote images in pages not fetched
    model_dir: Path | None = field(default_factory=lambda: _env_path("MEDIMG_MODEL_DIR"))
    max_upload_bytes: int = 200 * 1024 * 1024  # one request body (all files together)
    max_files: int = 200  # files in one request
    max_body_bytes: int = 1024 * 1024  # any other request body (the page's own JSON calls)
    request_timeout: float = 300.0  # seconds of classifying per request
    max_jobs: int = 2  # requests classified at the same time (API and UI each)
    thumbnail_size: int = 256  # UI gallery thumbnails
    root_path: str = ""  # the path prefix a reverse proxy serves this under (e.g. /medimg); "" at the root
    graceful_timeout: float = 30.0  # seconds requests in flight get to finish when the server is stopped
    # shared secret every request but /api/health must carry (Bearer, or the Basic password); None: open
    token: str | None = field(default_factory=lambda: _env_token(), repr=False)
    # Host names answered besides localhost and IP addresses (against DNS rebinding); None: any name
    allowed_hosts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ValueError for a cap or time limit no request could meet: such a server is not started."""
        for name, value in (("max_upload_bytes (serve --max-upload-mb)", self.max_upload_bytes),
                            ("max_files", self.max_files), ("max_body_bytes", self.max_body_bytes),
                            ("max_jobs", self.max_jobs)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value:g}: every request would be refused")
        if not (math.isfinite(self.request_timeout) and self.request_timeout > 0):
            why = ": every request would time out" if self.request_timeout <= 0 else ""
            raise ValueError(f"request_timeout (serve --request-timeout) must be a finite number of seconds above 0, "
                             f"not {self.request_timeout:g}{why}")
        if self.token is not None and not self.token.strip():
            raise ValueError("token is empty: it would let everyone in (None serves without a token)")
        if not (math.isfinite(self.graceful_timeout) and self.graceful_timeout >= 0):
            raise ValueError(f"graceful_timeout (serve --graceful-timeout) must be a number of seconds from 0 up, "
                             f"not {self.graceful_timeout:g}")

    def limits(self, render: bool = False) -> Limits:
        lim = Limits(allow_private=self.allow_private, render=render, offline=self.offline)
        # a file as big as --max-upload-mb allows is read, not refused by the smaller default per-file cap
        lim.max_input_bytes = max(lim.max_input_bytes, self.max_upload_bytes)
        lim.zip_max_bytes = max(lim.zip_max_bytes, lim.max_input_bytes)
        return lim


def answered_hosts(given: list[str], host: str, token: str | None) -> tuple[str, ...] | None:
    """`allowed_hosts` for `serve`: the names given ("*": any); none given, only local names for a server on
    loopback without a token (a page of another site could reach it by DNS rebinding), else any."""
    if "*" in given:
        return None
    if given:
        return tuple(given)
    return () if token is None and loopback(host) else None


def loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _env_token() -> str | None:
    """MEDIMG_TOKEN, stripped; None when unset. Set but blank is an error: a secret that failed to fill in would
    otherwise start the server open to anyone."""
    value = os.environ.get("MEDIMG_TOKEN")
    if value is not None and not value.strip():
        raise ValueError("MEDIMG_TOKEN is set but empty: give the token, or unset it to serve without one")
    return value.strip() if value is not None else None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
