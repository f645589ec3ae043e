"""The prosody head: eGeMAPS features of real signals, fitting against each corpus's own
statistics, its file, and its use where a profile made with `--prosody` is applied (both backends)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import emovox
from emovox.audio.load import load_audio
from emovox.cli import app
from emovox.errors import ModelError
from emovox.export.onnx import export_model
from emovox.features.prosody import N_FEATURES, cached_prosody_features, domain_statistics, prosody_features, standardise
from emovox.runtime import OnnxEmotionModel
from emovox.testing import make_synthetic_corpus, voice
from emovox.training.logistic import ABSENT
from emovox.training.profiles import DomainProfile, ProfileError, centre
from emovox.training.prosody import FILE, ProsodyHead, fit_prosody_head


def test_prosody_features_hear_pitch_and_loudness_and_leave_unmeasurable_values_at_zero(tmp_path):
    F = prosody_features([voice(1.5, f0=110, amplitude=0.1, seed=1), voice(1.5, f0=220, amplitude=0.1, seed=1),
                          voice(1.5, f0=110, amplitude=0.5, seed=1), np.zeros(800, np.float32)])
    assert F.shape == (4, N_FEATURES) and F.dtype == np.float32 and np.isfinite(F).all()
    pitch, loudness = 0, 10  # F0semitoneFrom27.5Hz_sma3nz_amean, loudness_sma3_amean
    assert F[1, pitch] - F[0, pitch] == pytest.approx(12, abs=1.5)  # an octave up: 12 semitones
    assert F[2, loudness] > 2 * F[0, loudness]
    assert not F[3].any()  # 50 ms: nothing openSMILE can measure
    path = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(path, voice(1.0, seed=3), 16000)
    cached = cached_prosody_features([path, path], cache_root=tmp_path / "cache")
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    np.testing.assert_allclose(cached[0], prosody_features([load_audio(path)])[0], rtol=1e-6)
    np.testing.assert_array_equal(cached_prosody_features([path], cache_root=tmp_path / "cache")[0], cached[1])


def _two_corpora(seed: int = 0):
    """Two corpora whose angry clips are louder than their sad ones, at levels far apart: raw, the
    quiet corpus's angry clips sit below the loud corpus's sad ones."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((200, N_FEATURES)).astype(np.float32)
    labels = np.array(["angry", "sad"] * 100)
    corpora = np.array(["quiet"] * 100 + ["loud"] * 100)
    F[labels == "angry", 10] += 2.0
    F[corpora == "loud", 10] += 10.0
    return F, labels, corpora


def test_the_head_learns_cues_relative_to_each_corpus_and_fuses_by_weight():
    F, labels, corpora = _two_corpora()
    head = fit_prosody_head(F, labels, corpora, ["angry", "neutral", "sad"], weight=0.3)
    assert head.intercept[1] == ABSENT and not head.coef[1].any()  # no neutral clip: it never wins
    for corpus in ("quiet", "loud"):
        rows = corpora == corpus
        predicted = head.probabilities(standardise(F[rows], *domain_statistics(F[rows]))).argmax(1)
        assert (np.array(head.labels)[predicted] == labels[rows]).mean() > 0.8
    new = F[corpora == "quiet"] + np.eye(N_FEATURES, dtype=np.float32)[10] * 25  # a third domain, louder still
    Z = standardise(new, *domain_statistics(new))
    probs = np.tile([0.2, 0.5, 0.3], (len(new), 1)).astype(np.float32)
    np.testing.assert_allclose(ProsodyHead(head.labels, head.coef, head.intercept, 0.0).fuse(probs, Z), probs, rtol=1e-5)
    np.testing.assert_allclose(ProsodyHead(head.labels, head.coef, head.intercept, 1.0).fuse(probs, Z),
                               head.probabilities(Z), atol=1e-6)
    fused = head.fuse(probs, Z)
    np.testing.assert_allclose(fused.sum(1), 1, atol=1e-6)
    want = np.exp(0.7 * np.log(probs) + 0.3 * np.log(np.clip(head.probabilities(Z), 1e-12, None)))
    np.testing.assert_allclose(fused, want / want.sum(1, keepdims=True), atol=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        fit_prosody_head(F[:2], ["angry", "angry"], ["a", "a"], ["angry", "sad"])
    with pytest.raises(ModelError, match="weight"):
        ProsodyHead(head.labels, head.coef, head.intercept, 1.5)


def test_the_head_file_round_trips_and_is_checked(tmp_path):
    F, labels, corpora = _two_corpora()
    head = fit_prosody_head(F, labels, corpora, ["angry", "sad"])
    entry = head.save(tmp_path)
    back = ProsodyHead.load(tmp_path, entry)
    np.testing.assert_array_equal(back.coef, head.coef)
    assert back.labels == ["angry", "sad"] and back.weight == head.weight
    with pytest.raises(ModelError, match="eGeMAPSv02"):
        ProsodyHead.load(tmp_path, {**entry, "feature_set": "ComParE"})
    with pytest.raises(ModelError, match="not the model's"):
        ProsodyHead.load(tmp_path, entry, ["sad", "angry"])
    assert ProsodyHead.load(tmp_path, entry, ["angry", "sad"]).labels == ["angry", "sad"]
    (tmp_path / FILE).write_bytes((tmp_path / FILE).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="sha256"):
        ProsodyHead.load(tmp_path, entry)


def test_profile_files_keep_prosody_statistics_and_refuse_malformed_ones(tmp_path):
    mean, std = np.arange(N_FEATURES, dtype=np.float32), np.ones(N_FEATURES, np.float32)
    profile = DomainProfile(np.zeros((2, 4), np.float32), 80, "m", "a" * 64, "", prosody_mean=mean, prosody_std=std)
    back = DomainProfile.load(profile.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.prosody_mean, mean)
    np.testing.assert_array_equal(back.prosody(mean[None] + 2), np.full((1, N_FEATURES), 2.0))
    assert DomainProfile.load(DomainProfile(np.zeros((2, 4), np.float32), 80, "m", "a" * 64, "")
                              .save(tmp_path / "old.npz")).prosody_mean is None
    bad = tmp_path / "bad.npz"
    with np.load(tmp_path / "p.npz") as data:
        np.savez(bad, mean=data["mean"], meta=data["meta"], prosody_mean=mean, prosody_std=-std)
    with pytest.raises(ProfileError, match="prosody"):
        DomainProfile.load(bad)


@pytest.fixture(scope="module")
def prosody_model(tmp_path_factory):
    corpus = make_synthetic_corpus(tmp_path_factory.mktemp("prosody_corpus"), speakers=3, takes=3, prefix="q")
    out = tmp_path_factory.mktemp("prosody_model")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "20", "--hidden", "16", "--layers", "all",
                                      "--prosody-weight", "0.5"])
    assert result.exit_code == 0, result.output
    assert "prosody head added (weight 0.5" in result.output
    return corpus, out


