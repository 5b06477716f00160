"""E-mail messages (.eml, RFC 822/MIME): the pictures and files attached to them or shown inline.

Referral letters and second-opinion requests often arrive as e-mail with images, PDFs, DICOM files or
zips attached. A message is a container, like a zip: each attachment or inline picture is an input of its
own (origin `message.eml:attachment-name`), opened by whichever source reads it, and attached messages
(message/rfc822, forwards, also when sent base64-encoded) are opened in turn. Text parts are left out with one
note, but the pictures an HTML body holds as data: URIs are inputs too; remote images it points to are never
fetched (they are often trackers), nor are those of a page attached to it. Pictures the text shows under
`min_side` are decoration, as on a web page. Outlook's winmail.dat is unpacked by tnef.py. A mailbox (mbox:
messages each after a `From ` line) gives each message's parts (`inbox.mbox:message-2:scan.png`); an Apple
Mail .emlx is the message after its length line. Parts that hide their files (S/MIME encrypted or
opaque-signed) are errors saying so. Parts are decoded one after another under `max_input_bytes` each and
`zip_max_bytes` for the whole message. A message is refused while it is parsed once it has more parts than
`zip_max_entries` or headers the parser would take too long on.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.feedparser
import email.message
import email.policy
import hashlib
import mimetypes
import re
import time
from typing import Callable, Iterator, Union
from urllib.parse import unquote

from .base import Blob, Budget, Context, ImageItem, Item, ItemError, SourcePlugin, unit
from .registry import register

_HEADER = re.compile(rb"[A-Za-z][A-Za-z0-9-]{1,40}:[ \t]")
_SNIFF = 64 * 1024  # how much of a file is read to tell a message
_KNOWN = (b"from:", b"to:", b"subject:", b"date:", b"message-id:", b"received:", b"return-path:",
          b"mime-version:", b"content-type:", b"delivered-to:", b"reply-to:", b"cc:")

# The headers read here. The standard library parses them slowly: up to 30 µs a character (runs of `;`, quotes,
# parameter lists, RFC 2231 parts), and past 1 KB in time that grows with the square of the length (8 KB: over
# a second). Each may be _MAX_HEADER long, and reading a message's parts may take PARSE_SECONDS of the reading
# thread's own CPU time (each message of a mailbox its own, all of them MAILBOX_SECONDS; waiting for the CPU or
# the GIL under load does not count), checked as each header arrives and before each part is looked at (real
# messages take about 1 ms a part).
_EMLX = re.compile(rb"\A(\d{1,12})[ \t]*\r?\n")  # .emlx: the message's length, the message, a plist
# where a mailbox's next message starts: a `From ` line at the start or after a blank line, then a header line
_ENVELOPE = re.compile(rb"(?:\A|\n\r?\n)(From [^\r\n]*\r?\n)(?=[A-Za-z][A-Za-z0-9-]{1,40}:[ \t])")
TNEF = b"\x78\x9f\x3e\x22"  # the signature of Outlook's rich-text attachment (winmail.dat)
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, as some Windows tools write before a message they save
_FEED = 1 << 20  # the parser is fed a megabyte at a time: given all at once it holds every line of it as well

_PARSED = ("content-type", "content-disposition", "content-transfer-encoding")
_MAX_HEADER = 8 * 1024
PARSE_SECONDS = 10.0  # one message (with the messages inside it)
MAILBOX_SECONDS = 60.0  # all the messages of a mailbox together


class _Refused(Exception):
    def __init__(self, message: str, whole: bool = True):
        super().__init__(message)
        self.whole = whole  # the cap holds for the whole file: a mailbox's later messages are not read either


class _Reading:
    """What reading one message, and the messages found in it, has spent: parts made and header parse cost.
    Shared by nested messages, so that a message of messages cannot multiply the caps."""

    def __init__(self, max_parts: int):
        self.parts, self.max_parts = 0, max_parts
        self.spent, self.since = 0.0, None  # seconds spent parsing; when the current stretch began
        self.message_from = 0.0  # `spent` when the mailbox's current message began
        self.stopped = False  # a cap ended the reading: the messages after it in a mailbox are not read

    def start(self) -> None:
        self.since = time.thread_time()

    def stop(self) -> None:
        self.spent += time.thread_time() - self.since
        self.since = None

    def part(self, rest: str = "not opened") -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise _Refused(f"message has more than {self.max_parts:,} parts, the zip_max_entries cap; {rest}")

    def charge(self, name: str, value: str) -> None:
        if name.lower() not in _PARSED:
            return
        if len(value) > _MAX_HEADER:
            raise _Refused(f"{name} header is {len(value):,} characters, over {_MAX_HEADER:,}; not opened",
                           whole=False)  # this message's: a mailbox's others are read
        self.in_time()

    def next_message(self) -> None:
        """A mailbox's next message: it has PARSE_SECONDS of its own, under MAILBOX_SECONDS for them all."""
        self.message_from = self.spent

    def in_time(self, rest: str = "not opened") -> None:
        """Only parsing counts (not the time the parts' readers take between them)."""
        now = self.spent + (time.thread_time() - self.since if self.since else 0)
        if now - self.message_from > PARSE_SECONDS:
            raise _Refused(f"message took over {PARSE_SECONDS:g} s of CPU to parse (the standard parser is slow "
                           f"on long header parameter lists); {rest}", whole=False)
        if now > MAILBOX_SECONDS:
            raise _Refused(f"mailbox took over {MAILBOX_SECONDS:g} s of CPU to parse; {rest}")


