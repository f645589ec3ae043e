"""Waveform augmentation for training (audiomentations), as cached augmented copies.

Each training file can get ``k`` augmented copies; copy ``i`` of a file is always the same
(its random seed comes from the file's content hash and ``i``), so its encoder features are
cached like the original's, under a key that names the recipe.

The recipe mixes what corpora and rooms differ in: level (gain), noise (white or babble made of
other utterances, at 0–20 dB SNR), pitch (±2 semitones) and tempo (0.9–1.1×). An
:class:`AugmentRecipe` can add room reverberation (a statistical room impulse response) and
masking (a stretch of time silenced, a band of frequencies stopped: what SpecAugment does to
features, done to the waveform so the encoder sees it).
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

import dataclasses
import hashlib
import random
from collections.abc import Sequence

import numpy as np

RECIPE = "v2:gain6,noise0.9@snr0-20(white|babble4),pitch2@0.3,tempo0.9-1.1@0.3"
RECIPE_NOISE = 0.9  # RECIPE's probability of noise in a copy (the "noise0.9" of its name)


@dataclasses.dataclass(frozen=True)
class AugmentRecipe:
    """What an augmented copy may have on top of :data:`RECIPE`'s level, pitch, tempo and noise.

    ``noise``: probability of white or babble noise (:data:`RECIPE`'s 0.9; 0 gives copies that
    differ from the clip by level, pitch, tempo and whatever else is asked, such as rooms only).
    ``reverb``: probability of a simulated room (RT60 0.2–0.8 s, microphone 0.3–2.5 m from the
    talker); ``mask``: probability of masking (5–20 % of the time silenced, and a band around
    200–4000 Hz, 0.5–2 times as wide as its centre frequency, stopped). All-zero is :data:`RECIPE`
    itself, so copies made before these options keep their seeds and cache keys.

    Examples:
        >>> AugmentRecipe().tag() == RECIPE
        True
        >>> AugmentRecipe(reverb=0.5).tag()
        'v2:gain6,noise0.9@snr0-20(white|babble4),pitch2@0.3,tempo0.9-1.1@0.3+room0.5'
        >>> AugmentRecipe(reverb=1.0, noise=0.0).tag()
        'v2:gain6,noise0@snr0-20(white|babble4),pitch2@0.3,tempo0.9-1.1@0.3+room1'
    """

    reverb: float = 0.0
    mask: float = 0.0
    noise: float = RECIPE_NOISE

    def __post_init__(self):
        for name in ("reverb", "mask", "noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")

    def tag(self) -> str:
        """The recipe's name in copy seeds and cache keys."""
        base = (RECIPE if self.noise == RECIPE_NOISE
                else RECIPE.replace(f"noise{RECIPE_NOISE:g}@", f"noise{self.noise:g}@"))
        return base + (f"+room{self.reverb:g}" if self.reverb else "") + (f"+mask{self.mask:g}" if self.mask else "")


def room_impulse_response(rng: np.random.Generator, *, rt60: float, distance: float, volume: float,
                          sampling_rate: int = 16000) -> np.ndarray:
    """A statistical room impulse response (Polack's model): the direct sound, then a diffuse tail
    of Gaussian noise decaying by 60 dB in ``rt60`` seconds, whose energy against the direct
    sound follows the distance from the talker: the critical distance of a room of ``volume`` m³
    is 0.057·√(volume / rt60) m, where direct and reverberant energy are equal.

    Examples:
        >>> ir = room_impulse_response(np.random.default_rng(0), rt60=0.5, distance=0.57, volume=50)
        >>> float(ir[0]), round(float(np.sum(ir[1:] ** 2)), 2), len(ir) / 16000
        (1.0, 1.0, 0.6)
    """
    n = int(round(1.2 * rt60 * sampling_rate))
    t = np.arange(n) / sampling_rate
    tail = rng.standard_normal(n) * np.exp(-3 * np.log(10) * t / rt60)  # 10^(-3 t / rt60): -60 dB at rt60
    tail[: max(1, int(0.003 * sampling_rate))] = 0.0  # the first reflections come a few ms after the direct sound
    critical = 0.057 * np.sqrt(volume / rt60)
    tail *= np.sqrt((distance / critical) ** 2 / np.sum(tail**2))  # reverberant / direct energy
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(signal: np.ndarray, *, seed: int, sampling_rate: int = 16000, min_rt60: float = 0.2,
                max_rt60: float = 0.8, min_distance: float = 0.3, max_distance: float = 2.5) -> np.ndarray:
    """``signal`` as heard in a random room (deterministic for a given ``seed``): RT60 drawn from
    ``min_rt60``–``max_rt60`` s, microphone ``min_distance``–``max_distance`` m from the talker,
    room volume 30–150 m³ (:func:`room_impulse_response`, applied with scipy's FFT convolution).
    The length is kept; the level follows the room (re-level it if needed).

    Examples:
        >>> from emovox.testing import speechlike
        >>> x = speechlike(duration=0.5)
        >>> y = reverberate(x, seed=3)
        >>> len(y) == len(x), bool(np.array_equal(y, reverberate(x, seed=3))), bool(np.allclose(y, x))
        (True, True, False)
    """
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    rt60, distance = rng.uniform(min_rt60, max_rt60), rng.uniform(min_distance, max_distance)
    ir = room_impulse_response(rng, rt60=rt60, distance=distance, volume=rng.uniform(30.0, 150.0),
                               sampling_rate=sampling_rate)
    return fftconvolve(np.asarray(signal, np.float32), ir)[: len(signal)].astype(np.float32)


