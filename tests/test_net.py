"""net.py: the address guard, redirects, timeouts and the byte cap, against servers on 127.0.0.x."""

from __future__ import annotations

import socket
import time

import pytest

from medimg.sources import net
from medimg.sources.base import Limits
from webserver import WebServer
import threading

OPEN = dict(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=5)


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


@pytest.fixture
def srv2():
    """A second server on another loopback address, 127.0.0.2."""
    with WebServer("127.0.0.2") as server:
        yield server


@pytest.fixture
def public_127001(monkeypatch):
    """Treat exactly 127.0.0.1 as a public address, so a chain can start there and be refused later."""
    real = net.blocked_reason
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))


BLOCKED = [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", ""), ("255.255.255.255", ""), ("100.64.0.1", ""), ("fc00::1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
    ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
    ("[::1]", "loopback"),
]


@pytest.mark.parametrize("address,kind", BLOCKED)
def test_guard_blocks(address, kind):
    reason = net.blocked_reason(address)
    assert reason, f"{address} should be blocked"
    assert kind in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_guard_allows_public(address):
    assert net.blocked_reason(address) is None


def test_default_refuses_loopback_without_connecting(srv):
    with pytest.raises(net.BlockedAddress, match="loopback"):
        net.fetch(srv.url("/a"), Limits())
    assert srv.hits["/a"] == 0


def test_dns_name_localhost_refused(srv):
    srv.add("/a", b"x", "text/plain")
    with pytest.raises(net.BlockedAddress, match=r"localhost resolves to .*loopback"):
        net.fetch(f"http://localhost:{srv.port}/a", Limits())
    assert srv.hits["/a"] == 0
    assert net.fetch(f"http://localhost:{srv.port}/a", Limits(**OPEN)).data == b"x"


def test_ipv4_mapped_ipv6_literal_refused(srv):
    with pytest.raises(net.BlockedAddress, match="loopback"):
        net.fetch(f"http://[::ffff:127.0.0.1]:{srv.port}/a", Limits())
    assert srv.hits["/a"] == 0


def test_check_url():
    with pytest.raises(net.BlockedAddress):
        net.check_url("http://10.0.0.1/x", allow_private=False)
    with pytest.raises(net.FetchError, match="only http and https"):
        net.check_url("file:///etc/passwd", allow_private=True)
    net.check_url("http://10.0.0.1/x", allow_private=True)  # allowed on request, nothing is contacted


def test_fetch_returns_bytes_final_url_type_and_sends_user_agent(srv):
    srv.add("/a", b"hello", "Text/Plain; charset=utf-8")
    srv.redirect("/r", "/a", 301)
    got = net.fetch(srv.url("/r"), Limits(**OPEN, user_agent="medimg-test/1"))
    assert (got.data, got.url, got.content_type) == (b"hello", srv.url("/a"), "text/plain")
    assert srv.headers["/a"]["User-Agent"] == "medimg-test/1"


def test_redirect_chain_to_private_address_refused_at_that_hop(srv, srv2, public_127001):
    srv2.add("/secret", b"secret", "text/plain")
    srv.redirect("/start", "/hop")
    srv.redirect("/hop", srv2.url("/secret"))
    with pytest.raises(net.BlockedAddress, match=r"127\.0\.0\.2.*loopback"):
        net.fetch(srv.url("/start"), Limits())
    assert (srv.hits["/start"], srv.hits["/hop"], srv2.hits["/secret"]) == (1, 1, 0)
    # the same chain goes through when private addresses are allowed
    assert net.fetch(srv.url("/start"), Limits(**OPEN)).data == b"secret"


