"""The linear heads: their fit, their files, and their mixing into the heads' answer on every backend (PyTorch,
the ONNX model graph, the head graph of long clips); the single-clip one never under profile heads, the one
beside the profile heads only under them."""

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
from emovox.export.onnx import HEAD, PROFILE_HEAD, export_model
from emovox.runtime import OnnxEmotionModel
from emovox.testing import make_synthetic_corpus
from emovox.training.checkpoint import load_model_files, save_ensemble
from emovox.training.head import EmotionHead, Ensemble, means_only
from emovox.training.linear_head import (
    FILE,
    PROFILE_FILE,
    LinearHead,
    centred_rows,
    fit_linear_head,
    mix_log_probabilities,
)
from emovox.training.train import add_linear_head, corpus_centred, profile_linear_head


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
                                      "--profile-heads", "--linear-weight", "0.5", "--linear-strength", "0.01",
                                      "--profile-linear-weight", "0.4", "--linear-room-copies", "1"])
    assert result.exit_code == 0, result.output
    assert "linear head added (weight 0.5, C 0.01)" in result.output
    assert "profile linear head added (weight 0.4, C 0.01)" in result.output
    return corpus, out


def test_a_trained_model_mixes_its_linear_head_in_on_every_backend(linear_model, tmp_path):
    corpus, model_dir = linear_model
    config = json.loads((model_dir / "config.json").read_text())
    assert config["linear_head"]["weight"] == 0.5 and (model_dir / FILE).is_file()
    assert config["linear_head"]["copies"] == 1 and config["linear_head"]["copies_recipe"].endswith("+room1")
    assert "copies" not in config["profile_linear_head"]  # room copies train the single-clip head only
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


def test_retraining_without_linear_heads_removes_them(linear_model, retrain_plain):
    copy = retrain_plain(*linear_model)
    config = json.loads((copy / "config.json").read_text())
    assert not (copy / FILE).exists() and "linear_head" not in config
    assert not (copy / PROFILE_FILE).exists() and "profile_linear_head" not in config
    assert emovox.load(copy).ensemble.linear is None


def test_the_profile_linear_head_reads_means_of_corpora_moved_to_the_mean_of_all():
    X, labels, corpora = _corpora()
    rows = centred_rows(X, corpora, "centred")
    assert rows.shape == X.shape
    for corpus in ("a", "b"):  # every corpus moved to the mean of all, as the heads' centred rows are
        np.testing.assert_allclose(rows[corpora == corpus].mean(0), X.mean(0), atol=1e-5)
    from emovox.corpora.manifest import Utterance

    utts = [Utterance(f"{i}.wav", lab, lab, "s", c) for i, (lab, c) in enumerate(zip(labels, corpora, strict=True))]
    np.testing.assert_allclose(rows, corpus_centred(X, utts), atol=1e-5)
    with pytest.raises(ValueError, match="rows"):
        centred_rows(X, corpora, "raw")
    head = profile_linear_head(X, utts, ["neutral", "angry", "sad"], weight=0.3, strength=1.0)
    assert head.inputs == "mean" and head.shape == (3, 2, 3)
    # the same regression as one fitted on the means alone: the std half is never read
    alone = fit_linear_head(X[..., :2], labels, corpora, ["neutral", "angry", "sad"], strength=1.0, rows="centred")
    np.testing.assert_allclose(head.probabilities(X), alone.probabilities(X[..., :2]), atol=1e-5)
    changed = X.copy()
    changed[..., 2:] += 7.0
    np.testing.assert_allclose(head.probabilities(changed), head.probabilities(X), atol=1e-6)
    # _corpora's angry cue (state 1, column 2) is in the std half; with one in a mean, the head learns it from
    # (and answers on) corpora moved to the mean of all, as a profile presents them
    X[labels == "angry", 1, 0] += 3.0
    p = profile_linear_head(X, utts, ["neutral", "angry", "sad"], strength=1.0).probabilities(corpus_centred(X, utts))
    assert (p.argmax(1) == 1)[labels == "angry"].mean() > 0.9 and (p.argmax(1) == 1)[labels != "angry"].mean() < 0.2
    with pytest.raises(ModelError, match="reads"):
        LinearHead(3, 2, 3, inputs="std")


def test_the_profile_ensemble_mixes_its_own_linear_head_and_both_round_trip(tmp_path):
    from emovox.features.extractor import FeatureSettings

    X, labels, corpora = _corpora()
    torch.manual_seed(0)
    model_labels = ["neutral", "angry", "sad"]
    profile = Ensemble([means_only(EmotionHead(3, 2, 3, hidden=8)).eval()], model_labels, 1.2)
    profile_alone = profile.probabilities(X)
    profile.linear = fit_linear_head(X, labels, corpora, model_labels, weight=0.3, strength=1.0, rows="centred",
                                     inputs="mean")
    single = fit_linear_head(X, labels, corpora, model_labels, weight=0.4, strength=1.0)
    ensemble = Ensemble([EmotionHead(3, 4, 3, hidden=8).eval()], model_labels, 1.5, profile_heads=profile, linear=single)
    want = np.exp(0.7 * np.log(profile_alone) + 0.3 * np.log(profile.linear.probabilities(X)))
    np.testing.assert_allclose(ensemble.probabilities(X, profiled=True), want / want.sum(1, keepdims=True), atol=1e-5)
    directory = save_ensemble(tmp_path / "m", ensemble, FeatureSettings(encoder="whisper-tiny.en"))
    entry = json.loads((directory / "config.json").read_text())["profile_linear_head"]
    assert entry["file"] == PROFILE_FILE and entry["inputs"] == "mean" and entry["weight"] == 0.3
    back = load_model_files(directory).ensemble()
    assert back.profile_heads is not None and back.profile_heads.linear is not None
    for profiled in (False, True):
        np.testing.assert_allclose(back.probabilities(X, profiled=profiled), ensemble.probabilities(X, profiled=profiled),
                                   atol=1e-6)
    (directory / PROFILE_FILE).write_bytes((directory / PROFILE_FILE).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="sha256"):
        load_model_files(directory)


