"""Safe HTTP(S) fetching: timeouts, a byte cap, checked redirects and a guard against private addresses.

Every TCP connection goes through `_GuardedBackend`: it resolves the host itself, refuses loopback,
private, link-local, site-local, multicast, reserved and unspecified addresses (IPv4 and IPv6, including
IPv4-mapped, 6to4, Teredo and NAT64 forms) unless `allow_private`, and then connects to the very
address it checked, so a DNS answer that changes between check and connect (DNS rebinding) cannot
slip through. Redirects are followed by hand, so every hop gets a new connection check and counts
against `max_redirects`; a 429 or 503 with a short Retry-After is asked once more after that wait. Environment
proxies are ignored (a proxy would do its own DNS). At most `max_per_host` requests go to one host at once from
the process (`_HostSlots`), and with `respect_robots_tag` an answer whose X-Robots-Tag forbids use is refused
(`RobotsTag`) before its body is read.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import ipaddress
import os
import socket
import ssl
import threading
import re
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import httpcore
import httpx

from .base import Limits

SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)
RETRIED = (429, 503)  # answers fetched once more when their Retry-After is short and fits before the deadline
MAX_RETRY_WAIT = 5.0  # seconds
CHUNK = 64 * 1024
# headers a forwarded request or response does not carry over: hop-by-hop ones, and those that no longer
# describe a body this module has decompressed and re-measured
_NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "host",
                  "content-length", "content-encoding", "accept-encoding", "trailer"}


class FetchError(Exception):
    """A download that failed or was refused; the message is meant for people."""


class BlockedAddress(FetchError):
    """The host resolves to an address the guard does not allow."""


class RobotsTag(FetchError):
    """The answer's X-Robots-Tag asks not to use it (`Limits.respect_robots_tag`): a note, not an error."""


# img2dataset's default set; `none` is Google's "noindex, nofollow"
ROBOTS_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex", "none")
_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}  # directives with a colon


def robots_refusal(headers: httpx.Headers, user_agent: str) -> str | None:
    """The X-Robots-Tag directive that forbids using this answer (`noai`, or `medimg: noindex`), or None. A value
    for another robot (`googlebot: noindex`) does not count; one for medimg or the User-Agent's product does."""
    ours = {"medimg", user_agent.split("/", 1)[0].split()[0].lower() if user_agent.strip() else "medimg"}
    for value in headers.get_list("x-robots-tag"):
        bot, colon, rest = value.partition(":")
        named = bot.strip().lower() if colon and "," not in bot and " " not in bot.strip() else None
        if named in _VALUED:  # `max-image-preview: large, noai` names no robot
            named = None
        if named is not None and named not in ours:
            continue
        for directive in (rest if named is not None else value).split(","):
            if directive.strip().lower() in ROBOTS_DIRECTIVES:
                return f"{bot.strip()}: {directive.strip()}" if named is not None else directive.strip()
    return None


class _HostSlots:
    """Requests under way to each host from this process, every Fetcher and run together: `take` waits (in
    STOP_POLL steps, so a given-up fetch stops) while a host has `cap` already."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy: dict[str, int] = {}

    def take(self, host: str, cap: int, stopped: Callable[[], bool], url: str) -> float:
        """Hold one of the host's slots; returns the seconds waited for it."""
        start = time.monotonic()
        with self._cond:
            while self._busy.get(host, 0) >= cap:
                if stopped():
                    raise FetchError(f"cancelled: {url} (waiting for one of the {cap} requests to {host} "
                                     "allowed at once: max_per_host)")
                self._cond.wait(STOP_POLL)
            self._busy[host] = self._busy.get(host, 0) + 1
        return time.monotonic() - start

    def give(self, host: str) -> None:
        with self._cond:
            left = self._busy[host] - 1
            if left:
                self._busy[host] = left
            else:
                del self._busy[host]
            self._cond.notify_all()

    def busy(self, host: str) -> int:
        with self._cond:
            return self._busy.get(host, 0)


