"""The JSON API under /api: health, classify uploaded files, classify a URL."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator, Literal

import anyio
import httpx
from fastapi import APIRouter, Body, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..lists import once
from ..pipeline import Record, run_threads, summarize
from ..sources import Blob
from ..sources.browser import available
from ..sources.files import blobs_together, unique_names
from .export import readable
from .limits import BODY_IDLE_SECONDS, MIN_BODY_RATE, URL_BODY_BYTES, route_path
from .work import Outcome, Worker, server_words, unread_rows

MAX_URLS = 20  # addresses in one request, as on the page (each is a whole page to fetch)
GRACE_SECONDS = 2.0  # past the per-request limit before the HTTP answer gives up on the work
WAITING_PER_JOB = 4  # requests that may wait for a slot, per slot; more are told the server is busy
MIN_WORK_SECONDS = 10.0  # what a request that waited for a slot has left at least (a quarter of a shorter limit)
# a verdict is medical when p_medical >= t and non-medical when p_medical <= 1 - t: below 0.5 both would hold
LOWEST_THRESHOLD = 0.5
THRESHOLD_HELP = ("Overrides the model's threshold, from 0.5 to 1: medical when p_medical ≥ threshold, "
                  "non-medical when p_medical ≤ 1 − threshold, else uncertain.")
FULL_HELP = "Add format, metadata (e.g. DICOM tags) and every label's probability."
SKIPPED_HELP = "Also list items skipped on purpose (tiny decorations, …), each with `skipped: true`."
QUERY_OR_FORM = " A query parameter or a form field beside the files (curl -F); both must agree."
QUERY_OR_BODY = " In the JSON body or the query; both must agree."
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


Verdict = Literal["medical", "non-medical", "uncertain"]
# an upload's schema: `format: binary` beside OpenAPI 3.1's contentMediaType, which /docs (Swagger UI 5) does not read
# in an array's items: without it "Try it out" gave text boxes for `files`, no file picker (swagger-ui#10825)
FILE_ITEM = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}


class RecordOut(BaseModel):
    input: str = Field(description="The file, archive member or URL the image came from.")
    locator: str = Field(description="Where inside it: page, image, frame, position.")
    label: str | None = Field(None, description="The most likely kind (one of the model's labels).")
    medical: bool | None = Field(None, description="Whether `label` is a medical kind: the label's group, not the "
                                 "verdict, so it can differ from it on a close call (go by `verdict`).")
    confidence: float | None = Field(None, description="Calibrated probability of `label`.")
    p_medical: float | None = Field(None, description="Probability that the image is medical: the sum over the "
                                    "medical labels, which the verdict is decided on.")
    verdict: Verdict | None = Field(None, description="medical, non-medical or uncertain at the threshold.")
    width: int | None = None
    height: int | None = None
    error: str | None = Field(None, description="Why this item gave no image; the rest still ran.")
    skipped: bool | None = Field(None, description="With full=true or show_skipped=true: skipped on purpose "
                                 "(a note, not an error, though `error` says why).")
    format: str | None = Field(None, description="With full=true: the source format.")
    source: str | None = Field(None, description="With full=true: the input given (an upload's name or the URL) "
                                                 "the record came from, as the CLI's --full gives it.")
    model: str | None = Field(None, description="With full=true: the name and release of the model that "
                                                "classified the image.")
    metadata: dict[str, Any] | None = Field(None, description="With full=true: e.g. DICOM tags.")
    probs: dict[str, float] | None = Field(None, description="With full=true: every label's probability.")


class ModelOut(BaseModel):
    name: str
    version: str


class SummaryOut(BaseModel):
    images: int = Field(description="Images classified.")
    errors: int = Field(description="Items that could not be read (results with `error`, not `skipped`).")
    skipped: int = Field(description="Items skipped on purpose (tiny decorations, …).")
    verdicts: dict[Verdict, int] = Field(description="Images per verdict.")
    labels: dict[str, int] = Field(description="Images per label.")


class HealthModelOut(ModelOut):
    labels: list[str]
    input_size: int = Field(description="The side, in pixels, images are scaled to.")
    threshold: float = Field(description="The model's own threshold, used when a request gives none.")


class HealthOut(BaseModel):
    status: Literal["ok"]
    model: HealthModelOut
    render: bool = Field(description="Whether this server can render pages (`render` on /api/classify-url).")


class ClassifyResponse(BaseModel):
    results: list[RecordOut]
    summary: SummaryOut = Field(description="Counts: images, errors, skipped, verdicts, labels.")
    model: ModelOut = Field(description="The model that gave the verdicts (its release).")
    threshold: float = Field(description="The threshold the verdicts were given at: the one asked for, or the "
                                         "model's default.")
    note: str | None = Field(None, description="Only when the results stop short of all there was: why (the "
                                               "request's time limit was reached).")


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where: `query`, `body` (the form or JSON body) and the field's name.")
    msg: str
    type: str = Field(description="What kind of problem, as pydantic names it (`missing`, `extra_forbidden`, …).")
    ctx: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: str = Field(description="What was wrong, in a sentence.")
    detail: str = Field(description="The same sentence, where FastAPI's clients look for it.")
    errors: list[ErrorItem] | None = Field(None, description="Only in a 422: each field at fault.")


def _errors(texts: dict[int, str]) -> dict:
    """A route's `responses` for these error statuses: each of the one error shape (ErrorOut), with its headers."""
    return {status: {"model": ErrorOut, "description": text, **({"headers": ERROR_HEADERS[status]}
                                                                  if status in ERROR_HEADERS else {})}
            for status, text in sorted(texts.items())}


ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Basic, so that a browser asks for the token.", "required": True,
                               "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before trying again.", "required": True,
                          "schema": {"type": "integer"}}},
}
SERVER_FAILED = {500: "The server failed; its log says why."}
CLASSIFY_ERRORS = {  # of both routes that classify
    408: f"The request body stopped arriving or came too slowly: a body may pause {BODY_IDLE_SECONDS:g} s at most, "
         f"and after its first {BODY_IDLE_SECONDS:g} s must come at {MIN_BODY_RATE:g} bytes a second on average.",
    413: "The request body is larger than the server accepts.",
    415: "The request body is compressed (a Content-Encoding such as gzip): send it uncompressed.",
    422: "Missing or invalid fields (no files, bad JSON, bad threshold, an unknown parameter, a parameter given "
         "in two places with different values).",
    503: "Busy with other requests (or holding too many uploads) for too long, out of open files or disk space for "
         "the upload, or the server stopped before the request ended (past its --graceful-timeout); try again.",
    504: "The request went past its time limit.",
    **SERVER_FAILED,
}
FILE_ERRORS = {400: "Bad request: a multipart body that is malformed or cut short (ended before its closing "
                    "boundary), or more files than the server takes at once.", **CLASSIFY_ERRORS}
