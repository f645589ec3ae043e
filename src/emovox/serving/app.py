"""The FastAPI application: :func:`create_app` wires the model, the engine, the routes, the
request ids, the JSON errors, the offline API docs and the web page together.

Examples:
    >>> app = create_app(ServerSettings(), model=object())   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import re
import sys
import threading
import time
import uuid
from importlib import resources

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from emovox._version import __version__
from emovox.serving.engine import InferenceEngine
from emovox.serving.guard import CleanFormatter, GuardMiddleware, clean
from emovox.serving.limits import ApiError, ServerSettings, UploadBudget

log = logging.getLogger("emovox.serving")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

DESCRIPTION = """Speech emotion recognition over HTTP and WebSocket.

* `POST /v1/predict`: one clip → label and scores.
* `POST /v1/timeline`: a long recording → speech segments with emotions, and a summary.
* `WS /v1/stream`: live 16-bit PCM → an emotion update every 0.5 s and a result per speech segment
  (message schema: `docs/streaming.md`).

Errors are JSON: `{"error": {"status", "code", "message"}, "request_id"}`; every response
carries an `X-Request-ID` header, which is also in the server log.
"""


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or ``-``) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be swapped)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with the request id: ``time level [request id] message``."""
    handler = _StderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(CleanFormatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    logger = logging.getLogger("emovox")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class RequestIdMiddleware:
    """Pure ASGI middleware: a request id per request or websocket (the client's ``X-Request-ID``
    when it is 1-64 of ``A-Z a-z 0-9 . _ -``, else a new one), in the response headers and the
    logs; one access line per request (the path with control characters escaped); an
    unexpected exception becomes a logged 500 with the id, never a bare traceback page."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _CLIENT_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start, status, started = time.perf_counter(), 0, False

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s", clean(scope.get("method", "WS")), clean(scope.get("path")))
            status = 500
            if scope["type"] == "http" and not started:
                body = ApiError(500, "internal_error", "internal server error (a bug: please report it "
                                "with the request id)").body(rid)
                await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log.info("%s %s %d %.1fms", clean(scope["method"]), clean(scope["path"]), status,
                         1000 * (time.perf_counter() - start))
            request_id_var.reset(token)


def describe_model(model) -> dict:
    """What ``GET /v1/models`` says about a loaded model (PyTorch or ONNX)."""
    config = getattr(model, "config", None) or getattr(getattr(model, "bundle", None), "config", None) or {}
    features = config.get("features") or config.get("source", {}).get("features") or {}
    versions = config.get("versions") or config.get("source", {}).get("versions") or {}
    return {"id": getattr(model, "model_id", "emovox-model"), "labels": list(model.labels),
            "encoder": features.get("encoder"), "version": versions.get("emovox"), "backend": type(model).__name__,
            "sampling_rate": 16000, "profile": _describe_profile(getattr(model, "profile", None)),
            "dimensions": "head" if getattr(model, "has_dimensions", False) else "circumplex"}


def _describe_profile(profile) -> dict | None:
    """A domain profile's summary for ``/v1/models`` (never the clips' paths)."""
    if profile is None:
        return None
    # prosody: the profile carries the domain's prosody statistics (a model's prosody head reads them);
    # scaled: it also moves the domain's spread toward the training corpora's (emovox.training.profile_spread)
    return {"n_clips": profile.n_clips, "created": profile.created, "balance": profile.balance,
            "prosody": getattr(profile, "prosody_mean", None) is not None,
            "scaled": getattr(profile, "scale", None) is not None}


class ServerState:
    """What the routes share: settings, model, engine, counters."""

    def __init__(self, settings: ServerSettings, model):
        import anyio

        self.settings = settings
        self.model = model
        self.info = describe_model(model)
        self.labels = list(model.labels)
        self.engine = InferenceEngine(model, max_batch=settings.max_batch, max_queue=settings.max_queue,
                                      batch_wait=settings.batch_wait, workers=settings.inference_threads)
        self.engine.model_id = self.info["id"]
        self.timeline_limiter = anyio.CapacityLimiter(settings.max_timeline_jobs)
        self.asr_limiter = anyio.CapacityLimiter(1)  # one transcription at a time: it uses every ASR thread
        self.uploads = UploadBudget(settings.max_concurrent_uploads, max(settings.max_buffered_bytes,
                                                                         settings.max_upload_bytes))
        self.started = time.time()
        self.streams = 0  # past their start message
        self.streams_by_client: dict[str, int] = {}
        self.handshakes = 0  # connected, start message not yet received
        self._transcriber = None
        self._transcriber_lock = threading.Lock()

    def transcriber(self):
        """The process's :class:`emovox.text.transcribe.Transcriber`, loaded at start by
        :func:`create_app` when ``settings.transcribe`` is on. Raises :class:`ApiError` 400
        ``asr_disabled`` when it is off, 501 when faster-whisper or the Whisper weights are missing."""
        if not self.settings.transcribe:
            raise ApiError(400, "asr_disabled", "transcription is off on this server: it was started without "
                           "--transcribe (leave transcribe out, or ask the operator to enable it)")
        with self._transcriber_lock:
            if self._transcriber is None:
                from emovox.errors import EmovoxError
                from emovox.text.transcribe import Transcriber

                try:
                    self._transcriber = Transcriber(self.settings.asr_model, threads=self.settings.threads)
                except (ImportError, EmovoxError) as exc:
                    raise ApiError(501, "asr_unavailable", f"transcription is not available on this server: {exc} "
                                   "(it needs faster-whisper and the packaged Whisper weights)") from None
            return self._transcriber


def _error_response(request, error: ApiError) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    headers = {"Retry-After": str(getattr(error, "retry_after", 1))} if error.status in (429, 503) else {}
    if error.status == 408:
        headers["Connection"] = "close"  # the rest of the body is not read
    return JSONResponse(error.body(rid), status_code=error.status, headers=headers)


def create_app(settings: ServerSettings | None = None, *, model=None) -> FastAPI:
    """The emovox API app; loads the model now (``settings.model_dir``) unless one is given."""
    settings = settings or ServerSettings()
    _limit_threads(settings.threads)
    if model is None:
        from emovox import load

        model = load(settings.model_dir, profile=settings.profile)
        if settings.inference_threads is None and settings.threads is None and getattr(model, "variant", "") == "int8":
            # int8 runs clip by clip (emovox.runtime), so parallel clips beat parallel math: one
            # engine thread per core, each encoding one clip on one thread (2 cores: 77 req/s,
            # p99 242 ms at 16 clients, against 65 req/s and p99 284-372 ms with one 2-thread engine)
            cores = os.cpu_count() or 1
            model = load(settings.model_dir, threads=1, profile=settings.profile)
            settings = dataclasses.replace(settings, inference_threads=cores, max_batch=1)
    if settings.inference_threads is None:
        settings = dataclasses.replace(settings, inference_threads=1)
    if settings.threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(settings.threads)
    state = ServerState(settings, model)
    if settings.transcribe:
        state.transcriber()  # load Whisper now, not on a first request (ApiError 501 if it cannot)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.engine.start()
        log.info("serving model %s (%s, labels %s)", state.info["id"], state.info["backend"], ",".join(state.labels))
        yield
        state.engine.stop()

    app = FastAPI(title="emovox", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.emovox = state
    app.add_middleware(GuardMiddleware, settings=settings)
    app.add_middleware(RequestIdMiddleware)  # outermost: refusals by the guard get an id and a log line

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return _error_response(request, exc)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request, exc: ClientDisconnect):  # mid-upload: nobody reads the answer, the log does
        return _error_response(request, ApiError(499, "client_closed_request", "the client disconnected"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error_response(request, ApiError(400, "bad_request", where or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error_response(request, ApiError(exc.status_code, code, str(exc.detail)))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    from emovox.serving import routes, stream

    app.include_router(routes.router)
    app.include_router(stream.router)
    _mount_docs(app)
    _mount_web(app)
    return app


def _limit_threads(threads: int | None) -> None:
    """One BLAS thread: numpy's only BLAS work here (the mel filter bank) is tiny, and OpenBLAS
    threads spinning against busy cores made it 15x slower on a shared 2-core machine.
    ``threads`` also reaches an ONNX model through ``$EMOVOX_THREADS`` (read when it loads)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; without it nothing is limited
        pass
    if threads:
        os.environ["EMOVOX_THREADS"] = str(threads)


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: settings from ``$EMOVOX_SERVE_SETTINGS``."""
    configure_logging()
    return create_app(ServerSettings.from_env())


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package: no CDN (the page works offline)."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="emovox API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")


def _mount_web(app: FastAPI) -> None:
    """The web page: ``/`` is index.html, its scripts and styles are under /static."""
    web = resources.files("emovox") / "serving" / "web"
    app.mount("/static", StaticFiles(directory=str(web)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(web / "index.html"), media_type="text/html")
