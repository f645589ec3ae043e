"""Tests of emovox.audio.load (and the doctests of emovox.testing)."""

from __future__ import annotations

import doctest
import io

import numpy as np
import pytest
import soundfile as sf

import emovox.audio.decode
import emovox.audio.load
import emovox.testing
from emovox.audio.load import (
    DEFAULT_MAX_DURATION,
    MIN_DURATION,
    SAMPLING_RATE,
    decode,
    duration_of,
    load_audio,
    resample,
    to_mono,
)
from emovox.errors import AudioDecodeError, AudioTooLongError, AudioTooShortError, EmptyAudioError, InvalidAudioError
from emovox.testing import sinusoid, speechlike, whitenoise, write_wav


def _mp3_supported() -> bool:
    return "MP3" in sf.available_formats()


@pytest.fixture
def wav(tmp_path):
    return write_wav(tmp_path / "tone.wav", sinusoid(duration=1.0), 16000)


@pytest.mark.parametrize("module", [emovox.audio.load, emovox.testing])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


def test_constants():
    assert (SAMPLING_RATE, MIN_DURATION, DEFAULT_MAX_DURATION) == (16000, 0.1, 600.0)


# Happy paths: files ------------------------------------------------------------------------


def test_wav_pcm16(wav):
    y = load_audio(wav)
    assert y.dtype == np.float32 and y.shape == (16000,)
    np.testing.assert_allclose(y, sinusoid(), atol=1e-3)


def test_str_path(wav):
    assert load_audio(str(wav)).shape == (16000,)


@pytest.mark.parametrize(
    ("fmt", "subtype", "atol"),
    [("FLAC", "PCM_16", 1e-3), ("OGG", "VORBIS", 0.05)],
)
def test_flac_and_ogg(tmp_path, fmt, subtype, atol):
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, sinusoid(), 16000, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == (16000,)
    np.testing.assert_allclose(y, sinusoid(), atol=atol)


@pytest.mark.skipif(not _mp3_supported(), reason="libsndfile built without MP3 (needs >=1.1)")
def test_mp3(tmp_path):
    path = tmp_path / "tone.mp3"
    sf.write(path, sinusoid(), 16000, format="MP3")
    y = load_audio(path)
    assert y.dtype == np.float32
    assert abs(len(y) - 16000) <= 1152  # at most one MP3 frame of padding
    corr = np.corrcoef(y[1000:15000], sinusoid()[1000:15000])[0, 1]
    assert corr > 0.9


def test_stereo_48k_to_mono_16k(tmp_path):
    left, right = sinusoid(220.0, 1.5, 48000), sinusoid(220.0, 1.5, 48000, amplitude=0.1)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 48000)
    signal, rate = decode(path)
    assert signal.shape == (72000, 2) and rate == 48000
    y = load_audio(path)
    assert y.ndim == 1 and abs(len(y) - 24000) <= 1
    np.testing.assert_allclose(y[100:-100], sinusoid(220.0, 1.5, 16000, 0.2)[100:-100], atol=5e-3)


def test_target_rate(wav):
    assert abs(len(load_audio(wav, target_rate=8000)) - 8000) <= 1


def test_bytes_input(wav):
    assert load_audio(wav.read_bytes()).shape == (16000,)
    assert load_audio(bytearray(wav.read_bytes())).shape == (16000,)


def test_file_object_input(wav):
    with open(wav, "rb") as f:
        assert load_audio(f).shape == (16000,)
    assert load_audio(io.BytesIO(wav.read_bytes())).shape == (16000,)


def test_sampling_rate_for_file(wav):
    assert load_audio(wav, 16000).shape == (16000,)
    with pytest.raises(InvalidAudioError, match="16000 Hz"):
        load_audio(wav, 8000)


def test_decode_and_duration_of(wav):
    signal, rate = decode(wav)
    assert signal.dtype == np.float32 and signal.shape == (16000,) and rate == 16000
    assert duration_of(wav) == 1.0
    assert duration_of(wav.read_bytes()) == 1.0
    buf = io.BytesIO(wav.read_bytes())
    assert duration_of(buf) == 1.0 and buf.tell() == 0


