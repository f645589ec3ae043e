"""Domain profiles (emovox.training.profiles): the estimator, skew robustness, the file, model checks,
`emovox profile` and `--profile` on both backends."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
from typer.testing import CliRunner

import emovox
from emovox.cli import app
from emovox.corpora.manifest import Utterance
from emovox.errors import EmovoxError
from emovox.export.onnx import export_model
from emovox.runtime import OnnxEmotionModel
from emovox.testing import make_synthetic_corpus
from emovox.training.fit import FitConfig
from emovox.training.profiles import NEUTRAL_SHARE, DomainProfile, ProfileError, centre, domain_mean, neutral_columns
from emovox.training.train import TrainConfig, train_ensemble

CLASSES = ["sad", "angry", "happy"]


def _domain(offset_scale: float, counts, seed: int):
    """Features: a shared class signal plus one constant offset for the whole domain."""
    rng = np.random.default_rng(seed)
    signal = np.random.default_rng(99).normal(0, 1.0, (3, 1, 16))
    offset = rng.normal(0, offset_scale, (1, 16))
    X, y = [], []
    for c, n in enumerate(counts):
        X += [signal[c] + offset + rng.normal(0, 0.6, (1, 16)) for _ in range(n)]
        y += [CLASSES[c]] * n
    return np.array(X, np.float32), y


@pytest.fixture(scope="module")
def trained():
    X, y = _domain(0.0, [60, 60, 60], seed=0)
    utts = [Utterance(f"/t/{i}.wav", label, label, str(i % 6), "train") for i, label in enumerate(y)]
    config = TrainConfig(ensemble=1, fit=FitConfig(epochs=200, patience=200, hidden=32, lr=3e-3))
    return train_ensemble(X, utts, config=config)


def _ua(ensemble, X, y):
    pred = [ensemble.labels[i] for i in ensemble.probabilities(X).argmax(1)]
    return np.mean([np.mean([p == c for p, t in zip(pred, y, strict=False) if t == c]) for c in set(y)])


def test_a_profile_removes_a_domain_offset_and_balancing_survives_skew(trained):
    reference = trained.reference_mean()
    X, y = _domain(6.0, [100, 100, 100], seed=2)  # an unseen domain: everything shifted
    raw = _ua(trained, X, y)
    plain = _ua(trained, centre(X, domain_mean(X, reference, balance=0), reference), y)
    assert raw < 0.7 and plain > 0.9  # measured 0.33 and 0.99
    # the profile from a skewed archive (80 % sad), applied to a balanced test set of the domain
    Xs, _ = _domain(6.0, [200, 25, 25], seed=2)
    skew_plain = _ua(trained, centre(X, domain_mean(Xs, reference, balance=0), reference), y)
    skew_balanced = _ua(trained, centre(X, domain_mean(Xs, reference, probabilities=trained.probabilities,
                                                       balance=1.0), reference), y)
    assert skew_balanced > skew_plain + 0.04  # measured 0.99 against 0.92


def test_the_neutral_estimator_hardly_depends_on_the_archive_mix():
    """Three archives of one unseen domain with very different mixes of emotions: the "neutral"
    estimate (heard-neutral clips make 70 %) moves far less between them than the plain mean or
    the balanced estimate, and its profiles keep the domain's clips classified."""
    X0, y0 = _domain(0.0, [60, 60, 60], seed=0)
    names = {"sad": "neutral", "angry": "angry", "happy": "happy"}  # class 0 is neutral here
    utts = [Utterance(f"/t/{i}.wav", names[label], names[label], str(i % 6), "train") for i, label in enumerate(y0)]
    model = train_ensemble(X0, utts, config=TrainConfig(ensemble=1, fit=FitConfig(epochs=200, patience=200, hidden=32,
                                                                                    lr=3e-3)))
    reference, neutral = model.reference_mean(), neutral_columns(model.labels)
    assert [model.labels[i] for i in neutral] == ["neutral"]
    mixes = ([150, 25, 25], [25, 150, 25], [25, 25, 150])
    archives = [_domain(6.0, counts, seed=3)[0] for counts in mixes]
    spread = {}
    estimators = (("plain", {"balance": 0}), ("balanced", {"balance": 0.5}), ("neutral", {"neutral": neutral}),
                  ("neutral40", {"neutral": neutral, "neutral_share": 0.4}))
    for name, kwargs in estimators:
        means = [domain_mean(A, reference, probabilities=model.probabilities, **kwargs) for A in archives]
        spread[name] = max(float(np.abs(a - b).max()) for a in means for b in means)
        if name == "neutral":
            X, y = _domain(6.0, [100, 100, 100], seed=3)
            for mean in means:
                assert _ua(model, centre(X, mean, reference), [names[t] for t in y]) > 0.9
    assert spread["neutral"] < 0.5 * spread["plain"] and spread["neutral"] < 0.7 * spread["balanced"], spread
    # a lower share anchors less: here (training a third neutral) 40 % moves as much as the plain mean
    assert spread["neutral40"] > 2 * spread["neutral"], spread  # measured 1.77 against 0.68
    with pytest.raises(ValueError, match="neutral_share"):
        domain_mean(archives[0], reference, probabilities=model.probabilities, neutral=neutral, neutral_share=1.0)


