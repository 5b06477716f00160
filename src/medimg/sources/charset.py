"""The text encoding of a web page as a browser reads it, and a URL's query in that encoding."""

from __future__ import annotations

import codecs
import re
from urllib.parse import quote

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)""", re.I)


def page_charset(data: bytes, content_type: str | None = None) -> str:
    """The encoding a browser reads a page in, by the HTML spec's order: a byte-order mark, the HTTP charset, a
    <meta> charset. With none declared, UTF-8 if the bytes beyond ASCII are UTF-8, else windows-1252 (a browser's
    fallback; Chromium never guesses UTF-8 for a web page, so browser.py tells it when this says UTF-8)."""
    for bom, charset in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return charset
    http = http_charset(content_type)
    m = _META_CHARSET.search(data[:4096])
    meta = m.group(1).decode("ascii", "replace") if m else ""
    if (known_codec(meta) or "").startswith("utf-16"):
        meta = "utf-8"  # a <meta> readable as ASCII cannot be in UTF-16 (the spec says: use UTF-8)
    for label in (http, meta):  # a label no browser knows is passed over
        charset = known_codec(label)
        if charset:
            return charset
    return "utf-8" if not data.isascii() and _is_utf8(data) else "windows-1252"


def http_charset(content_type: str | None) -> str:
    return content_type.lower().split("charset=")[1].split(";")[0] if "charset=" in (content_type or "").lower() else ""


# labels browsers read as windows-1252, which Python reads otherwise (ASCII has no byte over 127)
_WINDOWS_1252 = {"ascii", "us-ascii", "ansi_x3.4-1968", "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1",
                 "cp819", "ibm819", "csisolatin1", "iso-ir-100", "iso88591", "iso_8859-1:1987"}


# the Encoding Standard's labels that Python reads with another codec or not at all, by the codec that reads as a
# browser does: a page labelled `shift_jis` is windows-31J (`①`, `～`), `gb2312` is GBK (GB18030's decoder),
# `euc-kr` is windows-949, `big5` has HKSCS, `iso-8859-9` is windows-1254 and `tis-620` windows-874
_BROWSER_CODECS = {label: codec for codec, labels in {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 x-unicode20utf8",
    "iso8859-8": "csiso88598i iso-8859-8-i logical csiso88598e iso-8859-8-e visual iso88598",
    "iso8859-6": "csiso88596e csiso88596i iso-8859-6-e iso-8859-6-i iso88596",
    "iso8859-7": "sun_eu_greek iso88597",
    "iso8859-15": "csisolatin9 iso885915",
    **{f"iso8859-{n}": f"iso8859{n}" for n in (2, 3, 4, 5, 10, 13, 14)},
    "koi8-r": "koi koi8",
    "utf-16": "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16",  # a BOM, or little-endian (as here)
    "utf-16-be": "unicodefffe",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1254": "csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 iso_8859-9:1989 l5 latin5 x-cp1254",
    "mac-roman": "csmacintosh mac x-mac-roman",
    "mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    "koi8-u": "koi8-ru",
    "gb18030": "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk",
    "big5hkscs": "big5 cn-big5 csbig5 x-x-big5",
    "cp949": "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 "
             "windows-949",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "euc_jp": "cseucpkdfmtjapanese x-euc-jp",
    **{f"cp125{n}": f"x-cp125{n}" for n in range(9) if n not in (2, 4)},
}.items() for label in labels.split()}


def known_codec(label: str) -> str | None:
    """The Python codec for a charset label a browser would take (reading as the browser does), or None."""
    label = label.strip(" \"'\t").lower()
    if not label:
        return None
    if label in _WINDOWS_1252 or label == "x-cp1252":
        return "windows-1252"
    if label in _BROWSER_CODECS:
        return _BROWSER_CODECS[label]
    try:  # a text encoding Python knows (not "base64", say) that reads ASCII as ASCII, as every web encoding does
        # but UTF-16 (not UTF-32, UTF-7 or EBCDIC, which no browser knows), in the page's error mode ("idna" raises)
        name = codecs.lookup(label).name
        if "escape" in name:  # reads `\n` as a newline (and warns of other escapes while trying)
            return None
        if not name.startswith("utf-16") and _ASCII.decode(label, "replace") != _ASCII_TEXT:
            return None
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return label


_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r\\n\\u0041"  # every ASCII character, and escapes as text
_ASCII_TEXT = _ASCII.decode("ascii")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def query_in(url: str, charset: str) -> str:
    """The URL with the non-ASCII characters of its query percent-encoded in the page's charset, as browsers send
    them (the path always goes as UTF-8, which httpx writes); a character the charset lacks goes as `&#N;`."""
    head, mark, query = url.partition("?")
    if query.isascii() or codecs.lookup(charset).name.startswith("utf"):  # a UTF-16 page's URLs are UTF-8 too
        return url
    return head + mark + _NON_ASCII.sub(lambda m: quote(m.group(), safe="", encoding=charset,
                                                        errors="xmlcharrefreplace"), query)