URL_ERRORS = {400: "A URL the server refuses: not http(s), no host, not a valid URL (a port past 65535, a "
                   "malformed xn-- name), a private address, or any URL on a server "
                   "started with --offline. A URL that cannot be fetched is a result with `error` instead.",
              501: "`render` asked of a server that cannot render (no Chromium or Playwright; /api/health says "
                   "`render: false`).", **CLASSIFY_ERRORS}
TOKEN_ERRORS = {401: "No access token, or the wrong one (a server started with --token-file or MEDIMG_TOKEN)."}


class Invalid(HTTPException):
    """A 422 of the API's own checks; `errors` names the fields at fault, as FastAPI's validation does."""

    def __init__(self, detail: str, *locs: tuple, kind: str = "value_error"):
        super().__init__(422, detail)
        self.errors = [{"loc": list(loc), "msg": detail, "type": kind} for loc in locs or [("body",)]]


CUT_SHORT = ("the upload was cut short: its multipart body ended before the closing boundary, so a file may be "
             "missing or incomplete; send the request again")


class WatchedUpload(Request):
    """A request whose multipart body is watched for its closing boundary as it is read: `cut_short` when the
    body ended without one (Starlette's parser takes such a body, and the part cut off goes missing)."""

    cut_short = False

    async def stream(self):
        _, params = parse_options_header(self.headers.get("content-type", ""))
        closing = b"\r\n--" + params[b"boundary"] + b"--" if params.get(b"boundary") else b""
        tail, seen = b"\r\n", False  # a body of no parts starts with its closing boundary
        async for chunk in super().stream():
            if closing and not seen:
                tail += chunk
                seen = closing in tail
                tail = tail[-len(closing):]
            yield chunk
        self.cut_short = bool(closing) and not seen