def test_shrinkage_keeps_a_tiny_profile_near_the_reference():
    reference = np.zeros((1, 2), np.float32)
    X = np.full((2, 1, 2), 10.0, np.float32)
    assert np.allclose(domain_mean(X, reference, shrink_clips=0), 10.0)
    assert np.allclose(domain_mean(X, reference, shrink_clips=8), 2.0)
    reference[0, 1] = np.nan  # a state no head reads stays unread
    assert np.isnan(domain_mean(X, reference)[0, 1])
    with pytest.raises(ValueError):
        domain_mean(X, np.zeros((2, 2)))


def test_profile_file_round_trip_and_refusals(tmp_path, caplog):
    p = DomainProfile(np.ones((2, 3), np.float32), 12, "m", "abc", "enc", sources=["a.wav"])
    path = p.save(tmp_path / "prof")
    assert path.name == "prof.npz"
    with caplog.at_level(logging.WARNING):
        q = DomainProfile.load(path)
    assert "only 12 clips" in caplog.text
    assert (q.mean == p.mean).all() and (q.n_clips, q.model_sha256, q.sources) == (12, "abc", ["a.wav"])
    assert q.estimator == "balanced"  # the dataclass default: what profiles written before the field used
    assert DomainProfile.load(dataclasses.replace(p, estimator="neutral").save(tmp_path / "n.npz")).estimator == "neutral"
    assert q.neutral_share is None  # balanced profiles have no neutral share
    shared = DomainProfile.load(dataclasses.replace(p, estimator="neutral", neutral_share=0.4).save(tmp_path / "s.npz"))
    assert (shared.estimator, shared.neutral_share) == ("neutral", 0.4)
    # a "neutral" profile written before the share was recorded was made at 0.7
    meta = {"format": "emovox-profile/1", "n_clips": 80, "model_id": "m", "model_sha256": "abc", "encoder_sha256": "enc",
            "estimator": "neutral"}
    np.savez(tmp_path / "old.npz", mean=np.ones((2, 3), np.float32), meta=np.array(json.dumps(meta)))
    assert DomainProfile.load(tmp_path / "old.npz").neutral_share == 0.7
    q.check("abc", "enc")
    with pytest.raises(ProfileError, match="made for model 'm'"):
        q.check("other", "enc")
    with pytest.raises(ProfileError, match="made for model"):
        q.check("abc", "another-encoder")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ProfileError, match="cannot read"):
        DomainProfile.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "pickle.npz", mean=np.array([object()], dtype=object))
    with pytest.raises(ProfileError):
        DomainProfile.load(tmp_path / "pickle.npz")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    corpus = make_synthetic_corpus(tmp_path_factory.mktemp("profile_corpus"), speakers=3, takes=3, prefix="p")
    out = tmp_path_factory.mktemp("profile_model")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "20", "--hidden", "16", "--layers", "all"])
    assert result.exit_code == 0, result.output
    return corpus, out


