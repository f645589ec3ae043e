"""The Whisper encoder port: CTranslate2 parity, weight formats, batching, the CT2 reader."""

from __future__ import annotations

import doctest
import struct

import numpy as np
import pytest
import torch

import emovox.encoder.ct2_format
import emovox.encoder.whisper
from emovox.encoder.ct2_format import parse_ct2
from emovox.encoder.mel import log_mel
from emovox.encoder.weights import load_encoder, packaged_encoder_dir, state_dict_from_hf, state_dict_from_openai
from emovox.encoder.whisper import WhisperEncoder
from emovox.errors import ModelError
from emovox.testing import speechlike


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _ct2_parity(encoder_id: str, audio: np.ndarray) -> np.ndarray:
    ctranslate2 = pytest.importorskip("ctranslate2")
    padded = np.zeros(480000, np.float32)
    padded[: len(audio)] = audio[:480000]
    mel = log_mel(padded, n_mels=80)[:, :3000]
    ct = ctranslate2.models.Whisper(str(packaged_encoder_dir(encoder_id)), device="cpu", compute_type="float32")
    ref = np.array(ct.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))
    with torch.no_grad():
        ours = load_encoder(encoder_id)(torch.from_numpy(mel[None]))[-1].numpy()
    return _cosines(ref, ours)


def test_tiny_matches_ctranslate2_on_synthetic_voice():
    cos = _cosines_min = _ct2_parity("whisper-tiny.en", speechlike(duration=3.0, f0=150.0))
    assert cos.min() >= 0.999, _cosines_min


@pytest.mark.corpora
@pytest.mark.parametrize("encoder_id", ["whisper-tiny.en", "whisper-base"])
def test_port_matches_ctranslate2_on_real_speech(encoder_id, corpora_root):
    import soundfile as sf

    audio, sr = sf.read(corpora_root / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac", dtype="float32")
    assert sr == 16000
    cos = _ct2_parity(encoder_id, audio)
    assert cos.min() >= 0.999


def test_batched_equals_one_by_one():
    torch.manual_seed(0)
    enc = load_encoder("whisper-tiny.en")
    mels = [torch.from_numpy(log_mel(speechlike(duration=d, seed=i), n_mels=80)) for i, d in enumerate([0.7, 2.0, 1.3])]
    lengths = torch.tensor([m.shape[1] for m in mels])
    batch = torch.zeros(3, 80, int(lengths.max()))
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    with torch.no_grad():
        batched = enc(batch, lengths)
        for i, m in enumerate(mels):
            single = enc(m[None])
            n = single[0].shape[1]
            for layer in (0, 2, -1):
                torch.testing.assert_close(batched[layer][i, :n], single[layer][0], atol=2e-4, rtol=1e-4)


def _tiny_encoder() -> WhisperEncoder:
    torch.manual_seed(0)
    enc = WhisperEncoder(emovox.encoder.whisper.WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=4, n_layers=2,
                                                                     n_positions=1500))
    with torch.no_grad():
        for p in enc.parameters():
            p.normal_(0, 0.1)
    return enc.eval()


def test_openai_checkpoint_loader(tmp_path):
    enc = _tiny_encoder()
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 32, "n_audio_head": 4, "n_audio_layer": 2}
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    sd["decoder.token_embedding.weight"] = torch.zeros(3, 32)
    torch.save({"dims": dims, "model_state_dict": sd}, tmp_path / "tiny.pt")
    cfg, loaded = state_dict_from_openai(tmp_path / "tiny.pt")
    assert cfg == enc.config
    assert all(torch.equal(loaded[k], v) for k, v in enc.state_dict().items())
    again = load_encoder(tmp_path / "tiny.pt")
    mel = torch.randn(1, 80, 50)
    with torch.no_grad():
        torch.testing.assert_close(again(mel)[-1], enc(mel)[-1])