def test_a_profile_linear_head_needs_profile_heads(tmp_path):
    result = CliRunner().invoke(app, ["train", f"folder:{tmp_path}", "--out", str(tmp_path / "m"),
                                      "--profile-linear-weight", "0.3"])
    assert result.exit_code == 2 and "add --profile-heads" in result.output and not (tmp_path / "m").exists()
    from emovox.features.extractor import FeatureSettings

    X, labels, corpora = _corpora()
    directory = save_ensemble(tmp_path / "m", Ensemble([EmotionHead(3, 4, 3, hidden=8)], ["neutral", "angry", "sad"]),
                              FeatureSettings(encoder="whisper-tiny.en"))
    from emovox.corpora.manifest import Utterance

    utts = [Utterance(f"{i}.wav", lab, lab, "s", c) for i, (lab, c) in enumerate(zip(labels, corpora, strict=True))]
    with pytest.raises(ModelError, match="profile heads"):
        add_linear_head(directory, utts, features=X, profile=True)


def test_a_trained_model_mixes_its_profile_linear_head_in_under_a_profile_on_every_backend(linear_model, tmp_path):
    corpus, model_dir = linear_model
    config = json.loads((model_dir / "config.json").read_text())
    assert config["profile_linear_head"]["weight"] == 0.4 and config["profile_linear_head"]["inputs"] == "mean"
    assert (model_dir / PROFILE_FILE).is_file()
    files = sorted(str(p) for p in corpus.rglob("*.wav"))[:4]
    model = emovox.load(model_dir)
    profile = model.ensemble.profile_heads
    assert profile is not None and profile.linear is not None and profile.linear.shape[:2] == (5, 384)
    features = model.features_for_signals([load_audio(f) for f in files])
    alone = Ensemble(profile.heads, model.labels, profile.temperature).probabilities(features)
    want = np.exp(0.6 * np.log(alone) + 0.4 * np.log(profile.linear.probabilities(features)))
    mixed = model.probabilities_for_features(features, profiled=True)
    np.testing.assert_allclose(mixed, want / want.sum(1, keepdims=True), atol=1e-5)
    assert not np.allclose(mixed, alone, atol=1e-3)

    out = export_model(model_dir, tmp_path / "x")
    assert out["profile_linear_head"]["inputs"] == "mean"
    assert out["check"]["profile_head_vs_torch_max_abs_prob_diff"] < 1e-5
    session = ort.InferenceSession(str(tmp_path / "x" / PROFILE_HEAD), providers=["CPUExecutionProvider"])
    probs = session.run(["probs"], {session.get_inputs()[0].name: features.astype(np.float32)})[0]
    np.testing.assert_allclose(probs, mixed, atol=1e-4)
    np.testing.assert_allclose(OnnxEmotionModel(tmp_path / "x").probabilities_for_features(features, profiled=True),
                               mixed, atol=1e-4)


def test_room_copies_teach_the_linear_head_what_a_room_does_and_are_recorded(tmp_path):
    from emovox.corpora.manifest import Utterance
    from emovox.features.extractor import FeatureSettings

    X, labels, corpora = _corpora()
    model_labels = ["neutral", "angry", "sad"]
    utts = [Utterance(f"{i}.wav", lab, lab, "s", c) for i, (lab, c) in enumerate(zip(labels, corpora, strict=True))]
    # a "room" smears the angry cue (state 1, column 2) and shows it elsewhere (column 3)
    room = X.copy()
    room[:, 1, 2] *= 0.3
    room[labels == "angry", 1, 3] += 3.0
    directory = save_ensemble(tmp_path / "m", Ensemble([EmotionHead(3, 4, 3, hidden=8)], model_labels),
                              FeatureSettings(encoder="whisper-tiny.en"))
    plain = add_linear_head(directory, utts, features=X, strength=1.0)
    assert "copies" not in json.loads((directory / "config.json").read_text())["linear_head"]
    heard = add_linear_head(directory, utts, features=X, strength=1.0, copies=room[None], copies_recipe="rooms")
    entry = json.loads((directory / "config.json").read_text())["linear_head"]
    assert entry["copies"] == 1 and entry["copies_recipe"] == "rooms"
    angry = labels == "angry"  # _corpora's one cue: neutral and sad clips are alike

    def accuracy(head, Z):  # angry told from the rest
        return float(((head.probabilities(Z).argmax(1) == 1) == angry).mean())

    assert accuracy(heard, room) > accuracy(plain, room) + 0.15  # 0.88 against 0.68
    assert accuracy(heard, X) > 0.75  # the clean clips are still heard (0.80; the plain head 0.93)
    back = load_model_files(directory).ensemble().linear
    assert back is not None
    np.testing.assert_allclose(back.probabilities(room), heard.probabilities(room), atol=1e-6)
    with pytest.raises(ValueError, match="copies"):
        add_linear_head(directory, utts, features=X, copies=room[None, :10])
    with pytest.raises(ValueError, match="single-clip"):
        add_linear_head(directory, utts, features=X, copies=room[None], profile=True)
    result = CliRunner().invoke(app, ["train", f"folder:{tmp_path}", "--out", str(tmp_path / "n"),
                                      "--linear-room-copies", "1"])
    assert result.exit_code == 2 and "add --linear-weight" in result.output