class UploadRoute(APIRoute):
    """The upload route's body checked whole: cut short before its closing boundary, or refused by the
    multipart parser, it is a 400 saying so (not "no files were sent", nor a bare "Invalid multipart data")."""

    def get_route_handler(self) -> Callable:
        handle = super().get_route_handler()

        async def checked(request: Request):
            watched = WatchedUpload(request.scope, request.receive)
            try:
                return await handle(watched)
            except RequestValidationError as exc:
                if watched.cut_short:
                    raise HTTPException(400, CUT_SHORT) from None
                misnamed = _misnamed_files(exc, getattr(watched, "_form", None))
                if misnamed:
                    raise misnamed from None
                raise
            except StarletteHTTPException as exc:  # Starlette's own, raised by its form parser
                stored = _not_stored(exc) if exc.status_code == 400 else None
                if stored is not None:  # the server's fault, not the body's: a 503 to try again
                    raise HTTPException(503, stored, headers={"Retry-After": "5"}) from None
                said = _parser_said(exc) if exc.status_code == 400 else None
                if said is None and exc.status_code == 400 and str(exc.detail).startswith(STARLETTE_SAID):
                    said = str(exc.detail)  # Starlette's own: its cap on a form field's value, no boundary
                if said is None:
                    raise
                raise HTTPException(400, _multipart_problem(said)) from None

        return checked


class JsonRoute(APIRoute):
    """A JSON body that cannot be read as JSON at all (not UTF-8, nested too deeply for the parser) is the 422 of
    bad JSON, as a syntax error is, rather than FastAPI's bare 400 "There was an error parsing the body" (which
    the route's schema gives to a refused URL)."""

    def get_route_handler(self) -> Callable:
        handle = super().get_route_handler()

        async def checked(request: Request):
            try:
                return await handle(request)
            except StarletteHTTPException as exc:
                cause = exc.__cause__
                if exc.status_code != 400 or not isinstance(cause, (UnicodeDecodeError, RecursionError)):
                    raise
                why = "it is not UTF-8 text" if isinstance(cause, UnicodeDecodeError) else "it is nested too deeply"
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error",
                                               "ctx": {"error": why}}]) from None

        return checked


def _misnamed_files(exc: RequestValidationError, form) -> Invalid | None:
    """The 422 of files sent under another field's name (`-F file=@scan.dcm`, `files[]`), naming it, when no
    'files' came; else None ("no files were sent" alone left the client looking for what it had sent)."""
    missing = any(tuple(e.get("loc", ())) == ("body", "files") and e.get("type") == "missing" for e in exc.errors())
    if form is None or "files" in form or not missing:
        return None
    names = sorted({k for k, v in form.multi_items() if not isinstance(v, str)})
    if not names:
        return None
    return Invalid(f"no files were sent in the multipart field 'files': the files came in "
                   f"{', '.join(map(repr, names))}; name the field 'files' (curl -F files=@scan.dcm)",
                   ("body", "files"), kind="missing")


def _parser_said(exc: BaseException) -> str | None:
    """What python-multipart said, when it is behind this error (Starlette's 400 hides it), else None."""
    while exc is not None:
        if type(exc).__module__.startswith("python_multipart"):
            return str(exc)
        exc = exc.__cause__ or exc.__context__
    return None


def _not_stored(exc: BaseException) -> str | None:
    """Why the server could not store an upload's parts (each over 1 MB is spooled to a temporary file of its own:
    no open file left, a full disk), when that is behind this error (FastAPI's bare 400 blames the body), else
    None."""
    seen: set[int] = set()  # a chain may loop (an exception raised from one it caused)
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            why = exc.strerror or type(exc).__name__
            return f"the server could not store the upload now ({why.lower()}); try again shortly"
        exc = exc.__cause__ or exc.__context__
    return None


# Starlette's 400s for a form field's value over 1 MB: a multipart part without a file name, or a field of a
# url-encoded form; said as they were, the client took them for a cap of 1 MB on each file
BIG_FIELD = ("Part exceeded maximum size", "Field exceeded maximum size")
NO_BOUNDARY = "Missing boundary"  # Starlette's "Missing boundary in multipart."
STARLETTE_SAID = (*BIG_FIELD, NO_BOUNDARY)