def test_redirect_to_dns_name_of_loopback_refused(srv, srv2, monkeypatch):
    real = net.blocked_reason  # this time the chain starts on 127.0.0.2, treated as public
    monkeypatch.setattr(net, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.2" else real(ip))
    srv.add("/secret", b"secret", "text/plain")
    srv2.redirect("/start", f"http://localhost:{srv.port}/secret")
    with pytest.raises(net.BlockedAddress, match="localhost resolves to"):
        net.fetch(srv2.url("/start"), Limits())
    assert (srv2.hits["/start"], srv.hits["/secret"]) == (1, 0)


def test_redirect_to_other_scheme_refused(srv):
    srv.redirect("/start", "file:///etc/passwd")
    with pytest.raises(net.FetchError, match="only http and https"):
        net.fetch(srv.url("/start"), Limits(**OPEN))


def test_redirect_loop_stops_at_limit(srv):
    srv.redirect("/loop", "/loop")
    with pytest.raises(net.FetchError, match=r"too many redirects \(more than 3\)"):
        net.fetch(srv.url("/loop"), Limits(**OPEN, max_redirects=3))
    assert srv.hits["/loop"] == 4


def test_redirects_up_to_the_limit_are_followed(srv):
    for i in range(3):
        srv.redirect(f"/r{i}", f"/r{i + 1}")
    srv.add("/r3", b"end", "text/plain")
    assert net.fetch(srv.url("/r0"), Limits(**OPEN, max_redirects=3)).data == b"end"
    with pytest.raises(net.FetchError, match="too many redirects"):
        net.fetch(srv.url("/r0"), Limits(**OPEN, max_redirects=2))


def test_slow_server_hits_total_timeout(srv):
    srv.slow("/slow", b"x" * 200, interval=0.1)  # each byte arrives well within the read timeout
    started = time.monotonic()
    with pytest.raises(net.FetchError, match="total timeout of 1s exceeded"):
        net.fetch(srv.url("/slow"), Limits(allow_private=True, read_timeout=5, total_timeout=1))
    assert time.monotonic() - started < 2.5


def test_a_total_timeout_left_over_from_waiting_is_said_rounded(srv):
    """The API hands a request's fetches what is left of its time limit (9.90003 s, say): said rounded."""
    srv.slow("/slow", b"x" * 200, interval=0.1)
    with pytest.raises(net.FetchError, match=r"total timeout of 0\.7s exceeded"):
        net.fetch(srv.url("/slow"), Limits(allow_private=True, read_timeout=5, total_timeout=0.70003))


def test_stalled_server_hits_read_timeout(srv):
    srv.slow("/stall", b"xy", interval=3)
    started = time.monotonic()
    with pytest.raises(net.FetchError, match="read timeout"):
        net.fetch(srv.url("/stall"), Limits(allow_private=True, read_timeout=0.5, total_timeout=10))
    assert time.monotonic() - started < 2


def test_huge_response_stops_at_cap_without_reading_it_all(srv):
    size = 400 * 1024 * 1024
    srv.huge("/huge", size, declare_length=False)
    started = time.monotonic()
    with pytest.raises(net.FetchError, match="too large.*more than the cap of 1048576"):
        net.fetch(srv.url("/huge"), Limits(**OPEN, max_download_bytes=1024 * 1024))
    assert time.monotonic() - started < 3
    time.sleep(0.2)
    assert srv.sent["/huge"] < 64 * 1024 * 1024  # the server could only fill the socket buffers


def test_declared_length_over_cap_refused_before_reading(srv):
    srv.huge("/huge", 400 * 1024 * 1024, declare_length=True)
    with pytest.raises(net.FetchError, match="declares 419430400 bytes"):
        net.fetch(srv.url("/huge"), Limits(**OPEN, max_download_bytes=1024 * 1024))


def test_http_error_status(srv):
    with pytest.raises(net.FetchError, match="HTTP 404 Not Found"):
        net.fetch(srv.url("/missing"), Limits(**OPEN))


def test_connection_refused_is_a_fetch_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(net.FetchError, match="could not fetch"):
        net.fetch(f"http://127.0.0.1:{port}/", Limits(**OPEN))


def test_connects_to_the_checked_address_not_a_second_lookup(srv, monkeypatch, public_127001):
    """DNS rebinding: the name is resolved once, and the connection goes to the address that was checked."""
    srv.add("/a", b"first answer", "text/plain")
    real = socket.getaddrinfo
    lookups = []

    def fake(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"  # a second answer would be private
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(net.socket, "getaddrinfo", fake)
    got = net.fetch(f"http://rebind.test:{srv.port}/a", Limits())
    assert got.data == b"first answer"
    assert lookups == ["rebind.test"]
    assert srv.headers["/a"]["Host"] == f"rebind.test:{srv.port}"


@pytest.mark.parametrize("url", ["http://127.1/", "http://0x7f000001/", "http://2130706433/",
                                 "http://017700000001/", "http://[::ffff:7f00:1]/", "https://user:pw@[::1]:1/"])
def test_odd_spellings_of_loopback_refused(url):
    with pytest.raises(net.BlockedAddress, match="loopback"):
        net.fetch(url, Limits(connect_timeout=1, total_timeout=2))


@pytest.mark.parametrize("url", ["http://[::1/", "http:///x", "ftp://example.org/x.png", "javascript:alert(1)"])
def test_malformed_urls_are_fetch_errors(url):
    with pytest.raises(net.FetchError):
        net.fetch(url, Limits(connect_timeout=1, total_timeout=2))


def test_gzip_and_deflate_bodies_are_decoded(srv):
    import zlib

    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    srv.add("/gz", gz.compress(b"hello gzip") + gz.flush(), "text/plain", headers={"Content-Encoding": "gzip"})
    srv.add("/zlib", zlib.compress(b"hello zlib"), "text/plain", headers={"Content-Encoding": "deflate"})
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    srv.add("/raw", raw.compress(b"hello raw") + raw.flush(), "text/plain", headers={"Content-Encoding": "deflate"})
    srv.add("/br", b"xx", "text/plain", headers={"Content-Encoding": "br"})
    limits = Limits(**OPEN)
    assert net.fetch(srv.url("/gz"), limits).data == b"hello gzip"
    assert net.fetch(srv.url("/zlib"), limits).data == b"hello zlib"
    assert net.fetch(srv.url("/raw"), limits).data == b"hello raw"
    with pytest.raises(net.FetchError, match="unsupported Content-Encoding 'br'"):
        net.fetch(srv.url("/br"), limits)


def test_compression_bomb_stops_at_the_cap(srv):
    import tracemalloc
    import zlib

    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(gz.compress(bytes(1024 * 1024)) for _ in range(200)) + gz.flush()  # 200 MB of zeros
    assert len(bomb) < 300 * 1024
    srv.add("/bomb", bomb, "image/png", headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(net.FetchError, match="too large.*cap of 1048576"):
            net.fetch(srv.url("/bomb"), Limits(**OPEN, max_download_bytes=1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes while refusing a 200 MB bomb"


@pytest.fixture
def tls_pair(tmp_path):
    """A server context with a self-signed certificate for rebind.test, and a client context trusting it."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=rebind.test", "-addext", "subjectAltName=DNS:rebind.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_https_to_the_checked_address_verifies_the_host_name(tls_pair, monkeypatch):
    """The TCP connection goes to the checked IP, yet TLS still sends and verifies the real name."""
    server_ctx, client_ctx = tls_pair
    monkeypatch.setattr(net, "_ssl_context", lambda: client_ctx)
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host in ("rebind.test", "wrong-name.test"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(net.socket, "getaddrinfo", fake)
    with WebServer(tls=server_ctx) as srv:
        srv.add("/a", b"over tls", "text/plain")
        got = net.fetch(f"https://rebind.test:{srv.port}/a", Limits(**OPEN))
        assert got.data == b"over tls" and got.url == f"https://rebind.test:{srv.port}/a"
        with pytest.raises(net.FetchError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed|Hostname mismatch"):
            net.fetch(f"https://wrong-name.test:{srv.port}/a", Limits(**OPEN))
        with pytest.raises(net.BlockedAddress):  # and the guard still holds for https
            net.fetch(f"https://rebind.test:{srv.port}/a", Limits())
        assert srv.hits["/a"] == 1


def test_connection_failures_are_said_in_words(srv, monkeypatch):
    """Not `ConnectError: [SSL: WRONG_VERSION_NUMBER] …` or `[Errno 111]`: what went wrong, and what to try."""
    with pytest.raises(net.FetchError, match=r"did not answer in TLS \(https\); is the address http://\?"):
        net.fetch(f"https://127.0.0.1:{srv.port}/a", Limits(**OPEN))  # an http server given as https
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with pytest.raises(net.FetchError, match=r"connection refused \(nothing listens at that address and port\)"):
        net.fetch(f"http://127.0.0.1:{port}/a", Limits(**OPEN))
    for url in ("http://", "https:///a.png"):
        with pytest.raises(net.FetchError, match=r"the address names no host$"):
            net.fetch(url, Limits(**OPEN))
    with pytest.raises(net.FetchError, match=r"no time to connect \(the connect timeout is 0\)$"):
        net.fetch(f"http://127.0.0.1:{srv.port}/a", Limits(**{**OPEN, "connect_timeout": 0}))

    def lookup(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(net.FetchError, match=r"^cannot resolve host scans\.example: no such host$"):
        net.fetch("http://scans.example/a.png", Limits(**OPEN))


def test_every_address_a_name_resolves_to_is_checked_not_only_the_first(srv, monkeypatch, public_127001):
    """A name answering a public address first and a private one second is refused: the connection falls back to
    the next address when the first fails, so the private one must not pass unchecked."""
    srv.add("/a", b"secret", "text/plain")
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host != "mixed.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in ("127.0.0.1", "127.0.0.2")]

    monkeypatch.setattr(net.socket, "getaddrinfo", fake)
    with pytest.raises(net.BlockedAddress, match=r"mixed\.test resolves to 127\.0\.0\.2, which is a loopback"):
        net.fetch(f"http://mixed.test:{srv.port}/a", Limits())
    assert srv.hits["/a"] == 0


def test_a_stalled_read_ends_at_the_total_timeout_when_the_read_timeout_is_longer(srv):
    srv.slow("/stall", b"xy", interval=3)  # headers at once, then nothing for 3 s
    started = time.monotonic()
    with pytest.raises(net.FetchError, match="total timeout of 1s exceeded"):
        net.fetch(srv.url("/stall"), Limits(allow_private=True, read_timeout=5, total_timeout=1))
    assert time.monotonic() - started < 2


def test_a_body_of_exactly_the_cap_is_fetched_and_one_byte_more_is_not(srv):
    body = bytes(range(256)) * 4  # 1024 bytes
    srv.add("/declared", body, "application/octet-stream")  # with its Content-Length
    srv.huge("/streamed", 1024, declare_length=False)  # no length: counted as it comes
    limits = Limits(**OPEN, max_download_bytes=1024)
    assert net.fetch(srv.url("/declared"), limits).data == body
    assert len(net.fetch(srv.url("/streamed"), limits).data) == 1024
    smaller = Limits(**OPEN, max_download_bytes=1023)
    with pytest.raises(net.FetchError, match="declares 1024 bytes"):
        net.fetch(srv.url("/declared"), smaller)
    with pytest.raises(net.FetchError, match="more than the cap of 1023"):
        net.fetch(srv.url("/streamed"), smaller)


@pytest.mark.parametrize("status", [307, 308])
def test_temporary_and_permanent_redirects_that_keep_the_method_are_followed(srv, status):
    """307 and 308 redirects are followed like 301-303: the body is the target's, not the redirect's."""
    srv.redirect("/moved.png", "/here.png", status=status)
    srv.add("/here.png", b"the image", "image/png")
    got = net.fetch(srv.url("/moved.png"), Limits(**OPEN))
    assert got.data == b"the image" and got.url == srv.url("/here.png") and srv.hits["/here.png"] == 1


def test_http_400_is_an_error_not_a_body(srv):
    """A 400 Bad Request is a failed download (every status from 400 up), not an image's bytes."""
    srv.add("/bad", b"<html>bad request</html>", "text/html", status=400)
    with pytest.raises(net.FetchError, match="HTTP 400 Bad Request"):
        net.fetch(srv.url("/bad"), Limits(**OPEN))


def test_a_relative_location_resolves_against_the_hop_that_sent_it(srv):
    """A relative Location on the second hop is taken against that hop's URL, as browsers do, not the first."""
    srv.redirect("/a/start", "/b/mid")
    srv.redirect("/b/mid", "end.png")
    srv.add("/b/end.png", b"found", "image/png")
    got = net.fetch(srv.url("/a/start"), Limits(**OPEN))
    assert got.data == b"found" and got.url == srv.url("/b/end.png") and srv.hits["/a/end.png"] == 0


def test_a_fetch_waiting_on_a_silent_server_stops_soon_after_it_is_given_up(srv):
    """A read that gets no byte notices within about STOP_POLL that the run gave the fetch up."""
    srv.slow("/silent", b"xy", interval=5)  # headers at once, then nothing for 5 s
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    fetcher = net.Fetcher(Limits(allow_private=True, read_timeout=10, total_timeout=10), cancel)
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(net.FetchError, match="cancelled"):
            fetcher.fetch(srv.url("/silent"))
    finally:
        timer.cancel()
        fetcher.close()
    assert time.monotonic() - started < 0.3 + net.STOP_POLL + 3.0  # the server's next byte comes after 5 s


def test_when_a_names_first_address_refuses_the_next_one_is_tried(srv, monkeypatch):
    """A name with two addresses, the first with nothing listening: the connection falls back to the second."""
    srv.add("/a", b"second address", "text/plain")
    real = socket.getaddrinfo

    def two(host, port, *args, **kwargs):
        if host != "two.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in ("127.0.0.3", "127.0.0.1")]

    monkeypatch.setattr(net.socket, "getaddrinfo", two)
    got = net.fetch(f"http://two.test:{srv.port}/a", Limits(**OPEN))
    assert got.data == b"second address"


def test_a_url_without_a_scheme_or_empty_is_said_plainly(tmp_path):
    """No scheme reads "has no scheme", not "not no scheme"; an empty URL is said to be empty; a missing path that
    looks like a web address written without its scheme gets the hint."""
    from medimg.sources import ItemError, open_input

    with pytest.raises(net.FetchError, match=r"^only http and https URLs are fetched, and 127.0.0.1:8765/x.png has "
                                             r"no scheme \(a web address starts http:// or https://\)$"):
        net.check_url("127.0.0.1:8765/x.png", allow_private=True)
    with pytest.raises(net.FetchError, match="^the URL is empty$"):
        net.check_url("", allow_private=True)
    for given, hint in [("example.org/page.html", True), ("127.0.0.1:8765/x.png", True), ("www.example.org", True),
                        ("scans/x.png", False), ("x.png", False), ("-", None)]:
        (err,) = open_input(str(tmp_path / given) if given.startswith("scans") else given)
        assert isinstance(err, ItemError) and err.error.startswith("file not found")
        if hint is None:
            assert err.error == "file not found; a list of inputs on standard input is read with --inputs-from -"
        else:
            assert err.error.endswith("; if it is a web address, it needs http:// or https:// in front") is hint, \
                (given, err.error)
