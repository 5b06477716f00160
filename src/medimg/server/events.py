"""Malformed page events answered plainly. Gradio raises on an event naming no handler of the page (an unknown
fn_index: a 500), on one with fewer input values than its handler takes (the run fails), and on a stream for a
session it does not know (after its 200 has gone): each a traceback in the server's log for a client's mistake.
So it does on NaN or Infinity in a body (its 422 cannot be written as JSON: a 500), on an event whose handler runs in
the browser only, on input values of the wrong JSON type (a failed run after the 200), on an empty session_hash, and,
at /gradio_api/run/ and /call/, on an API name no event has. Such requests
get a 400, 404 or 422 here, in Gradio's `{"detail": …}` shape, before Gradio sees them."""

from __future__ import annotations

import json
import re
from typing import Callable
from urllib.parse import parse_qs

from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import route_path, whole_body

JOIN, STREAM = "/gradio_api/queue/join", "/gradio_api/queue/data"
# an event by API name (or by fn_index in the body); /call/v2/ takes its inputs by name
RUN = ("/gradio_api/call/v2/", "/gradio_api/run/", "/gradio_api/api/", "/gradio_api/call/")
CALL = "/gradio_api/call/"  # GET …/call/{api_name}/{event_id}: an event's stream
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
        elif path.startswith(CALL) and path.count("/") == 4 and scope["method"] == "GET":
            problem = _unknown_call(path.rsplit("/", 1)[1], blocks)
        elif path.startswith("/gradio_api/") and scope["method"] == "POST" and not _multipart(scope):
            body, receive = await whole_body(receive)
            named = next((path[len(p):] for p in RUN if path.startswith(p)), None)
            if path == JOIN or named:
                call = path.startswith(RUN[0]) and "v2" or path.startswith(RUN[3]) and "call" or None
                problem = _bad_event(body, blocks, named, call)
            else:
                problem = _not_finite_in(body)
        else:
            problem = None
        if problem is not None:
            await JSONResponse({"detail": problem[1]}, status_code=problem[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _multipart(scope: Scope) -> bool:
    return Headers(scope=scope).get("content-type", "").strip().lower().startswith("multipart/")


def _unknown_session(scope: Scope, blocks) -> tuple[int, str] | None:
    """A 404 for a stream of a session with no event waiting (Gradio's own answer, but before the stream starts)."""
    pending = getattr(getattr(blocks, "_queue", None), "pending_messages_per_session", None)
    given = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True).get("session_hash")
    if pending is None or not given or given[-1] in pending:
        return None
    return 404, "Not Found"


class _NotFinite(ValueError):
    pass


def _not_finite(text: str) -> float:
    raise _NotFinite(text)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400
        raise _NotFinite(text)
    return value


def _not_finite_in(body: bytes) -> tuple[int, str] | None:
    """A 422 for a JSON body holding NaN or Infinity (any other route's 422 would be a 500 writing it back)."""
    try:
        json.loads(body, parse_constant=_not_finite, parse_float=_finite)
    except _NotFinite as exc:
        return 422, f"the body holds {str(exc)[:20]}, which JSON does not allow"
    except (ValueError, RecursionError):
        pass
    return None


def _unknown_call(event_id: str, blocks) -> tuple[int, str] | None:
    """A 404 for the stream of an event the queue does not hold (found as Gradio finds it: by the event, a session
    still holding its id, or the id as a session), before the stream starts."""
    queue = getattr(blocks, "_queue", None)
    pending = getattr(queue, "pending_messages_per_session", None)
    events, ids = getattr(queue, "event_ids_to_events", None), getattr(queue, "pending_event_ids_session", None)
    if pending is None or not isinstance(events, dict) or not isinstance(ids, dict):
        return None
    event = events.get(event_id)
    session = event.session_hash if event is not None else next((s for s, i in ids.items() if event_id in i), event_id)
    return None if session in pending else (404, "Not Found")


def _bad_event(body: bytes, blocks, api_name: str | None = None, call: str | None = None) -> tuple[int, str] | None:
    """A 4xx for an event naming no handler of the page (by fn_index, or by API name), one giving it fewer input
    values than it takes, values of the wrong type, or naming a handler that runs in the browser only, a join with
    an empty session_hash, or a body holding NaN or Infinity. `api_name`: the name after /run/ or /call/ (None for a
    join); `call`: "call" at /call/ (the event by its name only; values of its API inputs alone may be given),
    "v2" at /call/v2/ (the inputs by name)."""
    try:
        doc = json.loads(body, parse_constant=_not_finite, parse_float=_finite)
    except _NotFinite as exc:
        return 422, f"the body holds {str(exc)[:20]}, which JSON does not allow"
    except (ValueError, RecursionError):  # Gradio's own validation answers it (422)
        return None
    fns = getattr(blocks, "fns", None)
    if not isinstance(doc, dict) or not isinstance(fns, dict):
        return None
    if api_name is None and doc.get("session_hash") == "":  # Gradio queues it under "" and its messages elsewhere
        return 400, "Session hash not found."
    if call or (doc.get("fn_index") is None and api_name is not None):
        fn = next((f for f in fns.values() if getattr(f, "api_name", None) == api_name), None)
        if fn is None:
            return 404, f"no API named {api_name[:100]!r} on this page"
        index = getattr(fn, "_id", api_name)
    else:
        try:
            index = _INDEX.validate_python(doc.get("fn_index"))
        except ValidationError:  # none, or not a number: Gradio says so itself
            return None
        fn = fns.get(index)
        if fn is None:
            return 422, f"fn_index {index} is no event of this page"
    if getattr(fn, "fn", True) is None:
        return 422, f"the event fn_index {index} runs in the browser only"
    if call == "v2":
        return _bad_names(doc, blocks, api_name)
    data = doc.get("data")
    if not isinstance(data, list):
        return None
    inputs = list(getattr(fn, "inputs", []) or [])
    if call and len(data) != len(inputs):  # Gradio fills the inputs the API leaves out (State) itself
        shown = [c for c in inputs if not getattr(c, "skip_api", False)]
        inputs = shown if len(data) <= len(shown) else inputs
    if len(data) < len(inputs):
        return 422, f"the event fn_index {index} takes {len(inputs)} input values, not {len(data)}"
    for n, (component, value) in enumerate(zip(inputs, data)):
        if value is not None and not _fits(component, value):
            return 422, f"the event fn_index {index}'s input value {n} is no value of its {type(component).__name__}"
    return None


def _bad_names(doc: dict, blocks, api_name: str) -> tuple[int, str] | None:
    """A 422 for /call/v2/ inputs by a name the API does not have, or without one it needs (Gradio: a 500)."""
    try:
        params = blocks.get_api_info(all_endpoints=True)["named_endpoints"]["/" + api_name]["parameters"]
    except Exception:  # Gradio's own answer stands
        return None
    names = {p.get("parameter_name") for p in params}
    unknown = [key for key in doc if key not in names and key != "oauth_token"]
    if unknown:
        return 422, f"{unknown[0][:100]!r} is no input of {api_name[:100]!r}"
    needed = [p["parameter_name"] for p in params
              if "parameter_name" in p and not p.get("parameter_has_default") and p["parameter_name"] not in doc]
    if needed:
        return 422, f"{api_name[:100]!r} needs the input {needed[0]!r}"
    return None


_JSON_TYPES = {"string": str, "boolean": bool, "number": (int, float), "integer": int}


def _fits(component, value) -> bool:
    """Whether `value` can be an input value of `component`: a file component's by its data model, a text box's,
    check box's, slider's or radio's by its JSON type (what Gradio would otherwise fail on in the run, after the
    200: a traceback). Components of other kinds are not checked."""
    model = getattr(component, "data_model", None)
    if model is not None and hasattr(model, "model_validate"):
        try:
            model.model_validate(value)
        except (ValidationError, ValueError, TypeError):
            return False
        return True
    try:
        kind = _JSON_TYPES.get(component.api_info().get("type"))
    except Exception:  # a component whose api_info needs more: not checked
        return True
    if kind is None:
        return True
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
