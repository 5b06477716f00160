"""What a user reads when an input fails (s42): no Python internals, bytes reprs or a damaged header's garbage in
the error, and no archive that gives nothing at all."""
from __future__ import annotations

import gzip
import io
import socket
import struct
import tarfile
import threading

import pytest

import builders as b
from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input
from webserver import WebServer

OPEN = Limits(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=5)


def rows(data: bytes, name: str, limits: Limits | None = None) -> list[tuple[str, str, bool]]:
    return [(i.origin, i.error, i.skipped) if isinstance(i, ItemError) else (i.origin, "image", False)
            for i in open_input(Blob(origin=name, data=data), limits)]


@pytest.mark.parametrize("keep", [14, 16, 30, 50])
def test_a_qoi_cut_short_is_said_without_python_internals(keep):
    data = b.image_bytes("QOI", (120, 90))
    ((origin, error, skipped),) = rows(data[:keep], "x.qoi")
    # was "not enough values to unpack (expected 4, got 2)" or "image: could not read: index out of range"
    assert error == "corrupt or truncated QOI image: Pillow cannot decode it" and not skipped


def local_header(name: bytes, flags: int = 0x08, method: int = 8) -> bytes:
    return b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, flags, method, 0, 0, 0, 0, 0, len(name), 0) + name


def test_a_damaged_zip_header_names_its_member_by_number_not_by_its_garbage():
    garbage = bytes(range(1, 32)) * 8 + "\ufffd".encode() * 40  # control characters: a header's bytes, not a name
    ((_, error, _),) = rows(local_header(garbage) + b"\xff" * 300, "got.zip")
    assert "the end of member #1 (name unreadable) (its sizes come after its data) could not be found" in error
    assert "\\x" not in error and len(error) < 250  # was the 376-character name's repr, \x01 and all


def test_a_cut_zip_without_the_utf8_flag_names_its_member_as_zipfile_reads_it():
    name = "café.png".encode("cp437")
    big = local_header(name, flags=0, method=0)
    big = big[:18] + struct.pack("<II", 5000, 5000) + big[26:]  # declares 5,000 bytes, holds none
    ((_, error, _),) = rows(big, "cut.zip")
    assert "it ends inside member 'café.png', not read" in error  # was 'caf\ufffd.png'


def hidden_zip() -> bytes:
    return b.zip_bytes([(".DS_Store", b"x"), ("__MACOSX/._scan.png", b"x")])


def hidden_tar() -> bytes:
    return b.tar_bytes([(".DS_Store", b"x"), (".hidden.png", b.image_bytes())])


def hidden_7z() -> bytes:
    py7zr = pytest.importorskip("py7zr", reason="7z archives need py7zr")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(b"x", ".DS_Store")
    return out.getvalue()


@pytest.mark.parametrize("name, make", [("mac.zip", hidden_zip), ("mac.tar", hidden_tar),
                                        ("mac.tar.gz", lambda: gzip.compress(hidden_tar())), ("mac.7z", hidden_7z)])
def test_an_archive_of_hidden_files_only_is_a_note_as_such_a_folder_is(name, make):
    assert rows(make(), name) == [(name, "archive holds no files (hidden ones are left out)", True)]  # was nothing


def test_a_tar_of_folders_only_says_it_holds_no_files_as_a_zip_does():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name in ("study", "study/series"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
    assert rows(out.getvalue(), "dirs.tar") == [("dirs.tar", "archive holds no files", True)]  # was nothing
    zipped = b.zip_bytes([("study/", b"")])
    assert rows(zipped, "dirs.zip") == [("dirs.zip", "archive holds no files", True)]


def test_hidden_files_beside_a_picture_change_nothing():
    tar = b.tar_bytes([(".DS_Store", b"x"), ("a.png", b.image_bytes())])
    assert rows(tar, "a.tar") == [("a.tar:a.png", "image", False)]
    unsafe = b.tar_bytes([("../a.png", b.image_bytes()), (".x", b"1")])
    assert [e for _, e, _ in rows(unsafe, "u.tar")] == ["unsafe member name (absolute path or '..'); not read"]


def test_a_url_that_is_no_page_or_image_shows_its_first_bytes_as_text_not_a_bytes_repr():
    with WebServer() as srv:
        html = srv.add("/scan.png", b"<html><body>Not found</body></html>", "image/png", status=200)
        empty = srv.add("/empty.png", b"", "image/png")
        (got,) = list(open_input(html, OPEN))
        assert got.error == "not a web page or an image: image/png, 35 bytes, starting “<html><b”"  # was b'<html>…'
        (got,) = list(open_input(empty, OPEN))
        assert got.error == "not a web page or an image: image/png, an empty body"  # was "0 bytes starting b''"


class RawServer:
    """Answers every connection on 127.0.0.1 with the same raw bytes, then closes it."""

    def __init__(self, answer: bytes):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.answer)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/scan.png"

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("answer, said", [
    (b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 67199\r\n\r\n" + b"\x89PNG" + bytes(496),
     "the server closed the connection before the end of its answer (received 500 of 67,199 bytes)"),
    (b"HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n",
     "the server's answer is not valid HTTP: illegal header line: “broken header line”"),
    (b"", "the server closed the connection without answering"),
])
def test_a_broken_answer_is_said_in_words_not_as_httpx_exception_names(answer, said):
    server = RawServer(answer)
    url = server.url()
    try:
        (got,) = list(open_input(url, OPEN))
    finally:
        server.close()
    assert got.error == f"could not fetch {url}: {said}"  # was "RemoteProtocolError: …", bytearray(b'…')


def test_a_good_qoi_and_a_good_zip_still_read():
    assert rows(b.image_bytes("QOI", (40, 30)), "ok.qoi") == [("ok.qoi", "image", False)]
    got = list(open_input(Blob(origin="ok.zip", data=b.zip_bytes([("a.png", b.image_bytes())]))))
    assert [type(i) for i in got] == [ImageItem]
