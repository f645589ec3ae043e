"""Compress an exported graph and check what the compression costs in accuracy.

* :func:`quantize_int8` — dynamic quantization of MatMul/Gemm weights to int8 (activations
  quantized on the fly), onnxruntime's tools; written beside the fp32 graph.
* :func:`convert_fp16` — fp16 weights (and compute), for GPUs; on CPU it is slower.
* :func:`quantize_static_int8` — static int8 (QDQ) with activation ranges calibrated on
  real clips.
* :func:`gate_int8` — the accuracy gate: UA of int8 vs fp32 on an evaluation manifest; int8
  is kept only if it loses at most ``max_ua_drop``. The drop is reported either way. For a model
  with profile heads the profiled path is gated too (:func:`evaluate_profiled`: a profile built
  from one half of the manifest, the other half predicted with it, each variant with its own).
  :func:`emovox.export.onnx.export_model` tries the recipes of :func:`int8_recipes` in turn (all
  int8; the layers int8 hurts most kept fp32; ...) and keeps the first that passes.

Examples:
    >>> quantize_int8("exported/model.onnx", "exported/model.int8.onnx")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from emovox.errors import EmovoxError
from emovox.prediction.decision import restrict

log = logging.getLogger(__name__)


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike, *, keep_fp32: Sequence[str] = (),
                  per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of MatMul/Gemm nodes (int8 weights per output channel,
    activations quantized per call). MatMul nodes whose names start with one of ``keep_fp32`` stay
    fp32 (the encoder's layers). The heads' layers are Gemm nodes, which onnxruntime's quantizer
    turns into MatMul under new names before it applies exclusions: they are always quantized, as
    every int8 graph emovox has shipped had them (``tests/test_export.py`` checks it)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [node.name for node in onnx.load(os.fspath(fp32_path), load_external_data=False).graph.node]
    prefixes = tuple(keep_fp32)
    quantize_dynamic(os.fspath(fp32_path), os.fspath(out_path), op_types_to_quantize=["MatMul", "Gemm"],
                     per_channel=per_channel, weight_type=QuantType.QInt8,
                     nodes_to_exclude=[n for n in names if prefixes and n.startswith(prefixes)])
    return Path(out_path)


def int8_recipes(graph, mels: Callable[[], Sequence[tuple[np.ndarray, int]]]) -> Iterator[tuple[str, list[str]]]:
    """What to keep fp32, tried in order by the gate: nothing; the layers int8 hurts most
    (:func:`sensitive_layers`); the second MLP layer (fc2) of the upper half of the blocks.

    fc2 reads GELU outputs with a few huge channels that set the per-tensor activation scale.
    In Whisper base on unseen RAVDESS speakers all-int8 lost 1.6 UA points (labels agree
    with fp32 95.4 %); keeping block 3's fc2 fp32 — the one layer the simulation flags —
    lost 0.4 (99.2 %) for 9 % more time; blocks 3-5's fc2 the same, for 28 %. ``mels`` gives
    the calibration windows of :func:`sensitive_layers`."""
    yield "all", []
    yield "sensitive", sensitive_layers(graph, mels())  # computed only if all-int8 failed
    n_blocks = len(graph.encoder.blocks)
    yield "upper_fc2", [f"/encoder/blocks.{i}/mlp/mlp.2/" for i in range(n_blocks // 2, n_blocks)]


def sensitive_layers(graph, mels: Sequence[tuple[np.ndarray, int]], *, factor: float = 4.0, limit: int = 3) -> list[str]:
    """ONNX name prefixes of the encoder layers whose int8 input hurts most.

    Each MLP and attention-output layer in turn gets its input fake-quantized as dynamic int8
    does (uint8, one scale per tensor) in the PyTorch graph; the mean change of the
    probabilities on ``mels`` (``(mel, valid_frames)`` windows) ranks them. Layers over
    ``factor`` times the median change are returned, worst first, at most ``limit``.
    """
    import torch

    def fake_quant(module, inputs):
        x = inputs[0]
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        scale = max(hi - lo, 1e-12) / 255
        zero = round(-lo / scale)
        return ((torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale,)

    def run():
        with torch.no_grad():
            return [graph(torch.from_numpy(m)[None], torch.tensor([valid]))[0] for m, valid in mels]

    reference = run()
    effects = {}
    for i, block in enumerate(graph.encoder.blocks):
        for prefix, module in ((f"/encoder/blocks.{i}/mlp/mlp.0/", block.mlp[0]),
                               (f"/encoder/blocks.{i}/mlp/mlp.2/", block.mlp[2]),
                               (f"/encoder/blocks.{i}/attn/out/", block.attn.out)):
            handle = module.register_forward_pre_hook(fake_quant)
            try:
                effects[prefix] = float(np.mean([(a - b).abs().mean() for a, b in zip(run(), reference, strict=True)]))
            finally:
                handle.remove()
    median = float(np.median(list(effects.values())))
    worst = sorted(effects, key=effects.get, reverse=True)[:limit]
    log.info("int8 sensitivity (mean |d probs|): %s", ", ".join(f"{p} {effects[p]:.1e}" for p in worst))
    return [p for p in worst if effects[p] > factor * median]


def convert_fp16(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """fp16 weights and compute, fp32 inputs and outputs (casts at the graph's edges)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(os.fspath(fp32_path)), keep_io_types=True)
    onnx.save(model, os.fspath(out_path))
    return Path(out_path)


def quantize_static_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                         calibration: Sequence[tuple[np.ndarray, int]]) -> Path:
    """Static int8 (QDQ, MatMul/Gemm) with activation ranges from ``calibration``: a list of
    ``(mel (n_mels, frames), valid_frames)`` windows of real speech."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            if item is None:
                return None
            mel, valid = item
            return {"mel": mel[None].astype(np.float32), "mel_lengths": np.array([valid], np.int64)}

    quantize_static(os.fspath(fp32_path), os.fspath(out_path), Reader(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul", "Gemm"], activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return Path(out_path)


def evaluate(model, utterances: Sequence, *, batch_size: int = 8) -> dict:
    """UA/WA of a loaded model (any :class:`emovox.prediction.predictor.Predictor`) on labelled utterances.

    Only utterances whose label the model knows count; the decision is among the model's
    labels that occur in the data (:func:`emovox.prediction.decision.restrict`).
    """
    from emovox.evaluation.metrics import classification_metrics

    usable = [u for u in utterances if u.label in model.labels]
    if not usable:
        raise EmovoxError(f"no evaluation utterance has a label the model knows ({', '.join(model.labels)})")
    allowed = [l for l in model.labels if l in {u.label for u in usable}]
    start = time.perf_counter()
    predicted, truth, failed = [], [], 0
    from emovox.prediction.result import PredictionError

    for u, result in zip(usable, model.predict_files([u.path for u in usable], batch_size=batch_size), strict=True):
        if isinstance(result, PredictionError):
            failed += 1
            continue
        scores = restrict(result.scores, allowed)
        predicted.append(max(scores, key=scores.get))
        truth.append(u.label)
    m = classification_metrics(truth, predicted, labels=allowed)
    return {"n": m["n"], "failed": failed, "ua": round(m["ua"], 4), "wa": round(m["wa"], 4),
            "seconds": round(time.perf_counter() - start, 1), "predicted": predicted}


def evaluate_profiled(model, utterances: Sequence, *, seed: int = 0, batch_size: int = 8) -> dict:
    """:func:`evaluate` of ``model`` with a domain profile, as a user makes and applies one: the
    profile (:func:`emovox.training.profiles.build_profile`, no labels) from a random half of the
    usable ``utterances``, the other half predicted with it (the model's profile heads answer).
    The halves depend on ``seed`` and the utterances only, so two variants get the same ones."""
    from emovox.training.profiles import build_profile

    usable = [u for u in utterances if u.label in model.labels]
    if len(usable) < 4:
        raise EmovoxError("a profiled evaluation needs at least 4 utterances with labels the model knows")
    order = np.random.default_rng(seed).permutation(len(usable))
    source, test = order[: len(usable) // 2], np.sort(order[len(usable) // 2 :])
    previous = model.profile
    profile, _ = build_profile(model, [usable[i].path for i in source], progress=False)
    try:
        model.use_profile(profile)
        return evaluate(model, [usable[i] for i in test], batch_size=batch_size)
    finally:
        model.use_profile(previous)


def gate_int8(export_dir: str | os.PathLike, utterances: Sequence, *, max_ua_drop: float = 0.01,
              device: str = "cpu", threads: int | None = None, fp32: dict | None = None) -> dict:
    """Compare int8 with fp32 on ``utterances``; ``kept`` is False when UA drops by more than
    ``max_ua_drop`` (absolute, 0.01 = 1 point). Also reports label agreement. ``fp32``: the
    fp32 :func:`evaluate` result of an earlier call, to reuse (it is stored in ``fp32`` of
    the returned dict, which is not JSON). A folder with profile heads (``profile_head`` graph)
    is gated on the profiled path as well (:func:`evaluate_profiled`, under ``profile``): int8 is
    kept only when neither path loses more than ``max_ua_drop``."""
    from emovox.runtime import OnnxEmotionModel

    int8_model = OnnxEmotionModel(export_dir, variant="int8", device=device, threads=threads)
    if fp32 is None:
        fp32_model = OnnxEmotionModel(export_dir, variant="fp32", device=device, threads=threads)
        fp32 = {"single": evaluate(fp32_model, utterances)}
        if "profile_head" in fp32_model.config["graphs"]:
            fp32["profile"] = evaluate_profiled(fp32_model, utterances)
    gate = {"verified": True, **_compare(fp32["single"], evaluate(int8_model, utterances)),
            "max_drop_points": round(100 * max_ua_drop, 2)}
    kept = gate["ua_drop_points"] <= 100 * max_ua_drop + 1e-7
    if "profile" in fp32:
        gate["profile"] = _compare(fp32["profile"], evaluate_profiled(int8_model, utterances))
        kept = kept and gate["profile"]["ua_drop_points"] <= 100 * max_ua_drop + 1e-7
    gate = {"kept": bool(kept), **gate, "fp32": fp32}
    log.info("int8 gate: UA fp32 %.4f, int8 %.4f, drop %.2f points%s (limit %.2f): %s", gate["ua_fp32"],
             gate["ua_int8"], gate["ua_drop_points"],
             f"; with a profile {gate['profile']['ua_drop_points']:.2f}" if "profile" in gate else "",
             100 * max_ua_drop, "kept" if gate["kept"] else "REFUSED")
    return gate


def _compare(fp32: dict, int8: dict) -> dict:
    """UA of both variants, the drop in points and how often they agree, from two :func:`evaluate` results."""
    agreement = float(np.mean([a == b for a, b in zip(fp32["predicted"], int8["predicted"], strict=False)]))
    return {"ua_fp32": fp32["ua"], "ua_int8": int8["ua"], "ua_drop_points": round(100 * (fp32["ua"] - int8["ua"]), 2),
            "label_agreement": round(agreement, 4), "n": fp32["n"], "seconds_fp32": fp32["seconds"],
            "seconds_int8": int8["seconds"]}


def calibration_windows(paths: Sequence[str], *, n_mels: int, window: float = 0.0, limit: int = 32,
                        level_band: tuple[float, float] | None = None) -> list:
    """Mel windows of up to ``limit`` files, as the model hears them, for :func:`quantize_static_int8`."""
    from emovox.audio.load import load_audio
    from emovox.encoder.mel import mel_windows

    out = []
    for path in paths[:limit]:
        out += mel_windows(load_audio(path, max_duration=None), n_mels=n_mels, window=window, level_band=level_band)
    return out

