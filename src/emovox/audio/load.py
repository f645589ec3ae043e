"""Turn any audio input into a mono float32 signal at a target sampling rate.

:func:`load_audio` is the one entry point: it takes a path, bytes, a binary file object or a
numpy array, and returns a validated mono ``float32`` signal at ``target_rate``. A file's
sampling rate comes from its header; an array's must be declared. Resampling happens in
:func:`resample` (a whole signal) and :class:`Resampler` (block by block, as a file decodes;
the same soxr settings and the same samples) and nowhere else. Opening and decoding files
safely, in blocks and within limits, lives in :mod:`emovox.audio.decode`.
"""

from __future__ import annotations

import os
from numbers import Integral
from typing import Any, BinaryIO

import numpy as np
import soxr

from emovox.audio.decode import check_limits, describe, known_frames, mono_blocks, open_audio, raw_blocks
from emovox.errors import AudioTooLongError, AudioTooShortError, EmptyAudioError, InvalidAudioError

SAMPLING_RATE = 16000
MIN_DURATION = 0.1
DEFAULT_MAX_DURATION = 600.0
MAX_CHANNELS = 8  # In a 2-D array, the axis of at most this size is the channel axis.
QUALITY = "HQ"  # soxr's quality setting for every resampling
MAX_PEAK = 1000.0  # 60 dB over full scale: larger peaks are scaled to 1.0 (see load_audio)


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
    out = soxr.resample(np.ascontiguousarray(signal), int(from_rate), int(to_rate), quality=QUALITY)
    return out.astype(np.float32, copy=False)


class Resampler:
    """Resample a mono float32 signal that arrives in blocks; the concatenated output equals
    :func:`resample` of the whole signal.

    Examples:
        >>> x = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
        >>> r = Resampler(48000, 16000)
        >>> y = np.concatenate([r.push(x[:10000]), r.push(x[10000:]), r.end()])
        >>> bool(np.array_equal(y, resample(x, 48000, 16000)))
        True
    """

    def __init__(self, from_rate: int, to_rate: int):
        _check_rate(from_rate, "from_rate")
        _check_rate(to_rate, "to_rate")
        self.stream = None
        if from_rate != to_rate:
            self.stream = soxr.ResampleStream(int(from_rate), int(to_rate), 1, dtype="float32", quality=QUALITY)

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output that ``block`` (1-D float32) completes."""
        block = np.asarray(block, dtype=np.float32)
        return block if self.stream is None else self.stream.resample_chunk(block)

    def end(self) -> np.ndarray:
        """The rest of the output, once every block was pushed."""
        if self.stream is None:
            return np.zeros(0, np.float32)
        return self.stream.resample_chunk(np.zeros(0, np.float32), last=True)


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


def decode(
    source: str | os.PathLike | bytes | BinaryIO, *, max_duration: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode an audio file (or its bytes) with soundfile, keeping its channels.

    Decoding goes block by block, so the codecs libsndfile cannot seek (GSM 6.10, G.721/G.723,
    NMS ADPCM, XI DPCM) decode too. A file truncated inside its data decodes to the frames that
    are present (a shorter signal); a file cut inside its header raises :class:`AudioDecodeError`.
    :func:`load_audio` needs less memory: it averages the channels as it decodes.

    Args:
        source: a path, the file's bytes, or a binary file object.
        max_duration: refuse files longer than this many seconds (header and decoding).

    Returns:
        The ``float32`` samples, (frames,) or (frames, channels), and the sampling rate.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.
        InvalidAudioError: a sampling rate or channel count over the limits of
            :func:`emovox.audio.decode.check_limits`.
        AudioTooLongError: longer than ``max_duration``.

    Examples:
        >>> decode(b"not audio")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        emovox.errors.AudioDecodeError: cannot decode audio bytes (9 bytes): ...
    """
    name = describe(source)
    with open_audio(source) as f:
        check_limits(f, name)
        frames = known_frames(f)
        if frames is not None:
            _check_max(frames / f.samplerate, max_duration)
        cap = None if max_duration is None else int(max_duration * f.samplerate)
        blocks = [block.copy() for block in raw_blocks(f, max_frames=cap, name=name)]
        channels, rate = f.channels, f.samplerate
    signal = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return (signal[:, 0] if channels == 1 else signal), rate


