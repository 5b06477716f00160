"""The JSON API under /api: health, classify uploaded files, classify a URL."""

from __future__ import annotations

import asyncio
import threading
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator

import anyio
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from ..pipeline import Record, summarize
from ..sources import Blob
from ..sources.files import blobs_together
from .export import readable
from .limits import URL_BODY_BYTES
from .work import Worker

GRACE_SECONDS = 2.0  # past the per-request limit before the HTTP answer gives up on the work
WAITING_PER_JOB = 4  # requests that may wait for a slot, per slot; more are told the server is busy
# a verdict is medical when p_medical >= t and non-medical when p_medical <= 1 - t: below 0.5 both would hold
LOWEST_THRESHOLD = 0.5
THRESHOLD_HELP = ("Overrides the model's threshold, from 0.5 to 1: medical when p_medical ≥ threshold, "
                  "non-medical when p_medical ≤ 1 − threshold, else uncertain.")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class RecordOut(BaseModel):
    input: str = Field(description="The file, archive member or URL the image came from.")
    locator: str = Field(description="Where inside it: page, image, frame, position.")
    label: str | None = None
    medical: bool | None = None
    confidence: float | None = Field(None, description="Calibrated probability of `label`.")
    p_medical: float | None = Field(None, description="Probability that the image is medical.")
    verdict: str | None = Field(None, description="medical, non-medical or uncertain at the threshold.")
    width: int | None = None
    height: int | None = None
    error: str | None = Field(None, description="Why this item gave no image; the rest still ran.")
    skipped: bool | None = Field(None, description="With full=true: skipped on purpose.")
    format: str | None = Field(None, description="With full=true: the source format.")
    metadata: dict[str, Any] | None = Field(None, description="With full=true: e.g. DICOM tags.")
    probs: dict[str, float] | None = Field(None, description="With full=true: every label's probability.")


class ClassifyResponse(BaseModel):
    results: list[RecordOut]
    summary: dict[str, Any] = Field(description="Counts: images, errors, skipped, verdicts, labels.")


class ErrorOut(BaseModel):
    error: str = Field(description="What was wrong, in a sentence.")
    detail: Any = Field(None, description="FastAPI's detail (a list of field problems for 422).")


ERRORS = {
    400: {"model": ErrorOut, "description": "Bad request: malformed upload, refused URL (scheme, private address)."},
    413: {"model": ErrorOut, "description": "The request body is larger than the server accepts."},
    422: {"model": ErrorOut, "description": "Missing or invalid fields (no files, bad JSON, bad threshold)."},
    503: {"model": ErrorOut, "description": "Busy with other requests for too long; try again."},
    504: {"model": ErrorOut, "description": "The request went past its time limit."},
}


class UrlRequest(BaseModel):
    url: str = Field(description="An http:// or https:// address of a page or an image.",
                     examples=["https://example.org/article.html"])
    render: bool = Field(False, description="Render the page in headless Chromium before looking for images.")
    threshold: float | None = Field(None, ge=LOWEST_THRESHOLD, le=1.0, description=THRESHOLD_HELP)