def _multipart_problem(said: str) -> str:
    if said.startswith(BIG_FIELD[0]):
        return ("a part without a file name (a form field, not a file upload) is more than 1 MB: send each file "
                "as a file upload with a file name in the field 'files' (curl -F files=@scan.dcm)")
    if said.startswith(BIG_FIELD[1]):
        return ("no files were sent: the body is a url-encoded form, which holds no files; upload them as "
                "multipart/form-data in the field 'files' (curl -F files=@scan.dcm)")
    if said.startswith(NO_BOUNDARY):  # a Content-Type set by hand (requests, fetch) hides the client's own
        return ("the Content-Type header names no boundary (multipart/form-data; boundary=…), so the files cannot be "
                "told apart: do not set Content-Type yourself for an upload; the HTTP client sets it, with the "
                "boundary, when it sends files (curl -F files=@scan.dcm)")
    if "header size" in said:  # a header line past python-multipart's 4 KB (file systems allow 255 bytes)
        return ("a part's header is too long for the server to read (more than about 4,000 characters: a file "
                "name that long?): give the file a shorter name")
    return f"the upload is not well-formed multipart/form-data: {said[:1].lower()}{said[1:]}"


class UrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "treshold" is a 422, not the default threshold unseen

    url: str | None = Field(None, description="An http:// or https:// address of a page or an image (or a data: URI, read "
                            "as it is).",
                            examples=["https://example.org/article.html"])
    urls: list[str] | None = Field(None, min_length=1, max_length=MAX_URLS,
                                   description=f"Several addresses instead of `url` (at most {MAX_URLS}), read in "
                                               "turn (one given twice is read once); one that cannot be read, or a "
                                               "private address the server does not fetch, is a result with its "
                                               "error. One that is not http(s), has no host or is not a "
                                               "valid URL is a 400.")
    render: bool = Field(False, description="Render the page in headless Chromium before looking for images.")
    threshold: float | None = Field(None, ge=LOWEST_THRESHOLD, le=1.0, description=THRESHOLD_HELP)
    full: bool = Field(False, description=FULL_HELP)
    show_skipped: bool = Field(False, description=SKIPPED_HELP)

    @field_validator("threshold", mode="before")
    @classmethod
    def _not_a_flag(cls, value):
        if isinstance(value, bool):  # JSON true would be read as 1.0
            raise ValueError("a number, not true or false")
        return value


# the bodies /docs offers to send ("Try it out"); its own sample, built from the schema, gave url and urls both: a 422
URL_EXAMPLES = {
    "one address": {"value": {"url": "https://example.org/article.html"}},
    "several addresses": {"value": {"urls": ["https://example.org/case-1.html", "https://example.org/scan.png"],
                                    "threshold": 0.7}},
}


