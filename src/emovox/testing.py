"""Deterministic synthetic signals for tests.

Every factory returns a 1-D ``float32`` array and draws randomness from a local generator
seeded by its ``seed`` argument, so the same call always returns the same samples.

Examples:
    >>> x = speechlike(duration=0.5, f0=200.0)
    >>> x.shape, x.dtype
    ((8000,), dtype('float32'))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf


def sinusoid(
    freq: float = 220.0,
    duration: float = 1.0,
    sampling_rate: int = 16000,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A pure tone starting at phase 0.

    Args:
        freq: frequency in Hz.
        duration: length in seconds.
        sampling_rate: sampling rate in Hz.
        amplitude: peak value.

    Returns:
        ``round(duration * sampling_rate)`` ``float32`` samples.

    Examples:
        >>> x = sinusoid(440.0, 0.01)
        >>> x.shape, float(x[0])
        ((160,), 0.0)
    """
    t = np.arange(_num_samples(duration, sampling_rate)) / sampling_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def whitenoise(
    duration: float = 1.0,
    sampling_rate: int = 16000,
    amplitude: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Uniform white noise in [-amplitude, amplitude].

    Args:
        duration: length in seconds.
        sampling_rate: sampling rate in Hz.
        amplitude: largest absolute value.
        seed: seed of the local random generator.

    Returns:
        ``round(duration * sampling_rate)`` ``float32`` samples.

    Examples:
        >>> bool(np.array_equal(whitenoise(seed=1), whitenoise(seed=1)))
        True
        >>> bool(np.abs(whitenoise(amplitude=0.1)).max() <= 0.1)
        True
    """
    rng = np.random.default_rng(seed)
    n = _num_samples(duration, sampling_rate)
    return rng.uniform(-amplitude, amplitude, n).astype(np.float32)


def speechlike(
    duration: float = 1.0,
    sampling_rate: int = 16000,
    f0: float = 140.0,
    seed: int = 0,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A crude voiced signal: a harmonic series on a gliding pitch, pulsed like syllables.

    The pitch wanders by about 10 % around ``f0`` (a slow glide with a random phase);
    harmonics up to 4 kHz fall off as 1/k; a 4 Hz envelope gives syllable-like bursts; a
    little Gaussian noise is added. Classes built from different ``f0`` or ``amplitude``
    (energy) are easy to tell apart.

    Args:
        duration: length in seconds.
        sampling_rate: sampling rate in Hz.
        f0: mean fundamental frequency in Hz.
        seed: seed of the local random generator (pitch and envelope phases, noise).
        amplitude: peak absolute value, i.e. the loudness.

    Returns:
        ``round(duration * sampling_rate)`` ``float32`` samples, peak ``amplitude``.

    Examples:
        >>> x = speechlike(f0=120.0, amplitude=0.5)
        >>> round(float(np.abs(x).max()), 3)
        0.5
        >>> loud, soft = speechlike(amplitude=0.5), speechlike(amplitude=0.05)
        >>> bool(np.sqrt(np.mean(loud**2)) > 5 * np.sqrt(np.mean(soft**2)))
        True
    """
    rng = np.random.default_rng(seed)
    n = _num_samples(duration, sampling_rate)
    t = np.arange(n) / sampling_rate
    glide, syllable = rng.uniform(0, 2 * np.pi, 2)
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + glide))
    phase = 2 * np.pi * np.cumsum(pitch) / sampling_rate
    top = min(4000.0, 0.45 * sampling_rate)
    voiced = sum(np.sin(k * phase) / k for k in range(1, int(top // (1.1 * f0)) + 1))
    envelope = (0.5 - 0.5 * np.cos(2 * np.pi * 4.0 * t + syllable)) ** 1.5
    signal = voiced * envelope + 0.01 * rng.standard_normal(n)
    peak = np.abs(signal).max() if n else 0.0
    return (amplitude * signal / peak if peak > 0 else signal).astype(np.float32)


def write_wav(
    path: str | os.PathLike,
    signal: np.ndarray,
    sampling_rate: int,
    subtype: str = "PCM_16",
) -> Path:
    """Write ``signal`` to a WAV file with soundfile.

    Args:
        path: where to write.
        signal: 1-D signal, or 2-D as (frames, channels).
        sampling_rate: sampling rate in Hz.
        subtype: soundfile subtype, e.g. ``"PCM_16"`` or ``"FLOAT"``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = write_wav(Path(folder) / "tone.wav", sinusoid(), 16000)
        ...     sf.info(path).frames
        16000
    """
    sf.write(os.fspath(path), signal, sampling_rate, subtype=subtype, format="WAV")
    return Path(path)


def _num_samples(duration: float, sampling_rate: int) -> int:
    return int(round(duration * sampling_rate))


# Two "emotions" that differ in pitch and loudness, roughly as sad and angry speech do.
SYNTHETIC_STYLES = {"sad": {"f0": 110.0, "amplitude": 0.1}, "angry": {"f0": 260.0, "amplitude": 0.6}}


def make_synthetic_corpus(root, *, speakers: int = 4, takes: int = 6, styles: dict | None = None,
                          prefix: str = "spk") -> Path:
    """Write a folder-per-label corpus of synthetic voices: ``root/<label>/<prefix><s>_<t>.wav``.

    Each speaker has its own pitch offset; labels differ in pitch and loudness, so even a tiny
    model separates them. Used by tests that train end to end in seconds.

    Examples:
        >>> import tempfile
        >>> root = make_synthetic_corpus(tempfile.mkdtemp(), speakers=1, takes=1)
        >>> sorted(p.parent.name for p in root.rglob("*.wav"))
        ['angry', 'sad']
    """
    root = Path(root)
    for label, style in (styles or SYNTHETIC_STYLES).items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for speaker in range(speakers):
            for take in range(takes):
                signal = speechlike(duration=0.6 + 0.1 * take, f0=style["f0"] * (1 + 0.05 * speaker),
                                    seed=100 * speaker + take, amplitude=style["amplitude"])
                write_wav(root / label / f"{prefix}{speaker}_{take}.wav", signal, 16000)
    return root


# First three formants (Hz) of a few vowels: /a/, /i/, /u/, /e/, /o/, /ae/.
_VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
                   (570, 840, 2410), (660, 1720, 2410))


def voice(
    duration: float = 1.0,
    sampling_rate: int = 16000,
    f0: float = 140.0,
    seed: int = 0,
    amplitude: float = 0.3,
    syllable: float = 0.2,
) -> np.ndarray:
    """A formant-synthesised voice that voice-activity detectors (Silero VAD) take for speech.

    A glottal pulse train on a wandering pitch goes through three resonators whose
    frequencies glide between random vowel targets once per ``syllable``; between vowels the
    level dips and a little breath noise comes in, like consonants. :func:`speechlike` is
    not recognised as speech by a VAD; this is, which makes it the signal for timeline and
    streaming tests. Like :func:`speechlike`, ``f0`` and ``amplitude`` make classes.

    Args:
        duration: length in seconds.
        sampling_rate: sampling rate in Hz.
        f0: mean fundamental frequency in Hz.
        seed: seed of the local random generator (vowel order, pitch phase, noise).
        amplitude: peak absolute value.
        syllable: seconds from one vowel target to the next.

    Returns:
        ``round(duration * sampling_rate)`` ``float32`` samples, peak ``amplitude``.

    Examples:
        >>> x = voice(duration=0.5, f0=220.0, amplitude=0.4)
        >>> x.shape, round(float(np.abs(x).max()), 3)
        ((8000,), 0.4)
        >>> bool(np.array_equal(voice(seed=3), voice(seed=3)))
        True
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = _num_samples(duration, sampling_rate)
    if n == 0:
        return np.zeros(0, np.float32)
    t = np.arange(n) / sampling_rate
    knots = np.arange(int(np.ceil(duration / syllable)) + 2) * syllable
    targets = np.array([_VOWEL_FORMANTS[i] for i in rng.integers(0, len(_VOWEL_FORMANTS), len(knots))], float)
    formants = np.stack([np.interp(t, knots, targets[:, j]) for j in range(3)], axis=1)
    pitch = f0 * (1 + 0.12 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 2 * np.pi)) + 0.05 * np.sin(2 * np.pi * 3.1 * t))
    cycles = np.floor(np.cumsum(pitch) / sampling_rate)
    pulses = lfilter([1.0], [1.0, -0.95], (np.diff(cycles, prepend=0.0) > 0).astype(float))
    envelope = 0.15 + 0.85 * np.sin(np.pi * ((t / syllable) % 1.0)) ** 2
    source, out = pulses * envelope, np.zeros(n)
    states = [np.zeros(2) for _ in range(3)]
    block = max(1, sampling_rate // 100)  # the resonators are retuned every 10 ms
    for start in range(0, n, block):
        part = source[start : start + block]
        for j, bandwidth in enumerate((90.0, 110.0, 150.0)):
            r = np.exp(-np.pi * bandwidth / sampling_rate)
            theta = 2 * np.pi * min(formants[start, j], 0.45 * sampling_rate) / sampling_rate
            part, states[j] = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], part, zi=states[j])
        out[start : start + block] = part
    breath = lfilter([1.0, -0.9], [1.0], rng.standard_normal(n) * (1 - envelope) * 0.3)
    out = out / (np.abs(out).max() or 1.0) + 0.05 * breath
    return (amplitude * out / (np.abs(out).max() or 1.0)).astype(np.float32)