def test_a_model_with_a_prosody_head_mixes_it_in_only_under_a_profile(prosody_model, tmp_path, caplog):
    corpus, model_dir = prosody_model
    config = json.loads((model_dir / "config.json").read_text())
    assert config["prosody"]["weight"] == 0.5 and (model_dir / FILE).is_file()
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    result = CliRunner().invoke(app, ["profile", str(corpus), "--model", str(model_dir), "-o", str(tmp_path / "d.npz"),
                                      "--prosody"])
    assert result.exit_code == 0, result.output
    profile = DomainProfile.load(tmp_path / "d.npz")
    signals = [load_audio(f) for f in files]
    mean, std = domain_statistics(prosody_features(signals))
    np.testing.assert_allclose(profile.prosody_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(profile.prosody_std, std, rtol=1e-5)

    plain = emovox.load(model_dir)
    assert plain.prosody_head is not None
    # single clips: the heads alone
    np.testing.assert_allclose(list(plain.predict_file(files[0]).scores.values()),
                               plain.probabilities_for_features(plain.features_for_signals(signals[:1]))[0], atol=1e-6)
    # under the profile: the profile-centred heads, mixed with the prosody head on the profile's statistics
    heads = plain.probabilities_for_features(
        centre(plain.features_for_signals(signals[:1]), profile.mean, plain.reference_mean()), profiled=True)
    want = plain.prosody_head.fuse(heads, standardise(prosody_features(signals[:1]), mean, std))[0]
    profiled = emovox.load(model_dir, profile=profile)
    got = list(profiled.predict_file(files[0]).scores.values())
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, heads[0], atol=1e-3)  # the prosody head moved them

    export_model(model_dir, tmp_path / "x")
    assert json.loads((tmp_path / "x" / "config.json").read_text())["prosody"]["file"] == FILE
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    onnx_model.use_profile(profile)
    np.testing.assert_allclose(list(onnx_model.predict_file(files[0]).scores.values()), got, atol=1e-4)
    # the torch-free runtime stays torch-free with a prosody head and a profile
    script = (f"import sys, emovox; m = emovox.load({str(tmp_path / 'x')!r}, profile={str(tmp_path / 'd.npz')!r}); "
              f"print(m.predict_file({files[0]!r}).label); assert 'torch' not in sys.modules, 'torch was imported'")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={
        **os.environ, "PYTHONPATH": str(Path(emovox.__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == profiled.predict_file(files[0]).label

    # a profile without prosody statistics (the default, or an older emovox's): the heads alone, and a note
    result = CliRunner().invoke(app, ["profile", str(corpus), "--model", str(model_dir), "-o", str(tmp_path / "n.npz")])
    assert result.exit_code == 0, result.output
    without = DomainProfile.load(tmp_path / "n.npz")
    assert without.prosody_mean is None and without.prosody_std is None
    np.testing.assert_allclose(without.mean, profile.mean)
    with caplog.at_level(logging.INFO):
        plain.use_profile(without)
    assert "no prosody statistics" in caplog.text
    np.testing.assert_allclose(list(plain.predict_file(files[0]).scores.values()), heads[0], atol=1e-5)
    with pytest.raises(ProfileError, match="no prosody statistics"):
        without.prosody(prosody_features(signals[:1]))


def test_loud_signals_are_clipped_to_full_scale_not_wrapped_around():
    x = voice(1.0, seed=2, amplitude=0.9)
    loud = x * (1.5 / np.abs(x).max())  # resampling a clipped recording overshoots full scale
    F = prosody_features([np.clip(loud, -1, 32767 / 32768), loud])
    np.testing.assert_array_equal(F[0], F[1])


def test_retraining_without_prosody_removes_the_head(prosody_model, retrain_plain):
    copy = retrain_plain(*prosody_model)
    assert not (copy / FILE).exists() and "prosody" not in json.loads((copy / "config.json").read_text())
    assert emovox.load(copy).prosody_head is None
