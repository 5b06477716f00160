"""What the API and the UI share: one classifier, the inputs they hand the pipeline, time limits."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable, Iterable

from ..model import Classifier
from ..pipeline import Record, classify, default_classifier
from ..sources import Blob, Limits
from .config import ServerConfig


class Worker:
    """Runs the pipeline for one request at a time per call; the ONNX session is shared."""

    def __init__(self, config: ServerConfig, classifier: Classifier | None = None):
        self.config = config
        self.classifier = classifier or (Classifier.load(config.model_dir) if config.model_dir
                                         else default_classifier())

    def model_info(self) -> dict:
        return self.classifier.info()

    def run(self, inputs: Iterable[str | Blob], limits: Limits | None = None, threshold: float | None = None,
            thumbnails: int = 0, on_record: Callable[[Record], None] | None = None,
            stop: threading.Event | None = None) -> list[Record]:
        """Every record for `inputs`; stops with a clear error record when the time limit is reached, and
        quietly once `stop` is set (both seen between records). No download or video read may take longer
        than the whole request may."""
        limit = self.config.request_timeout
        deadline = time.monotonic() + limit
        limits = limits or self.config.limits()
        limits = replace(limits, total_timeout=min(limits.total_timeout, limit),
                         video_timeout=min(limits.video_timeout, limit))
        records: list[Record] = []
        stream = classify(inputs, classifier=self.classifier, limits=limits, threshold=threshold,
                          thumbnails=thumbnails, cancel=stop)
        try:
            for rec in stream:
                records.append(rec)
                if on_record:
                    on_record(rec)
                if stop is not None and stop.is_set():
                    break
                if time.monotonic() > deadline:
                    n = sum(r.ok for r in records)
                    records.append(Record(input="", locator="", error=(
                        f"stopped: the time limit of {limit:g} s per request was reached after {n} images")))
                    break
        finally:
            stream.close()
        return records
