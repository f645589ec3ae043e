"""HTTP endpoints: ``/health``, ``/v1/models``, ``/v1/predict`` and ``/v1/timeline``.

Audio comes as a multipart upload (field ``file``) or as the raw request body with an audio
content type (``audio/wav``, ``audio/flac``, ``audio/*``, ``application/octet-stream``). It is
read under the byte cap, its header checked for the duration cap, then decoded in a worker
thread; the model runs on the engine thread (see :mod:`emovox.server.engine`).

``transcribe=true`` adds the words: ``transcript`` and ``language`` for a clip, ``text`` and
``language`` per timeline segment. The Whisper model loads on the first such request and
runs in a worker thread, one transcription at a time; a server without faster-whisper
answers 501 ``asr_unavailable``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.formparsers import MultiPartException, MultiPartParser

from ..audio import load_audio
from ..errors import EmovoxError
from ..timeline import make_timeline
from .limits import RAW_AUDIO_TYPES, ApiError, api_error_from, check_declared_duration, read_capped

router = APIRouter()

LABELS_QUERY = Query(None, description="Comma-separated subset of the model's labels to decide among, "
                                       "e.g. `neutral,angry`; the scores are renormalised over it.")

TRANSCRIBE_QUERY = Query(False, description="Also transcribe the speech (faster-whisper, the server's "
                                          "`--asr-model`): adds the words and their language.")

AUDIO_BODY = {
    "requestBody": {
        "required": True,
        "description": "The audio: a multipart upload in the field `file`, or the raw bytes with an "
                       "audio content type. WAV, FLAC, OGG/Vorbis/Opus or MP3; any sampling rate; "
                       "channels are averaged.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"},
                "labels": {"type": "string", "description": "same as the `labels` query parameter"}}}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str | None


class PredictResponse(BaseModel):
    label: str
    scores: dict[str, float]
    duration: float
    model: str
    request_id: str
    transcript: str | None = None
    language: str | None = None


class SegmentOut(BaseModel):
    start: float
    end: float
    label: str
    speech_segment: int
    scores: dict[str, float]
    text: str | None = None
    language: str | None = None


class Summary(BaseModel):
    speech: float
    speech_share: float
    shares: dict[str, float]
    dominant: str | None


class TimelineResponse(BaseModel):
    model: str
    duration: float
    labels: list[str]
    segments: list[SegmentOut]
    summary: Summary
    request_id: str


class ModelInfo(BaseModel):
    id: str
    labels: list[str]
    encoder: str | None
    version: str | None
    backend: str
    sampling_rate: int


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    server_version: str


class HealthResponse(BaseModel):
    status: str
    ok: bool
    model: str
    queue: int
    streams: int
    workers: int
    workers_alive: int
    worker_restarts: int
    uptime: float


ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in {
    400: "malformed request (empty body, broken multipart, bad parameter)",
    413: "upload over the byte limit",
    415: "not an audio content type, or bytes that do not decode as audio",
    422: "audio that cannot be used: too long or too short, no samples, NaN/inf, unknown label",
    429: "too many clips waiting: retry later",
    501: "transcribe=true on a server that cannot transcribe (faster-whisper or the Whisper weights missing)",
}.items()}


@router.get("/health", response_model=HealthResponse, tags=["service"])
async def health(request: Request) -> JSONResponse:
    """Liveness: answers at once even while the model is busy (it runs on its own threads); 503
    with ``ok: false`` when an inference worker has died (a supervisor should restart the server)."""
    state = request.app.state.emovox
    engine = state.engine
    ok = engine.alive
    return JSONResponse({"status": "ok" if ok else "error", "ok": ok, "model": state.info["id"], "queue": engine.pending,
                         "streams": state.streams, "workers": engine.workers, "workers_alive": engine.workers_alive,
                         "worker_restarts": engine.restarts, "uptime": round(time.time() - state.started, 1)},
                        status_code=200 if ok else 503)


@router.get("/v1/models", response_model=ModelsResponse, tags=["service"])
async def models(request: Request) -> dict:
    """The served model: id, labels, encoder and the emovox version it was trained with."""
    from .. import __version__

    return {"models": [request.app.state.emovox.info], "server_version": __version__}


@router.post("/v1/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=AUDIO_BODY,
             tags=["emotion"])
async def predict(request: Request, labels: str | None = LABELS_QUERY,
                  transcribe: bool = TRANSCRIBE_QUERY) -> JSONResponse:
    """The emotion of one clip (at most ``max_duration`` seconds, 120 by default)."""
    state = request.app.state.emovox
    data, form_labels = await read_audio_body(request, state.settings.max_upload_bytes)
    subset = parse_labels(labels if labels is not None else form_labels, state.labels)
    signal = await anyio.to_thread.run_sync(decode, data, state.settings.max_duration)
    result = await state.engine.predict(signal)
    label, scores = result.decide(subset)
    body = {"label": label, "scores": scores, "duration": round(result.duration, 3), "model": state.info["id"]}
    if transcribe:
        def job():
            return state.transcriber().transcribe_clips([signal])[0]

        spoken = await anyio.to_thread.run_sync(job, limiter=state.asr_limiter)
        body.update(transcript=spoken.text, language=spoken.language)
    return JSONResponse({**body, "request_id": request.state.request_id})


@router.post("/v1/timeline", response_model=TimelineResponse, responses=ERRORS, openapi_extra=AUDIO_BODY,
             tags=["emotion"])
async def timeline(request: Request, labels: str | None = LABELS_QUERY,
                   window: float = Query(None, gt=0.5, le=30.0, description="Longest piece of speech classified "
                                         "at once, in seconds (default 10)."),
                   transcribe: bool = TRANSCRIBE_QUERY) -> JSONResponse:
    """Speech segments found by Silero VAD, each with its emotion, and the share of time per emotion."""
    state = request.app.state.emovox
    data, form_labels = await read_audio_body(request, state.settings.max_upload_bytes)
    subset = parse_labels(labels if labels is not None else form_labels, state.labels)

    def job() -> dict:
        transcriber = state.transcriber() if transcribe else None  # a 501 before any decoding
        signal = decode(data, state.settings.max_timeline_duration)
        result = make_timeline(state.engine, signal, labels=subset, transcriber=transcriber,
                               max_window=window or state.settings.timeline_window)
        return result.to_dict()

    body = await anyio.to_thread.run_sync(job, limiter=state.timeline_limiter)
    return JSONResponse({**body, "request_id": request.state.request_id})


def decode(data: bytes, max_duration: float):
    """Bytes → 16 kHz mono float32; input errors become :class:`ApiError`."""
    check_declared_duration(data, max_duration)
    try:
        return load_audio(data, max_duration=max_duration)
    except EmovoxError as exc:
        raise api_error_from(exc) from None


def parse_labels(raw: str | None, known: list[str]) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]``, checked against the model's labels (422 if unknown)."""
    if raw is None:
        return None
    subset = [s.strip() for s in raw.split(",") if s.strip()]
    if not subset:
        raise ApiError(400, "bad_request", "labels is empty; leave it out to use every label")
    unknown = [s for s in subset if s not in known]
    if unknown:
        raise ApiError(422, "unknown_label", f"unknown label(s) {', '.join(unknown)}; the model knows {', '.join(known)}")
    if len(set(subset)) != len(subset):
        raise ApiError(400, "bad_request", "labels has duplicates")
    return subset


