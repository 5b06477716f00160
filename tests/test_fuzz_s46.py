"""Seeded fuzzing of session 46's parsers (s46_fuzz): an EPUB chapter's picture named with XML's entities or after
a `data-src` is placed by its chapter; a MetaImage's DimSize of inf says so; a volume header's infinite or huge
geometry puts no NumPy warning on the console."""

from __future__ import annotations

import html
import io
import random
import warnings
import zipfile

from PIL import Image

from medimg.sources import Blob, ImageItem, ItemError, Limits, open_input


def _png(n: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60 + n, 40), (n * 37 % 256, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def _epub(chapter: str, pictures: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", "<container/>")
        z.writestr("OEBPS/ch1.xhtml", chapter)
        for name, data in pictures.items():
            z.writestr(f"OEBPS/{name}", data)
    return buf.getvalue()


def test_epub_pictures_named_with_entities_or_after_a_data_src_are_placed_by_their_chapter():
    """XHTML writes `&` and quotes in an attribute as entities (`R&amp;D.png` is the file R&D.png): the escaped
    name was looked up, and the picture left without its chapter. `\\bsrc` also matched inside `data-src`, so an
    `<img data-src="lazy.png" src="b.png">` placed lazy.png there and not b.png. Seeded random names."""
    rnd = random.Random(46)
    for trial in range(10):
        names = ["".join(rnd.choice("ab&'\"<> 9") for _ in range(rnd.randint(1, 6))).strip() + ".png" for _ in range(3)]
        names = list(dict.fromkeys(names))
        tags = "".join(f'<img data-src="lazy.png" src="{html.escape(n, quote=True)}"/>' for n in names)
        chapter = f'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>{tags}</body></html>'
        pictures = {n: _png(i) for i, n in enumerate(names)} | {"lazy.png": _png(9)}
        got = {i.origin.split(":OEBPS/", 1)[1]: i.locator for i in open_input(Blob("b.epub", _epub(chapter, pictures)),
                                                                              Limits()) if isinstance(i, ImageItem)}
        assert got == {n: "ch1.xhtml" for n in names} | {"lazy.png": ""}, (trial, names)


def _mha(**fields: str) -> bytes:
    head = {"ObjectType": "Image", "NDims": "2", "DimSize": "4 4", "ElementType": "MET_UCHAR", **fields,
            "ElementDataFile": "LOCAL"}
    return "".join(f"{k} = {v}\n" for k, v in head.items()).encode() + bytes(range(16))


def test_a_metaimage_dimsize_of_inf_or_nan_is_named_as_the_header_problem():
    """int(inf) raised OverflowError, reported as 'its data is damaged or cut short'; NaN's was Python's own words."""
    for size in ("inf", "1e400", "nan", "-inf"):
        got = [i.error for i in open_input(Blob("x.mha", _mha(DimSize=f"{size} 4")), Limits())]
        assert len(got) == 1 and got[0].startswith("not a readable MetaImage file: DimSize "), (size, got)
        assert "is not a size from 1 to 2,147,483,647" in got[0], (size, got)


def test_infinite_or_huge_volume_geometry_puts_no_numpy_warning_on_the_console():
    """NumPy warned ('invalid value encountered in matmul', 'overflow encountered in dot') on stderr, between the
    rows of the table, for a MetaImage or NRRD header with inf or 1e308 in its spacing, matrix or origin; the
    image is still read, placed as stored."""
    rnd = random.Random(7)
    values = ["inf", "-inf", "nan", "1e308", "-1e308", "0", "1"]
    cases = [("x.mha", _mha(ElementSpacing=f"{rnd.choice(values)} {rnd.choice(values)}",
                            TransformMatrix=" ".join(rnd.choice(values) for _ in range(4)),
                            Offset=f"{rnd.choice(values)} {rnd.choice(values)}")) for _ in range(12)]
    cases += [("x.mha", _mha(ElementSpacing="1e308 1e308", TransformMatrix="1e308 0 0 1e308")),
              ("x.mha", _mha(Offset="inf -inf"))]
    for _ in range(12):
        dirs = " ".join("(" + ",".join(rnd.choice(values) for _ in range(3)) + ")" for _ in range(3))
        cases.append(("x.nrrd", b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n"
                                b"space: left-posterior-superior\nspace directions: " + dirs.encode() + b"\n\n" +
                      bytes(range(64))))
    cases.append(("x.nrrd", b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\nspace: "
                            b"left-posterior-superior\nspace directions: (1e308,1e308,0) (0,1e308,1e308) (1e308,0,1e308)"
                            b"\n\n" + bytes(range(64))))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, data in cases:
            items = list(open_input(Blob(name, data), Limits()))
            assert items and all(isinstance(i, (ImageItem, ItemError)) for i in items)
            assert not any(isinstance(i, ItemError) and "internal error" in i.error for i in items)
    # nibabel's own are kept off the console by nifti.py's filter, which "always" overrides here
    assert [(str(w.message), w.filename, w.lineno) for w in caught
            if issubclass(w.category, RuntimeWarning) and "nibabel" not in w.filename] == []
