"""`medimg extract`: inputs read by worker threads, PNGs named and rows written in input order, and --resume."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pymupdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from builders import zip_bytes
from medimg.cli import app
from webserver import WebServer
from words import flat

runner = CliRunner()


def png(color, size=(100, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def inputs(tmp_path) -> list[str]:
    """A PNG, a PDF of three images, a zip (two PNGs and a text file), a folder of three, a broken PNG."""
    src = tmp_path / "in"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "red.png").write_bytes(png((255, 0, 0)))
    doc = pymupdf.open()
    for c in [(0, 255, 0), (0, 0, 255), (9, 99, 9)]:
        doc.new_page().insert_image(pymupdf.Rect(72, 72, 312, 252), stream=png(c, (120, 90)))
    doc.save(src / "doc.pdf")
    (src / "set.zip").write_bytes(zip_bytes({"scans/a.png": png((250, 5, 5)), "notes.txt": b"hi",
                                             "scans/b.png": png((5, 250, 5), (64, 64))}))
    for name, c in [("dir/x.png", (1, 2, 200)), ("dir/y.png", (3, 4, 150)), ("dir/sub/z.png", (5, 6, 100))]:
        (src / name).write_bytes(png(c))
    (src / "broken.png").write_bytes(png((1, 2, 3))[:30])
    return [str(src / n) for n in ("red.png", "doc.pdf", "set.zip", "dir", "broken.png")]


def run(args, out) -> object:
    res = runner.invoke(app, ["extract", *args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return res


def contents(out: Path) -> tuple[list[str], dict[str, bytes]]:
    """The manifest's lines and every file's bytes (but the manifest's)."""
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return lines, {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.jsonl"}


def test_order_and_names_are_the_same_with_several_workers(tmp_path):
    ins = inputs(tmp_path)
    run([*ins, "--workers", "1"], tmp_path / "one")
    run([*ins, "--workers", "4"], tmp_path / "four")
    assert contents(tmp_path / "one") == contents(tmp_path / "four")
    rows = [json.loads(x) for x in (tmp_path / "four" / "manifest.jsonl").read_text().splitlines()]
    got = [(os.path.relpath(r["input"], tmp_path / "in"), r["locator"], r.get("file")) for r in rows]
    assert got == [("red.png", "", "000001.png"), ("doc.pdf", "page 1, image 1", "000002.png"),
                   ("doc.pdf", "page 2, image 1", "000003.png"), ("doc.pdf", "page 3, image 1", "000004.png"),
                   ("set.zip:scans/a.png", "", "000005.png"), ("set.zip:notes.txt", "", None),
                   ("set.zip:scans/b.png", "", "000006.png"), ("dir/x.png", "", "000007.png"),
                   ("dir/y.png", "", "000008.png"), ("dir/sub/z.png", "", "000009.png"), ("broken.png", "", None)]
    assert [r["source"] for r in rows] == [ins[0]] + [ins[1]] * 3 + [ins[2]] * 3 + [ins[3]] * 3 + [ins[4]]
    for r in rows:
        if "file" in r:
            with Image.open(tmp_path / "four" / r["file"]) as im:
                assert (im.width, im.height) == (r["width"], r["height"])
    assert rows[5].get("skipped") and "error" in rows[-1] and not rows[-1].get("skipped")
    assert not [p for p in (tmp_path / "four").iterdir() if p.name.startswith(".")]  # no temporary PNG left
    assert rows[1]["metadata"]["pages"] == [1] and len(rows[1]["metadata"]["bbox"]) == 4  # where it was drawn
    assert "metadata" not in rows[5] and "metadata" not in rows[-1]


def test_a_name_that_cannot_be_resolved_is_an_error_row_not_a_crash(tmp_path):
    """A symlink loop in a folder (Path.resolve raises on Python 3.11) or a NUL in a listed name made the
    check for extract's own PNGs raise: once a traceback with nothing kept (session 26's first try at passing
    the caller's exceptions on), an error row each before and again now."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(png((200, 0, 0)))
    (tmp_path / "in" / "z.png").write_bytes(png((0, 0, 200)))
    (tmp_path / "in" / "self").symlink_to("self")
    listed = tmp_path / "list.txt"
    listed.write_text(f"{tmp_path / 'in' / 'a.png'}\nbad\0name.png\n{tmp_path / 'in' / 'z.png'}\n")
    for args, name in (([str(tmp_path / "in")], "loop"), (["--inputs-from", str(listed)], "nul")):
        res = runner.invoke(app, ["extract", *args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in (tmp_path / name / "manifest.jsonl").read_text().splitlines()]
        assert [r.get("file") for r in rows if "error" not in r] == ["000001.png", "000002.png"], rows
        assert len([r for r in rows if "error" in r]) == 1, rows


def test_slow_urls_are_read_at_once(tmp_path):
    """Eight URLs answering after 1 s each take about 2 s with 4 workers (one at a time took 8), in order."""
    with WebServer() as srv:
        urls = [srv.add(f"/{i}.png", png((i * 30, 0, 0), (40 + i, 30)), "image/png", delay=1.0) for i in range(8)]
        start = time.monotonic()
        run([*urls, "--allow-private", "--workers", "4"], tmp_path / "o")
        took = time.monotonic() - start
        assert srv.peak_waiting >= 3
    rows = [json.loads(x) for x in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["input"], r["file"], r["width"]) for r in rows] == [
        (u, f"{i + 1:06d}.png", 40 + i) for i, u in enumerate(urls)]
    assert took < 6, took


def test_resume_after_a_stop_anywhere_gives_the_uninterrupted_output(tmp_path):
    """Cut the manifest after each of its rows (with half of the next line, the PNGs of the rows cut left
    behind and a temporary PNG): --resume ends with exactly the files and manifest of one whole run, and
    the inputs before the one cut are not opened again."""
    docx = tmp_path / "report.docx"  # a note on the document, then its pictures: one input, then its members
    docx.write_bytes(zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>",
                                "word/media/image1.png": png((1, 2, 3)), "word/media/image2.png": png((3, 2, 1))}))
    with WebServer() as srv:
        ins = [srv.add("/first.png", png((7, 7, 7)), "image/png"), *inputs(tmp_path), str(docx)]
        whole = tmp_path / "whole"
        run([*ins, "--allow-private", "--workers", "3"], whole)
        expected = contents(whole)
        lines = expected[0]
        assert len(expected[1]) == 12 and "office document" in lines[-3]
        for keep in range(len(lines)):
            out = tmp_path / f"cut{keep}"
            shutil.copytree(whole, out)
            with open(out / "manifest.jsonl", "w") as f:
                f.write("".join(line + "\n" for line in lines[:keep]) + lines[keep][:25])
            (out / ".part-0123abcd.png").write_bytes(png((0, 0, 0)))
            (out / "000013.png").write_bytes(png((0, 0, 0)))  # renamed, its row never written
            hits = srv.hits["/first.png"]
            res = run([*ins, "--allow-private", "--workers", "2", "--resume"], out)
            assert contents(out) == expected, (keep, res.output)
            assert srv.hits["/first.png"] == hits + (keep <= 1)  # passed over once a row after its own is in


def test_resume_does_not_open_again_the_files_of_a_folder_already_written(tmp_path, monkeypatch):
    from medimg.sources import files

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(png((i * 50, 9, 9)))
    run([str(folder)], tmp_path / "whole")
    out = tmp_path / "o"
    shutil.copytree(tmp_path / "whole", out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:3]))  # stopped after 2.png (which may be incomplete)
    opened = []
    real = files._open_path
    monkeypatch.setattr(files, "_open_path", lambda path, *a: opened.append(path.name) or real(path, *a))
    run([str(folder), "--resume"], out)
    assert opened == ["2.png", "3.png"]
    assert contents(out) == contents(tmp_path / "whole")
    (out / "manifest.jsonl").write_text("".join(lines[:3]))
    opened.clear()
    run([str(folder) + "/", "--resume"], out)  # the same folder, spelled otherwise
    assert opened == ["2.png", "3.png"]
    assert contents(out)[1] == contents(tmp_path / "whole")[1] and len(contents(out)[0]) == 4
    # stopped again, and resumed with the first spelling: rows of both spellings are one input, not done whole
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:3]) + lines[3][:20])
    run([str(folder), "--resume"], out)
    assert contents(out)[1] == contents(tmp_path / "whole")[1] and len(contents(out)[0]) == 4


def test_resume_starts_a_missing_or_empty_folder_and_refuses_what_extract_did_not_write(tmp_path):
    ins = inputs(tmp_path)[:2]
    run([*ins, "--resume"], tmp_path / "new")
    (tmp_path / "empty").mkdir()
    run([*ins, "--resume"], tmp_path / "empty")
    assert contents(tmp_path / "new") == contents(tmp_path / "empty")
    assert (tmp_path / "new" / "000001.png").exists()
    again = run([*ins, "--resume"], tmp_path / "new")  # done already: the last input done again, the same
    assert contents(tmp_path / "new") == contents(tmp_path / "empty") and "1 input passed over" in flat(again.output)

    foreign = tmp_path / "foreign"  # classify's records, named manifest.jsonl
    foreign.mkdir()
    records = json.dumps({"input": "a.png", "locator": "", "label": "xray", "error": None}) + "\n"
    (foreign / "manifest.jsonl").write_text(records * 2 + records[:20])
    (foreign / "000001.png").write_bytes(b"not ours")
    (foreign / ".part-1.png").write_bytes(b"not ours either")
    other = tmp_path / "other"  # no manifest at all
    other.mkdir()
    (other / "000001.png").write_bytes(b"a photo")
    for folder in (foreign, other):
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        res = runner.invoke(app, ["extract", *ins, "--out", str(folder), "--resume"])
        assert res.exit_code == 2 and "not resuming" in flat(res.output), res.output
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing changed
    res = runner.invoke(app, ["extract", *ins, "--out", str(tmp_path / "new")])
    assert res.exit_code == 2 and "not an empty folder" in flat(res.output)


def test_a_stream_closed_part_way_leaves_whole_rows_and_no_temporary_files(tmp_path):
    """Breaking off after the first rows (as Ctrl-C does) stops the workers, removes their temporary PNGs and
    leaves the manifest ending with the last row given out, every PNG in it."""
    from medimg.extract import extract, prepare

    out = tmp_path / "o"
    stream = extract(inputs(tmp_path), out, workers=4, folder=prepare(out, False))
    given = [next(stream) for _ in range(3)]  # red.png and two of the PDF's three images
    assert [p for p in out.iterdir() if p.name.startswith(".part-")]  # the third, at least, not yet renamed
    stream.close()
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert rows == [row for row, _ in given]
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "000002.png", "000003.png", "manifest.jsonl"]


def test_sigterm_leaves_whole_rows_and_resume_completes_the_run(tmp_path):
    """A real `medimg extract` stopped by SIGTERM mid-run (exit 143): whole lines, no temporary PNG, every PNG
    named in the manifest; --resume then ends with the output of one whole run."""
    big = png((120, 60, 30), (900, 700))
    n = 24
    with WebServer() as srv:
        urls = [srv.add(f"/{i}.png", big, "image/png", delay=0.25) for i in range(n)]
        out = tmp_path / "o"
        cmd = [sys.executable, "-m", "medimg.cli", "extract", *urls, "--allow-private", "--workers", "3",
               "--out", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        manifest = out / "manifest.jsonl"
        while time.monotonic() < deadline and (not manifest.exists() or manifest.read_bytes().count(b"\n") < 3):
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        said = " ".join(proc.stderr.read().decode().split())
        assert rc == 143, said
        assert f"→ {out}; `medimg extract --resume` with the same --out carries it on" in said
        text = manifest.read_text()
        assert text.endswith("\n")
        rows = [json.loads(x) for x in text.splitlines()]
        assert 3 <= len(rows) < n
        assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(r["file"] for r in rows)])
        res = subprocess.run([*cmd, "--resume"], capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr.decode()
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert [(r["input"], r["file"]) for r in rows] == [(u, f"{i + 1:06d}.png") for i, u in enumerate(urls)]
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", *(r["file"] for r in rows)])
    assert all(os.path.getsize(out / r["file"]) > 1000 for r in rows)


def test_a_url_is_never_taken_for_a_file_of_the_output_folder(tmp_path, monkeypatch):
    """With --out . a URL's scheme looked like a path inside the output folder: it was passed over, no row."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["extract", "https://example.org/a.png", "--offline", "--out", "."])
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert res.exit_code == 1 and len(rows) == 1 and "offline" in rows[0]["error"]


def test_no_threads_are_left_when_the_manifest_cannot_be_opened(tmp_path):
    import threading

    from medimg.extract import MANIFEST, extract

    (tmp_path / MANIFEST).mkdir()  # opening it for writing fails
    before = set(threading.enumerate())  # an earlier test's threads may end meanwhile: only new ones count
    for _ in range(3):
        with pytest.raises(OSError):
            list(extract([str(tmp_path)], tmp_path, workers=4))
    assert not [th for th in threading.enumerate() if th not in before], threading.enumerate()


def test_manifest_names_an_uncompressed_pdf_image_in_plain_words(tmp_path):
    """An image stored without compression in a PDF is "PDF/uncompressed" (was "PDF/RAW", no format anyone knows),
    as a Flate one is "PDF/FLATE"."""
    from builders import pdf_stream, raw_pdf

    gray = bytes(range(256)) * 64  # 128 × 128
    image = "/Type /XObject /Subtype /Image /Width 128 /Height 128 /ColorSpace /DeviceGray /BitsPerComponent 8"
    hexed = zlib.compress(bytes(range(255, -1, -1)) * 64).hex().encode() + b">"  # Flate inside an ASCII wrapper
    (tmp_path / "raw.pdf").write_bytes(raw_pdf(
        b"q 100 0 0 100 0 0 cm /A Do Q q 100 0 0 100 200 0 cm /B Do Q q 100 0 0 100 400 0 cm /C Do Q",
        resources="<< /XObject << /A 5 0 R /B 6 0 R /C 7 0 R >> >>",
        extra=[pdf_stream(image, gray), pdf_stream(image, gray[::-1], compress=True),
               pdf_stream(image + " /Filter [/ASCIIHexDecode /FlateDecode]", hexed)]))
    run([str(tmp_path / "raw.pdf")], tmp_path / "out")
    rows = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["locator"], r["format"]) for r in rows] == [("page 1, image 1", "PDF/uncompressed"),
                                                           ("page 1, image 2", "PDF/FLATE"),
                                                           ("page 1, image 3", "PDF/FLATE")]


