import os
import signal
from pathlib import Path

import pytest

# A shell runs a background job (`make test &`, a CI step started with `&`) with SIGINT ignored, and the CLIs the
# tests start would inherit that and never see the Ctrl-C the stop tests send them: Python's own handler here
# makes SIGINT the default again for every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "MANIFEST.csv").exists():
        pytest.skip(f"the shared corpus is not at {SHARED_DATA} (it sits beside the checkout as ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tinymodel import build

    return build(tmp_path_factory.mktemp("tinymodel"))


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir):
    from medimg.model import Classifier

    return Classifier.load(tiny_model_dir)
