"""The Whisper log-mel front end, torch-free, shared by the PyTorch and ONNX paths.

The numbers come from faster-whisper's numpy feature extractor.
Importing ``faster_whisper`` runs its package ``__init__``, which loads CTranslate2, PyAV and
tokenizers (about 0.2 s and 100 MB); this module loads only the extractor's own file (it
needs numpy alone), so serving stays light. :func:`mel_windows` cuts a clip the way
:class:`emovox.features.extractor.FeatureExtractor` does, for either ``window`` setting.

Examples:
    >>> import numpy as np
    >>> log_mel(np.full(16000, 0.01, dtype=np.float32)).shape
    (80, 100)
    >>> [(m.shape[1], n) for m, n in mel_windows(np.zeros(16000 * 31, np.float32), window=30.0)]
    [(3000, 3000), (3000, 100)]
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
from pathlib import Path

import numpy as np

from emovox.audio.level_band import banded
from emovox.errors import InvalidAudioError, ModelError

HOP_LENGTH = 160  # 10 ms at 16 kHz
MAX_MEL_FRAMES = 3000  # the encoder's limit: 30 s (1500 positions after the stride-2 convolution)
SAMPLING_RATE = 16000


@functools.lru_cache(maxsize=1)
def _extractor_class() -> type:
    name = "emovox.encoder._faster_whisper_feature_extractor"
    if name in sys.modules:
        return sys.modules[name].FeatureExtractor
    spec = importlib.util.find_spec("faster_whisper")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("faster-whisper is not installed (its log-mel extractor is needed): pip install faster-whisper")
    path = Path(list(spec.submodule_search_locations)[0]) / "feature_extractor.py"
    file_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module.FeatureExtractor


@functools.lru_cache(maxsize=4)
def _extractor(n_mels: int):
    return _extractor_class()(feature_size=n_mels)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its own thread count
        return None
    return ThreadpoolController()


def log_mel(signal: np.ndarray, *, n_mels: int = 80) -> np.ndarray:
    """Whisper log-mel spectrogram ``(n_mels, len(signal) // 160)`` of a 16 kHz signal.

    The mel filterbank product runs on one BLAS thread: it is small, and OpenBLAS's threads
    spinning against onnxruntime's on a loaded machine made it 10-30 times slower. The
    numbers do not change (the product is split over rows, never over the summed axis).

    Raises:
        InvalidAudioError: the spectrogram is not finite (samples far beyond full scale
            overflow it; :func:`emovox.audio.load.load_audio` scales such input down first).
    """
    frames = len(signal) // HOP_LENGTH
    controller = _blas_controller()
    limit = controller.limit(limits=1, user_api="blas") if controller else contextlib.nullcontext()
    with limit, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mel = _extractor(n_mels)(np.asarray(signal, dtype=np.float32), padding=HOP_LENGTH)
    mel = np.ascontiguousarray(mel[:, :frames], dtype=np.float32)
    if not np.isfinite(mel).all():
        raise InvalidAudioError("the log-mel spectrogram of the audio is not finite (NaN or infinite samples, or "
                                "samples far beyond full scale): load it with emovox.audio.load.load_audio, which "
                                "scales such input down")
    return mel


def mel_windows(signal: np.ndarray, *, n_mels: int = 80, window: float = 0.0,
                level_band: tuple[float, float] | None = None) -> list[tuple[np.ndarray, int]]:
    """A clip's encoder windows as ``(mel, valid_frames)`` pairs.

    ``level_band``: the whole clip's speech level is first brought into it (:func:`emovox.audio.level_band.banded`).

    ``window=0``: the log-mel of the whole clip, cut every 3000 frames; every frame is valid.
    ``window=30`` (Whisper's own): each 30 s of audio zero-padded to 30 s before its log-mel;
    only the frames of real audio are valid (the encoder still sees the padding).
    """
    signal = banded(signal, level_band)
    if not window:
        mel = log_mel(signal, n_mels=n_mels)
        return [(mel[:, i : i + MAX_MEL_FRAMES], min(MAX_MEL_FRAMES, mel.shape[1] - i))
                for i in range(0, max(mel.shape[1], 1), MAX_MEL_FRAMES)]
    step = int(window * SAMPLING_RATE)
    out = []
    for i in range(0, max(len(signal), 1), step):
        chunk = signal[i : i + step]
        out.append((log_mel(np.pad(chunk, (0, step - len(chunk))), n_mels=n_mels), len(chunk) // HOP_LENGTH))
    return out