def test_profile_cli_and_both_backends(small_model, tmp_path):
    corpus, model_dir = small_model
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    result = CliRunner().invoke(app, ["profile", str(corpus), str(tmp_path / "broken.wav"), "--model", str(model_dir),
                                      "-o", str(tmp_path / "domain.npz")])
    assert result.exit_code == 0, result.output
    assert f"profile of {len(files)} clips" in result.output and "1 files skipped" in result.output
    assert "clips; 50 or more are recommended" in result.output
    profile = DomainProfile.load(tmp_path / "domain.npz")
    torch_model = emovox.load(model_dir, profile=profile)
    export_model(model_dir, tmp_path / "x")
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    assert onnx_model.fingerprint() == torch_model.fingerprint() == profile.model_sha256
    onnx_model.use_profile(tmp_path / "domain.npz")
    a = torch_model.predict_file(files[0])
    b = onnx_model.predict_file(files[0])
    assert a.label == b.label
    np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-4)
    # what the profile does, computed by hand: the archive's spread around the profile mean (shrunk by 10
    # pseudo-clips toward the training corpora's within-corpus spread, which `emovox train` stored), half way
    plain = emovox.load(model_dir)
    assert plain.profile_spread is not None and plain.profile_spread.power == 0.5 and profile.spread_power == 0.5
    archive = plain.features_for_signals([emovox.audio.load.load_audio(f) for f in files])
    training = plain.profile_spread.spread
    spread = np.sqrt((((archive - profile.mean) ** 2).sum(0) + 10 * training ** 2) / (len(files) + 10))
    np.testing.assert_allclose(profile.scale, (training / spread) ** 0.5, rtol=1e-4)
    features = archive[:1]
    moved = (features - profile.mean) * profile.scale + plain.reference_mean()
    want = plain.probabilities_for_features(moved, profiled=True)[0]
    np.testing.assert_allclose(list(a.scores.values()), want, atol=1e-5)
    assert not np.allclose(list(plain.predict_file(files[0]).scores.values()), want, atol=1e-4)
    centred = plain.probabilities_for_features(centre(features, profile.mean, plain.reference_mean()), profiled=True)[0]
    # the archive is the training corpus here, so its scale is near 1: a scale far from it, on both backends
    stretched = dataclasses.replace(profile, scale=profile.scale * 3)
    want3 = plain.probabilities_for_features((features - profile.mean) * stretched.scale + plain.reference_mean(),
                                             profiled=True)[0]
    assert not np.allclose(centred, want3, atol=1e-3)
    for model in (torch_model, onnx_model):
        model.use_profile(stretched)
        np.testing.assert_allclose(list(model.predict_file(files[0]).scores.values()), want3, atol=1e-4)
    # the export carries the spread: a profile built on it scales as the model's does
    from_onnx, _ = emovox.training.profiles.build_profile(onnx_model, files, progress=False)
    np.testing.assert_allclose(from_onnx.scale, profile.scale, rtol=1e-3)
    # --no-scale: centring only (what profiles did before v6.5), and such profiles still apply
    result = CliRunner().invoke(app, ["profile", str(corpus), "--model", str(model_dir), "--no-scale",
                                      "-o", str(tmp_path / "centred.npz")])
    assert result.exit_code == 0, result.output
    centred_profile = DomainProfile.load(tmp_path / "centred.npz")
    assert centred_profile.scale is None and np.allclose(centred_profile.mean, profile.mean)
    plain.use_profile(centred_profile)
    np.testing.assert_allclose(list(plain.predict_file(files[0]).scores.values()), centred, atol=1e-5)


def test_training_stores_the_corpora_spread_and_power_zero_stores_none(small_model, tmp_path):
    from emovox.training.profile_spread import FILE, within_corpus_spread

    corpus, model_dir = small_model
    model = emovox.load(model_dir)
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    X = model.features_for_signals([emovox.audio.load.load_audio(f) for f in files])
    np.testing.assert_allclose(model.profile_spread.spread, within_corpus_spread(X, ["one"] * len(X)), rtol=2e-2,
                               atol=1e-3)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["profile_spread"]["power"] == 0.5 and config["training"]["profile_spread"]["power"] == 0.5
    out = tmp_path / "m"
    out.mkdir()
    (out / FILE).write_bytes(b"stale")  # a retrain without a spread leaves none behind
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(out), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "1", "--epochs", "2", "--hidden", "8", "--profile-spread-power", "0"])
    assert result.exit_code == 0, result.output
    assert not (out / FILE).exists() and "profile_spread" not in json.loads((out / "config.json").read_text())
    profile, _ = emovox.training.profiles.build_profile(emovox.load(out), files[:4], progress=False)
    assert profile.scale is None and profile.spread_power is None
    # added afterwards to that model (scripts/add_to_model.py), from the same corpus: the same spread
    from emovox.corpora import scan_corpus
    from emovox.training.train import add_profile_spread

    heads = (out / "heads.safetensors").read_bytes()
    added = add_profile_spread(out, scan_corpus("folder", corpus), power=1.0, training={"name": "with-spread"})
    assert (out / "heads.safetensors").read_bytes() == heads  # the heads untouched
    reloaded = emovox.load(out)
    assert reloaded.model_id == "with-spread" and reloaded.profile_spread.power == 1.0
    np.testing.assert_allclose(added.spread, model.profile_spread.spread, rtol=1e-5)


