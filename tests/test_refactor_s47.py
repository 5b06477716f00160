"""Session 47's small refactors (review s47_refactor) where one also fixed behaviour."""

from __future__ import annotations

import numpy as np
import pydicom

from medimg.sources import Blob, ImageItem, open_input
from test_dicom_s46 import written_in


def test_a_file_without_its_preamble_whose_syntax_misnames_its_byte_order_is_read():
    """The byte-order check ran only on a file with its 128-byte preamble; one cut off before DICM (read as DICOM
    otherwise) was read byte-swapped: no image. It is now checked where the file is read, preamble or not."""
    data, values = written_in("big", False, pydicom.uid.ExplicitVRLittleEndian)
    got = list(open_input(Blob("cut.dcm", data[128:])))
    assert len(got) == 1 and isinstance(got[0], ImageItem), got
    assert "big endian: read so" in got[0].metadata.get("note", "")
    whole = list(open_input(Blob("whole.dcm", data)))[0]
    assert np.array_equal(np.asarray(got[0].image), np.asarray(whole.image))


def test_scale_on_an_out_it_cannot_write_names_out(tmp_path, tiny_model_dir, monkeypatch):
    """On a read-only --out (a real one: EROFS from the hidden list file scale keeps there) scale said only "could
    not write while reading list.txt, before any input was run": now it names --out and its path."""
    import errno
    import tempfile

    import pytest
    from PIL import Image

    pytest.importorskip("ray", reason="the scale extra (ray[data]) is not installed")
    from typer.testing import CliRunner

    from medimg.cli import app
    from medimg.scale import ray_job
    from words import flat

    real = tempfile.mkstemp

    def mkstemp(*args, **kw):
        if kw.get("prefix") == ray_job.Spill.PREFIX:
            raise OSError(errno.EROFS, "Read-only file system", str(kw.get("dir")))
        return real(*args, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    Image.new("RGB", (48, 40), (200, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["scale", str(tmp_path / "list.txt"), "--out", str(out), "--model",
                                   str(tiny_model_dir)])
    text = flat(res.output)
    assert res.exit_code == 74, text
    assert f"could not write in --out {out} while reading {tmp_path / 'list.txt'}, before any input was run" in text
