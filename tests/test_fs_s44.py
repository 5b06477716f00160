"""Folders and files as a share gives them: deep trees, links back up, pipes and sockets, unreadable files."""

from __future__ import annotations

import os
import socket
import time

import pytest
from PIL import Image

from medimg.sources import ImageItem, ItemError, open_input


def _png(path) -> None:
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path, "PNG")


def test_a_folder_1000_deep_is_read(tmp_path):
    """Python 3.11's os.walk recursed once a level: at about 1,000 levels the whole folder was a RecursionError."""
    deep = str(tmp_path / "deep")
    os.mkdir(deep)
    for _ in range(1000):  # os.makedirs recurses too
        deep = os.path.join(deep, "a")
        os.mkdir(deep)
    _png(os.path.join(deep, "x.png"))
    try:
        start = time.monotonic()
        got = list(open_input(str(tmp_path / "deep")))
        assert [type(i) for i in got] == [ImageItem], got
        assert got[0].origin == os.path.join(deep, "x.png")
        assert time.monotonic() - start < 30  # a real path for each folder made it minutes
    finally:  # removed here, bottom up: pytest's clean-up of old runs (shutil.rmtree) recurses and would fail on it
        os.unlink(os.path.join(deep, "x.png"))
        while deep != str(tmp_path):
            os.rmdir(deep)
            deep = os.path.dirname(deep)


def test_a_link_to_a_folder_above_is_a_loop_not_read(tmp_path):
    """A link to `..`'s parent or to `/` in a share read everything under it (the whole machine for `/`)."""
    given = tmp_path / "share" / "scans"
    given.mkdir(parents=True)
    _png(given / "a.png")
    _png(tmp_path / "outside.png")
    os.symlink(tmp_path, given / "up")  # holds the folder given
    got = list(open_input(str(given)))
    assert [i.origin for i in got] == [str(given / "a.png"), str(given / "up")], got
    assert isinstance(got[1], ItemError) and got[1].skipped
    assert got[1].error == f"link to a folder above it ({os.path.realpath(tmp_path)}), a loop; not read"


def test_a_link_to_the_root_folder_is_not_walked(tmp_path):
    """Before, this walked the whole file system (/proc, /sys, every disk) from a share's link to `/`."""
    _png(tmp_path / "a.png")
    os.symlink("/", tmp_path / "root")
    got = list(open_input(str(tmp_path)))
    assert [i.origin for i in got] == [str(tmp_path / "a.png"), str(tmp_path / "root")], got[:5]
    assert got[1].error == "link to a folder above it (/), a loop; not read"


def test_a_link_to_its_own_folder_and_a_folder_given_through_a_link(tmp_path):
    """`..` stays the note it was, and a folder given as a link to a folder above the current one is read."""
    (tmp_path / "s" / "sub").mkdir(parents=True)
    _png(tmp_path / "s" / "sub" / "a.png")
    os.symlink("..", tmp_path / "s" / "sub" / "up")
    got = list(open_input(str(tmp_path / "s")))
    assert [type(i) for i in got] == [ImageItem, ItemError]
    assert got[1].error == f"link to a folder read already ({os.path.realpath(tmp_path / 's')}); not read again"
    os.symlink("..", tmp_path / "s" / "sub" / "parent")
    got = list(open_input(str(tmp_path / "s" / "sub" / "parent")))  # given itself: read, its loops noted
    assert [i.origin for i in got if isinstance(i, ImageItem)] == [str(tmp_path / "s" / "sub" / "parent" / "sub" / "a.png")]


def test_pipes_sockets_and_devices_say_what_they_are(tmp_path):
    os.mkfifo(tmp_path / "fifo.png")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock.png"))
        os.symlink("/dev/zero", tmp_path / "zero.png")
        got = {os.path.basename(i.origin): i.error for i in open_input(str(tmp_path))}
    finally:
        sock.close()
    assert got == {"fifo.png": "not a regular file (a named pipe (FIFO)); not read",
                   "sock.png": "not a regular file (a socket); not read",
                   "zero.png": "not a regular file (a device); not read"}


def test_an_unreadable_file_and_folder(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "locked").mkdir()
    _png(tmp_path / "locked" / "b.png")
    os.chmod(tmp_path / "a.png", 0)
    os.chmod(tmp_path / "locked", 0)
    try:
        if os.access(tmp_path / "a.png", os.R_OK):
            pytest.skip("run as root (or with CAP_DAC_OVERRIDE): mode 000 does not stop this process reading")
        got = [(os.path.basename(i.origin), i.error) for i in open_input(str(tmp_path))]
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert got == [("a.png", "permission denied"), ("locked", "could not list folder: Permission denied")]
