"""One FastAPI app: the JSON API under /api, its docs at /docs, the Gradio page at /."""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import copy
import logging
import math
import os
import re
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, unquote

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, PlainTextResponse, Response  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.middleware.cors import CORSMiddleware  # noqa: E402

from .. import __version__  # noqa: E402
from .api import LOWEST_THRESHOLD, WAITING_PER_JOB, create_router  # noqa: E402
from .config import ServerConfig, loopback  # noqa: E402
from .events import KnownEvents  # noqa: E402
from .examples import make_examples  # noqa: E402
from .guard import OwnFilesOnly  # noqa: E402
from .hosts import OwnHostsOnly  # noqa: E402
from .limits import BodyLimit, error_body, route_path  # noqa: E402
from .ui import CSS, I18N, build_ui, theme  # noqa: E402
from .work import Worker  # noqa: E402
from ..listening import LOG_FORMAT, cannot_listen  # noqa: E402
from ..scratch import private_folder, remove, server_scratch  # noqa: E402

log = logging.getLogger("medimg.server")

DESCRIPTION = """Find every image in uploaded files (images, DICOM, zip, PDF) or on a web page and say whether
it is a medical image, of which kind, and how sure the model is. Each result is one image, or one item that
could not be read (with `error` set); a bad item never fails the whole request."""


def create_app(config: ServerConfig | None = None, worker: Worker | None = None, ui: bool = True) -> FastAPI:
    config = config or ServerConfig()
    config.check()  # again: a setting changed after the config was made
    worker = worker or Worker(config)
    limits = (f"\n\nThis server accepts at most {config.max_upload_bytes / 2**20:g} MB and {config.max_files} files "
              f"per request and classifies for at most {config.request_timeout:g} s per request; URLs that "
              f"resolve to private addresses are {'allowed' if config.allow_private else 'refused'}.")
    app = Prefixed(title="medimg", version=__version__, description=DESCRIPTION + limits, docs_url=None,
                   redoc_url=None, lifespan=_remove_scratch)
    app.prefix = config.root_path
    app.state.worker = worker
    app.state.scratch = []  # private folders removed when the server stops
    _add_error_handlers(app)
    _add_docs(app)
    # upload bytes held at once, per upload path: full uploads for the API's running (max_jobs) and waiting
    # requests, and for max_jobs more arriving
    held = config.max_jobs * (WAITING_PER_JOB + 2) * config.max_upload_bytes
    app.state.file_roots = []  # where the files the page's events name may be (set with the page)
    app.state.blocks = None  # the page's Blocks (set with the page)
    app.add_middleware(KnownEvents, blocks=lambda: app.state.blocks)  # added first: runs after BodyLimit
    app.add_middleware(OwnFilesOnly, roots=lambda: app.state.file_roots)
    app.add_middleware(BodyLimit, max_upload_bytes=config.max_upload_bytes, max_body_bytes=config.max_body_bytes,
                       max_held_bytes=held, upload_folder=Path(gr.utils.get_upload_folder()) if ui else None)
    app.add_middleware(NoDeepLink)
    app.add_middleware(NoStore)
    # no other origin may read an answer (no Access-Control-Allow-Origin). Having it here also turns off Gradio's
    # own CORS, which lets any origin read the page's routes, with the browser's credentials, unless the Host is
    # localhost (then any localhost origin)
    app.add_middleware(CORSMiddleware, allow_origins=[])
    if config.token:  # added last, so it runs first: nothing else sees a request without the token
        from .auth import TokenAuth

        app.add_middleware(TokenAuth, token=config.token)
        _add_security(app)
    if config.allowed_hosts is not None:  # before the token: a rebinding page is refused whatever it sends
        app.add_middleware(OwnHostsOnly, names=config.allowed_hosts)
    app.add_middleware(NoFraming)  # outside TokenAuth: its 401 carries them too
    app.add_middleware(CutAtStop)  # whatever the request was doing when the stop cut it
    app.add_middleware(Timed)  # outermost: the access log's time counts everything the app did
    app.include_router(create_router(worker))
    if not ui:
        return app
    examples_folder, sessions = _scratch(app, "medimg-examples-"), _scratch(app, "medimg-pages-")
    try:
        examples = make_examples(examples_folder)
    except Exception as exc:  # examples are a nicety
        log.warning("no examples: %s", exc)
        examples = {}
    blocks = build_ui(worker, examples, sessions)
    folders = [Path(gr.utils.get_upload_folder()).absolute(), sessions.absolute()]
    app.state.file_roots = folders + [f.resolve() for f in folders]  # as written, and without links
    app = gr.mount_gradio_app(
        app, blocks, path="/", server_name=config.host, server_port=config.port, root_path=config.root_path,
        css=CSS, theme=theme(), footer_links=[], run_history=False, i18n=I18N,
        max_file_size=config.max_upload_bytes, show_error=True, ssr_mode=False, mcp_server=False,
    )
    blocks.has_launched = True  # Gradio's own check of the files events name runs only once this is set
    app.state.blocks = blocks
    return app