async def read_audio_body(request: Request, max_bytes: int) -> tuple[bytes, str | None]:
    """The audio bytes of a request, and the ``labels`` form field of a multipart upload."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    is_multipart = media == "multipart/form-data"
    if not (is_multipart or media.startswith("audio/") or media in RAW_AUDIO_TYPES):
        raise ApiError(415, "unsupported_media_type",
                       f"content type {media or '(none)'!r} is not audio: send multipart/form-data with a "
                       "'file' field, or the raw file with a content type like audio/wav or application/octet-stream")
    body = await read_capped(request.stream(), request.headers.get("content-length"), max_bytes)
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty: no audio was sent")
    if not is_multipart:
        return body, None
    return await _from_multipart(request, body)


async def _from_multipart(request: Request, body: bytes) -> tuple[bytes, str | None]:
    async def once() -> AsyncIterator[bytes]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=8, max_part_size=4096).parse()
    except (MultiPartException, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_multipart", f"cannot parse the multipart body: {exc}") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "bad_multipart", "the multipart body has no file in the field 'file'")
        data = await upload.read()
        if not data:
            raise ApiError(400, "empty_body", "the uploaded file is empty (0 bytes)")
        labels = form.get("labels")
        return data, labels if isinstance(labels, str) else None
    finally:
        await form.close()