def test_profile_cli_estimators(small_model, tmp_path):
    corpus, model_dir = small_model  # labels sad and angry: no neutral to weigh by
    runner = CliRunner()
    for estimator in ("neutral", "balanced"):
        out = tmp_path / f"{estimator}.npz"
        result = runner.invoke(app, ["profile", str(corpus), "--model", str(model_dir), "-o", str(out),
                                     "--estimator", estimator])
        assert result.exit_code == 0, result.output
        assert DomainProfile.load(out).estimator == "balanced"
        assert ("no neutral or calm label" in result.output) == (estimator == "neutral")
    result = runner.invoke(app, ["profile", str(corpus), "--model", str(model_dir), "-o", str(tmp_path / "x.npz"),
                                 "--estimator", "median"])
    assert result.exit_code == 2 and "--estimator must be one of neutral, balanced" in result.output
    result = runner.invoke(app, ["profile", str(corpus), "--model", str(model_dir), "-o", str(tmp_path / "x.npz"),
                                 "--neutral-share", "1.5"])
    assert result.exit_code == 2 and "neutral-share" in result.output
    with pytest.raises(ValueError, match="neutral_share"):
        emovox.training.profiles.build_profile(emovox.load(model_dir), [], neutral_share=1.0)


def test_a_profile_for_another_model_is_refused(small_model, tmp_path):
    _, model_dir = small_model
    other = DomainProfile(np.zeros_like(emovox.load(model_dir).reference_mean()), 100, "x", "0" * 64, "")
    other.save(tmp_path / "other.npz")
    with pytest.raises(ProfileError, match="made for model 'x'"):
        emovox.load(model_dir, profile=tmp_path / "other.npz")


def test_profile_option_in_predict_timeline_and_batch(small_model, tmp_path):
    import pyarrow.parquet as pq

    corpus, model_dir = small_model
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    assert CliRunner().invoke(app, ["profile", *files, "--model", str(model_dir), "-o", str(tmp_path / "d.npz")]).exit_code == 0
    want = emovox.load(model_dir, profile=tmp_path / "d.npz")
    expected = {f: want.predict_file(f) for f in files[:3]}
    runner = CliRunner()
    result = runner.invoke(app, ["predict", *files[:3], "--model", str(model_dir), "--profile", str(tmp_path / "d.npz"),
                                 "--format", "jsonl"])
    assert result.exit_code == 0, result.output

    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["label"] for r in rows] == [expected[r["path"]].label for r in rows]
    np.testing.assert_allclose([list(r["scores"].values()) for r in rows],
                               [list(expected[r["path"]].scores.values()) for r in rows], atol=1e-4)
    both = runner.invoke(app, ["predict", *files[:4], "--model", str(model_dir), "--profile", str(tmp_path / "d.npz"), "--adapt"])
    assert both.exit_code == 2 and "use one" in both.output
    tl = runner.invoke(app, ["timeline", files[0], "--model", str(model_dir), "--profile", str(tmp_path / "d.npz"),
                             "--format", "json"])
    assert tl.exit_code == 0, tl.output
    out = tmp_path / "batch"
    bt = runner.invoke(app, ["batch", str(corpus), str(out), "--model", str(model_dir), "--profile",
                             str(tmp_path / "d.npz"), "--workers", "1", "--no-progress"])
    assert bt.exit_code == 0, bt.output
    table = pq.read_table(out).to_pylist()
    by_path = {r["path"]: r for r in table}
    for f in files[:3]:
        assert by_path[f]["label"] == expected[f].label
    other = DomainProfile(np.zeros_like(want.reference_mean()), 100, "x", "0" * 64, "")
    other.save(tmp_path / "other.npz")
    refused = runner.invoke(app, ["batch", str(corpus), str(tmp_path / "b2"), "--model", str(model_dir), "--profile",
                                  str(tmp_path / "other.npz"), "--workers", "1", "--no-progress"])
    assert refused.exit_code == 2 and "made for model 'x'" in refused.output


def test_training_with_centred_corpora_keeps_the_reference_and_doubles_rows_for_both():
    from emovox.training.train import corpus_centred, training_rows

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (12, 2, 3)).astype(np.float32)
    X[6:] += 5.0  # the second corpus sits elsewhere
    utts = [Utterance(f"/c/{i}.wav", "sad", "sad", str(i % 3), "a" if i < 6 else "b") for i in range(12)]
    centred = corpus_centred(X, utts)
    np.testing.assert_allclose(centred[:6].mean(0), X.mean(0), atol=1e-5)
    np.testing.assert_allclose(centred[6:].mean(0), X.mean(0), atol=1e-5)
    np.testing.assert_allclose(centred[1:6] - centred[:5], X[1:6] - X[:5], atol=1e-5)
    both, rows = training_rows(X, utts, "both")
    assert both.shape == (24, 2, 3) and rows == utts + utts
    assert training_rows(X, utts, "")[0] is X
    with pytest.raises(ValueError, match="centre_corpora"):
        TrainConfig(centre_corpora="sideways")


