"""Open audio files safely and decode them block by block, within limits.

:mod:`emovox.audio.load` builds its public functions on three things from here:

- :func:`open_audio` opens a path, bytes or a binary file object with libsndfile (soundfile)
  so that what it decodes depends on the file alone. libsndfile looks for a Mac resource fork
  beside what it opens (``._<name>`` and ``.AppleDouble/<name>``; for an in-memory file, ``._``
  and ``.AppleDouble/`` in the *working directory*) and, when it finds one, reads an MP3 as a
  Sound Designer II file. Here a path is opened through a link in a private folder, and bytes
  through an anonymous in-memory file (Linux) or a file in that folder, so no such neighbour
  can exist. Every failure inside becomes :class:`~emovox.errors.AudioDecodeError`.
- :func:`check_limits` refuses a header whose sampling rate or channel count would make
  decoding a small file a large job (a "decompression bomb"), before any sample is decoded.
- :func:`mono_blocks` decodes in blocks of at most :data:`BLOCK_SAMPLES` samples and averages
  the channels of each block at once, so that a file is never held decoded with all its
  channels; it enforces the duration cap as it goes (also when the header does not know the
  length, as in a streamed FLAC) and refuses NaN or infinite samples.

Blocks are read with libsndfile's ``sf_readf_float`` directly: soundfile's ``read`` seeks
after every read, which fails on the codecs libsndfile cannot seek (GSM 6.10, G.721/G.723,
NMS ADPCM, XI DPCM) and at the end of a FLAC whose header has no length.

The C decoders print notes to the process's stderr (mpg123: ``Note: Trying to resync...``).
:func:`quiet_decoder_messages` (the command line turns it on) drops those lines and passes
every other line through.

Examples:
    >>> import io, soundfile
    >>> buf = io.BytesIO()
    >>> soundfile.write(buf, np.zeros((8000, 2)), 16000, format="FLAC")
    >>> with open_audio(buf.getvalue()) as f:
    ...     check_limits(f)
    ...     [block.shape for block in mono_blocks(f, max_frames=None)]
    [(8000,)]
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

from emovox.errors import AudioDecodeError, AudioTooLongError, EmovoxError, InvalidAudioError

MAX_RATE = 384_000  # Hz: the highest rate of real recorders; the FLAC header allows 655,350
MAX_FILE_CHANNELS = 32  # channels a file may have (all are averaged into one)
MAX_SAMPLES_PER_SECOND = 1_536_000  # channels x rate: 32 x 48 kHz, 8 x 192 kHz, 4 x 384 kHz
BLOCK_SAMPLES = 1 << 19  # samples (frames x channels) decoded at once: 2 MiB of float32
MAX_SAMPLE = 1e30  # larger finite samples are clipped to this (float32 arithmetic stays finite)
UNKNOWN_LENGTH = 1 << 62  # libsndfile reports a length it does not know as 2**63 - 1 frames


def describe(source: Any) -> str:
    """How error messages name ``source``: the path, or the kind and size of in-memory data.

    Examples:
        >>> describe("a.wav"), describe(b"abc")
        ("'a.wav'", 'audio bytes (3 bytes)')
    """
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"audio bytes ({len(source)} bytes)"
    return repr(getattr(source, "name", "file object"))


@contextlib.contextmanager
def open_audio(source: str | os.PathLike | bytes | BinaryIO) -> Iterator[sf.SoundFile]:
    """Open ``source`` for reading; every failure (also while the caller decodes) becomes
    :class:`AudioDecodeError` naming the source, except the emovox errors the caller raises.

    A binary file object is read to its end (its position is not restored).

    Raises:
        AudioDecodeError: missing, empty, not a regular file, or not decodable audio.
        TypeError: ``source`` is not a path, bytes or a binary file object.
    """
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            reason = "not a regular file" if os.path.exists(path) else "file not found"
            raise AudioDecodeError(f"cannot decode {name}: {reason}")
        if os.path.getsize(path) == 0:
            raise AudioDecodeError(f"cannot decode {name}: the file is empty (0 bytes)")
        opener = _linked(path)
    elif isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        if hasattr(source, "read") and not isinstance(source, (bytes, bytearray, memoryview)):
            try:
                source = source.read()
            except Exception as error:  # noqa: BLE001  any failure to read is this source's error
                raise AudioDecodeError(f"cannot decode {name}: cannot read it: {error}") from error
            if not isinstance(source, (bytes, bytearray, memoryview)):
                raise TypeError(f"expected a binary file object, its read() returned {type(source).__name__}")
        if not len(source):
            raise AudioDecodeError(f"cannot decode {name}: no data")
        opener = _in_memory(bytes(source) if not isinstance(source, bytes) else source)
    else:
        raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    with _filtered_stderr():
        try:
            with opener as handle, sf.SoundFile(handle) as f:
                yield f
        except EmovoxError:
            raise
        except Exception as error:  # noqa: BLE001  sf.LibsndfileError, ValueError, OSError, MemoryError...
            reason = getattr(error, "error_string", None) or str(error) or type(error).__name__
            raise AudioDecodeError(f"cannot decode {name}: {reason}") from error


def check_limits(f: sf.SoundFile, name: str = "the audio") -> None:
    """Refuse a header whose rate or channels exceed :data:`MAX_RATE`, :data:`MAX_FILE_CHANNELS`
    or together :data:`MAX_SAMPLES_PER_SECOND` (checked before any sample is decoded).

    Raises:
        InvalidAudioError: the header asks for more decoding work than emovox does per second.
    """
    rate, channels = f.samplerate, f.channels
    if rate <= 0 or channels <= 0:
        raise InvalidAudioError(f"{name}: the header declares {channels} channels at {rate} Hz")
    if rate > MAX_RATE:
        raise InvalidAudioError(f"{name}: the sampling rate {rate} Hz is over the limit of {MAX_RATE} Hz")
    if channels > MAX_FILE_CHANNELS:
        raise InvalidAudioError(f"{name}: {channels} channels, over the limit of {MAX_FILE_CHANNELS}")
    if rate * channels > MAX_SAMPLES_PER_SECOND:
        raise InvalidAudioError(f"{name}: {channels} channels at {rate} Hz are {rate * channels} samples per "
                                f"second, over the limit of {MAX_SAMPLES_PER_SECOND}")


def known_frames(f: sf.SoundFile) -> int | None:
    """Frames the header declares; None when it does not know (a streamed FLAC, for one).

    Examples:
        >>> import io, soundfile
        >>> buf = io.BytesIO()
        >>> soundfile.write(buf, np.zeros(800), 8000, format="WAV")
        >>> with open_audio(buf.getvalue()) as f:
        ...     known_frames(f)
        800
    """
    return f.frames if 0 <= f.frames < UNKNOWN_LENGTH else None


def raw_blocks(f: sf.SoundFile, *, max_frames: int | None = None, name: str = "the audio") -> Iterator[np.ndarray]:
    """Decode ``f`` from its current position as ``(frames, channels)`` float32 blocks.

    Each block is a view of one buffer that the next block overwrites: copy what you keep.

    Raises:
        AudioTooLongError: more than ``max_frames`` frames (checked as the frames arrive).
    """
    frames = max(1024, BLOCK_SAMPLES // f.channels)
    buffer = np.empty((frames, f.channels), dtype=np.float32)
    total = 0
    while True:
        n = _read_into(f, buffer)
        if n <= 0:
            return
        total += n
        if max_frames is not None and total > max_frames:
            raise AudioTooLongError(
                f"{name} is longer than the cap of {max_frames / f.samplerate:g} s (decoding stopped at "
                f"{total / f.samplerate:.2f} s); run long recordings through the timeline (segment-by-segment) "
                "command, or pass a larger max_duration")
        yield buffer[:n]


def mono_blocks(f: sf.SoundFile, *, max_frames: int | None, name: str = "the audio") -> Iterator[np.ndarray]:
    """Decode ``f`` as mono float32 blocks (new arrays): channels averaged, samples beyond
    ±:data:`MAX_SAMPLE` clipped to it.

    Raises:
        InvalidAudioError: a sample is NaN or infinite.
        AudioTooLongError: more than ``max_frames`` frames.
    """
    for block in raw_blocks(f, max_frames=max_frames, name=name):
        if not np.isfinite(block).all():
            raise InvalidAudioError("the audio contains NaN or infinite values")
        np.clip(block, -MAX_SAMPLE, MAX_SAMPLE, out=block)
        yield block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)


def _read_into(f: sf.SoundFile, out: np.ndarray) -> int:
    """Decode up to ``len(out)`` frames into the C-contiguous float32 ``out``; frames read."""
    snd, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    if snd is None or ffi is None:  # another soundfile build: its read (which seeks) instead
        return len(f.read(len(out), dtype="float32", always_2d=True, out=out))
    n = snd.sf_readf_float(f._file, ffi.cast("float *", out.ctypes.data), len(out))
    if n <= 0 and snd.sf_error(f._file):
        raise sf.LibsndfileError(snd.sf_error(f._file))
    return int(n)


# Opening without neighbours --------------------------------------------------------------

_private: str | None = None
_private_lock = threading.Lock()
_names = itertools.count()


def _private_dir() -> str:
    """A folder of this process (mode 0700) that holds nothing but our short-lived entries."""
    global _private
    with _private_lock:
        if _private is None or not os.path.isdir(_private):
            _private = tempfile.mkdtemp(prefix="emovox-audio-")
            atexit.register(shutil.rmtree, _private, True)
        return _private


def _suffix(path: str) -> str:
    """The file's extension if it is plain (libsndfile uses it for headerless .gsm, .vox, .raw)."""
    suffix = os.path.splitext(path)[1]
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""


