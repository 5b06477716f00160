"""medimg: find every image in files, PDFs and web pages and say whether it is a medical image."""

import os

__version__ = "0.1.0"

# onnxruntime's telemetry (an event queue in ~/.cache/Microsoft, sent to Microsoft's collector) stays off: a
# hospital's server, or one started with --offline, must make no call of its own. Read when onnxruntime loads,
# so set before anything imports it. If onnxruntime was loaded first, model.classifier.runtime() stops its
# later events, but its start-up event is already queued.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
