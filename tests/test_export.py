"""Export to ONNX and TorchScript: graph contract, metadata, dynamic axes, parity, int8 gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import emovox
from emovox.corpora.manifest import Utterance, write_jsonl
from emovox.errors import ModelError
from emovox.export.onnx import build_graph, export_model
from emovox.features.extractor import FeatureExtractor
from emovox.testing import speechlike, write_wav
from emovox.training.checkpoint import save_model
from emovox.training.head import EmotionHead

LABELS = ["neutral", "happy", "sad", "angry"]


def make_random_model(directory: Path, *, window: float = 0.0, seed: int = 0, layers: tuple[int, ...] | None = None,
                      pooling: str = "mean_std", silence_context: bool = False, silence_stride: int = 1,
                      level_band: tuple[float, float] | None = None) -> Path:
    """A tiny.en model with untrained but decisive heads: feature statistics from a few
    synthetic voices, random layer weights, large output weights (probabilities far from
    uniform, so parity tests mean something)."""
    extractor = FeatureExtractor("whisper-tiny.en", window=window, pooling=pooling, silence_context=silence_context,
                                 silence_stride=silence_stride, level_band=level_band)
    signals = [speechlike(duration=0.5 + 0.3 * i, f0=100 + 25 * i, seed=i, amplitude=0.05 + 0.1 * i) for i in range(6)]
    features = torch.from_numpy(extractor(signals))
    generator = torch.Generator().manual_seed(seed)
    heads = []
    for _ in range(3):
        head = EmotionHead(features.shape[1], features.shape[2], len(LABELS), hidden=32, layers=layers).eval()
        head.set_normalization(features)
        with torch.no_grad():
            head.layer_logits.copy_(torch.randn(len(head.layer_index), generator=generator))
            head.mlp[4].weight.mul_(6.0)
        heads.append(head)
    save_model(directory, heads=heads, labels=LABELS, features=extractor.settings, temperature=1.5)
    return directory


def dev_utterances(root: Path, n: int = 8) -> list[Utterance]:
    """Synthetic labelled clips (two 'emotions' by pitch and loudness) for the int8 gate."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        label = "sad" if i % 2 else "angry"
        signal = speechlike(duration=0.6 + 0.15 * i, f0=110.0 if label == "sad" else 250.0, seed=50 + i,
                            amplitude=0.1 if label == "sad" else 0.5)
        out.append(Utterance(str(write_wav(root / f"{i}.wav", signal, 16000)), label, label, f"s{i % 3}", "synthetic"))
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported")
    export_model(model_dir, out, int8=True, torchscript=True)
    return out


def test_folder_describes_itself(exported, model_dir):
    config = json.loads((exported / "config.json").read_text())
    source = json.loads((model_dir / "config.json").read_text())
    assert config["format"] == "emovox-onnx" and config["labels"] == LABELS
    assert config["sampling_rate"] == 16000 and config["features"] == source["features"]
    assert set(config["graphs"]) == {"fp32", "int8", "head", "torchscript"}
    assert config["default_variant"] == "fp32"  # int8 was not gated: written, not the default
    assert config["int8_gate"]["verified"] is False
    assert config["check"]["fp32_vs_torch_max_abs_prob_diff"] < 1e-4
    for entry in config["files"].values():
        assert (exported / entry["path"]).stat().st_size == entry["bytes"]
    assert config["files"]["int8"]["bytes"] < 0.5 * config["files"]["fp32"]["bytes"]


def test_onnx_graph_contract_and_metadata(exported):
    import onnx

    model = onnx.load(str(exported / "model.onnx"), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["labels"]) == LABELS
    assert meta["sampling_rate"] == "16000" and meta["emovox_version"] == emovox.__version__
    assert meta["encoder"] == "whisper-tiny.en" and len(meta["encoder_sha256"]) == 64
    assert json.loads(meta["feature_settings"])["window"] == 0.0

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {i.name: dims(i) for i in model.graph.input}
    outputs = {o.name: dims(o) for o in model.graph.output}
    assert inputs == {"mel": ["batch", 80, "frames"], "mel_lengths": ["batch"]}
    assert outputs["probs"] == ["batch", 4] and outputs["features"][0] == "batch"


