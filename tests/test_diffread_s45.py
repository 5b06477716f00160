"""A second read of session 45's changes (session 45): a DICOMDIR given with its export's folders or files in a
resumed extract, and a meta refresh to a data: URL."""

from __future__ import annotations

import json
from pathlib import Path

import builders as b
from PIL import Image

def _export(tmp_path: Path) -> Path:
    return b.dicom_export(tmp_path)


def _extract(inputs: list, out: Path, resume: bool) -> list[dict]:
    from medimg.extract import extract, prepare

    return [row for row, _ in extract([str(p) for p in inputs], out, workers=2, folder=prepare(out, resume))]


def _pngs(out: Path) -> list[str]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return [row["input"] for row in rows if "file" in row]


def test_a_resumed_extract_does_not_read_a_dicomdirs_files_again_through_its_folders(tmp_path):
    """The DICOMDIR done (passed over whole), its folders (which gave no row: it read their files) read them all
    again: 31 PNGs twice in the folder."""
    root = _export(tmp_path)
    Image.new("RGB", (200, 150), (200, 30, 30)).save(tmp_path / "last.png")
    inputs = [root / "DICOMDIR", *sorted(p for p in root.iterdir() if p.is_dir()), tmp_path / "last.png"]
    out = tmp_path / "out"
    assert sum("file" in row for row in _extract(inputs, out, False)) == 32
    assert [row for row in _extract(inputs, out, True) if "file" in row] == []
    assert len(_pngs(out)) == 32 and len(set(_pngs(out))) == 32


def test_a_resumed_extract_given_a_dicomdir_after_its_folders_or_files_done_reads_none_again(tmp_path):
    root = _export(tmp_path)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    for n, first in enumerate((folders, files)):
        out = tmp_path / f"out{n}"
        assert sum("file" in row for row in _extract(first, out, False)) == 31
        again = _extract([*first, root / "DICOMDIR"], out, True)  # a finished run carried on with the DICOMDIR
        # (the last file of the last input is read again, its rows gone: it may have been cut short)
        assert [row["input"] for row in again if row["source"] == str(root / "DICOMDIR")] == [str(root / "DICOMDIR")]
        assert len(_pngs(out)) == 31 and len(set(_pngs(out))) == 31


def test_a_meta_refresh_to_a_data_url_is_not_followed():
    """Browsers refuse a page's going to a data: URL: it was followed, and its fetch an error row naming a URL the
    user never gave ('only http and https URLs are fetched, not data:')."""
    from webserver import WebServer

    from medimg.sources import ItemError, Limits, open_input

    with WebServer() as srv:
        for n, target in enumerate(("data:text/html,<img src=/a.png>", "DATA:image/png;base64,iVBORw0KGgo=")):
            srv.add(f"/moved{n}.html", f'<html><head><meta http-equiv="refresh" content="0; url={target}"></head>'
                                        '<body>This page has moved</body></html>')
            items = list(open_input(srv.url(f"/moved{n}.html"), Limits(allow_private=True, total_timeout=8)))
            assert [(type(i), i.skipped, i.error) for i in items] == [(ItemError, True, "no images found on the page")]


def test_a_long_chain_of_meta_refreshes_under_a_high_max_redirects_is_an_error_row_not_a_recursion_error(
        monkeypatch):
    """Each meta refresh was read by a call inside the last one's: 1,500 of them (max_redirects=2000) raised
    RecursionError out of open_input. Pages from memory: a loopback server takes about 45 ms a page here."""
    from medimg.sources import ItemError, Limits, net, open_input

    def fetch(self, url, accept=None, **kwargs):
        n = int(url.rsplit("/p", 1)[1].split(".")[0])
        if n == 1500:
            raise net.FetchError(f"HTTP 404 Not Found for {url}")
        html = f'<html><head><meta http-equiv="refresh" content="0; url=/p{n + 1}.html"></head></html>'
        return net.Fetched(url, html.encode(), "text/html", headers={"content-type": "text/html"})

    monkeypatch.setattr(net.Fetcher, "fetch", fetch)
    items = list(open_input("http://127.0.0.1:9/p0.html", Limits(allow_private=True, max_redirects=2000)))
    assert [(type(i), i.error) for i in items] == [(ItemError, "HTTP 404 Not Found for http://127.0.0.1:9/p1500.html")]
    items = list(open_input("http://127.0.0.1:9/p0.html", Limits(allow_private=True, max_redirects=3)))
    assert [i.error for i in items] == ["too many meta refreshes (more than 3) starting at http://127.0.0.1:9/p0.html"]
