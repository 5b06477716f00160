"""Session 42 mutation review: tests for behaviour of this session's code that no other test pinned down (each
kills a mutant that survived the session's tests)."""

from __future__ import annotations

from medimg.server.hosts import host_name


def test_a_name_idna_refuses_is_kept_as_sent():
    # not "" (which every other refused name would equal, so one given with --allowed-host let all of them in)
    assert host_name("☃.example") == "☃.example"
    assert host_name("a_ü.example") != host_name("☃.example")


def _asgi(scope_type: str, headers: list[tuple[bytes, bytes]], path: str = "/") -> tuple[bool, list[dict]]:
    """Runs OwnHostsOnly (answering to no given name) on one request: whether the app behind it was called, and
    what the middleware sent itself."""
    import asyncio

    from medimg.server.hosts import OwnHostsOnly

    called, sent = [], []

    async def app(scope, receive, send):
        called.append(scope["type"])

    async def receive():
        return {"type": "websocket.connect"} if scope_type == "websocket" else {"type": "http.request"}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "path": path, "headers": headers, "query_string": b"", "root_path": ""}
    asyncio.run(OwnHostsOnly(app, ())(scope, receive, send))
    return bool(called), sent


def test_a_request_without_a_host_header_is_answered():
    called, sent = _asgi("http", [])  # HTTP/1.0: no Host; a browser always sends one
    assert called and not sent


def test_a_websocket_for_another_name_is_closed_and_a_local_one_answered():
    called, sent = _asgi("websocket", [(b"host", b"rebind.example:7860")])
    assert not called and sent == [{"type": "websocket.close", "code": 1008}]
    assert _asgi("websocket", [(b"host", b"127.0.0.1:7860")])[0]


def test_lifespan_passes_through():
    assert _asgi("lifespan", [])[0]


def test_the_api_root_itself_gets_the_apis_json_error():
    import json

    called, sent = _asgi("http", [(b"host", b"rebind.example")], path="/api")
    assert not called and sent[0]["status"] == 403
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    assert "rebind.example" in json.loads(sent[1]["body"])["error"]


def test_refused_names_are_logged_up_to_the_cap(caplog):
    import asyncio
    import logging

    from medimg.server.hosts import LOGGED_NAMES, OwnHostsOnly

    async def app(scope, receive, send):
        raise AssertionError("answered")

    async def send(message):
        pass

    guard = OwnHostsOnly(app, ())

    async def scan():
        for i in range(LOGGED_NAMES + 20):
            for _ in range(2):  # each name once in the log
                await guard({"type": "http", "path": "/", "headers": [(b"host", f"n{i}.example".encode())]},
                            None, send)

    with caplog.at_level(logging.WARNING, logger="medimg.server"):
        asyncio.run(scan())
    assert len([r for r in caplog.records if "was refused" in r.getMessage()]) == LOGGED_NAMES


def test_the_403_lists_five_names_then_an_ellipsis():
    import asyncio

    from medimg.server.hosts import OwnHostsOnly

    sent = []

    async def send(message):
        sent.append(message)

    names = [f"h{i}.example" for i in range(7)]
    scope = {"type": "http", "path": "/", "headers": [(b"host", b"rebind.example")]}
    asyncio.run(OwnHostsOnly(None, names)(scope, None, send))
    text = sent[1]["body"].decode()
    assert "h0.example, h1.example, h2.example, h3.example, h4.example, …" in text and "h5.example" not in text
    sent.clear()
    asyncio.run(OwnHostsOnly(None, names[:5])(scope, None, send))
    assert "…" not in sent[1]["body"].decode()


def test_a_deep_rgb_pngs_colour_key_is_its_transparency(tmp_path):
    import struct
    import zlib

    import numpy as np
    import pytest

    from medimg.sources import open_inputs

    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (a dependency) is not installed")
    arr = np.zeros((40, 60, 3), np.uint16)
    arr[..., 0] = np.linspace(0, 4095, 60, dtype=np.uint16)[None, :]  # 12 bits stored in 16
    arr[..., 1], arr[..., 2] = 2048, 1000
    png = imagecodecs.png_encode(arr)
    body = struct.pack(">HHH", 0, 2048, 1000)  # the key: the first column's colour
    at = png.index(b"IDAT") - 4
    png = png[:at] + struct.pack(">I", 6) + b"tRNS" + body + struct.pack(">I", zlib.crc32(b"tRNS" + body)) + png[at:]
    path = tmp_path / "keyed.png"
    path.write_bytes(png)
    (item,) = open_inputs([str(path)])
    out = np.asarray(item.image)
    assert item.image.mode == "RGBA", item
    assert (out[:, 0, 3] == 0).all() and (out[:, 1:, 3] == 255).all()
    assert out[0, -1, 0] == 255  # shown by its own depth


