"""Review of session 34's whole change (s34_diffread): costs that grew with the square of a page's links or
pictures, and a training run's cache folder that cannot be made."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
from PIL import Image
from test_training_inputs import corpus

from medimg.sources import prints, web, web_fetch
from medimg.sources.base import ImageItem
from medimg.sources.prints import picture_print
from medimg.training.dataset import load_images, scan


def _extract_seconds(page: str) -> float:
    t = time.perf_counter()
    web.extract(page.encode(), "https://example.org/case/page.html")
    return time.perf_counter() - t


def test_ima_links_in_one_element_cost_what_they_cost_apart():
    """Whether the element around a `.ima` link says DICOM was read from that element's whole text for each
    link: 8,000 links in one <div> took 13 s (0.8 s before session 34), the same links each in its own <li>
    under 1 s. The element's words are now read once, from its first characters."""
    links = "".join(f'<a href="/scans/s{i}.ima">slice {i}</a> ' for i in range(6000))
    apart = "".join(f'<li><a href="/scans/s{i}.ima">slice {i}</a></li>' for i in range(6000))
    together = alone = float("inf")
    for _ in range(2):  # alternated, the faster of two each: one stall of the machine is not the code's cost
        together = min(together, _extract_seconds(f"<html><body><div>{links}</div></body></html>"))
        alone = min(alone, _extract_seconds(f"<html><body><ul>{apart}</ul></body></html>"))
    assert together < 3 * alone + 0.5, (together, alone)
    # still read when the element around them says DICOM, and not when it does not
    said = web.extract(b'<html><body><div><p>Case 3</p> DICOM series: <a href="/s/1.ima">1</a> <a href="/s/2.ima">2</a>'
                       b'</div><div>Photos: <a href="/s/3.ima">3</a></div></body></html>', "https://example.org/p")
    assert [c.url.rsplit("/", 1)[1] for c in said] == ["1.ima", "2.ima"]


def test_a_page_of_many_mhd_and_raw_pairs_keeps_one_list_of_data_files_a_folder():
    """Each `x.mhd` link got its own sorted tuple of every data file of its folder, found by a scan of all of
    them: 4,000 pairs took 84 s and 131 MiB. Now the folder's tuple is made once and shared."""
    n = 2000
    page = ("<html><body><ul>" + "".join(f'<li><a href="/v/s{i}.mhd">s{i}</a> <a href="/v/s{i}.raw">data</a></li>'
                                         for i in range(n)) + "</ul></body></html>").encode()
    tracemalloc.start()
    try:
        found = web.extract(page, "https://example.org/case/page.html")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == n and all(len(c.beside) == n for c in found)
    assert found[0].beside == tuple(sorted(f"https://example.org/v/s{i}.raw" for i in range(n)))
    assert peak < 16 * 2**20, peak  # 35 MiB before (n² entries)


