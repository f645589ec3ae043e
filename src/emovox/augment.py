"""Waveform augmentation for training (audiomentations), as cached augmented copies.

Each training file can get ``k`` augmented copies; copy ``i`` of a file is always the same
(its random seed comes from the file's content hash and ``i``), so its encoder features are
cached like the original's, under a key that names the recipe.

The recipe mixes what corpora and rooms differ in: level (gain), noise (white or babble made of
other utterances, at 0–20 dB SNR), pitch (±2 semitones) and tempo (0.9–1.1×).
:func:`augmented_features` computes the encoder features of the copies (cached) for training.

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
import random
from collections.abc import Sequence

import numpy as np

RECIPE = "v2:gain6,noise0.9@snr0-20(white|babble4),pitch2@0.3,tempo0.9-1.1@0.3"


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
    """One random augmentation of a 16 kHz signal (deterministic for a given ``seed``).

    Level ±6 dB (p 0.8), pitch ±2 semitones (p 0.3), tempo 0.9–1.1× (p 0.3), then noise
    (p 0.9) at an SNR drawn uniformly from 0–20 dB: babble of four ``others`` (when given)
    or white noise, half and half.
    """
    from audiomentations import Compose, Gain, PitchShift, TimeStretch

    rng = np.random.default_rng(seed)
    random.seed(seed)  # audiomentations draws its parameters from Python's global RNG ...
    np.random.seed(seed % (2**32))  # ... and its noise from numpy's
    transform = Compose([
        Gain(min_gain_db=-6.0, max_gain_db=6.0, p=0.8),
        PitchShift(min_semitones=-2.0, max_semitones=2.0, p=0.3),
        TimeStretch(min_rate=0.9, max_rate=1.1, leave_length_unchanged=False, p=0.3),
    ])
    out = transform(samples=np.asarray(signal, np.float32), sample_rate=sampling_rate)
    if rng.random() < 0.9:
        snr = rng.uniform(0.0, 20.0)
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


def augmented_features(paths: Sequence[str], extractor, *, copies: int, babble_pool: Sequence[str] = (),
                       cache=None) -> np.ndarray:
    """Encoder features of ``copies`` augmented copies of each file: ``(copies, n, *feature_shape)``.

    Babble is made of four files drawn from ``babble_pool`` (never the file itself); keep the
    pool free of evaluation speakers when the copies train a model that is then evaluated.
    Each copy is cached under :func:`copy_key`, so a second run costs nothing.
    """
    import os

    from .audio import load_audio
    from .features import content_hash, extract_files

    pool = [os.fspath(p) for p in babble_pool]
    pool_tag = hashlib.sha256("\n".join(sorted(pool)).encode()).hexdigest()[:12]  # other babble, other copies

    def make_transform(copy: int):
        def transform(signal: np.ndarray, digest: str) -> np.ndarray:
            seed = copy_seed(digest, copy)
            others = None
            if len(pool) > 4:
                picks = np.random.default_rng(seed + 1).choice(len(pool), size=5, replace=False)
                others = [load_audio(pool[i], max_duration=None) for i in picks if content_hash(pool[i]) != digest][:4]
            return augment(signal, seed=seed, others=others)
        return transform

    out = [extract_files(paths, extractor, cache=cache, desc=f"augmented copy {c + 1}/{copies}",
                         transform=make_transform(c), cache_key=lambda d, c=c: copy_key(f"{d}:{pool_tag}", c))
           for c in range(copies)]
    return np.stack(out) if out else np.zeros((0, len(paths), *extractor.feature_shape), np.float32)
