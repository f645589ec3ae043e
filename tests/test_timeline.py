"""Timelines: Silero VAD segments, streaming VAD consistency, windows, labels, the CLI and its files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.audio.vad import FRAME, Segmenter, VADStream, speech_segments, split_windows
from emovox.cli import app
from emovox.errors import ModelError
from emovox.prediction.timeline import Timeline, make_timeline
from emovox.testing import speechlike, whitenoise, write_wav
from server_support import SR, scripted_recording, silence, styled


@pytest.fixture(scope="module")
def recording():
    return scripted_recording()


def test_vad_finds_the_stretches_of_speech(recording):
    signal, truth = recording
    found = speech_segments(signal)
    assert len(found) == len(truth)
    for (start, end), (a, b, _) in zip(found, truth, strict=True):
        assert abs(start - a) < 0.3 and abs(end - b) < 0.4


@pytest.mark.parametrize("signal", [silence(3.0), whitenoise(3.0, amplitude=0.005), np.zeros(100, np.float32)],
                         ids=["silence", "faint-noise", "tiny"])
def test_no_speech_no_segments(signal):
    assert speech_segments(signal) == []


def test_vad_stream_in_pieces_equals_whole(recording):
    signal = recording[0][: 8 * SR]
    whole = VADStream().push(signal)
    vad, parts, i = VADStream(), [], 0
    for size in np.random.default_rng(0).integers(1, 3000, 400):
        parts.append(vad.push(signal[i : i + size]))
        i += size
    parts.append(vad.push(signal[i:]))
    pieces = np.concatenate(parts)
    assert len(whole) == len(pieces) == len(signal) // FRAME
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


def test_segmenter_online_matches_batch(recording):
    signal = recording[0]
    probs = VADStream().push(np.concatenate([signal, np.zeros((-len(signal)) % FRAME, np.float32)]))
    segmenter, online = Segmenter(), []
    for p in probs:
        if (segment := segmenter.push(float(p))) is not None:
            online.append(segment)
    if (segment := segmenter.flush()) is not None:
        online.append(segment)
    batch = speech_segments(signal)
    assert [(round(a, 2), round(min(b, len(signal) / SR), 2)) for a, b in online] == \
        [(round(a, 2), round(b, 2)) for a, b in batch]


def test_split_windows():
    assert split_windows(0.0, 4.0, 10.0) == [(0.0, 4.0)]
    pieces = split_windows(1.0, 31.5, 10.0)
    assert len(pieces) == 4 and pieces[0][0] == 1.0 and pieces[-1][1] == 31.5
    assert all(b - a <= 10.0 for a, b in pieces) and all(p[1] == q[0] for p, q in zip(pieces, pieces[1:], strict=False))


def test_make_timeline_labels_windows_and_summary(model, recording):
    signal, truth = recording
    timeline = make_timeline(model, signal)
    assert timeline.labels == ["sad", "angry"] and timeline.model_id == "tiny-voice-model"
    assert [s.speech_segment for s in timeline.segments] == [0, 1, 2, 2]
    for s in timeline.segments:
        assert s.label == truth[s.speech_segment][2] and s.end - s.start <= 10.0
    summary = timeline.summary()
    assert summary["shares"]["sad"] == pytest.approx(1 - summary["shares"]["angry"], abs=1e-3)
    assert summary["speech"] == pytest.approx(20.0, abs=1.0) and summary["dominant"] == "sad"
    only = make_timeline(model, signal, labels=["angry"], max_window=3.0)
    expected = sum(len(split_windows(a, b, 3.0)) for a, b in speech_segments(signal))
    assert {s.label for s in only.segments} == {"angry"} and len(only.segments) == expected >= 8


def test_timeline_of_silence(model):
    timeline = make_timeline(model, silence(2.0))
    assert timeline.segments == [] and timeline.summary()["dominant"] is None
    assert timeline.to_dict()["summary"]["shares"] == {"sad": 0.0, "angry": 0.0}


def test_vad_ignores_a_tone_and_speechlike_buzz():
    # the synthetic signals used elsewhere are not speech to Silero; only testing.voice is
    assert speech_segments(speechlike(3.0)) == []


def test_timeline_cli_writes_csv_json_png(model_path, recording, tmp_path):
    signal, truth = recording
    audio = write_wav(tmp_path / "long.wav", signal, SR)
    out = [tmp_path / "t.csv", tmp_path / "t.json", tmp_path / "t.png"]
    directory = str(model_path)
    result = CliRunner().invoke(app, ["timeline", str(audio), "--model", directory, *sum((["-o", str(p)] for p in out), [])])
    assert result.exit_code == 0, result.output
    assert "share of speech time" in result.stdout and "angry" in result.stdout
    rows = out[0].read_text().splitlines()
    assert rows[0] == "start,end,label,speech_segment,sad,angry,arousal,valence" and len(rows) == 1 + 4
    data = json.loads(out[1].read_text())
    assert [s["label"] for s in data["segments"]] == ["sad", "angry", "sad", "sad"]
    assert out[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out[2].stat().st_size > 10_000
    result = CliRunner().invoke(app, ["timeline", str(audio), "--model", directory, "--format", "json", "--labels", "sad"])
    assert result.exit_code == 0 and json.loads(result.stdout)["summary"]["shares"] == {"sad": 1.0}


@pytest.mark.parametrize("args, message", [
    (["--labels", "joy"], "unknown label"),
    (["-o", "t.txt"], "use a .csv, .json or .png"),
    (["--max-duration", "5"], "over the cap"),
])
def test_timeline_cli_errors(model_path, recording, tmp_path, args, message):
    audio = write_wav(tmp_path / "long.wav", recording[0], SR)
    result = CliRunner().invoke(app, ["timeline", str(audio), "--model", str(model_path), *args])
    assert result.exit_code == 2 and message in result.output


def test_plot_without_matplotlib_is_a_clear_error(model, monkeypatch, tmp_path):
    timeline = make_timeline(model, styled("sad", 1.0, seed=3))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ModelError, match="needs matplotlib"):
        timeline.write(tmp_path / "t.png")
    with pytest.raises(ValueError, match="use .csv"):
        Timeline(1.0, ["a"], []).write(tmp_path / "t.xlsx")


def test_timeline_imports_neither_torch_nor_the_silero_module():
    code = ("import sys, numpy as np; from emovox.audio.vad import speech_segments; "
            "speech_segments(np.zeros(16000, np.float32)); "
            "print(sorted(m for m in ('torch', 'silero_vad') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapted_timeline_judges_windows_against_the_recording(model, recording):
    signal, _ = recording
    plain = make_timeline(model, signal, max_window=3.0)
    adapted = make_timeline(model, signal, max_window=3.0, adapt=True)
    windows = [signal[int(s.start * SR) : int(s.end * SR)] for s in plain.segments]
    want = model.predict_speaker(windows)
    assert adapted.adapted and adapted.to_dict()["adapted"] is True and "adapted" not in plain.to_dict()
    assert [s.label for s in adapted.segments] == [p.label for p in want]
    assert [s.scores for s in adapted.segments] == [p.scores for p in want]
    few = make_timeline(model, signal, adapt=True)  # 4 windows of 10 s: enough
    assert few.adapted == (len(few.segments) >= 4)