class _Part(email.message.EmailMessage):
    """A part that is counted, and charged for each header the parser hands it, as it is read."""

    def __init__(self, policy=email.policy.default, reading: _Reading | None = None):
        super().__init__(policy=policy)
        self._reading = reading

    def set_raw(self, name, value):
        if self._reading is not None:
            self._reading.charge(name, value)
        if name.lower() in _PARSED and not value.isascii():
            value = _eight_bit(value)
        if name.lower() == "content-transfer-encoding":  # `base64 ` with a space after it is not decoded otherwise
            value = value.strip()
        super().set_raw(name, value)


def _eight_bit(value: str) -> str:
    """A header's raw 8-bit bytes (a file name some mailers send unencoded) read as UTF-8, else as Windows-1252
    (the Western mailers that do it); the parser would make each byte that is not UTF-8 a U+FFFD."""
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # text, not bytes
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _filename(part) -> str | None:
    """A part's file name. One given as RFC 2231 (`filename*=utf-8''M%FCller.png`) in bytes that are not of the
    charset it names (Latin-1 sent as UTF-8, or a charset Python does not know) is read as UTF-8, else as
    Windows-1252, as an unencoded 8-bit name is: the parser would make each such byte a U+FFFD."""
    name = part.get_filename()
    if not name or "\ufffd" not in name:
        return name
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = next((value for key, value in part.raw_items() if key.lower() == header), None)
        if raw is None:
            continue
        plain = email.message.Message()  # compat32 gives an RFC 2231 value as (charset, language, its bytes)
        plain[header] = raw
        value = plain.get_param(param, header=header)
        if isinstance(value, tuple):
            data = value[2].encode("latin-1", "replace")
            for charset in (value[0] or "utf-8", "utf-8"):
                try:
                    return data.decode(charset)
                except (LookupError, UnicodeDecodeError):
                    continue
            return data.decode("cp1252", "replace")
    return name


def _parse(data: bytes, reading: _Reading) -> email.message.EmailMessage:
    """The message, refused while it is read (not after) once it passes the part cap or the header cost."""
    tried = False

    def make(policy=email.policy.default):
        nonlocal tried
        if tried:
            reading.part()
        tried = True  # the parser makes one first, to try the factory
        return _Part(policy=policy, reading=reading)

    reading.start()
    try:
        parser = email.feedparser.BytesFeedParser(make, policy=email.policy.default)
        for at in range(0, len(data), _FEED):
            parser.feed(data[at:at + _FEED])
        return parser.close()
    finally:
        reading.stop()


