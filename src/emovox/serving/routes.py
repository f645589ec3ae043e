"""HTTP endpoints: ``/health``, ``/v1/models``, ``/v1/predict`` and ``/v1/timeline``.

Audio comes as a multipart upload (field ``file``) or as the raw request body with an audio
content type (``audio/wav``, ``audio/flac``, ``audio/*``, ``application/octet-stream``). It is
read under the byte cap, its header checked for the duration cap, then decoded in a worker
thread; the model runs on the engine thread (see :mod:`emovox.serving.engine`).

``transcribe=true`` adds the words: ``transcript`` and ``language`` for a clip, ``text`` and
``language`` per timeline segment, on a server started with ``--transcribe`` (which loads
Whisper at start); otherwise it is a 400 ``asr_disabled``. Transcription runs in a worker
thread, one at a time, on at most ``max_transcribe_duration`` seconds of audio.

Nothing the client sends makes a 5xx: undecodable bytes are 415, unusable audio (or audio
whose scores come out NaN) 422. A timeline stops between two pieces of work once its client
has gone, so abandoned requests do not keep the CPU busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import struct
import threading
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.formparsers import MultiPartException, MultiPartParser

from emovox.audio.load import SAMPLING_RATE, load_audio
from emovox.conversation.dimensions import arousal_valence
from emovox.errors import EmovoxError
from emovox.prediction.timeline import LONG_RECORDING, make_timeline, predict_recording
from emovox.serving.limits import RAW_AUDIO_TYPES, ApiError, api_error_from, check_declared_duration, read_capped

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
    arousal: float  # in [-1, 1], the heads' or read off the scores (emovox.prediction.result's rule)
    valence: float
    model: str
    request_id: str
    transcript: str | None = None
    language: str | None = None
    basis: str | None = None  # set when a long recording was judged on its speech segments


class SegmentOut(BaseModel):
    start: float
    end: float
    label: str
    speech_segment: int
    scores: dict[str, float]
    text: str | None = None
    language: str | None = None
    party: str | None = None  # with ?parties=: who spoke
    overlap: bool | None = None  # with ?parties=: another party speaks during this segment too
    arousal: float | None = None  # in [-1, 1], the heads' or from the scores (emovox.prediction.result's rule)
    valence: float | None = None


class Summary(BaseModel):
    speech: float
    speech_share: float
    shares: dict[str, float]
    dominant: str | None
    arousal: float | None = None
    valence: float | None = None
    parties: dict[str, dict] | None = None  # with ?parties=: the same summary for each party


class TimelineResponse(BaseModel):
    model: str
    duration: float
    labels: list[str]
    segments: list[SegmentOut]
    summary: Summary
    request_id: str
    parties: list[str] | None = None  # with ?parties=: the parties' names
    moments: list[dict] | None = None  # with ?parties=: escalations and recoveries (emovox.conversation.moments)


class ModelInfo(BaseModel):
    id: str
    labels: list[str]
    encoder: str | None
    version: str | None
    backend: str
    sampling_rate: int
    profile: dict | None = None  # the domain profile applied to every clip (n_clips, created, balance, prosody)
    dimensions: str = "circumplex"  # where arousal and valence come from: "head" (trained) or "circumplex" (the table)


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
    400: "malformed request (empty body, broken multipart, bad parameter, transcribe on a server without ASR)",
    401: "the server needs an API key",
    403: "a browser page from an origin that is not allowed",
    408: "the request body took longer than the server's body timeout",
    413: "upload over the byte limit",
    415: "not an audio content type, or bytes that do not decode as audio",
    422: "audio that cannot be used: too long or too short, no samples, NaN/inf, unknown label",
    429: "too many clips waiting, or over the per-client rate limit: retry later",
    503: "too many uploads in progress: retry later",
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
    from emovox._version import __version__

    return {"models": [request.app.state.emovox.info], "server_version": __version__}


@router.post("/v1/predict", response_model=PredictResponse, responses=ERRORS, openapi_extra=AUDIO_BODY,
             tags=["emotion"])
async def predict(request: Request, labels: str | None = LABELS_QUERY,
                  transcribe: bool = TRANSCRIBE_QUERY) -> JSONResponse:
    """The emotion of one clip (at most ``max_duration`` seconds, 120 by default). A recording over
    30 s is judged on its speech, by the timeline's rule (the dominant emotion of its VAD speech
    segments by duration; ``scores`` are shares of speech time), and ``basis`` says so."""
    state = request.app.state.emovox
    if transcribe:
        state.transcriber()  # a 400 before the upload is read when transcription is off
    with state.uploads.hold() as held:
        data, form_labels = await read_audio_body(request, state.settings.max_upload_bytes, held)
        subset = parse_labels(labels if labels is not None else form_labels, state.labels)
        signal = await anyio.to_thread.run_sync(decode, data, state.settings.max_duration)
        del data
        if len(signal) > LONG_RECORDING * SAMPLING_RATE:  # one answer for one recording: the timeline's
            gone = threading.Event()
            judged = await _while_connected(request, gone, lambda: predict_recording(
                Stoppable(state.engine, gone), signal, labels=subset, max_window=state.settings.timeline_window),
                limiter=state.timeline_limiter, what="job")
            label, scores, duration, basis = judged.label, judged.scores, judged.duration, judged.basis
            dimensions = (judged.arousal, judged.valence)  # the timeline's time-weighted means
        else:
            result = await state.engine.predict(signal)
            (label, scores), duration, basis = result.decide(subset), result.duration, None
            dimensions = result.dimensions  # the heads' (None: the table's, off the decided scores)
        require_finite(scores)
        arousal, valence = dimensions or arousal_valence(scores)
        body = {"label": label, "scores": scores, "duration": round(duration, 3), "arousal": arousal, "valence": valence,
                "model": state.info["id"]}
        if basis:
            body["basis"] = basis
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
                   transcribe: bool = TRANSCRIBE_QUERY,
                   parties: str | None = Query(None, description="A conversation: `channels` (each channel of the "
                                               "file is a party) or `speakers`, `speakers:N`, `speakers:auto` (voices "
                                               "told apart in the mix). Every segment gets `party`, `overlap`, "
                                               "`arousal` and `valence`; the summary has a section per party; "
                                               "`moments` lists escalations."),
                   party_names: str | None = Query(None, description="With `parties`: comma-separated names, e.g. "
                                                   "`agent,customer`.")) -> JSONResponse:
    """Speech segments found by Silero VAD, each with its emotion, and the share of time per emotion
    (with ``parties``: per party of a conversation)."""
    state = request.app.state.emovox
    settings = state.settings
    spec = _party_spec(parties, party_names)
    transcriber = state.transcriber() if transcribe else None  # a 400 before the upload is read
    max_duration = min(settings.max_timeline_duration, settings.max_transcribe_duration) if transcribe \
        else settings.max_timeline_duration
    gone = threading.Event()  # set once the client has disconnected: the job stops at its next step

    def job(data: bytes) -> dict:
        _check(gone)
        signal = decode(data, max_duration, channels=spec is not None)
        del data
        _check(gone)
        options = dict(labels=subset, transcriber=Stoppable(transcriber, gone) if transcriber is not None else None,
                       max_window=window or settings.timeline_window)
        if spec is not None:
            from emovox.conversation.parties import conversation_timeline

            return conversation_timeline(Stoppable(state.engine, gone), signal, parties=spec, names=party_names,
                                         **options).to_dict()
        return make_timeline(Stoppable(state.engine, gone), signal, **options).to_dict()

    with state.uploads.hold() as held:
        data, form_labels = await read_audio_body(request, settings.max_upload_bytes, held)
        subset = parse_labels(labels if labels is not None else form_labels, state.labels)
        body = await _while_connected(request, gone, functools.partial(job, data), limiter=state.timeline_limiter,
                                      what="timeline")
        del data
    for segment in body["segments"]:
        require_finite(segment["scores"])
    return JSONResponse({**body, "request_id": request.state.request_id})


async def _while_connected(request: Request, gone: threading.Event, job, *, limiter, what: str):
    """Run ``job()`` in a worker thread while watching the client: ``gone`` is set when it
    disconnects, and the job (which checks ``gone`` between steps) ends in a 499."""
    watcher = asyncio.ensure_future(_watch_disconnect(request, gone))
    try:
        return await anyio.to_thread.run_sync(job, limiter=limiter)
    except ClientGone:
        raise ApiError(499, "client_closed_request", f"the client disconnected; the {what} was stopped") from None
    finally:
        watcher.cancel()


class ClientGone(Exception):
    """The client of a timeline disconnected: its job stops."""


def _check(gone: threading.Event) -> None:
    if gone.is_set():
        raise ClientGone


async def _watch_disconnect(request: Request, gone: threading.Event, every: float = 0.25) -> None:
    """Set ``gone`` when the client disconnects (polled: uvicorn tells only when asked)."""
    while not gone.is_set():
        if await request.is_disconnected():
            gone.set()
            return
        await asyncio.sleep(every)


class Stoppable:
    """The engine or the transcriber as :func:`emovox.prediction.timeline.make_timeline` sees them, checking
    before each step whether the client has gone (then :class:`ClientGone` ends the job).

    The engine's steps are the timeline's batches of windows; the transcriber's are its clips,
    one at a time after the first ones that make up 30 s, which the transcriber detects the
    language on (the clips' language and transcripts are those of one call with them all)."""

    def __init__(self, inner, gone: threading.Event):
        self.inner, self.gone = inner, gone
        self.labels = getattr(inner, "labels", None)
        self.model_id = getattr(inner, "model_id", "")

    def predict_signals(self, signals, labels=None):
        _check(self.gone)
        return self.inner.predict_signals(signals, labels)

    def transcribe_clips(self, clips, *, language=None):
        first, seconds = 0, 0.0
        while first < len(clips) and seconds < 30.0:
            seconds += len(clips[first]) / SAMPLING_RATE
            first += 1
        out = []
        for group in [clips[:first]] + [[clip] for clip in clips[first:]]:
            _check(self.gone)
            said = self.inner.transcribe_clips(group, language=language)
            if out and said:  # the language was decided on the first group, with its probability
                said = [dataclasses.replace(t, language_probability=out[0].language_probability) for t in said]
            elif said:
                language = said[0].language
            out += said
        return out


def require_finite(scores: dict[str, float]) -> None:
    """422 when the model's scores are not finite (extreme samples can overflow the features)."""
    if not all(math.isfinite(v) for v in scores.values()):
        raise ApiError(422, "invalid_audio", "the audio gives no finite scores (are its samples within [-1, 1]?)")


def _party_spec(parties: str | None, names: str | None):
    """The parsed ``parties`` query (None without one); a 400 when it does not parse."""
    if parties is None:
        if names:
            raise ApiError(400, "bad_request", "party_names needs parties")
        return None
    from emovox.conversation.parties import parse_parties, party_names

    try:
        spec = parse_parties(parties)
        party_names(names, 1)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc).replace("--parties", "parties")) from None
    return spec


