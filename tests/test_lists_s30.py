"""Lists of names separated by NULs (find -print0), archive members given as the rows name them
(`a.zip:x/1.png`), and `scale` doing a file given alone and in a folder once."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import medimg
from builders import animated_gif, encode, image_bytes, pattern, tgz_bytes, zip_bytes
from medimg.cli import app
from medimg.lists import open_list
from medimg.sources import Limits, open_input
from words import flat

runner = CliRunner()


def _png(seed: int) -> bytes:
    return encode(pattern(seed=seed), "PNG")


def _inputs(out: Path) -> list[str]:
    return [json.loads(line)["input"] for line in out.read_text().splitlines()]


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _classify(tiny_model_dir, *args, **kw):
    return runner.invoke(app, ["classify", *args, "--model", str(tiny_model_dir)], **kw)


# ---------------------------------------------------------------- NUL-separated lists


def _odd_names(tmp_path: Path) -> list[str]:
    """Two images whose names hold a newline, a leading # and spaces: as find -print0 lists them."""
    folder = tmp_path / "we\nird"
    folder.mkdir()
    names = [folder / "a.png", tmp_path / "#b c.png"]
    for i, p in enumerate(names):
        p.write_bytes(_png(i))
    return [str(p) for p in names]


def test_null_reads_names_with_newlines_in_classify_extract_and_from_standard_input(tmp_path, tiny_model_dir):
    names = _odd_names(tmp_path)
    listing = tmp_path / "list0"
    listing.write_bytes(b"".join(n.encode() + b"\0" for n in names))
    out = tmp_path / "a.jsonl"
    r = _classify(tiny_model_dir, "--null", "--inputs-from", str(listing), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert _inputs(out) == names
    r = _classify(tiny_model_dir, "-0", "--inputs-from", "-", "--out", str(out), input=listing.read_bytes())
    assert r.exit_code == 0, r.output
    assert _inputs(out) == names
    r = runner.invoke(app, ["extract", "-0", "--inputs-from", str(listing), "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "x" / "manifest.jsonl").read_text().splitlines()]
    assert [row["source"] for row in rows] == names and all(row.get("file") for row in rows)
    r = _classify(tiny_model_dir, "--null", names[1])  # --null says how a list is read: none is given
    assert r.exit_code == 2 and "--inputs-from" in flat(r.output)


def test_a_text_list_holding_nul_bytes_is_refused_with_a_hint_to_null(tmp_path, tiny_model_dir):
    names = _odd_names(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"".join(n.encode() + b"\0" for n in names))
    r = _classify(tiny_model_dir, "--inputs-from", str(listing), "--format", "jsonl")
    assert r.exit_code == 2 and "--null" in flat(r.output) and "{" not in r.stdout  # before any row
    proc = subprocess.run([sys.executable, "-m", "medimg", "classify", "--inputs-from", "-", "--model",
                           str(tiny_model_dir), "--format", "jsonl"], input=listing.read_bytes(), capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(Path(medimg.__file__).parents[1])}, timeout=120)
    assert proc.returncode == 2 and "--null" in flat(proc.stderr.decode()) and not proc.stdout  # a pipe, looked into
    (tmp_path / "x.png").write_bytes(image_bytes())
    later = tmp_path / "later.txt"
    later.write_bytes(b"%s\n" % str(tmp_path / "x.png").encode() * 5000 + b"y.png\0z.png\0")  # past the first look
    r = _classify(tiny_model_dir, "--inputs-from", str(later), "--format", "jsonl")
    assert r.exit_code == 1 and "line 5001" in flat(r.output) and "--null" in flat(r.output)
    assert len(_rows(r.stdout)) == 1  # what came before it is done (once)


def test_open_list_null_across_chunks_with_empty_and_undecodable_names(tmp_path, monkeypatch, caplog):
    import medimg.lists as lists

    monkeypatch.setattr(lists, "CHUNK", 3, raising=False)  # every name split over reads
    listing = tmp_path / "list.csv"  # read as names whatever the extension
    listing.write_bytes(b"long name\n1.png\0\0b\xe9.png\0 https://example.org/a.png \0last")
    assert list(open_list(str(listing), null=True)) == ["long name\n1.png", "b\udce9.png", "https://example.org/a.png",
                                                        "last"]
    with pytest.raises(ValueError, match="--column is for tables"):
        open_list(str(listing), "url", null=True)
    monkeypatch.undo()
    lines = tmp_path / "lines.txt"
    lines.write_text("a.png\nb.png\n")  # --null given for a list of lines: one odd entry, and a warning
    with caplog.at_level(logging.WARNING, logger="medimg.lists"):
        assert list(open_list(str(lines), null=True)) == ["a.png\nb.png\n"]
    assert "without it, one per line" in caplog.text


def test_scale_reads_a_null_list_and_refuses_nul_bytes_in_a_text_list(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="needs the scale extra (ray)")
    import medimg.scale.ray_job as job

    names = _odd_names(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"".join(n.encode() + b"\0" for n in names))
    given = []

    def run(inputs, out, plan=None, **kw):  # the job as the command calls it, without Ray
        given.extend(inputs)
        plan.update(run=len(given), passed_over=0, images=len(given), errors=0, skipped=0)
        return len(given)

    monkeypatch.setattr(job, "run", run)
    r = runner.invoke(app, ["scale", str(listing), "--out", str(tmp_path / "o1")])
    assert r.exit_code == 2 and "--null" in flat(r.output) and not given
    r = runner.invoke(app, ["scale", str(listing), "-0", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
    assert given == names


# ---------------------------------------------------------------- archive members as inputs


def _archives(tmp_path: Path) -> dict[str, Path]:
    inner = zip_bytes({"c.png": _png(3), "d.png": _png(4)})
    z = tmp_path / "set.zip"
    z.write_bytes(zip_bytes({"x/1.png": _png(1), "x/2.png": _png(2), "in.zip": inner}))
    t = tmp_path / "set.tgz"
    t.write_bytes(tgz_bytes([("s/1.png", _png(5)), ("s/in.zip", inner), ("s/2.png", _png(6))]))
    return {"zip": z, "tar": t}


def test_an_archive_member_named_as_its_rows_name_it_is_an_input_of_its_own(tmp_path, tiny_model_dir):
    a = _archives(tmp_path)
    out = tmp_path / "all.jsonl"
    assert _classify(tiny_model_dir, str(a["zip"]), str(a["tar"]), "--out", str(out)).exit_code == 0
    whole = _inputs(out)
    assert f"{a['zip']}:x/2.png" in whole and f"{a['tar']}:s/in.zip:c.png" in whole  # how the rows name them
    wanted = [f"{a['zip']}:x/2.png", f"{a['zip']}:in.zip:d.png", f"{a['tar']}:s/2.png", f"{a['tar']}:s/in.zip:c.png"]
    r = _classify(tiny_model_dir, *wanted, "--out", str(out), "--full")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["input"], row["source"], row["error"]) for row in rows] == [(w, w, None) for w in wanted]
    r = runner.invoke(app, ["extract", wanted[3], "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "x" / "manifest.jsonl").read_text().splitlines()]
    assert [(row["input"], row["file"]) for row in rows] == [(wanted[3], "000001.png")]


def test_a_member_not_in_the_archive_or_a_file_that_is_none_is_a_clear_error(tmp_path, tiny_model_dir):
    a = _archives(tmp_path)
    (tmp_path / "plain.png").write_bytes(image_bytes())
    missing = [f"{a['zip']}:x/3.png", f"{a['tar']}:s/in.zip:zz.png", f"{tmp_path / 'plain.png'}:x.png"]
    out = tmp_path / "r.jsonl"
    r = _classify(tiny_model_dir, *missing, "--out", str(out))
    assert r.exit_code == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["input"] for row in rows] == missing
    assert "no member 'x/3.png' in" in rows[0]["error"] and "no member 's/in.zip:zz.png'" in rows[1]["error"]
    assert "not an archive" in rows[2]["error"]
    items = list(open_input(str(tmp_path / "nothing.zip:x.png")))  # neither file there: as before
    assert [(i.origin, i.error) for i in items] == [(str(tmp_path / "nothing.zip:x.png"), "file not found")]


def test_a_real_file_whose_name_holds_a_colon_is_that_file(tmp_path, tiny_model_dir):
    a = _archives(tmp_path)
    real = Path(f"{a['zip']}:x/2.png")  # a file of that very name (a folder "set.zip:x" holding 2.png)
    real.parent.mkdir()
    real.write_bytes(image_bytes(size=(30, 20)))
    items = list(open_input(str(real)))
    assert [(i.origin, i.image.size) for i in items] == [(str(real), (30, 20))]


def test_a_member_input_keeps_the_archives_caps(tmp_path):
    gif = tmp_path / "g.zip"
    gif.write_bytes(zip_bytes({"anim.gif": animated_gif(frames=3)}))
    items = list(open_input(f"{gif}:anim.gif", Limits(all_frames=True, max_images_per_input=1)))
    assert [getattr(i, "error", None) is not None for i in items] == [False, True]
    assert "max_images_per_input" in items[1].error
    big = tmp_path / "big.zip"  # the first member takes the archive's whole budget: the second is never read
    big.write_bytes(zip_bytes({"a.bin": bytes(300_000), "b.png": image_bytes()}))
    limits = Limits(zip_max_bytes=200_000)
    whole = list(open_input(str(big), limits))
    assert not any(i.origin.endswith("b.png") for i in whole)
    items = list(open_input(f"{big}:b.png", limits))
    assert len(items) == 1 and items[0].origin == f"{big}:b.png" and "caps stop" in items[0].error


def test_an_archive_and_its_member_both_given_are_done_once(tmp_path, tiny_model_dir):
    a = _archives(tmp_path)
    member = f"{a['zip']}:x/2.png"
    out = tmp_path / "r.jsonl"
    for given in ([str(a["zip"]), member], [member, str(a["zip"])]):
        assert _classify(tiny_model_dir, *given, "--out", str(out)).exit_code == 0
        got = _inputs(out)
        assert sorted(got) == sorted(set(got)) and member in got and len(got) == 4, got


def test_a_member_given_after_its_folder_or_archive_in_the_archive_is_done_once(tmp_path, tiny_model_dir):
    """`a.zip:x/` then `a.zip:x/1.png` did that member twice (the other order once); so did a nested archive
    given whole and then one of its members. `scale` finds such entries the same way."""
    from medimg.keyset import KeySet
    from medimg.lists import entry_key, inside_given

    a = _archives(tmp_path)
    z = str(a["zip"])
    out = tmp_path / "r.jsonl"
    for given, want in (([f"{z}:x/", f"{z}:x/1.png"], 2), ([f"{z}:x", f"{z}:x/1.png"], 2),
                        ([f"{z}:in.zip", f"{z}:in.zip:c.png"], 2), ([f"{z}:x/", f"{z}:in.zip:c.png"], 3)):
        for order in (given, given[::-1]):
            r = _classify(tiny_model_dir, *order, "--out", str(out))
            assert r.exit_code == 0, r.output
            got = _inputs(out)
            assert len(got) == want and sorted(got) == sorted(set(got)), (order, got)
        seen = KeySet()
        seen.add_new([entry_key(e) for e in given])
        assert inside_given(given, seen) == [False, want == 2], given


# ---------------------------------------------------------------- scale: a file alone and in a folder


def test_scale_spills_a_file_given_alone_and_in_a_folder_once(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="needs the scale extra (ray)")
    from medimg.keyset import KeySet
    from medimg.scale.ray_job import Spill, read_entries, spill_new

    monkeypatch.chdir(tmp_path)
    for name in ("scans/ct/b.png", "scans/a.png", "c.png", "set.zip"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"x")
    given = ["scans/a.png", "c.png", "./scans/", "scans/ct", "https://x.org/scans/a.png", "scans/ct/b.png",
             "set.zip:m.png", "set.zip", "gone/x.png", "gone", "c.png/x"]
    out = tmp_path / "out"
    out.mkdir()
    spill = Spill(out, 2)
    assert spill_new(spill, given, KeySet()) == 7  # what is done inside another counts as given twice
    got = [e for p in spill.places() for e in read_entries(str(spill.path), p["start"], p["size"])]
    # the folder does its files (whichever came first), the archive its member; a name that is no folder
    # on disk holds nothing
    assert got == ["c.png", "./scans/", "https://x.org/scans/a.png", "set.zip", "gone/x.png", "gone", "c.png/x"]
    spill.remove()
    assert not list(out.iterdir())


def test_scale_classifies_a_file_given_alone_and_in_its_folder_once(tmp_path, tiny_model_dir):
    ray = pytest.importorskip("ray", reason="needs the scale extra (ray)")
    from medimg.scale.ray_job import run

    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3):
        (scans / f"{i}.png").write_bytes(_png(i))
    z = tmp_path / "set.zip"
    z.write_bytes(zip_bytes({"m.png": _png(7)}))
    given = [str(scans / "1.png"), str(scans), str(scans / "2.png"), f"{z}:m.png"]
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        plan: dict = {}
        n = run(given, out, model_dir=str(tiny_model_dir), concurrency=1, inputs_per_batch=1, plan=plan)
    finally:
        ray.shutdown()
    rows = [json.loads(line) for f in sorted(out.glob("*.json")) for line in f.read_text().splitlines()]
    assert n == 4 and sorted(r["input"] for r in rows) == sorted([str(scans / f"{i}.png") for i in range(3)]
                                                                 + [f"{z}:m.png"])
    assert all(r["source"] == (str(scans) if r["input"].startswith(str(scans)) else f"{z}:m.png") for r in rows)
    assert plan["run"] == 2 and plan["passed_over"] == 0


def test_entry_keys_of_paths_are_pathlibs_however_spelled(tmp_path, monkeypatch):
    """entry_key spells a path as str(Path.cwd() / entry) does, without pathlib for the plain names that make
    up most of a list (scale's driver keys every entry, and `inside_given` every one again)."""
    import random

    from medimg.lists import entry_key

    parts = ["/", ".", "a", "..", "b c", "\\", ":", "\udce9", "#"]
    pick = random.Random(30)
    for cwd in (Path("/"), tmp_path):
        monkeypatch.chdir(cwd)
        for _ in range(20000):
            name = "".join(pick.choice(parts) for _ in range(pick.randrange(1, 9)))
            assert entry_key(name) == str(Path.cwd() / name), name


def test_a_utf16_list_as_windows_powershell_writes_it_is_read(tmp_path, monkeypatch):
    """`dir -Name > list.txt` in Windows PowerShell 5 writes UTF-16 with a byte-order mark: a NUL after every
    ASCII byte. It is read as UTF-16 (names and a CSV column alike), not refused as a NUL-separated list."""
    monkeypatch.chdir(tmp_path)
    names = ["scan 1.png", "ré sumé.png", "c.png"]
    (tmp_path / "list.txt").write_bytes("\r\n".join(names).encode("utf-16"))
    assert list(open_list("list.txt")) == names
    (tmp_path / "list.csv").write_bytes(("path,label\r\n" + "".join(f"{n},x\r\n" for n in names)).encode("utf-16"))
    assert list(open_list("list.csv")) == names
    (tmp_path / "be.txt").write_bytes(b"\xfe\xff" + "\n".join(names).encode("utf-16-be"))
    assert list(open_list("be.txt")) == names


def test_a_lone_surrogate_in_a_utf16_list_is_that_entry_alone(tmp_path, monkeypatch):
    """Windows allows a lone surrogate in a name. The list stopped there, losing the entries in the chunk
    before it too; now that name becomes U+FFFD (not found) and every other entry is read, in a table too."""
    monkeypatch.chdir(tmp_path)
    bad = b"\x00\xd8"  # a high surrogate with no low one after it, little-endian
    head, tail = "\ufeffa.png\r\nb.png\r\n".encode("utf-16-le"), "x.png\r\nc.png\r\n".encode("utf-16-le")
    (tmp_path / "list.txt").write_bytes(head + bad + tail)
    assert list(open_list("list.txt")) == ["a.png", "b.png", "\ufffdx.png", "c.png"]
    (tmp_path / "list.csv").write_bytes("\ufeffpath\r\na.png\r\n".encode("utf-16-le") + bad + tail)
    assert list(open_list("list.csv")) == ["a.png", "\ufffdx.png", "c.png"]


def test_a_utf16_list_on_standard_input_is_read(tmp_path):
    names = ["a.png", "b.png"]
    code = ("import sys; from medimg.lists import open_list; print('|'.join(open_list('-')))")
    out = subprocess.run([sys.executable, "-c", code], input="\n".join(names).encode("utf-16"),
                         capture_output=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "a.png|b.png"


def test_the_root_folder_in_a_list_is_not_inside_itself(tmp_path, monkeypatch):
    """`/` (or `.` run from `/`) is its own parent: `scale`'s pass that drops files inside a folder of the list
    dropped the root itself and every path under it, so a list holding `/` ran nothing."""
    from medimg.keyset import KeySet
    from medimg.lists import entry_key, inside_given

    entries = ["/", "/etc/hostname", str(tmp_path)]
    seen = KeySet()
    seen.add_new([entry_key(e) for e in entries])
    assert inside_given(entries, seen) == [False, True, True]
    monkeypatch.chdir("/")
    seen = KeySet()
    seen.add_new([entry_key(e) for e in [".", "etc/hostname"]])
    assert inside_given([".", "etc/hostname"], seen) == [False, True]
