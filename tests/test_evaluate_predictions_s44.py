"""evaluate --predictions is written beside its place and then moved there (session 44): a disk that fills while it
is written leaves last week's file as it was, and no part file behind."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from medimg import cli, output


def rows(n: int) -> list[dict]:
    return [{"item": f"ct/a/{i}.dcm", "source": "ct/a", "true": "ct", "predicted": "ct", "correct": True}
            for i in range(n)]


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_a_write_that_fails_leaves_the_earlier_file_whole(tmp_path, monkeypatch, name):
    path = tmp_path / name
    path.write_text("last week's rows\n")
    os.chmod(path, 0o640)
    written = []

    def full(value):  # the disk fills after a few rows
        written.append(value)
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return value

    monkeypatch.setattr(output, "csv_cell", full)
    monkeypatch.setattr(output, "json_line", lambda row: str(full(row)))
    with pytest.raises(OSError):
        cli._write_predictions(rows(10), path)
    assert path.read_text() == "last week's rows\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no part file left


def test_a_new_file_replaces_the_old_keeping_its_mode_and_a_link_stays_a_link(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    link = tmp_path / "p.csv"
    link.symlink_to(target)
    cli._write_predictions(rows(2), link)
    assert link.is_symlink() and target.read_text().splitlines()[0] == "item,source,true,predicted,correct"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "new.jsonl"
    cli._write_predictions(rows(1), fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~cli._umask()
    assert fresh.read_text().count("\n") == 1


def test_a_named_pipe_is_written_to_not_replaced(tmp_path):
    import threading

    fifo = tmp_path / "p.jsonl"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    cli._write_predictions(rows(2), fifo)
    reader.join(10)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and got[0].count("\n") == 2
