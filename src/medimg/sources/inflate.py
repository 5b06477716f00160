"""Inflating gzip, bzip2, xz and Zstandard data with bounded output: tar.py reads tarballs and single compressed files
through `Inflated`; NIfTI and MGH take their own .gz files with `gunzip` (a big NIfTI series the volume it shows
through `Inflated`); NRRD and MetaImage inflate voxels of a known size with `inflate_into`.

Every concatenated stream is read (pigz, pbzip2 and bgzip write several; Zstandard's skippable frames, which
pzstd writes, are passed over); bytes after the last one are ignored. Over `MAX_STREAMS` streams (skippable
frames counted) holding under 1 KB each on average are refused (`Refused`): millions of empty ones (20 bytes
each) took a minute to walk.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib

from .base import Budget

GZIP, BZIP2, XZ, ZSTD = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"
MAX_STREAMS = 1024  # compressed streams beyond this must hold 1 KB each on average
STEP = 16 * 1024  # compressed bytes fed at a time
OUT_STEP = 1 << 20  # bytes inflated at a time (bzip2, xz and Zstandard would give a whole read's worth at once)


def skippable(data: bytes, at: int = 0) -> bool:
    """Whether a Zstandard skippable frame (magic 0x184D2A50 to 0x184D2A5F: metadata, as pzstd writes before each
    frame) starts at `at`."""
    return data[at + 1:at + 4] == b"\x2a\x4d\x18" and data[at] & 0xF0 == 0x50


def _zstd():
    try:
        from compression import zstd  # Python 3.14
    except ImportError:
        from backports import zstd
    return zstd


# what damaged or cut-off compressed data raises
CORRUPT = (OSError, EOFError, lzma.LZMAError, zlib.error, _zstd().ZstdError)


class TooBig(Exception):
    """More bytes inflated than the budget allows (deliberately not an OSError: tarfile must not catch it)."""


class Refused(Exception):
    """Data built to make the reading slow (not an OSError either); its text says what was refused."""


class Inflated(io.RawIOBase):
    """The content of gzip, bzip2, xz or Zstandard data (every concatenated stream or frame), or the data itself,
    read forward; each byte read is taken from `budget`, and past it `TooBig` is raised. Data cut off inside a
    stream raises EOFError, or just ends with `cut_ok`."""

    def __init__(self, data: bytes, budget: Budget, cut_ok: bool = False):
        self.data, self.view, self.budget, self.cut_ok = data, memoryview(data), budget, cut_ok
        self.magic = next((m for m in (GZIP, BZIP2, XZ, ZSTD) if data.startswith(m)), b"")
        if skippable(data):
            self.magic = ZSTD
        self.at = self.out = self.streams = 0  # compressed bytes used, bytes inflated, streams begun
        self.dec, self.ended = None, False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.budget.left + 1 if size is None or size < 0 else min(size, self.budget.left + 1)
        out, got = io.BytesIO(), 0  # its getvalue() hands its buffer over: no second copy, as a join of pieces made
        while got < want:
            try:
                piece = self._piece(min(want - got, OUT_STEP))  # not all at once: held twice while copied
            except EOFError:  # cut off: what came before the cut is given first (the next read raises it)
                if not got:
                    raise
                break
            if not piece:
                break
            out.write(piece)
            got += len(piece)
        self.budget.left -= got
        if self.budget.left < 0:
            raise TooBig()
        return out.getvalue()

    def readinto(self, b) -> int:
        chunk = self.read(len(b))
        b[:len(chunk)] = chunk
        return len(chunk)

    def _piece(self, size: int) -> bytes:
        """Up to `size` bytes; empty only at the end."""
        if not self.magic:
            piece = self.data[self.at:self.at + size]
            self.at += len(piece)
            return piece
        while not self.ended:
            if self.dec is None or self.dec.eof:
                self._next_stream()
                continue
            piece = self._inflate(size)
            if piece:
                self.out += len(piece)
                return piece
        return b""

    def _next_stream(self) -> None:
        """Start the next compressed stream, or end when none follows."""
        if self.dec is not None:
            self.at -= len(self.dec.unused_data)
        while self.magic == ZSTD and skippable(self.data, self.at):  # passed over, each counted as a stream
            self.at += 8 + int.from_bytes(self.data[self.at + 4:self.at + 8], "little")
            self._count()
        if self.dec is not None and self.data[self.at:self.at + len(self.magic)] != self.magic:
            self.ended = True
            return
        self._count()
        self.dec = {GZIP: lambda: zlib.decompressobj(wbits=31), BZIP2: bz2.BZ2Decompressor,
                    XZ: lzma.LZMADecompressor, ZSTD: _zstd().ZstdDecompressor}[self.magic]()

    def _count(self) -> None:
        self.streams += 1
        if self.streams > MAX_STREAMS and self.streams * 1024 > self.out:  # millions of empty ones are a trap
            raise Refused(f"is made of over {MAX_STREAMS:,} compressed streams holding under 1 KB each")

    def _inflate(self, size: int) -> bytes:
        """Inflate up to `size` bytes of the current stream, feeding it compressed bytes when it needs them."""
        dec = self.dec
        if not getattr(dec, "needs_input", True):  # bz2 and xz keep what they were fed; zlib gives it back
            return dec.decompress(b"", size)
        chunk = self.view[self.at:self.at + STEP]
        if not chunk:
            if self.cut_ok:
                self.ended = True
                return b""
            raise EOFError("compressed data ends before the end of its stream")
        self.at += len(chunk)
        try:
            piece = dec.decompress(chunk, size)
        except CORRUPT[-1] as exc:  # zstd's: a frame whose window is over what libzstd allows by default (128 MB)
            if "too much memory" in str(exc):
                raise Refused("needs a Zstandard window over 128 MB to inflate (zstd --long=28 and up)") from None
            raise
        if not dec.eof:
            self.at -= len(getattr(dec, "unconsumed_tail", b""))
        return piece


def gunzip(data: bytes, limit: int) -> bytes:
    """The content of gzip data, stopping once more than `limit` bytes came out (so at most limit + 1 of them);
    a stream cut off gives what it holds. zlib.error when corrupt, `Refused` for the trap above."""
    return Inflated(data, Budget(limit + 1), cut_ok=True).read(limit + 1)


PIECE = FEED = 1 << 20  # bytes inflated, and compressed bytes fed, at a time by inflate_into


def inflate_into(data, make, start: int, size: int, limit: int = 0) -> tuple[memoryview, int]:
    """Bytes `start` to `start + size` of what a decompressor `make()` (zlib's or bz2's) inflates from `data`, in one
    buffer of that size (shorter when the stream ends sooner), and how many bytes the stream holds, counted on up to
    `limit` + 1. The rest is inflated a piece at a time and dropped. So a volume's voxels, whose size its header
    gives, are held once: zlib's own `decompress` joins its pieces at the end, two copies at once."""
    dec, out = make(), bytearray(size)
    view, src = memoryview(out), memoryview(data)
    got = at = kept = 0
    end = max(start + size, limit + 1)
    while not dec.eof and got < end:
        if got < start:
            want = start - got
        elif got < start + size:
            want = start + size - got
        else:
            want = end - got
        want = min(want, PIECE)
        if getattr(dec, "needs_input", True):  # bz2 keeps what it was fed; zlib gives back what it did not use
            chunk = src[at:at + FEED]
            if not chunk:
                break
            at += len(chunk)
            piece = dec.decompress(chunk, want)
            at -= len(getattr(dec, "unconsumed_tail", b""))
        else:
            piece = dec.decompress(b"", want)
        if start <= got < start + size:
            view[kept:kept + len(piece)] = piece
            kept += len(piece)
        got += len(piece)
    return view[:kept], got
