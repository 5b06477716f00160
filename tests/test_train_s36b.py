"""A stop while the corpus is decoding ends the run even when it kills a decoding process part-way through sending
a chunk's pixels: the pool's own thread waited for the rest of that message for ever, so `train` hung on SIGTERM
(seen in a full test run under load). Run in a child process, so a hang is a failed test, not a stuck suite."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from test_training_inputs import corpus

SCRIPT = textwrap.dedent("""
    import signal, sys
    from medimg import cli
    from medimg.training import dataset
    from medimg.training.dataset import scan

    def term_at_first_news(message):  # the others are sending their chunks now: 64 images of 256 px, 12.6 MB
        if message.startswith("decoded "):
            signal.raise_signal(signal.SIGTERM)

    with cli._stopped_cleanly():
        dataset.load_images(scan(sys.argv[1]), 256, None, workers=2, log=term_at_first_news)
""")


def test_a_stop_that_kills_a_decoder_mid_message_ends_the_run(tmp_path):
    root = corpus(tmp_path / "data", {"xray": {"a": 300}, "photo": {"b": 300}})
    for attempt in range(3):  # the kill lands mid-message nearly always; each run must end either way
        try:
            done = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True,
                                  timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"run {attempt + 1} still going 60 s after its stop") from None
        assert done.returncode == 143, done.stderr[-2000:]
