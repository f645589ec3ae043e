"""Level-jittered training copies (emovox.training.level_jitter, `emovox train --level-jitter`): each clip's copy
at a level drawn from its content inside the band, encoded and cached, trained on beside the clip."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.audio.level_band import levelled, loud_level
from emovox.cli import app
from emovox.corpora import scan_corpus
from emovox.features.extractor import FeatureExtractor
from emovox.testing import make_synthetic_corpus
from emovox.training import level_jitter, train
from emovox.training.level_jitter import jitter_level, jittered_features
from emovox.training.train import TrainConfig, load_features


def test_each_clip_s_level_is_drawn_from_its_content_inside_the_band():
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(200)]
    levels = [jitter_level(d, (-32.0, -10.0)) for d in digests]
    assert min(levels) >= -32 and max(levels) <= -10 and np.std(levels) > 5  # spread over the band, not one point
    assert levels == [jitter_level(d, (-32.0, -10.0)) for d in digests]  # the same copy every run
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.01
    assert round(loud_level(levelled(x, levels[0])), 3) == round(levels[0], 3)
    with pytest.raises(ValueError, match="low above high"):
        jitter_level(digests[0], (-10.0, -32.0))
    with pytest.raises(ValueError, match="low above high"):
        TrainConfig(level_jitter=(-10.0, -32.0))


def test_the_copies_are_the_clips_at_their_drawn_level_and_are_cached(tmp_path, monkeypatch):
    corpus = make_synthetic_corpus(tmp_path / "c", speakers=1, takes=2, prefix="j")
    utts = scan_corpus("folder", corpus)
    extractor = FeatureExtractor("whisper-tiny.en")
    heard = []
    real = level_jitter.levelled
    monkeypatch.setattr(level_jitter, "levelled", lambda signal, target: heard.append(target) or real(signal, target))
    copies = jittered_features(utts, extractor, (-40.0, -38.0), cache_root=tmp_path / "cache")
    plain = load_features(utts, extractor, cache_root=tmp_path / "cache")
    assert copies.shape == plain.shape and len(heard) == len(utts)
    assert all(-40 <= level <= -38 for level in heard)
    assert not np.allclose(copies, plain)  # a copy is not its clip
    again = jittered_features(utts, extractor, (-40.0, -38.0), cache_root=tmp_path / "cache")
    np.testing.assert_allclose(again, copies, rtol=1e-2, atol=1e-3)  # as the cache stores it
    assert len(heard) == len(utts)  # the second call read the cache; nothing was levelled again
    other = jittered_features(utts, extractor, (-12.0, -10.0), cache_root=tmp_path / "cache")
    assert len(heard) == 2 * len(utts) and not np.allclose(other, copies)  # another band: other copies


def test_emovox_train_trains_on_every_clip_and_its_jittered_copy(tmp_path, monkeypatch):
    corpus = make_synthetic_corpus(tmp_path / "c", speakers=3, takes=2, prefix="t")
    seen = {}
    real = train.train_ensemble

    def spy(X, utterances, *, config, augmented=None, **kwargs):
        seen["rows"], seen["copies"], seen["band"] = len(X), None if augmented is None else augmented.shape, config.level_jitter
        return real(X, utterances, config=config, augmented=augmented, **kwargs)

    monkeypatch.setattr(train, "train_ensemble", spy)
    out = tmp_path / "m"
    args = ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en", "--ensemble", "1",
            "--epochs", "3", "--hidden", "8", "--layers", "4"]
    result = CliRunner().invoke(app, [*args, "--level-jitter=-32:-10"])
    assert result.exit_code == 0, result.output
    assert seen["band"] == (-32.0, -10.0) and seen["copies"][:2] == (1, seen["rows"])
    record = json.loads((out / "config.json").read_text())["training"]
    assert record["level_jitter"]["band"] == [-32.0, -10.0] and record["config"]["level_jitter"] == [-32.0, -10.0]
    result = CliRunner().invoke(app, [*args, "--level-jitter=-10:-32"])
    assert result.exit_code == 2 and "LOW must not exceed HIGH" in result.output
