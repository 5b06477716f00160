"""What the API and the UI share: one classifier, the inputs they hand the pipeline, time limits."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from ..model import Classifier
from ..pipeline import Record, classify, default_classifier
from ..sources import Blob, Limits
from ..sources.registry import DATA_FILE_NOTE
from .config import ServerConfig

# how sources.net says private addresses may be allowed (the CLI's and Python's spelling), and how the server says it
PRIVATE_HINT = "(private addresses are blocked unless allowed: --allow-private, or Limits(allow_private=True))"
SERVER_PRIVATE_HINT = ("(this server does not fetch private addresses; its operator can allow them by starting it "
                       "with medimg serve --allow-private)")
# the CLI's option that the web notes name (a page that runs scripts, stylesheets not read), and the server's ways to it
RENDER_HINT = re.compile(r"(?<![^\s(])--render(?=[\s),;.]|$)")  # the word, not part of a URL or file name
SERVER_RENDER_HINT = "render=true (on the page: “Run the page's JavaScript before looking”)"
SERVER_NO_RENDER = "rendering (which this server cannot do)"
MIN_INPUT_SECONDS = 1.0  # the least time an input is given, however little the request has left
# the pipeline's input_timeout, which the server sets to what is left of the request's time limit
INPUT_TIMEOUT = re.compile(r"the input_timeout of ([0-9.e+]+) s")


@dataclass
class Outcome:
    """One request's records, and why they stop short of all there was (the time limit), if they do."""

    records: list[Record]
    note: str | None = None


def server_words(text: str, can_render: bool = True, left: bool = True) -> str:
    """An error as the server's clients should read it: what the server's operator can do, and the API's and the
    page's way to render (or that this server cannot), not the options of the command line or the Python API.
    `left`: the input_timeout was the time the request had left, not the server's own one for an input (shorter,
    under a --request-timeout over it)."""
    text = text.replace(PRIVATE_HINT, SERVER_PRIVATE_HINT)
    what = "the time this request had left" if left else "the time this server gives one input"
    text = INPUT_TIMEOUT.sub(lambda m: f"{what} ({round(float(m[1]), 1):g} s)", text)
    return RENDER_HINT.sub(SERVER_RENDER_HINT if can_render else SERVER_NO_RENDER, text)


def _for_clients(rec: Record, can_render: bool, left: bool = True) -> Record:
    if not rec.error or not (PRIVATE_HINT in rec.error or "--render" in rec.error or "input_timeout" in rec.error):
        return rec
    return replace(rec, error=server_words(rec.error, can_render, left))


class Worker:
    """Runs the pipeline for one request at a time per call; the ONNX session is shared."""

    def __init__(self, config: ServerConfig, classifier: Classifier | None = None):
        self.config = config
        self.classifier = classifier or (Classifier.load(config.model_dir) if config.model_dir
                                         else default_classifier())
        self._can_render: bool | None = None

    def model_info(self) -> dict:
        return self.classifier.info()

    @property
    def can_render(self) -> bool:
        """Whether this server can render pages (Chromium and Playwright here), as /api/health says."""
        if self._can_render is None:
            from ..sources.browser import available

            self._can_render = not self.config.offline and available() is None
        return self._can_render

    def run(self, inputs: Iterable[str | Blob], limits: Limits | None = None, threshold: float | None = None,
            thumbnails: int = 0, on_record: Callable[[Record], None] | None = None,
            stop: threading.Event | None = None, seconds: float | None = None) -> Outcome:
        """Every record for `inputs`, its errors in the server's words; stops at the time limit (or after
        `seconds`, what a request that waited for its turn has left of it) with a note that says so (seen between
        records), and quietly once `stop` is set (classify's cancel: at once, even while a download goes on). No
        download or video read may take longer than the whole request may."""
        limit = self.config.request_timeout
        budget = limit if seconds is None else min(seconds, limit)
        deadline = time.monotonic() + budget
        limits = limits or self.config.limits()
        # the input's own time limit too: a download waiting for one of its host's slots (another request's
        # downloads hold them) gives no record the deadline could be seen at, so the answer was a bare 504. Not
        # under MIN_INPUT_SECONDS: the first input is read whatever the time left (the note then says it stopped)
        cap = max(budget, MIN_INPUT_SECONDS)
        left = not limits.input_timeout or limits.input_timeout >= cap  # the input's time limit is the request's
        limits = replace(limits, total_timeout=min(limits.total_timeout, budget),
                         video_timeout=min(limits.video_timeout, budget),
                         input_timeout=min(limits.input_timeout or cap, cap))
        out = Outcome([])
        stream = classify(inputs, classifier=self.classifier, limits=limits, threshold=threshold,
                          thumbnails=thumbnails, cancel=stop)
        try:
            for rec in stream:
                rec = _for_clients(rec, self.can_render, left)
                out.records.append(rec)
                if on_record:
                    on_record(rec)
                if stop is not None and stop.is_set():
                    break
                if time.monotonic() > deadline:
                    out.note = _time_note(limit, sum(r.ok for r in out.records))
                    # closed on a thread of its own: closing waits (STOP_WAIT) for a reader still busy, and the
                    # answer is due now (the API gives it GRACE_SECONDS); the job's slot waits for it (run_threads)
                    threading.Thread(target=stream.close, name="medimg-close", daemon=True).start()
                    stream = None
                    break
        finally:
            if stream is not None:
                stream.close()
        return out


def unread_rows(inputs: list[str], begun: set, why: str, data_of: dict[str, str] | None = None) -> list[Record]:
    """A row for each of `inputs` a stopped run never came to (`why` it was not read), but for a data file whose
    header (`data_of`: a.raw → a.mhd) it did come to: that file was read with it, so it gets the note it has in a
    whole run (it was an error row, "not read", counted among the errors)."""
    rows = []
    for name in inputs:
        if name in begun:
            continue
        header = (data_of or {}).get(name)
        if header is not None and header in begun:
            rows.append(Record(input=name, locator="", error=DATA_FILE_NOTE.format(header), skipped=True,
                               source=name))
        else:
            rows.append(Record(input=name, locator="", error=why, source=name))
    return rows


def _time_note(limit: float, images: int) -> str:
    return (f"stopped: the time limit of {limit:g} s per request was reached after {images} "
            f"image{'s' * (images != 1)}; the results are those found by then")
