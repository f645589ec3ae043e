"""What the server accepts: size and duration caps, and the JSON errors for what it refuses.

Every refusal is an :class:`ApiError` with an HTTP status, a stable ``code`` and a message,
rendered as ``{"error": {"status", "code", "message"}, "request_id"}``. Status codes:

* 400 ``bad_request`` / ``empty_body`` / ``bad_multipart``: the request itself is malformed;
* 413 ``upload_too_large``: more bytes than ``max_upload_bytes`` (checked on Content-Length
  first, then while reading, so an oversize body is never held whole);
* 415 ``unsupported_media_type`` / ``not_audio``: a content type that is not audio, or bytes
  that do not decode as audio (garbage, a truncated header);
* 422 ``audio_too_long`` / ``audio_too_short`` / ``empty_audio`` / ``invalid_audio`` /
  ``unknown_label``: decodable audio that cannot be used. A clip longer than the cap is 422,
  not 413: 413 is reserved for the byte size of the upload. The duration a header declares is
  checked before anything is decoded (a 10-hour FLAC or WAV header is refused at once);
* 401 ``unauthorized`` / 403 ``origin_not_allowed`` / 400 ``bad_host``: the access rules of
  :mod:`emovox.serving.guard` (API key, browser origins, Host allow-list);
* 408 ``request_timeout``: the body did not arrive within ``body_timeout`` seconds;
* 429 ``busy`` / ``rate_limited``: more clips waiting than ``max_queue``, or more requests from
  one client than ``rate_limit`` per second (with ``Retry-After``);
* 503 ``too_many_uploads``: more request bodies being received than ``max_concurrent_uploads``, or
  more bytes buffered than ``max_buffered_bytes`` in total (with ``Retry-After``). Every other
  5xx is a bug.

Examples:
    >>> from emovox.errors import AudioTooLongError
    >>> error = api_error_from(AudioTooLongError("too long"))
    >>> error.status, error.code
    (422, 'audio_too_long')
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import struct
from collections.abc import AsyncIterator

from emovox.errors import (
    AudioDecodeError,
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    EmovoxError,
    EmptyAudioError,
    InvalidAudioError,
)

MiB = 1 << 20
RAW_AUDIO_TYPES = ("application/octet-stream", "application/ogg")
ENV_VAR = "EMOVOX_SERVE_SETTINGS"  # JSON of ServerSettings, for uvicorn worker processes


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Everything ``emovox serve`` can be told; all limits are per request or per stream."""

    model_dir: str | None = None  # None: the model shipped with emovox
    profile: str | None = None  # a domain profile for the model (emovox.training.profiles), applied to every clip
    max_upload_bytes: int = 128 * MiB
    max_duration: float = 120.0  # seconds, /v1/predict
    # seconds, /v1/timeline: a timeline holds its whole recording and windows, about 13 MB of
    # server memory per minute of audio (a 20-minute one raised peak RSS by 258 MB); keep one
    # request under 300 MB by default, raise it knowingly
    max_timeline_duration: float = 20 * 60.0
    max_transcribe_duration: float = 1800.0  # seconds, /v1/timeline?transcribe=true (Whisper costs ~0.3 CPU-s/s)
    max_batch: int = 16  # clips encoded together
    max_queue: int = 256  # clips waiting for the model before new ones get 429
    batch_wait: float = 0.002  # seconds the batcher waits for more clips once one arrived
    threads: int | None = None  # torch/onnx threads (None: leave the library default)
    inference_threads: int | None = None  # engine threads, each running its own batch (None: see create_app)
    timeline_window: float = 10.0  # longest piece of speech classified at once
    max_timeline_jobs: int = 2  # timelines decoded and segmented at the same time
    asr_model: str = "whisper-base"  # transcribe=true: packaged Whisper model
    transcribe: bool = False  # load asr_model at start; off: transcribe=true is a 400
    stream_interval: float = 0.5  # seconds of audio between two updates
    stream_window: float = 3.0  # seconds of audio each update looks at
    stream_max_message_bytes: int = 1 * MiB
    stream_max_duration: float = 3 * 3600.0  # seconds of audio in one stream
    stream_max_segment: float = 30.0  # longer speech is cut into segments of this length
    stream_idle_timeout: float = 60.0  # seconds without a message before the server closes
    max_streams: int = 64  # streams past their start message
    max_streams_per_client: int = 8  # of those, from one client address
    stream_start_timeout: float = 10.0  # seconds from connecting to the start message
    stream_max_text_bytes: int = 64 * 1024  # a JSON control message; larger is refused unparsed
    # connections and bodies
    header_timeout: float = 10.0  # seconds for a request's headers to arrive (then the connection closes)
    keep_alive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    body_timeout: float = 60.0  # seconds for a whole request body to arrive (408 after)
    max_concurrent_uploads: int = 32  # request bodies read at once (503 above)
    max_buffered_bytes: int = 512 * MiB  # upload bytes held by all requests together (503 above)
    max_connections: int | None = 1024  # open connections (uvicorn answers 503 above)
    # access (emovox.serving.guard)
    host: str = "127.0.0.1"  # the address served; a default allowed Host
    api_key: str | None = None  # /v1/* needs it as "Authorization: Bearer" or "X-API-Key"
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed besides the server's own
    allowed_hosts: tuple[str, ...] | None = None  # None: localhost, 127.0.0.1, [::1] and host
    rate_limit: float = 0.0  # requests per second per client address on /v1/*; 0: no limit
    rate_burst: int | None = None  # requests a client may make at once (None: 2 x rate_limit, at least 1)

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        raw = os.environ.get(ENV_VAR)
        if not raw:
            return cls()
        values = json.loads(raw)
        for key in ("allowed_origins", "allowed_hosts"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


class ApiError(Exception):
    """A refusal the client caused: HTTP ``status`` with a machine-readable ``code``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self, request_id: str | None) -> dict:
        return {"error": {"status": self.status, "code": self.code, "message": self.message},
                "request_id": request_id}


_AUDIO_ERRORS: list[tuple[type, int, str]] = [
    (AudioDecodeError, 415, "not_audio"),
    (EmptyAudioError, 422, "empty_audio"),
    (AudioTooShortError, 422, "audio_too_short"),
    (AudioTooLongError, 422, "audio_too_long"),
    (InvalidAudioError, 422, "invalid_audio"),
    (AudioError, 422, "invalid_audio"),
]


def api_error_from(exc: EmovoxError) -> ApiError:
    """The :class:`ApiError` for an emovox error caused by the input."""
    for kind, status, code in _AUDIO_ERRORS:
        if isinstance(exc, kind):
            return ApiError(status, code, str(exc))
    if "unknown label" in str(exc):
        return ApiError(422, "unknown_label", str(exc))
    return ApiError(422, "unprocessable", str(exc))


class UploadBudget:
    """Request bodies across all requests: at most ``max_uploads`` being received at once, and
    ``max_bytes`` held by the requests that received them (until they answer); else 503
    ``too_many_uploads``. Used from the event loop only (no lock).

    Examples:
        >>> budget = UploadBudget(max_uploads=1, max_bytes=100)
        >>> with budget.hold() as held:
        ...     held.add(60)
        ...     held.received()  # the body is in: another may be received while this one is decoded
        ...     (budget.uploads, budget.bytes)
        (0, 60)
        >>> (budget.uploads, budget.bytes)
        (0, 0)
    """

    def __init__(self, max_uploads: int, max_bytes: int):
        self.max_uploads, self.max_bytes = max_uploads, max_bytes
        self.uploads = self.bytes = 0

    @contextlib.contextmanager
    def hold(self):
        if self.uploads >= self.max_uploads:
            raise ApiError(503, "too_many_uploads", f"{self.max_uploads} uploads are in progress; retry later")
        self.uploads += 1
        held = _Held(self)
        try:
            yield held
        finally:
            held.received()
            self.bytes -= held.bytes


class _Held:
    def __init__(self, budget: UploadBudget):
        self.budget, self.bytes, self.receiving = budget, 0, True

    def received(self) -> None:
        """The whole body is in: it no longer counts as an upload in progress (its bytes still count)."""
        if self.receiving:
            self.receiving = False
            self.budget.uploads -= 1

    def add(self, n: int) -> None:
        if self.budget.bytes + n > self.budget.max_bytes:
            raise ApiError(503, "too_many_uploads", "the server holds as many upload bytes as it may; retry later")
        self.budget.bytes += n
        self.bytes += n


async def read_capped(stream: AsyncIterator[bytes], declared: str | None, max_bytes: int, held: _Held | None = None) -> bytes:
    """Read a request body, refusing (413) as soon as it is known to exceed ``max_bytes``; with
    ``held``, its bytes count against an :class:`UploadBudget` (the declared length at once)."""
    reserved = 0
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length is not a number: {declared[:40]!r}") from None
        if length > max_bytes:
            raise ApiError(413, "upload_too_large", f"the upload is {length} bytes, over the limit of {max_bytes}")
        if held is not None and length > 0:
            held.add(length)
            reserved = length
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "upload_too_large", f"the upload is over the limit of {max_bytes} bytes")
        if held is not None and len(body) > reserved:
            held.add(len(body) - reserved)
            reserved = len(body)
    return bytes(body)


def declared_wav_duration(data: bytes) -> float | None:
    """Seconds that a RIFF/WAVE header's ``data`` chunk size declares, or None if not a WAV.

    libsndfile trusts the bytes that are present over a header that claims more, so a
    10-hour header on a short body would otherwise decode as a short clip.

    Examples:
        >>> header = b"RIFF" + struct.pack("<I", 0) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        >>> declared_wav_duration(header + b"data" + struct.pack("<I", 32000 * 36000))
        36000.0
    """
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    byte_rate, pos = None, 12
    while pos + 8 <= min(len(data), 1 << 16):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 20 <= len(data):
            byte_rate = struct.unpack("<I", data[pos + 16 : pos + 20])[0]
        elif chunk == b"data":
            if not byte_rate or size == 0xFFFFFFFF:  # unknown length (a streamed WAV)
                return None
            return size / byte_rate
        pos += 8 + size + (size & 1)
    return None


def check_declared_duration(data: bytes, max_duration: float) -> None:
    """422 if a WAV header declares more than ``max_duration`` seconds."""
    declared = declared_wav_duration(data)
    if declared is not None and declared > max_duration:
        raise ApiError(422, "audio_too_long",
                       f"the WAV header declares {declared:.1f} s, over the cap of {max_duration} s")