def test_a_png_that_could_not_be_written_keeps_its_number_when_the_run_is_resumed(tmp_path, monkeypatch):
    """An image whose PNG could not be written took a number (its row says so); a resumed run goes on after
    it, as an uninterrupted run does, instead of giving that number to the next image."""
    src = tmp_path / "in"
    src.mkdir()
    for name, colour in (("a.png", (255, 0, 0)), ("b.png", (0, 255, 0)), ("c.png", (0, 0, 255))):
        (src / name).write_bytes(png(colour))
    (src / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")  # an error row: no number
    save = Image.Image.save

    def failing(self, fp, *args, **kwargs):  # b.png's PNG cannot be written (not a full disk)
        if self.convert("RGB").getpixel((0, 0)) == (0, 255, 0):
            raise ValueError("cannot write this one")
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing)
    names = [str(src / n) for n in ("a.png", "b.png", "d.png", "c.png")]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert runner.invoke(app, ["extract", *names, "--out", str(whole), "--workers", "1"]).exit_code == 0
    assert runner.invoke(app, ["extract", *names[:3], "--out", str(part), "--workers", "1"]).exit_code == 0
    res = runner.invoke(app, ["extract", *names, "--out", str(part), "--workers", "1", "--resume"])
    assert res.exit_code == 0, res.output

    def rows(folder):
        return [{k: v for k, v in json.loads(line).items()} for line in (folder / "manifest.jsonl").read_text().splitlines()]

    assert [r.get("file") for r in rows(whole)] == [r.get("file") for r in rows(part)] == ["000001.png", None, None, "000003.png"]
    assert sorted(p.name for p in part.glob("*.png")) == ["000001.png", "000003.png"]


