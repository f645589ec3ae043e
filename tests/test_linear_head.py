"""The linear head: its fit, its file, and its mixing into the heads' answer on every backend (PyTorch, the
ONNX model graph, the head graph of long clips), never under profile heads."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import emovox
from emovox.audio.load import load_audio
from emovox.cli import app
from emovox.errors import ModelError
from emovox.export.onnx import HEAD, export_model
from emovox.runtime import OnnxEmotionModel
from emovox.testing import make_synthetic_corpus
from emovox.training.checkpoint import load_model_files, save_ensemble
from emovox.training.head import EmotionHead, Ensemble, means_only
from emovox.training.linear_head import FILE, LinearHead, centred_rows, fit_linear_head, mix_log_probabilities


def _corpora(seed: int = 0):
    """Two corpora whose angry clips differ from their sad ones in one value of state 1, the second corpus
    shifted as a whole (its channel)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 3, 4)).astype(np.float32)
    labels = np.array(["angry", "sad", "neutral"] * 40)
    corpora = np.array(["a"] * 60 + ["b"] * 60)
    X[labels == "angry", 1, 2] += 3.0
    X[corpora == "b"] += 5.0
    return X, labels, corpora


def test_the_head_is_fitted_on_raw_and_corpus_centred_rows_and_leaves_absent_labels_out():
    X, labels, corpora = _corpora()
    rows = centred_rows(X, corpora)
    assert rows.shape == (240, 3, 4)
    np.testing.assert_allclose(rows[120:][corpora == "b"].mean(0), 0, atol=1e-5)
    head = fit_linear_head(X, labels, corpora, ["neutral", "angry", "sad", "fear"], weight=0.3, strength=1.0)
    assert head.shape == (3, 4, 4) and head.weight == 0.3 and head.strength == 1.0
    p = head.probabilities(X)
    assert p.shape == (120, 4) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert p[:, 3].max() < 1e-6  # fear: no training clip, never wins
    angry = p.argmax(1) == 1
    assert angry[labels == "angry"].mean() > 0.9 and angry[labels != "angry"].mean() < 0.2
    # clips of a label the model lacks are left out; one label alone cannot be fitted
    fit_linear_head(X, np.where(labels == "sad", "boredom", labels), corpora, ["neutral", "angry"], strength=1.0)
    with pytest.raises(ValueError, match="two of the model's labels"):
        fit_linear_head(X, labels, corpora, ["angry"])
    with pytest.raises(ModelError, match="weight"):
        LinearHead(3, 4, 2, weight=1.0)