# Happy paths: arrays -----------------------------------------------------------------------


def test_int16_array():
    x = np.array([0, 16384, -32768, 32767] * 1000, dtype=np.int16)
    y = load_audio(x, 16000)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[:4], [0.0, 0.5, -1.0, 32767 / 32768])


def test_int32_and_uint8_arrays():
    y = load_audio(np.full(4000, 2**30, dtype=np.int32), 16000)
    np.testing.assert_allclose(y, 0.5)
    y = load_audio(np.full(4000, 192, dtype=np.uint8), 16000)
    np.testing.assert_allclose(y, 0.5)


def test_float64_array():
    x = speechlike(1.0, 8000).astype(np.float64)
    y = load_audio(x, 8000)
    assert y.dtype == np.float32 and abs(len(y) - 16000) <= 1


def test_channels_first_array():
    x = np.stack([sinusoid(), whitenoise()])  # (2, 16000)
    y = load_audio(x, 16000)
    np.testing.assert_allclose(y, (sinusoid() + whitenoise()) / 2, atol=1e-6)
    np.testing.assert_array_equal(load_audio(x.T, 16000), y)


def test_resample_and_to_mono():
    x = sinusoid(duration=1.0, sampling_rate=44100)
    assert abs(len(resample(x, 44100, 16000)) - 16000) <= 1
    assert resample(x.astype(np.float64), 44100, 44100).dtype == np.float32
    assert to_mono(np.ones((10, 3))).shape == (10,)
    with pytest.raises(InvalidAudioError):
        to_mono(np.ones((2, 2, 2)))
    with pytest.raises(InvalidAudioError):
        resample(x, 0, 16000)


# Error paths -------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioDecodeError, match="file not found") as info:
        load_audio(path)
    assert str(path) in str(info.value)
    with pytest.raises(AudioDecodeError, match="file not found"):
        duration_of(path)


def test_directory(tmp_path):
    with pytest.raises(AudioDecodeError, match="not a regular file"):
        decode(tmp_path)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(path)
    with pytest.raises(AudioDecodeError):
        load_audio(b"")
    with pytest.raises(AudioDecodeError):
        load_audio(io.BytesIO(b""))


def test_garbage(tmp_path):
    garbage = np.random.default_rng(0).bytes(4000)
    with pytest.raises(AudioDecodeError, match="bytes"):
        load_audio(garbage)
    path = tmp_path / "garbage.wav"
    path.write_bytes(garbage)
    with pytest.raises(AudioDecodeError, match="garbage.wav"):
        load_audio(path)


def test_truncated_header(wav):
    with pytest.raises(AudioDecodeError):
        load_audio(wav.read_bytes()[:20])


def test_header_without_data(wav):
    """A WAV cut right after its 44-byte header decodes to no samples."""
    assert decode(wav.read_bytes()[:44])[0].shape == (0,)
    with pytest.raises(EmptyAudioError):
        load_audio(wav.read_bytes()[:44])


def test_truncated_in_data(wav):
    """libsndfile clamps the frame count to the data present: a valid, shorter signal."""
    data = wav.read_bytes()
    cut = data[: 44 + 2 * 6000 + 1]  # 6000 whole samples and half of one more
    assert duration_of(cut) == pytest.approx(6000 / 16000)
    y = load_audio(cut)
    assert len(y) == 6000
    np.testing.assert_allclose(y, sinusoid()[:6000], atol=1e-3)


def test_wrong_source_type():
    with pytest.raises(TypeError):
        load_audio(12345)
    with pytest.raises(TypeError):
        load_audio([0.0] * 16000, 16000)


