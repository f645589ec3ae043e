"""emovox.audio.decode: telephony codecs, decompression bombs, streamed FLAC, resource-fork
neighbours, huge samples and decoder notes (issue 15, findings 2, 3, 4, 10, 12, 14)."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import emovox.audio.decode
from emovox.audio.decode import MAX_RATE, quiet_decoder_messages
from emovox.audio.load import decode, duration_of, load_audio
from emovox.encoder.mel import log_mel
from emovox.errors import AudioDecodeError, AudioTooLongError, InvalidAudioError
from emovox.testing import sinusoid

MP3 = "MP3" in sf.available_formats()

# The codecs libsndfile cannot seek: soundfile's read(-1) raised ValueError on every one.
TELEPHONY = [("WAV", "GSM610", "wav"), ("AIFF", "GSM610", "aiff"), ("W64", "GSM610", "w64"),
             ("WAV", "G721_32", "wav"), ("AU", "G721_32", "au"), ("AU", "G723_24", "au"), ("AU", "G723_40", "au"),
             ("WAV", "NMS_ADPCM_16", "wav"), ("WAV", "NMS_ADPCM_32", "wav"), ("XI", "DPCM_16", "xi"),
             ("XI", "DPCM_8", "xi")]


def flac_bytes(signal: np.ndarray, rate: int, **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, signal, rate, format="FLAC", **kw)
    return buf.getvalue()


def with_total_samples(flac: bytes, total: int) -> bytes:
    """``flac`` with STREAMINFO's 36-bit total-samples field set to ``total`` (0: unknown)."""
    data = bytearray(flac)
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # the first metadata block is STREAMINFO
    body = 8
    data[body + 13] = (data[body + 13] & 0xF0) | (total >> 32) & 0x0F
    data[body + 14 : body + 18] = struct.pack(">I", total & 0xFFFFFFFF)
    return bytes(data)


@pytest.fixture
def quiet():
    quiet_decoder_messages(True)
    yield
    quiet_decoder_messages(False)