def test_dynamic_axes_match_torch(exported, model_dir):
    """Batch sizes and lengths the export never saw; rows with padding."""
    from emovox.export.onnx import check_graph

    exported_graph = build_graph(model_dir)
    assert check_graph(exported_graph, exported / "model.onnx", shapes=((1, 10), (4, 333), (5, 1001))) < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_parity(exported, model_dir):
    graph = build_graph(model_dir).graph
    scripted = torch.jit.load(str(exported / "model.ts"))
    generator = torch.Generator().manual_seed(3)
    for batch, frames in ((1, 57), (3, 640)):
        mel = torch.randn(batch, 80, frames, generator=generator) * 0.5
        lengths = torch.tensor([frames - 20 * i for i in range(batch)])
        with torch.no_grad():
            want, got = graph(mel, lengths), scripted(mel, lengths)
        assert torch.allclose(want[0], got[0], atol=1e-6) and torch.allclose(want[1], got[1], atol=1e-5)


@pytest.mark.slow
def test_int8_gate_keeps_and_refuses(model_dir, tmp_path):
    utterances = dev_utterances(tmp_path / "dev", n=4)
    kept = export_model(model_dir, tmp_path / "kept", int8=True, evaluation=utterances, max_ua_drop=1.0)
    assert kept["int8_gate"]["kept"] and kept["default_variant"] == "int8"
    assert (tmp_path / "kept" / "model.int8.onnx").is_file()
    gate = kept["int8_gate"]
    assert gate["verified"] and gate["n"] == len(utterances) and "ua_drop_points" in gate
    # An impossible limit (UA must *rise* by 100 points) makes the gate refuse and delete int8.
    refused = export_model(model_dir, tmp_path / "refused", int8=True, evaluation=utterances, max_ua_drop=-1.0)
    assert not refused["int8_gate"]["kept"] and refused["default_variant"] == "fp32"
    assert "int8" not in refused["graphs"] and not (tmp_path / "refused" / "model.int8.onnx").exists()
    attempts = refused["int8_gate"]["attempts"]  # every recipe was tried, each drop reported
    assert [a["recipe"] for a in attempts][0] == "all" and attempts[-1]["recipe"] == "upper_fc2"
    assert attempts[0]["ua_drop_points"] == gate["ua_drop_points"]


