"""Tar archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, .tar.zst) and single compressed files (.gz, .bz2, .xz,
.zst).

PACS and research exports often come as compressed tarballs. A tar is a container like a zip: every
member is an input of its own (`export.tar.gz:study/1.dcm`), read in archive order straight from the
decompressing stream, never extracted to disk. Caps as for zips: `zip_max_entries`, `max_input_bytes` per
member, `zip_max_bytes` in all, `max_depth` of nesting; absolute and `..` names are refused, links and
devices are notes. A sparse file (GNU tar --sparse) is read with its holes, which count against
`zip_max_bytes` as inflated bytes do. In a compressed tar a member over its cap ends the reading there, since
passing over it would mean inflating it (a bomb); in any tar, so does a member whose stored bytes run past the
end of the data. The pax and
GNU long-name headers before a member may take `HEADER_MAX` bytes (tarfile parses pax records one by one in
Python), `HEADERS_MAX` in all. The data is inflated by `inflate.Inflated`, which refuses millions of tiny
concatenated streams. A detached header is read with its data file from the same folder,
whichever comes first (`tar_pairs`). A compressed file that is not a tar is inflated under `max_input_bytes`
and opened by whichever source reads its content (a `.dcm.gz`, a `.png.xz`); NIfTI and MGH take their own
gzip files first.
"""

from __future__ import annotations

import re
import tarfile
from typing import Callable, Iterator, Union

from .base import HIDDEN_ONLY, Blob, Budget, Context, Item, ItemError, SourcePlugin
from .inflate import BZIP2, CORRUPT, GZIP, XZ, ZSTD, Inflated, Refused, TooBig, skippable
from .registry import JOIN, register, split_part
from .tar_pairs import Seen, pairable, paired

HEADER_MAX = 1 << 20  # pax and GNU long-name headers before one member
HEADERS_MAX = 16 << 20  # and in the whole archive
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
             tarfile.GNUTYPE_LONGLINK)
_SUFFIX = re.compile(r"\.(gz|tgz|bz2|tbz2?|xz|txz|zst|tzst)$", re.IGNORECASE)
_TAR_NAME = re.compile(r"\.(tar(\.(gz|bz2|xz|zst))?|tgz|tbz2?|txz|tzst)$", re.IGNORECASE)
_PLAIN_TAR = re.compile(r"\.tar$", re.IGNORECASE)


def accepts(head: bytes, blob: Blob) -> bool:
    return is_tar(head) or _compressed(head) or _nothing(blob.data, blob.name or blob.origin)  # a tar of no files


def _compressed(head: bytes) -> bool:
    return head.startswith((GZIP, BZIP2, XZ, ZSTD)) or skippable(head)  # pzstd's start


def _nothing(data: bytes, name: str, inflated: bool = False) -> bool:
    """Whether `data` is a tar holding no member (`tar cf x.tar --files-from /dev/null`): only its end, blocks of
    zeros, which no magic tells from other zeros, so only in a file named as a tar: `.tar`, or once inflated, also
    `.tar.gz`, `.tgz`, … (zeros not inflated under such a name are no gzip: a download cut off, say)."""
    return bool((_TAR_NAME if inflated else _PLAIN_TAR).search(name)) and len(data) >= 512 and \
        len(data) % 512 == 0 and data[:512].count(0) == 512 and data.count(0) == len(data)  # its first block first


def is_tar(head: bytes) -> bool:
    """A POSIX or GNU tar by its magic, or a pre-POSIX one (`tar --format=v7`, old Unix tools) by its first
    header's checksum, as tarfile checks it."""
    if len(head) >= 262 and head[257:262] == b"ustar":
        return True
    if len(head) < 512 or not head[0] or head[156:157] not in (b"\0", b"0", b"1", b"2", b"5"):
        return False
    field = head[148:156].strip(b"\0 ")
    return field.isdigit() and b"8" not in field and b"9" not in field and \
        int(field, 8) == sum(head[:148]) + 8 * 32 + sum(head[156:512])


