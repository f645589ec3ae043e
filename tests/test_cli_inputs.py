"""``emovox predict`` on awkward folders and inputs (issue 15, findings 3, 4 and 14): one bad
file never stops the others, no NaN is printed, skipped entries are named, errors are one line.

A stub model (loud clips "angry", quiet ones "sad", NaN for a peak of 0.45) stands in for a
trained one: these tests are about the command line, not the model.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import emovox.prediction.loading
import emovox.prediction.predictor
from emovox.batch.rows import annotate
from emovox.cli import app
from emovox.cli.inputs import expand_inputs
from emovox.prediction.predictor import Predictor
from emovox.testing import sinusoid

NAN_PEAK = 0.45


class StubModel(Predictor):
    labels = ["sad", "angry"]
    model_id = "stub"
    max_duration = 600.0

    def probabilities_for_signals(self, signals):
        out = []
        for s in signals:
            peak = float(np.abs(s).max())
            out.append([np.nan, np.nan] if abs(peak - NAN_PEAK) < 0.01 else [0.2, 0.8] if peak > 0.3 else [0.8, 0.2])
        return np.array(out)


@pytest.fixture
def stub(monkeypatch):
    model = StubModel()
    monkeypatch.setattr(emovox.prediction.loading, "load", lambda *a, **k: model)
    return model


def tone(path, amplitude, rate=16000, **kw):
    sf.write(path, sinusoid(220.0, 1.0, rate, amplitude=amplitude), rate, **kw)
    return str(path)


def predict(*args):
    result = CliRunner().invoke(app, ["predict", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_folder_with_bad_files_still_predicts_every_good_one(tmp_path, stub, monkeypatch):
    folder = tmp_path / "calls"
    folder.mkdir()
    good = [tone(folder / "a_loud.wav", 0.6), tone(folder / "b_quiet.wav", 0.1),
            tone(folder / "c_gsm.wav", 0.6, 8000, format="WAV", subtype="GSM610"),  # once a ValueError for all
            tone(folder / "d_g721.au", 0.6, 8000, format="AU", subtype="G721_32")]
    (folder / "e_junk.wav").write_bytes(b"junk")
    tone(folder / "f_raises.wav", 0.6)

    real = emovox.prediction.predictor.load_audio

    def flaky(path, **kw):  # an exception of a kind nobody expected, in one file's decode
        if str(path).endswith("f_raises.wav"):
            raise KeyError("something unforeseen")
        return real(path, **kw)

    monkeypatch.setattr(emovox.prediction.predictor, "load_audio", flaky)
    code, out, err = predict(str(folder), "--format", "jsonl")
    assert code == 1
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, out.splitlines())}
    assert {name: rows[name]["label"] for name in map(os.path.basename, good)} == \
        {"a_loud.wav": "angry", "b_quiet.wav": "sad", "c_gsm.wav": "angry", "d_g721.au": "angry"}
    assert rows["e_junk.wav"]["error_type"] == "AudioDecodeError"
    assert rows["f_raises.wav"]["error_type"] == "KeyError"
    assert "4 ok, 2 failed" in err


def test_non_finite_scores_are_an_error_never_printed(tmp_path, stub):
    tone(tmp_path / "a.wav", 0.6)
    tone(tmp_path / "b_nan.wav", NAN_PEAK)
    huge = (1e30 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    sf.write(tmp_path / "c_huge.wav", huge, 16000, subtype="FLOAT")  # normalised to peak 1: a result
    for fmt in ("jsonl", "json"):
        code, out, err = predict(str(tmp_path), "--format", fmt)
        assert code == 1 and "NaN" not in out and "Infinity" not in out
        rows = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
        by_name = {os.path.basename(r["path"]): r for r in rows}
        assert by_name["a.wav"]["label"] == "angry" and by_name["c_huge.wav"]["label"] == "angry"
        assert by_name["b_nan.wav"]["error_type"] == "InvalidAudioError"
        assert "not finite" in by_name["b_nan.wav"]["error"]


def test_non_finite_scores_become_error_rows_in_batch(tmp_path, stub):
    paths = [tone(tmp_path / "a.wav", 0.6), tone(tmp_path / "b_nan.wav", NAN_PEAK), tone(tmp_path / "c.wav", 0.1)]
    rows = annotate(stub, paths).to_pylist()
    assert [r["label"] for r in rows] == ["angry", None, "sad"]
    assert rows[1]["error_type"] == "InvalidAudioError" and rows[1]["score_sad"] is None
    assert all(np.isfinite(r["score_sad"]) for r in rows if r["error"] is None)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_dangling_links_and_fifos_are_named_not_skipped_silently(tmp_path, stub):
    folder = tmp_path / "in"
    folder.mkdir()
    tone(folder / "ok.wav", 0.6)
    (folder / "gone.wav").symlink_to(folder / "deleted.wav")
    os.mkfifo(folder / "pipe.wav")
    (folder / "notes.txt").symlink_to(folder / "nothing.txt")  # not audio: not mentioned
    skipped: list = []
    assert expand_inputs([str(folder)], skipped) == [str(folder / "ok.wav")]
    assert sorted((os.path.basename(p), why) for p, why in skipped) == \
        [("gone.wav", "a link to nothing"), ("pipe.wav", "a FIFO (named pipe), not a file")]
    code, out, err = predict(str(folder), "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 1
    assert f"warning: skipped {folder / 'gone.wav'}: a link to nothing" in err
    assert f"warning: skipped {folder / 'pipe.wav'}: a FIFO" in err


def test_error_lines_are_not_wrapped(tmp_path, stub):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "[bracketed] name that is long.wav"
    deep.parent.mkdir()
    deep.write_bytes(b"not audio, and the path is far wider than eighty columns")
    code, out, err = predict(str(deep))
    line = next(l for l in err.splitlines() if l.startswith("error:"))
    assert str(deep) in line and "cannot decode" in line and len(line) > 120
