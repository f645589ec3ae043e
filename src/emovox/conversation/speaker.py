"""Who is speaking: a GE2E speaker encoder (Resemblyzer's weights) as a small torch module.

The ``resemblyzer`` wheel (Apache-2.0) ships ``resemblyzer/pretrained.pt``: a speaker encoder
trained with the generalised end-to-end loss (GE2E, Wan et al. 2018) — a 3-layer LSTM (hidden 256)
over 40-band mel power frames (25 ms window, 10 ms hop at 16 kHz), its last hidden state through
a linear 256→256 and a ReLU, L2-normalised. Two windows of one voice give embeddings with a
cosine similarity near 0.8–0.9; of two voices, far less.

Only the weight file is used. The ``resemblyzer`` Python package is never imported (it imports
webrtcvad and librosa); the file is located through the package metadata, checked against
:data:`WEIGHTS_SHA256`, and read with ``torch.load(weights_only=True)``. The mel frames are
computed here with numpy, as Resemblyzer computes them with librosa (a periodic Hann window,
a centred STFT with zero padding, Slaney's mel scale and normalisation, power 2, not logged).
Resemblyzer raises a quiet recording's level to -30 dBFS; here every window is brought to
-30 dBFS, up or down, so that two parties' loudness does not tell them apart.

Examples:
    >>> mel_filterbank().shape
    (40, 201)
    >>> frames = mel_frames(np.zeros(16000, np.float32))
    >>> frames.shape, frames.dtype
    ((101, 40), dtype('float32'))
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.errors import ModelError

WEIGHTS_FILE = "resemblyzer/pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"  # resemblyzer 0.1.4
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s: the length of the windows the encoder was trained on
TARGET_DBFS = -30.0


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLING_RATE) -> np.ndarray:
    """Triangular filters on Slaney's mel scale with Slaney's area normalisation, as librosa's
    ``filters.mel`` defaults make them: ``(n_mels, n_fft // 2 + 1)`` float32.

    Examples:
        >>> bank = mel_filterbank()
        >>> bool((bank >= 0).all()), int(bank.argmax(axis=1)[0]), int(bank.argmax(axis=1)[-1])
        (True, 2, 185)
    """
    def to_mel(hz):
        hz = np.asarray(hz, float)
        linear = hz / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log_part, linear)

    def to_hz(mel):
        mel = np.asarray(mel, float)
        return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))

    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _bank_and_window() -> tuple[np.ndarray, np.ndarray]:
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann
    return mel_filterbank(), window


def mel_frames(signal: np.ndarray) -> np.ndarray:
    """Mel power frames of a 16 kHz signal, ``(1 + len // 160, 40)`` float32 (Resemblyzer's
    ``wav_to_mel_spectrogram``)."""
    bank, window = _bank_and_window()
    padded = np.pad(np.asarray(signal, np.float32), N_FFT // 2)
    n = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, (n, N_FFT), (padded.strides[0] * HOP, padded.strides[0]))
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power.astype(np.float32) @ bank.T).astype(np.float32)


def normalise_level(signal: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """``signal`` scaled to an RMS of ``target_dbfs`` (silence stays silence).

    Examples:
        >>> x = normalise_level(np.full(100, 0.5, np.float32))
        >>> round(20 * float(np.log10(np.sqrt(np.mean(x ** 2)))), 1)
        -30.0
    """
    rms = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if len(signal) else 0.0
    if rms < 1e-6:
        return np.asarray(signal, np.float32)
    return (np.asarray(signal, np.float32) * np.float32(10 ** (target_dbfs / 20) / rms)).astype(np.float32)


def weights_path() -> Path:
    """The GE2E weight file inside the installed ``resemblyzer`` distribution, checked by sha256."""
    try:
        path = Path(str(importlib.metadata.distribution("resemblyzer").locate_file(WEIGHTS_FILE)))
    except importlib.metadata.PackageNotFoundError:
        raise ModelError("the speaker encoder's weights come from the resemblyzer package: "
                         "pip install resemblyzer==0.1.4") from None
    if not path.is_file():
        raise ModelError(f"resemblyzer is installed but {WEIGHTS_FILE} is missing from it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ModelError(f"{path} is not the expected GE2E weight file (sha256 {digest[:12]}…, expected {WEIGHTS_SHA256[:12]}…)")
    return path


@functools.lru_cache(maxsize=1)
def _network():
    import torch
    from torch import nn

    class GE2E(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-8)

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    net = GE2E()
    net.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    return net.eval()


def embed_windows(clips: list[np.ndarray], *, batch_size: int = 64) -> np.ndarray:
    """One L2-normalised 256-d speaker embedding per 16 kHz clip, ``(len(clips), 256)`` float32.

    Each clip is levelled to -30 dBFS and cut into 1.6 s partials (a clip shorter than that is
    zero-padded to one); a clip's embedding is the normalised mean of its partials'
    (Resemblyzer's ``embed_utterance``, partials half overlapping).
    """
    import torch

    if not clips:
        return np.zeros((0, 256), np.float32)
    partials, owner = [], []
    for i, clip in enumerate(clips):
        mels = mel_frames(normalise_level(clip))
        if len(mels) < PARTIAL_FRAMES:
            mels = np.pad(mels, ((0, PARTIAL_FRAMES - len(mels)), (0, 0)))
        starts = range(0, max(1, len(mels) - PARTIAL_FRAMES // 4 * 3), PARTIAL_FRAMES // 2)
        for s in starts:
            part = mels[s : s + PARTIAL_FRAMES]
            partials.append(np.pad(part, ((0, PARTIAL_FRAMES - len(part)), (0, 0))))
            owner.append(i)
    net, out = _network(), []
    with torch.inference_mode():
        for first in range(0, len(partials), batch_size):
            out.append(net(torch.from_numpy(np.stack(partials[first : first + batch_size]))).numpy())
    embeddings = np.concatenate(out)
    owner = np.asarray(owner)
    means = np.stack([embeddings[owner == i].mean(axis=0) for i in range(len(clips))])
    return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-8)).astype(np.float32)
