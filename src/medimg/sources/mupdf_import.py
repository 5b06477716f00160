"""PyMuPDF, imported without its layout-analysis package: PyMuPDF 2 imports it when installed, and it loads ONNX
models on import (about 60 MB and extra threads in every process) for text layout medimg never asks for. Only
this import is kept from it: the package is not blocked for the program medimg runs in afterwards (pymupdf4llm,
or the program's own `import pymupdf.layout`, went without it, unsaid). A caller that imported pymupdf first
keeps it as it is."""

import sys

if "pymupdf" not in sys.modules and "pymupdf.layout" not in sys.modules:
    sys.modules["pymupdf.layout"] = None  # type: ignore[assignment]
    try:
        import pymupdf
    finally:
        if sys.modules.get("pymupdf.layout", False) is None:
            del sys.modules["pymupdf.layout"]
import pymupdf  # noqa: E402

__all__ = ["pymupdf"]