def create_router(worker: Worker) -> APIRouter:
    cfg = worker.config
    router = APIRouter(prefix="/api", tags=["api"])
    RETRY = {"Retry-After": "5"}  # seconds, as the byte budget's 503 says too
    jobs = anyio.Semaphore(cfg.max_jobs)
    waiting = 0
    busy = "the server is busy with other requests; try again shortly"

    async def run(request: Request, fn: Callable[[threading.Event], list[Record]]) -> list[Record]:
        """fn(stop) in a thread holding one of the job slots until it has really ended, however the request
        ends: answered, timed out (504), or the client gone; `stop` tells the work to end early."""
        nonlocal waiting
        try:
            jobs.acquire_nowait()  # a free slot: no waiting
        except anyio.WouldBlock:
            if waiting >= cfg.max_jobs * WAITING_PER_JOB:  # each waiting request holds its upload
                raise HTTPException(503, busy, headers=RETRY) from None
            waiting += 1
            try:
                with anyio.fail_after(cfg.request_timeout):
                    await jobs.acquire()
            except TimeoutError:
                raise HTTPException(503, busy, headers=RETRY) from None
            finally:
                waiting -= 1
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def work() -> list[Record]:
            try:
                return fn(stop)
            finally:
                try:
                    loop.call_soon_threadsafe(jobs.release)
                except RuntimeError:  # the event loop has gone (a test client's)
                    pass

        done = loop.run_in_executor(None, work)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait([done, gone], timeout=cfg.request_timeout + GRACE_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                return done.result()
            if gone.done():
                raise HTTPException(499, "the client closed the connection")
            raise HTTPException(504, f"the request took longer than its time limit of {cfg.request_timeout:g} s")
        finally:
            stop.set()
            gone.cancel()

    @router.get("/health", summary="Is the server up, and which model does it use")
    def health() -> dict:
        info = worker.model_info()
        return {"status": "ok", "model": {k: info[k] for k in ("name", "version", "labels", "input_size")}}

    # HEAD too: load balancers and uptime monitors often probe with it (one operation in the schema)
    router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)

    @router.post("/classify", response_model=ClassifyResponse, response_model_exclude_unset=True,
                 summary="Classify every image in the uploaded files", responses=ERRORS,
                 max_body_size=cfg.max_upload_bytes, form_limits={"max_files": cfg.max_files})
    async def classify_files(
        request: Request,
        files: list[UploadFile] = File(..., description="Images, DICOM files, zips or PDFs; one or many."),
        threshold: float | None = Query(None, ge=LOWEST_THRESHOLD, le=1.0, description=THRESHOLD_HELP),
        form_threshold: float | None = Form(None, alias="threshold", ge=LOWEST_THRESHOLD, le=1.0,
                                            description="The same, as a form field beside the files (curl -F)."),
        full: bool = Query(False, description="Add format, metadata (e.g. DICOM tags) and every label's probability."),
        show_skipped: bool = Query(False, description="Also list items skipped on purpose (tiny decorations, …)."),
    ) -> dict:
        named = [(_display_name(f.filename, i), f) for i, f in enumerate(files, 1)]  # repeated: see blobs_together
        limits = cfg.limits()
        threshold = threshold if threshold is not None else form_threshold
        records = await run(request, lambda stop: worker.run(_blobs(named, limits.max_input_bytes), limits,
                                                             threshold=threshold, stop=stop))
        return _response(records, full, show_skipped)

    @router.post("/classify-url", response_model=ClassifyResponse, response_model_exclude_unset=True,
                 summary="Classify every image on a web page (or the image at a URL)", responses=ERRORS,
                 max_body_size=URL_BODY_BYTES)
    async def classify_url(
        request: Request,
        body: UrlRequest,
        full: bool = Query(False, description="Add format, metadata and every label's probability."),
        show_skipped: bool = Query(False, description="Also list items skipped on purpose."),
    ) -> dict:
        url = body.url.strip()
        problem = await anyio.to_thread.run_sync(url_problem, url, cfg.allow_private, cfg.offline)
        if problem:
            raise HTTPException(400, problem)
        limits = cfg.limits(render=body.render)
        records = await run(request, lambda stop: worker.run([url], limits, threshold=body.threshold, stop=stop))
        return _response(records, full, show_skipped)

    # last: any other path under /api is answered here, not by the page mounted at /, so it gets the API's errors
    @router.api_route("", methods=METHODS, include_in_schema=False)
    @router.api_route("/{rest:path}", methods=METHODS, include_in_schema=False)
    def no_such_endpoint(request: Request) -> None:
        path = request.url.path
        allowed = sorted({m for r in router.routes if isinstance(r, APIRoute) and r.endpoint is not no_such_endpoint
                          and r.path_regex.match(path) for m in r.methods})
        if allowed:
            raise HTTPException(405, f"{path} does not take {request.method}; use {', '.join(allowed)}",
                                headers={"Allow": ", ".join(allowed)})
        raise HTTPException(404, f"there is no {path}: the API has /api/health, /api/classify and "
                                 "/api/classify-url (see /docs)")

    return router


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (the body is read by now, so the next message is the disconnect)."""
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # cannot tell: assume the client is still there
        await anyio.sleep_forever()


def _response(records: list[Record], full: bool, show_skipped: bool) -> dict:
    shown = [r for r in records if show_skipped or not r.skipped]
    # a name that is not UTF-8 comes out readable (U+FFFD), never a 500: pydantic refuses surrogates
    return {"results": [readable(r).to_dict(full=full) for r in shown], "summary": summarize(records)}


def _display_name(filename: str | None, i: int) -> str:
    """The name to report an upload by: its base name, never a client-chosen path."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    return name or f"upload-{i}"


def _blobs(named: list[tuple[str, UploadFile]], cap: int) -> Iterator[Blob]:
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

    return blobs_together([(name, reader(upload), upload.content_type) for name, upload in named], cap)


def url_problem(url: str, allow_private: bool, offline: bool = False) -> str | None:
    """Why this URL must be refused before fetching anything (offline server, bad scheme, no host, private
    address), or None."""
    from ..sources.net import BlockedAddress, FetchError, check_url

    if offline:
        return "this server does not fetch web addresses (started with --offline); upload the files instead"
    try:
        check_url(url, allow_private)
    except BlockedAddress as exc:
        return f"{exc} — this server was started without --allow-private"
    except FetchError as exc:
        return str(exc)
    return None
