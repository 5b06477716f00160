"""Tests (s40_mut): behaviours of session 40's new code that no test pinned, found by mutating it (each test here
failed on a mutant that every other test let through): RTF pictures, the rebuilt zip directory, shared archive
entries, input_timeout, CSS escapes, verdicts, --help."""

from __future__ import annotations

import builders as b
from medimg.sources import Blob, Context, ImageItem, Limits


def items(data: bytes, name: str, **limits):
    return list(Context(Limits(**limits)).open_blob(Blob(name, data, name=name)))


def rows(got):
    return [(i.origin, "image" if isinstance(i, ImageItem) else "note" if i.skipped else "error",
             getattr(i, "error", "")) for i in got]


def rtf(*pictures: bytes) -> bytes:
    return b"{\\rtf1\\ansi Report\\par " + b"".join(pictures) + b"\\par}"


def test_an_rtf_without_pictures_says_so_and_one_with_a_picture_does_not():
    (note,) = items(rtf(), "plain.rtf")
    assert note.skipped and note.error == "RTF document: its text left out; no pictures found"
    png = b.image_bytes("PNG", (80, 60))
    got = items(rtf(b"{\\pict\\pngblip " + png.hex().encode() + b"}"), "one.rtf")
    assert rows(got) == [("one.rtf:picture-1.png", "image", ""), ("one.rtf", "note", "RTF document: its text left out")]


def test_an_empty_rtf_picture_is_one_note():
    got = items(rtf(b"{\\pict\\pngblip }"), "e.rtf")
    assert rows(got) == [("e.rtf:picture-1.png", "note", "empty picture"),
                         ("e.rtf", "note", "RTF document: its text left out")]


def test_an_rtf_picture_of_exactly_max_input_bytes_is_read():
    png = b.image_bytes("PNG", (80, 60))
    doc = rtf(b"{\\pict\\pngblip " + png.hex().encode() + b"}")
    assert rows(items(doc, "r.rtf", max_input_bytes=len(png)))[0][:2] == ("r.rtf:picture-1.png", "image")
    (err, _) = items(doc, "r.rtf", max_input_bytes=len(png) - 1)
    assert "max_input_bytes" in err.error


def test_css_hex_escapes_just_past_the_surrogates_are_their_characters():
    from medimg.sources.css import unescaped

    assert unescaped(r"\1 x") == "\x01x" and unescaped(r"\D7FF x") == "\ud7ffx"
    assert unescaped(r"\D800 x") == unescaped(r"\DFFF x") == "\ufffdx" and unescaped(r"\E000 x") == "\ue000x"
    assert unescaped(r"\10FFFF x") == "\U0010ffffx" and unescaped(r"\110000 x") == "\ufffdx"


def test_a_zip64_member_without_its_directory_is_found_by_its_zip64_sizes():
    """Python's zipfile (force_zip64) and big streamed zips write 0xFFFFFFFF in the local header and the sizes in
    a ZIP64 extra field: the rebuilt directory must take them from there."""
    import io
    import zipfile

    png = b.image_bytes("PNG", (80, 60))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("a.png", "b.png"):
            with zf.open(zipfile.ZipInfo(name), "w", force_zip64=True) as fh:
                fh.write(png)
    whole = buf.getvalue()
    cut = whole[:whole.index(b"PK\x01\x02")]  # the directory gone
    assert rows(items(cut, "a.zip"))[1:] == [("a.zip:a.png", "image", ""), ("a.zip:b.png", "image", "")]


def test_extract_with_no_input_timeout_writes_every_image(tmp_path):
    """input_timeout None or 0 is no limit (base.Limits): extract still waits for each unit and writes it."""
    from medimg.extract import extract, prepare

    (tmp_path / "a.png").write_bytes(b.image_bytes("PNG", (80, 60)))
    for n, limit in enumerate((None, 0)):
        out = tmp_path / f"out{n}"
        got = list(extract([str(tmp_path / "a.png")], out, Limits(input_timeout=limit), folder=prepare(out, False)))
        assert [(row["input"], image) for row, image in got] == [(str(tmp_path / "a.png"), True)]
        assert (out / got[0][0]["file"]).is_file()


def test_an_input_out_of_time_says_how_many_images_it_gave_first(tiny_classifier):
    """A page whose first picture arrives and whose second downloads a byte at a time: the error names the limit
    and the one image found before it, which is kept."""
    from medimg import classify
    from webserver import WebServer

    with WebServer() as web:
        web.add("/a.png", b.image_bytes("PNG", (120, 100)), "image/png")
        web.slow("/b.png", b"x" * 2000, interval=0.1)
        page = web.add("/p.html", '<html><body><img src="a.png"><img src="b.png"></body></html>', "text/html")
        recs = list(classify([page], classifier=tiny_classifier, batch_size=1,
                             limits=Limits(allow_private=True, total_timeout=300, read_timeout=300, input_timeout=1)))
    assert [r.ok for r in recs] == [True, False], [(r.locator, r.error) for r in recs]
    assert recs[1].error.endswith("input_timeout of 1 s: stopped there (1 image found before it kept)"), recs[1].error


def test_a_threshold_of_exactly_one_half_loads(tmp_path):
    """labels.json's threshold may be 0.5 to 1 inclusive (0.5: no uncertain band)."""
    import json

    import tinymodel
    from medimg.model.classifier import Classifier

    folder = tinymodel.build(tmp_path / "model")
    path = folder / "labels.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "threshold": 0.5}))
    assert Classifier.load(folder).threshold == 0.5


def test_shared_entries_are_taken_to_the_last_one_and_the_refusal_counts_them():
    from medimg.sources.base import TREE_ENTRIES, Budget

    budget, limits = Budget(1 << 30), Limits(zip_max_entries=2)
    assert budget.entries_refused(2 * TREE_ENTRIES, limits) is None and budget.entries == 0
    assert budget.entries_refused(1, limits).startswith(f"1 entry, over the 0 left of the {2 * TREE_ENTRIES}")
    assert budget.entries_refused(2, limits).startswith("2 entries, over the 0 left")


def test_raw_bytes_after_bin_are_passed_over_even_when_they_look_like_rtf():
    """`\\bin N`: the next N bytes are the picture, whatever they hold (a brace, another `\\pict`)."""
    png = b.image_bytes("PNG", (80, 60)) + b"}{\\pict\\pngblip 00}"  # bytes after PNG's end are ignored
    got = items(rtf(b"{\\pict\\pngblip\\bin" + str(len(png)).encode() + b" " + png + b"}"), "r.rtf")
    assert rows(got) == [("r.rtf:picture-1.png", "image", ""), ("r.rtf", "note", "RTF document: its text left out")]
