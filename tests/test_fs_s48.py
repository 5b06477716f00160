"""Files and folders as a share gives them (session 48): files swapped while walked, endless lists."""

from __future__ import annotations

import os
import pathlib
import threading

from PIL import Image

from medimg.sources import ItemError, files, open_input


def _png(path) -> None:
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path, "PNG")


def _done_in(call, seconds: float, unblock) -> list:
    """call() in a thread: what it returned within `seconds`, else [] after `unblock()` freed it."""
    got: list = []
    worker = threading.Thread(target=lambda: got.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        unblock()
        worker.join(30)
        return []
    return got


def _writer_end(fifo):
    """Opens and closes the FIFO's writing end, so a reader blocked in open() gets its end of file."""
    def unblock():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    return unblock


def test_a_file_swapped_for_a_fifo_after_its_stat_is_not_waited_on(tmp_path, monkeypatch):
    """A file replaced by a FIFO between the stat that found it regular and its open blocked open() (which waits
    for a writer) and so the whole run for good. The stat is made to see the file that was there."""
    _png(tmp_path / "was.png")
    fifo = tmp_path / "a.png"
    os.mkfifo(fifo)
    before = os.stat(tmp_path / "was.png")
    real_stat = pathlib.Path.stat

    def stat(self, *a, **k):  # the FIFO as it was a moment before: a regular file
        return before if os.fspath(self) == os.fspath(fifo) else real_stat(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    got = _done_in(lambda: files.read_file(fifo, files.Context(files.Limits())), 20, _writer_end(fifo))
    assert got, "read_file waited on the FIFO"
    assert isinstance(got[0], ItemError) and got[0].error == "not a regular file (a named pipe (FIFO)); not read"
    assert _done_in(lambda: files.file_head(fifo), 20, _writer_end(fifo)) == [b""]
    got = _done_in(lambda: list(open_input(str(tmp_path))), 20, _writer_end(fifo))
    assert got, "the folder's walk waited on the FIFO"
    assert [(i.origin, type(i).__name__) for i in got[0]] == [(str(fifo), "ItemError"),
                                                               (str(tmp_path / "was.png"), "ImageItem")]


def test_open_regular_reads_a_regular_file_as_open_does(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100_000)
    with files.open_regular(tmp_path / "a.bin") as f:
        assert f.read() == b"x" * 100_000 and os.get_blocking(f.fileno())
    for other in ("/dev/null", tmp_path):
        try:
            files.open_regular(other)
        except files.NotRegular as exc:
            assert "not a regular file" in str(exc)
        else:
            raise AssertionError(other)


def test_a_list_line_with_no_end_is_refused_not_held_whole(tmp_path):
    """--inputs-from /dev/zero (or any list with no line end) read its one line whole: 2.6 GB before a
    MemoryError. A line over FIELD_LIMIT now ends the list, said; lines before it and long ones that end are read."""
    from medimg.lists import FIELD_LIMIT, open_list

    long_name = "x" * (FIELD_LIMIT - 1)
    listed = tmp_path / "list.txt"
    listed.write_text(f"a.png\n{long_name}\n" + "y" * (3 * FIELD_LIMIT))
    entries = open_list(str(listed))
    assert list(entries) == ["a.png", long_name]
    assert entries.failed == (f"{listed}: could not be read past entry 2 (line 3 is over {FIELD_LIMIT:,} characters "
                              "long: not a list of inputs); the entries after it were not done")


def test_a_broken_link_says_so_and_where_it_points(tmp_path):
    """A link whose file is gone was "file not found", for a name `ls` shows in the folder."""
    _png(tmp_path / "a.png")
    os.symlink("../exported/b.png", tmp_path / "b.png")
    got = list(open_input(str(tmp_path)))
    assert [(i.origin, getattr(i, "error", None)) for i in got] == [
        (str(tmp_path / "a.png"), None),
        (str(tmp_path / "b.png"), "a broken link: it points to ../exported/b.png, which is not there")]
    assert [i.error for i in open_input(str(tmp_path / "b.png"))] == [got[1].error]  # given itself too
    assert [i.error for i in open_input(str(tmp_path / "c.png"))] == ["file not found"]  # no link: as before


def test_mac_and_windows_litter_given_from_a_list_is_a_note_not_an_error(tmp_path):
    """`find scans -type f | medimg classify --inputs-from -` on a share a Mac wrote to gave each file's `._` twin
    as an error ("named PNG but not readable as one … damaged, or misnamed"), and .DS_Store, Thumbs.db too."""
    _png(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(60))
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (tmp_path / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    (tmp_path / "desktop.ini").write_bytes(b"[.ShellClassInfo]\r\nIconResource=x\r\n")
    (tmp_path / "._b.png").write_bytes(b"not AppleDouble")  # a `._` name alone is no proof
    got = {os.path.basename(i.origin): i for name in sorted(os.listdir(tmp_path))
           for i in open_input(str(tmp_path / name))}
    assert type(got["a.png"]).__name__ == "ImageItem"
    assert got["._a.png"].skipped and got["._a.png"].error == \
        "skipped: macOS metadata of a.png (an AppleDouble ._ file), not an image"
    assert got[".DS_Store"].skipped and got[".DS_Store"].error == "skipped: macOS folder settings (.DS_Store), not an image"
    assert got["Thumbs.db"].skipped and got["desktop.ini"].skipped
    assert not got["._b.png"].skipped and got["._b.png"].error.startswith("named PNG but not readable")


def test_a_name_in_the_other_unicode_form_is_named_in_the_error(tmp_path):
    """A name from a list or typed (é as one character, NFC) of a file macOS wrote (e and an accent, NFD): Linux
    tells them apart, and the error was a bare "file not found"."""
    import unicodedata

    nfd = str(tmp_path / unicodedata.normalize("NFD", "radiographie_élève.png"))
    _png(nfd)
    nfc = unicodedata.normalize("NFC", nfd)
    assert [i.error for i in open_input(nfc)] == [
        f"file not found; a file of this name written as a letter and its accents (NFD, as macOS writes names) is "
        f"there: {nfd!r}"]
    os.rename(nfd, nfc)
    assert [i.error for i in open_input(nfd)] == [
        f"file not found; a file of this name written with accented letters as one character each (NFC) is there: "
        f"{nfc!r}"]
    assert [i.error for i in open_input(str(tmp_path / "é.png"))] == ["file not found"]  # neither form there


def test_an_empty_file_in_a_folder_is_a_note_without_being_opened(tmp_path, monkeypatch):
    """100,000 empty files took 10 s to walk (each opened and shown to every source), 3-5 s now; a FIFO (size 0
    too) is still refused as one."""
    _png(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"")
    os.mkfifo(tmp_path / "c.png")
    opened = []
    real = files.read_file
    monkeypatch.setattr(files, "read_file", lambda path, ctx: opened.append(os.path.basename(path)) or real(path, ctx))
    got = list(open_input(str(tmp_path)))
    assert [(os.path.basename(i.origin), getattr(i, "error", None), getattr(i, "skipped", None)) for i in got] == [
        ("a.png", None, None), ("b.png", "skipped: empty file", True),
        ("c.png", "not a regular file (a named pipe (FIFO)); not read", False)]
    assert opened == ["a.png", "c.png"]


def test_a_folders_walk_looks_header_names_up_in_its_listing(tmp_path, monkeypatch):
    """Each file no source reads was looked for six headers (a.mhd, a.nhdr, a.hdr in both cases), each a Path and a
    stat: half the time of walking 100,000 such files (40 s, now 14-22 s). A data file still finds its header."""
    for i in range(20):
        (tmp_path / f"notes{i}.txt").write_text("hello")
    (tmp_path / "a.mhd").write_text("ObjectType = Image\nNDims = 2\nDimSize = 4 4\nElementType = MET_UCHAR\n"
                                    "ElementDataFile = a.raw\n")
    (tmp_path / "a.raw").write_bytes(bytes(range(16)))
    looked = []
    real = os.path.isfile
    monkeypatch.setattr(os.path, "isfile", lambda p: looked.append(os.path.basename(p)) or real(p))
    got = {os.path.basename(i.origin): i for i in open_input(str(tmp_path))}
    assert got["a.raw"].skipped and got["a.raw"].error == "skipped: the data file of a.mhd, read with it"
    assert got["notes0.txt"].skipped and type(got["a.mhd"]).__name__ == "ImageItem"
    assert not [name for name in looked if name.startswith("notes")], looked[:8]
