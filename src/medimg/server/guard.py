"""The page's events may name only files uploaded to it. Gradio's event routes take a file as a path the client
sends ({"path": …}); Gradio, mounted rather than launched, checks none of them before copying the file into its
upload area and keeping its name for deletion. So a client could name /etc/passwd, another visitor's upload in
progress (/proc/self/fd/N), a folder (which stops Gradio's deletions), or a URL (fetched past net.py's guard).
This middleware refuses, with a 400, any JSON body to the page (not /api) that names a path other than a regular
file in Gradio's upload area or in the pages' own folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterator

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import error_body, route_path, whole_body


class OwnFilesOnly:
    def __init__(self, app: ASGIApp, roots: Callable[[], list[Path]]):
        self.app = app
        self.roots = roots  # folders a named file may be in (resolved when asked: Gradio's is made late)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope).lstrip("/").startswith("api/"):
            await self.app(scope, receive, send)
            return
        ctype = Headers(scope=scope).get("content-type", "").strip().lower()
        if ctype.startswith("multipart/"):  # an upload, streamed on; any other body may be read as JSON by a
            await self.app(scope, receive, send)  # route whatever it says it is (component_server does)
            return
        body, replay = await whole_body(receive)
        roots = self.roots()
        bad = _foreign(body, roots)
        if bad is not None:
            if _gone(bad, roots):  # an upload swept away while the page still lists it
                error = (f"“{Path(bad).name[:200]}” is no longer on the server: an upload is kept for 15 minutes "
                         "until it is run, and an hour after a run. Remove it from the list (×) and add it again.")
            else:
                error = f"a file named in the request was not uploaded to this page: {bad[:200]!r}"
            await JSONResponse(error_body(error), status_code=400)(scope, receive, send)
            return
        await self.app(scope, replay, send)


def _foreign(body: bytes, roots: list[Path]) -> str | None:
    """The first path the JSON body names that is not a regular file under one of `roots`, or None."""
    try:
        doc = json.loads(body)
    except ValueError:  # not JSON (an upload's multipart body, a form): no paths to look at
        return None
    except RecursionError:  # [[[[… thousands deep: Python's parser gives up (Gradio's would too: a 500)
        return "(data nested more than 20 deep)"
    for path in _paths(doc):  # the whole body: Gradio's /call/v2/ routes take the inputs by name
        try:
            given = Path(os.path.abspath(path))
            real = given.resolve()
        except (OSError, ValueError, RuntimeError, TypeError):
            return path
        # as written and as it resolves: a link elsewhere (/proc/self/fd/N: an upload being written) is refused
        if not (os.path.isfile(real) and _under(given, roots) and _under(real, roots)):
            return path
    return None


def _gone(path: str, roots: list[Path]) -> bool:
    """`path` names nothing now, in one of `roots` (as written): an upload of the page deleted since (Gradio's
    sweep of its upload area after 15 minutes, a session's kept uploads after an hour)."""
    try:
        given = Path(os.path.abspath(path))
    except (OSError, ValueError, TypeError):
        return False
    return _under(given, roots) and not os.path.lexists(given)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(root in path.parents for root in roots)


def _paths(value, depth: int = 0) -> Iterator[str]:
    """Every "path" a file named in an event's body names (FileData objects, in lists and dicts)."""
    if depth > 20:  # deeper than any file list: refused whole (Gradio would look at every level)
        yield "(data nested more than 20 deep)"
        return
    if isinstance(value, dict):
        if "path" in value:
            yield value["path"] if isinstance(value["path"], str) else repr(value["path"])
        for v in value.values():
            yield from _paths(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _paths(v, depth + 1)