def decode(data: bytes, max_duration: float, *, channels: bool = False):
    """Bytes → 16 kHz mono float32 (``channels``: a list of them, one per channel); every decoding
    failure becomes a 4xx :class:`ApiError`.

    The bytes are decoded in memory; ``emovox serve`` runs in a private empty directory,
    since libsndfile looks for a resource fork (``._`` or ``.AppleDouble/``) in the working
    directory when it decodes from memory."""
    check_declared_duration(data, max_duration)
    try:
        if channels:
            from emovox.conversation.parties import load_channels

            return load_channels(data, max_duration=max_duration)
        signal = load_audio(data, max_duration=max_duration)
    except EmovoxError as exc:
        raise api_error_from(exc) from None
    except MemoryError:
        raise ApiError(413, "audio_too_large", "the decoded audio does not fit in memory") from None
    except (ValueError, RuntimeError, OSError, EOFError, struct.error, TypeError) as exc:
        # a codec libsndfile recognises but cannot read (GSM 6.10, G.721 ...), or a decoder bug on odd input
        raise ApiError(415, "unsupported_audio", f"cannot decode the audio: {exc}") from None
    return signal


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


async def read_audio_body(request: Request, max_bytes: int, held=None) -> tuple[bytes, str | None]:
    """The audio bytes of a request, and the ``labels`` form field of a multipart upload;
    ``held`` counts the bytes against the server's upload budget."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    is_multipart = media == "multipart/form-data"
    if not (is_multipart or media.startswith("audio/") or media in RAW_AUDIO_TYPES):
        raise ApiError(415, "unsupported_media_type",
                       f"content type {media or '(none)'!r} is not audio: send multipart/form-data with a "
                       "'file' field, or the raw file with a content type like audio/wav or application/octet-stream")
    body = await read_capped(request.stream(), request.headers.get("content-length"), max_bytes, held)
    if held is not None:
        held.received()
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
