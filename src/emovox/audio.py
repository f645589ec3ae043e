"""Turn any audio input into a mono float32 signal at a target sampling rate.

:func:`load_audio` is the one entry point: it takes a path, bytes, a binary file object or a
numpy array, and returns a validated mono ``float32`` signal at ``target_rate``. A file's
sampling rate comes from its header; an array's must be declared. Resampling happens in
:func:`resample` and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from numbers import Integral
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from emovox.errors import (
    AudioDecodeError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    InvalidAudioError,
)

SAMPLING_RATE = 16000
MIN_DURATION = 0.1
DEFAULT_MAX_DURATION = 600.0
MAX_CHANNELS = 8  # In a 2-D array, the axis of at most this size is the channel axis.


def resample(signal: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample ``signal`` from ``from_rate`` to ``to_rate`` with soxr (HQ quality).

    Args:
        signal: 1-D signal, or 2-D as (frames, channels).
        from_rate: sampling rate of ``signal`` in Hz.
        to_rate: wanted sampling rate in Hz.

    Returns:
        The resampled ``float32`` signal; ``signal`` as ``float32`` when the rates are equal.

    Raises:
        InvalidAudioError: a rate is not a positive integer.

    Examples:
        >>> x = np.zeros(48000, dtype=np.float32)
        >>> resample(x, 48000, 16000).shape
        (16000,)
        >>> resample(x, 16000, 16000) is x
        True
    """
    _check_rate(from_rate, "from_rate")
    _check_rate(to_rate, "to_rate")
    signal = np.asarray(signal, dtype=np.float32)
    if from_rate == to_rate:
        return signal
    out = soxr.resample(np.ascontiguousarray(signal), int(from_rate), int(to_rate), quality="HQ")
    return out.astype(np.float32, copy=False)


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average the channels of ``signal`` into one; values are not rescaled.

    Args:
        signal: 1-D signal, or 2-D as (frames, channels), soundfile's layout.

    Returns:
        A 1-D ``float32`` signal with one value per frame.

    Raises:
        InvalidAudioError: ``signal`` is not 1-D or 2-D, or has no channels.

    Examples:
        >>> to_mono(np.array([[1.0, 0.0], [0.5, 0.5]]))
        array([0.5, 0.5], dtype=float32)
        >>> to_mono(np.ones(3)).dtype
        dtype('float32')
    """
    signal = np.asarray(signal)
    if signal.ndim == 1:
        return signal.astype(np.float32, copy=False)
    if signal.ndim != 2 or signal.shape[1] == 0:
        shape = signal.shape
        raise InvalidAudioError(f"expected (frames,) or (frames, channels), got shape {shape}")
    return signal.mean(axis=1).astype(np.float32, copy=False)


def decode(source: str | os.PathLike | bytes | BinaryIO) -> tuple[np.ndarray, int]:
    """Decode a WAV, FLAC, OGG or MP3 file (or its bytes) with soundfile.

    A file truncated inside its data decodes to the frames that are present (a shorter
    signal); a file cut inside its header raises :class:`AudioDecodeError`.

    Args:
        source: a path, the file's bytes, or a binary file object.

    Returns:
        The ``float32`` samples, (frames,) or (frames, channels), and the sampling rate.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.

    Examples:
        >>> decode(b"not audio")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        emovox.errors.AudioDecodeError: cannot decode audio bytes (9 bytes): ...
    """
    with _open(source) as f:
        return f.read(dtype="float32", always_2d=False), f.samplerate


def duration_of(source: str | os.PathLike | bytes | BinaryIO) -> float:
    """Duration in seconds of a file, read from its header without decoding the samples.

    A file object is left at the position it had.

    Args:
        source: a path, the file's bytes, or a binary file object.

    Returns:
        frames / sampling rate, as the header declares them.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.

    Examples:
        >>> import io, soundfile
        >>> buf = io.BytesIO()
        >>> soundfile.write(buf, np.zeros(8000), 16000, format="WAV")
        >>> duration_of(buf.getvalue())
        0.5
    """
    position = source.tell() if hasattr(source, "tell") else None
    try:
        with _open(source) as f:
            return f.frames / f.samplerate
    finally:
        if position is not None:
            source.seek(position)


def load_audio(
    source: str | os.PathLike | bytes | BinaryIO | np.ndarray,
    sampling_rate: int | None = None,
    *,
    target_rate: int = SAMPLING_RATE,
    min_duration: float = MIN_DURATION,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> np.ndarray:
    """Load ``source`` as a validated mono ``float32`` signal at ``target_rate``.

    Steps: decode, average the channels, validate, resample. Long clips are rejected,
    never cut; for files the cap is checked on the header, before the samples are decoded.

    Args:
        source: a path, bytes, a binary file object, or a numpy array. Integer arrays
            (8 to 32 bits) are scaled to [-1, 1]; in a 2-D array the smaller axis (at most
            8) holds the channels.
        sampling_rate: the array's rate in Hz, required for arrays. For files it may be
            given only if it equals the rate in the header.
        target_rate: rate of the returned signal in Hz.
        min_duration: shortest accepted clip in seconds.
        max_duration: longest accepted clip in seconds; ``None`` for no cap.

    Returns:
        A 1-D ``float32`` signal at ``target_rate``.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.
        InvalidAudioError: bad or missing sampling rate, bad shape or dtype, NaN/inf values.
        EmptyAudioError: no samples.
        AudioTooShortError: shorter than ``min_duration``.
        AudioTooLongError: longer than ``max_duration``.

    Examples:
        >>> x = (np.sin(np.arange(8000) / 10) * 10000).astype(np.int16)  # 1 s at 8 kHz
        >>> y = load_audio(x, 8000)
        >>> y.dtype, y.shape, bool(np.abs(y).max() <= 1.0)
        (dtype('float32'), (16000,), True)
        >>> load_audio(np.zeros((2, 800)), 16000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        emovox.errors.AudioTooShortError: the clip is 0.050 s long, shorter than the minimum ...
    """
    _check_rate(target_rate, "target_rate")
    if isinstance(source, np.ndarray):
        if sampling_rate is None:
            raise InvalidAudioError("sampling_rate is required when the source is a numpy array")
        _check_rate(sampling_rate, "sampling_rate")
        signal, rate = _from_array(source), int(sampling_rate)
    else:
        with _open(source) as f:
            if sampling_rate is not None and sampling_rate != f.samplerate:
                raise InvalidAudioError(
                    f"sampling_rate={sampling_rate} was given but the file is at "
                    f"{f.samplerate} Hz; leave sampling_rate out for files"
                )
            _check_max(f.frames / f.samplerate, max_duration)  # header only, nothing decoded yet
            signal, rate = f.read(dtype="float32", always_2d=False), f.samplerate
    signal = to_mono(signal)
    if signal.size == 0:
        raise EmptyAudioError("the audio has no samples")
    if not np.isfinite(signal).all():
        raise InvalidAudioError("the audio contains NaN or infinite values")
    duration = signal.shape[0] / rate
    if duration < min_duration:
        raise AudioTooShortError(
            f"the clip is {duration:.3f} s long, shorter than the minimum of {min_duration} s"
        )
    _check_max(duration, max_duration)
    return resample(signal, rate, target_rate)


def _check_rate(rate: Any, name: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, Integral) or rate <= 0:
        raise InvalidAudioError(f"{name} must be a positive integer number of Hz, got {rate!r}")


def _check_max(duration: float, max_duration: float | None) -> None:
    if max_duration is not None and duration > max_duration:
        raise AudioTooLongError(
            f"the clip is {duration:.2f} s long, over the cap of {max_duration} s; "
            "run long recordings through the timeline (segment-by-segment) command, "
            "or pass a larger max_duration"
        )


def _from_array(array: np.ndarray) -> np.ndarray:
    """Scale integer samples to [-1, 1] and lay a 2-D array out as (frames, channels)."""
    if array.ndim not in (1, 2):
        raise InvalidAudioError(f"expected a 1-D or 2-D array, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.float32)
    kind = array.dtype.kind
    if kind in "iu" and array.dtype.itemsize > 4:
        raise InvalidAudioError(f"{array.dtype} samples have no PCM scale; use int16/int32/float")
    if kind in "iu":  # signed or unsigned PCM integers
        half = float(2 ** (8 * array.dtype.itemsize - 1))
        array = (array - (half if kind == "u" else 0.0)) / half
    elif kind != "f":
        raise InvalidAudioError(f"expected integer or float samples, got dtype {array.dtype}")
    if array.ndim == 2:
        if min(array.shape) > MAX_CHANNELS:
            raise InvalidAudioError(
                f"cannot tell channels from frames in shape {array.shape}: "
                f"one axis must have at most {MAX_CHANNELS} channels"
            )
        if array.shape[0] < array.shape[1]:
            array = array.T  # channels first -> (frames, channels)
    return array


@contextlib.contextmanager
def _open(source: str | os.PathLike | bytes | BinaryIO) -> Iterator[sf.SoundFile]:
    """Open ``source`` with soundfile, turning every decoding failure into AudioDecodeError."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        name = repr(path)
        if not os.path.isfile(path):
            reason = "not a regular file" if os.path.exists(path) else "file not found"
            raise AudioDecodeError(f"cannot decode {name}: {reason}")
        if os.path.getsize(path) == 0:
            raise AudioDecodeError(f"cannot decode {name}: the file is empty (0 bytes)")
        handle: Any = path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = f"audio bytes ({len(data)} bytes)"
        if not data:
            raise AudioDecodeError(f"cannot decode {name}: no data")
        handle = io.BytesIO(data)
    elif hasattr(source, "read"):
        name = repr(getattr(source, "name", "file object"))
        handle = source
    else:
        kind = type(source).__name__
        raise TypeError(f"expected a path, bytes or a binary file object, got {kind}")
    try:
        with sf.SoundFile(handle) as f:
            yield f
    except (RuntimeError, OSError, EOFError) as error:  # sf.LibsndfileError is a RuntimeError
        reason = getattr(error, "error_string", None) or str(error)
        raise AudioDecodeError(f"cannot decode {name}: {reason}") from error