# Finding 4: telephony codecs ---------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "subtype", "suffix"), TELEPHONY)
def test_telephony_codecs_decode(tmp_path, fmt, subtype, suffix):
    tone = sinusoid(300.0, 1.0, 8000)
    path = tmp_path / f"call.{suffix}"
    sf.write(path, tone, 8000, format=fmt, subtype=subtype)
    rate = sf.info(path).samplerate  # XI has no rate field: libsndfile reads it as 44.1 kHz
    for source in (path, path.read_bytes(), io.BytesIO(path.read_bytes())):
        y = load_audio(source)
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert abs(len(y) - 8000 * 16000 // rate) <= 0.05 * 16000  # GSM pads to whole 160-sample frames
        assert 0.1 < float(np.abs(y).max()) < 1.0
    signal, got = decode(path)
    assert got == rate and signal.ndim == 1 and len(signal) >= 0.95 * 8000


def test_any_failure_while_decoding_is_the_file_s_decode_error(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    sf.write(path, sinusoid(), 16000)

    def broken(f, out):
        raise ValueError("frames must be specified for non-seekable files")

    monkeypatch.setattr(emovox.audio.decode, "_read_into", broken)
    with pytest.raises(AudioDecodeError, match=r"cannot decode '.*a\.wav': frames must be specified"):
        load_audio(path)


# Finding 2: decompression bombs ------------------------------------------------------------


def test_header_over_the_rate_limit_is_refused_before_decoding(monkeypatch):
    """The probe's bomb: 8 channels at 655,350 Hz declaring 119 s (a short body here)."""
    bomb = with_total_samples(flac_bytes(np.zeros((6554, 8), np.int16), 655350), 655350 * 119)
    monkeypatch.setattr(emovox.audio.decode, "_read_into", lambda *a: pytest.fail("nothing may be decoded"))
    with pytest.raises(InvalidAudioError, match=f"655350 Hz is over the limit of {MAX_RATE} Hz"):
        load_audio(bomb, max_duration=None)
    with pytest.raises(InvalidAudioError, match="samples per second"):
        load_audio(flac_bytes(np.zeros((3840, 8), np.int16), 384000), max_duration=None)


def test_many_channels_at_a_high_rate_decode_in_little_memory():
    """8 channels at 96 kHz for 60 s used to be 184 MB decoded before the downmix; the result is 3.8 MB."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=96000, channels=8, format="FLAC", subtype="PCM_16") as f:
        second = np.zeros((96000, 8), np.int16)
        second[:, 3] = (8000 * np.sin(np.arange(96000) / 20)).astype(np.int16)
        for _ in range(60):
            f.write(second)
    tracemalloc.start()
    try:
        y = load_audio(buf.getvalue(), max_duration=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.shape == (960000,)
    assert 0.02 < float(np.abs(y).max()) < 0.04  # one channel of eight at 0.24
    assert peak < 4 * y.nbytes + 8 * 2**20, f"{peak / 2**20:.0f} MiB for a {y.nbytes / 2**20:.1f} MiB result"


# Finding 10: a FLAC whose header does not know its length -----------------------------------


def test_streamed_flac_without_a_length_decodes():
    tone = sinusoid(220.0, 3.0, 16000)
    streamed = with_total_samples(flac_bytes(tone, 16000), 0)
    with sf.SoundFile(io.BytesIO(streamed)) as f:
        assert f.frames > 10**15  # what libsndfile reports: the "418293516410647 s" of the probe
    y = load_audio(streamed)
    np.testing.assert_allclose(y, tone, atol=1e-3)
    assert duration_of(streamed) == 3.0
    assert decode(streamed)[0].shape == (48000,)
    with pytest.raises(AudioTooLongError, match="cap of 2 s"):
        load_audio(streamed, max_duration=2.0)  # the cap holds while decoding
    with pytest.raises(AudioTooLongError):
        duration_of(streamed, max_duration=2.0)


# Finding 12: decoding does not depend on the working directory ------------------------------


@pytest.mark.skipif(not MP3, reason="libsndfile built without MP3")
def test_resource_fork_neighbours_do_not_change_decoding(tmp_path, monkeypatch):
    buf = io.BytesIO()
    sf.write(buf, sinusoid(220.0, 2.0), 16000, format="MP3")
    data = buf.getvalue()
    folder = tmp_path / "uploads"
    (folder / ".AppleDouble").mkdir(parents=True)
    (folder / "._").write_bytes(b"\x00\x05\x16\x07junk" * 8)  # AppleDouble magic, then junk
    (folder / "._x.mp3").write_bytes(b"\x00\x05\x16\x07junk" * 8)
    (folder / ".AppleDouble" / "x.mp3").write_bytes(b"junk")
    (folder / "x.mp3").write_bytes(data)
    monkeypatch.chdir(folder)
    before = sorted(os.listdir(folder))
    for source in (data, io.BytesIO(data), "x.mp3", folder / "x.mp3"):
        y = load_audio(source)
        assert abs(len(y) - 32000) <= 1152
    assert duration_of(data) == pytest.approx(2.0, abs=0.1)
    assert sorted(os.listdir(folder)) == before  # nothing written to the working directory


def test_headerless_formats_keep_their_extension(tmp_path):
    """Raw GSM 6.10 is known by its .gsm extension alone; opening through a link keeps it."""
    path = tmp_path / "call.gsm"
    sf.write(path, sinusoid(300.0, 1.0, 8000), 8000, format="RAW", subtype="GSM610")
    assert abs(len(load_audio(path)) - 16000) <= 320


# Finding 3: samples far beyond full scale -------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("peak", [1e18, 1e30, 3e38])
def test_huge_finite_samples_are_scaled_not_overflowed(tmp_path, peak, rate):
    x = (peak * np.sin(np.arange(rate) / 10)).astype(np.float32)
    path = tmp_path / "loud.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    y = load_audio(path)
    assert np.isfinite(y).all() and 0.9 < float(np.abs(y).max()) < 1.5
    assert np.isfinite(log_mel(y)).all()
    z = load_audio(x.astype(np.float64), rate)
    assert np.isfinite(z).all() and 0.9 < float(np.abs(z).max()) < 1.5


def test_ordinary_levels_are_left_alone(tmp_path):
    x = 5.0 * sinusoid(220.0, 1.0, 16000, amplitude=1.0)  # clipped-hot float audio stays as it is
    path = tmp_path / "hot.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), x, rtol=1e-6)


def test_log_mel_refuses_to_return_non_finite_values():
    with pytest.raises(InvalidAudioError, match="not finite"):
        log_mel((1e30 * np.sin(np.arange(16000) / 10)).astype(np.float32))


# Finding 14: decoder notes on stderr --------------------------------------------------------


def corrupt_mp3(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, sinusoid(220.0, 3.0), 16000, format="MP3")
    data = bytearray(buf.getvalue())
    for i in np.random.default_rng(1).integers(100, len(data), 40):
        data[i] ^= 0xFF
    path = tmp_path / "corrupt.mp3"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.skipif(not MP3, reason="libsndfile built without MP3")
def test_decoder_notes_are_dropped_and_other_lines_kept(tmp_path, capfd, quiet):
    path = corrupt_mp3(tmp_path)
    quiet_decoder_messages(False)
    load_audio(path)
    noisy = capfd.readouterr().err
    assert "mpg123" in noisy or "Note:" in noisy  # the decoder does print them
    quiet_decoder_messages(True)
    with emovox.audio.decode._filtered_stderr():
        load_audio(path)
        os.write(2, b"a line of our own\n")
    err = capfd.readouterr().err
    assert "mpg123" not in err and "Note:" not in err
    assert err == "a line of our own\n"
