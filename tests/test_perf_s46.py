"""Session 46's changes on common paths (s46_perf): work that grows with a whole input where its first bytes decide."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from medimg.sources import Blob, ImageItem, open_input
from medimg.sources import tar as tar_source


class _Counted(bytes):
    """Bytes that note the length of each whole-object count() (slices are plain bytes)."""

    counted: list[int]

    def count(self, *args):
        self.counted.append(len(self))
        return super().count(*args)


def _counted(data: bytes) -> _Counted:
    out = _Counted(data)
    out.counted = []
    return out


def test_a_compressed_tar_is_not_scanned_whole_for_zeros():
    # a gzipped tar saved as .tar, its length a multiple of 512: its first byte (0x1f) already says it is not a
    # tar of no files
    data = _counted(b"\x1f\x8b" + bytes(range(256)) * 4094 + b"\x00" * 510)
    assert len(data) % 512 == 0
    assert not tar_source._nothing(data, "scans.tar")
    assert data.counted == []  # before: count(0) over every byte


def test_a_tar_of_no_files_is_still_one_and_a_late_byte_is_seen():
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    assert tar_source._nothing(_counted(empty.getvalue()), "none.tar")
    assert not tar_source._nothing(bytes(10240 - 1) + b"\x01", "none.tar")  # zeros at first, not all through
    assert tar_source._nothing(gzip.decompress(gzip.compress(bytes(1024))), "none.tgz", inflated=True)


def test_a_padded_tar_gz_named_tar_still_gives_its_members():
    png = io.BytesIO()
    from PIL import Image
    Image.new("RGB", (64, 48), (200, 10, 10)).save(png, "PNG")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as t:
        info = tarfile.TarInfo("a/red.png")
        info.size = len(png.getvalue())
        t.addfile(info, io.BytesIO(png.getvalue()))
    data = raw.getvalue() + bytes(-len(raw.getvalue()) % 512)  # zero padding, as a tape's blocks leave it
    got = [i for i in open_input(Blob("scans.tar", data, name="scans.tar")) if isinstance(i, ImageItem)]
    assert [(i.origin, i.width, i.height) for i in got] == [("scans.tar:a/red.png", 64, 48)]


@pytest.mark.parametrize("append", [False, True])
def test_a_record_file_is_asked_what_it_is_once_not_for_every_row(tmp_path, monkeypatch, append):
    """Each row's start was read with three system calls and an encoding's look-up (100,000 JSONL rows took 1.3
    times as long to write); what the file is (regular, opened to append) does not change: one call a row now."""
    import fcntl
    import json
    import os
    from collections import Counter

    from medimg.output import RecordWriter, open_output
    from medimg.pipeline import Record

    path = tmp_path / "out.jsonl"
    path.write_text('{"input": "before.png"}\n' if append else "")
    calls: Counter = Counter()
    for module, name in ((os, "fstat"), (fcntl, "fcntl"), (os, "lseek")):
        monkeypatch.setattr(module, name, lambda *a, _real=getattr(module, name), _name=name:
                            calls.update([_name]) or _real(*a))
    with open_output(path, append) as f:
        writer = RecordWriter(f, "jsonl", header=not append)
        assert writer.whole == (path.stat().st_size if append else 0)
        calls.clear()
        for i in range(50):
            writer.write(Record(input=f"scan{i}.png", locator="", label="ct"))
        writer.close()
        assert writer.whole == path.stat().st_size  # still where the last whole row ends
    assert calls["fcntl"] == 0
    assert (calls["fstat"], calls["lseek"]) == ((50, 50) if append else (0, 100))  # a row's start, its end's check
    rows = [json.loads(line)["input"] for line in path.read_text().splitlines()]
    assert rows == ["before.png"] * append + [f"scan{i}.png" for i in range(50)]


def test_a_data_uri_s_base64_is_searched_for_a_stray_character_only_when_it_does_not_decode(monkeypatch):
    """Every data: URI's base64 was searched with a regex for a character outside the alphabet before decoding
    (an 8 MB image: about 30 ms, a fifth of the decoding); strict decoding finds one itself, then it is named."""
    import base64
    import os
    import re

    import pytest

    from medimg.sources import web_fetch

    searched = []
    real = re.search
    monkeypatch.setattr(re, "search", lambda pattern, *a, **k: searched.append(pattern) or real(pattern, *a, **k))
    raw = os.urandom(300_000)
    text = base64.b64encode(raw).decode()
    for uri in (text, text.rstrip("="), "\n".join(text[i:i + 76] for i in range(0, len(text), 76))):
        assert web_fetch.decode_data_uri("data:image/png;base64," + uri, 1 << 20) == (raw, "image/png")
    assert not [p for p in searched if "A-Za-z0-9" in p]
    for bad, said in (("QU!D", "'!' at character 3"), ("QUéD", "'é' at character 3"), ("QQ=", "'=' at character 3"),
                      ("QUJDR", "cut off")):
        with pytest.raises(ValueError, match=said):
            web_fetch.decode_data_uri("data:text/plain;base64," + bad, 100)