def duration_of(source: str | os.PathLike | bytes | BinaryIO, *, max_duration: float | None = None) -> float:
    """Duration in seconds of a file, from its header without decoding the samples.

    When the header does not know the length (a streamed FLAC), the file is decoded to count
    its frames, without keeping them. A file object is left at the position it had.

    Args:
        source: a path, the file's bytes, or a binary file object.
        max_duration: stop counting and refuse once the file is longer than this.

    Returns:
        frames / sampling rate.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.
        AudioTooLongError: counted past ``max_duration``.

    Examples:
        >>> import io, soundfile
        >>> buf = io.BytesIO()
        >>> soundfile.write(buf, np.zeros(8000), 16000, format="WAV")
        >>> duration_of(buf.getvalue())
        0.5
    """
    position = source.tell() if hasattr(source, "tell") else None
    name = describe(source)
    try:
        with open_audio(source) as f:
            frames = known_frames(f)
            if frames is None:
                cap = None if max_duration is None else int(max_duration * f.samplerate)
                frames = sum(len(block) for block in raw_blocks(f, max_frames=cap, name=name))
            return frames / f.samplerate
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
    never cut: for files the cap is checked on the header before the samples are decoded,
    and again while they are decoded (a header may not know the length). Files are decoded,
    averaged and resampled block by block, so memory stays near the size of the result
    whatever the file's channels and rate (within :func:`emovox.audio.decode.check_limits`).

    Samples with a peak over :data:`MAX_PEAK` (far beyond full scale, e.g. a float WAV of
    ``1e30 * sin``) are scaled to peak 1.0, as a loudness normalisation would: left as they are,
    they overflow the log-mel front end.

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
        A 1-D ``float32`` signal at ``target_rate``, every sample finite.

    Raises:
        AudioDecodeError: the file is missing, empty, or not decodable audio.
        InvalidAudioError: bad or missing sampling rate, bad shape or dtype, NaN/inf values,
            or a file header over the rate and channel limits.
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
        >>> float(np.abs(load_audio(1e30 * np.sin(np.arange(16000) / 10), 16000)).max()) <= 1.0
        True
    """
    _check_rate(target_rate, "target_rate")
    if not isinstance(source, np.ndarray):
        return _load_file(source, sampling_rate, target_rate, min_duration, max_duration)
    if sampling_rate is None:
        raise InvalidAudioError("sampling_rate is required when the source is a numpy array")
    _check_rate(sampling_rate, "sampling_rate")
    array, rate = _from_array(source), int(sampling_rate)
    with np.errstate(over="ignore", invalid="ignore"):
        if array.size and not np.isfinite(array).all():
            raise InvalidAudioError("the audio contains NaN or infinite values")
        peak = float(np.abs(array).max()) if array.size else 0.0
        if peak > MAX_PEAK:
            array = array / peak  # before float32 and the resampler, which would overflow
    signal = to_mono(array)
    if signal.size == 0:
        raise EmptyAudioError("the audio has no samples")
    _check_length(signal.shape[0] / rate, min_duration, max_duration)
    return resample(signal, rate, target_rate)


def _load_file(source, sampling_rate, target_rate: int, min_duration: float, max_duration: float | None) -> np.ndarray:
    """Decode, average, check and resample a file block by block (see :func:`load_audio`)."""
    name = describe(source)
    with open_audio(source) as f:
        rate = f.samplerate
        if sampling_rate is not None and sampling_rate != rate:
            raise InvalidAudioError(
                f"sampling_rate={sampling_rate} was given but the file is at "
                f"{rate} Hz; leave sampling_rate out for files"
            )
        check_limits(f, name)
        frames = known_frames(f)
        if frames is not None:
            _check_max(frames / rate, max_duration)  # header only, nothing decoded yet
        cap = None if max_duration is None else int(max_duration * rate)
        expected = None if frames is None else frames * target_rate // rate + 16
        out, total, peak = _Growing(expected), 0, 0.0
        resampler = Resampler(rate, target_rate)
        for block in mono_blocks(f, max_frames=cap, name=name):
            total += len(block)
            peak = max(peak, float(np.abs(block).max()))
            out.append(resampler.push(block))
        if total:
            out.append(resampler.end())
    if total == 0:
        raise EmptyAudioError("the audio has no samples")
    _check_length(total / rate, min_duration, max_duration)
    signal = out.result()
    if peak > MAX_PEAK:
        signal /= np.float32(peak)
    return signal


class _Growing:
    """A float32 array filled block by block: sized once when the length is known, else grown."""

    def __init__(self, capacity: int | None):
        self.data = np.empty(capacity or 1 << 16, np.float32)
        self.size = 0

    def append(self, block: np.ndarray) -> None:
        end = self.size + len(block)
        if end > len(self.data):
            grown = np.empty(max(end, len(self.data) * 3 // 2), np.float32)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = block
        self.size = end

    def result(self) -> np.ndarray:
        if len(self.data) - self.size > 1 << 16:  # much too large: give the rest back
            return self.data[: self.size].copy()
        return self.data[: self.size]


def _check_length(duration: float, min_duration: float, max_duration: float | None) -> None:
    if duration < min_duration:
        raise AudioTooShortError(
            f"the clip is {duration:.3f} s long, shorter than the minimum of {min_duration} s"
        )
    _check_max(duration, max_duration)


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
