"""medimg: find every image in files, PDFs and web pages and say whether it is a medical image."""

import os
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# onnxruntime's telemetry (an event queue in ~/.cache/Microsoft, sent to Microsoft's collector) stays off: a
# hospital's server, or one started with --offline, must make no call of its own. Read when onnxruntime loads,
# so set before anything imports it. If onnxruntime was loaded first, model.classifier.runtime() stops its
# later events, but its start-up event is already queued.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# the public names, importable from the package itself (`medimg.classify`), each module loaded on first use so
# that `import medimg` stays light (no model runtime, no decoders)
_PUBLIC = {
    "classify": "pipeline", "Record": "pipeline", "RECORD_FIELDS": "pipeline",
    "Classifier": "model", "Prediction": "model",
    "open_input": "sources", "open_inputs": "sources", "Blob": "sources", "Limits": "sources",
    "ImageItem": "sources", "ItemError": "sources",
}
__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # what a type checker sees (the module __getattr__ below made every public name Any to it)
    from .model import Classifier as Classifier, Prediction as Prediction
    from .pipeline import RECORD_FIELDS as RECORD_FIELDS, Record as Record, classify as classify
    from .sources import Blob as Blob, ImageItem as ImageItem, ItemError as ItemError, Limits as Limits
    from .sources import open_input as open_input, open_inputs as open_inputs


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'medimg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