def create_router(worker: Worker) -> APIRouter:
    cfg = worker.config
    router = APIRouter(prefix="/api", tags=["api"])
    can_render = not cfg.offline and available() is None  # Chromium and Playwright here, at start
    RETRY = {"Retry-After": "5"}  # seconds, as the byte budget's 503 says too
    auth = TOKEN_ERRORS if cfg.token else {}  # TokenAuth's, before any route
    jobs = anyio.Semaphore(cfg.max_jobs)
    waiting = 0
    busy = "the server is busy with other requests; try again shortly"

    async def run(request: Request, fn: Callable[[threading.Event, float], Outcome]) -> Outcome:
        """fn(stop, seconds) in a thread holding one of the job slots until it has really ended, however the
        request ends: answered, timed out (504), or the client gone; `stop` tells the work to end early. Time
        spent waiting for a slot counts: the work gets what is left of the request's time limit, and a request
        still waiting when less than MIN_WORK_SECONDS (or a quarter of the limit) would be left gets a 503."""
        nonlocal waiting
        start = time.monotonic()
        try:
            jobs.acquire_nowait()  # a free slot: no waiting
        except anyio.WouldBlock:
            if waiting >= cfg.max_jobs * WAITING_PER_JOB:  # each waiting request holds its upload
                raise HTTPException(503, busy, headers=RETRY) from None
            waiting += 1
            try:  # a slot found with almost no time left would time out every download unread: busy instead
                got = await _slot(jobs, request, cfg.request_timeout - min(MIN_WORK_SECONDS, cfg.request_timeout / 4))
            finally:
                waiting -= 1
            if got is None:
                raise HTTPException(499, "the client closed the connection")
            if not got:
                raise HTTPException(503, busy, headers=RETRY)
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def release(readers: list[threading.Thread] = ()) -> None:
            end = time.monotonic() + cfg.request_timeout
            for reader in readers:
                reader.join(max(0.0, end - time.monotonic()))
            try:
                loop.call_soon_threadsafe(jobs.release)
            except RuntimeError:  # the event loop has gone (a test client's)
                pass

        def work() -> Outcome:
            try:
                return fn(stop, left)
            finally:
                # a reader still inside a decoder (its client gone, its time up) goes on: the slot stays held until
                # it ends, or requests leaving one after another piled up decodes (4.8 GB after 8 of them)
                readers = run_threads(stop)
                if readers:
                    threading.Thread(target=release, args=(readers,), name="medimg-slot", daemon=True).start()
                else:
                    release()

        left = max(0.0, cfg.request_timeout - (time.monotonic() - start))
        done = loop.run_in_executor(None, work)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait([done, gone], timeout=left + GRACE_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                return done.result()
            if gone.done():
                raise HTTPException(499, "the client closed the connection")
            raise HTTPException(504, f"the request took longer than its time limit of {cfg.request_timeout:g} s")
        finally:
            stop.set()
            gone.cancel()

    @router.get("/health", summary="Is the server up, and which model does it use", response_model=HealthOut,
                responses=_errors(SERVER_FAILED))
    async def health() -> dict:  # on the event loop: a probe waits for no worker thread (all may be busy)
        info = worker.model_info()
        shown = ("labels", "input_size", "threshold")
        return {"status": "ok", "model": {**_model_named(info), **{k: info[k] for k in shown}},
                "render": can_render}

    # HEAD too: load balancers and uptime monitors often probe with it (one operation in the schema)
    router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)

    # what /docs fills in a form's fields with: the defaults (else its own samples: threshold 0.5, full true)
    own_threshold = worker.classifier.threshold

    async def classify_files(
        request: Request,
        files: list[UploadFile] = File(..., description="Images, DICOM files, zips or PDFs; one or many.",
                                       json_schema_extra={"items": FILE_ITEM}),
        threshold: float | None = Query(None, ge=LOWEST_THRESHOLD, le=1.0, description=THRESHOLD_HELP + QUERY_OR_FORM),
        full: bool | None = Query(None, description=FULL_HELP + QUERY_OR_FORM),
        show_skipped: bool | None = Query(None, description=SKIPPED_HELP + QUERY_OR_FORM),
        form_threshold: float | None = Form(None, alias="threshold", ge=LOWEST_THRESHOLD, le=1.0,
                                            description=THRESHOLD_HELP + QUERY_OR_FORM, examples=[own_threshold]),
        form_full: bool | None = Form(None, alias="full", description=FULL_HELP + QUERY_OR_FORM, examples=[False]),
        form_show_skipped: bool | None = Form(None, alias="show_skipped", description=SKIPPED_HELP + QUERY_OR_FORM,
                                              examples=[False]),
    ) -> dict:
        if getattr(request, "cut_short", False):  # the files before the cut were read: not them alone
            raise HTTPException(400, CUT_SHORT)
        form = await request.form()  # parsed already: no re-read
        _known_only(request.query_params, FILE_OPTIONS, "query parameter")
        _known_only(form, ("files", *FILE_OPTIONS), "form field")
        _given_once(request.query_params, FILE_OPTIONS, "query")
        _given_once(form, FILE_OPTIONS, "form")
        threshold = _either("threshold", threshold, form_threshold, "form")
        full = bool(_either("full", full, form_full, "form"))
        show_skipped = bool(_either("show_skipped", show_skipped, form_show_skipped, "form"))
        named = [(_display_name(f.filename, i), f) for i, f in enumerate(files, 1)]  # repeated: see blobs_together
        limits = cfg.limits()
        data_of: dict[str, str] = {}  # the data files a header among the uploads reads (a.raw: a.mhd)
        out = await run(request, lambda stop, left: worker.run(_blobs(named, limits.max_input_bytes, data_of),
                                                               limits, threshold=threshold, stop=stop, seconds=left))
        return _response(_unread(out, unique_names([name for name, _ in named]), data_of), full, show_skipped,
                         worker.model_info(), threshold)

    router.add_api_route("/classify", classify_files, methods=["POST"], route_class_override=UploadRoute,
                         response_model=ClassifyResponse, response_model_exclude_unset=True,
                         summary="Classify every image in the uploaded files",
                         responses=_errors({**FILE_ERRORS, **auth}),
                         max_body_size=cfg.max_upload_bytes, form_limits={"max_files": cfg.max_files})

    async def classify_url(
        request: Request,
        body: UrlRequest = Body(openapi_examples=URL_EXAMPLES),
        threshold: float | None = Query(None, ge=LOWEST_THRESHOLD, le=1.0, description=THRESHOLD_HELP + QUERY_OR_BODY),
        render: bool | None = Query(None, description="Render the page in headless Chromium first." + QUERY_OR_BODY),
        full: bool | None = Query(None, description=FULL_HELP + QUERY_OR_BODY),
        show_skipped: bool | None = Query(None, description=SKIPPED_HELP + QUERY_OR_BODY),
    ) -> dict:
        _known_only(request.query_params, URL_OPTIONS, "query parameter")
        _given_once(request.query_params, URL_OPTIONS, "query")
        _keys_once(await request.body())  # read already: no re-read
        given = body.model_dump(exclude_unset=True)  # what the body says, not its defaults
        threshold = _either("threshold", threshold, given.get("threshold"), "JSON body")
        render = bool(_either("render", render, given.get("render"), "JSON body"))
        full = bool(_either("full", full, given.get("full"), "JSON body"))
        show_skipped = bool(_either("show_skipped", show_skipped, given.get("show_skipped"), "JSON body"))
        if (body.url is None) == (body.urls is None):
            raise Invalid(f'give "url" (one address) or "urls" (a list of at most {MAX_URLS}), not '
                          f'{"both" if body.url is not None else "neither"}', ("body", "url"), ("body", "urls"))
        if render and not can_render and not cfg.offline:  # before any URL is looked at (a host that does not
            raise HTTPException(501, f"this server cannot render pages: {available()}")  # resolve was a 200)
        if body.urls is not None:  # each refusal is that address's result, as a file's error is in a batch
            urls = list(once((u.strip() for u in body.urls), fragments=render))  # a script may route on #…
            # a path would name a file of the server's; offline, only data: URIs are read (no lookup for either;
            bad = next((u for u in urls if _malformed(u) or (cfg.offline and not _data_uri(u))), None)  # "" is bad)
            if bad is not None:
                raise HTTPException(400, url_check(bad, cfg.allow_private, cfg.offline)[0])
        else:
            urls = [body.url.strip()]
            refusal, failure = await anyio.to_thread.run_sync(url_check, urls[0], cfg.allow_private, cfg.offline)
            if refusal:
                raise HTTPException(400, refusal)
            if failure:  # its host does not resolve: the URL's error record, as the pipeline would give it
                record = Record(input=urls[0], locator="", error=failure, source=urls[0])
                return _response(Outcome([record]), full, show_skipped, worker.model_info(), threshold)
        limits = cfg.limits(render=render)
        out = await run(request, lambda stop, left: worker.run(urls, limits, threshold=threshold, stop=stop,
                                                               seconds=left))
        return _response(_unread(out, urls), full, show_skipped, worker.model_info(), threshold)

    router.add_api_route("/classify-url", classify_url, methods=["POST"], route_class_override=JsonRoute,
                         response_model=ClassifyResponse, response_model_exclude_unset=True,
                         summary="Classify every image on a web page (or the image at a URL)",
                         responses=_errors({**URL_ERRORS, **auth}), max_body_size=URL_BODY_BYTES)

    # last: any other path under /api is answered here, not by the page mounted at /, so it gets the API's errors
    @router.api_route("", methods=METHODS, include_in_schema=False)
    @router.api_route("/{rest:path}", methods=METHODS, include_in_schema=False)
    def no_such_endpoint(request: Request) -> None:
        path, routed = request.url.path, route_path(request.scope)  # routed: without a proxy's prefix
        root = path[:len(path) - len(routed)] if path.endswith(routed) else ""
        allowed = sorted({m for r in router.routes if isinstance(r, APIRoute) and r.endpoint is not no_such_endpoint
                          and r.path_regex.match(routed) for m in r.methods})
        if allowed:
            raise HTTPException(405, f"{path} does not take {request.method}; use {', '.join(allowed)}",
                                headers={"Allow": ", ".join(allowed)})
        raise HTTPException(404, f"there is no {path}: the API has {root}/api/health, {root}/api/classify and "
                                 f"{root}/api/classify-url (see {root}/docs)")

    return router


