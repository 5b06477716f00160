"""A newcomer's first hour (session 43): a second `make serve` on a taken port, `train` and `evaluate` given a folder
that is not there, and the README's examples as they are pasted."""
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builders import dicom_file, image_bytes, zip_bytes
from medimg.cli import app
from words import flat

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Reports after the run whether Gradio (the server's slow import) was ever loaded.
SERVE = ("import atexit, runpy, sys; atexit.register(lambda: print('gradio loaded:', 'gradio' in sys.modules, "
         "file=sys.stderr)); sys.argv = ['medimg', 'serve', *sys.argv[1:]]; runpy.run_module('medimg', "
         "run_name='__main__')")


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(cwd), "MPLCONFIGDIR": str(cwd)}
    return subprocess.run([sys.executable, "-c", SERVE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_second_serve_on_a_taken_port_says_at_once_what_to_do(tmp_path):
    """A second `make serve` said only `Address already in use`, after importing Gradio and loading the model
    (24 s on a busy machine): now it says so before either, and how to go on (stop the other, or another port)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = _serve("--port", str(port), cwd=tmp_path)
    said = " ".join(res.stderr.split())
    assert res.returncode == 3, said
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in said
    assert f"stop it, or give another port, --port {port + 1} (make serve PORT={port + 1})" in said
    assert "gradio loaded: False" in said and "Traceback" not in said


def test_serve_on_an_address_not_this_machines_says_to_give_its_own(tmp_path):
    res = _serve("--host", "192.0.2.1", "--port", "7860", cwd=tmp_path)  # TEST-NET-1: never a local address
    said = " ".join(res.stderr.split())
    assert res.returncode == 3, said
    assert "192.0.2.1 is not an address of this machine: give one of its own with --host (127.0.0.1" in said
    assert "gradio loaded: False" in said


def test_train_in_a_checkout_without_the_corpus_says_to_give_data(tmp_path, monkeypatch):
    """`medimg train` where ../shared/data is not said only `../shared/data is not a folder`: not that it is missing,
    nor that it is the default, nor what to give."""
    pytest.importorskip("torch", reason="train needs the train extra (torch)")
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")  # ../shared/data: tmp_path/shared/data, which is not there
    res = runner.invoke(app, ["train"])
    said = flat(res.output)
    assert res.exit_code == 2, said
    assert "../shared/data is not a folder (no such file or folder; it is the default --data): give your corpus, " \
           "<label>/<source>/…/<image>, with --data DIR" in said
    res = runner.invoke(app, ["train", "--data", "corpus"])
    assert res.exit_code == 2 and "corpus is not a folder (no such file or folder): give the corpus" in flat(res.output)


def test_evaluate_on_a_missing_folder_says_it_is_not_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["evaluate", "labelled/"])
    said = flat(res.output)
    assert res.exit_code == 2 and "labelled is not a folder (no such file or folder): give a folder of label folders" in said, said
    (tmp_path / "rows.csv").write_text("path,label\n")
    res = runner.invoke(app, ["evaluate", "rows.csv"])
    assert res.exit_code == 2 and "rows.csv is not a folder (a file): give a folder of label folders" in flat(res.output)


def _python_example() -> str:
    block = README.split("## Python API", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_python_example_reaches_no_private_address_and_prints_why_an_item_failed(tmp_path):
    """Pasted as it was, the example (with allow_private=True) connected to http://10.0.0.5/, some intranet's
    host, and printed `… None` for its verdict."""
    code = _python_example()
    assert not re.search(r"//(10|127|192\.168|172\.(1[6-9]|2\d|3[01]))\.\d", code), "a private address to fetch"
    urls = re.findall(r'"(https?://[^"]+)"', code)
    assert urls and all(re.match(r"https?://([\w-]+\.)*example(\.org)?/", u) for u in urls), urls  # RFC 2606
    pymupdf = pytest.importorskip("pymupdf")
    with socket.socket() as s:  # a port with nothing on it: every fetch fails at once, on this machine
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for url in urls:
        code = code.replace(url, f"{closed}/{url.split('//', 1)[1]}")
    (tmp_path / "scans").mkdir()
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "scans" / "a.dcm")
    shutil.copy(dicom_file("MR_small.dcm"), tmp_path / "scans" / "b.dcm")
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "scan.dcm")
    for name, fmt in (("photo.png", "PNG"), ("a.png", "PNG"), ("b.jpg", "JPEG")):
        (tmp_path / name).write_bytes(image_bytes(fmt, size=(200, 150)))
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 272, 222), stream=image_bytes("PNG", size=(200, 150)))
    doc.save(tmp_path / "paper.pdf")
    (tmp_path / "scans.zip").write_bytes(zip_bytes([("in/a.png", image_bytes("PNG", size=(80, 80)))]))
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    pacs = [line for line in res.stdout.splitlines() if line.startswith(f"{closed}/pacs.example/")]
    assert len(pacs) == 1 and not pacs[0].endswith(" None") and "refused" in pacs[0], res.stdout
    assert "scan.dcm medical" in res.stdout and "scans.zip:in/a.png" in res.stdout


def _command_lines() -> list[str]:
    block = README.split("## Command line", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].split() for line in block.splitlines() if line.strip()]


def test_the_readme_command_lines_can_be_run_in_turn():
    """The second `scale` line wrote to the first one's `--out results/`, which it then refused (not empty), and
    the `train` line shipped into src/medimg/model/assets, replacing the model of the checkout it was pasted in."""
    lines = _command_lines()
    outs = {}
    for words in lines:
        if words[1] == "scale" and "--resume" not in words:
            out = words[words.index("--out") + 1].rstrip("/")
            assert out not in outs, f"{out} is written by two scale lines"
            outs[out] = words
    assert len(outs) == 2
    train = [words for words in lines if words[1] == "train"]
    assert train and all("src/medimg/model/assets" not in " ".join(words) for words in train), train


@pytest.mark.skipif(not shutil.which("make"), reason="make is not installed")
def test_make_keeps_a_venv_made_beforehand(tmp_path):
    """The README says to put the CPU torch in a venv first and then run `make test`: the Makefile keeps a venv
    whose Python has pip, rather than making it again."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (tmp_path / ".venv" / "kept").write_text("")
    res = subprocess.run(["make", "--no-print-directory", ".venv/.made"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / ".venv" / "kept").exists() and (tmp_path / ".venv" / ".made").exists()
    assert "rm -rf" not in res.stderr + res.stdout