def _picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth grey picture of its own (random cells, enlarged)."""
    cells = np.random.default_rng(seed).integers(0, 256, (6, 6), dtype=np.uint8)
    return Image.fromarray(cells, "L").resize(size, Image.BICUBIC).convert("RGB")


def _mark(image: Image.Image):
    return picture_print(ImageItem(origin="x", locator="", image=image, format="PNG"))


def test_crop_comparisons_on_a_page_of_many_pictures_are_capped(monkeypatch):
    """A gallery of square thumbnails, each linked to its picture of another shape: every picture was compared
    crop by crop with every one of the other role read before it, each pair working out and keeping new crop
    prints (500 pairs: minutes and hundreds of MB). Now at most CROPS_PER_PICTURE, the latest first, and the
    page's CROP_PAIRS; a thumbnail beside its picture is still known as its crop."""
    monkeypatch.setattr(web_fetch, "CROP_PAIRS", 400)  # where Seen reads it
    worked = []  # each crop print worked out (a shape not cropped to before)
    cropped = prints.Print._cropped

    def counted(self, theirs):
        worked.append(theirs not in self._crops)
        return cropped(self, theirs)

    monkeypatch.setattr(prints.Print, "_cropped", counted)
    seen = web.Seen()
    matched = []
    for k in range(100):
        full = _picture(k, (300 + 7 * k, 240))
        side = full.height
        thumb = full.crop(((full.width - side) // 2, 0, (full.width + side) // 2, side)).resize((96, 96), Image.BOX)
        for tag, image, name in (("a", full, f"full{k}"), ("img", thumb, f"thumb{k}")):
            mark = _mark(image)
            note = seen.resized(web.Candidate(f"https://example.org/{name}.png", tag), mark)
            if note is not None and name.startswith("thumb"):
                matched.append((k, str(note)))
            else:
                seen.add(web.Candidate(f"https://example.org/{name}.png", tag), web.Blob(name, name.encode()), name,
                         mark)
    assert sum(worked) <= 2 * 400, sum(worked)
    assert matched[0] == (0, "same picture as full0 (a crop of it: 96x96, its centre of 300x240)")
    assert [k for k, _ in matched][:5] == [0, 1, 2, 3, 4]


def test_a_cache_folder_that_cannot_be_made_leaves_the_run_uncached(tmp_path):
    """A cache folder that cannot be made (a read-only HOME's ~/.cache): the sources were decoded, the cache
    said not written, then the clean-up listed the missing folder and the run ended in FileNotFoundError."""
    root = corpus(tmp_path / "data", {"xray": {"a": 2}, "photo": {"b": 2}})
    said: list[str] = []
    x, _, bad = load_images(scan(root, exclude={}), 16, "/proc/medimg-cache", workers=1, log=said.append)
    assert len(x) == 4 and not bad and x.any()
    assert any(m.startswith("decoded sources are not cached: /proc/medimg-cache") for m in said), said


def _covered_pdf(images: int, boxes: int) -> bytes:
    """One page: a picture placed `images` times, each 2 pt right of the last, then `boxes` small white boxes
    laid over them, each a path of its own."""
    import io

    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=600, height=600)
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    for k in range(images):
        x = 50 + 2 * k % 300
        page.insert_image(pymupdf.Rect(x, 50, x + 200, 250), stream=buf.getvalue())
    shape = page.new_shape()
    for k in range(boxes):
        x, y = 60 + (k * 7) % 480, 60 + (k * 13) % 180
        shape.draw_rect(pymupdf.Rect(x, y, x + 3, y + 3))
        shape.finish(fill=(1, 1, 1), color=None)
    shape.commit()
    return doc.tobytes()


def test_a_page_of_many_images_under_many_boxes_keeps_to_the_pdfs_time(monkeypatch):
    """Each image's covers are measured box by box (some 30 µs each), and the PDF's time was looked at only
    between pages: 100 images under 10,000 boxes took 99 s on one page (13 s before session 34), holding the
    process-wide MuPDF lock. Now the time is looked at while covers are measured, and the page ends as a page
    out of time does."""
    from medimg.sources import Blob, ItemError, open_input, pdf

    data = _covered_pdf(60, 6000)
    monkeypatch.setattr(pdf, "PDF_SECONDS", 3.0)
    t = time.perf_counter()
    items = list(open_input(Blob("covers.pdf", data)))
    spent = time.perf_counter() - t
    assert spent < 12, spent  # 21 s before (measured here)
    assert [i.error for i in items if isinstance(i, ItemError)] == [  # as when MuPDF's own run is out of time
        "no images found in the PDF", "read only the first 0 of 1 pages: out of time (3 s of work per PDF)"]


def test_a_scratch_folder_on_a_file_system_without_flock_is_made_all_the_same(tmp_path, monkeypatch):
    """`medimg serve` locks its scratch folders so that the next server removes a killed one's: where flock
    fails (a FUSE TMPDIR, ENOLCK), the server did not start (OSError out of private_folder), with a stray folder
    and descriptor left. Now the folder is made, unlocked, under the name no server removes."""
    import errno
    import fcntl

    from medimg import scratch

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = scratch.private_folder("medimg-uploads-")
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700 and folder not in scratch._held
    assert scratch.remove_left_behind() == [] and folder.is_dir()  # never taken for a dead server's
    scratch.remove(folder)
    assert not folder.exists()


def test_train_reads_a_cache_folder_it_cannot_write(tmp_path):
    """docs/cli.md says a cache folder that cannot be written (another user's) is read all the same; `train`
    refused it before reading anything ("cannot be written", exit 2). /proc/self stands for such a folder here
    (it can be listed, not written, even by root). The run now goes on to decode the corpus: here to the usage
    error a corpus whose photos are all unreadable gives once decoded."""
    import pytest

    pytest.importorskip("torch", reason="needs the train extra (torch)")
    from test_training_inputs import flat
    from typer.testing import CliRunner

    from medimg.cli import app

    root = corpus(tmp_path / "data", {"xray": {"a": 2, "c": 2}, "photo": {"b": 2, "d": 2}})
    for p in [*(root / "photo" / "b").iterdir(), *(root / "photo" / "d").iterdir()]:
        p.write_bytes(b"not a picture")
    res = CliRunner().invoke(app, ["train", "--data", str(root), "--out", str(tmp_path / "runs"), "--cache",
                                   "/proc/self", "--route", "cnn", "--size", "32", "--epochs", "1", "--folds", "2"])
    said = flat(res.output)
    assert res.exit_code == 2 and "no readable images left for label(s) photo" in said, res.output
    assert "--cache /proc/self cannot be written" in said and "decoded without being cached" in said
