"""The inference engine's threads: several workers share one queue without losing a clip or a
thread, a failing batch fails only its own requests, and a worker whose loop raises restarts."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import numpy as np
import pytest

from emovox import Prediction
from emovox.serving.engine import InferenceEngine


class Model:
    """Scores every clip alike; ``fail_on`` (a length in samples) makes a batch holding such a clip raise."""

    labels = ["sad", "angry"]

    def __init__(self, delay: float = 0.0, fail_on: int | None = None):
        self.delay, self.fail_on = delay, fail_on

    def predict_signals(self, signals, labels=None):
        time.sleep(self.delay)
        if self.fail_on is not None and any(len(s) == self.fail_on for s in signals):
            raise RuntimeError("a bad clip")
        return [Prediction("sad", {"sad": 0.75, "angry": 0.25}, len(s) / 16000) for s in signals]


def clip(n: int = 16000) -> np.ndarray:
    return np.zeros(n, np.float32)


@pytest.fixture
def engine_factory():
    engines = []

    def make(model, **kw):
        engine = InferenceEngine(model, **kw).start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


def test_two_workers_one_clip_each_survive_bursts(engine_factory):
    # the race of issue 15: both workers wake for one waiting clip, the second found none left
    engine = engine_factory(Model(delay=0.001), max_batch=1, workers=2, batch_wait=0.005)
    for _ in range(30):
        futures = [engine.submit(clip()) for _ in range(3)]
        assert all(f.result(timeout=10).scores["sad"] == 0.75 for f in futures)
    assert engine.workers_alive == engine.workers == 2 and engine.alive
    assert engine.clips == 90 and engine.restarts == 0


def test_many_threads_submitting_at_once(engine_factory):
    engine = engine_factory(Model(), max_batch=2, workers=3, batch_wait=0.002)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: engine.submit(clip(8000 + 100 * k)).result(timeout=10), range(200)))
    assert len(results) == 200 and engine.alive


def test_a_failing_batch_fails_only_its_requests(engine_factory):
    engine = engine_factory(Model(fail_on=12345), max_batch=1, workers=1)
    bad, good = engine.submit(clip(12345)), engine.submit(clip())
    with pytest.raises(RuntimeError, match="a bad clip"):
        bad.result(timeout=10)
    assert good.result(timeout=10).duration == 1.0
    assert engine.alive and engine.restarts == 0


class BrokenOnce(Model):
    """Its first answer is not a list of predictions (a bug outside the model call's try)."""

    def predict_signals(self, signals, labels=None):
        if not getattr(self, "broke", False):
            self.broke = True
            return [object() for _ in signals]
        return super().predict_signals(signals)


def test_a_worker_whose_loop_raises_restarts(engine_factory, caplog):
    engine = engine_factory(BrokenOnce(), max_batch=4, workers=1)
    lost = engine.submit(clip())
    with pytest.raises(RuntimeError, match="inference worker failed"):
        lost.result(timeout=10)  # the batch the worker held fails, it is never left hanging
    assert engine.submit(clip()).result(timeout=10).scores["sad"] == 0.75
    assert engine.restarts == 1 and engine.alive
    assert "restarting it" in caplog.text


def test_health_is_not_ok_when_a_worker_died(engine_factory):
    engine = engine_factory(Model(), workers=2)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    engine._threads[1] = dead  # as if the thread had died
    assert engine.workers_alive == 1 and not engine.alive
    assert engine.submit(clip()).result(timeout=10)  # the live one still answers
