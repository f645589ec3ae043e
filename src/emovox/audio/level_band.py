"""Bring a clip's speech level into a band before the encoder, keeping the level inside it.

Whisper's log-mel keeps a clip's absolute level, and corpora are recorded at very different levels
(the median level of their loud frames: RAVDESS -32 dBFS, TESS -23, nEMO, TurEV-DB, the Korean set and
EmoSpeech -16 to -19). A head trained on them learns "quiet recording" as a trait of whichever corpus
is quiet, which says nothing about emotion on a user's audio. Scaling every clip to one level erases
that, and also the cue that within one recording angry speech is louder than sad
(``experiments/exp_loudness.py``: single clips lost on TurEV-DB and TESS). A band keeps the cue where
recordings agree: a clip whose loud frames (:func:`loud_level`) sit below ``low`` dBFS is raised to
``low``, one above ``high`` is lowered to ``high``, one inside is left as it is.

The same numpy function runs before the log-mel in every backend (:func:`emovox.encoder.mel.mel_windows`
serves the PyTorch extractor, the torch-free runtime and the int8 calibration), so training and
serving hear the same signal.

Examples:
    >>> import numpy as np
    >>> quiet = np.full(16000, 0.001, np.float32)                               # -60 dBFS
    >>> round(loud_level(quiet), 1), round(loud_level(banded(quiet, (-26.0, -14.0))), 1)
    (-60.0, -26.0)
    >>> round(loud_level(banded(80 * quiet, (-26.0, -14.0))), 1)                 # -21.9: inside, kept
    -21.9
"""

from __future__ import annotations

import numpy as np

FRAME = 320  # 20 ms at 16 kHz
QUANTILE = 0.95  # the clip's loud frames: this quantile of its frames' RMS
SILENT_DB = -100.0  # at or below it a clip is silence and left as it is


def loud_level(signal: np.ndarray) -> float:
    """dBFS of the clip's loud frames: the 95th percentile of its 20 ms frames' RMS (a clip shorter than a
    frame: its whole RMS).

    Examples:
        >>> round(loud_level(0.1 * np.ones(16000, np.float32)), 1)
        -20.0
        >>> loud_level(np.zeros(100, np.float32)) < SILENT_DB
        True
    """
    n = len(signal) // FRAME
    if n == 0:
        return float(20 * np.log10(np.sqrt(np.mean(np.square(signal, dtype=np.float64))) + 1e-9)) if len(signal) else -180.0
    rms = np.sqrt(np.mean(np.square(signal[: n * FRAME].reshape(n, FRAME), dtype=np.float64), axis=1))
    return float(20 * np.log10(np.quantile(rms, QUANTILE) + 1e-9))


def levelled(signal: np.ndarray, target: float) -> np.ndarray:
    """``signal`` scaled so that :func:`loud_level` is ``target`` dBFS (silence is left as it is).

    Examples:
        >>> round(loud_level(levelled(0.01 * np.ones(16000, np.float32), -26.0)), 1)
        -26.0
    """
    level = loud_level(signal)
    if level <= SILENT_DB:
        return signal
    return (np.asarray(signal, np.float32) * np.float32(10 ** ((target - level) / 20))).astype(np.float32)


def banded(signal: np.ndarray, band: tuple[float, float] | None) -> np.ndarray:
    """``signal`` with its loud-frame level brought into ``band = (low, high)`` dBFS; unchanged inside the
    band, for silence, and for ``band=None``.

    Examples:
        >>> x = np.full(16000, 0.5, np.float32)                                  # -6 dBFS: lowered to -14
        >>> round(loud_level(banded(x, (-26.0, -14.0))), 1), banded(x, None) is x
        (-14.0, True)
    """
    if band is None:
        return signal
    low, high = band
    if not low <= high:
        raise ValueError(f"level band {band}: low must not exceed high")
    level = loud_level(signal)
    if level <= SILENT_DB or low <= level <= high:
        return signal
    return levelled(signal, min(max(level, low), high))


def parse_band(text: str) -> tuple[float, float] | None:
    """``"LOW:HIGH"`` dBFS as a band (``""``: none), as the command line writes it.

    Examples:
        >>> parse_band("-26:-14"), parse_band("")
        ((-26.0, -14.0), None)
    """
    if not text:
        return None
    try:
        low, high = (float(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"level band {text!r}: write LOW:HIGH in dBFS, e.g. -26:-14") from None
    if not low <= high or high > 0:
        raise ValueError(f"level band {text!r}: LOW must not exceed HIGH, and HIGH must be at most 0 dBFS")
    return (low, high)
