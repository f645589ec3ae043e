"""Fine-tuning the top encoder blocks (issue 16): adapters and full tuning, the frame cache, the
model folder, ONNX export of the tuned graph, and the CLI — on tiny.en and synthetic speech."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import emovox
from emovox.cli import app
from emovox.corpora.manifest import Utterance
from emovox.encoder.tuned import TUNED_FILE, TunedTop, apply_tuned, load_tuned
from emovox.encoder.weights import load_encoder
from emovox.errors import ModelError
from emovox.features.extractor import FeatureExtractor, FeatureSettings
from emovox.features.frames import FrameCache, clip_frames, encode_below
from emovox.testing import make_synthetic_corpus, speechlike
from emovox.training.finetune import FinetuneConfig, pooled_tuned, tuned_features
from emovox.training.train import TrainConfig, load_features, train_model

ENCODER = "whisper-tiny.en"


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor(ENCODER)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_synthetic_corpus(tmp_path_factory.mktemp("ft") / "corpus", speakers=4, takes=4)
    return [Utterance(str(p), p.parent.name, p.parent.name, p.stem.split("_")[0], "synth")
            for p in sorted(root.rglob("*.wav"))]


def test_frames_and_tuned_top_reproduce_the_frozen_features(extractor, corpus):
    """Frames below block K, run through an untouched TunedTop and pooled, give the extractor's own
    features of the top states (float16 frames: within 1e-2 of the standardised scale)."""
    X = load_features(corpus[:6], extractor)
    state = extractor.encoder.config.n_layers - 1
    frames = clip_frames([u.path for u in corpus[:6]], extractor.encoder, extractor.settings, state=state)
    top = TunedTop(extractor.encoder, blocks=1, rank=4)
    again = tuned_features(top, frames, X)
    np.testing.assert_allclose(again[:, state + 1], X[:, state + 1], atol=2e-2, rtol=2e-2)
    assert np.array_equal(again[:, : state + 1], X[:, : state + 1])  # frozen states untouched


def test_long_clip_is_pooled_over_all_its_windows(extractor):
    """A 65 s clip has three 30 s windows; the tuned pooling covers all their frames, as the extractor does."""
    signal = speechlike(duration=65.0, seed=3)
    X = extractor([signal])
    state = extractor.encoder.config.n_layers - 1
    clips = encode_below(extractor.encoder, [signal], state=state)
    assert len(clips[0].windows) == 3 and clips[0].n_frames == 1500 + 1500 + 250
    top = TunedTop(extractor.encoder, blocks=1, rank=0)
    pooled = pooled_tuned(top, clips).detach().numpy()
    np.testing.assert_allclose(pooled[0, 0], X[0, state + 1], atol=2e-2, rtol=2e-2)


def test_frame_cache_round_trip(tmp_path, extractor, corpus):
    state = 2
    cache = FrameCache(extractor.settings, state, tmp_path)
    first = clip_frames([corpus[0].path], extractor.encoder, extractor.settings, state=state, cache=cache)
    assert list(cache.dir.rglob("*.npz"))
    again = clip_frames([corpus[0].path], extractor.encoder, extractor.settings, state=state, cache=cache)
    assert np.array_equal(first[0].windows[0], again[0].windows[0])
    assert again[0].windows[0].dtype == np.float16


def test_uniform_and_level_pooling_share_the_frame_cache(tmp_path, monkeypatch, extractor, corpus):
    """A level-pooled run reuses the states a uniform run cached (only the weights are added, from
    the audio) and gets exactly what a cold level-pooled run computes; a uniform read of the
    now-weighted entry gets no weights."""
    import dataclasses

    state = 2
    uniform = dataclasses.replace(extractor.settings, pooling="mean_std")
    level = dataclasses.replace(extractor.settings, pooling="level_mean_std")
    paths = [u.path for u in corpus[:3]]
    shared = FrameCache(uniform, state, tmp_path / "shared")
    assert FrameCache(level, state, tmp_path / "shared").dir == shared.dir
    clip_frames(paths, extractor.encoder, uniform, state=state, cache=shared)
    stamps = {f: f.stat().st_mtime_ns for f in shared.dir.rglob("*.npz")}
    import emovox.features.frames as frames_module

    encoded = []
    real = frames_module.encode_windows_below
    monkeypatch.setattr(frames_module, "encode_windows_below", lambda *a, **k: encoded.append(1) or real(*a, **k))
    warm = clip_frames(paths, extractor.encoder, level, state=state, cache=FrameCache(level, state, tmp_path / "shared"))
    assert not encoded  # no encoder pass: the states came from the uniform run's entries
    cold = clip_frames(paths, extractor.encoder, level, state=state, cache=FrameCache(level, state, tmp_path / "cold"))
    assert encoded
    for a, b in zip(warm, cold, strict=True):
        assert b.weights is not None and a.weights is not None
        for wa, wb, fa, fb in zip(a.weights, b.weights, a.windows, b.windows, strict=True):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(fa, fb)
    assert all(f.stat().st_mtime_ns != t for f, t in stamps.items())  # entries now hold the weights
    again = clip_frames(paths, extractor.encoder, uniform, state=state, cache=shared)
    assert all(c.weights is None for c in again)


def test_frozen_cache_key_is_unchanged_by_the_tuned_field():
    """Caches made before fine-tuning existed stay valid: an empty tuned hash is not in the key (nor is a
    false silence_context, a silence_stride of 1 or no level_band, added later by the same rule)."""
    frozen = FeatureSettings(encoder="whisper-base", encoder_sha256="abc")
    assert frozen.key() != FeatureSettings(encoder="whisper-base", encoder_sha256="abc", tuned_sha256="x").key()
    import dataclasses
    import hashlib

    later = ("tuned_sha256", "silence_context", "silence_stride", "level_band")
    fields = {k: v for k, v in dataclasses.asdict(frozen).items() if k not in later}
    assert frozen.key() == hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("rank", [4, 0])
def test_tuned_tensors_merge_into_the_encoder(rank):
    """What a model folder stores (adapters or float16 differences) rebuilds the tuned blocks' output."""
    enc = load_encoder(ENCODER)
    top = TunedTop(enc, blocks=2, rank=rank)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in top.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    x = torch.randn(1, 30, enc.config.d_model)
    expected = top(x, None)[-1]
    merged = apply_tuned(load_encoder(ENCODER), top.tuned_tensors(), scale=top.scale)
    y = x
    for block in merged.blocks[top.first :]:
        y = block(y, None)
    assert not torch.allclose(expected, enc.ln_post(enc.blocks[-1](enc.blocks[-2](x, None), None)), atol=1e-4)
    torch.testing.assert_close(merged.ln_post(y), expected, atol=5e-3 if rank == 0 else 1e-4, rtol=1e-3)


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory, extractor, corpus):
    out = tmp_path_factory.mktemp("tuned") / "model"
    config = TrainConfig(encoder=ENCODER, ensemble=2, finetune=FinetuneConfig(blocks=1, rank=4, epochs=2, lr=1e-3))
    report = train_model(corpus, out, config=config, extractor=extractor,
                         cache_root=tmp_path_factory.mktemp("cache"))
    return out, report


