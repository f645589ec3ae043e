"""Inference off the event loop: one thread that batches the clips of concurrent requests.

Requests put 16 kHz signals on a queue and wait on a future; the engine thread takes every
clip waiting (up to ``max_batch``), runs the model once on the batch and resolves the
futures. The event loop only parses requests and answers health checks, so a slow request
never blocks them; batching is what makes concurrent clients cheap on a small CPU.

The engine uses the model through ``predict_signals`` and ``labels`` only, so the PyTorch model
and the ONNX runtime serve alike.

Examples:
    >>> class Constant:
    ...     labels = ["sad", "angry"]
    ...     def predict_signals(self, signals, labels=None):
    ...         from emovox import Prediction
    ...         return [Prediction("sad", {"sad": 0.75, "angry": 0.25}, len(s) / 16000) for s in signals]
    >>> engine = InferenceEngine(Constant()).start()
    >>> engine.predict_signals([np.zeros(16000, np.float32)])[0].scores
    {'sad': 0.75, 'angry': 0.25}
    >>> engine.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Sequence

import numpy as np

from ..audio import SAMPLING_RATE
from ..decision import restrict, top_label
from .limits import ApiError

log = logging.getLogger("emovox.server")


class Result:
    """One clip's scores over the model's labels, with :meth:`decide` for a label subset."""

    __slots__ = ("scores", "duration")

    def __init__(self, scores: dict[str, float], duration: float):
        self.scores, self.duration = scores, duration

    def decide(self, labels: Sequence[str] | None = None) -> tuple[str, dict[str, float]]:
        scores = restrict(self.scores, labels)
        return top_label(scores), scores


class InferenceEngine:
    """A batching worker thread around a model; ``submit`` from any thread, ``predict`` from asyncio."""

    def __init__(self, model, *, max_batch: int = 16, max_queue: int = 256, batch_wait: float = 0.002):
        self.model = model
        self.labels = list(model.labels)
        self.max_batch, self.max_queue, self.batch_wait = max_batch, max_queue, batch_wait
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="emovox-inference", daemon=True)
        self.batches = self.clips = 0
        self.busy_seconds = 0.0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> InferenceEngine:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, signal: np.ndarray) -> concurrent.futures.Future:
        """Queue one 16 kHz signal; the future gives its :class:`Result`. 503 when overloaded."""
        if self._queue.qsize() >= self.max_queue:
            raise ApiError(503, "busy", f"{self.max_queue} clips are already waiting; retry later")
        if not self._thread.is_alive():
            raise RuntimeError("the inference thread is not running")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((signal, future))
        return future

    async def predict(self, signal: np.ndarray) -> Result:
        """Await one clip's result from the event loop."""
        return await asyncio.wrap_future(self.submit(signal))

    def predict_signals(self, signals: Sequence[np.ndarray], labels: Sequence[str] | None = None) -> list:
        """Blocking, for worker threads (the timeline): the model's ``predict_signals`` interface."""
        from .. import Prediction

        futures = [self.submit(s) for s in signals]
        out = []
        for s, f in zip(signals, futures):
            label, scores = f.result().decide(labels)
            out.append(Prediction(label, scores, len(s) / SAMPLING_RATE))
        return out

    def _take_batch(self, first) -> list:
        batch = [first]
        deadline = time.perf_counter() + self.batch_wait
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter())) \
                    if self.batch_wait else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return [(s, f) for s, f in batch if f.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = self._take_batch(first)
            if not batch:
                continue
            start = time.perf_counter()
            try:
                predictions = self.model.predict_signals([s for s, _ in batch])
            except Exception as exc:  # a bug: every waiting request gets a 500 and the log the trace
                log.exception("inference failed on a batch of %d", len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.busy_seconds += time.perf_counter() - start
            self.batches += 1
            self.clips += len(batch)
            for (signal, future), p in zip(batch, predictions):
                future.set_result(Result(p.scores, len(signal) / SAMPLING_RATE))