def test_hugging_face_directory_loader(tmp_path):
    import json

    from safetensors.torch import save_file

    enc = _tiny_encoder()
    hf = {}
    names = {"attn_ln": "self_attn_layer_norm", "attn.query": "self_attn.q_proj", "attn.key": "self_attn.k_proj",
             "attn.value": "self_attn.v_proj", "attn.out": "self_attn.out_proj", "mlp_ln": "final_layer_norm",
             "mlp.0": "fc1", "mlp.2": "fc2"}
    for k, v in enc.state_dict().items():
        key = k.replace("positional_embedding", "embed_positions.weight").replace("ln_post.", "layer_norm.")
        key = key.replace("blocks.", "layers.")
        for ours, theirs in names.items():
            key = key.replace(f".{ours}.", f".{theirs}.")
        hf[f"model.encoder.{key}"] = v.clone()
    hf["model.decoder.embed_tokens.weight"] = torch.zeros(3, 32)
    save_file(hf, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({
        "num_mel_bins": 80, "d_model": 32, "encoder_attention_heads": 4, "encoder_layers": 2, "max_source_positions": 1500}))
    cfg, loaded = state_dict_from_hf(tmp_path)
    assert cfg == enc.config
    assert set(loaded) == set(enc.state_dict())
    mel = torch.randn(1, 80, 40)
    with torch.no_grad():
        torch.testing.assert_close(load_encoder(tmp_path)(mel)[-1], enc(mel)[-1])


def test_hidden_state_count_and_shapes():
    enc = load_encoder("whisper-tiny.en")
    with torch.no_grad():
        states = enc(torch.from_numpy(log_mel(speechlike(duration=1.0), n_mels=80))[None])
    assert len(states) == enc.n_hidden_states == 5
    assert all(s.shape == (1, 50, 384) for s in states)


def test_packaged_base_is_assembled_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path))
    directory = packaged_encoder_dir("whisper-base")
    assert (directory / "model.bin").stat().st_size == 94371840 + 50845767
    assert (directory / "config.json").is_file() and (directory / "tokenizer.json").is_file()
    mtime = (directory / "model.bin").stat().st_mtime_ns
    assert packaged_encoder_dir("whisper-base") == directory
    assert (directory / "model.bin").stat().st_mtime_ns == mtime  # not rebuilt
    # corrupt the assembled file: it is detected and rebuilt from the packages
    with open(directory / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 16)
    directory = packaged_encoder_dir("whisper-base")
    from emovox.encoder.weights import PACKAGED_ENCODERS, sha256_file

    assert sha256_file(directory / "model.bin") == PACKAGED_ENCODERS["whisper-base"].sha256


def test_unknown_encoder_and_bad_paths(tmp_path):
    with pytest.raises(ModelError, match="cannot find encoder"):
        load_encoder(tmp_path / "nothing-here")
    with pytest.raises(ModelError, match="unknown encoder"):
        packaged_encoder_dir("whisper-huge")


def test_ct2_reader_rejects_truncated_and_unknown_versions():
    def s(x):
        b = x.encode() + b"\0"
        return struct.pack("H", len(b)) + b

    arr = np.arange(4, dtype=np.float16)
    blob = (struct.pack("I", 6) + s("X") + struct.pack("I", 1) + struct.pack("I", 1) + s("w") + struct.pack("B", 1)
            + struct.pack("I", 4) + struct.pack("B", 4) + struct.pack("I", arr.nbytes) + arr.tobytes() + struct.pack("I", 0))
    assert parse_ct2(blob).tensors["w"].tolist() == [0, 1, 2, 3]
    with pytest.raises(ModelError, match="truncated"):
        parse_ct2(blob[:-8])
    with pytest.raises(ModelError, match="version"):
        parse_ct2(struct.pack("I", 1) + blob[4:])


def test_doctests():
    for module in (emovox.encoder.ct2_format, emovox.encoder.whisper):
        assert doctest.testmod(module).failed == 0