def test_augmented_copies_are_centred_on_their_own_corpus_mean_and_train_with_centring():
    """A noisy copy of a corpus is moved by its own mean (what a profile built from noisy audio
    does) to the clean rows' mean; under "both" the copies come raw and centred, aligned with
    the doubled clean rows, and a whole ensemble trains on them."""
    from emovox.training.train import train_ensemble, training_copies, training_rows

    rng = np.random.default_rng(1)
    utts = [Utterance(f"/c/{i}.wav", "sad" if i % 2 else "happy", "x", str(i % 4), "a" if i < 16 else "b")
            for i in range(32)]
    X = rng.normal(0, 1, (32, 2, 3)).astype(np.float32)
    X[16:] += 3.0
    noisy = X[None] + rng.normal(2.0, 0.1, (1, 32, 2, 3)).astype(np.float32)  # a shifted copy
    copies = training_copies(noisy, X, utts, "both")
    rows, _ = training_rows(X, utts, "both")
    assert copies.shape == (1, *rows.shape)
    np.testing.assert_allclose(copies[0, :32], noisy[0])
    for corpus in (slice(32, 48), slice(48, 64)):
        np.testing.assert_allclose(copies[0, corpus].mean(0), X.mean(0), atol=1e-4)
    assert training_copies(noisy, X, utts, "") is noisy
    config = TrainConfig(ensemble=2, augment=1, centre_corpora="both",
                         fit=dataclasses.replace(TrainConfig().fit, epochs=3, hidden=8))
    ensemble = train_ensemble(X, utts, config=config, augmented=noisy)
    assert len(ensemble.heads) == 2 and ensemble.probabilities(X).shape == (32, 2)


def test_class_balanced_corpus_centring_ignores_the_label_mix():
    from emovox.training.train import corpus_centred

    X = np.array([0.0, 0.0, 0.0, 4.0, 10.0, 14.0], np.float32).reshape(6, 1, 1)
    labels = ["sad", "sad", "sad", "angry", "sad", "angry"]
    utts = [Utterance(f"/c/{i}.wav", l, l, "s", "a" if i < 4 else "b") for i, l in enumerate(labels)]
    target = X.mean()
    plain = corpus_centred(X, utts)[:, 0, 0]
    balanced = corpus_centred(X, utts, balanced=True)[:, 0, 0]
    assert np.isclose(plain[:4].mean(), target)  # corpus a's plain mean (1.0) moved onto the target
    assert np.isclose((balanced[0] + balanced[3]) / 2, target)  # its balanced mean (2.0) instead
    np.testing.assert_allclose(balanced[4:], plain[4:])  # corpus b is balanced already


def test_copy_weight_weighs_copy_rows_against_clean_rows(monkeypatch):
    """``copy_weight`` reaches the heads' loss as per-row weights: 1 for every clean row (raw and
    centred), ``copy_weight`` for every copy row, times the corpus balance when that is on too."""
    from emovox.training import train as train_module

    rng = np.random.default_rng(2)
    utts = [Utterance(f"/c/{i}.wav", "sad" if i % 2 else "happy", "x", str(i % 4), "a" if i < 24 else "b")
            for i in range(32)]
    X = rng.normal(0, 1, (32, 2, 3)).astype(np.float32)
    noisy = X[None] + 0.5
    seen = []
    real_fit = train_module.fit_head

    def spy(X_fit, y_fit, *args, sample_weights=None, **kw):
        seen.append((len(X_fit), None if sample_weights is None else np.asarray(sample_weights)))
        return real_fit(X_fit, y_fit, *args, sample_weights=sample_weights, **kw)

    monkeypatch.setattr(train_module, "fit_head", spy)
    fit = dataclasses.replace(TrainConfig().fit, epochs=2, hidden=8)
    train_module.train_ensemble(X, utts, config=TrainConfig(ensemble=1, augment=1, centre_corpora="both",
                                                            copy_weight=0.3, fit=fit), augmented=noisy)
    rows, weights = seen[-1]
    clean = rows // 2  # one copy of each clean row
    assert weights is not None and len(weights) == rows
    assert np.all(weights[:clean] == 1.0) and np.allclose(weights[clean:], 0.3)
    train_module.train_ensemble(X, utts, config=TrainConfig(ensemble=1, augment=1, copy_weight=0.3,
                                                            balance_corpora=True, fit=fit), augmented=noisy)
    rows, weights = seen[-1]
    clean = rows // 2
    assert len(set(np.round(weights[:clean], 6))) == 2  # corpus a (24 clips) and b (8) balanced
    np.testing.assert_allclose(weights[clean:], 0.3 * weights[:clean])  # each copy: 0.3 of its clip
    train_module.train_ensemble(X, utts, config=TrainConfig(ensemble=1, augment=1, fit=fit), augmented=noisy)
    assert seen[-1][1] is None  # copy_weight 1: plain rows, as before
    with pytest.raises(ValueError, match="copy_weight"):
        TrainConfig(augment=1, copy_weight=0.0)
    with pytest.raises(ValueError, match="--augment"):
        TrainConfig(copy_weight=0.5)  # no copies to weigh: refused like --reverb and --mask without copies
    with pytest.raises(ValueError, match="consistency"):
        TrainConfig(augment=1, copy_weight=0.5, fit=dataclasses.replace(fit, consistency=1.0))


