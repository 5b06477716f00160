"""Where `medimg serve` lets Gradio and matplotlib write: private folders, made before Gradio is imported (it
reads GRADIO_TEMP_DIR at import) and removed when the server stops. Imports nothing heavy."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


def server_scratch() -> list[Path]:
    """Private folders for what Gradio and matplotlib write (uploads; a font cache when HOME is not writable),
    unless GRADIO_TEMP_DIR or MPLCONFIGDIR say where; the server removes them when it stops."""
    made = []
    if not os.environ.get("GRADIO_TEMP_DIR"):
        made.append(Path(tempfile.mkdtemp(prefix="medimg-uploads-")))
        os.environ["GRADIO_TEMP_DIR"] = str(made[-1])
    if not os.environ.get("MPLCONFIGDIR") and not os.access(os.path.expanduser("~"), os.W_OK):
        made.append(Path(tempfile.mkdtemp(prefix="medimg-matplotlib-")))
        os.environ["MPLCONFIGDIR"] = str(made[-1])
    for folder in made:
        atexit.register(shutil.rmtree, folder, True)
    return made


@contextmanager
def exit_on_sigterm():
    """SIGTERM ends the process through SystemExit (code 143), so that atexit removes the folders made so far:
    its default action would leave them, and uvicorn takes the signal over only once it serves (it then
    stops, and raises the signal again, which ends here the same way)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(signum, frame) -> None:
    raise SystemExit(128 + signum)
