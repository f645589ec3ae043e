"""Waveform augmentation for training (audiomentations), as cached augmented copies.

Each training file can get ``k`` augmented copies; copy ``i`` of a file is always the same
(its random seed comes from the file's content hash and ``i``), so its encoder features are
cached like the original's, under a key that names the recipe.

The recipe mixes what corpora differ in: level (gain), noise (white at 10–30 dB SNR, or babble
made of other utterances), pitch (±2 semitones) and tempo (0.9–1.1×).

Examples:
    >>> import numpy as np
    >>> from emovox.testing import speechlike
    >>> x = speechlike(duration=1.0)
    >>> y = augment(x, seed=1)
    >>> y.dtype, abs(len(y) - len(x)) < 0.15 * len(x)
    (dtype('float32'), True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

RECIPE = "v1:gain6,snr10-30,babble,pitch2,tempo0.9-1.1"


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + noise`` with the noise scaled to ``snr_db`` (noise tiled/cut to length).

    Examples:
        >>> s = np.ones(100, np.float32); n = np.ones(30, np.float32)
        >>> float(np.round(mix_at_snr(s, n, 0.0)[0], 3))
        2.0
    """
    noise = np.resize(noise, len(signal)).astype(np.float32)
    p_signal = float(np.mean(signal**2)) + 1e-12
    p_noise = float(np.mean(noise**2)) + 1e-12
    return (signal + noise * np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


def babble(others: Sequence[np.ndarray], length: int, rng: np.random.Generator, talkers: int = 4) -> np.ndarray:
    """Babble noise: the sum of ``talkers`` random other utterances, each tiled to ``length``."""
    picks = rng.choice(len(others), size=min(talkers, len(others)), replace=False)
    return np.sum([np.resize(others[i], length) for i in picks], axis=0).astype(np.float32)


def augment(signal: np.ndarray, *, seed: int, sampling_rate: int = 16000,
            others: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """One random augmentation of a 16 kHz signal (deterministic for a given ``seed``)."""
    from audiomentations import Compose, Gain, PitchShift, TimeStretch

    rng = np.random.default_rng(seed)
    np.random.seed(seed % (2**32))  # audiomentations draws from numpy's global RNG
    transform = Compose([
        Gain(min_gain_db=-6.0, max_gain_db=6.0, p=0.8),
        PitchShift(min_semitones=-2.0, max_semitones=2.0, p=0.5),
        TimeStretch(min_rate=0.9, max_rate=1.1, leave_length_unchanged=False, p=0.5),
    ])
    out = transform(samples=np.asarray(signal, np.float32), sample_rate=sampling_rate)
    if rng.random() < 0.7:
        snr = rng.uniform(10.0, 30.0)
        if others is not None and len(others) > 1 and rng.random() < 0.5:
            noise = babble(others, len(out), rng)
        else:
            noise = rng.standard_normal(len(out)).astype(np.float32)
        out = mix_at_snr(out, noise, snr)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    return (out / peak * 0.99 if peak > 1.0 else out).astype(np.float32)


def copy_seed(digest: str, copy: int) -> int:
    """Seed of augmented copy ``copy`` of the file whose content hash is ``digest``."""
    return int(hashlib.sha256(f"{digest}:{RECIPE}:{copy}".encode()).hexdigest()[:8], 16)


def copy_key(digest: str, copy: int) -> str:
    """Feature-cache key of an augmented copy."""
    return hashlib.sha256(f"{digest}:{RECIPE}:{copy}".encode()).hexdigest()