_slots = _HostSlots()


def _fresh_slots() -> None:  # a forked child: the parent's requests are not its own, and its lock may be held
    global _slots
    _slots = _HostSlots()


os.register_at_fork(after_in_child=_fresh_slots)


_APART = ("set-cookie", "x-robots-tag")  # repeated headers a browser route must send on one by one


def _one_each(headers: httpx.Headers) -> dict[str, str]:
    """Response headers as one value per name, as a browser route fulfils them: repeated ones joined with
    ", ", except Set-Cookie, whose values hold commas (Expires=Thu, 01 …), and X-Robots-Tag (`googlebot: noindex`
    and `noai` joined would be googlebot's only): those are joined with newlines, which Playwright sends on as
    separate headers. Hop-by-hop headers are left out."""
    out: dict[str, str] = {}
    for key, value in headers.multi_items():
        if key.lower() in _NOT_FORWARDED:
            continue
        name = next((k for k in out if k.lower() == key.lower()), key)
        out[name] = (out[name] + ("\n" if key.lower() in _APART else ", ") + value) if name in out else value
    return out

@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    data: bytes
    content_type: str | None  # media type only, lower case, without parameters
    status: int = 200
    headers: dict = field(default_factory=dict)


# --- the address guard -------------------------------------------------------------------------

_CHECKS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
    ("is_site_local", "site-local"),  # fec0::/10: deprecated, but still routed inside networks; Python's is_global
)                                      # takes it for a public address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_reason(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address may not be contacted ("loopback", "private", …), or None if it is public."""
    ip = ipaddress.ip_address(str(address).strip("[]").split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:a.b.c.d is a.b.c.d
        inner = blocked_reason(ip.ipv4_mapped)
        return f"{inner} (IPv4-mapped)" if inner else None
    if ip.version == 6:
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner:
                return f"{inner} (embedded in IPv6)"
    for attr, name in _CHECKS:
        if getattr(ip, attr, False):  # IPv4 has no is_site_local
            return name
    if not ip.is_global:
        return "non-global"
    return None


# Lookups run here so they can be waited for with a timeout. A lookup cannot be stopped: one a name server never
# answers holds its thread for as long as the system resolver waits (10 s and more), after its fetch gave up. So
# the pool is larger than the lookups the server makes at once (its job slots × max_concurrency, renders' guards),
# and a lookup given up before it started is cancelled: one page naming many hosts under a silent name server
# cannot leave every other visitor's lookups queued behind its own until they time out.
DNS_THREADS = 64
_dns_pool = ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="medimg-dns")


def resolve(host: str, port: int, allow_private: bool, timeout: float | None) -> list[str]:
    """The addresses of `host`, checked against the guard; raises BlockedAddress or FetchError."""
    host = host.strip("[]")
    try:
        addresses = [host]
        ipaddress.ip_address(host)
    except ValueError:
        future = _dns_pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        try:
            infos = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()  # still queued: never run for nobody
            raise FetchError(f"DNS lookup of {host} timed out") from None
        except OSError as exc:
            why = {socket.EAI_NONAME: "no such host", socket.EAI_AGAIN: "the name server did not answer for now"}
            raise FetchError(f"cannot resolve host {host}: {why.get(getattr(exc, 'errno', None), exc)}") from None
        except UnicodeError:  # the idna codec of getaddrinfo: `a..com`, a part over 63 characters (was a 500)
            raise FetchError(f"cannot resolve host {host}: it is not a host name (each part between dots must "
                             "be 1 to 63 characters)") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise FetchError(f"cannot resolve host {host}")
    if not allow_private:
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                shown = " is" if address == host else f" resolves to {address}, which is"
                raise BlockedAddress(
                    f"refused: host {host}{shown} {'an' if reason[0] in 'aeiou' else 'a'} {reason} address "
                    "(private addresses are blocked unless allowed: --allow-private, or Limits(allow_private=True))")
    return addresses


