"""Where `medimg serve` lets Gradio and matplotlib write: private folders, made before Gradio is imported (it
reads GRADIO_TEMP_DIR at import) and removed when the server stops. Imports nothing heavy."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
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
