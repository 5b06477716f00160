"""medimg used inside another program: forked children, the program's warning filters, its own PyMuPDF, and what
the library leaves alone (root logger, signal handlers, stdout). Each check runs in a fresh Python process."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def make_pdf(path: Path, pages: int) -> Path:
    """A PDF of `pages` pages, each with 4 photo-like JPEGs (noise: nothing for a decoder to skip). Made here, not in
    the process under test, which must not import pymupdf before medimg does."""
    import io

    import numpy as np
    import pymupdf
    from PIL import Image

    rng = np.random.default_rng(0)
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page()
        for k in range(4):
            b = io.BytesIO()
            Image.fromarray((rng.random((150, 200, 3)) * 255).astype("uint8")).save(b, "JPEG")
            page.insert_image(pymupdf.Rect(50, 50 + 180 * k, 250, 200 + 180 * k), stream=b.getvalue())
    doc.save(path)
    return path


def _run(code: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_pdfs_are_read_reads_pdfs(tmp_path):
    """A 'fork' pool started while other threads read PDFs: the child inherited MuPDF's lock held by a thread
    it does not have, and its PDFs waited forever (3 of 6 pool rounds hung in a busy service)."""
    make_pdf(tmp_path / "big.pdf", 30)
    make_pdf(tmp_path / "small.pdf", 1)
    out = _run("""
            import os, threading, time
            from medimg import open_input
            # read once first: a fork while a thread is inside an import leaves the child waiting on that import's
            # lock, in any program (Python's own hazard, not medimg's)
            assert sum(1 for _ in open_input("big.pdf")) == 120
            stop = threading.Event()
            def busy():
                while not stop.is_set():
                    for _ in open_input("big.pdf"):
                        pass
            for _ in range(2):
                threading.Thread(target=busy, daemon=True).start()
            time.sleep(0.3)
            hung = 0
            for _ in range(6):
                pid = os.fork()
                if pid == 0:
                    n = sum(1 for _ in open_input("small.pdf"))
                    os._exit(0 if n == 4 else 3)
                end = time.monotonic() + 10
                while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < end:
                    time.sleep(0.05)
                if done == (0, 0):
                    hung += 1
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                else:
                    assert os.waitstatus_to_exitcode(done[1]) == 0, done
            stop.set()
            print("hung", hung)
    """, tmp_path, timeout=200)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["hung", "0"]



@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_a_thread_loads_a_model_can_classify(tmp_path):
    """The lock that loads a shipped model once per process, held by a parent's thread at the fork, was never let
    go in the child: its classify waited forever (3 of 3)."""
    from PIL import Image

    Image.new("RGB", (64, 48), "white").save(tmp_path / "a.png")
    out = _run("""
        import os, threading, time
        import medimg
        assert list(medimg.classify(["a.png"]))[0].ok  # the imports done (see the test above)
        th = threading.Thread(target=lambda: list(medimg.classify(["a.png"], classifier="fast")))
        th.start()
        time.sleep(0.02)  # while "fast" loads
        pid = os.fork()
        if pid == 0:
            recs = list(medimg.classify(["a.png"], classifier="fast"))
            os._exit(0 if recs and recs[0].ok else 3)
        th.join()
        end = time.monotonic() + 20
        while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < end:
            time.sleep(0.05)
        if done == (0, 0):
            os.kill(pid, 9)
        print("child", "hung" if done == (0, 0) else os.waitstatus_to_exitcode(done[1]))
    """, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["child", "0"]

def test_the_programs_warning_filters_are_kept_while_pdfs_are_read(tmp_path):
    """A JPEG in a PDF was opened under warnings.catch_warnings on a reading thread: on leaving, it put back the
    whole process's filters as they were, so a filter the program added meanwhile was lost (61 of 7,980)."""
    make_pdf(tmp_path / "jpegs.pdf", 30)
    out = _run("""
        import sys, threading, time, warnings
        from medimg import open_input
        sys.setswitchinterval(1e-5)  # threads take turns often: the race shows in every run, not in some
        # read once first: the first read imports the sources, and nibabel's import uses catch_warnings itself
        assert sum(1 for _ in open_input("jpegs.pdf")) == 120
        done = threading.Event()
        def read():
            for _ in range(3):
                for _ in open_input("jpegs.pdf"):
                    pass
            done.set()
        for _ in range(2):
            threading.Thread(target=read, daemon=True).start()
        n = 0
        while not done.is_set():
            warnings.filterwarnings("ignore", message=f"program-{n}")
            n += 1
            time.sleep(0.0002)
        kept = sum(1 for f in warnings.filters if f[1] is not None and f[1].pattern.startswith("program-"))
        print(n, kept)
    """, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    added, kept = map(int, out.stdout.split())
    assert added > 100 and kept == added


@pytest.mark.skipif(importlib.util.find_spec("pymupdf.layout") is None, reason="pymupdf_layout is not installed")
def test_the_program_can_import_pymupdf_layout_after_medimg_read_a_pdf(tmp_path):
    """medimg kept PyMuPDF's layout package out of its own import by a None in sys.modules, and left it there: the
    program's `import pymupdf.layout` (pymupdf4llm's) then failed, and pymupdf4llm went without layout, unsaid."""
    make_pdf(tmp_path / "one.pdf", 1)
    out = _run("""
        import sys
        from medimg import open_input
        assert sum(1 for _ in open_input("one.pdf")) == 4
        print("layout loaded by medimg:", "pymupdf.layout" in sys.modules)
        import pymupdf.layout
        print("imported", pymupdf.layout.__name__)
    """, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "layout loaded by medimg: False" in out.stdout  # still not loaded by medimg itself
    assert "imported pymupdf.layout" in out.stdout


def test_using_medimg_leaves_the_programs_logging_signals_and_output_alone(tmp_path):
    """A guard: importing medimg and classifying adds no root handler, changes no signal handler and writes
    nothing on stdout or stderr (file descriptors 1 and 2 included)."""
    make_pdf(tmp_path / "one.pdf", 1)
    out = _run("""
        import logging, os, signal, sys, tempfile
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD)
        before = [signal.getsignal(s) for s in sigs], list(logging.getLogger().handlers), logging.getLogger().level
        from PIL import Image
        Image.new("RGB", (64, 48), "white").save("a.png")
        keep = os.dup(1), os.dup(2)
        with tempfile.TemporaryFile() as f:
            os.dup2(f.fileno(), 1); os.dup2(f.fileno(), 2)
            import medimg
            recs = list(medimg.classify(["one.pdf", "a.png", "missing.png"]))
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(keep[0], 1); os.dup2(keep[1], 2)
            f.seek(0)
            written = f.read()
        after = [signal.getsignal(s) for s in sigs], list(logging.getLogger().handlers), logging.getLogger().level
        print(len(recs), before == after, repr(written))
    """, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["6", "True", "b''"]