def _not_web(parsed: httpx.URL, url: str) -> str:
    """Why a URL that is not http(s) is not fetched."""
    if not url.strip():
        return "the URL is empty"
    if not parsed.scheme:
        return (f"only http and https URLs are fetched, and {url} has no scheme (a web address starts http:// or "
                "https://)")
    return f"only http and https URLs are fetched, not {parsed.scheme}: {url}"


def check_url(url: str, allow_private: bool, timeout: float | None = 5.0) -> None:
    """Raise FetchError unless `url` is http(s) and its host passes the guard."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # an IDNA name that does not decode (http://xn--/) raises here, not at its parse
    except Exception as exc:
        raise FetchError(f"invalid URL {short_url(url, 200)!r}: {exc}") from None
    if parsed.scheme not in SCHEMES:
        raise FetchError(_not_web(parsed, url))
    if not host:
        raise FetchError(f"URL has no host: {url}")
    if not port_ok(parsed.port):  # httpx takes :99999 and :-1; a connection to it fails with a riddle
        raise FetchError(f"invalid URL {short_url(url, 200)!r}: its port {parsed.port} is not from 1 to 65535")
    resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80), allow_private, timeout)


def short_url(url: str, keep: int | None = None) -> str:
    """A URL as a record or an error names it: a data: URL by its header and length (its bytes are the image), and
    with `keep` a long one cut after `keep` characters, with its length (httpx refuses past 65,536 characters; each
    image's error of a page's 60 KB addresses held all of it, and its locator has it already)."""
    if url[:5].lower() == "data:":
        return f"{url.split(',', 1)[0]},… ({len(url)} characters)"
    if keep is None or len(url) <= keep + 50:
        return url
    return f"{url[:keep]}… ({len(url):,} characters)"


def port_ok(port: int | None) -> bool:
    return port is None or 0 < port < 65536


# --- deadline-aware network backend ----------------------------------------------------------

_local = threading.local()  # .deadline: monotonic time at which the current fetch must stop; .stopped: given up?;
#                             .reused: the request just written went on a connection that had answered before
STOP_POLL = 0.5  # seconds between looks at whether a waiting read's fetch was given up


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("total timeout exceeded")
    return left if timeout is None else min(timeout, left)


class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner
        self.answered = False  # an answer was read from it: a request written now goes on a reused connection

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.answered = True
        limit = _clamp(timeout, httpcore.ReadTimeout)
        stopped = getattr(_local, "stopped", None)
        if stopped is None:
            return self._inner.read(max_bytes, limit)
        # waited out in short steps, so a fetch that is given up stops within STOP_POLL even when no byte comes
        end = None if limit is None else time.monotonic() + limit
        while True:
            if stopped():
                raise FetchError("cancelled: the run was stopped")
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 1e-3:
                raise httpcore.ReadTimeout("timed out")
            step = STOP_POLL if left is None else min(STOP_POLL, left)
            try:
                return self._inner.read(max_bytes, step)
            except httpcore.ReadTimeout:
                if end is not None and time.monotonic() >= end - 1e-3:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _local.reused = self.answered
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        inner = self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        return _GuardedStream(inner)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve, check, then connect to the checked address (never re-resolving)."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private
        self._sync = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolve(host, port, self.allow_private, _clamp(timeout, httpcore.ConnectTimeout))
        last: Exception | None = None
        for address in addresses:
            try:
                stream = self._sync.connect_tcp(address, port, _clamp(timeout, httpcore.ConnectTimeout),
                                                local_address, socket_options)
                return _GuardedStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last  # type: ignore[misc]

    def connect_unix_socket(self, *args, **kwargs):
        raise FetchError("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def failure(exc: BaseException) -> str:
    """Why a connection failed, in words (the exception's own text when it is none of the usual)."""
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return "the server did not answer in TLS (https); is the address http://?"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip(" )")
        return f"the site's TLS certificate could not be verified ({detail or 'certificate verify failed'})"
    errno = getattr(exc, "errno", None) or next(
        (e.errno for e in (exc.__cause__, exc.__context__) if isinstance(e, OSError)), None)
    if errno == 111 or "Connection refused" in text:
        return "connection refused (nothing listens at that address and port)"
    if errno in (101, 113) or "Network is unreachable" in text or "No route to host" in text:
        return "the network cannot reach that address"
    if "Connection reset" in text or errno == 104:
        return "the server closed the connection"
    if isinstance(exc, httpx.UnsupportedProtocol) and "missing an 'http://'" in text:
        return "the address names no host"  # "http://", "https:///a.png"
    if isinstance(exc, (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)):  # the answer cut short or malformed
        got = re.search(r"received (\d+) bytes, expected (\d+)", text)
        if got:
            return (f"the server closed the connection before the end of its answer (received "
                    f"{int(got[1]):,} of {int(got[2]):,} bytes)")
        if "without sending complete message body" in text:
            return "the server closed the connection before the end of its answer"
        if "without sending a response" in text:
            return "the server closed the connection without answering"
        text = re.sub(r"(?:bytearray\()?b(['\"])(.*?)\1\)?", r"“\2”", text)  # h11 shows the line as a bytes repr
        return f"the server's answer is not valid HTTP: {text}" if text else "the server's answer is not valid HTTP"
    if errno == 115 or "[Errno 115]" in text:  # EINPROGRESS: a connect timeout of 0 leaves no time
        return "no time to connect (the connect timeout is 0)"
    return f"{type(exc).__name__}: {text or 'connection failed'}"


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (building one takes tens of milliseconds)."""
    return httpx.create_ssl_context(trust_env=False)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool, max_connections: int):
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=_GuardedBackend(allow_private),
        )


# --- fetching ---------------------------------------------------------------------------------


class Fetcher:
    """One HTTP client with the guard; thread-safe, so a page's images can share it."""

    def __init__(self, limits: Limits | None = None, cancel: threading.Event | None = None,
                 cookies: httpx.Cookies | None = None):
        """`cancel`, set by someone else (a request that timed out), stops downloads as `close` does; `cookies`
        (another Fetcher's, copied) are sent where they belong, as those the answers set."""
        self.limits = limits or Limits()
        lim = self.limits
        self._cancelled = threading.Event()
        self._outer = cancel
        self.client = httpx.Client(
            transport=_GuardedTransport(lim.allow_private, max(2, lim.max_concurrency * 2)),
            follow_redirects=False,
            trust_env=False,
            cookies=cookies,
            headers={"User-Agent": lim.user_agent, "Accept-Encoding": "identity"},
            timeout=httpx.Timeout(connect=lim.connect_timeout, read=lim.read_timeout,
                                  write=lim.read_timeout, pool=lim.total_timeout),
        )

    def _stopped(self) -> bool:
        return self._cancelled.is_set() or (self._outer is not None and self._outer.is_set())

    def close(self) -> None:
        """Stop downloads in progress (at their next chunk) and release connections."""
        self._cancelled.set()
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fetch(self, url: str, accept: str | None = None, max_bytes: int | None = None,
              refuse: Callable[[httpx.Headers], None] | None = None,
              peek: Callable[[httpx.Headers, bytes], None] | None = None, peek_at: int = CHUNK,
              robots: bool = True) -> Fetched:
        """GET `url` within every limit; raises FetchError with a clear reason. `refuse(headers)` may raise to
        give up on the final response before its body is read, and `peek(headers, first)` to give up on it once
        its first `peek_at` bytes have come (not called for a shorter body). With respect_robots_tag, an answer
        whose X-Robots-Tag forbids its use raises RobotsTag, unless `robots` is False (a stylesheet)."""
        with self._limited(url):
            return self._follow(url, accept, max_bytes or self.limits.max_download_bytes, refuse,
                                peek and (peek_at, peek), robots and self.limits.respect_robots_tag)

    def exchange(self, method: str, url: str, headers: dict | None = None, body: bytes | None = None,
                 max_bytes: int | None = None) -> Fetched:
        """One request, redirects not followed and any status returned (for a browser that handles both),
        within the same guard, timeouts and byte cap; its body comes back decompressed."""
        with self._limited(url):
            parsed = httpx.URL(url)
            if parsed.scheme not in SCHEMES:
                raise FetchError(_not_web(parsed, url))
            sent = {k: v for k, v in (headers or {}).items() if k.lower() not in _NOT_FORWARDED}
            request = self.client.build_request(method, parsed, headers=sent, content=body or None)
            with self._slot(parsed, url):
                try:
                    response = self._send(request)
                except BlockedAddress as exc:
                    raise BlockedAddress(f"{url}: {exc}") from None
                try:
                    data = (b"" if method == "HEAD" else
                            self._read(response, max_bytes or self.limits.max_download_bytes, url))
                    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
                    return Fetched(url, data, ctype, response.status_code, _one_each(response.headers))
                finally:
                    response.close()

    def _send(self, request: httpx.Request) -> httpx.Response:
        """The answer's headers, asked once more (a GET or HEAD) when a kept-alive connection fails before them: its
        server closed it as the request went, or the last answer on it sent more bytes than its Content-Length said
        (the rest read as this answer: "illegal status line"); browsers retry such a request on a new connection."""
        _local.reused = False
        try:
            return self.client.send(request, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if not getattr(_local, "reused", False) or request.method not in ("GET", "HEAD") or self._stopped():
                raise
        return self.client.send(request, stream=True)

    @contextlib.contextmanager
    def _slot(self, parsed: httpx.URL, url: str):
        """One of the host's `max_per_host` slots, held for one request; the wait for it is added to the fetch's
        deadline (`total_timeout` is the download's own time), and ends when the fetch is given up."""
        host = (parsed.host or "").lower().rstrip(".")  # example.com. is example.com
        waited = _slots.take(host, self.limits.max_per_host, self._stopped, url)
        if waited and getattr(_local, "deadline", None) is not None:
            _local.deadline += waited
        try:
            yield
        finally:
            _slots.give(host)

    @contextlib.contextmanager
    def _limited(self, url: str):
        """The total-time deadline of one fetch, and its failures as FetchError."""
        if self.limits.offline:
            raise FetchError(f"not fetched: network access is off (offline): {url}")
        total = self.limits.total_timeout
        _local.deadline = time.monotonic() + total
        _local.stopped = self._stopped
        try:
            yield
        except httpx.TimeoutException as exc:
            if time.monotonic() >= _local.deadline - 0.05:
                raise FetchError(f"total timeout of {round(total, 1):g}s exceeded fetching {url}") from None
            raise FetchError(f"{_timeout_kind(exc)} timeout fetching {url}") from None
        except httpcore.TimeoutException:  # raised by the clamp before httpx could map it
            raise FetchError(f"total timeout of {round(total, 1):g}s exceeded fetching {url}") from None
        except FetchError:
            raise
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid URL {short_url(url, 200)!r}: {exc}") from None
        except (httpx.HTTPError, httpcore.NetworkError, OSError, ValueError) as exc:
            if self._stopped():
                raise FetchError(f"cancelled: {url}") from None
            raise FetchError(f"could not fetch {url}: {failure(exc)}") from None
        finally:
            _local.deadline = _local.stopped = None

    def _follow(self, url: str, accept: str | None, cap: int,
                refuse: Callable[[httpx.Headers], None] | None = None,
                peek: tuple[int, Callable[[httpx.Headers, bytes], None]] | None = None,
                robots: bool = False) -> Fetched:
        current = url
        headers = {"Accept": accept} if accept else {}
        hops, waited = 0, None  # redirects followed; the seconds a 429 or 503 was waited out, once
        while True:
            if self._stopped():
                raise FetchError(f"cancelled: {url}")
            parsed = httpx.URL(current)
            if parsed.scheme not in SCHEMES:
                raise FetchError(_not_web(parsed, current))
            with self._slot(parsed, current):
                got = self._hop(url, current, parsed, headers, hops, waited, cap, refuse, peek, robots)
            if isinstance(got, Fetched):
                return got
            current, hops, waited = got

    def _hop(self, url: str, current: str, parsed: httpx.URL, headers: dict, hops: int, waited: float | None,
             cap: int, refuse, peek, robots: bool) -> Fetched | tuple[str, int, float | None]:
        """One request of `_follow`: the final answer, or where to go next (the URL, redirects so far, the
        Retry-After waited)."""
        try:
            response = self._send(self.client.build_request("GET", parsed, headers=headers))
        except BlockedAddress as exc:
            raise BlockedAddress(f"{current}: {exc}") from None
        try:
            location = response.headers.get("location")
            if response.status_code in REDIRECTS and location:
                hops += 1
                if hops > self.limits.max_redirects:
                    raise FetchError(
                        f"too many redirects (more than {self.limits.max_redirects}) starting at {url}")
                return str(parsed.join(location.strip())), hops, waited
            wait = retry_after(response.headers) if response.status_code in RETRIED else None
            if waited is None and wait is not None and wait <= MAX_RETRY_WAIT and _time_left() > wait + 1:
                response.close()
                self._pause(wait, current)
                return current, hops, wait
            if response.status_code >= 400:
                said = (f" (tried again {_seconds(waited)} later, as its Retry-After asked)" if waited is not None
                        else f" (it asks to wait {_wait_asked(response.headers, wait)}: Retry-After)"
                        if wait is not None else "")
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase} for {current}{said}")
            part = _unasked_part(response)
            if part:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase} for {current}: {part}")
            if robots:
                directive = robots_refusal(response.headers, self.limits.user_agent)
                if directive:
                    raise RobotsTag(f"not read: its X-Robots-Tag says {directive} (respect_robots_tag)")
            if refuse is not None:
                refuse(response.headers)
            data = self._read(response, cap, current, peek)
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
            return Fetched(current, data, ctype, response.status_code, dict(response.headers))
        finally:
            response.close()

    def _pause(self, seconds: float, url: str) -> None:
        """Wait `seconds` (a Retry-After), stopping at once when the fetch is given up."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._stopped():
                raise FetchError(f"cancelled: {url}")
            time.sleep(min(STOP_POLL, left))

    def _read(self, response: httpx.Response, cap: int, url: str,
              peek: tuple[int, Callable[[httpx.Headers, bytes], None]] | None = None) -> bytes:
        declared = response.headers.get("content-length", "")
        field = " (max_download_bytes)" if cap == self.limits.max_download_bytes else ""  # the cap a user can raise
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(f"too large: {url} declares {int(declared)} bytes, over the cap of {cap} bytes{field}")
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"unsupported Content-Encoding {encoding!r} from {url}")
        # Raw bytes, decompressed here in bounded steps, so a compression bomb never expands past the cap.
        inflate = _Inflater(encoding) if encoding not in ("", "identity") else None
        buf = bytearray()
        for chunk in response.iter_raw(CHUNK):
            if self._stopped():
                raise FetchError(f"cancelled: {url}")
            if inflate is None:
                buf += chunk
            else:
                try:
                    inflate.feed(chunk, buf, cap + 1 - len(buf))
                except zlib.error as exc:
                    raise FetchError(f"corrupt {encoding} content from {url}: {exc}") from None
            if len(buf) > cap:
                raise FetchError(f"too large: {url} sent more than the cap of {cap} bytes{field}")
            if peek is not None and len(buf) >= peek[0]:  # its first bytes: the caller may give up on the rest
                peek[1](response.headers, bytes(buf[:peek[0]]))
                peek = None
            _clamp(None, httpcore.ReadTimeout)  # the deadline also holds between chunks
        return bytes(buf)


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), never producing more than asked."""

    def __init__(self, encoding: str):
        self.raw_fallback = encoding == "deflate"
        self.z = zlib.decompressobj(15 if encoding == "deflate" else 31)
        self.started = False

    def feed(self, data: bytes, out: bytearray, room: int) -> None:
        while data and room > 0:
            try:
                piece = self.z.decompress(data, room)
            except zlib.error:
                if not (self.raw_fallback and not self.started):
                    raise
                self.z, self.raw_fallback = zlib.decompressobj(-15), False
                continue
            self.started = True
            out += piece
            room -= len(piece)
            data = self.z.unconsumed_tail
            if self.z.eof:
                return