@pytest.mark.parametrize("name", ["in", "scans:2026"])
def test_the_output_folder_inside_a_folder_being_read_is_not_read_as_an_input(tmp_path, name):
    """Extract a folder into a folder inside it: its own PNGs and manifest are no inputs, in the first run and
    in a resumed one (which lists the folder again, the PNGs there by then). A ':' in the folder's name (cut
    there, as a zip member's name is) once made the manifest an input and the resumed run copy its own PNGs."""
    src = tmp_path / name
    src.mkdir()
    (src / "a.png").write_bytes(png((255, 0, 0)))
    (src / "b.png").write_bytes(png((0, 0, 255)))
    out = src / "out"
    for extra in ([], ["--resume"]):
        res = runner.invoke(app, ["extract", str(src), "--out", str(out), "--workers", "1", *extra])
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        assert [os.path.basename(r["input"]) for r in rows] == ["a.png", "b.png"], rows
        assert sorted(p.name for p in out.iterdir()) == ["000001.png", "000002.png", "manifest.jsonl"]


def test_resume_in_a_folder_passes_over_a_file_that_an_earlier_input_named_alone(tmp_path):
    """A folder given after one of its files alone gives that file's rows once (where it was given alone); a run
    stopped in the folder and resumed passes over it and the folder's files already written, and nothing else."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(png((i * 50, 9, 9)))
    ins = [str(folder / "2.png"), str(folder), "--workers", "1"]
    run(ins, tmp_path / "whole")
    expected = contents(tmp_path / "whole")
    assert len(expected[0]) == 4 and [json.loads(r)["input"] for r in expected[0]].count(str(folder / "2.png")) == 1
    for keep in range(1, 4):
        out = tmp_path / f"cut{keep}"
        shutil.copytree(tmp_path / "whole", out)
        (out / "manifest.jsonl").write_text("".join(line + "\n" for line in expected[0][:keep]))
        run([*ins, "--resume"], out)
        assert contents(out) == expected, keep


def test_a_folder_beside_the_output_whose_name_begins_like_it_is_read(tmp_path):
    """Only the output folder's own files are passed over: scans-2/ beside the output folder scans/ is read."""
    (tmp_path / "scans-2").mkdir()
    (tmp_path / "scans-2" / "a.png").write_bytes(png((200, 10, 10)))
    out = tmp_path / "scans"
    run([str(tmp_path / "scans-2")], out)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(r["input"], r.get("file")) for r in rows] == [(str(tmp_path / "scans-2" / "a.png"), "000001.png")]


