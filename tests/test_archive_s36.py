"""A zip's members find their siblings (a detached header's data file) from one read of the zip's directory, and
lookups made from several threads at once each get their own member's bytes (bzip2 members are read here, not
by zipfile, so the one shared file position must be taken in turn)."""
import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from medimg.sources import archive
from medimg.sources.base import Blob, Budget, Context, Limits


def _pairs_zip(n: int, side: int = 16) -> tuple[bytes, dict[str, bytes]]:
    raws, buf = {}, io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as z:
        for k in range(n):
            raw = np.random.default_rng(k).integers(0, 255, (side, side), dtype=np.uint8).tobytes()
            raws[f"v{k}.raw"] = raw
            z.writestr(f"vol/v{k}.mhd", f"ObjectType = Image\nNDims = 2\nDimSize = {side} {side}\n"
                                        f"ElementType = MET_UCHAR\nElementDataFile = v{k}.raw\n")
            z.writestr(f"vol/v{k}.raw", raw)
        z.writestr("other/v0.raw", b"not this one")
    return buf.getvalue(), raws


def test_sibling_lookups_read_the_directory_once(monkeypatch):
    data, raws = _pairs_zip(6)
    made = []

    class Counted(zipfile.ZipFile):
        def __init__(self, *a, **k):
            made.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(archive.zipfile, "ZipFile", Counted)
    items = list(Context(Limits()).open_blob(Blob("p.zip", data, name="p.zip")))
    images = [i for i in items if getattr(i, "image", None) is not None]
    assert len(images) == 6
    for item in images:  # each header read its own data file
        k = item.origin.rsplit("/v", 1)[1].split(".")[0]
        assert np.array_equal(np.asarray(item.image.convert("L")),
                              np.frombuffer(raws[f"v{k}.raw"], np.uint8).reshape(16, 16))
    assert len(made) <= 2  # the walk's and the lookups' (one per lookup before: 7)


def test_sibling_lookups_from_many_threads_get_their_own_bytes(monkeypatch):
    def slow_bytes_at(zf, offset, size):  # another thread runs between the seek and the read, as it may
        zf.fp.seek(offset)
        time.sleep(0.001)
        return zf.fp.read(max(0, size))

    data, raws = _pairs_zip(24, side=64)
    blob = Blob("p.zip", data, name="p.zip")
    members = [m for m in archive._walk(blob, Context(Limits()), Budget(Limits().zip_max_bytes))
               if isinstance(m, Blob) and m.name.endswith(".mhd")]
    assert len(members) == 24

    def look(m: Blob) -> bool:
        name = m.name.replace(".mhd", ".raw")
        return all(m.sibling(name) == raws[name] for _ in range(5))

    monkeypatch.setattr(archive, "_bytes_at", slow_bytes_at)
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(look, members))
    assert members[0].sibling("v0.raw") != b"not this one"  # the member's own folder, not another's


def test_a_data_file_in_a_zip_is_a_note_naming_its_header_and_charged_once():
    raw = np.random.default_rng(1).integers(0, 255, (1500, 1500), dtype=np.uint8).tobytes()  # 2.25 MB
    png = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(png, "PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("s/v.mhd", "ObjectType = Image\nNDims = 2\nDimSize = 1500 1500\nElementType = MET_UCHAR\n"
                              "ElementDataFile = v.raw\n")
        z.writestr("s/v.raw", raw)
        z.writestr("s/z.png", png.getvalue())  # after the pair: still read
        z.writestr("t/v.raw", raw[:100])  # no header beside it: the usual note
    items = list(Context(Limits(zip_max_bytes=3_000_000)).open_blob(Blob("p.zip", buf.getvalue(), name="p.zip")))
    by = {i.origin: i for i in items}
    assert by["p.zip:s/v.mhd"].image.size == (1500, 1500)
    assert by["p.zip:s/v.raw"].skipped and by["p.zip:s/v.raw"].error == "skipped: the data file of v.mhd, read with it"
    assert by["p.zip:s/z.png"].image.size == (64, 64)
    assert by["p.zip:t/v.raw"].skipped and "data file" not in by["p.zip:t/v.raw"].error
    assert len(items) == 4
