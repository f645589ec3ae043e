"""Augmented training copies: deterministic, cached, different from the originals, wired into
`emovox train --augment` and `emovox evaluate --augment`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.audio.augment import RECIPE, AugmentRecipe, augment, augmented_features, copy_key, mask, mix_at_snr, reverberate
from emovox.cli import app
from emovox.features.extractor import FeatureCache, FeatureExtractor, extract_files
from emovox.testing import make_synthetic_corpus, speechlike


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_synthetic_corpus(tmp_path_factory.mktemp("aug_corpus"), speakers=3, takes=3, prefix="g")


def test_augment_is_deterministic_per_seed_and_changes_the_signal():
    x = speechlike(duration=1.0, seed=2)
    a, b, c = augment(x, seed=7), augment(x, seed=7), augment(x, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.dtype == np.float32 and np.abs(a).max() <= 1.0


def test_mix_at_snr_sets_the_noise_power():
    rng = np.random.default_rng(0)
    signal, noise = rng.standard_normal(16000).astype(np.float32), rng.standard_normal(8000).astype(np.float32)
    for snr in (0.0, 10.0, 20.0):
        added = mix_at_snr(signal, noise, snr) - signal
        assert 10 * np.log10(np.mean(signal**2) / np.mean(added**2)) == pytest.approx(snr, abs=1e-3)


def test_copies_are_cached_and_differ_from_the_originals(corpus, tmp_path):
    paths = sorted(str(p) for p in corpus.rglob("*.wav"))[:6]
    extractor = FeatureExtractor("whisper-tiny.en")
    cache = FeatureCache(extractor.settings, tmp_path / "cache")
    original = extract_files(paths, extractor, cache=cache)
    first = augmented_features(paths, extractor, copies=2, babble_pool=paths, cache=cache)
    assert first.shape == (2, len(paths), *extractor.feature_shape)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3 * len(paths)  # originals + two copies each

    def fail(*args, **kwargs):
        raise AssertionError("the second call must read every copy from the cache")

    extractor.__call__ = fail  # type: ignore[method-assign]
    again = augmented_features(paths, extractor, copies=2, babble_pool=paths, cache=cache)
    np.testing.assert_allclose(first, again, rtol=2e-3, atol=2e-3)  # the cache stores float16
    assert not np.allclose(first[0], original) and not np.allclose(first[0], first[1])


def test_train_cli_records_augmentation(corpus, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--epochs", "20", "--hidden", "16", "--augment", "1"])
    assert result.exit_code == 0, result.output
    augmentation = json.loads((out / "config.json").read_text())["training"]["augmentation"]
    assert augmentation["copies"] == 1 and augmentation["validation"] == "original clips only"
    assert augmentation["recipe"] == RECIPE


def test_train_cli_records_room_and_mask_and_needs_copies_for_them(corpus, tmp_path):
    out = tmp_path / "model"
    args = ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en", "--ensemble", "1",
            "--epochs", "5", "--hidden", "16", "--reverb", "1", "--mask", "0.5"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--augment" in refused.output and not out.exists()
    result = CliRunner().invoke(app, [*args, "--augment", "1", "--copy-weight", "0.5"])
    assert result.exit_code == 0, result.output
    augmentation = json.loads((out / "config.json").read_text())["training"]["augmentation"]
    assert augmentation["recipe"] == AugmentRecipe(reverb=1.0, mask=0.5).tag() == RECIPE + "+room1+mask0.5"
    assert augmentation["copy_weight"] == 0.5
    quiet = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "rooms"), "--encoder",
                                     "whisper-tiny.en", "--ensemble", "1", "--epochs", "5", "--hidden", "16",
                                     "--augment", "1", "--reverb", "1", "--noise", "0"])
    assert quiet.exit_code == 0, quiet.output
    recipe = json.loads((tmp_path / "rooms" / "config.json").read_text())["training"]["augmentation"]["recipe"]
    assert recipe == AugmentRecipe(reverb=1.0, noise=0.0).tag()


def test_evaluate_cli_states_augmentation_in_the_split(corpus, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", f"folder:{corpus}", "--folds", "3", "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--augment", "1", "--out", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert "speaker-independent 3-fold" in res["split"] and "1 augmented copies" in res["split"]
    assert res["metrics"]["n"] == 18


def test_evaluate_cli_states_room_copies_in_the_split(corpus, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", f"folder:{corpus}", "--folds", "3", "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--augment", "1", "--reverb", "0.5", "--out", str(tmp_path),
                                      "--no-plots"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert "a simulated room with probability 0.5" in res["split"] and "masking" not in res["split"]
    assert "noise with probability 0.9, its babble made of utterances of other speakers" in res["split"]


def test_kfold_babble_never_uses_a_test_speaker_of_the_models_a_copy_trains(monkeypatch):
    """A copy of a fold-k clip trains only models tested on other folds: its babble must come
    from fold k's other speakers (and never from the clip's own speaker)."""
    from emovox.audio import augment as augment_module
    from emovox.corpora.manifest import Utterance
    from emovox.training.train import kfold_groups, load_augmented

    utts = [Utterance(f"/x/{s}{i}.wav", "happy", "happy", s, "c") for s in "abcdef" for i in range(2)]
    calls = []

    def record(paths, extractor, *, copies, babble_pool, cache, recipe):
        calls.append((list(paths), list(babble_pool)))
        return np.zeros((copies, len(paths), 2, 4), np.float32)

    monkeypatch.setattr(augment_module, "augmented_features", record)
    extractor = type("E", (), {"settings": None, "feature_shape": (2, 4)})()
    monkeypatch.setattr("emovox.training.train.FeatureCache", lambda *a, **k: None)
    groups = kfold_groups(utts, 3)
    assert groups == ["c/0"] * 4 + ["c/1"] * 4 + ["c/2"] * 4
    load_augmented(utts, extractor, 1, groups=groups)
    speaker = {u.path: u.speaker for u in utts}
    fold = {u.path: g for u, g in zip(utts, groups, strict=True)}
    assert sorted(p for paths, _ in calls for p in paths) == sorted(u.path for u in utts)
    for paths, pool in calls:
        assert pool and {fold[p] for p in pool} == {fold[paths[0]]}  # same fold only
        assert not {speaker[p] for p in pool} & {speaker[p] for p in paths}  # other speakers only


def _envelope_tail(signal: np.ndarray, frame: int = 160) -> float:
    """Energy after the signal's loudest 100 ms, as a share of the total: a room's decay raises it."""
    energy = np.convolve(signal.astype(np.float64) ** 2, np.ones(frame), mode="same")
    peak = int(np.argmax(energy))
    return float(energy[peak + 1600 :].sum() / energy.sum())


def test_reverberate_smears_a_click_into_a_decaying_tail_deterministically():
    click = np.zeros(16000, np.float32)
    click[800] = 1.0
    wet = reverberate(click, seed=4, min_rt60=0.6, max_rt60=0.6)
    assert len(wet) == len(click) and np.array_equal(wet, reverberate(click, seed=4, min_rt60=0.6, max_rt60=0.6))
    assert _envelope_tail(wet) > 0.01 > _envelope_tail(click)  # a dry click has no tail at all
    tail = np.abs(wet[800 + 1600 : 800 + 8000])
    assert tail[:1600].mean() > tail[-1600:].mean()  # it decays


def test_mask_silences_a_stretch_and_keeps_the_length():
    x = speechlike(duration=1.0, seed=3)
    y = mask(x, seed=5)
    assert len(y) == len(x) and np.array_equal(y, mask(x, seed=5))
    quiet = np.convolve(y**2, np.ones(160) / 160, mode="valid") < 1e-8
    assert quiet.mean() >= 0.04  # TimeMask zeroes at least 5 % of the clip (less its fades)
    assert np.array_equal(mask(x, seed=5, p=0.0), x)


def test_recipe_keeps_v2_copies_and_names_its_extras():
    x = speechlike(duration=1.0, seed=2)
    assert np.array_equal(augment(x, seed=9), augment(x, seed=9, recipe=AugmentRecipe()))  # old caches stay valid
    assert copy_key("abc", 0) == copy_key("abc", 0, AugmentRecipe())
    roomy = AugmentRecipe(reverb=1.0, mask=1.0)
    assert copy_key("abc", 0, roomy) != copy_key("abc", 0) and "room1" in roomy.tag() and "mask1" in roomy.tag()
    y = augment(x, seed=9, recipe=roomy)
    assert len(y) == len(augment(x, seed=9)) and not np.allclose(y, augment(x, seed=9))
    with pytest.raises(ValueError, match="probability"):
        AugmentRecipe(reverb=1.5)


def test_noise_probability_zero_adds_no_noise_and_needs_no_babble(monkeypatch):
    """Room-only copies: ``noise=0`` leaves silence silent (level, pitch, tempo and the room only
    scale, resample and smear what is there), while the default recipe fills it with noise for most seeds; and the
    copies no longer depend on the babble pool, so one copy serves every pool."""
    silence_then_tone = np.concatenate([np.zeros(8000, np.float32), speechlike(duration=0.5, seed=1)])
    quiet = AugmentRecipe(reverb=1.0, noise=0.0)
    for seed in range(8):
        assert np.abs(augment(silence_then_tone, seed=seed, recipe=quiet)[:4000]).max() < 1e-5  # resampling dust only
    noisy = [np.abs(augment(silence_then_tone, seed=s)[:4000]).max() > 1e-3 for s in range(8)]
    assert sum(noisy) >= 5  # p 0.9 per copy
    assert quiet.tag() != AugmentRecipe(reverb=1.0).tag() and "noise0@" in quiet.tag()
    with pytest.raises(ValueError, match="probability"):
        AugmentRecipe(noise=-0.1)

    from emovox.features import extractor as extractor_module

    keys = []

    def record(paths, extractor, *, cache, desc, transform, cache_key):
        keys.append([cache_key("d")])
        return np.zeros((len(paths), 1), np.float32)

    monkeypatch.setattr(extractor_module, "extract_files", record)

    class Stub:
        feature_shape = (1,)

    for pool in (["a.wav"] * 6, ["b.wav"] * 6):
        augmented_features(["x.wav"], Stub(), copies=1, babble_pool=pool, recipe=quiet)
        augmented_features(["x.wav"], Stub(), copies=1, babble_pool=pool, recipe=AugmentRecipe(reverb=1.0))
    assert keys[0] == keys[2] and keys[1] != keys[3]  # room-only: the pool is not in the key; with noise it is


def test_evaluate_cli_states_rooms_only_copies_in_the_split(corpus, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", f"folder:{corpus}", "--folds", "3", "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--augment", "1", "--reverb", "1", "--noise", "0",
                                      "--out", str(tmp_path), "--no-plots"])
    assert result.exit_code == 0, result.output
    (res,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert "(no noise; a simulated room with probability 1;" in res["split"] and "babble" not in res["split"]
