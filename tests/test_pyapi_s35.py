"""The Python API in a process that runs for weeks (s35_pyapi): what one run leaves behind."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from medimg import Blob, open_input


def _pdf(images: int, seed: int) -> bytes:
    """A PDF with `images` different small PNGs on its one page."""
    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    page = doc.new_page(width=600, height=800)
    for k in range(images):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, "PNG")
        page.insert_image(pymupdf.Rect(40, 40 + k * 70, 140, 100 + k * 70), stream=buf.getvalue())
    data = doc.tobytes()
    doc.close()
    return data


def _store_bytes() -> int:
    """What MuPDF's store of decoded images and fonts holds now (the `size=` of fz_debug_store's last line)."""
    m = pymupdf.mupdf
    buf = m.fz_new_buffer(1024)
    out = m.FzOutput(buf)
    m.fz_debug_store(out)
    out.fz_close_output()
    last = buf.fz_buffer_extract().decode(errors="replace").splitlines()[-1]
    return int(last.split(" size=")[1].split(",")[0])


def test_a_pdf_read_and_closed_leaves_nothing_in_mupdfs_store():
    # MuPDF kept every image it had decoded after the PDF was closed, where nothing could use it again: 5,000
    # small images grew a worker's RSS by about 60 MB, up to a 256 MB store of pixels (plus their keys).
    for seed in range(3):
        items = list(open_input(Blob(origin=f"doc{seed}.pdf", data=_pdf(8, seed))))
        assert sum(1 for it in items if getattr(it, "image", None) is not None) == 8
        assert _store_bytes() == 0


def test_a_render_given_up_while_it_waits_for_a_browser_slot_starts_no_browser(monkeypatch):
    import threading

    import pytest

    from medimg.sources import browser
    from medimg.sources.base import Limits

    if browser.available() is not None:
        pytest.skip(browser.available())
    started = []
    monkeypatch.setattr(browser, "_render", lambda *args: started.append(args) or [])
    cancel = threading.Event()
    got: list = []

    def render() -> None:
        try:
            got.append(browser.collect("http://127.0.0.1:9/", Limits(allow_private=True), cancel))
        except browser.BrowserError as exc:
            got.append(exc)

    # both slots taken by other renders; the run is closed (cancel set) while this one waits for one
    for _ in range(2):
        browser._slots.acquire()
    try:
        th = threading.Thread(target=render)
        th.start()
        cancel.set()
    finally:
        for _ in range(2):
            browser._slots.release()
    th.join(10)
    assert not started  # it used to launch Chromium, only for the watchdog to kill it
    assert isinstance(got[0], browser.BrowserError) and "cancelled" in str(got[0])