async def _slot(jobs: anyio.Semaphore, request: Request, seconds: float) -> bool | None:
    """Wait for a job slot: True once it is held, False when `seconds` passed first, None when the client went
    first (a waiting request keeps its place in the queue and its upload: one whose client gave up must not)."""
    got = gone = False
    async with anyio.create_task_group() as tasks:
        async def watch() -> None:
            nonlocal gone
            await _disconnected(request)
            gone = True
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch)
        with anyio.move_on_after(seconds):
            await jobs.acquire()
            got = True
        tasks.cancel_scope.cancel()
    if got and gone:
        jobs.release()
    return None if gone else got


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (the body is read by now, so the next message is the disconnect)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # cannot tell: assume the client is still there
        await anyio.sleep_forever()


def _unread(out: Outcome, inputs: list[str], data_of: dict[str, str] | None = None) -> Outcome:
    """A run the time limit stopped: a row of its own for each input it never came to, as the page gives one
    (the note alone left a client to find which of its files or addresses have no result). A data file whose
    header was begun was read with it: the note a whole run gives it, not an error (`unread_rows`)."""
    if not out.note:
        return out
    return Outcome(out.records + unread_rows(inputs, {r.source for r in out.records},
                                             "not read: the time limit was reached before it", data_of), out.note)


