"""Session 43's third read of the change (outputs, volumes, listening, floors): what a user meets on realistic
inputs."""

from typer.testing import CliRunner
from PIL import Image

from medimg.cli import app


def test_a_usage_error_in_the_options_leaves_no_empty_out_file(tmp_path, tiny_model_dir):
    """classify's --out lock made the file (empty) before the limits' options were checked: a blank --user-agent
    (a usage error, exit 2) left an empty r.jsonl where none was. The options are checked first now."""
    Image.new("RGB", (40, 40), (200, 0, 0)).save(tmp_path / "a.png")
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out",
                                   str(out), "--user-agent", " "])
    assert res.exit_code == 2, res.output
    assert not out.exists()
    # the same run with a good user agent makes and writes it
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "a.png"), "--model", str(tiny_model_dir), "--out",
                                   str(out), "--user-agent", "acme/1.0"])
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8").count("\n") == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_empty_host_is_every_interface_as_the_server_takes_it():
    """`serve --host ''` listens on every interface (asyncio's create_server, under uvicorn, takes '' so); the early
    check refused it as 'Name or service not known;  is not a name or address of this machine'."""
    import socket

    from medimg.listening import cannot_listen

    port = _free_port()
    assert cannot_listen("", port) is None
    with socket.socket() as taken:  # a port in use on every IPv4 interface is still said
        taken.bind(("0.0.0.0", port))
        taken.listen()
        said = cannot_listen("", port)
    assert said and "another program has that port" in said, said


def test_the_file_system_type_is_that_of_the_out_file(tmp_path):
    """`fs_type` names the file system as findmnt does (what `NO_FLOCK` is matched against)."""
    import os
    import shutil
    import subprocess

    import pytest

    from medimg.output import fs_type

    if not os.path.exists("/proc/self/mountinfo") or not shutil.which("findmnt"):
        pytest.skip("needs Linux's /proc/self/mountinfo and findmnt")
    out = tmp_path / "r.jsonl"
    out.write_text("")
    want = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(out)], capture_output=True,
                          text=True).stdout.strip()
    fd = os.open(out, os.O_RDONLY)
    try:
        got = fs_type(fd)
    finally:
        os.close(fd)
    assert got in (want, None), (got, want)  # None: a device findmnt matches otherwise (btrfs subvolumes)


def test_an_out_on_an_smb_share_is_not_flocked(tmp_path, monkeypatch):
    """Linux's SMB client turns flock into a mandatory byte-range lock on the locking handle (no Unix extensions:
    Windows servers, most NAS): the run's own writes through its output stream, another handle, were refused
    (EACCES), so classify --out onto a mounted share wrote nothing. Such file systems are not locked; here the
    temporary folder's own type stands for cifs."""
    import os

    import pytest

    from medimg import output

    out = tmp_path / "r.jsonl"
    out.write_text("")
    fd = os.open(out, os.O_RDONLY)
    kind = output.fs_type(fd) if hasattr(output, "fs_type") else None
    os.close(fd)
    if kind is None and hasattr(output, "fs_type"):
        pytest.skip("the temporary folder's file system is not named in /proc/self/mountinfo")
    monkeypatch.setattr(output, "NO_FLOCK", (kind or "?",), raising=False)
    first = output.OutputLock(out)
    try:
        second = output.OutputLock(out)  # not refused: neither holds a lock
        assert first.fd is None and second.fd is None
        with open(out, "a", encoding="utf-8") as stream:  # the run's own writes
            stream.write("{}\n")
    finally:
        first.release()
    # elsewhere a second lock on the file is still refused
    monkeypatch.setattr(output, "NO_FLOCK", ())
    held = output.OutputLock(out)
    try:
        with pytest.raises(ValueError, match="being written by another medimg classify"):
            output.OutputLock(out)
    finally:
        held.release()
