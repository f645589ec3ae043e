"""``WS /v1/stream``: live emotion from 16-bit PCM chunks (schema: ``docs/streaming.md``).

The client opens with a ``start`` message declaring the sampling rate, then sends binary
messages of little-endian 16-bit mono PCM and ends with ``stop``. The server answers
``ready``; an ``update`` each ``interval`` seconds of audio (the emotion of the last
``window`` seconds, or ``label: null`` when that window holds too little speech); a
``segment`` each time Silero VAD finds the end of a stretch of speech (the emotion of the
whole stretch); ``end`` after ``stop``; and ``error`` followed by a close on bad input. Updates
and segments carry ``arousal`` and ``valence`` in [-1, 1]: the heads' for a model trained with
``--dimensions`` (a segment's: the duration-weighted mean of its pieces', like its scores), else
read off their scores (:func:`emovox.conversation.dimensions.arousal_valence`); ``null`` with
``label: null``.

Time is audio time: ``time`` is seconds of audio received since ``start``. A client that
sends faster than real time gets updates coalesced (the latest window wins), never a backlog.
Audio at other rates is resampled as a stream (soxr's streaming resampler, so that chunk
edges leave no clicks; files go through :func:`emovox.audio.load.resample`).

Limits: the ``start`` message must come within ``stream_start_timeout`` seconds; a stream
counts against ``max_streams`` (and ``max_streams_per_client`` per client address) from its
``start`` on; only non-empty audio resets the idle timeout; a text message over
``stream_max_text_bytes``, or JSON nested too deep to parse, ends the stream as bad input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import anyio
import numpy as np
import soxr
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from emovox.audio.load import SAMPLING_RATE
from emovox.audio.vad import FRAME, Segmenter, VADSettings, VADStream, split_windows
from emovox.conversation.dimensions import arousal_valence
from emovox.serving.engine import Result
from emovox.serving.guard import clean
from emovox.serving.limits import ApiError
from emovox.serving.routes import require_finite

router = APIRouter()
log = logging.getLogger("emovox.serving")

MIN_SPEECH_SHARE = 0.2  # an update window with less speech than this has label null
RATES = (8000, 192000)
INLINE_VAD_SAMPLES = SAMPLING_RATE // 2  # longer chunks run the VAD on a worker thread
SEGMENT_PIECE = 6.0  # seconds: a segment is classified in pieces of at most this length


class StreamError(Exception):
    """Ends a stream: an ``error`` message with ``code``, then a close with ``close_code``."""

    def __init__(self, code: str, message: str, close_code: int = 1008):
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


@router.get("/v1/stream", include_in_schema=False)
async def stream_over_http() -> None:
    raise ApiError(426, "upgrade_required", "/v1/stream is a WebSocket endpoint: connect with ws:// "
                   "(see docs/streaming.md)")


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    state = websocket.app.state.emovox
    await websocket.accept()
    if state.handshakes >= 4 * state.settings.max_streams:  # connections still waiting for their start
        await websocket.send_text(json.dumps({"type": "error", "code": "too_many_streams",
                                              "message": f"{state.handshakes} streams are starting; retry later"}))
        await websocket.close(code=1013)
        return
    await StreamSession(websocket, state).run()


class StreamSession:
    """One websocket: audio buffer, VAD, segmenter, and the two tasks that answer."""

    def __init__(self, websocket: WebSocket, state):
        self.ws, self.state, self.settings = websocket, state, state.settings
        self.id = websocket.scope.get("state", {}).get("request_id") or uuid.uuid4().hex[:16]
        self.lock = asyncio.Lock()
        self.open = True
        self.total = 0  # samples received (16 kHz)
        self.buffer = np.zeros(0, np.float32)  # allocated by configure()
        self.buffer_start = 0  # absolute sample index of buffer[0]
        self.fill = 0  # samples in the buffer
        self.probs = np.zeros(0, np.float32)  # VAD probability per frame, recent frames only
        self.probs_start = 0  # absolute frame index of probs[0]
        self.segments = 0
        self._latest: tuple | None = None
        self._due = asyncio.Event()
        self._stopping = False
        self._segment_queue: asyncio.Queue = asyncio.Queue()
        self.client = (websocket.client.host if websocket.client else None) or "-"
        self.counted = False  # counted in state.streams (after start)
        self.deadline = time.monotonic() + self.settings.stream_start_timeout  # for the next message

    # ---- protocol -------------------------------------------------------------------------

    async def run(self) -> None:
        tasks = []
        self.state.handshakes += 1
        try:
            try:
                start = await self._receive_json()
            finally:
                self.state.handshakes -= 1
            self.configure(start)
            self._count()
            self.deadline = time.monotonic() + self.settings.stream_idle_timeout
            await self.send({"type": "ready", "session": self.id, "sample_rate": self.rate, "format": "pcm_s16le",
                             "interval": self.interval, "window": self.window, "labels": self.labels or self.state.labels,
                             "model": self.state.info["id"], "max_message_bytes": self.settings.stream_max_message_bytes})
            log.info("stream %s started: %d Hz, update every %.2f s over %.1f s", self.id, self.rate, self.interval,
                     self.window)
            tasks = [asyncio.create_task(self._guard(self._updater())),
                     asyncio.create_task(self._guard(self._segmenter_task()))]
            while True:
                message = await self._receive()
                if message.get("bytes") is not None:
                    await self.audio(message["bytes"])
                    continue
                request = self._parse(message.get("text"))
                if request.get("type") != "stop":
                    raise StreamError("bad_message", f"unexpected message type {request.get('type')!r} "
                                      "(after start only binary audio and 'stop' are accepted)")
                await self.finish(tasks)
                await self.send({"type": "end", "duration": round(self.total / SAMPLING_RATE, 3),
                                 "segments": self.segments})
                await self.close(1000)
                log.info("stream %s ended: %.1f s of audio, %d segments", self.id, self.total / SAMPLING_RATE,
                         self.segments)
                return
        except WebSocketDisconnect:
            self.open = False
            log.info("stream %s: the client left after %.1f s of audio", self.id, self.total / SAMPLING_RATE)
        except StreamError as exc:
            log.info("stream %s refused: %s %s", self.id, exc.code, clean(exc.message))
            await self.send({"type": "error", "code": exc.code, "message": exc.message})
            await self.close(exc.close_code)
        except Exception:
            log.exception("stream %s failed", self.id)
            await self.send({"type": "error", "code": "internal_error", "message": "internal server error"})
            await self.close(1011)
        finally:
            for task in tasks:
                task.cancel()
            self._uncount()

    def _count(self) -> None:
        """Count this stream (after its start message), or refuse it: too many in all or from its client."""
        state, settings = self.state, self.settings
        if state.streams >= settings.max_streams:
            raise StreamError("too_many_streams", f"{settings.max_streams} streams are open; retry later", 1013)
        if state.streams_by_client.get(self.client, 0) >= settings.max_streams_per_client:
            raise StreamError("too_many_streams", f"{settings.max_streams_per_client} streams are open from "
                              "this address; retry later", 1013)
        state.streams += 1
        state.streams_by_client[self.client] = state.streams_by_client.get(self.client, 0) + 1
        self.counted = True

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.state.streams -= 1
            left = self.state.streams_by_client.pop(self.client, 1) - 1
            if left > 0:
                self.state.streams_by_client[self.client] = left

    def configure(self, start: dict) -> None:
        """Check the ``start`` message and set up resampling, VAD and timing."""
        if start.get("type") != "start":
            raise StreamError("bad_start", "the first message must be {\"type\": \"start\", \"sample_rate\": ...}")
        rate = start.get("sample_rate")
        if isinstance(rate, bool) or not isinstance(rate, int) or not RATES[0] <= rate <= RATES[1]:
            raise StreamError("bad_start", f"sample_rate must be an integer number of Hz in {RATES[0]}..{RATES[1]}, "
                              f"got {rate!r}")
        if start.get("format", "pcm_s16le") != "pcm_s16le" or start.get("channels", 1) != 1:
            raise StreamError("bad_start", "only mono 16-bit little-endian PCM is accepted "
                              "(format 'pcm_s16le', channels 1)")
        self.interval = _number(start, "interval", self.settings.stream_interval, 0.1, 10.0)
        self.window = _number(start, "window", self.settings.stream_window, 0.5, 30.0)
        labels = start.get("labels")
        if labels is not None:
            if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
                raise StreamError("bad_start", "labels must be a list of label names")
            from emovox.serving.routes import parse_labels

            try:
                labels = parse_labels(",".join(labels), self.state.labels)
            except ApiError as exc:
                raise StreamError("bad_start", exc.message) from None
        self.labels = labels
        self.rate = rate
        self.resampler = None if rate == SAMPLING_RATE else soxr.ResampleStream(rate, SAMPLING_RATE, 1, dtype="float32")
        self.vad_settings = VADSettings()
        self.vad = VADStream()
        self.segmenter = Segmenter(self.vad_settings)
        self.next_update = int(self.interval * SAMPLING_RATE)
        self.keep = int((max(self.window, self.settings.stream_max_segment) + 2.0) * SAMPLING_RATE)
        self.buffer = np.zeros(2 * self.keep, np.float32)

    async def audio(self, data: bytes) -> None:
        """Append one PCM chunk; run the VAD; queue the updates and segments it makes due."""
        if len(data) > self.settings.stream_max_message_bytes:
            raise StreamError("message_too_large", f"a message of {len(data)} bytes is over the limit of "
                              f"{self.settings.stream_max_message_bytes}", 1009)
        if len(data) % 2:
            raise StreamError("bad_audio", f"a chunk of {len(data)} bytes is not whole 16-bit samples", 1007)
        if not data:
            return  # no audio: it does not count as activity
        self.deadline = time.monotonic() + self.settings.stream_idle_timeout
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples)
        await self._append(samples)

    async def finish(self, tasks) -> None:
        """After ``stop``: flush the resampler, close an open segment, send what is pending."""
        tail = np.zeros(0, np.float32)
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(tail, last=True)
        await self._append(tail, final=True)
        if (segment := self.segmenter.flush()) is not None:
            self._segment_queue.put_nowait(segment)
        self._stopping = True
        self._due.set()
        self._segment_queue.put_nowait(None)
        await asyncio.gather(*tasks)

    # ---- audio bookkeeping ----------------------------------------------------------------

    async def _append(self, samples: np.ndarray, final: bool = False) -> None:
        if (self.total + len(samples)) / SAMPLING_RATE > self.settings.stream_max_duration:
            raise StreamError("stream_too_long", f"the stream is over the limit of "
                              f"{self.settings.stream_max_duration} s of audio")
        self._store(samples)
        if len(samples) > INLINE_VAD_SAMPLES:
            probs = await anyio.to_thread.run_sync(self.vad.push, samples)
        else:
            probs = self.vad.push(samples)
        self._add_probs(probs)
        max_frames = int(self.settings.stream_max_segment * SAMPLING_RATE / FRAME)
        for p in probs:
            segment = self.segmenter.push(float(p))
            if segment is None and self.segmenter.speech_start is not None \
                    and self.segmenter.index - self.segmenter.speech_start >= max_frames:
                segment = self.segmenter.flush()  # cut very long speech
            if segment is not None:
                self._segment_queue.put_nowait(segment)
        step = int(self.interval * SAMPLING_RATE)
        if self.total >= self.next_update or (final and self.total > self.next_update - step):
            self.next_update = (self.total // step + 1) * step
            window = self.clip(self.total - int(self.window * SAMPLING_RATE), self.total)
            self._latest = (self.total, window, self.speech_share(), time.perf_counter())
            self._due.set()

    def _store(self, samples: np.ndarray) -> None:
        """Append to the audio buffer, which keeps the last ``keep`` samples at least; the
        buffer is allocated once and shifted only when full (no copy per chunk)."""
        n = len(samples)
        if self.fill + n > len(self.buffer):
            kept = min(self.fill, self.keep)
            grown = np.zeros(max(2 * self.keep, kept + n), np.float32) if kept + n > len(self.buffer) else self.buffer
            grown[:kept] = self.buffer[self.fill - kept : self.fill]
            self.buffer, self.buffer_start, self.fill = grown, self.buffer_start + self.fill - kept, kept
        self.buffer[self.fill : self.fill + n] = samples
        self.fill += n
        self.total += n

    def _add_probs(self, probs: np.ndarray) -> None:
        self.probs = np.concatenate([self.probs, probs])
        keep = int(self.window * SAMPLING_RATE / FRAME) + 2
        if len(self.probs) > 4 * keep:
            cut = len(self.probs) - keep
            self.probs, self.probs_start = self.probs[cut:], self.probs_start + cut

    def speech_share(self) -> float:
        """Share of the VAD frames of the current window that are speech."""
        n = max(1, int(self.window * SAMPLING_RATE / FRAME))
        recent = self.probs[-n:]
        return float((recent >= self.vad_settings.threshold).mean()) if len(recent) else 0.0

    def clip(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` (absolute, 16 kHz) still in the buffer."""
        a = max(0, start - self.buffer_start)
        return self.buffer[a : max(a, min(end - self.buffer_start, self.fill))].copy()

    # ---- answers ---------------------------------------------------------------------------

    async def _guard(self, work) -> None:
        """Run an answering task; an input error (429 busy) ends the stream with an error, a bug with 1011."""
        try:
            await work
        except ApiError as exc:
            await self.send({"type": "error", "code": exc.code, "message": exc.message})
            await self.close(1007 if exc.status == 422 else 1013)
        except Exception:
            log.exception("stream %s failed", self.id)
            await self.send({"type": "error", "code": "internal_error", "message": "internal server error"})
            await self.close(1011)

    async def _updater(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            job, self._latest = self._latest, None
            if job is not None:
                await self._update(*job)
            if self._stopping and self._latest is None:
                return

    async def _update(self, end: int, audio: np.ndarray, speech: float, queued: float) -> None:
        message = {"type": "update", "time": round(end / SAMPLING_RATE, 3),
                   "start": round((end - len(audio)) / SAMPLING_RATE, 3), "end": round(end / SAMPLING_RATE, 3),
                   "speech": round(speech, 3), "label": None, "scores": None, "arousal": None, "valence": None}
        if speech >= MIN_SPEECH_SHARE and len(audio) >= SAMPLING_RATE // 10:
            result = await self.state.engine.predict(audio)
            message["label"], message["scores"] = result.decide(self.labels)
            require_finite(message["scores"])
            message["arousal"], message["valence"] = result.dimensions or arousal_valence(message["scores"])
        message["processing_ms"] = round(1000 * (time.perf_counter() - queued), 1)
        await self.send(message)

    async def _segmenter_task(self) -> None:
        while (segment := await self._segment_queue.get()) is not None:
            start, end = segment
            audio = self.clip(int(start * SAMPLING_RATE), int(end * SAMPLING_RATE))
            if len(audio) < SAMPLING_RATE // 10:
                continue
            # Pieces of <= SEGMENT_PIECE s, one after the other: an update never waits for more
            # than one piece; the segment's scores are the duration-weighted mean of the pieces'.
            total, weights, dims = 0.0, {}, np.zeros(2)
            heads = True  # every piece has the heads' arousal and valence
            for a, b in split_windows(0.0, len(audio) / SAMPLING_RATE, SEGMENT_PIECE):
                piece = audio[int(a * SAMPLING_RATE) : int(b * SAMPLING_RATE)]
                result = await self.state.engine.predict(piece)
                for name, p in result.scores.items():
                    weights[name] = weights.get(name, 0.0) + p * len(piece)
                if result.dimensions is None:
                    heads = False
                else:
                    dims += np.asarray(result.dimensions) * len(piece)
                total += len(piece)
            label, scores = Result({k: v / total for k, v in weights.items()}, total / SAMPLING_RATE).decide(self.labels)
            require_finite(scores)
            arousal, valence = (round(float(dims[0] / total), 4), round(float(dims[1] / total), 4)) if heads \
                else arousal_valence(scores)
            await self.send({"type": "segment", "index": self.segments, "start": round(start, 3),
                             "end": round(end, 3), "label": label, "scores": scores, "arousal": arousal, "valence": valence})
            self.segments += 1

    # ---- transport -------------------------------------------------------------------------

    async def _receive(self) -> dict:
        if not self.open:
            raise WebSocketDisconnect(1000)
        try:
            with anyio.fail_after(max(0.0, self.deadline - time.monotonic())):
                message = await self.ws.receive()
        except TimeoutError:
            if not self.counted:
                raise StreamError("start_timeout", f"no start message within {self.settings.stream_start_timeout} s") \
                    from None
            raise StreamError("idle_timeout", f"no audio for {self.settings.stream_idle_timeout} s") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return message

    async def _receive_json(self) -> dict:
        message = await self._receive()
        if message.get("bytes") is not None:
            raise StreamError("bad_start", "audio arrived before the start message")
        return self._parse(message.get("text"))

    def _parse(self, text: str | None) -> dict:
        limit = self.settings.stream_max_text_bytes
        if text is not None and len(text) > limit:  # before parsing: no JSON this long is a valid message
            raise StreamError("message_too_large", f"a text message of {len(text)} characters is over the limit "
                              f"of {limit}", 1009)
        try:
            value = json.loads(text or "")
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raise StreamError("bad_message", "a text message must be a JSON object") from None
        if not isinstance(value, dict):
            raise StreamError("bad_message", "a text message must be a JSON object")
        return value

    async def send(self, message: dict) -> None:
        if not self.open:
            return
        async with self.lock:
            try:
                await self.ws.send_text(json.dumps(message))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.open = False

    async def close(self, code: int) -> None:
        if self.open and self.ws.application_state != WebSocketState.DISCONNECTED:
            self.open = False
            try:
                await self.ws.close(code)
            except (RuntimeError, OSError):
                pass


def _number(message: dict, key: str, default: float, low: float, high: float) -> float:
    value = message.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise StreamError("bad_start", f"{key} must be a number of seconds in {low}..{high}, got {value!r}")
    return float(value)
