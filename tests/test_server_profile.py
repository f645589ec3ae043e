"""The server with a domain profile (--profile), and /v1/predict on a long recording: one
recording, one answer, by the timeline's rule (issue 15, finding 13), on real uvicorn."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import emovox
from emovox.cli import app
from emovox.prediction.timeline import predict_recording
from emovox.testing import write_wav
from server_support import SR, running_server, scripted_recording, styled, train_tiny_model, wav_bytes

SCRIPT = [(None, 6.0), ("angry", 4.0), (None, 9.0), ("angry", 5.0), (None, 8.0), ("sad", 2.0), (None, 7.0),
          ("angry", 3.0), (None, 2.0)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def profile(model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("deployment")
    for k in range(12):
        write_wav(folder / f"c{k}.wav", styled("sad" if k % 3 else "angry", 1.5, seed=300 + k) * 0.5, SR)
    out = folder / "deployment.npz"
    result = CliRunner().invoke(app, ["profile", str(folder), "--model", str(model_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_served_model_applies_the_profile_and_says_so(model_dir, profile, tmp_path):
    clip = styled("angry", 2.0, seed=900) * 0.5
    want = emovox.load(model_dir, profile=profile).predict(clip, SR)
    plain = emovox.load(model_dir).predict(clip, SR)
    with running_server(model_dir, tmp_path / "server.log", "--profile", str(profile)) as server:
        status, models, _ = server.request("GET", "/v1/models")
        assert status == 200 and models["models"][0]["profile"]["n_clips"] == 12
        assert models["models"][0]["profile"]["prosody"] is False  # the tiny model has no prosody head
        assert models["models"][0]["profile"]["scaled"] is True  # it stores its training spread
        status, body, _ = server.post_file("/v1/predict", wav_bytes(clip))
    assert status == 200, body
    log = lambda scores: np.log(np.clip(list(scores), 1e-30, None))  # noqa: E731  (the tiny model is very sure)
    np.testing.assert_allclose(log(body["scores"][l] for l in want.scores), log(want.scores.values()), atol=0.05)
    assert np.abs(log(plain.scores.values()) - log(want.scores.values())).max() > 0.5


def test_a_profile_for_another_model_stops_the_server_at_start(model_dir, tmp_path):
    from emovox.training.profiles import DomainProfile

    other = DomainProfile(np.zeros((5, 768), np.float32), 100, "x", "0" * 64, "").save(tmp_path / "other.npz")
    result = CliRunner().invoke(app, ["serve", "--model", str(model_dir), "--profile", str(other), "--port", "1"])
    assert result.exit_code == 2 and "made for model 'x'" in result.output


def test_predict_endpoint_judges_a_long_recording_on_its_speech(model_dir, tmp_path):
    signal, _ = scripted_recording(SCRIPT, seed=70)
    want = predict_recording(emovox.load(model_dir), signal)
    assert want.basis and want.basis.startswith("speech segments")
    with running_server(model_dir, tmp_path / "server.log", "--max-duration", "120") as server:
        status, body, _ = server.post_file("/v1/predict", wav_bytes(signal))
    assert status == 200, body
    assert body["label"] == want.label == "angry" and body["basis"] == want.basis
    assert abs(sum(body["scores"].values()) - 1) < 1e-6