def test_silence_context_is_the_padded_window_of_silence():
    """A clip of silence at the context's level, encoded at its own length with the silence context,
    gives the states of a whole 30 s window of that silence at its positions: the context is exactly
    what the clip's frames would attend to in a padded window of silence."""
    enc = _tiny_encoder()
    level = emovox.encoder.whisper.SILENCE_LEVEL
    window = torch.full((1, 80, 3000), level)
    n = 120  # even: the stride-2 convolution's last valid frame reads only real frames
    with torch.no_grad():
        full = enc(window)
        own = enc(window, torch.tensor([n]), silence=True)
        plain = enc(window, torch.tensor([n]))
    for layer in range(len(full)):
        torch.testing.assert_close(own[layer][0, : n // 2], full[layer][0, : n // 2], atol=1e-5, rtol=1e-5)
    with_context = (own[-1][0, : n // 2] - full[-1][0, : n // 2]).abs().max()
    assert (plain[-1][0, : n // 2] - full[-1][0, : n // 2]).abs().max() > 30 * with_context  # without it they differ


def test_silence_context_batched_equals_one_by_one_and_is_computed_once():
    enc = _tiny_encoder()
    mels = [torch.randn(80, n) for n in (37, 120, 64)]
    lengths = torch.tensor([m.shape[1] for m in mels])
    batch = torch.zeros(3, 80, 120)
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    with torch.no_grad():
        batched = enc(batch, lengths, silence=True)
        for i, m in enumerate(mels):
            single = enc(m[None], silence=True)
            n = single[0].shape[1]
            torch.testing.assert_close(batched[-1][i, :n], single[-1][0], atol=1e-5, rtol=1e-5)
    before = enc.silence_context()
    assert enc.silence_context() is before  # computed once
    assert not any("silence" in k for k in enc.state_dict())  # never saved with the weights
    with torch.no_grad():
        enc.positional_embedding.add_(1.0)  # weights loaded later: computed again
    assert not torch.equal(enc.silence_context()[0][0], before[0][0])


def test_thinned_silence_context_counts_each_kept_position_stride_times():
    """With a context whose positions repeat in runs of s, attending to every s-th one counted s times (the
    log(s) bias) is exactly attending to all of them; stride 1 is the whole context; batched = one by one."""
    enc = _tiny_encoder()
    s = 4  # divides the 1500 positions (at 8 the last run is half as long as it counts)
    whole = enc.silence_context()
    repeated = [(k[:, :, ::s].repeat_interleave(s, dim=2), v[:, :, ::s].repeat_interleave(s, dim=2)) for k, v in whole]
    key = next(iter(enc._silence))
    mel = torch.randn(1, 80, 2 * 5 * s)  # the clip ends where a run of s begins
    with torch.no_grad():
        torch.testing.assert_close(enc(mel, silence=True, silence_stride=1)[-1], enc(mel, silence=True)[-1])
        strided = enc(mel, silence=True, silence_stride=s)
        assert (strided[-1] - enc(mel, silence=True)[-1]).abs().max() > 1e-4  # the real context is not runs
        enc._silence = {key: repeated}
        for a, b in zip(enc(mel, silence=True, silence_stride=s), enc(mel, silence=True), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    enc._silence = {}
    mels = [torch.randn(80, n) for n in (37, 120, 64)]
    batch = torch.zeros(3, 80, 120)
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    with torch.no_grad():
        batched = enc(batch, torch.tensor([m.shape[1] for m in mels]), silence=True, silence_stride=8)
        for i, m in enumerate(mels):
            single = enc(m[None], silence=True, silence_stride=8)
            torch.testing.assert_close(batched[-1][i, : single[-1].shape[1]], single[-1][0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="silence_stride"):
        enc(mel, silence_stride=8)  # without the context
    with pytest.raises(ValueError, match="silence_stride"):
        enc(mel, silence=True, silence_stride=0)


def test_silence_context_is_in_the_cache_key_only_when_set():
    """(tests/test_finetune.py checks that a key without it is the one caches had before it existed.)"""
    import dataclasses

    from emovox.features.extractor import FeatureSettings

    settings = FeatureSettings(encoder="whisper-base", encoder_sha256="ab", pooling="level_mean_std")
    assert dataclasses.replace(settings, silence_context=True).key() != settings.key()
    assert FeatureSettings.from_dict({**settings.to_dict(), "silence_context": True}).silence_context
    context = dataclasses.replace(settings, silence_context=True)
    assert dataclasses.replace(context, silence_stride=8).key() not in (context.key(), settings.key())
    assert FeatureSettings.from_dict({**context.to_dict(), "silence_stride": 8}).silence_stride == 8
    assert FeatureSettings.from_dict(context.to_dict()).silence_stride == 1  # a v7 config.json has no stride