def test_nan_float_wav(tmp_path):
    x = sinusoid()
    x[100] = np.nan
    path = write_wav(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(InvalidAudioError, match="contains NaN or infinite values"):
        load_audio(path)
    with pytest.raises(InvalidAudioError, match="NaN or infinite"):
        load_audio(np.full(16000, np.inf), 16000)


@pytest.mark.parametrize("empty", [np.zeros(0), np.zeros((0, 2)), np.zeros(0, dtype=np.int16)])
def test_empty_array(empty):
    with pytest.raises(EmptyAudioError):
        load_audio(empty, 16000)


@pytest.mark.parametrize("rate", [None, 0, -16000, 16000.5, True])
def test_array_needs_positive_sampling_rate(rate):
    with pytest.raises(InvalidAudioError, match="sampling_rate"):
        load_audio(sinusoid(), rate)


def test_bad_array_shapes_and_dtypes():
    with pytest.raises(InvalidAudioError, match="1-D or 2-D"):
        load_audio(np.zeros((2, 2, 1600)), 16000)
    with pytest.raises(InvalidAudioError, match="1-D or 2-D"):
        load_audio(np.array(0.5), 16000)
    with pytest.raises(InvalidAudioError, match="channels"):
        load_audio(np.zeros((100, 1600)), 16000)
    with pytest.raises(InvalidAudioError, match="dtype"):
        load_audio(np.zeros(1600, dtype=bool), 16000)
    with pytest.raises(InvalidAudioError, match="int64"):
        load_audio(np.zeros(1600, dtype=np.int64), 16000)
    with pytest.raises(InvalidAudioError, match="target_rate"):
        load_audio(sinusoid(), 16000, target_rate=0)


def test_too_short(tmp_path):
    with pytest.raises(AudioTooShortError, match=r"0\.050 s.*minimum of 0\.1 s"):
        load_audio(sinusoid(duration=0.05), 16000)
    path = write_wav(tmp_path / "short.wav", sinusoid(duration=0.05), 16000)
    with pytest.raises(AudioTooShortError):
        load_audio(path)
    assert load_audio(sinusoid(duration=0.05), 16000, min_duration=0.01).shape == (800,)


def test_too_long_array():
    with pytest.raises(AudioTooLongError) as info:
        load_audio(sinusoid(duration=3.0), 16000, max_duration=2.0)
    message = str(info.value)
    assert "3.00 s" in message and "2.0 s" in message
    assert "timeline" in message and "max_duration" in message
    assert load_audio(sinusoid(duration=3.0), 16000, max_duration=None).shape == (48000,)


def test_long_file_rejected_from_header(tmp_path, monkeypatch):
    """A 20 s file over a 10 s cap is refused before its samples are read or resampled."""
    path = write_wav(tmp_path / "long.wav", whitenoise(duration=20.0, sampling_rate=8000), 8000)

    def forbidden(*args, **kwargs):
        raise AssertionError("the samples must not be decoded or resampled")

    monkeypatch.setattr(sf.SoundFile, "read", forbidden)
    monkeypatch.setattr(emovox.audio.decode, "_read_into", forbidden)
    monkeypatch.setattr(emovox.audio.load, "resample", forbidden)
    with pytest.raises(AudioTooLongError, match=r"20\.00 s.*cap of 10"):
        load_audio(path, max_duration=10)
    with pytest.raises(AudioTooLongError):
        load_audio(path.read_bytes(), max_duration=10)
    assert duration_of(path) == 20.0


# emovox.testing ----------------------------------------------------------------------------


def test_signal_factories():
    assert sinusoid().shape == (16000,) and sinusoid().dtype == np.float32
    np.testing.assert_array_equal(whitenoise(seed=3), whitenoise(seed=3))
    assert not np.array_equal(whitenoise(seed=3), whitenoise(seed=4))
    np.testing.assert_array_equal(speechlike(seed=2), speechlike(seed=2))
    low, high = speechlike(f0=110.0), speechlike(f0=260.0)
    spectrum = [np.abs(np.fft.rfft(x)) for x in (low, high)]  # 1 Hz bins at 16 kHz, 1 s
    assert np.argmax(spectrum[0][50:1000]) + 50 < np.argmax(spectrum[1][50:1000]) + 50
    assert speechlike(duration=0.0).shape == (0,)
