"""Malformed page events answered plainly. Gradio raises on an event naming no handler of the page (an unknown
fn_index: a 500), on one with fewer input values than its handler takes (the run fails), and on a stream for a
session it does not know (after its 200 has gone): each a traceback in the server's log for a client's mistake.
Such requests get a 404 or 422 here, in Gradio's `{"detail": …}` shape, before Gradio sees them."""

from __future__ import annotations

import json
import re
from typing import Callable
from urllib.parse import parse_qs

from pydantic import TypeAdapter, ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import route_path, whole_body

JOIN, STREAM = "/gradio_api/queue/join", "/gradio_api/queue/data"
_INDEX = TypeAdapter(int)  # read as Gradio's PredictBody reads fn_index ("3" and 3.0 are 3)


class KnownEvents:
    def __init__(self, app: ASGIApp, blocks: Callable[[], object]):
        self.app = app
        self.blocks = blocks  # the page's gr.Blocks, once mounted (None before)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        blocks = self.blocks() if scope["type"] == "http" else None
        path = re.sub(r"/{2,}", "/", route_path(scope)).rstrip("/") if blocks is not None else ""
        if path == STREAM and scope["method"] == "GET":
            problem = _unknown_session(scope, blocks)
        elif path == JOIN and scope["method"] == "POST":
            body, receive = await whole_body(receive)
            problem = _bad_event(body, blocks)
        else:
            problem = None
        if problem is not None:
            await JSONResponse({"detail": problem[1]}, status_code=problem[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _unknown_session(scope: Scope, blocks) -> tuple[int, str] | None:
    """A 404 for a stream of a session with no event waiting (Gradio's own answer, but before the stream starts)."""
    pending = getattr(getattr(blocks, "_queue", None), "pending_messages_per_session", None)
    given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
    if pending is None or not given or given[-1] in pending:
        return None
    return 404, "Not Found"


def _bad_event(body: bytes, blocks) -> tuple[int, str] | None:
    """A 422 for an event naming no handler of the page, or giving it fewer input values than it takes."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # Gradio's own validation answers it (422)
        return None
    fns = getattr(blocks, "fns", None)
    if not isinstance(doc, dict) or not isinstance(fns, dict):
        return None
    try:
        index = _INDEX.validate_python(doc.get("fn_index"))
    except ValidationError:  # none, or not a number: Gradio says so itself
        return None
    data = doc.get("data")
    fn = fns.get(index)
    if fn is None:
        return 422, f"fn_index {index} is no event of this page"
    wanted = len(getattr(fn, "inputs", []) or [])
    if isinstance(data, list) and len(data) < wanted:
        return 422, f"the event fn_index {index} takes {wanted} input values, not {len(data)}"
    return None
