"""`medimg extract` (session 36): a PNG's ICC profile fits its colours, and 16-bit colour written as 8 bits says so."""

import io
import json
import struct
import zlib

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from builders import wide_gamut_icc
from medimg.cli import app

runner = CliRunner()


def rows(out) -> dict[str, dict]:
    return {r["input"].rsplit("/", 1)[-1]: r for r in map(json.loads, (out / "manifest.jsonl").open())}


def extract(src, out) -> dict[str, dict]:
    res = runner.invoke(app, ["extract", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return rows(out)


def png16(arr: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG (Pillow writes none in colour): 2 RGB, 4 grey and alpha, 6 RGBA."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_png_keeps_an_icc_profile_only_where_png_allows_it(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)
    # a CMYK JPEG whose profile LittleCMS cannot use: its pixels are converted to RGB plainly
    cmyk = bytearray(300)
    cmyk[12:20], cmyk[36:40] = b"prtrCMYK", b"acsp"
    Image.fromarray(rng.integers(0, 256, (80, 100, 4), dtype=np.uint8), "CMYK").save(
        src / "a_cmyk.jpg", icc_profile=bytes(cmyk))
    wide = wide_gamut_icc()
    Image.fromarray(rgb[..., 0]).save(src / "b_grey.png", icc_profile=wide)  # an RGB profile on grey
    # its palette converted to sRGB as it is read (s40), as colour images are: no profile left to keep
    Image.fromarray(rgb).quantize(16).save(src / "c_palette.png", icc_profile=wide)
    found = extract(src, tmp_path / "out")

    def profile(name):
        with Image.open(tmp_path / "out" / found[name]["file"]) as im:
            return im.mode, im.info.get("icc_profile")
    assert profile("a_cmyk.jpg") == ("RGB", None)
    assert profile("b_grey.png") == ("L", None)
    assert profile("c_palette.png") == ("P", None)


def test_sixteen_bit_colour_written_with_eight_bits_says_so_and_sixteen_bit_grey_stays(tmp_path):
    import tifffile

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (40, 50, 3)).astype(np.uint16)
    (src / "rgb16.png").write_bytes(png16(rgb, 2))
    (src / "rgba16.png").write_bytes(png16(rng.integers(0, 65536, (40, 50, 4)), 6))
    tifffile.imwrite(src / "rgb16.tif", rgb, photometric="rgb")
    grey = rng.integers(0, 65536, (40, 50)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    (src / "grey16.png").write_bytes(buf.getvalue())
    Image.fromarray((rgb >> 8).astype(np.uint8)).save(src / "rgb8.png")
    found = extract(src, tmp_path / "out")
    for name in ("rgb16.png", "rgba16.png", "rgb16.tif"):
        assert found[name]["metadata"]["bits"] == 16, name
        with Image.open(tmp_path / "out" / found[name]["file"]) as im:
            assert im.mode in ("RGB", "RGBA")
            if name != "rgba16.png":
                assert (np.asarray(im) == rgb >> 8).all()  # each channel's high byte
    for name in ("grey16.png", "rgb8.png"):
        assert "bits" not in found[name]["metadata"], name
    with Image.open(tmp_path / "out" / found["grey16.png"]["file"]) as im:
        assert im.mode == "I;16" and (np.asarray(im) == grey).all()


def test_an_image_whose_png_could_not_be_written_is_counted_as_an_error(tmp_path, monkeypatch):
    """Its row is an error: the summary counts it as one, and a run that wrote no PNG at all exits 1."""
    src = tmp_path / "in"
    src.mkdir()
    for name, colour in (("a.png", (255, 0, 0)), ("b.png", (0, 255, 0))):
        Image.new("RGB", (100, 80), colour).save(src / name)
    save = Image.Image.save

    def failing(self, fp, *args, **kwargs):  # a PNG writer that fails (not a full disk): green ones
        if self.convert("RGB").getpixel((0, 0)) == (0, 255, 0):
            raise ValueError("cannot write this one")
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing)
    res = runner.invoke(app, ["extract", str(src), "--out", str(tmp_path / "both")])
    assert res.exit_code == 0, res.output
    assert "1 image, 1 error" in res.output
    assert sorted(p.name for p in (tmp_path / "both").glob("*.png")) == ["000001.png"]
    res = runner.invoke(app, ["extract", str(src / "b.png"), "--out", str(tmp_path / "none")])
    assert res.exit_code == 1, res.output
    assert "0 images, 1 error" in res.output
    row = json.loads((tmp_path / "none" / "manifest.jsonl").read_text())
    assert row["error"] == "could not write PNG: cannot write this one" and "file" not in row


def test_a_folder_holding_only_what_a_file_manager_left_counts_as_empty(tmp_path):
    """A folder made in Finder or Explorer and looked at holds .DS_Store, Thumbs.db or desktop.ini: it is written
    into (and they are left); a folder with anything else is still refused."""
    Image.new("RGB", (100, 80), (9, 99, 9)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (out / name).write_bytes(b"\0\0\0\1Bud1")
    found = extract(tmp_path / "a.png", out)
    assert found["a.png"]["file"] == "000001.png"
    assert sorted(p.name for p in out.iterdir()) == [".DS_Store", "000001.png", "Thumbs.db", "desktop.ini",
                                                     "manifest.jsonl"]
    other = tmp_path / "other"
    other.mkdir()
    (other / ".DS_Store").write_bytes(b"")
    (other / "notes.txt").write_text("mine")
    res = runner.invoke(app, ["extract", str(tmp_path / "a.png"), "--out", str(other)])
    assert res.exit_code == 2 and "is not an empty folder" in " ".join(res.output.replace("│", " ").split())
    assert sorted(p.name for p in other.iterdir()) == [".DS_Store", "notes.txt"]