def _response(out: Outcome, full: bool, show_skipped: bool, model: dict, threshold: float | None) -> dict:
    shown = [r for r in out.records if show_skipped or not r.skipped]
    # a name that is not UTF-8 comes out readable (U+FFFD), never a 500: pydantic refuses surrogates
    rows = [readable(r).to_dict(full=full) for r in shown]
    if show_skipped and not full:  # a skipped note has `error` too: without this it looked like an error
        for row, record in zip(rows, shown):
            row["skipped"] = record.skipped
    answer = {"results": rows, "summary": summarize(out.records),
              "model": _model_named(model),
              "threshold": model["threshold"] if threshold is None else threshold}
    if out.note:  # only then: the field is left out of a whole answer
        answer["note"] = out.note
    return answer


def _model_named(info: dict) -> dict:
    return {k: str(info[k]) for k in ("name", "version")}  # a labels.json may give a number


FILE_OPTIONS = ("threshold", "full", "show_skipped")
URL_OPTIONS = ("threshold", "render", "full", "show_skipped")


def _known_only(given, known: tuple[str, ...], what: str) -> None:
    """A 422 for a parameter the route does not take (a misspelt threshold was ignored, the default used)."""
    unknown = sorted(set(given.keys()) - set(known))
    if unknown:
        where = "query" if what.startswith("query") else "body"
        raise Invalid(f"unknown {what}{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}: this route takes "
                      f"{', '.join(known)}", *((where, name) for name in unknown), kind="extra_forbidden")


OPTION_TYPES = {"threshold": float, "full": bool, "show_skipped": bool, "render": bool}


def _given_once(given, names: tuple[str, ...], where: str) -> None:
    """A 422 for a parameter given more than once in the query or the form with different values: FastAPI
    would take the last one unseen (`?threshold=0.9&threshold=0.7` ran at 0.7)."""
    for name in names:
        values = given.getlist(name)
        if len({_option_value(name, v) for v in values}) > 1:
            shown = ", ".join(v if isinstance(v, str) else "a file" for v in values)
            raise Invalid(f"{name} is given {len(values)} times in the {where} with different values ({shown}): "
                          "give it once", ("query" if where == "query" else "body", name))


def _option_value(name: str, value: Any) -> Any:
    """A parameter's value as the route reads it (`0.90` is `0.9`, `1` is `true`); as sent if it is not one."""
    if not isinstance(value, str):
        return id(value)  # a file where a value belongs: FastAPI's own check refuses it
    try:
        return TypeAdapter(OPTION_TYPES[name]).validate_python(value.strip())
    except ValidationError:
        return value


def _keys_once(body: bytes) -> None:
    """A 422 for a key given twice in the JSON body with different values (the parser keeps the last one)."""
    def pairs(items: list[tuple[str, Any]]) -> dict:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen and seen[key] != value:
                raise Invalid(f"{key} is given twice in the JSON body with different values, {json.dumps(seen[key])} "
                              f"and {json.dumps(value)}: give it once", ("body", key))
            seen[key] = value
        return seen

    try:
        json.loads(body, object_pairs_hook=pairs)
    except ValueError:  # read once already: cannot happen
        pass


