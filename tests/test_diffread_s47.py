"""Session 47's read of its own changes (review s47_diffread1): Ray's start-up errors in `medimg scale`."""

from __future__ import annotations

from typer.testing import CliRunner

from medimg.cli import app
from words import flat

runner = CliRunner()


def test_scale_with_no_cluster_at_its_address_says_so_not_to_fix_home(monkeypatch, tmp_path, tiny_model_dir):
    """`--address auto` with no cluster running: Ray raises ConnectionError, an OSError, which the HOME check of
    session 47 took for a HOME Ray cannot write in ("give the job a HOME and a TMPDIR it may write in")."""
    import pytest
    from PIL import Image

    ray = pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")

    def init(*args, **kwargs):  # what Ray 2.x raises for address="auto" with no cluster
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to by "
                              "setting `--address` flag or `RAY_ADDRESS` environment variable.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n")
    res = runner.invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(tmp_path / "out"), "--address",
                              "auto", "--model", str(tiny_model_dir)])
    said = flat(res.output)
    assert res.exit_code == 2, (res.exit_code, said, res.exception)
    assert "Ray could not connect to a cluster at --address auto" in said, said
    assert "Could not find any running Ray instance" in said and "HOME" not in said, said
    assert "could not write" not in said and "Traceback" not in said


def test_slide_cut_only_in_its_label_is_still_read(tmp_path):
    """Session 47 refused any slide with a strip past the end of the file before OpenSlide opened it: an .svs cut in
    its label (the last page, never shown) opened in OpenSlide and was read before; it was "damaged slide". A cut in
    a level, which OpenSlide cannot open, is still named."""
    import tifffile

    from medimg.sources import ImageItem, ItemError, open_input
    from test_slide import write_slide

    path = write_slide(tmp_path / "whole.svs", size=(2048, 1536), label=True)
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        label, level = tif.pages[-1], tif.pages[-2]
        assert not label.is_tiled and level.is_tiled
        in_label = max(o + c for o, c in zip(label.dataoffsets, label.databytecounts)) - 20
        in_level = max(o + c for o, c in zip(level.dataoffsets, level.databytecounts)) - 20
    (tmp_path / "label.svs").write_bytes(data[:in_label])
    (item,) = open_input(tmp_path / "label.svs")
    assert isinstance(item, ImageItem), getattr(item, "error", item)
    assert item.locator.startswith("tissue field")
    (tmp_path / "level.svs").write_bytes(data[:in_level])
    (item,) = open_input(tmp_path / "level.svs")
    assert isinstance(item, ItemError) and item.error.startswith("damaged slide: image 3: its tile"), item.error
    assert "past the end of the file" in item.error


def test_netpbm_of_an_odd_maxval_has_pillows_levels():
    """Session 47 scaled a Netpbm file whose maxval is not 255 or 65535 with numpy, as `value * (255 / maxval)`:
    Pillow's `round(value / maxval * 255)` gives a level more where that lands on a half (50 of maxval 100 is
    127.5: 128, not 127): some values of 12,752 (maxval, output range) pairs of 1..65534."""
    import io

    import numpy as np
    from PIL import Image

    from medimg.sources import Blob, ImageItem, open_input

    for maxval, mode in ((100, 5), (58, 6), (1000, 5), (1000, 6)):
        bands = 1 if mode == 5 else 3
        values = np.resize(np.arange(maxval + 1), 64 * 64 * bands).astype(">u2" if maxval > 255 else "u1")
        data = b"P%d\n64 64\n%d\n" % (mode, maxval) + values.tobytes()
        (item,) = open_input(Blob("odd.pnm", data))
        assert isinstance(item, ImageItem), item
        with Image.open(io.BytesIO(data)) as im:  # Pillow's own decoder
            want = np.asarray(im).astype(int)
        got = np.asarray(item.image).astype(int)
        assert got.shape == want.shape and np.array_equal(got, want), (maxval, mode, np.abs(got - want).max())


def test_imagej_stack_in_escaped_microns_is_a_microscopes(tmp_path):
    """ImageJ writes a stack's µm as `unit=\\u00B5m` (six characters: its descriptions are ASCII), which tifffile
    keeps as it is: session 47's microscope check knew `micron` and `µm` only, so such a Fiji z-stack of a few cells
    kept its percentiles (cells saturated white over grey noise) instead of a dark field."""
    import numpy as np
    import tifffile

    from medimg.sources import ImageItem, open_input
    from test_microscopy_s47 import _cells

    stack_ = np.stack([_cells(7 + z, n=2, side=400) for z in range(3)])
    path = tmp_path / "fiji.tif"
    tifffile.imwrite(path, stack_, imagej=True, resolution=(5, 5), metadata={"axes": "ZYX", "unit": "\\u00B5m"})
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["unit"] == "\\u00B5m"  # as ImageJ 1.54 writes it
    (item,) = open_input(path)
    assert isinstance(item, ImageItem) and item.locator == "z 2 of 3"
    shown = np.asarray(item.image)
    assert np.median(shown) < 10 and shown.max() > 240  # black field, white cells