def test_resume_leaves_no_temporary_png_of_a_file_whose_row_was_already_in(tmp_path):
    """A file whose name is followed by one that extends it (a.png, then a.png:b.png) is read again on --resume,
    as a container's note would be; its row is not written twice and its PNG made again is removed."""
    src = tmp_path / "in"
    src.mkdir()
    for name, colour in (("a.png", (9, 9, 9)), ("a.png:b.png", (99, 9, 9)), ("z.png", (9, 99, 9))):
        (src / name).write_bytes(png(colour))
    whole = tmp_path / "whole"
    run([str(src)], whole)
    expected = contents(whole)
    assert len(expected[0]) == 3 and sorted(expected[1]) == ["000001.png", "000002.png", "000003.png"]
    out = tmp_path / "resumed"
    shutil.copytree(whole, out)
    run([str(src), "--resume"], out)  # the last input (the folder) is read again; a.png is not "done"
    assert contents(out) == expected, sorted(p.name for p in out.iterdir())


def test_resume_refuses_a_manifest_whose_rows_name_no_source_and_changes_nothing(tmp_path):
    """Rows with an input, a locator and an error but no `source` (classify's error rows) are not extract's: --resume
    says so (exit 2) instead of failing with a traceback, and the folder is left as it was."""
    (tmp_path / "a.png").write_bytes(png((9, 9, 9)))
    out = tmp_path / "out"
    out.mkdir()
    rows = json.dumps({"input": "b.png", "locator": "", "error": "could not read file"}) + "\n"
    (out / "manifest.jsonl").write_text(rows * 3)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = runner.invoke(app, ["extract", str(tmp_path / "a.png"), "--out", str(out), "--resume"])
    assert res.exit_code == 2 and "not a medimg extract row" in flat(res.output), res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_float_32_bit_and_big_endian_greyscale_are_written_with_their_values_not_clipped(tmp_path):
    """A float TIFF (0–1) became a black RGB PNG, a big-endian 16-bit one an RGB PNG clipped at 255, and 32-bit
    integers outside 0–65535 were clipped: 16-bit values are kept as 16-bit PNG, and floats and wide integers are
    the model's 8-bit grey (scaled by percentiles, as classify sees them)."""
    import numpy as np
    import tifffile

    from medimg.model.preprocess import to_rgb

    ramp = (np.arange(60 * 80).reshape(60, 80) * 13 % 60000).astype(np.uint16)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(ramp.astype(np.float32) / 65535).save(src / "a_float.tif")
    tifffile.imwrite(src / "b_big16.tif", ramp.astype(">u2"), byteorder=">")
    Image.fromarray(ramp.astype(np.int32) - 30000).save(src / "c_signed.tif")
    Image.fromarray(ramp.astype(np.int32)).save(src / "d_int.tif")
    out = tmp_path / "out"
    run([str(src)], out)
    with Image.open(src / "a_float.tif") as f, Image.open(src / "c_signed.tif") as i:
        seen = [np.asarray(to_rgb(im).convert("L")) for im in (f, i)]
    got = [Image.open(out / f"00000{n}.png") for n in (1, 2, 3, 4)]
    assert [im.mode for im in got] == ["L", "I;16", "L", "I;16"]
    assert (np.asarray(got[0]) == seen[0]).all() and (np.asarray(got[2]) == seen[1]).all()
    assert (np.asarray(got[1]) == ramp).all() and (np.asarray(got[3]) == ramp).all()


