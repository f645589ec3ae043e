"""Find speech: Silero VAD on onnxruntime, frame by frame (:class:`VADStream`), turned into
``(start, end)`` segments (:class:`Segmenter`, :func:`speech_segments`).

The VAD runs the ``silero_vad_16k_sequence.onnx`` graph shipped inside the ``silero-vad``
package on onnxruntime. The package's Python module is never imported (it imports torch and
sets torch's thread count as a side effect); the file is located through the package
metadata and nothing is fetched from a hub.

Examples:
    >>> from emovox.testing import voice
    >>> signal = np.concatenate([np.zeros(16000, np.float32), voice(2.0, seed=1), np.zeros(16000, np.float32)])
    >>> [(round(a), round(b)) for a, b in speech_segments(signal)]
    [(1, 3)]
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import math
from pathlib import Path

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.errors import ModelError

FRAME = 512  # samples per VAD frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
VAD_FILE = "silero_vad/data/silero_vad_16k_sequence.onnx"


@dataclasses.dataclass(frozen=True)
class VADSettings:
    """How frame probabilities become speech segments (seconds; Silero's hysteresis)."""

    threshold: float = 0.5  # a frame at or above this starts speech
    neg_threshold: float = 0.35  # inside speech, frames below this count as silence
    min_speech: float = 0.25  # shorter segments are dropped
    min_silence: float = 0.3  # silence that ends a segment
    pad: float = 0.05  # added on each side of a segment


@functools.lru_cache(maxsize=1)
def _vad_session():
    import onnxruntime as ort

    try:
        path = Path(str(importlib.metadata.distribution("silero-vad").locate_file(VAD_FILE)))
    except importlib.metadata.PackageNotFoundError:
        raise ModelError("the silero-vad package is not installed: pip install silero-vad") from None
    if not path.is_file():
        raise ModelError(f"silero-vad is installed but {VAD_FILE} is missing from it")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class VADStream:
    """Silero VAD over audio that arrives in pieces: :meth:`push` returns one speech
    probability per complete 32 ms frame; leftover samples wait for the next push.

    Examples:
        >>> vad = VADStream()
        >>> vad.push(np.zeros(1000, np.float32)).shape, vad.push(np.zeros(24, np.float32)).shape
        ((1,), (1,))
    """

    def __init__(self, *, max_frames: int = 512):
        self.session = _vad_session()
        self.max_frames = max_frames
        self.h = np.zeros((1, 1, 128), np.float32)
        self.c = np.zeros((1, 1, 128), np.float32)
        self.context = np.zeros(CONTEXT, np.float32)
        self.pending = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of the frames completed by ``samples`` (16 kHz float32)."""
        audio = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        n = len(audio) // FRAME
        self.pending = audio[n * FRAME :]
        out = []
        for first in range(0, n, self.max_frames):
            frames = audio[first * FRAME : min(n, first + self.max_frames) * FRAME].reshape(-1, FRAME)
            contexts = np.concatenate([self.context[None], frames[:-1, -CONTEXT:]])
            self.context = frames[-1, -CONTEXT:].copy()
            probs, self.h, self.c = self.session.run(
                ["speech_probs", "hn", "cn"], {"input": np.hstack([contexts, frames]), "h": self.h, "c": self.c}
            )
            out.append(probs)
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


class Segmenter:
    """Online hysteresis over frame probabilities: :meth:`push` returns ``(start, end)`` in
    seconds (padded) when a segment ends, :meth:`flush` closes one still open at the end.

    ``start`` of the open segment is :attr:`speech_start` (``None`` in silence).
    """

    def __init__(self, settings: VADSettings = VADSettings()):
        self.settings = settings
        self.frame = FRAME / SAMPLING_RATE
        self.index = 0  # frames seen
        self.speech_start: int | None = None
        self.silence_start: int | None = None
        self.last_end = 0.0

    def push(self, prob: float) -> tuple[float, float] | None:
        i, s = self.index, self.settings
        self.index += 1
        if self.speech_start is None:
            if prob >= s.threshold:
                self.speech_start = i
            return None
        if prob >= s.threshold:
            self.silence_start = None
        elif prob < s.neg_threshold:
            if self.silence_start is None:
                self.silence_start = i
            if (i + 1 - self.silence_start) * self.frame >= s.min_silence:
                return self._close(self.silence_start)
        return None

    def flush(self) -> tuple[float, float] | None:
        """Close the open segment at the last frame seen, if there is one."""
        if self.speech_start is None:
            return None
        return self._close(self.silence_start if self.silence_start is not None else self.index)

    def _close(self, end_frame: int) -> tuple[float, float] | None:
        start_frame, self.speech_start, self.silence_start = self.speech_start, None, None
        if (end_frame - start_frame) * self.frame < self.settings.min_speech:
            return None
        start = max(self.last_end, start_frame * self.frame - self.settings.pad, 0.0)
        end = end_frame * self.frame + self.settings.pad
        self.last_end = end
        return start, end


def speech_segments(signal: np.ndarray, settings: VADSettings = VADSettings()) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of the speech in a 16 kHz mono signal."""
    duration = len(signal) / SAMPLING_RATE
    vad, segmenter = VADStream(), Segmenter(settings)
    tail = (-len(signal)) % FRAME  # pad the last frame
    probs = vad.push(np.concatenate([np.asarray(signal, np.float32), np.zeros(tail, np.float32)]))
    found = [seg for p in probs if (seg := segmenter.push(float(p)))]
    if last := segmenter.flush():
        found.append(last)
    return [(round(a, 3), round(min(b, duration), 3)) for a, b in found if min(b, duration) > a]


def split_windows(start: float, end: float, max_window: float) -> list[tuple[float, float]]:
    """Cut ``[start, end]`` into the fewest equal windows of at most ``max_window`` seconds.

    Examples:
        >>> split_windows(0.0, 25.0, 10.0)
        [(0.0, 8.333), (8.333, 16.667), (16.667, 25.0)]
    """
    n = max(1, math.ceil((end - start) / max_window - 1e-9))
    edges = [round(start + (end - start) * k / n, 3) for k in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))
