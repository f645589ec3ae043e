"""One recording, one answer (issue 15, finding 13): a recording over 30 s is judged on its speech
segments, by the rule of its own timeline's summary, in the library, ``emovox predict`` and
``emovox batch``; a clip up to 30 s is judged whole, as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.batch.rows import annotate
from emovox.cli import app
from emovox.prediction.timeline import LONG_RECORDING, make_timeline, predict_recording
from emovox.testing import write_wav
from server_support import SR, scripted_recording, silence, styled

# 46 s: three stretches of "angry" speech (12 s in all) between long silences, and a short
# "sad" one; pooled over 30 s windows, the silence weighs on the whole-file judgement.
SCRIPT = [(None, 6.0), ("angry", 4.0), (None, 9.0), ("angry", 5.0), (None, 8.0), ("sad", 2.0), (None, 7.0),
          ("angry", 3.0), (None, 2.0)]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    signal, truth = scripted_recording(SCRIPT, seed=70)
    path = write_wav(tmp_path_factory.mktemp("long") / "call.wav", signal, SR)
    return signal, path


def test_a_long_recording_is_judged_on_its_speech_like_its_timeline(model, recording):
    signal, path = recording
    assert len(signal) / SR > LONG_RECORDING
    summary = make_timeline(model, signal).summary()
    assert summary["dominant"] == "angry" and summary["shares"]["angry"] >= 0.6
    result = model.predict_file(path)
    assert result.label == summary["dominant"] == "angry"
    assert result.scores == summary["shares"]
    assert result.basis.startswith("speech segments (n=")
    assert result.to_dict()["basis"] == result.basis
    [listed] = list(model.predict_files([path]))
    assert (listed.label, listed.scores, listed.basis) == (result.label, result.scores, result.basis)
    assert model.predict(signal, SR).label == "angry"


def test_predict_and_batch_give_the_same_answer(model_path, model, recording, tmp_path):
    signal, path = recording
    out = CliRunner().invoke(app, ["predict", str(path), "--model", str(model_path), "--format", "jsonl"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.stdout)
    assert row["label"] == "angry" and row["basis"].startswith("speech segments")
    table = CliRunner().invoke(app, ["predict", str(path), "--model", str(model_path)])
    assert "judged on speech segments" in table.stdout
    [batch_row] = annotate(model, [str(path)]).to_pylist()
    assert batch_row["label"] == "angry" and batch_row["score_angry"] == row["scores"]["angry"]


def test_short_clips_are_judged_whole_as_before(model):
    clip = np.concatenate([silence(1.0), styled("sad", 3.0, seed=5), silence(1.0)])
    result = predict_recording(model, clip)
    whole = model.predict_signals([clip])[0]
    assert result.basis is None and "basis" not in result.to_dict()
    assert (result.label, result.scores) == (whole.label, whole.scores)


def test_a_long_recording_without_speech_is_judged_whole(model):
    result = predict_recording(model, silence(31.0))
    assert result.basis == "whole recording (no speech found)"
    assert result.label in model.labels
