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
* 429 ``busy``: more clips waiting than ``max_queue`` (with ``Retry-After``; load shedding is
  a 4xx on purpose: every 5xx is a bug).

Examples:
    >>> from emovox.errors import AudioTooLongError
    >>> error = api_error_from(AudioTooLongError("too long"))
    >>> error.status, error.code
    (422, 'audio_too_long')
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from collections.abc import AsyncIterator

from ..errors import (
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
    max_upload_bytes: int = 128 * MiB
    max_duration: float = 120.0  # seconds, /v1/predict
    max_timeline_duration: float = 3 * 3600.0  # seconds, /v1/timeline
    max_batch: int = 16  # clips encoded together
    max_queue: int = 256  # clips waiting for the model before new ones get 429
    batch_wait: float = 0.002  # seconds the batcher waits for more clips once one arrived
    threads: int | None = None  # torch/onnx threads (None: leave the library default)
    inference_threads: int | None = None  # engine threads, each running its own batch (None: see create_app)
    timeline_window: float = 10.0  # longest piece of speech classified at once
    max_timeline_jobs: int = 2  # timelines decoded and segmented at the same time
    asr_model: str = "whisper-base"  # transcribe=true: packaged Whisper model (loaded on first use)
    stream_interval: float = 0.5  # seconds of audio between two updates
    stream_window: float = 3.0  # seconds of audio each update looks at
    stream_max_message_bytes: int = 1 * MiB
    stream_max_duration: float = 3 * 3600.0  # seconds of audio in one stream
    stream_max_segment: float = 30.0  # longer speech is cut into segments of this length
    stream_idle_timeout: float = 60.0  # seconds without a message before the server closes
    max_streams: int = 64

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> ServerSettings:
        raw = os.environ.get(ENV_VAR)
        return cls(**json.loads(raw)) if raw else cls()


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


async def read_capped(stream: AsyncIterator[bytes], declared: str | None, max_bytes: int) -> bytes:
    """Read a request body, refusing (413) as soon as it is known to exceed ``max_bytes``."""
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", f"Content-Length is not a number: {declared[:40]!r}") from None
        if length > max_bytes:
            raise ApiError(413, "upload_too_large", f"the upload is {length} bytes, over the limit of {max_bytes}")
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "upload_too_large", f"the upload is over the limit of {max_bytes} bytes")
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
