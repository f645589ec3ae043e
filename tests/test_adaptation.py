"""Speaker adaptation (emovox.training.adaptation): the shift, the protocols' --adapt, both backends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import emovox
from emovox.audio.load import load_audio
from emovox.cli import app
from emovox.corpora.manifest import Utterance
from emovox.errors import EmovoxError
from emovox.evaluation.protocols import speaker_kfold
from emovox.export.onnx import export_model
from emovox.runtime import OnnxEmotionModel
from emovox.testing import make_synthetic_corpus
from emovox.training.adaptation import adapt, adapt_groups
from emovox.training.fit import FitConfig
from emovox.training.train import TrainConfig, train_ensemble


def test_adapt_moves_the_speaker_mean_onto_the_reference_and_keeps_the_differences():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 2.0, (10, 3, 4)).astype(np.float32)
    reference = rng.normal(0.0, 1.0, (3, 4)).astype(np.float32)
    reference[1] = np.nan  # a state no head reads
    out = adapt(X, reference)
    np.testing.assert_allclose(out.mean(0)[[0, 2]], reference[[0, 2]], atol=1e-5)
    np.testing.assert_array_equal(out[:, 1], X[:, 1])
    np.testing.assert_allclose(out[1:] - out[:-1], X[1:] - X[:-1], atol=1e-5)
    with pytest.raises(ValueError):
        adapt(X, reference[:2])
    with pytest.raises(ValueError):
        adapt_groups(X, ["a"] * 3, reference)


def _speaker_world(n_speakers=12, per_class=6, seed=0):
    """Features where each speaker adds a large constant offset to a small class signal."""
    rng = np.random.default_rng(seed)
    classes = ["sad", "angry", "happy"]
    signal = rng.normal(0, 1.0, (3, 1, 16))
    X, utts = [], []
    for s in range(n_speakers):
        offset = rng.normal(0, 4.0, (1, 16))
        for c, label in enumerate(classes):
            for k in range(per_class):
                X.append(signal[c] + offset + rng.normal(0, 0.3, (1, 16)))
                utts.append(Utterance(f"/w/{s}_{c}_{k}.wav", label, label, str(s), "w"))
    return np.array(X, np.float32), utts


def test_adaptation_removes_speaker_offsets_in_kfold():
    X, utts = _speaker_world()
    config = TrainConfig(ensemble=1, fit=FitConfig(epochs=300, patience=300, hidden=32, lr=3e-3))

    def trainer(X, u):
        return train_ensemble(X, u, config=config)

    raw = speaker_kfold(X, utts, 4, trainer=trainer)
    adapted = speaker_kfold(X, utts, 4, trainer=trainer, adapt=True)

    def ua(o):
        return np.mean([np.mean(np.array(o.predicted)[np.array(o.truth) == l] == l) for l in set(o.truth)])

    assert ua(adapted) > 0.65 and ua(adapted) > ua(raw) + 0.2  # measured 0.75 against 0.41
    assert "test speakers adapted" in adapted.split and "adapted" not in raw.split


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    corpus = make_synthetic_corpus(tmp_path_factory.mktemp("adapt_corpus"), speakers=3, takes=3, prefix="d")
    out = tmp_path_factory.mktemp("adapt_model")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "20", "--hidden", "16"])
    assert result.exit_code == 0, result.output
    return corpus, out


def test_predict_speaker_same_on_torch_and_onnx(small_model, tmp_path):
    corpus, model_dir = small_model

    signals = [load_audio(p) for p in sorted(corpus.rglob("*.wav"))[:6]]
    torch_model = emovox.load(model_dir)
    export_model(model_dir, tmp_path / "x")
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    a = torch_model.predict_speaker(signals)
    b = onnx_model.predict_speaker(signals)
    assert [p.label for p in a] == [p.label for p in b]
    np.testing.assert_allclose([list(p.scores.values()) for p in a], [list(p.scores.values()) for p in b], atol=1e-4)
    assert json.loads((tmp_path / "x" / "config.json").read_text())["reference_mean"] == "reference_mean.npy"
    with pytest.raises(EmovoxError):
        torch_model.predict_speaker(signals[:2])


def test_evaluate_cli_adapt_states_it(small_model, tmp_path):
    corpus, _ = small_model
    result = CliRunner().invoke(app, ["evaluate", f"folder:{corpus}", "--folds", "3", "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--adapt", "--out", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert "test speakers adapted" in res["split"]


def test_predict_cli_adapt(small_model):
    corpus, model_dir = small_model
    files = [str(p) for p in sorted(corpus.rglob("*.wav"))[:5]]
    result = CliRunner().invoke(app, ["predict", *files, "--model", str(model_dir), "--adapt", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    want = emovox.load(model_dir).predict_speaker([load_audio(f) for f in files])
    assert [r["label"] for r in rows] == [p.label for p in want]
    too_few = CliRunner().invoke(app, ["predict", *files[:2], "--model", str(model_dir), "--adapt"])
    assert too_few.exit_code == 2 and "at least 4 clips" in too_few.output


def test_the_default_adapts_and_default_adaptive_is_its_alias(monkeypatch):
    from emovox.testing import voice

    monkeypatch.setenv("EMOVOX_DEFAULT_BACKEND", "torch")  # no export needed for this check
    model = emovox.load(adaptive=True)
    assert emovox.prediction.loading.adaptive_model_dir() == emovox.prediction.loading.default_model_dir()
    assert emovox.load("default-adaptive").fingerprint() == model.fingerprint() == emovox.load().fingerprint()
    config = json.loads((emovox.prediction.loading.default_model_dir() / "config.json").read_text())
    assert config["head"]["layers"] is None and config["ensemble_average"] == "logits"
    assert config["adapted_temperature"] and np.isfinite(model.reference_mean()).all()
    signals = [voice(1.5, f0=120 + 40 * i, seed=i, amplitude=0.1 + 0.1 * i) for i in range(4)]
    predictions = model.predict_speaker(signals)
    assert len(predictions) == 4 and set(predictions[0].scores) == set(config["labels"])
    shipped = json.loads((emovox.prediction.loading.default_model_dir() / "config.json").read_text())
    assert shipped["ensemble_average"] == "logits" and all(e["kept"] for e in shipped["int8_gate"])
