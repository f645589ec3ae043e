"""Compress an exported graph and check what the compression costs in accuracy.

* :func:`quantize_int8` — dynamic quantization of MatMul/Gemm weights to int8 (activations
  quantized on the fly), onnxruntime's tools; written beside the fp32 graph.
* :func:`convert_fp16` — fp16 weights (and compute), for GPUs; on CPU it is slower.
* :func:`quantize_static_int8` — static int8 (QDQ) with activation ranges calibrated on
  real clips.
* :func:`gate_int8` — the accuracy gate: UA of int8 vs fp32 on an evaluation manifest; int8
  is kept only if it loses at most ``max_ua_drop``. The drop is reported either way.

Examples:
    >>> quantize_int8("exported/model.onnx", "exported/model.int8.onnx")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .decision import restrict
from .errors import EmovoxError

log = logging.getLogger(__name__)


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike, *, per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of the MatMul and Gemm nodes (weights int8, activations
    quantized per call); everything else stays fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(os.fspath(fp32_path), os.fspath(out_path), op_types_to_quantize=["MatMul", "Gemm"],
                     per_channel=per_channel, weight_type=QuantType.QInt8,
                     nodes_to_exclude=head_nodes(fp32_path))
    return Path(out_path)


def head_nodes(path: str | os.PathLike) -> list[str]:
    """Names of the heads' nodes: they cost next to nothing, so they stay fp32."""
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.name.startswith("/head/")]


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
    """UA/WA of a loaded model (any :class:`emovox.prediction.Predictor`) on labelled utterances.

    Only utterances whose label the model knows count; the decision is among the model's
    labels that occur in the data (:func:`emovox.decision.restrict`).
    """
    from .metrics import classification_metrics

    usable = [u for u in utterances if u.label in model.labels]
    if not usable:
        raise EmovoxError(f"no evaluation utterance has a label the model knows ({', '.join(model.labels)})")
    allowed = [l for l in model.labels if l in {u.label for u in usable}]
    start = time.perf_counter()
    predicted, truth, failed = [], [], 0
    from .prediction import PredictionError

    for u, result in zip(usable, model.predict_files([u.path for u in usable], batch_size=batch_size)):
        if isinstance(result, PredictionError):
            failed += 1
            continue
        scores = restrict(result.scores, allowed)
        predicted.append(max(scores, key=scores.get))
        truth.append(u.label)
    m = classification_metrics(truth, predicted, labels=allowed)
    return {"n": m["n"], "failed": failed, "ua": round(m["ua"], 4), "wa": round(m["wa"], 4),
            "seconds": round(time.perf_counter() - start, 1), "predicted": predicted}


def gate_int8(export_dir: str | os.PathLike, utterances: Sequence, *, max_ua_drop: float = 0.01,
              device: str = "cpu", threads: int | None = None) -> dict:
    """Compare int8 with fp32 on ``utterances``; ``kept`` is False when UA drops by more than
    ``max_ua_drop`` (absolute, 0.01 = 1 point). Also reports label agreement."""
    from .runtime import OnnxEmotionModel

    results = {}
    for variant in ("fp32", "int8"):
        model = OnnxEmotionModel(export_dir, variant=variant, device=device, threads=threads)
        results[variant] = evaluate(model, utterances)
    fp32, int8 = results["fp32"], results["int8"]
    drop = fp32["ua"] - int8["ua"]
    agreement = float(np.mean([a == b for a, b in zip(fp32.pop("predicted"), int8.pop("predicted"))]))
    gate = {"kept": bool(drop <= max_ua_drop + 1e-9), "verified": True, "ua_fp32": fp32["ua"], "ua_int8": int8["ua"],
            "ua_drop_points": round(100 * drop, 2), "max_drop_points": round(100 * max_ua_drop, 2),
            "label_agreement": round(agreement, 4), "n": fp32["n"],
            "seconds_fp32": fp32["seconds"], "seconds_int8": int8["seconds"]}
    log.info("int8 gate: UA fp32 %.4f, int8 %.4f, drop %.2f points (limit %.2f): %s", fp32["ua"], int8["ua"],
             100 * drop, 100 * max_ua_drop, "kept" if gate["kept"] else "REFUSED")
    return gate


def calibration_windows(paths: Sequence[str], *, n_mels: int, window: float = 0.0, limit: int = 32) -> list:
    """Mel windows of up to ``limit`` files, for :func:`quantize_static_int8`."""
    from .audio import load_audio
    from .runtime.mel import mel_windows

    out = []
    for path in paths[:limit]:
        out += mel_windows(load_audio(path, max_duration=None), n_mels=n_mels, window=window)
    return out