@contextlib.contextmanager
def _linked(path: str) -> Iterator[str]:
    """``path`` through a symbolic link in the private folder; the link is removed as soon as
    the caller is done with the name (libsndfile keeps its own descriptor)."""
    try:
        link = os.path.join(_private_dir(), f"{os.getpid()}-{next(_names)}{_suffix(path)}")
        os.symlink(os.path.abspath(path), link)
    except OSError:  # no symbolic links here (Windows without the privilege): the path itself
        yield path
        return
    try:
        yield link
    finally:
        with contextlib.suppress(OSError):
            os.unlink(link)


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[str]:
    """A name that opens ``data``: an anonymous memory file on Linux, else a private file."""
    fd = None
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        try:
            fd = os.memfd_create("emovox-audio", getattr(os, "MFD_CLOEXEC", 0))
        except OSError:
            fd = None
    if fd is not None:
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    path = os.path.join(_private_dir(), f"{os.getpid()}-{next(_names)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
        os.close(fd)
        fd = None
        yield path
    finally:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# Decoder notes on stderr -------------------------------------------------------------------

_quiet = False
_capture_lock = threading.Lock()
_capture_depth = 0
_capture: tuple[int, Any] | None = None  # (the saved stderr descriptor, the capture file)
DECODER_NOTE = re.compile(rb"^(Note: |Warning: |\[src/libmpg123/|\[.*mpg123.*\] )")


def quiet_decoder_messages(enabled: bool = True) -> None:
    """Drop the notes that C decoders (mpg123) print to stderr while emovox decodes.

    While any decode runs, the process's stderr (descriptor 2) goes to a temporary file; when
    the last one ends, stderr is restored and every captured line that is not a decoder note
    is written to it. Meant for command-line processes: other threads' stderr output is
    delayed (never lost) while a decode runs.
    """
    global _quiet
    _quiet = enabled


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    global _capture_depth, _capture
    if not _quiet:
        yield
        return
    with _capture_lock:
        if _capture_depth == 0:
            try:
                sys.stderr.flush()
                capture = tempfile.TemporaryFile()
                saved = os.dup(2)
                os.dup2(capture.fileno(), 2)
                _capture = (saved, capture)
            except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to filter
                _capture = None
        _capture_depth += 1
    try:
        yield
    finally:
        with _capture_lock:
            _capture_depth -= 1
            if _capture_depth == 0 and _capture is not None:
                saved, capture = _capture
                _capture = None
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [line for line in capture.read().splitlines(keepends=True) if not DECODER_NOTE.match(line)]
                capture.close()
                if kept:
                    with contextlib.suppress(OSError):
                        _write_all(2, b"".join(kept))


__all__ = ["MAX_FILE_CHANNELS", "MAX_RATE", "MAX_SAMPLES_PER_SECOND", "check_limits", "describe",
           "known_frames", "mono_blocks", "open_audio", "quiet_decoder_messages", "raw_blocks"]
