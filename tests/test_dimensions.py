"""Arousal and valence on every prediction (issue 18): the circumplex mapping, its rule for label
subsets, custom labels and abstentions, and the fields in each output (a clip's result, ``emovox
predict`` JSON, ``emovox batch`` rows, timeline segments and CSV, a long recording's answer).
The API's and the stream's fields are checked in ``test_server.py``."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from emovox.batch.rows import annotate, result_schema
from emovox.cli import app
from emovox.conversation.dimensions import CIRCUMPLEX, arousal_valence
from emovox.prediction.decision import restrict
from emovox.prediction.result import UNKNOWN, Prediction
from emovox.prediction.timeline import make_timeline, predict_recording
from emovox.testing import write_wav
from server_support import SR, scripted_recording, silence, styled

EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]


def heavy(label: str, p: float = 0.8) -> dict[str, float]:
    """``p`` on ``label``, the rest spread evenly over the other emotions."""
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return {name: p if name == label else rest for name in EMOTIONS}


def in_range(*values) -> bool:
    return all(isinstance(v, float) and -1.0 <= v <= 1.0 for v in values)


def test_angry_is_aroused_and_negative_sad_is_low_and_negative():
    arousal, valence = arousal_valence(heavy("angry"))
    assert arousal > 0.5 and valence < -0.4
    arousal, valence = arousal_valence(heavy("sad"))
    assert arousal < -0.4 and valence < -0.5
    arousal, valence = arousal_valence(heavy("happy"))
    assert arousal > 0.4 and valence > 0.5
    assert arousal_valence({"neutral": 1.0}) == (0.0, 0.0)
    assert all(in_range(*point) for point in CIRCUMPLEX.values())


def test_labels_without_a_point_count_for_nothing_and_the_rest_is_renormalised():
    assert arousal_valence({"angry": 0.5, "joy": 0.5}) == arousal_valence({"angry": 1.0}) == (0.8, -0.6)
    assert arousal_valence({UNKNOWN: 0.9, "sad": 0.1}) == (-0.6, -0.7)
    assert arousal_valence({"joy": 1.0}) == arousal_valence({}) == (0.0, 0.0)


def test_a_label_subset_gives_the_subsets_dimensions():
    scores = heavy("angry")
    subset = restrict(scores, ["neutral", "sad"])  # calm merges into neutral, then renormalised
    result = Prediction("sad", subset, 1.0)
    assert (result.arousal, result.valence) == arousal_valence(subset)
    assert result.arousal < 0 and result.valence < 0  # angry is gone: only sad pulls away from neutral


def test_an_abstention_keeps_the_models_dimensions():
    scores = {"angry": 0.45, "neutral": 0.35, "sad": 0.2}
    abstained = Prediction(UNKNOWN, scores, 1.0)
    assert (abstained.arousal, abstained.valence) == arousal_valence(scores) == (0.24, -0.41)


def test_a_results_dict_keeps_its_fields_and_adds_the_dimensions():
    result = Prediction("angry", heavy("angry"), 1.234, path="a.wav", basis="speech segments (n=1, 1.2 s of speech)")
    out = result.to_dict()
    assert list(out) == ["path", "label", "scores", "duration", "arousal", "valence", "basis"]
    assert (out["arousal"], out["valence"]) == arousal_valence(result.scores) and in_range(out["arousal"], out["valence"])
    result.scores = heavy("sad")  # they follow the scores (as --fuse replaces them)
    assert result.to_dict()["arousal"] < 0
    assert Prediction("x", {}, 1.0, dimensions=(0.5, -0.25)).to_dict()["valence"] == -0.25


def test_predict_json_and_jsonl_carry_the_dimensions(model_path, tmp_path):
    clips = [write_wav(tmp_path / f"{label}.wav", styled(label, 1.5, seed=3), SR) for label in ("sad", "angry")]
    for fmt in ("json", "jsonl"):
        out = CliRunner().invoke(app, ["predict", *map(str, clips), "--model", str(model_path), "--format", fmt])
        assert out.exit_code == 0, out.output
        rows = json.loads(out.stdout) if fmt == "json" else [json.loads(line) for line in out.stdout.splitlines()]
        assert len(rows) == 2
        for row in rows:
            assert (row["arousal"], row["valence"]) == arousal_valence(row["scores"])
            assert in_range(row["arousal"], row["valence"])
    out = CliRunner().invoke(app, ["predict", str(clips[0]), "--model", str(model_path), "--format", "json",
                                   "--labels", "sad"])
    assert out.exit_code == 0 and (json.loads(out.stdout)[0]["arousal"], json.loads(out.stdout)[0]["valence"]) == (-0.6, -0.7)


def test_batch_rows_carry_the_dimensions(model, tmp_path):
    labels = list(model.labels)
    names = result_schema(labels).names
    assert names[names.index(f"score_{labels[-1]}") + 1 : names.index("model_id")] == ["arousal", "valence"]
    assert result_schema(labels, timeline=True).names.count("arousal") == 1
    assert result_schema(labels, timeline="channels").names.count("arousal") == 1
    clips = [str(write_wav(tmp_path / f"{label}.wav", styled(label, 1.2, seed=4), SR)) for label in ("sad", "angry")]
    for row in annotate(model, clips).to_pylist():
        assert in_range(row["arousal"], row["valence"])
        assert (row["arousal"], row["valence"]) == arousal_valence({l: row[f"score_{l}"] for l in labels})
    signal, _ = scripted_recording(seed=9)
    long = str(write_wav(tmp_path / "long.wav", signal, SR))
    rows = annotate(model, [long], timeline=True).to_pylist()
    assert len(rows) >= 3 and all(in_range(r["arousal"], r["valence"]) for r in rows)


def test_timeline_segments_and_a_long_recording_carry_the_dimensions(model):
    signal, _ = scripted_recording(seed=9)
    timeline = make_timeline(model, signal)
    assert timeline.segments and timeline.parties is None
    for segment in timeline.segments:
        row = segment.to_dict()
        assert (row["arousal"], row["valence"]) == arousal_valence(segment.scores) and in_range(row["arousal"], row["valence"])
    header = timeline.to_csv().splitlines()[0].split(",")
    assert header[-2:] == ["arousal", "valence"]
    summary = timeline.summary()
    assert in_range(summary["arousal"], summary["valence"])
    long = np.concatenate([signal, silence(31.0 - len(signal) / SR)]) if len(signal) / SR < 31 else signal
    result = predict_recording(model, long)
    assert result.basis and result.basis.startswith("speech segments")
    again = make_timeline(model, long).summary()
    assert (result.arousal, result.valence) == (again["arousal"], again["valence"])  # the same numbers as its timeline
