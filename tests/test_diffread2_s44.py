"""Session 44, second read of the session's later changes (diffread2)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from medimg.sources import open_input  # noqa: E402
from test_api import model_dir, worker  # noqa: E402, F401  (fixtures)


def test_a_member_of_a_damaged_archive_in_an_archive_says_why_it_is_not_found(tmp_path):
    """`a.zip:x/bad.zip:q.png` with bad.zip damaged said only `no member …`: the errors about bad.zip, which say
    why, were dropped with the other rows of the unit holding it. They come before that error now, once."""
    import builders as b

    path = tmp_path / "a.zip"
    path.write_bytes(b.zip_bytes({"x/bad.zip": b"PK\x03\x04" + b"\0" * 40, "y.png": b.image_bytes("PNG", (40, 40))}))
    wanted = f"{path}:x/bad.zip:q.png"
    got = [(i.origin, i.error) for i in open_input(wanted)]
    assert [o for o, _ in got] == [f"{path}:x/bad.zip"] * 2 + [wanted]
    assert "central directory" in got[0][1] and got[-1][1].startswith("no member")


def test_an_inputs_own_time_limit_under_a_longer_request_is_not_called_the_time_the_request_had_left(worker):  # noqa: F811
    """A server whose --request-timeout is over the 600 s an input may take said, of an input stopped at those
    600 s, that it took longer than "the time this request had left (600 s)". Here 1 s under a 30 s request."""
    from dataclasses import replace

    from medimg.server import ServerConfig, Worker
    from medimg.sources import net

    cfg = ServerConfig(model_dir=worker.config.model_dir, allow_private=True, request_timeout=30)
    host, cap = "127.0.0.1", cfg.limits().max_per_host
    for _ in range(cap):  # the host's slots held: the download waits past its input's time limit
        net._slots.take(host, cap, lambda: False, "http://127.0.0.1/other")
    try:
        out = Worker(cfg, worker.classifier).run(["http://127.0.0.1:9/page.html"], replace(cfg.limits(), input_timeout=1))
    finally:
        for _ in range(cap):
            net._slots.give(host)
    [rec] = out.records
    assert rec.error.startswith("not read: no thread was free to read it within the time this server gives one "
                                "input (1 s)") or "the time this server gives one input (1 s)" in rec.error, rec.error
    assert "request had left" not in rec.error and out.note is None


def test_predictions_on_a_disk_with_no_file_left_to_make_keep_the_earlier_file(tmp_path, monkeypatch):
    """--predictions is written beside its place, then moved there; when no file could be made beside it, it was
    written in place, which on a full disk (no inode, or a quota, left: ENOSPC/EDQUOT) emptied the earlier rows."""
    import errno
    import os
    import tempfile

    import pytest

    from medimg import cli

    path = tmp_path / "pred.jsonl"
    path.write_text('{"item": "last week"}\n')

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_open = open

    def no_room_to_write(file, mode="r", *args, **kwargs):  # the disk has no room for the rows either
        f = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file) == str(path):
            f.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return f

    monkeypatch.setattr(tempfile, "mkstemp", full)
    monkeypatch.setattr("builtins.open", no_room_to_write)
    with pytest.raises(OSError) as got:
        cli._write_predictions([{"item": "a.png", "true": "ct"}], path)
    monkeypatch.undo()
    assert got.value.errno == errno.ENOSPC
    assert path.read_text() == '{"item": "last week"}\n'


def test_a_key_set_looked_up_while_keys_are_added_never_loses_a_key(monkeypatch):
    """KeySet merged its runs in place: a look-up from another thread between taking two runs out and putting
    their merge back missed the keys in them (741 of 38,557 look-ups in 5 s, a thread adding keys meanwhile).
    Spellings (classify --resume's names done) is asked from the threads reading nested archives while the main
    thread adds to it. Here the look-up is made while the merge is sorted, where another thread's could be."""
    import types

    import numpy as np

    from medimg import keyset

    keys = keyset.KeySet(["a", "b", "probe"])
    during: list[bool] = []

    class Sorted(np.ndarray):
        def sort(self, *args, **kwargs):
            during.append("probe" in keys)
            super().sort(*args, **kwargs)

    numpy = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    numpy.concatenate = lambda runs: np.concatenate(runs).view(Sorted)
    monkeypatch.setattr(keyset, "np", numpy)
    for n in range(8):
        keys.add_new([f"n{n}", f"m{n}"])
    assert during and all(during), during
    assert "probe" in keys and len(keys) == 19
