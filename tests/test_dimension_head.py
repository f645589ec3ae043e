"""Arousal and valence from a trained head (issue 18, multi-task): the fit, the model directory,
predictions, timelines, ONNX (fp32 and int8) and the API use the heads' values when a model
has them, and a model saved without them still loads and reads them off the circumplex table."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from websockets.sync.client import connect

import emovox
from emovox.conversation.dimensions import CIRCUMPLEX, arousal_valence
from emovox.export.onnx import build_graph, check_graph, export_model
from emovox.prediction.timeline import make_timeline
from emovox.runtime import OnnxEmotionModel
from emovox.training.checkpoint import load_model_files, save_model
from emovox.training.fit import FitConfig, class_points, fit_head
from emovox.training.head import EmotionHead, Ensemble
from server_support import SR, in_process_server, scripted_recording, styled, train_tiny_model, wav_bytes


@pytest.fixture(scope="module")
def dims_path(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.getbasetemp(), dimensions=True)


@pytest.fixture(scope="module")
def dims_model(dims_path):
    return emovox.load(dims_path)


@pytest.fixture(scope="module")
def dims_exported(dims_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("dims-exported")
    export_model(dims_path, out, int8=True)
    return out


def clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of separable features ``(n, 2, 6)``: angry, sad, and a label without a point."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 2, 6)).astype(np.float32)
    X[:, :, 0] += 3.0 * (y == 0)[:, None]
    X[:, :, 1] += 3.0 * (y == 1)[:, None]
    return X, y


def test_a_multitask_head_learns_the_circumplex_points_of_its_labels():
    labels = ["angry", "sad", "joy"]  # joy has no point: its rows add nothing to the dimensional loss
    points = class_points(labels)
    assert np.isnan(points[2]).all() and points[0].tolist() == pytest.approx(CIRCUMPLEX["angry"])
    X, y = clusters(240, seed=0)
    config = FitConfig(epochs=60, hidden=16, lr=1e-2, dimensions_weight=1.0)
    result = fit_head(X, y, X, y, n_classes=3, config=config, points=points)
    assert result.head.has_dimensions and result.best_val_ua > 0.9
    Xt, yt = clusters(90, seed=1)  # held-out rows
    dims = Ensemble([result.head], labels).dimensions(Xt)
    assert dims.shape == (90, 2) and np.abs(dims).max() <= 1.0
    angry, sad = dims[yt == 0].mean(0), dims[yt == 1].mean(0)
    assert angry[0] > 0.4 and sad[0] < -0.3  # arousal: high for angry-like rows, low for sad-like
    assert angry[1] < -0.3 and sad[1] < -0.3  # both negative
    with pytest.raises(ValueError, match="needs points"):
        fit_head(X, y, X, y, n_classes=3, config=config)


def test_without_the_weight_a_head_is_what_it_was():
    X, y = clusters(60, seed=2)
    plain = fit_head(X, y, X, y, n_classes=3, config=FitConfig(epochs=5, hidden=8))
    assert not plain.head.has_dimensions and not any(k.startswith("dims") for k in plain.head.state_dict())
    assert not Ensemble([plain.head], ["a", "b", "c"]).has_dimensions
    head = EmotionHead(2, 6, 3, hidden=8, dimensions=True).eval()
    logits, _ = head.outputs(torch.from_numpy(X))
    assert torch.equal(logits, head(torch.from_numpy(X)))  # forward gives the logits only, as before


def test_the_model_directory_says_where_the_dimensions_come_from(dims_path, model_path, tmp_path):
    config = json.loads((dims_path / "config.json").read_text())
    assert config["dimensions"] == "head" and config["head"]["dimensions"] is True
    assert config["training"]["config"]["fit"]["dimensions_weight"] == 0.5  # --dimensions' default weight
    assert config["training"]["config"]["fit"]["dimensions_shared"] is True
    assert load_model_files(dims_path).has_dimensions
    assert json.loads((model_path / "config.json").read_text())["dimensions"] == "circumplex"
    # a directory saved before the dimensional output existed: no "dimensions" anywhere
    old = shutil.copytree(model_path, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["dimensions"], config["head"]["dimensions"]
    (old / "config.json").write_text(json.dumps(config))
    model = emovox.load(old)
    assert not model.has_dimensions
    result = model.predict(styled("angry", 1.5, seed=40), SR)
    assert result.dimensions is None and (result.arousal, result.valence) == arousal_valence(result.scores)
    assert result.scores == emovox.load(model_path).predict(styled("angry", 1.5, seed=40), SR).scores


def test_predictions_carry_the_heads_values_which_follow_the_emotion(dims_model):
    assert dims_model.has_dimensions
    angry = [dims_model.predict(styled("angry", 1.6, seed=70 + i), SR) for i in range(3)]
    sad = [dims_model.predict(styled("sad", 1.6, seed=80 + i), SR) for i in range(3)]
    for result in angry + sad:
        assert result.dimensions == (result.arousal, result.valence)
        assert all(isinstance(v, float) and -1.0 <= v <= 1.0 for v in result.dimensions)
    assert min(r.arousal for r in angry) > max(r.arousal for r in sad)
    # a label subset decides the label, not the heads' arousal and valence
    subset = dims_model.predict(styled("angry", 1.6, seed=70), SR, labels=["sad"])
    assert subset.label == "sad" and subset.dimensions == angry[0].dimensions
    # speaker adaptation goes through the heads too
    adapted = dims_model.predict_speaker([styled(label, 1.2, seed=90 + i) for i in range(2) for label in ("sad", "angry")])
    assert all(r.dimensions is not None for r in adapted)


def test_timeline_segments_take_the_heads_values(dims_model):
    signal, _ = scripted_recording()
    timeline = make_timeline(dims_model, signal)
    assert timeline.segments
    first = timeline.segments[0]
    window = signal[int(first.start * SR) : int(first.end * SR)]
    assert (first.arousal, first.valence) == dims_model.predict_signals([window])[0].dimensions
    assert "arousal" in timeline.summary() and "arousal" in timeline.to_csv().splitlines()[0]


def test_onnx_dims_output_matches_torch(dims_path, dims_model, dims_exported):
    config = json.loads((dims_exported / "config.json").read_text())
    assert config["dimensions"] == "head" and config["outputs"]["dims"] == ["batch", 2]
    assert check_graph(build_graph(dims_path), dims_exported / "model.onnx", shapes=((1, 90), (3, 400))) < 1e-4
    onnx_model = OnnxEmotionModel(dims_exported, variant="fp32")
    assert onnx_model.has_dimensions
    clips = [styled("angry", 1.3, seed=5), styled("sad", 2.1, seed=6)]
    for want, got in zip(dims_model.predict_signals(clips), onnx_model.predict_signals(clips), strict=True):
        assert got.dimensions == pytest.approx(want.dimensions, abs=1e-3)
    # over 30 s: windows merged, then the head graph gives the dims (the torch extractor pools all frames)
    long = np.concatenate([styled("angry", 16.0, seed=7), styled("sad", 18.0, seed=8)])
    torch_probs, torch_dims = dims_model.outputs_for_signals([long])
    onnx_probs, onnx_dims = onnx_model.outputs_for_signals([long])
    assert onnx_dims is not None and torch_dims is not None
    assert np.abs(onnx_dims - torch_dims).max() < 1e-3 and np.abs(onnx_probs - torch_probs).max() < 1e-3
    int8 = OnnxEmotionModel(dims_exported, variant="int8")
    got = int8.predict_signals(clips)
    assert all(r.dimensions is not None and all(-1 <= v <= 1 for v in r.dimensions) for r in got)
    assert np.abs(np.array([r.dimensions for r in got]) -
                  np.array([r.dimensions for r in onnx_model.predict_signals(clips)])).max() < 0.15  # close, not equal


def test_an_onnx_export_of_a_model_without_dims_has_no_dims_output(model_path, tmp_path):
    export_model(model_path, tmp_path / "plain")
    onnx_model = OnnxEmotionModel(tmp_path / "plain")
    assert not onnx_model.has_dimensions and json.loads((tmp_path / "plain" / "config.json").read_text())["dimensions"] \
        == "circumplex"
    result = onnx_model.predict(styled("sad", 1.2, seed=9), SR)
    assert result.dimensions is None and (result.arousal, result.valence) == arousal_valence(result.scores)


def test_the_api_answers_with_the_heads_values(dims_path, dims_model):
    from emovox.serving import ServerSettings

    clip = styled("angry", 2.0, seed=11)
    want = dims_model.predict(clip, SR)
    with in_process_server(dims_path, ServerSettings()) as server:
        status, body, _ = server.request("GET", "/v1/models")
        assert status == 200 and body["models"][0]["dimensions"] == "head"
        status, body, _ = server.post_file("/v1/predict", wav_bytes(clip))
        assert status == 200 and (body["arousal"], body["valence"]) == pytest.approx(want.dimensions, abs=1e-3)
        status, body, _ = server.post_file("/v1/predict?labels=sad", wav_bytes(clip))
        assert status == 200 and body["label"] == "sad"
        assert (body["arousal"], body["valence"]) == pytest.approx(want.dimensions, abs=1e-3)  # not the table's
        signal, _ = scripted_recording()
        status, body, _ = server.post_file("/v1/timeline", wav_bytes(signal))
        assert status == 200 and body["segments"]
        assert all(-1 <= s["arousal"] <= 1 and -1 <= s["valence"] <= 1 for s in body["segments"])
        assert "arousal" in body["summary"]
        pcm = (np.clip(signal, -1, 1) * 32767).astype("<i2")
        messages = []
        with connect(server.ws_url + "/v1/stream", open_timeout=10, close_timeout=10) as ws:
            ws.send(json.dumps({"type": "start", "sample_rate": SR}))
            for i in range(0, len(pcm), SR // 2):
                ws.send(pcm[i : i + SR // 2].tobytes())
            ws.send(json.dumps({"type": "stop"}))
            while (message := json.loads(ws.recv(timeout=60)))["type"] not in ("end", "error"):
                messages.append(message)
    answered = [m for m in messages if m["type"] in ("update", "segment") and m.get("label")]
    assert any(m["type"] == "segment" for m in answered)
    assert all(-1 <= m["arousal"] <= 1 and -1 <= m["valence"] <= 1 for m in answered)


def test_save_model_keeps_the_dims_weights(tmp_path):
    heads = [EmotionHead(2, 4, 3, hidden=8, dimensions=True).eval() for _ in range(2)]
    from emovox.features.extractor import FeatureSettings

    save_model(tmp_path, heads=heads, labels=["a", "b", "c"], features=FeatureSettings(encoder="whisper-tiny.en"))
    loaded = load_model_files(tmp_path).heads
    X = np.random.default_rng(0).normal(size=(5, 2, 4)).astype(np.float32)
    assert np.allclose(Ensemble(loaded, ["a", "b", "c"]).dimensions(X), Ensemble(heads, ["a", "b", "c"]).dimensions(X))


@pytest.mark.parametrize("validated", [False, True])
def test_an_unshared_dimensional_output_leaves_the_emotion_logits_as_they_were(validated):
    X, y = clusters(90, seed=3)
    # validated: every epoch ties on validation UA (checked below); the dims' validation error
    # must not pick another epoch than the plain head keeps
    X_val, y_val = clusters(30, seed=5) if validated else (None, None)
    points = class_points(["angry", "sad", "joy"])
    plain = fit_head(X, y, X_val, y_val, n_classes=3, config=FitConfig(epochs=8, hidden=8, patience=8))
    probe = fit_head(X, y, X_val, y_val, n_classes=3, points=points,
                     config=FitConfig(epochs=8, hidden=8, patience=8, dimensions_weight=1.0, dimensions_shared=False))
    if validated:
        assert len(probe.history) == 8 and len({r["val_ua"] for r in probe.history}) == 1  # the ties
    assert probe.head.has_dimensions
    Xt = torch.from_numpy(clusters(30, seed=4)[0])
    with torch.no_grad():
        assert torch.equal(plain.head(Xt), probe.head(Xt))
