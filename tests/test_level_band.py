"""Tests of emovox.audio.level_band: the speech level brought into a band before the encoder."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest

import emovox.audio.level_band
from emovox.audio.level_band import banded, loud_level, parse_band
from emovox.encoder.mel import mel_windows
from emovox.features.extractor import FeatureSettings
from emovox.testing import speechlike

BAND = (-26.0, -14.0)


def test_doctests():
    result = doctest.testmod(emovox.audio.level_band)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("gain_db, want", [(-40.0, -26.0), (-20.0, None), (0.0, -14.0)])
def test_clips_outside_the_band_move_to_its_edge_inside_stay(gain_db, want):
    clip = speechlike(duration=1.5, f0=180, seed=3, amplitude=1.0)
    clip = clip * np.float32(10 ** ((gain_db - loud_level(clip)) / 20))
    out = banded(clip, BAND)
    if want is None:
        assert out is clip  # inside: untouched, its level against other clips of its recording kept
    else:
        assert loud_level(out) == pytest.approx(want, abs=0.05)
        np.testing.assert_allclose(out / np.abs(out).max(), clip / np.abs(clip).max(), atol=1e-5)  # only scaled
    assert out.dtype == np.float32


def test_silence_and_empty_clips_are_left_alone():
    silent = np.zeros(8000, np.float32)
    assert banded(silent, BAND) is silent
    assert banded(np.zeros(0, np.float32), BAND).size == 0
    with pytest.raises(ValueError, match="low"):
        banded(np.ones(400, np.float32), (-10.0, -20.0))


def test_parse_band_reads_the_command_lines_form_and_refuses_nonsense():
    assert parse_band("-26:-14") == BAND and parse_band("") is None
    for bad in ("-14", "a:b", "-14:-26", "-10:6"):
        with pytest.raises(ValueError, match="level band"):
            parse_band(bad)


def test_mel_windows_hear_the_banded_clip_and_one_quiet_level_equals_another():
    """Two recordings of one clip 20 dB apart, both below the band, reach the encoder alike; without the
    band they differ."""
    clip = speechlike(duration=2.0, f0=150, seed=5, amplitude=0.3)
    quiet, quieter = banded(clip, (-35.0, -35.0)), banded(clip, (-55.0, -55.0))
    (a, _), = mel_windows(quiet, level_band=BAND)
    (b, _), = mel_windows(quieter, level_band=BAND)
    (c, _), = mel_windows(banded(quiet, BAND))
    np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_array_equal(a, c)
    assert np.abs(mel_windows(quiet)[0][0] - mel_windows(quieter)[0][0]).max() > 0.3
    windows = mel_windows(np.concatenate([quiet] * 16), level_band=BAND, window=30.0)  # 32 s: two padded windows
    assert [valid for _, valid in windows] == [3000, 200]


def test_settings_key_and_json_round_trip():
    settings = FeatureSettings(encoder="whisper-base", encoder_sha256="abc")
    with_band = dataclasses.replace(settings, level_band=BAND)
    assert with_band.key() != settings.key()
    restored = FeatureSettings.from_dict({**with_band.to_dict(), "level_band": list(BAND)})  # as config.json stores it
    assert restored == with_band and restored.level_band == BAND and restored.key() == with_band.key()
    assert FeatureSettings.from_dict(settings.to_dict()).level_band is None  # a v7.1 config.json has none


def test_fine_tuning_refuses_a_level_band():
    from emovox.errors import EmovoxError
    from emovox.features.extractor import FeatureExtractor
    from emovox.training.train import load_frames

    with pytest.raises(EmovoxError, match="level band"):
        load_frames([], FeatureExtractor("whisper-tiny.en", level_band=BAND), 1)
