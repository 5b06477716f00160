"""Zip archives, read member by member into memory (never extracted to disk), with bomb and slip guards.

Word, PowerPoint, Excel and OpenDocument files are zips too: of those, only the pictures (`word/media/…`,
`Pictures/…`) and embedded documents are read, each with the place it is shown (`slide 3`: office.py), with
one note for the parts left out.

A zip is a folder: every member is its own input (its own image cap), so the pipeline decodes members
concurrently (`split_zip`). Members are read one after another, so the byte budget holds in archive order.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import stat
import struct
import threading
import zipfile
import zlib
from functools import partial
from typing import Callable, Iterator, Union

from .base import HIDDEN_ONLY, Blob, Budget, Context, Item, ItemError, Limits, SourcePlugin
from .office import Office, places, survey
from .registry import JOIN, register, split_part
from .zip_rebuild import HEADER, rebuild

_CHUNK = 1024 * 1024
_MAX_NAME = 1024  # bytes of central directory allowed per entry when checking its size up front


class _TooBig(Exception):
    pass


# what a self-extracting zip starts with: a Windows or Linux program, a macOS one, a shell script
EXECUTABLE = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"#!")
TAIL = (1 << 16) + 22  # the end record lies in this many bytes at the end (its comment may take 64 KB)
_SPANNED = b"PK\x07\x08PK\x03\x04"  # the first part of a split zip (`zip -s`, WinZip: .z01, .z02, …, .zip)


def accepts(head: bytes, blob: Blob) -> bool:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or head.startswith(_SPANNED):
        return True
    name = blob.name or blob.origin
    return (head.startswith(EXECUTABLE) or name.lower().endswith(".zip")) and \
        at_the_end(head, name, blob.data[-TAIL:], len(blob.data))


def at_the_end(head: bytes, name: str, tail: bytes, size: int) -> bool:
    """Whether a file that does not start as a zip ends as one: a self-extracting zip (a program, or a script,
    with the zip after it: `tail` ends with its end record and its directory lies just before it), or the last
    part of a split zip (`name` .zip, its end record on a disk after the first)."""
    end = _end_record(tail)
    if end is None:
        return False
    disk, cd_size, cd_offset, at = end
    if disk:
        return name.lower().endswith(".zip")
    cd_start = at - cd_size  # in the tail
    return head.startswith(EXECUTABLE) and cd_start >= 0 and tail[cd_start:cd_start + 4] == b"PK\x01\x02" and \
        size - len(tail) + cd_start >= cd_offset


def _end_record(tail: bytes) -> tuple[int, int, int, int] | None:
    """(this disk's number, directory size, directory offset, where the record starts in `tail`) of the last end
    record, None when there is none (or it is cut off); a ZIP64 archive's record before it is not read, but for a
    disk number of 0xFFFF ("in the ZIP64 record", as some writers put in every field), its locator's count of
    disks: one (or no locator) is disk 0, not the 65536th part of a split zip."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    disk, = struct.unpack_from("<H", tail, at + 4)
    if disk == 0xFFFF:
        locator = tail[at - 20:at] if at >= 20 else b""
        disks = struct.unpack_from("<I", locator, 16)[0] if locator[:4] == b"PK\x06\x07" else 1
        disk = disks - 1 if disks > 1 else 0
    cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
    return disk, cd_size, cd_offset, at


def split_zip(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The archive as independent units of work in archive order: one per member, one per note."""
    from .files import member_units

    yield from member_units(_walk(blob, ctx, blob.budget or Budget(ctx.limits.zip_max_bytes)), ctx)


def _walk(blob: Blob, ctx: Context, budget: Budget) -> Iterator[Union[Item, Blob]]:
    """Notes about the archive and the members to open (as Blobs), in archive order."""
    from .files import UniqueNames, is_hidden

    limits, origin = ctx.limits, blob.origin
    if blob.depth > limits.max_depth:  # a zip inside a tar or a message inside …
        yield ItemError(origin, "", f"archive nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    problem = _split_part(blob.data) or _check_directory(blob.data, limits.zip_max_entries)
    if problem:
        yield ItemError(origin, "", problem)
        return
    whole = blob.data  # the archive, or with a directory rebuilt from its members' own headers
    try:
        zf = _open_zip(whole)
        infos = _named(zf.infolist())
    except Exception as exc:
        found = rebuild(whole, limits.zip_max_entries, budget.left)  # a download cut short: found member by member
        cut = "" if not found or not found.cut else f"; it ends inside member {found.cut}, not read" \
            if found.cut != HEADER else "; it ends inside the header of the member after them" if found.found else \
            "; it ends inside its first member's header"
        part = f"; if it is the first part of a split archive, it is {JOIN}" if split_part(blob.name or origin) else ""
        if not found or not found.found:
            why = f"; {found.why}" if found and found.why else ""
            yield ItemError(origin, "", f"not a readable zip archive: {exc}{cut}{why}{part}")
            return
        whole = found.data
        yield ItemError(origin, "", f"zip archive without a readable central directory ({exc}; cut short?): "
                                    + (f"{found.found:,} members found by their own headers" if found.found > 1 else
                                       "1 member found by its own header")
                                    + cut + (f"; the rest is not read: {found.why}" if found.why else "") + part)
        try:
            zf = _open_zip(whole)
            infos = _named(zf.infolist())
        except Exception as again:
            yield ItemError(origin, "", f"not a readable zip archive: {again}")
            return
    if nameless := sum(not i.filename for i in infos):  # zipfile cuts a name at a NUL; is_dir() fails on ""
        infos = [i for i in infos if i.filename]
        yield ItemError(origin, "", f"{nameless:,} member{'s' * (nameless > 1)} with no name (or a name starting "
                                    "with a NUL byte) not read")
    if len(infos) > limits.zip_max_entries:
        yield ItemError(origin, "", f"archive has {len(infos):,} entries, over the zip_max_entries cap "
                                    f"of {limits.zip_max_entries:,}; not opened")
        return
    if not any(not i.is_dir() for i in infos):
        yield ItemError(origin, "", "archive holds no files", skipped=True)
        return
    if all(i.is_dir() or _left_out(i.filename) for i in infos):  # as a folder of them says
        yield ItemError(origin, "", HIDDEN_ONLY, skipped=True)
        return
    members = _Members(infos)  # shared by the sibling lookups
    names = UniqueNames('/'.join(_parts(i.filename)) for i in infos if not i.is_dir())  # a name given again: a (2)
    office = survey(zf, infos, _read)
    if office is not None and office.locked:
        from .compound import LOCKED

        yield ItemError(origin, "", LOCKED.format("OpenDocument file"))
        return
    if office is not None:  # a Word/PowerPoint/Excel/OpenDocument file: its pictures are what it shows
        yield from _office_notes(office, infos, origin)
        infos = [i for i in infos if office.reads(i.filename)]
    if over := budget.entries_refused(len(infos), limits):  # of an Office file, the parts it reads
        yield ItemError(origin, "", f"archive not opened: {over}")
        return
    for info in infos:
        name = info.filename
        parts = _parts(name)
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            yield ItemError(f"{origin}:{name}", "", "unsafe member name (absolute path or '..'); not read")
            continue
        if info.is_dir() or not parts or any(is_hidden(p) for p in parts):  # `.`, `./.`: a hidden name, as before
            continue
        # a Windows tool's backslashes as slashes, as tar and 7z names are; the second of a name `a (2).png`
        where = f"{origin}:{names('/'.join(parts))}"
        turn = members.turn[id(info)]
        if _special(info):  # `zip -y` and macOS keep a symlink as a member holding its target's path
            yield ItemError(where, "", "a link or special file, not read", skipped=True)
            continue
        if ctx.skip is not None and ctx.skip(where):  # done by an earlier run: not even inflated, but charged
            budget.left -= info.file_size  # as it was then, so a resumed run stops where a whole run does
            if budget.left < 0:
                return
            continue
        place = office.places.get(name, "") if office else ""  # errors about it say where it is shown too
        views = office.views.get(name, ()) if office else ()
        if blob.locator:  # a document embedded in another (a .docx on slide 2): that place first
            place = _within(blob.locator, place)
            views = tuple((_within(blob.locator, p), crop) for p, crop in views)
        if info.flag_bits & 0x1:
            yield ItemError(where, place, "encrypted member; not read")
            continue
        if office and name in office.encrypted:
            yield ItemError(where, place, "encrypted by the e-book's DRM (META-INF/encryption.xml); not read")
            continue
        header = _header_of(zf, members, parts, turn)
        if header:  # read with its header (as a sibling): inflating it here too would charge it twice
            yield ItemError(where, "", f"skipped: the data file of {header}, read with it", skipped=True)
            continue
        if info.file_size > limits.max_input_bytes:
            yield ItemError(where, place, f"member declares {info.file_size:,} bytes, over the max_input_bytes "
                                          f"cap of {limits.max_input_bytes:,}; not read")
            continue
        if office and name in office.fallbacks:  # Office 2016+ and LibreOffice keep an SVG and a PNG of it
            yield ItemError(where, place, f"skipped: an SVG picture, shown through its raster copy "
                                          f"{office.fallbacks[name]}, which is read instead", skipped=True)
            continue
        if office and name in office.originals:  # Office 2010+ keeps a picture's original under artistic effects
            yield ItemError(where, place, f"skipped: the original of a picture shown with effects applied, as "
                                          f"{office.originals[name]}, which is read instead", skipped=True)
            continue
        limit = min(limits.max_input_bytes, budget.left)
        try:
            data = _read(zf, info, limit)
        except _TooBig:
            if limit == limits.max_input_bytes:
                yield ItemError(where, place, f"member inflates past the max_input_bytes cap of "
                                              f"{limits.max_input_bytes:,}; not read")
                continue
            yield ItemError(where, place, f"archive inflates past the zip_max_bytes cap of "
                                          f"{limits.zip_max_bytes:,}; the rest of the archive is not read")
            return
        except NotImplementedError:  # zipfile: "That compression method is not supported"; say which, and what to do
            yield ItemError(where, place, f"member compressed with {_method(info.compress_type)}, which is not inflated "
                                          "here; not read (zip it again with Deflate, the usual method)")
            continue
        except Exception as exc:
            yield ItemError(where, place, f"could not read member: {exc}")
            continue
        budget.left -= len(data)
        member = Blob(where, data, name=parts[-1], depth=blob.depth + 1, budget=budget, locator=place,
                      views=views,
                      sibling=partial(_sibling, whole, members, parts[:-1], turn, limits, budget))
        if accepts(data[:4], member):
            if member.depth > limits.max_depth:
                yield ItemError(where, "", f"archive nested deeper than max_depth ({limits.max_depth}); not opened")
                continue
            yield from _walk(member, ctx, budget)  # nested archives share the outer budget
        else:
            yield member


def _method(number: int) -> str:
    """A zip compression method by name and number: `Deflate64 (method 9)`, which 7-Zip may write."""
    name = {93: "Zstandard", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd", 99: "AES"}.get(number) or \
        zipfile.compressor_names.get(number, "").capitalize() or "an unknown method"
    return f"{name} (method {number})"


def _within(outer: str, inner: str) -> str:
    """A place in a document embedded in another: `slide 2, header`; `document body` once, not twice."""
    return f"{outer}, {inner}" if inner and inner != outer else outer


def _split_part(data: bytes) -> str | None:
    """What to do with one part of a split zip (`zip -s`, WinZip's .z01, .z02, …, .zip), which zipfile cannot read."""
    if data.startswith(_SPANNED):
        which = "the first part"
    else:
        end = _end_record(data[-TAIL:])
        if end is None or not end[0]:
            return None
        which = f"the last of {end[0] + 1} parts"
    return f"{which} of a split zip archive (.z01, .z02, …, .zip), {JOIN}"


def _special(info: zipfile.ZipInfo) -> bool:
    """A member made on Unix whose mode says it is a symlink (or a device, FIFO or socket), not a file."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    return info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _open_zip(data: bytes) -> zipfile.ZipFile:
    """zipfile's reading of the archive. A name flagged UTF-8 that is not (a tool that sets the flag on its code
    page's bytes) makes zipfile refuse the whole archive (CPython gh-153426): such a name is read as an unflagged
    one is (CP437, `_named`), and the other members as they are."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except UnicodeDecodeError:
        fp = _FlagCleared(data)
        zf = zipfile.ZipFile(fp)
        fp.headers = {info.header_offset for info in zf.filelist}  # its local header too: zipfile checks it
        return zf


class _FlagCleared(io.BytesIO):
    """The archive with the UTF-8 flag cleared on the names that are not UTF-8, in what zipfile reads: central
    directory entries, while it lists the members (the directory in one read; behind a long comment, its search
    for the end record may start in the directory too), then the local header a member is opened at (30 bytes,
    its name after them)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = memoryview(data)  # names read from it, not copied
        self.headers: set[int] | None = None  # where the members' local headers start, once they are listed

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        out = super().read(size)
        if self.headers is None:
            return _unflagged(out, out, b"PK\x01\x02", 8, 28, 46)
        if start in self.headers and len(out) >= 30:
            return _unflagged(out[:30], self.data[start:], b"PK\x03\x04", 6, 26, 30) + out[30:]
        return out


def _unflagged(out: bytes, names: bytes, sig: bytes, flags_at: int, sizes_at: int, name_at: int) -> bytes:
    """`out` with the UTF-8 flag cleared in each header it starts with (`sig`, then one after another) whose name,
    read from `names` (the same bytes, or `out` continued), is not UTF-8."""
    patched, at = None, 0
    while out[at:at + 4] == sig and at + name_at <= len(out):
        flags, n = struct.unpack_from("<H", out, at + flags_at)[0], struct.unpack_from("<H", out, at + sizes_at)[0]
        if flags & 0x800 and not _is_utf8(names[at + name_at:at + name_at + n]):
            patched = patched if patched is not None else bytearray(out)
            patched[at + flags_at + 1] &= ~0x08  # bit 11 of the little-endian flags
        if name_at == 30:  # a local header: one only
            break
        m, k = struct.unpack_from("<HH", out, at + sizes_at + 2)
        at += name_at + n + m + k
    return out if patched is None else bytes(patched)


def _is_utf8(name) -> bool:
    try:
        str(name, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _named(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members with their names in UTF-8 where the zip says so without its UTF-8 flag, which zipfile reads as
    CP437: Info-ZIP's Unicode path field (when it matches the name), or a name whose bytes are valid UTF-8 (Linux
    `zip` 3.0 writes such names unflagged, as Macs do). Other names stay CP437, as the zip format says.
    Members are opened by their original name, so renaming them here changes nothing else."""
    for info in infos:
        if info.flag_bits & 0x800:
            continue
        try:
            raw = info.orig_filename.encode("cp437")
        except UnicodeEncodeError:
            continue
        name = _unicode_path(info.extra, raw)
        if name is None and not raw.isascii():
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if name is not None:
            info.filename = name.split("\x00", 1)[0]  # as zipfile ends a name
    return infos


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The name in an Info-ZIP Unicode path field (0x7075) whose checksum is that of `raw`, the header's name."""
    at = 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        data = extra[at + 4:at + 4 + size]
        at += 4 + size
        if kind == 0x7075 and len(data) > 5 and data[0] == 1 and struct.unpack_from("<I", data, 1)[0] == \
                zlib.crc32(raw):
            try:
                return data[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _left_out(name: str) -> bool:
    """Whether a member is passed over without a word: a hidden name (`.DS_Store`, `__MACOSX/…`) that is safe."""
    from .files import is_hidden

    parts = _parts(name)
    unsafe = name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts
    return not unsafe and (not parts or any(is_hidden(p) for p in parts))


def _parts(name: str) -> list[str]:
    """A member name's folders and file name: split at slashes and at the backslashes Windows tools write, without
    the `.` folders (`./scan.png`, as bsdtar and Windows' tar.exe write a zip of `.`), as tar and 7z names are."""
    return [p for p in re.split(r"[\\/]", name) if p and p != "."]


class _Members:
    """An archive's members by folder, name and turn (the k-th member of that path: a zip can give a name twice),
    from the walk's one read of its directory (a zip of thousands of header/data pairs read it again for each
    lookup before), and one ZipFile for the lookups, made at the first, whose reads are taken one at a time
    (they share its file position)."""

    def __init__(self, infos: list[zipfile.ZipInfo]) -> None:
        self.lock = threading.Lock()
        self.zf: zipfile.ZipFile | None = None
        self.by_turn: dict[tuple[tuple[str, ...], int], zipfile.ZipInfo] = {}
        self.turn: dict[int, int] = {}  # id(info) → its turn
        self.headers: dict[tuple[str, ...], list[tuple[str, int, zipfile.ZipInfo]]] = {}  # .mhd/.nhdr by folder
        self.named: dict[tuple[str, ...], dict[tuple[str, int], str]] = {}  # (data file, turn) → header, by folder
        given: dict[tuple[str, ...], int] = {}
        for info in infos:
            path = tuple(_parts(info.filename))
            k = self.turn[id(info)] = given[path] = given.get(path, 0) + 1
            self.by_turn[(path, k)] = info
            if path and path[-1].lower().endswith((".mhd", ".nhdr")) and not info.is_dir():
                self.headers.setdefault(path[:-1], []).append((path[-1], k, info))

    def header_naming(self, zf: zipfile.ZipFile, folder: tuple[str, ...], name: str, turn: int) -> str | None:
        """The .mhd or .nhdr of this folder and turn that names `name` as its data file, whatever its stem (h.mhd
        naming a.raw), as files.headers_naming finds it on disk: its folder's headers read once, the first
        MAX_FOLDER_HEADERS in name order."""
        from .files import MAX_FOLDER_HEADERS, SNIFF_BYTES, data_file_names

        if folder not in self.named:
            named: dict[tuple[str, int], str] = {}
            for header, k, info in sorted(self.headers.get(folder, ()), key=lambda h: h[:2])[:MAX_FOLDER_HEADERS]:
                if info.flag_bits & 0x1:
                    continue
                try:
                    head = _read(zf, info, SNIFF_BYTES)
                except Exception:  # over SNIFF_BYTES (no header) or unreadable: its own row says so
                    continue
                for data in data_file_names(head, header)[:1]:
                    named.setdefault((data, k), header)
            self.named[folder] = named
        return self.named[folder].get((name, turn))

    def find(self, path: tuple[str, ...], turn: int) -> zipfile.ZipInfo | None:
        """The member of `path` at this turn, as uploads are paired (the k-th a.mhd reads the k-th a.raw), else
        the first of that path (two headers naming one data file)."""
        return self.by_turn.get((path, turn)) or self.by_turn.get((path, 1))


def _header_of(zf: zipfile.ZipFile, members: _Members, parts: list[str], turn: int) -> str | None:
    """The header in the same zip folder that reads this member as its data file (a.mhd or a.nhdr for the a.raw it
    names, a.hdr for a.img, or a.img.gz when there is no a.img), found as a folder on disk finds it; None for any
    other member. Of a name given twice, the k-th data file is the k-th header's."""
    from .files import HEADER_EXTS, SNIFF_BYTES, data_file_names, data_stem, reads_as_data

    stem = data_stem(parts[-1])
    if stem == parts[-1]:
        return None
    for ext in HEADER_EXTS:
        info = members.by_turn.get(((*parts[:-1], stem + ext), turn))
        if info is None or info.is_dir() or info.flag_bits & 0x1:
            continue
        try:
            head = _read(zf, info, SNIFF_BYTES)
        except Exception:  # over SNIFF_BYTES (no header) or unreadable: its own row says so
            continue
        names = data_file_names(head, stem + ext)
        if reads_as_data(parts[-1], names, lambda name: members.find((*parts[:-1], name), turn) is not None):
            return stem + ext
    return members.header_naming(zf, tuple(parts[:-1]), parts[-1], turn)  # a header of another stem


def _sibling(archive: bytes, members: _Members, folder: list[str], turn: int, limits: Limits, budget: Budget,
             name: str) -> bytes:
    """Another member of the same archive folder, by bare name (a detached header's data file), capped: of a
    name given twice, the one of the header's turn (`_Members.find`). Its bytes are drawn from the archive's
    budget at every read, so headers naming one member cannot re-inflate it past zip_max_bytes."""
    with members.lock:
        return _sibling_read(archive, members, folder, turn, limits, budget, name)


def _sibling_read(archive: bytes, members: _Members, folder: list[str], turn: int, limits: Limits, budget: Budget,
                  name: str) -> bytes:
    cap = limits.max_input_bytes
    if members.zf is None:  # its own ZipFile: the walk reads from its own at the same time
        try:
            members.zf = _open_zip(archive)
        except Exception as exc:
            raise ValueError(f"archive unreadable: {exc}") from None
    zf, info = members.zf, members.find((*folder, name), turn)
    if info is None:
        raise ValueError("not in the same folder of the archive")
    if info.is_dir() or _special(info) or info.flag_bits & 0x1 or info.file_size > cap:
        raise ValueError(f"a folder, a link, encrypted, or over the max_input_bytes cap of {cap:,}")
    spent = f"the archive has used up its zip_max_bytes cap of {limits.zip_max_bytes:,}"
    if info.file_size > budget.left:
        raise ValueError(spent)
    limit = min(cap, budget.left)
    try:
        data = _read(zf, info, limit)
    except _TooBig:  # what was inflated counts too, or every header naming it would inflate it again
        budget.left = max(0, budget.left - limit - 1)
        raise ValueError(f"inflates past the max_input_bytes cap of {cap:,}" if limit == cap else spent) from None
    except NotImplementedError:
        raise ValueError(f"compressed with {_method(info.compress_type)}, which is not inflated here") from None
    budget.left -= len(data)
    return data


def _office_notes(office: Office, infos: list[zipfile.ZipInfo], origin: str) -> Iterator[ItemError]:
    """An Office file's one note (one, so a resumed run that wrote it knows the rest): the parts left out, and
    the pictures linked from outside it (never fetched), with where they are shown."""
    notes = []
    left_out = sum(1 for i in infos if not i.is_dir() and not office.reads(i.filename))
    if left_out:
        what = "chapters, styles, fonts" if office.kind == "EPUB e-book" else \
            "text, styles, page thumbnail, charts, embedded objects"
        notes.append(f"{left_out} part{'s that are' if left_out > 1 else ' that is'} not its pictures ({what}) "
                     "left out")
    if n := len(office.linked):
        where = places(set().union(*office.linked))
        notes.append(f"{n} picture{'s' * (n > 1)} linked from outside the file{f' ({where})' if where else ''}, "
                     "not in it: not fetched")
    if notes:
        yield ItemError(origin, "", f"{office.kind}: {'; '.join(notes)}", skipped=True)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, stopping as soon as more than `limit` come out: declared sizes can lie."""
    if info.compress_type in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return _inflate(zf, info, limit)
    out = bytearray()
    with zf.open(info) as f:
        while True:
            chunk = f.read(min(_CHUNK, limit + 1 - len(out)))
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > limit:
                raise _TooBig()


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A bzip2 or LZMA member inflated here a chunk at a time: zipfile hands their decompressors all the input
    it reads with no bound on the output, so one read of a small member could make gigabytes."""
    at, end = _span(zf, info)
    if info.compress_type == zipfile.ZIP_BZIP2:
        dec = bz2.BZ2Decompressor()
    else:
        dec, at = _lzma(zf, at, end, limit)
    want = min(info.file_size, limit + 1)  # zipfile too stops at the declared size (its CRC then fails)
    out = bytearray()
    while len(out) < want and not dec.eof:
        data = b""
        if dec.needs_input:
            data = _bytes_at(zf, at, min(_CHUNK, end - at))
            if not data:
                break  # cut short: the CRC says so
            at += len(data)
        chunk = dec.decompress(data, min(_CHUNK, want - len(out)))
        if not chunk and not data:
            break  # nothing more comes out
        out += chunk
    if len(out) > limit:
        raise _TooBig()
    if zlib.crc32(out) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return bytes(out)


def _bytes_at(zf: zipfile.ZipFile, offset: int, size: int) -> bytes:
    zf.fp.seek(offset)
    return zf.fp.read(max(0, size))


def _span(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where a member's compressed bytes lie, found through its local header as zipfile finds them."""
    head = _bytes_at(zf, info.header_offset, 30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad magic number for file header")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def _lzma(zf: zipfile.ZipFile, at: int, end: int, limit: int) -> tuple[lzma.LZMADecompressor, int]:
    """A raw LZMA1 decompressor for zip's LZMA format (version, properties size, properties, then the stream),
    and where the stream starts."""
    head = _bytes_at(zf, at, min(9, end - at))
    if len(head) < 9 or int.from_bytes(head[2:4], "little") != 5 or head[4] >= 9 * 5 * 5:
        raise zipfile.BadZipFile("bad LZMA properties")
    pb, rest = divmod(head[4], 45)
    lp, lc = divmod(rest, 9)
    # no match reaches further back than the bytes made so far, so no dictionary need be larger than those
    dict_size = min(int.from_bytes(head[5:9], "little"), max(limit + 1, 4096))
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1]), at + 9


def _check_directory(data: bytes, max_entries: int) -> str | None:
    """Refuse, before zipfile parses it, a central directory listing too many entries: found as zipfile finds
    it, from the end record and, whenever its locator is there, the ZIP64 end record (which zipfile prefers
    whatever the classic record says); the larger count and size of the two are checked."""
    i = len(data) - 22
    if not (i >= 0 and data[i:i + 4] == b"PK\x05\x06" and data[-2:] == b"\0\0"):  # else after a comment
        i = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if i < 0 or i + 22 > len(data):
        return None  # let zipfile report the damage
    entries = int.from_bytes(data[i + 10:i + 12], "little")
    cd_size = int.from_bytes(data[i + 12:i + 16], "little")
    locator = i - 20
    if locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":
        # zipfile reads the record just before the locator; the locator's own offset is checked as well
        records = [at for at in (locator - 56, int.from_bytes(data[locator + 8:locator + 16], "little"))
                   if at >= 0 and data[at:at + 4] == b"PK\x06\x06"]
        if records:  # all ones in the classic record only say "see the ZIP64 one"
            entries, cd_size = entries % 0xFFFF, cd_size % 0xFFFFFFFF
        for at in records:
            entries = max(entries, int.from_bytes(data[at + 24:at + 32], "little"),
                          int.from_bytes(data[at + 32:at + 40], "little"))
            cd_size = max(cd_size, int.from_bytes(data[at + 40:at + 48], "little"))
    if entries > max_entries:
        return f"archive lists {entries:,} entries, over the zip_max_entries cap of {max_entries:,}; not opened"
    if cd_size > max_entries * (46 + _MAX_NAME):
        return f"archive directory is {cd_size:,} bytes, too large for the zip_max_entries cap; not opened"
    return None


register(SourcePlugin("zip", accepts, priority=20, split=split_zip))