def split_tar(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The archive as units of work in archive order: one per member, one per note (or one for the content
    of a compressed file that is not a tar)."""
    from .files import member_units

    yield from member_units(_parts(blob, ctx), ctx)


def _parts(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    limits, origin, data = ctx.limits, blob.origin, blob.data
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"archive nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    budget = blob.budget or Budget(limits.zip_max_bytes)
    name = blob.name or origin
    compressed = not is_tar(data[:512]) and _compressed(data)  # else a tar (of no files, maybe): as accepts found
    if compressed and not is_tar(head := _head(data)) and not _nothing(head, name, inflated=True):  # a tar of none?
        cap = min(limits.max_input_bytes, budget.left)
        stream = Inflated(data, Budget(cap))
        try:
            inner = stream.read()
            stream.read(1)  # data cut off inside its stream: read() gave what came before the cut, this raises
        except (TooBig, Refused, *CORRUPT) as exc:
            # what it inflated counts, not read or not: else an archive of such files (a member given a thousand
            # times by one directory) inflates max_input_bytes for each, far past zip_max_bytes
            budget.left = max(0, budget.left - stream.out)
            if isinstance(exc, TooBig):
                which = f"the max_input_bytes cap of {cap:,}" if cap == limits.max_input_bytes else \
                    f"the {cap:,} bytes left of its archive's zip_max_bytes cap of {limits.zip_max_bytes:,}"
                yield ItemError(origin, "", f"compressed file inflates past {which}; not read")
            elif isinstance(exc, Refused):
                yield ItemError(origin, "", f"compressed file {exc}; not read")
            else:
                yield ItemError(origin, "", f"compressed data is corrupt: {exc}")
            return
        budget.left -= len(inner)
        name = _SUFFIX.sub("", blob.name or origin.rsplit("/", 1)[-1]) or "content"
        yield Blob(origin, inner, name=name, depth=blob.depth + 1, budget=budget)
        return
    seen = Seen()
    yield from paired(_members(blob, ctx, compressed, budget, seen), blob, ctx, seen, compressed)


def _members(blob: Blob, ctx: Context, compressed: bool, budget: Budget, seen: Seen) -> Iterator[Union[Item, Blob]]:
    """Members in archive order. Every byte inflated (headers, long names, members passed over) counts
    against the budget, so no header can make it inflate or hold more than the archive may. `seen` learns
    where a plain tar's members lie and why a member was not read, for the headers that name them."""
    from .files import UniqueNames, is_hidden

    limits, origin = ctx.limits, blob.origin
    count = headers = files = hidden = 0  # entries; files read or refused; hidden files passed over
    reading = ""  # the member whose bytes are being read: a cut there is inside it
    names = UniqueNames()  # a path given again (tar -r) is `a (2).png`: read as one pass, only names seen so far
    stream = Inflated(blob.data, budget)
    try:
        tf = tarfile.open(fileobj=stream, mode="r|", tarinfo=_TarInfo)
    except TooBig:
        yield ItemError(origin, "", f"archive inflates past the zip_max_bytes cap of {limits.zip_max_bytes:,}; not read")
        return
    except Refused as exc:
        yield ItemError(origin, "", f"archive {exc}; not read")
        return
    except (tarfile.TarError, *CORRUPT) as exc:
        yield ItemError(origin, "", f"not a readable tar archive: {exc}")
        return
    with tf:
        try:
            for member in tf:
                count += 1
                if count > limits.zip_max_entries:
                    yield ItemError(origin, "", f"archive has more than the zip_max_entries cap of "
                                                f"{limits.zip_max_entries:,} entries; the rest is not read")
                    return
                if over := budget.entries_refused(1, limits):
                    yield ItemError(origin, "", f"the rest of the archive is not read: {over}")
                    return
                name = member.name
                parts = [p for p in re.split(r"[\\/]", name) if p and p != "."]
                where = f"{origin}:{'/'.join(parts)}"
                headers += member.offset_data - member.offset - tarfile.BLOCKSIZE
                end = None if compressed else len(blob.data)
                stored = _stored(member)
                holes = max(member.size - stored, 0)  # a map claiming more than the size must not give budget back
                # what passing over it reads: a sparse member's pieces, or as far as tarfile goes on to the next
                # header (tf.offset), which the header's size or a pax size puts, whatever the map says
                span = max(stored, tf.offset - member.offset_data) if member.issparse() else stored
                stop = _stop(member.offset_data + span, span, end, min(limits.max_input_bytes, budget.left), headers)
                if stop:
                    seen.why["/".join(parts)] = stop
                    part = f"; if it is the first part of a split archive, it is {JOIN}" \
                        if "past the end" in stop and split_part(blob.name or origin) else ""
                    yield ItemError(where, "", f"{stop}; the rest of the archive is not read{part}")
                    return
                if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:  # as in a zip or 7z
                    # named as it is (`/a.png`, as a zip's is), not as the member `a.png` beside it might be
                    yield ItemError(f"{origin}:{name}", "", "unsafe member name (absolute path or '..'); not read")
                    files += 1
                    continue
                if member.isdir() or not parts or any(is_hidden(p) for p in parts):
                    hidden += not member.isdir()
                    continue
                files += 1
                where = f"{origin}:{names('/'.join(parts))}"
                if not member.isfile():
                    yield ItemError(where, "", _linked(member) if member.islnk() else "a link or special file, not read",
                                    skipped=True)
                    continue
                if ctx.skip is not None and not pairable(parts[-1]) and ctx.skip(where):  # done by an earlier run:
                    # not held in memory (a header or data file is read still: `paired` passes over it)
                    budget.left -= holes  # a sparse file's holes, charged as they were then
                    if budget.left < 0:
                        return
                    continue
                if member.size > limits.max_input_bytes:
                    seen.why[where[len(origin) + 1:]] = f"over the max_input_bytes cap of {limits.max_input_bytes:,}"
                    yield ItemError(where, "", f"member is {member.size:,} bytes, over the max_input_bytes cap of "
                                               f"{limits.max_input_bytes:,}; not read")
                    continue
                if member.issparse():
                    budget.left -= holes  # made here, not inflated
                    if budget.left < 0:
                        yield ItemError(where, "", f"sparse file: its holes take the archive past the zip_max_bytes "
                                                   f"cap of {limits.zip_max_bytes:,}; the rest is not read")
                        return
                    reading = name
                    data = _sparse(tf, member)
                else:
                    reading = name
                    f = tf.extractfile(member)
                    data = f.read(member.size) if f else b""
                    if not compressed:
                        seen.spans[where[len(origin) + 1:]] = (member.offset_data, member.size)
                reading = ""
                yield Blob(where, data, name=parts[-1], depth=blob.depth + 1, budget=budget)
            end = blob.data[tf.offset:tf.offset + tarfile.BLOCKSIZE] if not compressed else b"\0"
            if not end or end.count(0) < len(end):
                # tarfile ends quietly at a header cut off, damaged or not there: a tar ends with blocks of zeros
                what = f"not a tar header at byte {tf.offset:,}" if len(end) == tarfile.BLOCKSIZE else \
                    f"it ends at byte {tf.offset + len(end):,} without the blocks of zeros a tar ends with"
                yield ItemError(origin, "", f"tar archive cut short or damaged after {count} entries: {what}; "
                                            "a member after them may be missing")
            if not files:  # directories and hidden files only: said as a zip's or a folder's emptiness is
                yield ItemError(origin, "", HIDDEN_ONLY if hidden else "archive holds no files", skipped=True)
        except TooBig:
            yield ItemError(origin, "", f"archive inflates past the zip_max_bytes cap of {limits.zip_max_bytes:,}; "
                                        "the rest is not read")
        except Refused as exc:
            yield ItemError(origin, "", f"archive {exc}; the rest is not read")
        except (tarfile.TarError, *CORRUPT) as exc:
            part = f"; if it is the first part of a split archive, it is {JOIN}" if split_part(blob.name or origin) else ""
            inside = f"; it ends inside member {reading}, not read" if reading else ""  # else in a header
            yield ItemError(origin, "", f"tar archive cut short or damaged after {count - bool(reading)} entries: "
                                        f"{exc}{inside}{part}")


def _linked(member: tarfile.TarInfo) -> str:
    """The note on a hard link: `tar` stores a file's bytes once, under the name it met first, and the link names it."""
    target = "/".join(p for p in re.split(r"[\\/]", member.linkname) if p and p != ".")[:300]
    return f"a hard link to {target} (the same file, read under that name), not read again"


def _stored(member: tarfile.TarInfo) -> int:
    """The bytes a member's data takes in the archive: its size, or for a sparse file (whose size is the whole
    file's, holes and all) the pieces that are stored."""
    return sum(n for _, n in member.sparse) if member.issparse() else member.size


def _sparse(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A sparse member's bytes: its stored pieces put in place, the holes left zero. tarfile's own reading joins
    the pieces by repeated `+=`, time that grows with pieces × size."""
    out = bytearray(member.size)
    f = tf.extractfile(member).raw  # tarfile's unbuffered piece reader: its seek only moves forward in a stream
    for offset, n in member.sparse:
        f.seek(offset)
        piece = f.read(n)
        if len(piece) != n:
            raise tarfile.ReadError("unexpected end of data")
        out[offset:offset + n] = piece
    return bytes(out)


def _stop(data_end: int, stored: int, end: int | None, cap: int, headers: int) -> str | None:
    """Why the reading must end at a member whose `stored` bytes end at `data_end`, if it must. Passing over
    them would mean inflating more than the caps allow (compressed, `end` None) or going past the `end` of
    plain data."""
    if end is None and stored > cap:
        return f"member is {stored:,} bytes, over the max_input_bytes or zip_max_bytes cap"
    if end is not None and data_end > end:  # passed over a block at a time, for ever
        return f"member is {stored:,} bytes, past the end of the archive ({end:,} bytes)"
    if headers > HEADERS_MAX:
        return f"pax and long-name headers take over {HEADERS_MAX:,} bytes in all"
    return None


class _TarInfo(tarfile.TarInfo):
    """tarfile's TarInfo, refusing pax and long-name headers over `HEADER_MAX` before tarfile reads them."""

    def _proc_member(self, tf):  # tarfile's hook for subclasses; tf.offset: where this member's headers began
        taken = self.offset + tarfile.BLOCKSIZE + self.size - tf.offset
        if self.type in _EXTENDED and taken > HEADER_MAX:
            raise Refused(f"has {taken:,} bytes of pax or long-name headers before one member, over the "
                           f"{HEADER_MAX:,} allowed")
        return super()._proc_member(tf)


def _head(data: bytes) -> bytes:
    """The first 1024 inflated bytes (empty when they cannot be had)."""
    try:
        return Inflated(data, Budget(1 << 20)).read(1024)
    except (*CORRUPT, TooBig, Refused):  # the full read says why
        return b""


register(SourcePlugin("tar", accepts, priority=24, split=split_tar))