def mask(signal: np.ndarray, *, seed: int, sampling_rate: int = 16000, p: float = 1.0) -> np.ndarray:
    """Waveform masking (deterministic for a given ``seed``): with probability ``p`` each, a
    stretch of 5–20 % of the clip is silenced and a band of frequencies is stopped.

    Examples:
        >>> from emovox.testing import speechlike
        >>> x = speechlike(duration=0.5)
        >>> y = mask(x, seed=1)
        >>> len(y) == len(x), float(np.sum(y**2)) < float(np.sum(x**2))
        (True, True)
    """
    from audiomentations import BandStopFilter, Compose, TimeMask

    random.seed(seed)
    np.random.seed(seed % (2**32))
    transform = Compose([TimeMask(min_band_part=0.05, max_band_part=0.2, p=p),
                         BandStopFilter(min_center_freq=200.0, max_center_freq=4000.0, p=p)])
    return transform(samples=np.asarray(signal, np.float32), sample_rate=sampling_rate).astype(np.float32)


def same_level(signal: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``signal`` scaled to the RMS level of ``reference`` (a room changes the sound, not the level).

    Examples:
        >>> float(np.round(same_level(np.full(4, 2.0), np.full(4, 0.5))[0], 6))
        0.5
    """
    level = float(np.sqrt(np.mean(reference**2))) + 1e-12
    return (signal * (level / (float(np.sqrt(np.mean(signal**2))) + 1e-12))).astype(np.float32)


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
            others: Sequence[np.ndarray] | None = None, recipe: AugmentRecipe = AugmentRecipe()) -> np.ndarray:
    """One random augmentation of a 16 kHz signal (deterministic for a given ``seed``).

    Level ±6 dB (p 0.8), pitch ±2 semitones (p 0.3), tempo 0.9–1.1× (p 0.3), then a room
    (``recipe.reverb``), then noise (``recipe.noise``, 0.9 by default) at an SNR drawn uniformly from 0–20 dB: babble of
    four ``others`` (when given) or white noise, half and half; then masking (``recipe.mask``).
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
    extra = np.random.default_rng([seed, 1])  # the room's and the mask's draws leave RECIPE's alone
    if recipe.reverb and extra.random() < recipe.reverb:
        out = same_level(reverberate(out, seed=int(extra.integers(2**31)), sampling_rate=sampling_rate), out)
    if rng.random() < recipe.noise:
        snr = rng.uniform(0.0, 20.0)
        if others is not None and len(others) > 1 and rng.random() < 0.5:
            noise = babble(others, len(out), rng)
        else:
            noise = rng.standard_normal(len(out)).astype(np.float32)
        out = mix_at_snr(out, noise, snr)
    if recipe.mask and extra.random() < recipe.mask:
        out = mask(out, seed=int(extra.integers(2**31)), sampling_rate=sampling_rate)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    return (out / peak * 0.99 if peak > 1.0 else out).astype(np.float32)


def copy_seed(digest: str, copy: int, recipe: AugmentRecipe = AugmentRecipe()) -> int:
    """Seed of augmented copy ``copy`` of the file whose content hash is ``digest``."""
    return int(hashlib.sha256(f"{digest}:{recipe.tag()}:{copy}".encode()).hexdigest()[:8], 16)


def copy_key(digest: str, copy: int, recipe: AugmentRecipe = AugmentRecipe()) -> str:
    """Feature-cache key of an augmented copy."""
    return hashlib.sha256(f"{digest}:{recipe.tag()}:{copy}".encode()).hexdigest()


def augmented_features(paths: Sequence[str], extractor, *, copies: int, babble_pool: Sequence[str] = (),
                       cache=None, recipe: AugmentRecipe = AugmentRecipe()) -> np.ndarray:
    """Encoder features of ``copies`` augmented copies of each file: ``(copies, n, *feature_shape)``.

    Babble is made of four files drawn from ``babble_pool`` (never the file itself); keep the
    pool free of evaluation speakers when the copies train a model that is then evaluated.
    Each copy is cached under :func:`copy_key`, so a second run costs nothing.
    """
    import os

    from emovox.audio.load import load_audio
    from emovox.features.extractor import content_hash, extract_files

    pool = [os.fspath(p) for p in babble_pool] if recipe.noise else []  # no noise, no babble: one copy for every pool
    pool_tag = hashlib.sha256("\n".join(sorted(pool)).encode()).hexdigest()[:12]  # other babble, other copies

    def make_transform(copy: int):
        def transform(signal: np.ndarray, digest: str) -> np.ndarray:
            seed = copy_seed(digest, copy, recipe)
            others = None
            if len(pool) > 4:
                picks = np.random.default_rng(seed + 1).choice(len(pool), size=5, replace=False)
                others = [load_audio(pool[i], max_duration=None) for i in picks if content_hash(pool[i]) != digest][:4]
            return augment(signal, seed=seed, others=others, recipe=recipe)
        return transform

    out = [extract_files(paths, extractor, cache=cache, desc=f"augmented copy {c + 1}/{copies}",
                         transform=make_transform(c), cache_key=lambda d, c=c: copy_key(f"{d}:{pool_tag}", c, recipe))
           for c in range(copies)]
    return np.stack(out) if out else np.zeros((0, len(paths), *extractor.feature_shape), np.float32)
