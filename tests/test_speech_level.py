"""Level-weighted pooling: the weights follow the loud talker, quiet background talk moves the
features less than with uniform pooling, and the exported graph weighs frames as training did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import emovox
from emovox.audio.speech_level import level_weights
from emovox.export.onnx import export_model
from emovox.features.extractor import FeatureExtractor
from emovox.runtime import OnnxEmotionModel, log_mel
from emovox.testing import speechlike
from test_export import make_random_model


def _talk_with_pauses(seed: int = 0) -> np.ndarray:
    """Three phrases of a loud voice separated by 0.6 s pauses."""
    pause = np.zeros(int(0.6 * 16000), np.float32)
    phrases = [speechlike(duration=0.8, f0=150 + 20 * i, seed=seed + i, amplitude=0.5) for i in range(3)]
    return np.concatenate([pause, phrases[0], pause, phrases[1], pause, phrases[2], pause])


def _background(length: int) -> np.ndarray:
    """A voice 26 dB below the talker, talking all the time."""
    return np.resize(speechlike(duration=2.0, f0=230, seed=9, amplitude=0.025), length)


def test_weights_follow_the_loud_talker_and_ignore_padding():
    loud = speechlike(duration=1.0, f0=140, seed=1, amplitude=0.5)
    quiet = speechlike(duration=1.0, f0=220, seed=2, amplitude=0.02)  # 28 dB lower
    mel = torch.from_numpy(log_mel(np.concatenate([loud, quiet])))[None]
    padded = torch.cat([mel, torch.zeros(1, 80, 60)], dim=2)
    weights = level_weights(padded, torch.tensor([mel.shape[2]]))[0].numpy()
    half = mel.shape[2] // 4  # encoder frames per second of audio
    assert weights.shape == (padded.shape[2] // 2,)
    # the voice's own syllable gaps dip; the quiet voice never counts
    assert np.median(weights[5 : half - 5]) > 0.9 and weights[half + 5 : 2 * half - 5].max() < 0.05
    assert np.all(weights[mel.shape[2] // 2 :] == 0)  # padding never counts


def test_quiet_background_moves_level_pooled_features_less():
    """Background talk in the pauses shifts uniformly pooled features more than level-pooled ones.

    Clearest in the lower states; upper states mix every frame through attention, so some of
    the background reaches the talker's frames whatever the pooling."""
    clean = _talk_with_pauses()
    noisy = clean + _background(len(clean))
    shift = {}
    for pooling in ("mean_std", "level_mean_std"):
        extractor = FeatureExtractor("whisper-tiny.en", pooling=pooling)
        a, b = extractor([clean, noisy])
        shift[pooling] = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)  # per state
    assert np.all(shift["level_mean_std"][:2] < 0.5 * shift["mean_std"][:2]), shift
    assert np.all(shift["level_mean_std"] < shift["mean_std"]), shift


def test_level_pooling_differs_only_where_levels_differ():
    """A steady voice has near-equal levels everywhere: both poolings agree closely."""
    steady = speechlike(duration=2.0, f0=160, seed=4, amplitude=0.3)
    uniform, level = (FeatureExtractor("whisper-tiny.en", pooling=p)([steady])[0] for p in ("mean_std", "level_mean_std"))
    assert np.abs(uniform - level).max() / np.abs(uniform).max() < 0.1
    with pytest.raises(ValueError, match="unknown pooling"):
        FeatureExtractor("whisper-tiny.en", pooling="median")


@pytest.fixture(scope="module")
def level_model(tmp_path_factory):
    model_dir = make_random_model(tmp_path_factory.mktemp("level_model"), seed=2, pooling="level_mean_std")
    out = tmp_path_factory.mktemp("level_exported")
    report = export_model(model_dir, out, int8=False)
    return model_dir, out, report


def test_exported_graph_pools_as_training_did(level_model):
    """Same features and probabilities from onnxruntime as from torch, for clips with pauses,
    background talk, and one over 30 s (windows merged with their level weights)."""
    model_dir, exported, report = level_model
    assert report["check"]["fp32_vs_torch_max_abs_prob_diff"] < 1e-4
    clean = _talk_with_pauses(seed=3)
    long_clip = np.concatenate([_talk_with_pauses(seed=s) * (1.0 if s % 2 else 0.3) for s in range(9)])  # ~38 s
    signals = [clean, clean + _background(len(clean)), long_clip]
    torch_model = emovox.load(model_dir)
    onnx_model = OnnxEmotionModel(exported, variant="fp32")
    want, got = torch_model.features_for_signals(signals), onnx_model.features_for_signals(signals)
    assert np.abs(want - got).max() / np.abs(want).max() < 1e-4
    probs = torch_model.probabilities_for_signals(signals)
    assert np.abs(probs - onnx_model.probabilities_for_signals(signals)).max() < 1e-4
    assert np.ptp(probs, axis=1).max() > 0.05  # the heads decide something


def test_shipped_noise_robust_model_loads_by_name(monkeypatch, tmp_path):
    """``noise-robust`` names the shipped model (level pooling, every state) unless a folder of
    that name exists, which then wins."""
    import json

    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.errors import ModelError
    from emovox.prediction.loading import shipped_model_dir
    from emovox.testing import voice, write_wav

    monkeypatch.setenv("EMOVOX_DEFAULT_BACKEND", "torch")  # no export needed for these checks
    model = emovox.load("noise-robust")
    config = json.loads((shipped_model_dir("noise-robust") / "config.json").read_text())
    assert model.extractor.settings.pooling == "level_mean_std" and config["head"]["layers"] is None
    assert config["training"]["config"]["augment"] == 2 and all(e["kept"] for e in config["int8_gate"])
    prediction = model.predict(voice(1.5, f0=180, seed=1, amplitude=0.3), 16000)
    assert set(prediction.scores) == set(config["labels"])
    clip = write_wav(tmp_path / "clip.wav", voice(1.2, f0=150, seed=2, amplitude=0.2), 16000)
    result = CliRunner().invoke(app, ["predict", str(clip), "--model", "noise-robust", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["label"] in config["labels"]
    make_random_model(tmp_path / "noise-robust", seed=3)
    monkeypatch.chdir(tmp_path)
    assert emovox.load("noise-robust").labels == ["neutral", "happy", "sad", "angry"]  # the folder
    with pytest.raises(ModelError, match="no shipped model"):
        shipped_model_dir("quiet-room")