def test_profile_heads_read_the_means_and_answer_only_for_profiled_audio(tmp_path):
    """A model trained with --profile-heads: the profile heads are the means-only recipe (the same
    as training on the first half of each vector), they answer only once a profile is set, build the
    profile's class balancing, travel through the model folder, and the ONNX runtime agrees."""
    corpus = make_synthetic_corpus(tmp_path / "corpus", speakers=3, takes=3, prefix="q")
    model_dir = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(model_dir), "--encoder", "whisper-tiny.en",
                                      "--ensemble", "2", "--epochs", "20", "--hidden", "16", "--layers", "all",
                                      "--profile-heads"])
    assert result.exit_code == 0, result.output
    model = emovox.load(model_dir)
    config = model.bundle.config
    assert config["profile_heads"]["n_heads"] == 2 and config["profile_heads"]["head"]["inputs"] == "mean"
    assert config["training"]["profile_heads"]["mean_val_ua"] >= 0
    files = sorted(str(p) for p in corpus.rglob("*.wav"))
    X = model.features_for_signals([emovox.audio.load.load_audio(f) for f in files])
    half = X.shape[-1] // 2
    profile_heads = model.ensemble.profile_heads
    assert profile_heads is not None
    # a profile head reads the means only: changing the std half changes nothing
    changed = X.copy()
    changed[..., half:] += 5.0
    np.testing.assert_allclose(model.probabilities_for_features(changed, profiled=True),
                               model.probabilities_for_features(X, profiled=True), atol=1e-6)
    assert not np.allclose(model.probabilities_for_features(changed), model.probabilities_for_features(X), atol=1e-3)
    # the profiled path uses the profile heads (own temperature), the single-clip path the main heads
    profile, _ = emovox.training.profiles.build_profile(model, files, progress=False)
    assert profile.scale is not None  # `emovox train` stored the corpus spread: the profile scales as well
    centred = (X[:3] - profile.mean) * profile.scale + model.reference_mean()
    want = profile_heads.probabilities(centred)
    model.use_profile(profile)
    got = np.array([list(p.scores.values()) for p in model.predict_files(files[:3])])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(want, model.ensemble.probabilities(centred), atol=1e-3)
    # the profile's weighting of the clips asked the profile heads (the default "neutral" estimator)
    weighed = domain_mean(X, model.reference_mean(), probabilities=profile_heads.probabilities,
                          neutral=neutral_columns(model.labels) or None)
    np.testing.assert_allclose(profile.mean, weighed, atol=1e-5)
    assert profile.neutral_share == (NEUTRAL_SHARE if profile.estimator == "neutral" else None)
    # exported: a profile head graph, used by the runtime for profiled audio only
    config = export_model(model_dir, tmp_path / "x")
    assert config["graphs"]["profile_head"] == "profile_head.onnx"
    assert config["check"]["profile_head_vs_torch_max_abs_prob_diff"] < 1e-5
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    np.testing.assert_allclose(onnx_model.probabilities_for_features(centred, profiled=True), want, atol=1e-5)
    np.testing.assert_allclose(onnx_model.probabilities_for_features(X[:3]), model.ensemble.probabilities(X[:3]),
                               atol=1e-3)
    onnx_model.use_profile(profile)
    np.testing.assert_allclose([list(p.scores.values()) for p in onnx_model.predict_files(files[:3])], want, atol=1e-4)
    # the int8 gate measures the profiled path too (a profile from one half, the other half tested)
    from emovox.corpora import scan_corpus

    utterances = scan_corpus("folder", corpus)
    result = CliRunner().invoke(app, ["export", str(model_dir), str(tmp_path / "q"), "--int8", "--eval", f"folder:{corpus}",
                                      "--max-ua-drop", "100"])
    assert result.exit_code == 0, result.output
    assert "with a profile (profile heads" in result.output
    gate = json.loads(result.stdout.strip().splitlines()[-1])["int8_gate"]
    assert gate["kept"] and gate["n"] == len(utterances)
    assert gate["profile"]["n"] == len(utterances) - len(utterances) // 2 and "ua_drop_points" in gate["profile"]
    refused = export_model(model_dir, tmp_path / "r", int8=True, evaluation=utterances, max_ua_drop=-1.0)
    assert not refused["int8_gate"]["kept"] and all("profile" in a for a in refused["int8_gate"]["attempts"])


