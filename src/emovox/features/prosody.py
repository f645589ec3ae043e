"""Prosodic features of a clip: openSMILE's eGeMAPS v02 functionals (88 values).

Pitch, loudness, voice quality, spectral balance and the rhythm of voiced segments, summarised
over the whole clip (Eyben et al. 2016, the set the SER field standardised on). A model's
prosody head (:mod:`emovox.training.prosody`) reads them standardised by a deployment's own
statistics, which a domain profile carries; they are never read raw, since their scale is the
speaker's and the channel's as much as the emotion's.

Examples:
    >>> from emovox.testing import voice
    >>> prosody_features([voice(1.0)]).shape  # doctest: +SKIP
    (1, 88)
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from emovox.audio.load import SAMPLING_RATE
from emovox.errors import ModelError

FEATURE_SET = "eGeMAPSv02"
N_FEATURES = 88
MIN_STD = 1e-3  # floor of a domain's per-feature std: a constant feature (e.g. no voiced frames) stays finite

_local = threading.local()  # one openSMILE instance per thread (the server predicts on several)


def _smile():
    smile = getattr(_local, "smile", None)
    if smile is None:
        try:
            import opensmile
        except ImportError:  # pragma: no cover - a dependency of emovox; only a broken install lacks it
            raise ModelError("the prosody features need openSMILE: pip install opensmile==2.6.0") from None
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                feature_level=opensmile.FeatureLevel.Functionals)
        _local.smile = smile
    return smile


def prosody_features(signals: Sequence[np.ndarray], sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """``(len(signals), 88)`` float32 eGeMAPS functionals of mono signals; values openSMILE cannot
    measure (a clip too short or without a voiced frame) are 0.

    Examples:
        >>> import numpy as np
        >>> F = prosody_features([np.zeros(800, np.float32)])  # 50 ms: too short to measure
        >>> F.shape, float(np.abs(F).sum())
        ((1, 88), 0.0)
    """
    smile = _smile()
    rows = []
    for signal in signals:
        # openSMILE reads 16-bit samples (x * 32768 cast to int16): clip, or a peak over full scale wraps around
        x = np.clip(np.asarray(signal, np.float32).reshape(-1), -1.0, 32767 / 32768)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Segment too short, filling with NaN": answered by the zeros below
            values = smile(x, sampling_rate).reshape(-1)  # the array, without process_signal's pandas frame
        rows.append(np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0))
    return np.stack(rows) if rows else np.zeros((0, N_FEATURES), np.float32)


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def prosody_features_soon(signals: Sequence[np.ndarray], sampling_rate: int = SAMPLING_RATE) -> Future:
    """:func:`prosody_features` computed on a worker thread (openSMILE's C code runs without the GIL), so
    that the encoder can run meanwhile; ``.result()`` gives the features."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="emovox-prosody")
    return _executor.submit(prosody_features, list(signals), sampling_rate)


def cached_prosody_features(paths: Sequence[str | os.PathLike], *, cache_root: str | os.PathLike | None = None,
                            desc: str = "prosody", workers: int | None = None) -> np.ndarray:
    """:func:`prosody_features` of audio files ``(len(paths), 88)``, each kept on disk by its content's
    hash (``$EMOVOX_CACHE/prosody/eGeMAPSv02``; float32) as soon as it is computed. Files not cached yet
    are decoded and measured on ``workers`` threads (default: one per core; decoding and openSMILE run
    without the GIL, so two cores measure about twice as fast)."""
    from tqdm.auto import tqdm

    from emovox.audio.load import load_audio
    from emovox.encoder.weights import cache_dir
    from emovox.features.extractor import atomic_save, content_hash

    root = Path(cache_root) if cache_root else cache_dir() / "prosody"
    out = np.zeros((len(paths), N_FEATURES), np.float32)
    todo: list[tuple[int, Path]] = []
    for i, path in enumerate(paths):
        digest = content_hash(path)
        entry = root / FEATURE_SET / digest[:2] / f"{digest}.npy"
        try:
            out[i] = np.load(entry)
        except (FileNotFoundError, ValueError, EOFError):
            todo.append((i, entry))

    def measure(item: tuple[int, Path]) -> tuple[int, Path, np.ndarray]:
        i, entry = item
        return i, entry, prosody_features([load_audio(paths[i], max_duration=None)])[0]

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool, \
            tqdm(total=len(paths), initial=len(paths) - len(todo), desc=desc, unit="file") as bar:
        for i, entry, row in pool.map(measure, todo):
            out[i] = row
            entry.parent.mkdir(parents=True, exist_ok=True)
            atomic_save(entry, lambda f, row=row: np.save(f, row))  # as each finishes: a crash loses little
            bar.update()
    return out


def domain_statistics(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (floored at :data:`MIN_STD`) of one domain's features ``(n, 88)``.

    Examples:
        >>> mean, std = domain_statistics(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> mean.tolist(), [round(float(v), 4) for v in std]
        ([2.0, 5.0], [1.0, 0.001])
    """
    F = np.asarray(F, np.float64)
    if F.ndim != 2 or not len(F):
        raise ValueError(f"domain statistics need features (n >= 1, d), got {F.shape}")
    return F.mean(0).astype(np.float32), np.maximum(F.std(0), MIN_STD).astype(np.float32)


def standardise(F: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``F`` in units of its domain's spread (:func:`domain_statistics`)."""
    return ((np.asarray(F, np.float32) - mean) / std).astype(np.float32)