def _leaves(msg: email.message.EmailMessage, forwards: dict[int, str] | None = None) -> list:
    """The parts that hold content, in order, without recursion: an attached message sent base64 or
    quoted-printable encoded (which the parser reads as headerless text) is one leaf, decoded by `_payload`.
    `forwards`, when given, gets the leaves inside forwarded messages: {id of the part: `forwarded message 2`},
    the forwards numbered in the order they come (a forward inside a forward has a number of its own)."""
    out, stack, count = [], [(msg, "")], 0
    while stack:
        part, forward = stack.pop()
        if part.is_multipart() and not _encoded_message(part):
            if part is not msg and part.get_content_maintype() == "message":
                count += 1
                forward = f"forwarded message {count}"
            stack.extend((p, forward) for p in reversed(part.get_payload()))
        else:
            out.append(part)
            if forward and forwards is not None:
                forwards[id(part)] = forward
    return out


def _encoded_message(part) -> bool:
    return (part.get_content_maintype() == "message"
            and str(part.get("content-transfer-encoding", "")).strip().lower() in ("base64", "quoted-printable"))


def _payload(part) -> bytes | None:
    """A part's decoded bytes; of an encoded attached message, the message (RFC 2046 forbids the encoding, but
    some mailers use it)."""
    if not (part.is_multipart() and _encoded_message(part)):
        return part.get_payload(decode=True)
    raw = _as_sent(part.get_payload(0))
    encoded = email.message.Message()
    encoded["Content-Transfer-Encoding"] = part["content-transfer-encoding"]
    encoded.set_payload(raw)
    return encoded.get_payload(decode=True)


def _as_sent(inner) -> str:
    """The encoded text the parser read as a message of its own: its header lines as they came (a quoted-printable
    message's; `as_bytes()` would fold them again, and a soft line break in one starts the body), then the body."""
    if inner.is_multipart():  # not met in encoded text (a `=3D` in every boundary): the best there is
        return inner.as_bytes().decode("ascii", "surrogateescape")
    head = "".join(f"{name}: {value}\n" for name, value in inner.raw_items())
    cut = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in inner.defects)
    return head + ("" if cut or not head else "\n") + (inner.get_payload() or "")


def accepts(head: bytes, blob: Blob) -> bool:
    """A message starts with header lines; at least three of the usual ones, MIME among them (or, in a message from
    before MIME, a file uuencoded in its text)."""
    text = (blob.data[:_SNIFF] if len(blob.data) > len(head) else head).removeprefix(_BOM)
    if emlx := _EMLX.match(text):
        text = text[emlx.end():]
    lines = text.lstrip(b"\r\n").splitlines()
    if lines and lines[0].startswith(b"From "):  # an mbox-style envelope line
        lines = lines[1:]
    names, ended = set(), False
    for n, line in enumerate(lines):
        if not line.strip():
            ended = True
            break
        if line[:1] in (b" ", b"\t"):  # a folded header continues
            continue
        if not _HEADER.match(line):
            if n == len(lines) - 1:  # cut off by the end of the head
                break
            return False
        names.add(line.split(b":", 1)[0].lower() + b":")
    known = len(names & set(_KNOWN)) >= 3
    # headers still going past what is read (a long To list, thousands of relay lines): MIME-Version may be later
    return known and (b"mime-version:" in names or (not ended and len(blob.data) > _SNIFF)
                      or (ended and _UU_BEGIN.search(text) is not None))  # `uuencode scan.jpg | mail`