@pytest.mark.parametrize("denied", [os.W_OK, os.X_OK], ids=["no-write", "no-search"])
def test_an_output_folder_that_cannot_be_written_in_is_refused_before_the_run(tmp_path, monkeypatch, denied):
    """An empty --out on a read-only share (or without write permission, or without search permission, which
    stops files being made in it too) was taken, and the run stopped at its first PNG (exit 74, 'medimg extract
    --resume … carries it on'); it is a usage error now, as a new folder that cannot be made is."""
    (tmp_path / "a.png").write_bytes(png((9, 9, 9)))
    out = tmp_path / "out"
    out.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: not (Path(p) == out and mode & denied)
                        and real(p, mode, **kw))
    res = runner.invoke(app, ["extract", str(tmp_path / "a.png"), "--out", str(out)])
    assert res.exit_code == 2 and "cannot be written in" in flat(res.output), res.output
    assert list(out.iterdir()) == []


def test_resume_in_one_folder_counts_the_files_it_passes_over(tmp_path):
    """A run over one folder stopped after 3 of its 5 files: the resumed run says it passes over 2 (the third is
    done again), where it used to say 0 (it counted inputs as given, and the folder is the last one)."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(png((i * 50, 9, 9)))
    out = tmp_path / "o"
    run([str(folder)], out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:3]))  # stopped after 2.png
    res = run([str(folder), "--resume"], out)
    assert "2 rows kept" in flat(res.output) and "2 inputs already there passed over" in flat(res.output), res.output
    assert "3 images, 0 errors (2 inputs passed over), 0 skipped" in flat(res.output), res.output