def test_profile_heads_are_refused_with_a_tuned_encoder_and_need_halves():
    from emovox.training.finetune import FinetuneConfig
    from emovox.training.head import EmotionHead, HeadConfig, means_only

    with pytest.raises(ValueError, match="profile heads"):
        TrainConfig(profile_heads=True, finetune=FinetuneConfig(blocks=1))
    with pytest.raises(ValueError, match="inputs"):
        HeadConfig(2, 4, 3, inputs="std")
    head = means_only(EmotionHead(2, 4, 3, hidden=8))
    with pytest.raises(ValueError, match="already"):
        means_only(head)


def test_profile_heads_with_dimensions_give_the_same_dims_on_both_backends(tmp_path):
    """A model with the dimensional output and profile heads: under a profile, arousal and valence
    come from the profile heads on PyTorch as in the exported graph."""
    from emovox.features.extractor import FeatureExtractor
    from emovox.prediction.torch_model import EmotionModel
    from emovox.training.checkpoint import load_model_files, save_model

    rng = np.random.default_rng(0)
    labels = ["sad", "angry", "happy", "neutral"]
    utts = [Utterance(f"/t/{i}.wav", labels[i % 4], labels[i % 4], str(i % 6), "c") for i in range(96)]
    X = rng.standard_normal((96, 5, 768)).astype(np.float32)  # whisper-tiny.en's 5 states of 2 x 384
    config = TrainConfig(ensemble=1, profile_heads=True, fit=FitConfig(epochs=3, hidden=8, dimensions_weight=0.5))
    ensemble = train_ensemble(X, utts, config=config)
    assert ensemble.profile_heads is not None and ensemble.profile_heads.has_dimensions
    extractor = FeatureExtractor("whisper-tiny.en")
    save_model(tmp_path / "m", heads=ensemble.heads, labels=ensemble.labels, features=extractor.settings,
               temperature=ensemble.temperature, profile_heads=ensemble.profile_heads)
    torch_model = EmotionModel(load_model_files(tmp_path / "m"), extractor=extractor)
    _, dims = torch_model.outputs_for_features(X[:4], profiled=True)
    np.testing.assert_allclose(dims, ensemble.profile_heads.dimensions(X[:4]), atol=1e-6)
    assert not np.allclose(dims, ensemble.dimensions(X[:4]), atol=1e-4)
    export_model(tmp_path / "m", tmp_path / "x")
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    probs, onnx_dims = onnx_model.outputs_for_features(X[:4], profiled=True)
    np.testing.assert_allclose(onnx_dims, dims, atol=1e-5)
    np.testing.assert_allclose(probs, torch_model.probabilities_for_features(X[:4], profiled=True), atol=1e-5)


def test_profile_heads_are_the_means_only_recipe_trained_beside_the_main_heads():
    """--profile-heads gives exactly the ensemble that the same recipe trains on the first half of each
    state's vector (what the benchmark measured as the means-only design), and leaves the main heads as
    they are without it."""
    rng = np.random.default_rng(3)
    labels = ["sad", "angry", "happy"]
    utts = [Utterance(f"/t/{c}{i}.wav", labels[i % 3], labels[i % 3], f"{c}{i % 4}", c) for c in "ab" for i in range(36)]
    X = rng.standard_normal((72, 3, 8)).astype(np.float32)
    X[:, :, :4] += np.array([labels.index(u.label) for u in utts])[:, None, None] * 0.8
    config = TrainConfig(ensemble=2, centre_corpora="both", fit=FitConfig(epochs=8, hidden=8))
    both = train_ensemble(X, utts, config=dataclasses.replace(config, profile_heads=True))
    means = train_ensemble(X[..., :4], utts, config=config)
    alone = train_ensemble(X, utts, config=config)
    assert both.profile_heads is not None and alone.profile_heads is None
    np.testing.assert_array_equal(both.probabilities(X, profiled=True), means.probabilities(X[..., :4]))
    np.testing.assert_array_equal(both.probabilities(X), alone.probabilities(X))
    np.testing.assert_array_equal(alone.probabilities(X, profiled=True), alone.probabilities(X))


