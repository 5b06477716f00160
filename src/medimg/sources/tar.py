"""Tar archives (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) and single compressed files (.gz, .bz2, .xz).

PACS and research exports often come as compressed tarballs. A tar is a container like a zip: every
member is an input of its own (`export.tar.gz:study/1.dcm`), read in archive order straight from the
decompressing stream, never extracted to disk. Caps as for zips: `zip_max_entries`, `max_input_bytes` per
member, `zip_max_bytes` in all, `max_depth` of nesting; absolute and `..` names are refused, links and
devices are notes. In a compressed tar a member over its cap ends the reading there, since passing over it
would mean inflating it (a bomb). A compressed file that is not a tar is inflated under `max_input_bytes`
and opened by whichever source reads its content (a `.dcm.gz`, a `.png.xz`); NIfTI and MGH take their own
gzip files first.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import tarfile
import zlib
from typing import Callable, Iterator, Union

from .base import Blob, Context, Item, ItemError, SourcePlugin, unit
from .registry import register

GZIP, BZIP2, XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"
_SUFFIX = re.compile(r"\.(gz|tgz|bz2|tbz2?|xz|txz)$", re.IGNORECASE)


def accepts(head: bytes, blob: Blob) -> bool:
    return is_tar(head) or head.startswith((GZIP, BZIP2, XZ))


def is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def open_tar(blob: Blob, ctx: Context) -> Iterator[Item]:
    for task in split_tar(blob, ctx):
        yield from task()


def split_tar(blob: Blob, ctx: Context) -> Iterator[Callable[[], Iterator[Item]]]:
    """The archive as units of work in archive order: one per member, one per note (or one for the content
    of a compressed file that is not a tar)."""
    from .files import open_capped

    for part in _parts(blob, ctx):
        yield (unit(part.origin, open_capped, part, ctx, True) if isinstance(part, Blob)
               else unit(part.origin, iter, (part,)))


def _parts(blob: Blob, ctx: Context) -> Iterator[Union[Item, Blob]]:
    limits, origin, data = ctx.limits, blob.origin, blob.data
    if blob.depth > limits.max_depth:
        yield ItemError(origin, "", f"archive nested deeper than max_depth ({limits.max_depth}); not opened")
        return
    compressed = not is_tar(data[:512])
    if compressed and not is_tar(_inflate(data, 512, partial=True)):
        try:
            inner = _inflate(data, limits.max_input_bytes)
        except ValueError as exc:
            yield ItemError(origin, "", str(exc))
            return
        name = _SUFFIX.sub("", blob.name or origin.rsplit("/", 1)[-1]) or "content"
        yield Blob(origin, inner, name=name, depth=blob.depth + 1)
        return
    yield from _members(blob, ctx, compressed)


def _members(blob: Blob, ctx: Context, compressed: bool) -> Iterator[Union[Item, Blob]]:
    from .files import is_hidden

    limits, origin = ctx.limits, blob.origin
    budget, count = limits.zip_max_bytes, 0
    try:
        tf = tarfile.open(fileobj=io.BytesIO(blob.data), mode="r|*")
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
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
                name = member.name
                parts = [p for p in re.split(r"[\\/]", name) if p and p != "."]
                where = f"{origin}:{'/'.join(parts)}"
                if name.startswith(("/", "\\")) or ".." in parts:
                    yield ItemError(where, "", "unsafe member name (absolute path or '..'); not read")
                    continue
                if member.isdir() or not parts or any(is_hidden(p) for p in parts):
                    continue
                if not member.isfile():
                    yield ItemError(where, "", "a link or special file, not read", skipped=True)
                    continue
                over = None
                if member.size > limits.max_input_bytes:
                    over = f"member is {member.size:,} bytes, over the max_input_bytes cap of {limits.max_input_bytes:,}"
                elif member.size > budget:
                    over = f"archive holds more than the zip_max_bytes cap of {limits.zip_max_bytes:,}"
                if over and (compressed or member.size > budget):  # passing over it would mean inflating it
                    yield ItemError(where, "", f"{over}; the rest of the archive is not read")
                    return
                if over:
                    yield ItemError(where, "", f"{over}; not read")
                    continue
                budget -= member.size
                f = tf.extractfile(member)
                data = f.read(member.size) if f else b""
                yield Blob(where, data, name=parts[-1], depth=blob.depth + 1)
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            yield ItemError(origin, "", f"tar archive cut short or damaged after {count - 1} entries: {exc}")


def _inflate(data: bytes, cap: int, partial: bool = False) -> bytes:
    """The content of gzip, bzip2 or xz data, at most `cap` bytes; past it (or when corrupt) a ValueError,
    unless `partial`, which returns the first bytes it can (empty when there are none)."""
    try:
        if data.startswith(GZIP):
            out = zlib.decompressobj(wbits=31).decompress(data, cap + 1)
        elif data.startswith(BZIP2):
            out = bz2.BZ2Decompressor().decompress(data, max_length=cap + 1)
        elif data.startswith(XZ):
            out = lzma.LZMADecompressor().decompress(data, max_length=cap + 1)
        else:
            out = data[:cap + 1]
    except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
        if partial:
            return b""
        raise ValueError(f"compressed data is corrupt: {exc}") from None
    if partial:
        return out[:cap]
    if len(out) > cap:
        raise ValueError(f"compressed file inflates past the max_input_bytes cap of {cap:,}; not read")
    return out


register(SourcePlugin("tar", accepts, open_tar, priority=24, split=split_tar))
