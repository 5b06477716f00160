"""Second read of session 46's archive and browser changes: zeros not compressed under a compressed tar's name are
no empty tar (a download cut off), a zip method without a name is not capitalised mid-sentence, and a file a
rendered page goes on to that is over the byte cap is an error, not silence."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from medimg.sources import ItemError, Limits, open_input
from test_browser import RENDER, colours, png, requires_browser
from webserver import WebServer


def errors(path) -> list[str]:
    return [i.error for i in open_input(str(path), Limits()) if isinstance(i, ItemError)]


@pytest.mark.parametrize("name", ["x.tar.gz", "x.tgz", "x.tar.xz"])
def test_zeros_not_compressed_under_a_compressed_tars_name_are_not_an_empty_tar(tmp_path, name):
    """A preallocated download cut off is zeros: `gzip -t` says "not in gzip format"; it was called an archive
    holding no files, as if it were whole."""
    path = tmp_path / name
    path.write_bytes(b"\0" * 10240)
    assert errors(path) and "archive holds no files" not in errors(path)[0], errors(path)


def test_an_empty_tar_compressed_or_not_is_still_the_empty_archive_note(tmp_path):
    (tmp_path / "a.tar").write_bytes(b"\0" * 10240)
    (tmp_path / "b.tar.gz").write_bytes(gzip.compress(b"\0" * 10240))
    assert errors(tmp_path / "a.tar") == errors(tmp_path / "b.tar.gz") == ["archive holds no files"]


@pytest.mark.parametrize("method, said", [(77, "an unknown method (method 77)"), (93, "Zstandard (method 93)"),
                                          (95, "XZ (method 95)")])
def test_a_zip_method_is_named_plainly(tmp_path, method, said):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.png", png((200, 0, 0)))
    data = bytearray(buf.getvalue())
    central = data.find(b"PK\x01\x02")
    data[8] = data[central + 10] = method  # in its local header and its directory entry
    (tmp_path / "m.zip").write_bytes(bytes(data))
    assert errors(tmp_path / "m.zip") == [f"member compressed with {said}, which is not inflated here; not read "
                                          "(zip it again with Deflate, the usual method)"]


@pytest.mark.browser
@requires_browser
@pytest.mark.timeout(120)
def test_a_rendered_page_going_on_to_a_file_over_the_byte_cap_says_so():
    """The guard's fetch of the file stopped at max_download_bytes and the navigation failed: the rendered page's
    own images came out and nothing said the file it went on to was not read."""
    with WebServer() as srv:
        srv.add("/ok.png", png((0, 200, 0)), "image/png")
        srv.huge("/huge.png", 300 * 2**20, declare_length=False)
        srv.add("/page.html", '<img src="ok.png"><meta http-equiv="refresh" content="0;url=huge.png">')
        items = list(open_input(srv.url("/page.html"), Limits(**{**RENDER, "max_download_bytes": 2 * 2**20})))
    assert colours(items) == [(0, 200, 0)]
    said = [i.error for i in items if isinstance(i, ItemError) and not i.skipped]
    assert len(said) == 1 and "huge.png" in said[0] and "max_download_bytes" in said[0], said
