"""A second reading of session 42's change: charset labels of the Encoding Standard that were still read otherwise
than browsers read them, and a mistake in medimg's own code that the registry's catch-all blamed on the file."""

from __future__ import annotations

import io

from PIL import Image
from webserver import WebServer

from medimg.sources import Blob, ImageItem, ItemError, Limits, SourcePlugin, open_input, registry
from medimg.sources.charset import known_codec, page_charset
from medimg.sources.registry import open_blob

HIGH = bytes(range(0x80, 0x100))

# labels of the WHATWG Encoding Standard (https://encoding.spec.whatwg.org/encodings.json) that Python knows by
# another codec or not at all, by the codec that reads as the standard's encoding does
LABELS = {
    "windows-1252": "cp819 csisolatin1 ibm819 iso-ir-100 iso88591 iso_8859-1:1987 iso-8859-1 latin1 x-cp1252",
    "iso8859-2": "iso88592 iso-8859-2 latin2", "iso8859-3": "iso88593", "iso8859-4": "iso88594",
    "iso8859-5": "iso88595", "iso8859-6": "csiso88596e csiso88596i iso-8859-6-e iso-8859-6-i iso88596",
    "iso8859-7": "sun_eu_greek iso88597", "iso8859-8": "csiso88598e iso-8859-8-e visual iso88598 iso-8859-8-i",
    "iso8859-10": "iso885910", "iso8859-13": "iso885913", "iso8859-14": "iso885914",
    "iso8859-15": "csisolatin9 iso885915", "koi8-r": "koi koi8 koi8-r",
    "utf-16-le": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
    "utf-16-be": "unicodefffe utf-16be",
}


def test_every_label_of_the_encoding_standard_reads_as_its_encoding():
    wrong = []
    for encoding, labels in LABELS.items():
        for label in labels.split():
            codec = known_codec(label)
            # before: cp819, ibm819, iso-ir-100, … were ISO-8859-1 (0x80 a control, not €); iso88592, koi8, … unknown
            if codec is None or HIGH.decode(codec, "replace") != HIGH.decode(encoding, "replace"):
                wrong.append((label, codec))
    assert wrong == []


def test_a_utf16_label_in_a_meta_is_read_as_utf8():
    page = '<html><head><meta charset="unicode"></head><body><img src="é.png"></body></html>'.encode()
    assert page_charset(page, "text/html") == "utf-8"  # the HTML standard: an ASCII-readable <meta> is no UTF-16


def _png() -> bytes:
    buf = io.BytesIO()
    Image.effect_mandelbrot((200, 150), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def test_a_page_labelled_iso_ir_100_names_its_euro_file_as_a_browser_does():
    with WebServer() as srv:
        srv.add("/i/%E2%82%AC.png", _png(), "image/png")  # `€.png`: 0x80 in windows-1252
        page = '<html><head><meta charset="iso-ir-100"></head><body><img src="/i/€.png"></body></html>'
        url = srv.add("/page.html", page.encode("cp1252"), "text/html")
        items = list(open_input(url, Limits(allow_private=True, connect_timeout=2, read_timeout=2, total_timeout=8)))
    # before: read as ISO-8859-1, the byte was U+0080 and the image a 404 at /i/%C2%80.png
    assert [i.error for i in items if isinstance(i, ItemError) and not i.skipped] == []
    assert len([i for i in items if isinstance(i, ImageItem)]) == 1


def test_a_mistake_in_medimgs_own_code_is_an_internal_error_not_a_damaged_file(monkeypatch):
    monkeypatch.setattr(registry, "_PLUGINS", list(registry.plugins()))

    def open_buggy(blob, ctx):  # medimg's own code called wrongly: the AttributeError is raised inside medimg
        known_codec(None)
        yield from ()

    def open_damaged(blob, ctx):  # a decoder's own IndexError on data cut short (raised outside medimg)
        yield b"\x00"[5]

    registry.register(SourcePlugin("buggy", lambda head, blob: head.startswith(b"BUG"), open_buggy, priority=0))
    registry.register(SourcePlugin("cut", lambda head, blob: head.startswith(b"CUT"), open_damaged, priority=0))
    bug, = open_blob(Blob("a.bin", b"BUG"), None)
    cut, = open_blob(Blob("b.bin", b"CUT"), None)
    # before: "buggy: could not read: its data is damaged or cut short", blaming the file for medimg's bug
    assert bug.error == "buggy: could not read: internal error: AttributeError: 'NoneType' object has no attribute " \
                        "'strip'", bug.error
    assert cut.error == "cut: could not read: its data is damaged or cut short", cut.error