@pytest.mark.slow
def test_int8_heads_are_quantized_gated_batch_invariant_and_removed_when_refused(model_dir, tmp_path):
    """--int8-heads: the int8 variant runs int8 head graphs on pooled features (head.int8.onnx), as
    model.int8.onnx always runs int8 heads on short clips; the gate measures them, a row's answer does
    not depend on its batch, the fp32 variant keeps the fp32 heads, and a refused gate removes every
    int8 graph."""
    import onnx

    from emovox.runtime import OnnxEmotionModel

    utterances = dev_utterances(tmp_path / "dev", n=4)
    kept = export_model(model_dir, tmp_path / "kept", int8=True, int8_heads=True, evaluation=utterances,
                        max_ua_drop=1.0)
    assert kept["graphs"]["head_int8"] == "head.int8.onnx" and kept["int8_gate"]["int8_heads"] is True
    assert kept["files"]["head_int8"]["bytes"] < kept["files"]["head"]["bytes"]
    int8, fp32 = (OnnxEmotionModel(tmp_path / "kept", variant=v) for v in ("int8", "fp32"))
    assert int8.int8_heads and not fp32.int8_heads
    signals = [speechlike(duration=0.4 + 0.2 * i, f0=120 + 30 * i, seed=i) for i in range(5)]
    features, _ = fp32.features_and_probabilities(signals)
    batch = int8.head_probabilities(features)
    alone = np.concatenate([int8.head_probabilities(features[i: i + 1]) for i in range(len(features))])
    np.testing.assert_array_equal(batch, alone)
    exact = fp32.head_probabilities(features)
    assert not np.array_equal(batch, exact) and np.abs(batch - exact).max() < 0.25
    # without --int8-heads the int8 variant's heads are the fp32 graph's, bit for bit
    plain = export_model(model_dir, tmp_path / "plain", int8=True, evaluation=utterances, max_ua_drop=1.0)
    assert "head_int8" not in plain["graphs"] and plain["int8_gate"]["int8_heads"] is False
    # the full graph's heads are int8 either way (onnxruntime renames Gemm nodes before it excludes any)
    for folder in ("kept", "plain"):
        nodes = onnx.load(tmp_path / folder / "model.int8.onnx").graph.node
        assert any(n.op_type == "MatMulInteger" and n.name.startswith("/head/") for n in nodes)
        assert not any(n.op_type in ("Gemm", "MatMul") and n.name.startswith("/head/") for n in nodes)
    np.testing.assert_array_equal(OnnxEmotionModel(tmp_path / "plain", variant="int8").head_probabilities(features),
                                  exact)
    refused = export_model(model_dir, tmp_path / "refused", int8=True, int8_heads=True, evaluation=utterances,
                           max_ua_drop=-1.0)
    assert "head_int8" not in refused["graphs"] and not (tmp_path / "refused" / "head.int8.onnx").exists()


def test_int8_default_from_recorded_evidence(model_dir, tmp_path):
    """Gate results recorded for the recipe (held-out corpora) make int8 the default only when all pass."""
    good = [{"held_out": "a", "kept": True, "ua_drop_points": 0.1}, {"held_out": "b", "kept": True, "ua_drop_points": -0.4}]
    kept = export_model(model_dir, tmp_path / "kept", int8=True, int8_evidence=good)
    assert kept["default_variant"] == "int8" and kept["int8_gate"]["verified"] == "by recipe"
    assert kept["int8_gate"]["evidence"] == good and (tmp_path / "kept" / "model.int8.onnx").is_file()
    bad = good + [{"held_out": "c", "kept": True, "ua_drop_points": 2.5}]  # over the 1-point limit
    refused = export_model(model_dir, tmp_path / "refused", int8=True, int8_evidence=bad)
    assert refused["default_variant"] == "fp32" and refused["int8_gate"]["verified"] is False
    # results gated with fp32 heads do not vouch for int8 heads, nor a profile path over the limit
    assert not export_model(model_dir, tmp_path / "h", int8=True, int8_evidence=good, int8_heads=True)["int8_gate"]["verified"]
    heads = [{**e, "int8_heads": True} for e in good]
    assert export_model(model_dir, tmp_path / "h", int8=True, int8_evidence=heads, int8_heads=True)["int8_gate"]["verified"]
    profiled = [{**good[0], "profile": {"ua_drop_points": 1.5}}]
    assert export_model(model_dir, tmp_path / "p", int8=True, int8_evidence=profiled)["default_variant"] == "fp32"


def test_shipped_export_quantizes_the_heads_when_its_evidence_did(tmp_path):
    """The shipped model's one-time export (a child process) writes int8 heads only when every
    recorded gate result was measured with them."""
    from emovox.prediction.loading import run_export

    model = make_random_model(tmp_path / "m")
    config = json.loads((model / "config.json").read_text())
    for heads in (False, True):
        evidence = [{"held_out": h, "kept": True, "ua_drop_points": 0.2, "int8_heads": heads} for h in "ab"]
        (model / "config.json").write_text(json.dumps({**config, "int8_gate": evidence}))
        run_export(model, tmp_path / f"x{heads}")
        exported = json.loads((tmp_path / f"x{heads}" / "config.json").read_text())
        assert exported["default_variant"] == "int8" and ("head_int8" in exported["graphs"]) is heads


