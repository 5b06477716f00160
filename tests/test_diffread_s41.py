"""Session 41's change read as a whole: a Context's cancel may still be set by a caller, and names that microscopes
share with far commoner files (an e-mail's calendar invite) are not taken for unread microscopy."""

from __future__ import annotations

import threading

import pytest

from medimg.sources import Blob, ItemError, Limits, open_input
from medimg.sources.base import AnyOf, Context, reading_unit

INVITE = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Cal//EN\r\nBEGIN:VEVENT\r\nSUMMARY:Ward round\r\n"
          b"DTSTART:20260101T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_a_context_s_cancel_can_be_set_and_still_takes_the_unit_being_read():
    ctx, run, unit = Context(Limits()), threading.Event(), threading.Event()
    ctx.cancel = run  # was AttributeError: the property had no setter
    assert ctx.cancel is run and ctx.run_cancel is run
    with reading_unit(unit):
        taken = ctx.cancel
        assert isinstance(taken, AnyOf) and not taken.is_set()
        unit.set()
        assert taken.is_set()
    assert ctx.cancel is run and not run.is_set()  # off the unit's thread: the run's alone


def test_an_unread_microscope_name_shared_by_common_files_is_not_an_error(tmp_path):
    (tmp_path / "invite.ics").write_bytes(INVITE)
    (tmp_path / "state.ser").write_bytes(b"\xac\xed\x00\x05sr\x00\x10java.util.Date")
    (tmp_path / "roads.sld").write_bytes(b'<?xml version="1.0"?>\n<StyledLayerDescriptor version="1.0.0"/>\n')
    (tmp_path / "cells.ics").write_bytes(b"\t\nics_version\t1.0\nfilename\tcells\nlayout\tparameters\t3\n")
    found = {i.origin.rsplit("/", 1)[-1]: i for i in open_input(str(tmp_path))}
    for name in ("invite.ics", "state.ser", "roads.sld"):  # were errors: "… a microscopy format medimg does not read"
        assert isinstance(found[name], ItemError) and found[name].skipped, (name, found[name].error)
    assert not found["cells.ics"].skipped and "Image Cytometry Standard" in found["cells.ics"].error


@pytest.mark.parametrize("name", ["invite.ics"])
def test_a_calendar_given_alone_is_not_called_a_microscopy_file(name):
    [item] = open_input(Blob(name, INVITE, name=name), Limits())
    assert isinstance(item, ItemError) and "microscopy" not in item.error and "unrecognised content" in item.error


@pytest.mark.parametrize("planar", ["contig", "separate"])  # Pillow's reading (read again when dim), tifffile's
def test_a_dark_16_bit_photo_is_shown_as_stored_not_brightened(planar):
    tifffile = pytest.importorskip("tifffile")
    import io

    import numpy as np

    from medimg.sources import ImageItem

    rng = np.random.default_rng(0)
    dark = (rng.random((60, 80, 3)) * 0.3 * 65535).astype(np.uint16)  # its brightest at 30 % of white: 15 bits
    buf = io.BytesIO()
    tifffile.imwrite(buf, dark if planar == "contig" else np.moveaxis(dark, -1, 0), photometric="rgb",
                     planarconfig=planar, metadata=None)
    [item] = open_input(Blob("dark.tif", buf.getvalue(), name="dark.tif"), Limits())
    assert isinstance(item, ImageItem)
    shown = np.asarray(item.image.convert("RGB")).astype(int)
    assert np.abs(shown - (dark >> 8)).max() <= 1  # was doubled: read as a 15-bit camera's