def _unasked_part(response: httpx.Response) -> str | None:
    """Why a success answers no plain GET (never conditional, never for a range): 204 and 304 have no body, and a
    206 whose Content-Range is not the whole file holds only part of it (a file cut short, read as corrupt)."""
    if response.status_code in (204, 304):
        return "the server sent no content"
    if response.status_code == 206:
        got = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+)\s*", response.headers.get("content-range", ""), re.I)
        if got is None or int(got[1]) != 0 or int(got[2]) + 1 != int(got[3]):
            shown = f"bytes {got[1]}-{got[2]} of {int(got[3]):,}" if got else "part of it"
            return f"the server sent only {shown} (no range was asked)"
    return None


def _time_left() -> float:
    """Seconds before the current fetch's deadline (infinite outside a fetch)."""
    deadline = getattr(_local, "deadline", None)
    return float("inf") if deadline is None else deadline - time.monotonic()


def retry_after(headers: httpx.Headers) -> float | None:
    """The seconds a Retry-After header asks to wait (a number of seconds or an HTTP date), or None."""
    value = (headers.get("retry-after") or "").strip()
    if _delay_seconds(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when is None or when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year past 2**31
        return None


def _delay_seconds(value: str) -> bool:
    """Whether a Retry-After is a number of seconds: ASCII digits (str.isdigit() takes `²` too, which float() refuses,
    and the fetch's error said that instead of the HTTP status)."""
    return value.isascii() and value.isdigit()


def _wait_asked(headers: httpx.Headers, seconds: float) -> str:
    """A Retry-After's wait in words: `120 s`, `about 3 h`; an HTTP date as the date (`until Sun, 06 Dec 2026
    09:00:00 GMT, about 2 h from now`)."""
    value = (headers.get("retry-after") or "").strip()
    if _delay_seconds(value):
        return _seconds(seconds)
    when = " ".join(value.split())[:40]
    return f"until {when}, " + ("a moment ago" if seconds <= 0 else f"{_seconds(seconds)} from now")


def _seconds(seconds: float) -> str:
    """A wait in words: whole seconds up to 1000 (`120 s`, `0.5 s`), then minutes, hours or days; past a year,
    `over a year`."""
    if seconds < 1000:
        return f"{round(seconds, 1):g} s"
    if seconds > 365 * 86400:
        return "over a year"
    unit, size = next((u, n) for u, n in (("days", 86400), ("h", 3600), ("min", 60)) if seconds >= 2 * n or n == 60)
    return f"about {round(seconds / size)} {unit}"


def _timeout_kind(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "read"
    return "network"


def fetch(url: str, limits: Limits | None = None, accept: str | None = None) -> Fetched:
    """One download with a fresh client (use a Fetcher to share connections)."""
    with Fetcher(limits) as fetcher:
        return fetcher.fetch(url, accept)