def test_export_cli_with_eval_manifest(model_dir, tmp_path):
    from emovox.cli import app

    manifest = write_jsonl(dev_utterances(tmp_path / "dev", n=4), tmp_path / "dev.jsonl")
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["export", str(model_dir), str(out), "--int8", "--eval-manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["int8_gate"]["verified"] and (out / "model.onnx").is_file()


def test_export_rejects_a_folder_without_model(tmp_path):
    with pytest.raises(ModelError):
        export_model(tmp_path, tmp_path / "out")


def test_window30_model_parity(tmp_path):
    """A model trained on Whisper's padded 30 s windows: the graph sees the padding unmasked."""
    model_dir = make_random_model(tmp_path / "w30", window=30.0)
    out = tmp_path / "w30x"
    config = export_model(model_dir, out)
    assert config["mask_padding"] is False
    signals = [speechlike(duration=1.3, f0=150, seed=4), speechlike(duration=2.2, f0=220, seed=5, amplitude=0.6)]
    want = emovox.load(model_dir).probabilities_for_signals(signals)
    got = emovox.load(out).probabilities_for_signals(signals)
    assert np.abs(want - got).max() < 1e-4


def test_silence_context_model_parity(tmp_path):
    """A model whose clips attend to a window of silence after them: the graph carries the context of
    the blocks it runs as constants and answers as the torch model does, fp32 and int8, short and long
    clips (a 36 s clip: two windows, the second with its own context), in one batch or one by one."""
    model_dir = make_random_model(tmp_path / "sc", layers=(2, 3), silence_context=True)
    plain_dir = make_random_model(tmp_path / "plain", layers=(2, 3))
    config = export_model(model_dir, tmp_path / "scx", int8=True)
    assert config["features"]["silence_context"] is True and config["encoder_blocks"] == "3 of 4"
    signals = [speechlike(duration=1.1, f0=130, seed=7), speechlike(duration=2.9, f0=210, seed=8, amplitude=0.5)]
    signals.append(np.concatenate(signals * 9))
    want = emovox.load(model_dir).probabilities_for_signals(signals)
    assert np.abs(want - emovox.load(plain_dir).probabilities_for_signals(signals)).max() > 1e-3  # the context counts
    fp32 = emovox.load(tmp_path / "scx")
    assert np.abs(want - fp32.probabilities_for_signals(signals)).max() < 1e-4
    assert np.abs(want[1] - fp32.probabilities_for_signals(signals[1:2])[0]).max() < 1e-4
    int8 = emovox.load(tmp_path / "scx", variant="int8")
    assert np.abs(want - int8.probabilities_for_signals(signals)).max() < 0.1
    # the int8 graph's context is thinned to every 8th position (counted 8 times); the fp32 graph's is whole
    assert config["int8_silence_stride"] == 8 and not (tmp_path / "scx" / "model.strided.tmp.onnx").exists()
    import onnx

    meta = {p.key: p.value for p in onnx.load(tmp_path / "scx" / "model.int8.onnx").metadata_props}
    assert meta["silence_stride"] == "8" and "silence_stride" not in {
        p.key for p in onnx.load(tmp_path / "scx" / "model.onnx").metadata_props}
    assert (tmp_path / "scx" / "model.int8.onnx").stat().st_size < 0.5 * (tmp_path / "scx" / "model.onnx").stat().st_size


def test_thinned_silence_context_model_parity(tmp_path):
    """A model whose settings thin the context (silence_stride 8): the fp32 graph carries only the kept
    positions and answers as the torch model does; the int8 graph, at the same stride, is quantized from it
    directly (no thinner graph in between); a stride above int8's is kept by the int8 graph."""
    model_dir = make_random_model(tmp_path / "sc8", layers=(2, 3), silence_context=True, silence_stride=8)
    whole_dir = make_random_model(tmp_path / "sc", layers=(2, 3), silence_context=True)
    config = export_model(model_dir, tmp_path / "sc8x", int8=True)
    whole = export_model(whole_dir, tmp_path / "scx")
    assert config["features"]["silence_stride"] == 8 and config["int8_silence_stride"] == 8
    assert "int8_silence_stride" not in whole
    signals = [speechlike(duration=1.1, f0=130, seed=7), speechlike(duration=2.9, f0=210, seed=8, amplitude=0.5)]
    want = emovox.load(model_dir).probabilities_for_signals(signals)
    assert np.abs(want - emovox.load(whole_dir).probabilities_for_signals(signals)).max() > 1e-4  # the stride counts
    assert np.abs(want - emovox.load(tmp_path / "sc8x").probabilities_for_signals(signals)).max() < 1e-4
    assert np.abs(want - emovox.load(tmp_path / "sc8x", variant="int8").probabilities_for_signals(signals)).max() < 0.1
    # the context's constants are an eighth of the whole one's: 3 blocks run, keys and values of 1500 x 384 each
    saved = (tmp_path / "scx" / "model.onnx").stat().st_size - (tmp_path / "sc8x" / "model.onnx").stat().st_size
    assert saved > 0.95 * 3 * 2 * 1500 * 384 * 4 * 7 / 8
    sc16 = make_random_model(tmp_path / "sc16", layers=(2, 3), silence_context=True, silence_stride=16)
    assert export_model(sc16, tmp_path / "sc16x", int8=True)["int8_silence_stride"] == 16


def test_level_band_model_parity(tmp_path):
    """A model whose settings bring each clip's level into a band: the torch-free runtime (fp32 and int8, whose
    calibration hears banded clips) answers as the torch model does, and a clip recorded 20 dB quieter, both below
    the band, gets the same answer from every backend, which it does not without the band."""
    model_dir = make_random_model(tmp_path / "band", layers=(2, 3), level_band=(-26.0, -14.0))
    plain_dir = make_random_model(tmp_path / "plain", layers=(2, 3))
    config = export_model(model_dir, tmp_path / "bandx", int8=True)
    assert list(config["features"]["level_band"]) == [-26.0, -14.0]
    quiet = speechlike(duration=1.6, f0=170, seed=9, amplitude=0.02)
    signals = [quiet, quiet * np.float32(0.1), speechlike(duration=2.4, f0=230, seed=4, amplitude=0.9)]
    want = emovox.load(model_dir).probabilities_for_signals(signals)
    assert np.abs(want[0] - want[1]).max() < 1e-3
    plain = emovox.load(plain_dir).probabilities_for_signals(signals)
    assert np.abs(plain[0] - plain[1]).max() > 0.02, np.abs(plain[0] - plain[1]).max()
    got = emovox.load(tmp_path / "bandx").probabilities_for_signals(signals)
    assert np.abs(want - got).max() < 1e-4
    int8 = emovox.load(tmp_path / "bandx", variant="int8").probabilities_for_signals(signals)
    assert np.abs(want - int8).max() < 0.1 and np.abs(int8[0] - int8[1]).max() < 0.01  # int8: activation ranges per call


def test_blocks_no_head_reads_are_pruned(tmp_path):
    """Heads reading state 2 of tiny.en's 5: the graph runs 2 of 4 blocks, same probabilities."""
    model_dir = make_random_model(tmp_path / "l2", layers=(1, 2))
    config = export_model(model_dir, tmp_path / "l2x")
    assert config["n_states"] == 3 and config["encoder_blocks"] == "2 of 4"
    signals = [speechlike(duration=1.1, f0=130, seed=7), speechlike(duration=2.9, f0=210, seed=8, amplitude=0.5)]
    want = emovox.load(model_dir).probabilities_for_signals(signals)
    got = emovox.load(tmp_path / "l2x").probabilities_for_signals(signals + [np.concatenate(signals * 9)])
    assert np.abs(want - got[:2]).max() < 1e-4
    long_want = emovox.load(model_dir).probabilities_for_signals([np.concatenate(signals * 9)])  # 36 s: head.onnx path
    assert np.abs(long_want - got[2:]).max() < 1e-4