def test_finetuned_model_folder(tuned_model):
    out, report = tuned_model
    config = json.loads((out / "config.json").read_text())
    entry = config["encoder_tuned"]
    assert entry["kind"] == "lora" and entry["blocks"] == [3] and entry["bytes"] < 200_000
    assert config["features"]["tuned_sha256"] == entry["sha256"]
    assert report["finetuning"]["history"][0]["epoch"] == 0 and report["finetuning"]["best_epoch"] >= 0
    assert len(load_tuned(out, entry)) == 6 * 2  # one block: A and B of each of its 6 linear maps
    # the loaded model's encoder is the tuned one: its features differ from the frozen encoder's
    model = emovox.load(out)
    signal = speechlike(duration=1.0, seed=7)
    tuned = model.extractor([signal])
    frozen = FeatureExtractor(ENCODER)([signal])
    assert np.array_equal(tuned[0, :4], frozen[0, :4]) and not np.allclose(tuned[0, 4], frozen[0, 4], atol=1e-4)
    assert model.extractor.settings.tuned_sha256 == entry["sha256"]


def test_tampered_tuned_weights_are_refused(tuned_model, tmp_path):
    import shutil

    out, _ = tuned_model
    copy = tmp_path / "m"
    shutil.copytree(out, copy)
    blob = bytearray((copy / TUNED_FILE).read_bytes())
    blob[-1] ^= 1
    (copy / TUNED_FILE).write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        emovox.load(copy)


def test_finetuned_model_exports_with_its_tuned_blocks(tuned_model, tmp_path):
    """The ONNX graph carries the tuned blocks: onnxruntime's probabilities match PyTorch's."""
    from emovox.export.onnx import export_model

    out, _ = tuned_model
    config = export_model(out, tmp_path / "onnx")
    assert config["check"]["fp32_vs_torch_max_abs_prob_diff"] < 1e-4
    torch_model = emovox.load(out)
    onnx_model = emovox.load(tmp_path / "onnx")
    signal = speechlike(duration=1.5, seed=11)
    p_torch = torch_model.predict(signal, sampling_rate=16000).scores
    p_onnx = onnx_model.predict(signal, sampling_rate=16000).scores
    for label, p in p_torch.items():
        assert abs(p - p_onnx[label]) < 1e-4


def test_cli_train_finetune(tmp_path):
    root = make_synthetic_corpus(tmp_path / "c", speakers=4, takes=3)
    result = CliRunner().invoke(app, ["train", str(root), "-o", str(tmp_path / "m"), "--encoder", ENCODER,
                                      "--ensemble", "1", "--epochs", "5", "--finetune-blocks", "1",
                                      "--finetune-epochs", "1", "--finetune-rank", "0", "--finetune-lr", "1e-5"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["encoder_tuned"]["kind"] == "full"
    assert config["training"]["config"]["finetune"]["blocks"] == 1


def test_cli_train_help_documents_finetune():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "--finetune-blocks" in result.output and "--finetune-rank" in result.output


def test_finetune_with_augment_is_refused():
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment=1, finetune=FinetuneConfig(blocks=1))


def test_cli_evaluate_finetune_tunes_on_each_training_part(tmp_path):
    """Speaker k-fold with fine-tuning: the report says the blocks were tuned per training part."""
    root = make_synthetic_corpus(tmp_path / "c", speakers=4, takes=3)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(root), "--folds", "2", "--encoder", ENCODER, "--ensemble", "1",
                                      "--finetune-blocks", "1", "--finetune-epochs", "1", "--out", str(out), "--no-plots"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    entry = report["results"][0] if "results" in report else report[0]
    assert "fine-tuned with a head on each training part only" in entry["split"]
    assert 0.0 <= entry["metrics"]["ua"] <= 1.0
