"""Compound files (OLE2) through olefile: Outlook messages (.msg) and Office 97–2003 files (.doc, .xls, .ppt).

A .msg holds each attachment as a storage with its file name and its bytes; an attached message is a
storage of the same kind. An Office 97–2003 file keeps its pictures as OfficeArt BLIP records: in the
"Pictures" stream of a .ppt, the "Data" stream of a .doc, the drawing-group records of a .xls's "Workbook"
(whose CONTINUE records are joined first). Like a zip, the file is a container split into units of work:
each attachment or picture is an input of its own (`referral.msg:scan.dcm`, `talk.ppt:picture-2.jpg`),
opened by whichever source reads it; attached messages are walked up to `max_depth`. Pictures a message's
text shows (a signature's logo) under `min_side` are decoration, as in an .eml, and so are its HTML body's
data: pictures. Text is left out with one note; an EMF or WMF picture that paints a bitmap (a pasted scan) is an
input too (`letter.doc:picture-2.wmf`, read by metafile.py), other metafile pictures (and PICT) are counted in
a note, as they cannot be drawn here. A password-protected file (97–2003, or a 2007+ .docx/.xlsx/.pptx, which
is then a compound file) is an error saying so. Other compound files (installers, thumbnail caches) are never
opened. Parts are read under `max_input_bytes` each and `zip_max_bytes` in all; a message with more attachments
than `zip_max_entries` is not opened.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Callable, Iterator, Union

from .base import Blob, Budget, Context, Item, ItemError, SourcePlugin
from .quiet import quiet_logger
from .registry import register

MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ATTACH = "__attach_version1.0_#"
DATA, EMBEDDED = "__substg1.0_37010102", "__substg1.0_3701000D"
NAMES = ("3707", "3704")  # PidTagAttachLongFilename, PidTagAttachFilename
CONTENT_ID, HTML_BODY = "__substg1.0_3712", "__substg1.0_10130102"  # PidTagAttachContentId, PidTagHtml
HIDDEN, ATTACH_FLAGS, ATT_MHTML_REF = 0x7FFE000B, 0x37140003, 0x4  # PidTagAttachmentHidden, PidTagAttachFlags
MAX_HTML_BODY = 16 * 1024 * 1024  # an HTML body read to find the pictures it names
LEGACY = {"PowerPoint Document": ("PowerPoint 97–2003 presentation", "Pictures"),
          "WordDocument": ("Word 97–2003 document", "Data"), "Workbook": ("Excel 97–2003 workbook", "Workbook")}
# OfficeArt BLIP record types → (file suffix, bytes before the picture with one UID, instance with two UIDs)
BLIPS = {0xF01D: ("jpg", 17, {0x46B, 0x6E3}), 0xF02A: ("jpg", 17, {0x6E3}), 0xF01E: ("png", 17, {0x6E1}),
         0xF01F: ("bmp", 17, {0x7A9}), 0xF029: ("tif", 17, {0x6E5})}
METAFILES = {0xF01A, 0xF01B, 0xF01C}  # EMF, WMF, PICT: drawings Pillow cannot rasterise here
_BLIP_TYPE = re.compile(rb"[\x1a-\x1f\x29\x2a]\xf0")  # the second half of a BLIP record header's type
MAGICS = {"jpg": (b"\xff\xd8\xff",), "png": (b"\x89PNG",), "tif": (b"II*\x00", b"MM\x00*")}  # a DIB is told by its header size instead

quiet_logger("olefile")  # defects are reported per item instead


SUFFIXES = (".msg", ".doc", ".dot", ".xls", ".xlt", ".ppt", ".pps", ".pot",
            # a password-protected Word, Excel or PowerPoint 2007+ file is a compound file (its zip encrypted)
            ".docx", ".docm", ".dotx", ".dotm", ".xlsx", ".xlsm", ".xlsb", ".xltx", ".xltm", ".pptx", ".pptm", ".ppsx",
            ".ppsm", ".potx", ".potm")
LOCKED = "password-protected (encrypted) {}: its pictures cannot be read without the password; not read"


def accepts(head: bytes, blob: Blob) -> bool:
    """A compound file named as a message or a legacy Office file. Installers, thumbnail caches and other
    compound files (often large) stay unread notes in folder walks."""
    return head.startswith(MAGIC) and (blob.name or blob.origin).lower().endswith(SUFFIXES)


def split_msg(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    from .base import unit
    from .email_file import Inline, in_text
    from .files import member_units

    inner = ctx.no_fetching("it came in an Outlook message")
    for part in _message(blob, ctx):
        if isinstance(part, Inline):  # a picture the text shows: under min_side, decoration (as in an .eml)
            yield unit(part.blob.origin, in_text, part.blob, inner)
        else:
            yield from member_units((part,), inner)


def _message(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    import olefile

    from .files import UniqueNames

    origin, budget = blob.origin, blob.budget or Budget(ctx.limits.zip_max_bytes)
    if blob.depth > ctx.limits.max_depth:
        yield ItemError(origin, "", f"message nested deeper than max_depth ({ctx.limits.max_depth}); not opened")
        return
    if _directory_entries(blob.data) > MAX_ENTRIES:
        yield ItemError(origin, "", f"compound (OLE) file has more than {MAX_ENTRIES:,} directory entries (streams and "
                                    "storages); not opened")
        return
    try:
        ole = olefile.OleFileIO(io.BytesIO(blob.data))
        entries = ole.listdir(streams=True, storages=True)
    except Exception as exc:
        yield ItemError(origin, "", f"not a readable compound (OLE) file: {exc}")
        return
    with ole:
        top = {e[0] for e in entries}
        if not any(name.startswith("__substg1.0_") for name in top):
            yield from _office_pictures(ole, top, blob, ctx, budget)
            return
        attached = sum(1 for e in entries if e[-1].startswith(ATTACH))  # in attached messages too
        if attached > ctx.limits.zip_max_entries:
            yield ItemError(origin, "", f"message has {attached:,} attachments, over the zip_max_entries cap of "
                                        f"{ctx.limits.zip_max_entries:,}; not opened")
            return
        yield from _attachments(ole, entries, [], blob, ctx, budget, blob.depth, UniqueNames(), _Walk())
        yield ItemError(origin, "", "Outlook message: its text left out; remote images in it are not fetched",
                        skipped=True)


class _Walk:
    """What walking a message and the messages attached to it shares: how many attached messages there were (each
    is `attached message N`), and the data: pictures its HTML bodies showed (one shown again is not given again)."""

    def __init__(self):
        self.messages, self.shown = 0, set()


MAX_ENTRIES = 100_000  # directory entries: real messages and Office files have tens to a few thousand


def _directory_entries(data: bytes) -> int:
    """How many 128-byte entries the directory's sector chain holds, followed through the FAT from the header and
    counted to just past MAX_ENTRIES: olefile makes an object of each before anything can be checked (1.5 million,
    192 MB: 20 s, 2.1 GB). A malformed header or chain ends the count; olefile then says what is wrong."""
    if len(data) < 512 or not 7 <= int.from_bytes(data[0x1E:0x20], "little") <= 16:
        return 0
    size = 1 << int.from_bytes(data[0x1E:0x20], "little")  # sector size
    per, last = size // 4, 0xFFFFFFFA  # FAT entries per sector; sector numbers from here on are markers

    def u32(at: int) -> int:
        return int.from_bytes(data[at:at + 4], "little")

    fat = list(struct.unpack_from("<109I", data, 0x4C))  # the FAT's sectors: 109 in the header, the rest in DIFAT
    difat, need = u32(0x44), len(data) // size // per + 1
    while len(fat) < need and difat < last and (difat + 2) * size <= len(data):
        fat += struct.unpack_from(f"<{per - 1}I", data, (difat + 1) * size)
        difat = u32((difat + 2) * size - 4)
    count, seen, sect = 0, set(), u32(0x30)
    while sect < last and sect not in seen and count <= MAX_ENTRIES:
        seen.add(sect)
        count += size // 128
        fat_sect, i = divmod(sect, per)
        if fat_sect >= len(fat) or fat[fat_sect] >= last or (fat[fat_sect] + 2) * size > len(data):
            break
        sect = u32((fat[fat_sect] + 1) * size + 4 * i)
    return count


def _attachments(ole, entries: list[list[str]], prefix: list[str], blob: Blob, ctx: Context, budget: Budget,
                 depth: int, names, walk: _Walk, place: str = "") -> Iterator[Union[Item, Blob]]:
    """`names`: shared with attached messages, whose files are named in the outer message (a file name given
    again, there too: `a (2).png`, as in a zip) and placed `attached message N`."""
    from .email_file import Inline

    limits, n = ctx.limits, len(prefix)
    yield from _body_pictures(ole, prefix, blob, ctx, budget, depth, names, walk, place)
    storages = sorted({e[n] for e in entries if len(e) > n + 1 and e[:n] == prefix and e[n].startswith(ATTACH)})
    for i, storage in enumerate(storages, 1):
        path = prefix + [storage]
        name = _name(ole, path) or f"attachment-{i}"
        where = f"{blob.origin}:{names(name)}"
        if ole.exists(path + [EMBEDDED]):
            if depth + 1 > limits.max_depth:
                yield ItemError(where, "", f"messages nested deeper than max_depth ({limits.max_depth}); not opened")
                continue
            walk.messages += 1
            yield from _attachments(ole, entries, path + [EMBEDDED], blob, ctx, budget, depth + 1, names, walk,
                                    f"attached message {walk.messages}")
            continue
        if not ole.exists(path + [DATA]):
            yield ItemError(where, "", "attachment without data (a link or an embedded OLE object); not read",
                            skipped=True)
            continue
        size = ole.get_size(path + [DATA])
        if size > limits.max_input_bytes:
            yield ItemError(where, "", f"attachment is {size:,} bytes, over the max_input_bytes cap of "
                                       f"{limits.max_input_bytes:,}; not read")
            continue
        if size > budget.left:
            yield ItemError(where, "", f"message holds more than the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                       "the rest is not read")
            return
        budget.left -= size
        try:
            data = ole.openstream(path + [DATA]).read(size)
        except Exception as exc:
            yield ItemError(where, "", f"could not read the attachment: {exc}")
            continue
        if not data:
            yield ItemError(where, "", "empty attachment", skipped=True)
            continue
        cid = _shown_in_text(ole, path, prefix)
        shown = ", ".join(p for p in (place, cid and f"HTML body, cid:{cid}") if p)
        member = Blob(where, data, name=name, depth=depth + 1, budget=budget, locator=shown)
        yield Inline(member) if cid else member


def _body_pictures(ole, message: list[str], blob: Blob, ctx: Context, budget: Budget, depth: int, names,
                   walk: _Walk, place: str) -> Iterator[Union[Item, Blob]]:
    """The pictures a message's HTML body holds as data: URIs (as an .eml's are read): `referral.msg:body-image-1.png`,
    placed `HTML body, img #2`. A picture the text shows: under min_side, decoration."""
    import email.message

    from .email_file import Inline, _html_pictures, _Reading, _Refused

    html = message + [HTML_BODY]
    if not ole.exists(html) or ole.get_size(html) > MAX_HTML_BODY:
        return
    try:
        body = ole.openstream(html).read()
    except Exception:
        return
    part = email.message.Message()
    part["Content-Type"] = "text/html"
    for name, data, where in _html_pictures(body, part, _Reading(ctx.limits.zip_max_entries),
                                            ctx.limits.max_input_bytes, walk.shown):
        where = ", ".join(p for p in (place, where) if p)
        if isinstance(data, _Refused):
            yield ItemError(blob.origin, where, str(data))
            return
        if isinstance(data, str):  # a data: picture that could not be decoded
            yield ItemError(blob.origin, where, data)
            continue
        origin = f"{blob.origin}:{names(name)}"
        refused, stop = budget.refuse(origin, len(data), ctx.limits, "message decodes past")
        if refused:
            yield refused
            if stop:
                return
            continue
        yield Inline(Blob(origin, data, name=name, depth=depth + 1, budget=budget, locator=where))


def _shown_in_text(ole, path: list[str], message: list[str]) -> str:
    """The content ID of an attachment that is a picture the message's text shows (a signature's logo, an icon, a
    picture pasted into the text), else "": it has a content ID, and Outlook marks it hidden
    (PidTagAttachmentHidden) or rendered by the HTML body (PidTagAttachFlags' ATT_MHTML_REF), or the HTML body
    names it by cid:."""
    cid = ""
    for kind, encoding in (("001F", "utf-16-le"), ("001E", "cp1252")):
        if ole.exists(path + [f"{CONTENT_ID}{kind}"]):
            try:
                cid = ole.openstream(path + [f"{CONTENT_ID}{kind}"]).read(1024).decode(encoding, "replace")
            except Exception:
                continue
            cid = cid.rstrip("\x00").strip().strip("<>").strip()
            break
    if not cid:
        return ""
    props = _properties(ole, path)
    if props.get(HIDDEN, 0) & 0xFF or props.get(ATTACH_FLAGS, 0) & ATT_MHTML_REF:
        return cid
    html = message + [HTML_BODY]
    if ole.exists(html) and ole.get_size(html) <= MAX_HTML_BODY:
        try:
            named = b"cid:" + cid.lower().encode("utf-8", "replace") in ole.openstream(html).read().lower()
        except Exception:
            return ""
        return cid if named else ""
    return ""


def _properties(ole, path: list[str]) -> dict[int, int]:
    """An attachment's fixed-size properties (MS-OXMSG: an 8-byte header, then 16 bytes each: tag, flags,
    value), {tag: the value's first 4 bytes}."""
    stream = path + ["__properties_version1.0"]
    if not ole.exists(stream) or ole.get_size(stream) > 64 * 1024:
        return {}
    try:
        data = ole.openstream(stream).read()
    except Exception:
        return {}
    return {tag: value for tag, _, value, _ in struct.iter_unpack("<IIII", data[8:8 + (len(data) - 8) // 16 * 16])}


def _office_pictures(ole, top: set[str], blob: Blob, ctx: Context, budget: Budget) -> Iterator[Union[Item, Blob]]:
    origin, limits = blob.origin, ctx.limits
    if "EncryptedPackage" in top:  # Office 2007+ encryption: the whole zip inside, encrypted
        yield ItemError(origin, "", LOCKED.format("Office document"))
        return
    found = next(((what, stream) for key, (what, stream) in LEGACY.items() if key in top), None)
    if found is None:
        yield ItemError(origin, "", "a compound (OLE) file that is neither an Outlook message nor an Office "
                                    "97–2003 file; not read", skipped=True)
        return
    what, stream = found
    if _encrypted(ole, top):
        yield ItemError(origin, "", LOCKED.format(what))
        return
    if not ole.exists([stream]):
        yield ItemError(origin, "", f"{what} without pictures", skipped=True)
        return
    size = ole.get_size([stream])
    if size > limits.max_input_bytes:
        yield ItemError(origin, "", f"the {what}'s {stream} stream is {size:,} bytes, over the max_input_bytes cap "
                                    f"of {limits.max_input_bytes:,}; not read")
        return
    data = ole.openstream([stream]).read(size)
    if stream == "Workbook":
        data = _drawing_groups(data)
    pictures, metafiles = _blips(data, limits.max_input_bytes)
    for i, (suffix, picture) in enumerate(pictures, 1):
        where = f"{origin}:picture-{i}.{suffix}"
        if len(picture) > budget.left:
            yield ItemError(where, "", f"pictures add up past the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                       "the rest are not read")
            return
        budget.left -= len(picture)
        yield Blob(where, picture, name=f"picture-{i}.{suffix}", depth=blob.depth + 1, budget=budget)
    notes = [f"{what}: its text left out"]
    if metafiles:
        notes.append(f"{metafiles} drawing{'s' * (metafiles > 1)} (EMF/WMF/PICT) not drawn")
    if not pictures and not metafiles:
        notes.append("no pictures found")
    yield ItemError(origin, "", "; ".join(notes), skipped=True)


def _encrypted(ole, top: set[str]) -> bool:
    """Whether a 97–2003 file is password-protected: a .doc's fEncrypted flag (its FIB), a .xls's FILEPASS record
    (in the records before its first sheet), a .ppt's EncryptedSummary stream. Its pictures are encrypted too."""
    try:
        if "WordDocument" in top:
            return bool(int.from_bytes(ole.openstream(["WordDocument"]).read(12)[10:12], "little") & 0x0100)
        if "Workbook" in top:
            head, pos = ole.openstream(["Workbook"]).read(1 << 16), 0
            while pos + 4 <= len(head):
                rec, size = struct.unpack_from("<HH", head, pos)
                if rec == 0x002F:
                    return True
                if rec == 0x000A:  # the end of the workbook's globals
                    return False
                pos += 4 + size
            return False
        return "EncryptedSummary" in top
    except Exception:  # unreadable: reading its pictures says so
        return False


def _blips(data: bytes, cap: int) -> tuple[list[tuple[str, bytes]], int]:
    """The pictures of every OfficeArt BLIP record in `data` (found by their 8-byte headers in one pass and
    checked by the picture's own first bytes; an EMF or WMF one when it paints a bitmap, unpacked under `cap`
    bytes), and how many other metafile BLIPs there were."""
    pictures, metafiles, done = [], 0, 0
    for m in _BLIP_TYPE.finditer(data, 2):
        head = m.start() - 2
        if head < done or data[head] & 0x0F:  # inside a record already taken, or not record version 0
            continue
        rec_type = int.from_bytes(data[head + 2:head + 4], "little")
        length = int.from_bytes(data[head + 4:head + 8], "little")
        if not 17 < length <= len(data) - head - 8:
            continue
        if rec_type in METAFILES:
            done = head + 8 + length
            drawing = _metafile(data, head, length, cap) if rec_type != 0xF01C else None
            if drawing is not None:
                pictures.append(("emf" if rec_type == 0xF01A else "wmf", drawing))
            else:
                metafiles += 1
            continue
        suffix, skip, two_uids = BLIPS[rec_type]
        skip += 16 if (int.from_bytes(data[head:head + 2], "little") >> 4) in two_uids else 0
        start = head + 8 + skip
        if suffix == "bmp":
            if int.from_bytes(data[start:start + 4], "little") not in (12, 40, 52, 56, 108, 124):
                continue
        elif not any(data.startswith(magic, start) for magic in MAGICS[suffix]):
            continue  # checked before copying anything: fake headers claiming the rest of the stream cost nothing
        picture = data[start:head + 8 + length]
        if suffix == "bmp":
            picture = bmp_file(picture)
        if picture:
            pictures.append((suffix, picture))
            done = head + 8 + length
    return pictures, metafiles


def _metafile(data: bytes, head: int, length: int, cap: int) -> bytes | None:
    """The EMF or WMF an OfficeArt metafile BLIP holds (after its UIDs and 34-byte metafile header, deflated
    or not), when it paints a bitmap (metafile.py reads those); else None."""
    from .metafile import has_bitmaps

    end = head + 8 + length
    at = head + 8 + (32 if (int.from_bytes(data[head:head + 2], "little") >> 4) in (0x3D5, 0x217) else 16)
    if at + 34 > end:
        return None
    size, saved = int.from_bytes(data[at:at + 4], "little"), int.from_bytes(data[at + 28:at + 32], "little")
    packed = data[at + 34:min(end, at + 34 + saved)]
    if data[at + 32] == 0xFE:  # stored as it is
        drawing = packed
    elif data[at + 32] == 0 and size <= cap:  # deflated (a zlib stream)
        try:
            drawing = zlib.decompressobj().decompress(packed, size)
        except zlib.error:
            return None
    else:
        return None
    return drawing if has_bitmaps(drawing) else None


def bmp_file(dib: bytes) -> bytes:
    """A device-independent bitmap (BITMAPINFOHEADER, masks, colours and pixels) with the file header it lacks."""
    from .metafile import dib_file, split_dib

    if len(dib) < 40 or int.from_bytes(dib[:4], "little") not in (12, 40, 52, 56, 108, 124):
        return b""
    return dib_file(*split_dib(dib))[0] or b""  # a BI_JPEG or BI_PNG one: its JPEG or PNG


def _drawing_groups(workbook: bytes) -> bytes:
    """The MsoDrawingGroup records of a BIFF8 workbook stream, their CONTINUE records joined on."""
    out, pos, inside = bytearray(), 0, False
    while pos + 4 <= len(workbook):
        rec = int.from_bytes(workbook[pos:pos + 2], "little")
        size = int.from_bytes(workbook[pos + 2:pos + 4], "little")
        body = workbook[pos + 4:pos + 4 + size]
        if rec == 0x00EB:
            out += body
            inside = True
        elif rec == 0x003C and inside:
            out += body
        else:
            inside = False
        pos += 4 + size
    return bytes(out)


def _name(ole, path: list[str]) -> str:
    """The attachment's file name (long, else 8.3; Unicode or 8-bit), without any folder it claims."""
    for tag in NAMES:
        for kind, encoding in (("001F", "utf-16-le"), ("001E", "cp1252")):
            stream = path + [f"__substg1.0_{tag}{kind}"]
            if ole.exists(stream):
                try:
                    text = ole.openstream(stream).read(1024).decode(encoding, errors="replace").rstrip("\x00")
                except Exception:
                    continue
                base = re.split(r"[\\/]", text)[-1].strip().strip(".")[:200]
                if base:
                    return base
    return ""


register(SourcePlugin("outlook", accepts, priority=22, split=split_msg))