def test_profile_layers_choose_the_profile_heads_states_and_leave_the_main_heads_alone(tmp_path):
    """--profile-layers: the profile heads are the means-only recipe on those states only (as training
    with --layers on the first half), the main heads are untouched, the choice travels through the model
    folder and the exported graphs, and it is refused without profile heads or out of range."""
    from emovox.features.extractor import FeatureExtractor
    from emovox.training.checkpoint import load_model_files, save_model

    rng = np.random.default_rng(4)
    labels = ["sad", "angry", "happy"]
    utts = [Utterance(f"/t/{c}{i}.wav", labels[i % 3], labels[i % 3], f"{c}{i % 4}", c) for c in "ab" for i in range(36)]
    X = rng.standard_normal((72, 5, 768)).astype(np.float32)  # whisper-tiny.en's 5 states of 2 x 384
    X[:, :2, :384] += np.array([labels.index(u.label) for u in utts])[:, None, None] * 0.3
    config = TrainConfig(ensemble=2, centre_corpora="both", profile_heads=True, fit=FitConfig(epochs=4, hidden=8))
    chosen = train_ensemble(X, utts, config=dataclasses.replace(config, profile_layers=(0, 1)))
    plain = train_ensemble(X, utts, config=config)
    means = train_ensemble(X[..., :384], utts, config=dataclasses.replace(
        config, profile_heads=False, fit=dataclasses.replace(config.fit, layers=(0, 1))))
    assert chosen.profile_heads is not None
    assert [h.config.layers for h in chosen.profile_heads.heads] == [(0, 1), (0, 1)]
    assert all(h.config.layers is None for h in chosen.heads)
    np.testing.assert_array_equal(chosen.probabilities(X, profiled=True), means.probabilities(X[..., :384]))
    np.testing.assert_array_equal(chosen.probabilities(X), plain.probabilities(X))
    # a profile head on states 0-1 does not hear the others
    changed = X.copy()
    changed[:, 2:] += 3.0
    np.testing.assert_allclose(chosen.probabilities(changed, profiled=True), chosen.probabilities(X, profiled=True),
                               atol=1e-6)
    extractor = FeatureExtractor("whisper-tiny.en")
    save_model(tmp_path / "m", heads=chosen.heads, labels=chosen.labels, features=extractor.settings,
               temperature=chosen.temperature, profile_heads=chosen.profile_heads)
    loaded = load_model_files(tmp_path / "m").ensemble()
    assert loaded.profile_heads is not None and loaded.profile_heads.heads[0].config.layers == (0, 1)
    np.testing.assert_allclose(loaded.probabilities(X[:5], profiled=True), chosen.probabilities(X[:5], profiled=True),
                               atol=1e-6)
    export_model(tmp_path / "m", tmp_path / "x")
    onnx_model = OnnxEmotionModel(tmp_path / "x")
    np.testing.assert_allclose(onnx_model.probabilities_for_features(X[:5], profiled=True),
                               chosen.probabilities(X[:5], profiled=True), atol=1e-5)
    with pytest.raises(ValueError, match="--profile-heads"):
        TrainConfig(profile_layers=(0, 1))
    with pytest.raises(ValueError, match="indices"):
        TrainConfig(profile_heads=True, profile_layers=())
    with pytest.raises(EmovoxError, match="below the features' 5"):
        train_ensemble(X, utts, config=dataclasses.replace(config, profile_layers=(0, 5)))
    corpus = make_synthetic_corpus(tmp_path / "corpus", speakers=2, takes=1, prefix="p")
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "no"), "--encoder",
                                      "whisper-tiny.en", "--profile-layers", "0,1"])
    assert result.exit_code == 2 and "--profile-heads" in result.output and not (tmp_path / "no").exists()
    result = CliRunner().invoke(app, ["train", f"folder:{corpus}", "--out", str(tmp_path / "no"), "--encoder",
                                      "whisper-tiny.en", "--profile-heads", "--profile-layers", "0,9"])
    assert result.exit_code == 2 and "between 0 and 4" in result.output