def split_email(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The message as independent units of work: one per attachment or inline picture, one per note."""
    from .files import member_units

    budget = blob.budget or Budget(ctx.limits.zip_max_bytes)
    inner = ctx.no_fetching("it came in an e-mail")
    for part in _messages(blob, ctx, budget, _Reading(ctx.limits.zip_max_entries)):
        if isinstance(part, Inline):
            yield unit(part.blob.origin, in_text, part.blob, inner)
        else:
            yield from member_units((part,), inner)


class Inline:
    """A picture the message's HTML body shows (by cid: or as a data: URI), not a file attached to it."""

    def __init__(self, blob: Blob):
        self.blob = blob


def in_text(blob: Blob, ctx: Context) -> Iterator[Item]:
    """A picture shown in the message's text: under min_side it is decoration (a logo, an icon, a spacer), as on a
    web page or in a PDF; a file attached is read whatever its size."""
    from .files import open_capped

    floor = ctx.limits.min_side
    for item in open_capped(blob, ctx, True):
        if isinstance(item, ImageItem) and min(item.width, item.height) < floor:
            yield ItemError(item.origin, item.locator, f"decoration: {item.width}x{item.height} is below min_side "
                                                       f"{floor} (a picture in the message's text)", skipped=True)
        else:
            yield item


def _messages(blob: Blob, ctx: Context, budget: Budget, reading: _Reading) -> Iterator[Union[Item, Blob]]:
    """The parts of a message, of an Apple Mail .emlx, or of each message of a mailbox (mbox)."""
    data = blob.data.removeprefix(_BOM)
    if emlx := _EMLX.match(data):
        data = data[emlx.end():emlx.end() + int(emlx.group(1))]
    starts = _starts(data) if data.startswith(b"From ") else []
    if len(starts) < 2:
        whole = Blob(blob.origin, data, name=blob.name, depth=blob.depth, budget=budget)
        yield from _parts(whole, ctx, budget, reading)
        return
    for k, (start, end) in enumerate(zip(starts, starts[1:] + [len(data)]), 1):
        if reading.stopped:
            yield ItemError(blob.origin, "", f"mailbox: messages {k} to {len(starts)} not read (a cap above)")
            return
        one = Blob(f"{blob.origin}:message-{k}", data[start:end], depth=blob.depth, budget=budget)
        reading.next_message()
        yield from _parts(one, ctx, budget, reading)


def _starts(data: bytes) -> list[int]:
    """Where the messages of a mailbox start: the first line, and each later `From ` line before a header block."""
    return [m.start(1) for m in _ENVELOPE.finditer(data) if m.start(1) == 0 or _headers_follow(data, m.end(1))]


def _headers_follow(data: bytes, pos: int) -> bool:
    """Whether header lines run from `pos` to a blank line (or past what is looked at), two of the usual ones among
    them: in a message's own text, `From tomorrow on` before a `Note: …` line is not the next message."""
    known, end = 0, min(len(data), pos + _SNIFF)
    while (nl := data.find(b"\n", pos, end)) >= 0:
        line = data[pos:nl].rstrip(b"\r")
        if not line:
            break
        if line[:1] not in (b" ", b"\t"):  # a folded header continues
            if not _HEADER.match(line):
                return False
            known += line.split(b":", 1)[0].lower() + b":" in _KNOWN
        pos = nl + 1
    return known >= 2


def _parts(blob: Blob, ctx: Context, budget: Budget, reading: _Reading) -> Iterator[Union[Item, Blob]]:
    from .files import UniqueNames

    limits, origin = ctx.limits, blob.origin
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"message nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    forwards: dict[int, str] = {}  # the parts in forwarded messages: `forwarded message 2`, their place
    try:
        msg = _parse(blob.data, reading)
        leaves = _leaves(msg, forwards)
    except _Refused as exc:
        reading.stopped = exc.whole
        yield ItemError(origin, "", str(exc))
        return
    except RecursionError:
        yield ItemError(origin, "", "message nested too deep to read (parts inside parts, hundreds of levels); "
                                    "not opened")
        return
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable e-mail message: {exc}")
        return
    text, names = 0, UniqueNames()  # a file name given again: `a (2).png`, as in a zip
    shown: set[bytes] = set()  # the data: pictures of the HTML bodies (an alternative's twin shows one again)
    bodies = _html_bodies(leaves)
    cids = {c for html in bodies.values() for c in _cids(html)}  # the parts the HTML bodies show
    for i, part in enumerate(leaves, 1):
        reading.start()  # the headers are parsed as they are read
        ctype = part.get_content_type()
        filename = _filename(part)
        disposition = part.get_content_disposition()
        reading.stop()
        try:
            reading.in_time("the rest is not read")
        except _Refused as exc:
            reading.stopped = exc.whole
            yield ItemError(origin, "", str(exc))
            return
        name = safe_name(filename) or f"part-{i}{_suffix(ctype)}"
        attached = disposition == "attachment" or filename
        forward = forwards.get(id(part), "")
        cid = _cid(part, lower=False)
        if ctype.startswith("multipart/"):  # its boundary never comes (or it names none): the parser kept it whole
            yield ItemError(origin, "", f"part {i} is {ctype} but its boundary is missing or never appears (a "
                                        "damaged message): the files in it are not read")
            continue
        if ctype.startswith("text/") and not attached:
            text += 1
            if ctype == "text/plain":  # files pasted into the text, as old mailers sent them
                files, ctype = _uuencoded(part, reading), None
            elif ctype == "text/html":  # pictures written into the HTML as data: URIs
                files, ctype = _html_pictures(bodies.pop(id(part), b""), part, reading, limits.max_input_bytes,
                                              shown), None
            else:
                continue
        else:
            try:
                files = [(name, _payload(part), "")]
            except Exception as exc:
                yield ItemError(f"{origin}:{names(name)}", forward, f"could not decode the part: {exc}")
                continue
        for name, data, place in files:
            by_cid = not place and disposition != "attachment" and cid.lower() in cids  # a picture the HTML body shows
            inline = by_cid or bool(place)  # or a data: picture of the body
            place = ", ".join(p for p in (forward, place or (f"HTML body, cid:{cid}" if by_cid else "")) if p)
            if isinstance(data, _Refused):  # the parts cap, among the files in the text
                reading.stopped = data.whole
                yield ItemError(origin, "", str(data))
                return
            if isinstance(data, str):  # a data: picture that could not be decoded
                yield ItemError(origin, place, data)
                continue
            where = f"{origin}:{names(name)}"
            if isinstance(data, email.message.Message):  # an attached message that was not decoded as bytes
                data = data.as_bytes()
            if not data:
                yield ItemError(where, place, "empty attachment", skipped=True)
                continue
            if hidden := _sealed(part, ctype or "", name, data):
                yield ItemError(where, place, hidden[0], skipped=hidden[1])
                continue
            refused, stop = budget.refuse(where, len(data), limits, "message decodes past")
            if refused:
                yield refused
                if stop:
                    reading.stopped = True
                    return
                continue
            member = Blob(where, data, name=name, content_type=ctype, depth=blob.depth + 1, budget=budget,
                          locator=place)
            if ctype in ("message/rfc822", "message/global") or accepts(data[:4096], member):
                if member.depth > limits.max_depth:
                    yield ItemError(where, "", f"message nested deeper than max_depth ({limits.max_depth}); "
                                               "not opened")
                    continue
                yield from _messages(member, ctx, budget, reading)
            elif inline:
                yield Inline(member)
            else:
                yield member
    if text:
        yield ItemError(origin, "", f"e-mail: {text} text part{'s' if text > 1 else ''} (the message itself) "
                                    "left out; remote images in it are not fetched", skipped=True)


_UU_BEGIN = re.compile(rb"^begin [0-7]{3,4} +([^\r\n]+?)[ \t]*\r?$", re.M)
_UU_END = re.compile(rb"^end[ \t]*\r?$", re.M)


def _uuencoded(part, reading: _Reading) -> Iterator[tuple[str, bytes | _Refused, str]]:
    """The files uuencoded in a text part (`begin 644 scan.jpg` … `end`), each (file name, bytes, no place), one
    at a time: each is a part of the message for the parts cap, and past it (a name, the _Refused) ends them."""
    try:
        body = part.get_payload(decode=True) or b""
    except Exception:
        return
    pos = 0
    while begin := _UU_BEGIN.search(body, pos):
        end = _UU_END.search(body, begin.end())
        if end is None:
            break
        try:
            reading.part("the rest is not read")
        except _Refused as exc:
            yield "", exc, ""
            return
        data = bytearray()
        for line in body[begin.end():end.start()].split(b"\n"):
            line = line.rstrip(b"\r")
            if not line:
                continue
            try:
                data += binascii.a2b_uu(line)
            except binascii.Error:  # some encoders pad lines otherwise: the bytes the length character gives
                try:
                    data += binascii.a2b_uu(line[:((line[0] - 32 & 63) * 4 + 5) // 3])
                except binascii.Error:
                    break
        name = safe_name(begin.group(1).decode("utf-8", "replace")) or "uuencoded"
        yield name, bytes(data), ""
        pos = end.end()


def _html_bodies(leaves: list) -> dict[int, bytes]:
    """The decoded HTML bodies of a message (not HTML files attached to it), by id of their part."""
    out = {}
    for part in leaves:
        if part.get_content_type() == "text/html" and not (part.get_content_disposition() == "attachment"
                                                           or part.get_filename()):
            try:
                out[id(part)] = part.get_payload(decode=True) or b""
            except Exception:
                continue
    return out


_CID = re.compile(rb"cid:([^\s\"'<>)]+)", re.I)


def _cids(html: bytes) -> Iterator[str]:
    for m in _CID.finditer(html):
        yield unquote(m.group(1).decode("ascii", "replace")).lower()


def _cid(part, lower: bool = True) -> str:
    cid = str(part.get("content-id", "")).strip().strip("<>").strip()
    return cid.lower() if lower else cid


def _html_pictures(html: bytes, part, reading: _Reading, cap: int,
                   shown: set[bytes]) -> Iterator[tuple[str, object, str]]:
    """The pictures an HTML body (`html`, decoded) holds as data: URIs, each (file name, bytes, place in the body)
    and a part for the parts cap (past it, the _Refused); one that cannot be decoded gives its error as a str. A
    picture shown before in the message (the same one in another alternative of the body) is not given again."""
    from .html_cost import PageTooDeep
    from .web_fetch import decode_data_uri
    from .web_page import extract

    if b"data:" not in html.lower():
        return
    try:
        found = extract(html, "http://message.invalid/", str(part.get("content-type", "")))
    except PageTooDeep as exc:
        yield "", f"HTML body: {exc}; its data: pictures are not read", ""
        return
    for index, cand in enumerate(found, 1):
        if cand.url[:5].lower() != "data:":
            continue
        place = f"HTML body, {cand.tag} #{index}"
        try:
            reading.part("the rest is not read")
        except _Refused as exc:
            yield "", exc, place
            return
        try:
            data, kind = decode_data_uri(cand.url, cap)
        except ValueError as exc:
            yield "", str(exc), place
            continue
        digest = hashlib.sha256(data).digest()
        if digest in shown:
            continue
        shown.add(digest)
        yield f"body-image-{len(shown)}{mimetypes.guess_extension(kind) or ''}", data, place


def _sealed(part, ctype: str, name: str, data: bytes) -> tuple[str, bool] | None:
    """What to say of a part whose files cannot be read here (an error, or a note for a signature), or None."""
    if ctype in ("application/ms-tnef", "application/vnd.ms-tnef") and not data.startswith(TNEF):
        return "Outlook rich-text attachment (TNEF, winmail.dat) without TNEF's signature: damaged; not read", False
    if ctype in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
        return "S/MIME signature: not an image", True
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime") or name.lower().endswith(".p7m"):
        kind = str(part.get_param("smime-type") or "").lower()
        if kind == "signed-data":
            return "S/MIME opaque-signed message (signed-data): the message inside it is not read", False
        if "enveloped" in kind:
            return "S/MIME encrypted message: it cannot be read without the recipient's key", False
        return "S/MIME or signed file (.p7m), encrypted or opaque-signed: what it holds is not read", False
    return None


def _suffix(ctype: str) -> str:
    """A file name's suffix for a part sent without a name, from its type: `part-3.png`, and `part-2.msg` for an
    Outlook message (opened only when so named)."""
    if ctype in ("application/vnd.ms-outlook", "application/x-ms-outlook"):
        return ".msg"
    if ctype in ("application/octet-stream", "text/plain"):
        return ""
    return mimetypes.guess_extension(ctype) or ""


def safe_name(name: str | None) -> str:
    """An attachment's own file name, without any folder it claims."""
    if not name:
        return ""
    base = re.split(r"[\\/]", str(name))[-1].strip().strip(".")
    return base[:200]


register(SourcePlugin("email", accepts, priority=85, split=split_email))