class Prefixed(FastAPI):
    """FastAPI with a proxy's path prefix set on every request, before any middleware, as FastAPI's deprecated
    `root_path` argument did (uvicorn's own would add it to every path). Requests may come with the prefix
    (the proxy passes it on) or without it (the proxy strips it)."""

    prefix = ""

    async def __call__(self, scope, receive, send) -> None:
        if self.prefix:
            scope["root_path"] = self.prefix
        await super().__call__(scope, receive, send)


class NoStore:
    """`Cache-Control: no-store` (and `X-Content-Type-Options: nosniff`) on every answer that may hold a
    visitor's results: the API's, and Gradio's
    under /gradio_api (thumbnails and downloads at /file=, the event streams, uploads), so a browser keeps
    none of them once the page is closed. The page's JS, CSS and fonts (/assets, /static, …) stay cacheable."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not _private(route_path(scope)):
            await self.app(scope, receive, send)
            return

        async def no_store(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"cache-control", b"x-content-type-options")]
                # nosniff: an upload served back is taken as the type it is served as, never as a page
                message = {**message, "headers": headers + [(b"cache-control", b"no-store"),
                                                             (b"x-content-type-options", b"nosniff")]}
            await send(message)

        await self.app(scope, receive, no_store)


class NoFraming:
    """Headers on every answer, the page's, /docs' and a 401's included: no other site may show them in a frame
    (a page of another origin could lay the page out under its own buttons and have a visitor click Run:
    clickjacking), no answer is taken for another type than it says, and a link followed from the page does not
    tell the other site the server's address and path."""

    HEADERS = [(b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
               (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
    NAMES = {name for name, _ in HEADERS}

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.NAMES]
                message = {**message, "headers": headers + self.HEADERS}
            await send(message)

        await self.app(scope, receive, framed)


class CutAtStop:
    """A request still running when the stop's --graceful-timeout ends is cancelled by uvicorn, which answered it
    with a bare 500 and logged a traceback. It gets a 503 (Retry-After: 5) saying the server stopped, and the log
    one warning line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:  # only uvicorn's stop cancels a request's task
            # the path as sent, escaped: a decoded %0A or %1B would start a forged log line or drive the terminal
            log.warning('the server stopped before "%s %s" ended (--graceful-timeout)', scope["method"],
                        _loggable(quote(route_path(scope), safe="/=:@!$&'()*+,;~")))
            if started:  # part of the answer went: the connection is closed as it was
                raise
            text = "the server stopped before this request ended; send it again shortly"
            headers = {"Retry-After": "5", "Connection": "close", "Cache-Control": "no-store"}
            path = route_path(scope)
            if path == "/api" or path.startswith("/api/"):  # the API's error shape; the page's, plain text
                answer = JSONResponse(error_body(text), status_code=503, headers=headers)
            else:
                answer = PlainTextResponse(text, status_code=503, headers=headers)
            await answer(scope, receive, send)


# when the request being answered reached the app (time.monotonic()), for the access log's time taken
_began: contextvars.ContextVar[float] = contextvars.ContextVar("medimg_request_began")


class Timed:
    """Notes when each request reaches the app, so that its access-log line (written by uvicorn as the answer
    starts, in the request's own task) can say how long the answer took: body, queueing and work included. A
    request whose client hung up before its answer started gets no line from uvicorn: it gets one here, with
    nginx's status for it, 499."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _began.set(time.monotonic())
        started = gone = False

        async def watched_receive():
            nonlocal gone
            message = await receive()
            gone = gone or (message["type"] == "http.disconnect" and not started)
            return message

        async def watched_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            if gone:  # uvicorn drops an answer to a client that has gone, its log line too
                _log_gone(scope)


def _log_gone(scope) -> None:
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                             get_path_with_query_string(scope), scope["http_version"], 499)


DEEP_LINK = "/gradio_api/deep_link"


class NoDeepLink:
    """A 404 for Gradio's `GET /gradio_api/deep_link?session_hash=…`, which writes the values a session's page
    shows (the results table with its file names, the counts line) to a `state.json` in Gradio's shared upload
    area, kept after the page has closed, and hands back its name. The page has no deep links; a middleware,
    so it wins over Gradio's route with or without the proxy's prefix, a trailing slash or doubled slashes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and _deep_link(route_path(scope)):
            error = f"there is no {DEEP_LINK}"
            await JSONResponse(error_body(error), status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _deep_link(path: str) -> bool:
    return re.sub(r"/{2,}", "/", path).rstrip("/").lower() == DEEP_LINK


def _private(path: str) -> bool:
    """A path whose answers may carry a visitor's results (or their names)."""
    return (path == "/api" or path.startswith("/api/")
            or (path.startswith("/gradio_api/") and not path.startswith("/gradio_api/custom_component/")))


def _scratch(app: FastAPI, prefix: str) -> Path:
    """A new private (0700) temporary folder, removed when the server stops (or, failing that, at exit; or, when
    the server is killed, by the next one: see scratch.private_folder)."""
    folder = private_folder(prefix)
    app.state.scratch.append(folder)
    atexit.register(remove, folder)
    return folder


@asynccontextmanager
async def _remove_scratch(app: FastAPI):
    """uvicorn ends a process it stopped by re-raising the signal, so atexit never runs there: clean up here,
    even when Gradio's own clean-up inside this one fails."""
    try:
        yield
    finally:
        for folder in app.state.scratch:
            remove(folder)


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files installed with fastapi-offline, so no CDN is needed."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse

    static = Path(fastapi_offline.__file__).parent / "static"
    files = {p.name: p for p in static.iterdir() if p.is_file()}

    # a route, not a mounted StaticFiles: a mount misreads paths that come without the proxy's prefix. HEAD as
    # well as GET: a GET-only route let HEAD fall through to the page mounted at /, a 404
    @app.api_route("/docs-static/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def docs_file(name: str):
        if name not in files:
            raise HTTPException(404, f"there is no /docs-static/{name}")
        return FileResponse(files[name])

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy at a path prefix
        return get_swagger_ui_html(openapi_url=root + app.openapi_url, title="medimg API",
                                   swagger_js_url=f"{root}/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/docs-static/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/docs-static/favicon.png")


def _add_security(app: FastAPI) -> None:
    """The token in the schema, as the two ways TokenAuth takes it (either will do), so that a client generated
    from it sends one; the paths open without it (/api/health) need none."""
    from .auth import OPEN_PATHS

    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()  # kept as app.openapi_schema: changed in place
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <token>"},
                "basic": {"type": "http", "scheme": "basic", "description": "The token as the password, any user name"},
            }
            schema["security"] = [{"bearer": []}, {"basic": []}]
            for path in OPEN_PATHS:
                for operation in schema["paths"].get(path, {}).values():
                    operation["security"] = []
        return app.openapi_schema

    app.openapi = openapi


def _add_error_handlers(app: FastAPI) -> None:
    """Every 4xx/5xx from the API is JSON of one shape (limits.error_body): `error` and `detail`, one readable
    sentence, and for a 422 `errors`, the fields at fault. These handlers are the app's own routes' (the API,
    /docs): the page is a mounted app of its own, whose errors keep Gradio's shape for its client."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        text = str(exc.detail)  # (a 413 gets its route's limit from BodyLimit)
        errors = getattr(exc, "errors", None) or [{"loc": [], "msg": text, "type": "value_error"}]
        return JSONResponse(error_body(text, errors if exc.status_code == 422 else None),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(error_body(_explain(errors), _plain(errors)), status_code=422)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:  # uvicorn logs the traceback
        path = route_path(request.scope)
        if path != "/api" and not path.startswith("/api/"):  # (the page's own failures never come here)
            return PlainTextResponse("Internal Server Error", status_code=500)  # as Starlette answers
        return JSONResponse(error_body("the server failed on this request (its log says why); try again, "
                                       "or report it if it happens again"), status_code=500)


def _explain(errors: list[dict]) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query")]
        kind = e.get("type", "")
        if kind == "json_invalid":
            why = (e.get("ctx") or {}).get("error")
            parts.append("the request body is not valid JSON" + (f" ({why})" if why else ""))
        elif not loc and kind in ("model_attributes_type", "dict_type", "missing"):  # a form, a list, no body
            parts.append('send a JSON object, e.g. {"url": "https://example.org/"}, with content-type '
                         "application/json")
        elif loc == ["threshold"] and kind != "missing":
            parts.append(f"threshold must be a number from {LOWEST_THRESHOLD:g} to 1 (medical when p_medical ≥ "
                         "threshold, non-medical when p_medical ≤ 1 − threshold)")
        elif kind == "missing" and loc[:1] == ["files"]:
            parts.append("no files were sent: upload one or more files in the multipart field 'files'")
        elif loc[:1] == ["files"]:
            parts.append("every 'files' part must be a file upload with a file name")
        elif kind == "missing":
            parts.append(f"'{'.'.join(loc)}' is required")
        elif kind == "extra_forbidden":  # a misspelt field would otherwise be ignored unseen
            parts.append(f"unknown field '{'.'.join(loc)}': the body takes url or urls, render, threshold, full "
                         "and show_skipped")
        else:
            parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _plain(errors: list[dict]) -> list[dict]:
    """Validation errors as {"loc", "msg", "type"} (and "ctx"), without the raw input or exception objects (not
    always JSON-serialisable)."""
    return [{k: (v if k != "ctx" else {ck: str(cv) for ck, cv in v.items()}) for k, v in e.items()
             if k in ("loc", "msg", "type", "ctx")} for e in errors]


def run(config: ServerConfig, scratch: list[Path] = (), log_level: str = "info") -> None:
    """Serve until stopped; `scratch` are folders made for this server (its Gradio area, set up before Gradio
    was imported), removed when it stops."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format=LOG_FORMAT)
    quiet_libraries()
    if not any(isinstance(f, _Seldom) for f in logging.getLogger("asyncio").filters):
        logging.getLogger("asyncio").addFilter(_Seldom())
    problem = cannot_listen(config.host, config.port)
    if problem:  # said before anything is built or logged as running; exit code 3, as uvicorn's own
        log.error("medimg serve: cannot listen on %s port %d: %s", config.host, config.port, problem)
        raise SystemExit(3)
    try:
        worker = Worker(config)
    except FileNotFoundError as exc:  # no model: say so plainly instead of a traceback
        raise SystemExit(f"medimg serve: {exc}") from None
    more_open_files(config)
    scratch = list(scratch) + server_scratch()  # none made here when the CLI made them before importing Gradio
    app = create_app(config, worker)
    app.state.scratch.extend(scratch)
    info = app.state.worker.model_info() if hasattr(app.state, "worker") else {}
    log.info("medimg %s, model %s %s; web page at %s , API docs at %s/docs", __version__, info.get("name"),
             info.get("version"), page_url(config.host, config.port, config.root_path), config.root_path)
    log.log(*access_note(config))
    server = _server_class()(uvicorn_config(app, config.host, config.port, log_level=log_level,
                                            graceful=config.graceful_timeout))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:  # e.g. the port is taken (uvicorn has said so): fail as uvicorn.run does
        raise SystemExit(3)


def page_url(host: str, port: int, root_path: str = "") -> str:
    """The page's address as the start's log line gives it: an IPv6 address in brackets (http://[::1]:7860/)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{root_path}/"


SPARE_FILES = 1024  # open files beyond the uploads': connections, the model, the page's files


def open_files_needed(config: ServerConfig) -> int:
    """Open files the API's uploads can hold at once: each file over 1 MB is spooled to a temporary file of its
    own, for the requests running and waiting (and max_jobs more arriving, as the byte budget counts)."""
    return config.max_jobs * (WAITING_PER_JOB + 2) * config.max_files + SPARE_FILES


def more_open_files(config: ServerConfig) -> None:
    """Raise the soft open-file limit (1024 under systemd and most shells) up to what the uploads can need, as far
    as the hard limit allows; warn when that is still short. At 1024, seven requests of 180 files over 1 MB each
    used up the server's files: uploads failed and new connections were refused, health checks too."""
    try:
        import resource
    except ImportError:  # not on Windows, which has no such limit
        return
    need = open_files_needed(config)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, want, exc)
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning("the open-file limit is %d, under the %d that full queues of many-file uploads can hold: "
                    "raise it (LimitNOFILE=%d under systemd, ulimit -n)", soft, need, need)


def access_note(config: ServerConfig) -> tuple[int, str]:
    """The log level and line saying who may use the server: a warning when it is open beyond this machine."""
    if config.token:
        return logging.INFO, "access: the token is needed (HTTP Basic password or Bearer)"
    if loopback(config.host):
        names = "any name" if config.allowed_hosts is None else (
            "localhost, IP addresses" + "".join(f", {n}" for n in config.allowed_hosts))
        return logging.INFO, f"access: open to anyone on this machine, by {names} (see --token-file, --allowed-host)"
    return logging.WARNING, (f"access: open to anyone who can reach {config.host} port {config.port}, with no "
                             "token: give --token-file (or MEDIMG_TOKEN) unless a proxy in front checks access")


def _server_class():
    """uvicorn's Server, which on shutdown first ends the open pages' heartbeat streams. Gradio ends them when
    its own launcher stops; mounted here, each open page held the stop for the whole graceful timeout (30 s: a
    `docker stop` killed the server first, and its scratch folders, uploads included, were left behind)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            stop_pages(self.config.app)
            await super().shutdown(sockets)

    return Server


def stop_pages(app) -> None:
    """Set the stop event of each Gradio app mounted in `app`: its pages' heartbeat streams end."""
    for route in getattr(app, "routes", []):
        event = getattr(getattr(route, "app", None), "stop_event", None)
        if event is not None:
            event.set()


# libraries whose lower levels carry what a file or request holds, and the lowest level the server logs of each
QUIET = {
    "httpx": logging.WARNING,  # each request at INFO with its whole URL (user:password@, ?token=…, a name)
    "httpcore": logging.WARNING,
    "PIL": logging.INFO,  # at DEBUG, TIFF and EXIF tag values (ImageDescription, Artist: a patient's name, …)
}


def quiet_libraries() -> None:
    """The server's log, at INFO or at DEBUG, must not carry the addresses it fetches nor what the images hold."""
    for name, level in QUIET.items():
        logger = logging.getLogger(name)
        if logger.level < level:  # NOTSET too: it would follow the root logger down
            logger.setLevel(level)


class _Seldom(logging.Filter):
    """asyncio's "socket.accept() out of system resource" (no file left for a connection) once a minute: it is
    logged with its traceback at every refused accept, megabytes a second."""

    def __init__(self):
        super().__init__()
        self.last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self.last < 60:
            return False
        self.last = now
        return True


class _NoQuery(logging.Filter):
    """Access log lines without what would let a log reader open a visitor's results: query strings
    (Gradio's `session_hash=…`), the session hash or event id in a path (`/gradio_api/heartbeat/<session>`,
    `/gradio_api/stream/<session or event>/…`, `/gradio_api/call/<api>/<event>`), with which the page's events
    can be replayed as that visitor, and the paths of files the page serves (`/gradio_api/file=<path>`: a
    thumbnail or a CSV download, readable by anyone who has the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):  # the path is the one argument starting with "/"
            record.args = tuple(_loggable(a) if isinstance(a, str) and a.startswith("/") else a
                                for a in record.args)
        return True


class _Took(logging.Filter):
    """Gives each access-log record `took`: the milliseconds from the request reaching the app to its answer
    starting ("-" for one uvicorn answered itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        began = _began.get(None)
        record.took = f"{(time.monotonic() - began) * 1000:.0f} ms" if began is not None else "-"
        return True


# what follows these in a path is a secret (a session hash, an event id, a served file's path, a key): the whole
# rest of the path is left out, wherever the path starts (a proxy's prefix, Gradio's /gradio_api or not)
_SECRET_TAIL = re.compile(r"(/file=|/file/|/proxy=|/heartbeat/|/stream/|/call/v2/[^/]+/|/call/(?!v2/)[^/]+/"
                          r"|/monitoring/|/run-history/records/)(.+)", re.IGNORECASE)


def _loggable(path: str) -> str:
    path = path.split("?", 1)[0]
    plain = unquote(path)  # the raw path as sent: %2F or %3D must not hide a secret from the pattern
    found = _SECRET_TAIL.search(plain)
    return quote(plain[:found.end(1)], safe="/=:@!$&'()*+,;~") + "…" if found else path  # quoted again: one line


HEADER_SECONDS = 30.0  # a request's headers must have arrived this long after their first byte (nginx: 60 s)
IDLE_SECONDS = 300.0  # a connection that has sent nothing at all is let go then
SEND_SECONDS = 60.0  # a client may stop reading an answer this long (nginx's send_timeout)


def _timed_h11():
    """uvicorn's h11 protocol with a time limit on every request's headers, counted from their first byte (from
    the last answer's end on a kept-alive connection). uvicorn has none, so connections that never finish a
    request (slowloris) held the server's files until none were left, before any token was asked for (and
    asyncio then logged every refused accept: megabytes a second). A client that stops reading an answer is
    let go after SEND_SECONDS, its unsent bytes dropped."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    unarmed = object()

    class TimedH11(H11Protocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # nothing sent yet: a browser opens connections ahead of its requests; they get longer
            self._armed_for = unarmed
            self._send_due = None  # a timer while the client is not reading
            self._headers_due = self.loop.call_later(IDLE_SECONDS, self._idle_late)

        def data_received(self, data: bytes) -> None:
            between = self.cycle is None or self.cycle.response_complete
            if between and self._armed_for is not self.cycle:  # a request's first bytes
                self._headers_due.cancel()
                self._armed_for = self.cycle
                self._headers_due = self.loop.call_later(HEADER_SECONDS, self._headers_late)
            super().data_received(data)

        def _headers_late(self) -> None:
            if self.cycle is self._armed_for and not self.transport.is_closing():  # no request began since
                self.transport.close()

        def _idle_late(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._send_due is not None:
                self._send_due.cancel()
            self._send_due = self.loop.call_later(SEND_SECONDS, self._send_late)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._send_due is not None:
                self._send_due.cancel()

        def _send_late(self) -> None:
            if self.flow.write_paused:  # close() would wait to send what is buffered: drop it
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_due.cancel()
            if self._send_due is not None:
                self._send_due.cancel()
            super().connection_lost(exc)

    return TimedH11


def uvicorn_config(app, host: str, port: int, log_level: str = "info", graceful: float = 30.0):
    """uvicorn's settings for `medimg serve`: its logs (set up here) in one format with the time, the access
    log without query strings, session hashes, event ids or file paths, each line ending with the time the
    answer took; `graceful` seconds for requests in flight to finish on SIGTERM."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    for name, formatter in log_config["formatters"].items():  # the access line: uvicorn's message, then the time
        formatter["fmt"] = LOG_FORMAT + (" %(took)s" if name == "access" else "")
        formatter["use_colors"] = False
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=graceful,
                            log_config=log_config, http=_timed_h11())
    access = logging.getLogger("uvicorn.access")
    for kind in (_NoQuery, _Took):
        if not any(isinstance(f, kind) for f in access.filters):
            access.addFilter(kind())
    return config