def _png(size=(120, 100), colour=(200, 40, 60)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _svg_items(data: bytes) -> list:
    from medimg.sources import Limits
    from medimg.sources.base import Blob, Context
    from medimg.sources.svg import open_svg

    return list(open_svg(Blob(origin="fig.svg", data=data), Context(Limits())))


SVG = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def test_an_feimages_embedded_picture_is_read():
    import base64

    from medimg.sources import ImageItem

    pic = base64.b64encode(_png()).decode()
    got = _svg_items(f'<svg {SVG}><filter id="f"><feImage xlink:href="data:image/png;base64,{pic}"/></filter>'
                     f'<rect filter="url(#f)" width="9" height="9"/></svg>'.encode())
    assert len(got) == 1 and isinstance(got[0], ImageItem) and got[0].locator == "image #1", got


def test_an_embedded_svg_that_is_no_drawing_is_a_note_not_an_error():
    import base64

    text = base64.b64encode(b"not a drawing at all").decode()
    got = _svg_items(f'<svg {SVG}><image href="data:image/svg+xml;base64,{text}"/></svg>'.encode())
    assert got and all(i.skipped for i in got), got
    assert "not a raster image (image/svg+xml)" in got[0].error


def _frame(locator, image):
    from medimg.sources import ImageItem

    return ImageItem(origin="a.gif", locator=locator, image=image)


def test_a_palette_frame_with_transparency_repeats_its_rgba_drawing():
    from PIL import Image

    from medimg.sources.repeats import distinct

    first = Image.new("P", (8, 8), 0)
    first.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    first.paste(1, (0, 0, 4, 8))
    first.info["transparency"] = 1  # the left half clear
    again = first.convert("RGBA")  # as Pillow draws a GIF's later frame
    opaque = again.copy()
    opaque.putalpha(255)  # same colours, but nothing clear: another picture
    got = list(distinct(iter([_frame("frame 1", first), _frame("frame 2", again), _frame("frame 3", opaque)]),
                        "a.gif", "frame", 100))
    assert [g.locator for g in got] == ["frame 1", "frame 2", "frame 3"]
    assert got[1].skipped and "the same picture as frame 1" in got[1].error
    assert not hasattr(got[2], "error")


def test_a_note_between_frames_ends_a_run_of_repeats():
    from PIL import Image

    from medimg.sources import ItemError
    from medimg.sources.repeats import distinct

    a, b = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    frames = [_frame("frame 1", a), _frame("frame 2", a), ItemError("a.gif", "frame 3", "could not read frame"),
              _frame("frame 4", a), _frame("frame 5", b)]
    got = list(distinct(iter(frames), "a.gif", "frame", 100))
    notes = [(g.locator, g.error) for g in got if getattr(g, "skipped", False)]
    assert notes == [("frame 2", "the same picture as frame 1; not classified again"),
                     ("frame 4", "the same picture as frame 1; not classified again")], notes


def test_a_decoders_own_slip_is_said_as_damage_not_in_its_words():
    import struct

    from medimg.sources.base import reason

    for exc in (ZeroDivisionError("division by zero"), KeyError(273), TypeError("'NoneType' object is not iterable"),
                struct.error("bad char in struct format"), OverflowError("cannot convert float infinity")):
        assert reason(exc) == "its data is damaged or cut short", exc
    assert reason(ValueError("not a JPEG file\nmore")) == "not a JPEG file"
    assert reason(MemoryError()) == "not enough memory to read it"


def test_only_a_slip_in_medimgs_own_code_is_said_as_internal():
    import pytest

    from medimg.sources import Limits
    from medimg.sources.registry import _ours
    from medimg.sources.repeats import digest

    with pytest.raises(ValueError) as refused:  # medimg's own word on a value: not a slip
        Limits(max_images_per_input=-1)
    assert not _ours(refused.value)
    with pytest.raises(AttributeError) as slip:  # a wrong type reached medimg's code
        digest(None)
    assert _ours(slip.value)
    try:
        int("x")  # raised in the test's own frame, not medimg's
    except ValueError as exc:
        assert not _ours(exc)


def test_a_resumed_7z_whose_files_are_done_is_not_called_hidden_only():
    import io

    import pytest

    from medimg.sources import Limits
    from medimg.sources.base import Blob, Context

    py7zr = pytest.importorskip("py7zr", reason="7z archives need py7zr")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as z:
        z.writestr(b"x", ".DS_Store")
        z.writestr(_png(), "a.png")
    done = []
    ctx = Context(Limits(), skip=lambda where: done.append(where) or where == "scans.7z:a.png")
    got = list(ctx.open_blob(Blob(origin="scans.7z", data=out.getvalue())))
    assert "scans.7z:a.png" in done
    assert not any("hidden ones are left out" in getattr(g, "error", "") for g in got), got


def test_a_download_link_not_saved_is_not_counted_as_a_missing_image():
    from test_savedpages_s42 import mhtml

    from medimg.sources import Limits
    from medimg.sources.base import Blob, Context

    u = "https://journal.example/case"
    page = ('<html><body><img src="fig.png" alt="Figure"><a href="attachment.php?id=3">the data</a>'
            '<a download href="files/raw">raw</a></body></html>')
    data = mhtml(u, page, [("https://journal.example/fig.png", "image/png", _png())])
    got = list(Context(Limits()).open_blob(Blob(origin="case.mhtml", data=data)))
    assert [g.locator for g in got if not hasattr(g, "error")] == ["img #1 https://journal.example/fig.png"], got
    assert not any("not in the MHTML" in getattr(g, "error", "") for g in got), got


def test_the_browsers_name_is_taken_only_where_gradio_would_have_stored_this_file_so(tmp_path):
    from pathlib import Path

    from medimg.server.ui import _given_name

    stored = Path(tmp_path / "scan.png")
    assert _given_name(stored, "scan?.png") == "scan?.png"  # Gradio strips the ?
    assert _given_name(stored, "other.png") == "scan.png"  # not this file's name
    assert _given_name(stored, "scan\n.png") == "scan.png"  # unprintable
    assert _given_name(Path(tmp_path / "ab.png"), "a\\b.png") == "ab.png"  # a path on Windows
    assert _given_name(stored, None) == "scan.png"


def test_the_list_left_after_a_run_is_the_pages_list_now(tmp_path):
    from medimg.server.ui import _listed_now

    up, folder = tmp_path / "gradio", tmp_path / "session"
    up.mkdir(), folder.mkdir()
    a, b, c = up / "a.png", up / "b.png", up / "c.png"
    for p in (a, b, c):
        p.write_bytes(b"x")
    ka, kb = folder / "a.png", folder / "b.png"
    for p in (ka, kb):
        p.write_bytes(b"x")
    elsewhere = tmp_path / "etc.png"
    elsewhere.write_bytes(b"x")
    # b removed and c added while the run went; a path not uploaded here is never put on the page
    assert _listed_now([a, b], [ka, kb], [a, c, elsewhere], up, folder) == [ka, c]
    # a listed again while the run went (added twice): the second stays as uploaded, for the next run (session 45:
    # a file added twice is kept twice; it was folded into the first)
    assert _listed_now([a, b], [ka, kb], [a, a], up, folder) == [ka, a]
    assert _listed_now([a, b], [ka, kb], None, up, folder) == [ka, kb]
    assert _listed_now([a, b], [ka], [a, b, c], up, folder) == [ka]  # a file could not be kept


def test_a_model_exported_for_batches_of_two_classifies_an_odd_count(tmp_path, tiny_model_dir):
    # 3 images: a group of 2, then 1 padded to 2 whose padding row is dropped
    import numpy as np
    from test_models_s42 import _images, _onnx

    from medimg.pipeline import classify

    images = _images(tmp_path)
    folder = _onnx(tmp_path / "batch2", [2, 3, 32, 32])
    got = [(r.label, r.error) for r in classify(images, classifier=str(folder), batch_size=8)]
    assert got == [("xray", None), ("photo", None), ("graphic", None)]
    assert got == [(r.label, None) for r in classify(images, classifier=tiny_model_dir)]
    from medimg.model import Classifier

    clf = Classifier.load(folder)
    assert clf.logits(np.zeros((3, 3, 32, 32), np.float32)).shape == (3, 3)  # the padding row dropped


def test_pictures_past_the_cap_are_counted_from_the_first_one_over():
    import base64

    from medimg.sources import Limits
    from medimg.sources.base import Blob, Context
    from medimg.sources.svg import open_svg

    pics = "".join(f'<image href="data:image/png;base64,{base64.b64encode(_png(colour=(c, 9, 9))).decode()}"/>'
                   for c in (10, 90, 170))
    got = list(open_svg(Blob(origin="f.svg", data=f"<svg {SVG}>{pics}</svg>".encode()),
                        Context(Limits(max_images_per_input=2))))
    assert [g.locator for g in got] == ["image #1", "image #2", ""]
    assert got[-1].error == "1 more embedded picture was not read (max_images_per_input = 2)"
