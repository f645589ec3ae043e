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
import threading
import time
from collections.abc import Sequence

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.prediction.decision import restrict, top_label
from emovox.serving.limits import ApiError

log = logging.getLogger("emovox.serving")


class Result:
    """One clip's scores over the model's labels, with :meth:`decide` for a label subset;
    ``dimensions``: the heads' (arousal, valence) for a model with the dimensional output
    (None: read them off the decided scores, :func:`emovox.conversation.dimensions.arousal_valence`)."""

    __slots__ = ("scores", "duration", "dimensions")

    def __init__(self, scores: dict[str, float], duration: float, dimensions: tuple[float, float] | None = None):
        self.scores, self.duration, self.dimensions = scores, duration, dimensions

    def decide(self, labels: Sequence[str] | None = None) -> tuple[str, dict[str, float]]:
        scores = restrict(self.scores, labels)
        return top_label(scores), scores


class InferenceEngine:
    """Batching worker threads around a model; ``submit`` from any thread, ``predict`` from asyncio.

    Scheduling: the shortest waiting clip goes first, with the clips of similar length (at most
    1.5 times as long) batched along with it, so a long clip never holds up short ones; a clip
    that has waited ``max_age`` seconds goes first whatever its length, so none starves.

    Failures: an exception in the model fails that batch's requests only; a worker whose own
    loop raises logs it, fails the batch it held and restarts (``restarts`` counts them), so the
    engine never loses capacity silently; ``workers_alive`` says how many run.
    """

    def __init__(self, model, *, max_batch: int = 16, max_queue: int = 256, batch_wait: float = 0.002,
                 max_age: float = 0.5, workers: int = 1):
        self.model = model
        self.labels = list(model.labels)
        self.max_batch, self.max_queue, self.batch_wait, self.max_age = max_batch, max_queue, batch_wait, max_age
        self._pending: list[tuple[float, np.ndarray, concurrent.futures.Future]] = []  # (arrival, signal, future)
        self._ready = threading.Condition()
        self._stopping = False
        # ``workers`` threads take batches from the one queue: onnxruntime sessions run
        # concurrently, so with one intra-op thread each, every core encodes its own clip.
        self._threads = [threading.Thread(target=self._run, name=f"emovox-inference-{k}", daemon=True)
                         for k in range(max(1, workers))]
        self._count = threading.Lock()
        self.batches = self.clips = self.restarts = 0
        self.busy_seconds = 0.0

    @property
    def alive(self) -> bool:
        """True while every worker thread runs (``/health`` is not ok when one has died)."""
        return self.workers_alive == len(self._threads)

    @property
    def workers_alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    @property
    def workers(self) -> int:
        return len(self._threads)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> InferenceEngine:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def submit(self, signal: np.ndarray) -> concurrent.futures.Future:
        """Queue one 16 kHz signal; the future gives its :class:`Result`. 429 when overloaded."""
        if len(self._pending) >= self.max_queue:
            raise ApiError(429, "busy", f"{self.max_queue} clips are already waiting; retry later")
        if not self.workers_alive:
            raise ApiError(503, "unavailable", "no inference worker is running; the server needs a restart")
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._ready:
            self._pending.append((time.perf_counter(), signal, future))
            self._ready.notify()
        return future

    async def predict(self, signal: np.ndarray) -> Result:
        """Await one clip's result from the event loop."""
        return await asyncio.wrap_future(self.submit(signal))

    def predict_signals(self, signals: Sequence[np.ndarray], labels: Sequence[str] | None = None) -> list:
        """Blocking, for worker threads (the timeline): the model's ``predict_signals`` interface."""
        from emovox import Prediction

        futures = [self.submit(s) for s in signals]
        out = []
        for s, f in zip(signals, futures, strict=True):
            result = f.result()
            label, scores = result.decide(labels)
            out.append(Prediction(label, scores, len(s) / SAMPLING_RATE, dimensions=result.dimensions))
        return out

    def _take_batch(self) -> list[tuple[np.ndarray, concurrent.futures.Future]] | None:
        """Wait for work; pick the next batch (see the class docstring). None when stopping.

        The lock is not held while waiting ``batch_wait`` for more clips, so another worker may
        take every waiting clip meanwhile: then this one goes back to waiting."""
        while True:
            with self._ready:
                while not self._pending and not self._stopping:
                    self._ready.wait()
                if self._stopping:
                    for _, _, future in self._pending:  # shutting down: nobody will answer these
                        if future.set_running_or_notify_cancel():
                            future.set_exception(RuntimeError("the server is shutting down"))
                    self._pending.clear()
                    return None
            if self.batch_wait:
                time.sleep(self.batch_wait)  # let the clips of concurrent requests arrive
            with self._ready:
                if not self._pending:  # another worker took them while this one slept
                    continue
                now = time.perf_counter()
                overdue = [item for item in self._pending if now - item[0] >= self.max_age]
                first = min(overdue, key=lambda i: i[0]) if overdue else min(self._pending, key=lambda i: len(i[1]))
                limit = max(int(1.5 * len(first[1])), SAMPLING_RATE)
                batch = [first] + [i for i in self._pending if i is not first and len(i[1]) <= limit][: self.max_batch - 1]
                chosen = {id(i) for i in batch}
                self._pending = [i for i in self._pending if id(i) not in chosen]
                # marked running under the lock: a request that gives up now can no longer cancel them
                return [(signal, future) for _, signal, future in batch if future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        """A worker's life: its loop, restarted (and logged) if it ever raises; the batch it held
        then fails, and only that batch."""
        threading.current_thread().emovox_batch = []
        while True:
            try:
                self._loop()
                return
            except BaseException as exc:
                held = getattr(threading.current_thread(), "emovox_batch", [])
                for _, future in held:
                    if not future.done():
                        future.set_exception(RuntimeError(f"the inference worker failed: {exc!r}"))
                if not isinstance(exc, Exception):
                    raise
                with self._count:
                    self.restarts += 1
                log.exception("inference worker %s failed; restarting it", threading.current_thread().name)
                time.sleep(0.05)  # a worker failing at once again does not spin

    def _loop(self) -> None:
        thread = threading.current_thread()
        while (batch := self._take_batch()) is not None:
            thread.emovox_batch = batch
            if not batch:
                continue
            start = time.perf_counter()
            try:
                predictions = self.model.predict_signals([s for s, _ in batch])
                if len(predictions) != len(batch):
                    raise RuntimeError(f"the model gave {len(predictions)} results for {len(batch)} clips")
            except Exception as exc:  # a bug: these requests get a 500 and the log the trace; the worker goes on
                log.exception("inference failed on a batch of %d", len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            with self._count:
                self.busy_seconds += time.perf_counter() - start
                self.batches += 1
                self.clips += len(batch)
            for (signal, future), p in zip(batch, predictions, strict=True):
                future.set_result(Result(p.scores, len(signal) / SAMPLING_RATE, p.dimensions))
            thread.emovox_batch = []