def _either(name: str, query: Any, given: Any, where: str) -> Any:
    """A parameter that may come in the query or in the form (or JSON body), or in both alike; None if in
    neither. Different values are a 422 rather than one of them winning unseen."""
    if query is not None and given is not None and query != given:
        raise Invalid(f"{name} is given twice with different values, {_shown(query)} in the query and "
                      f"{_shown(given)} in the {where}: give it once", ("query", name), ("body", name))
    return given if query is None else query


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _display_name(filename: str | None, i: int) -> str:
    """The name to report an upload by: its base name, never a client-chosen path (nor `..`, a folder's)."""
    name = PurePosixPath(_unencoded(filename or "").replace("\\", "/")).name
    return name if name not in ("", "..") else f"upload-{i}"


# a name sent as RFC 2047 encoded words, as .NET's HttpClient (and PowerShell's Invoke-RestMethod) send a name
# that is not ASCII: filename="=?utf-8?B?0YHQvdC40LzQvtC6LnBuZw==?=", beside a filename* the parser does not read
_ENCODED_WORDS = re.compile(r"(?:=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=\s*)+")


def _unencoded(name: str) -> str:
    """The name an upload was given, its encoded words decoded (bytes of no charset as U+FFFD); as sent if it is
    not such a name, or they do not decode."""
    if not _ENCODED_WORDS.fullmatch(name):
        return name
    from email.errors import HeaderParseError
    from email.header import decode_header

    try:
        decoded = "".join(part.decode(charset or "ascii", errors="replace") if isinstance(part, bytes) else part
                          for part, charset in decode_header(name))
    except (LookupError, ValueError, HeaderParseError):  # an unknown charset, bad base64 (HeaderParseError)
        return name
    # a line break as a browser sends it (%0A): a header cannot hold one, so no name sent plainly has one
    return decoded.replace("\r", "%0D").replace("\n", "%0A") or name


def _blobs(named: list[tuple[str, UploadFile]], cap: int, data_of: dict[str, str] | None = None) -> Iterator[Blob]:
    """One upload's bytes at a time, read from its spooled temporary file as the pipeline asks. Each can
    read another upload of the request by name (a detached header's data file); one lock keeps those reads,
    from other threads, off a file being read here."""
    lock = threading.Lock()

    def reader(upload: UploadFile) -> Callable[[int], bytes]:
        def read(n: int) -> bytes:
            with lock:
                upload.file.seek(0)
                return upload.file.read(n)
        return read

    return blobs_together([(name, reader(upload), upload.content_type) for name, upload in named], cap, data_of)


def url_check(url: str, allow_private: bool, offline: bool = False) -> tuple[str | None, str | None]:
    """A URL looked at before anything is fetched: (why the request is refused, why the URL cannot be fetched),
    each None if not. Refused: a server that fetches nothing, not an http(s) URL with a host, a private address
    this server does not fetch. Cannot be fetched: its host does not resolve, an error of that URL like any
    other failed fetch."""
    from ..sources.net import BlockedAddress, FetchError, check_url

    if _data_uri(url):  # its bytes are in it: read as the command line reads one, nothing fetched (offline too)
        return None, None
    if offline:
        return "this server does not fetch web addresses (started with --offline); upload the files instead", None
    try:
        check_url(url, allow_private)
    except BlockedAddress as exc:
        return server_words(str(exc)), None
    except FetchError as exc:
        return (str(exc), None) if _malformed(url) else (None, str(exc))
    return None, None


def url_problem(url: str, allow_private: bool, offline: bool = False) -> str | None:
    """Why this URL gives nothing, known before fetching anything (see url_check), or None."""
    refusal, failure = url_check(url, allow_private, offline)
    return refusal or failure


def _data_uri(url: str) -> bool:
    return url[:5].lower() == "data:"


def _malformed(url: str) -> bool:
    """Not an http(s) URL with a host: what check_url refuses before it looks the host up."""
    from ..sources.net import SCHEMES, port_ok

    if _data_uri(url):
        return False
    try:  # .host decodes an IDNA name, and raises on one that is not (http://xn--/)
        parsed = httpx.URL(url)
        return parsed.scheme not in SCHEMES or not parsed.host or not port_ok(parsed.port)
    except Exception:
        return True
