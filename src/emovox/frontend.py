"""Log-mel front end of the Whisper encoder (faster-whisper's feature extractor).

Whisper was trained on 30 s windows; emovox encodes only the real length of a clip (short
clips cost a fraction of a padded window) and splits clips longer than 30 s into 30 s windows
whose frames are pooled together later.

Examples:
    >>> import numpy as np
    >>> mel = log_mel(np.zeros(16000, dtype=np.float32) + 0.01, n_mels=80)
    >>> mel.shape
    (80, 100)
"""

from __future__ import annotations

import functools

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from .whisper_encoder import MAX_MEL_FRAMES

HOP_LENGTH = 160  # 10 ms at 16 kHz


@functools.lru_cache(maxsize=4)
def _extractor(n_mels: int) -> FeatureExtractor:
    return FeatureExtractor(feature_size=n_mels)


def log_mel(signal: np.ndarray, *, n_mels: int = 80) -> np.ndarray:
    """Whisper log-mel spectrogram ``(n_mels, len(signal) // 160)`` of a 16 kHz signal."""
    frames = len(signal) // HOP_LENGTH
    mel = _extractor(n_mels)(np.asarray(signal, dtype=np.float32), padding=HOP_LENGTH)
    return np.ascontiguousarray(mel[:, :frames], dtype=np.float32)


def mel_windows(mel: np.ndarray, *, window: int = MAX_MEL_FRAMES) -> list[np.ndarray]:
    """Split a log-mel array into windows of at most ``window`` frames (the encoder's limit)."""
    return [mel[:, i : i + window] for i in range(0, max(mel.shape[1], 1), window)]