def test_the_ensemble_mixes_log_probabilities_and_profile_heads_answer_alone():
    X, labels, corpora = _corpora()
    torch.manual_seed(0)
    model_labels = ["neutral", "angry", "sad"]
    heads = [EmotionHead(3, 4, 3, hidden=8).eval() for _ in range(2)]
    profile = Ensemble([means_only(EmotionHead(3, 2, 3, hidden=8)).eval()], model_labels, 1.2)
    linear = fit_linear_head(X, labels, corpora, model_labels, weight=0.4, strength=1.0)
    plain = Ensemble(heads, model_labels, 1.7, adapted_temperature=1.3, profile_heads=profile)
    mixed = Ensemble(heads, model_labels, 1.7, adapted_temperature=1.3, profile_heads=profile, linear=linear)
    want = np.exp(0.6 * np.log(plain.probabilities(X)) + 0.4 * np.log(linear.probabilities(X)))
    np.testing.assert_allclose(mixed.probabilities(X), want / want.sum(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(mixed.probabilities(X, profiled=True), plain.probabilities(X, profiled=True))
    adapted = np.exp(np.log(mixed.probabilities(X)) * 1.7 / 1.3)
    np.testing.assert_allclose(mixed.probabilities(X, adapted=True), adapted / adapted.sum(1, keepdims=True), atol=1e-5)
    uncalibrated = mix_log_probabilities(torch.from_numpy(plain.probabilities(X, calibrated=False)),
                                         linear(torch.from_numpy(X)), 0.4).detach().numpy()
    np.testing.assert_allclose(mixed.probabilities(X, calibrated=False), uncalibrated, atol=1e-5)
    with pytest.raises(ValueError, match="average their logits"):
        Ensemble(heads, model_labels, average="probs", linear=linear).probabilities(X)


def test_the_head_round_trips_through_its_checked_file(tmp_path):
    from emovox.features.extractor import FeatureSettings

    X, labels, corpora = _corpora()
    model_labels = ["neutral", "angry", "sad"]
    ensemble = Ensemble([EmotionHead(3, 4, 3, hidden=8).eval()], model_labels, 1.5,
                        linear=fit_linear_head(X, labels, corpora, model_labels, weight=0.25, strength=0.5))
    directory = save_ensemble(tmp_path / "m", ensemble, FeatureSettings(encoder="whisper-tiny.en"))
    entry = json.loads((directory / "config.json").read_text())["linear_head"]
    assert entry["weight"] == 0.25 and entry["strength"] == 0.5 and entry["file"] == FILE
    back = load_model_files(directory).ensemble()
    assert back.linear is not None and back.linear.weight == 0.25
    np.testing.assert_allclose(back.probabilities(X), ensemble.probabilities(X), atol=1e-6)

    (directory / FILE).write_bytes((directory / FILE).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="sha256"):
        load_model_files(directory)
    with pytest.raises(ModelError, match="labels"):
        LinearHead.load(directory, entry, ["neutral", "angry", "fear"])
    # saved again without one: the old file goes
    save_ensemble(directory, Ensemble(ensemble.heads, model_labels), FeatureSettings(encoder="whisper-tiny.en"))
    assert not (directory / FILE).exists() and load_model_files(directory).linear is None


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    corpus = make_synthetic_corpus(tmp_path_factory.mktemp("linear_corpus"), speakers=3, takes=3, prefix="l")
    out = tmp_path_factory.mktemp("linear_model")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "20", "--hidden", "16", "--layers", "4",
                                      "--profile-heads", "--linear-weight", "0.5", "--linear-strength", "0.01"])
    assert result.exit_code == 0, result.output
    assert "linear head added (weight 0.5, C 0.01)" in result.output
    return corpus, out


def test_a_trained_model_mixes_its_linear_head_in_on_every_backend(linear_model, tmp_path):
    corpus, model_dir = linear_model
    config = json.loads((model_dir / "config.json").read_text())
    assert config["linear_head"]["weight"] == 0.5 and (model_dir / FILE).is_file()
    files = sorted(str(p) for p in corpus.rglob("*.wav"))[:4]
    model = emovox.load(model_dir)
    features = model.features_for_signals([load_audio(f) for f in files])
    assert features.shape[1] == 5  # --layers 4 reads one state; the linear head reads all of them, 0-4
    heads_alone = Ensemble(model.ensemble.heads, model.labels, model.ensemble.temperature).probabilities(features)
    mixed = model.probabilities_for_features(features)
    assert not np.allclose(mixed, heads_alone, atol=1e-3)
    got = np.array([list(model.predict_file(f).scores.values()) for f in files])
    np.testing.assert_allclose(got, mixed, atol=1e-5)

    export_model(model_dir, tmp_path / "x")
    sidecar = json.loads((tmp_path / "x" / "config.json").read_text())
    assert sidecar["linear_head"]["weight"] == 0.5 and sidecar["outputs"]["features"][1] == 5
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    np.testing.assert_allclose(np.array([list(onnx_model.predict_file(f).scores.values()) for f in files]), got,
                               atol=1e-4)
    # the head graph (long clips' merged windows) mixes it in as well
    session = ort.InferenceSession(str(tmp_path / "x" / HEAD), providers=["CPUExecutionProvider"])
    probs = session.run(["probs"], {session.get_inputs()[0].name: features.astype(np.float32)})[0]
    np.testing.assert_allclose(probs, mixed, atol=1e-4)


def test_retraining_without_a_linear_head_removes_it(linear_model, retrain_plain):
    copy = retrain_plain(*linear_model)
    assert not (copy / FILE).exists() and "linear_head" not in json.loads((copy / "config.json").read_text())
    assert emovox.load(copy).ensemble.linear is None
