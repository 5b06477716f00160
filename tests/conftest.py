import os
import re
import signal
from pathlib import Path

import pytest

# A shell runs a background job (`make test &`, a CI step started with `&`) with SIGINT ignored, and the CLIs the
# tests start would inherit that and never see the Ctrl-C the stop tests send them: Python's own handler here
# makes SIGINT the default again for every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# A test that measures time, or waits a set time, fails when a busy shared machine stalls this process for a
# second (CI failed three times so: 1.3 s for work that takes 0.3 s). Such a test, found by its module's use of a
# clock, is run again up to twice, and the report counts every rerun; any other test runs once.
_CLOCK = re.compile(r"perf_counter|monotonic|time\.time\(|\.sleep\(")
_clocked: dict[str, bool] = {}


def _uses_a_clock(path: Path) -> bool:
    if str(path) not in _clocked:
        _clocked[str(path)] = bool(_CLOCK.search(path.read_text(encoding="utf-8", errors="replace")))
    return _clocked[str(path)]


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("flaky") is None and _uses_a_clock(Path(str(item.fspath))):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))


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
