"""Export a model directory to one ONNX graph (and TorchScript) for torch-free serving.

The exported graph runs the whole model after the log-mel front end: Whisper encoder with
padding masks, per-layer mean/std pooling over each clip's valid frames, every head of the
ensemble, and their calibrated average (:meth:`emovox.training.head.Ensemble.probabilities`)::

    mel          float32 (batch, n_mels, frames)   log-mel frames (emovox.encoder.mel)
    mel_lengths  int64   (batch,)                  valid frames of each row
      → probs    float32 (batch, n_labels)         calibrated class probabilities
      → features float32 (batch, n_states, 2 d)    pooled [mean, std] of hidden states 0..k
      → weight   float32 (batch,)                  total frame weight pooled (frame count, or
                                                   level weights: emovox.audio.speech_level)
      → dims     float32 (batch, 2)                (arousal, valence) in [-1, 1], the heads' mean
                                                   (only for a model trained with --dimensions)

k is the highest state any head reads: blocks past it are not computed (a head of the shipped
model reads state 4 of Whisper base's 7, so 4 of its 6 blocks run — exact, a third less work).
Batch and frames are dynamic (frames ≤ 3000, one 30 s encoder window). Models trained with
``window=30`` see Whisper's padded 30 s windows unmasked and pool over the valid frames only,
as :class:`emovox.features.extractor.FeatureExtractor` does; ``window=0`` models mask the padding.
Models trained with ``silence_context`` carry each block's keys and values of a 30 s window of silence
(:meth:`WhisperEncoder.silence_context`, 37 MB for whisper-base) as constants of the graph: every frame
also attends to those at the positions after its clip; a model whose settings thin that context
(``silence_stride`` s: every s-th position, each counted s times, a log-count bias on its scores) carries
only those. The int8 graph thins it to at least every :data:`INT8_SILENCE_STRIDE`-th position
(``experiments/exp_silence_context.py``): the context's attention is fp32 work, as much as the int8
blocks' for a short clip. Where that is thinner than the model's own, the int8 gate compares it with the
model's fp32 graph, so it measures both.
Clips over 30 s are handled by the runtime, which merges the windows' pooled statistics and
runs ``head.onnx`` (features → probs, and dims when the model has them). A model with profile heads
(``--profile-heads``) also gets ``profile_head.onnx``, the same kind of graph over those heads, which
the runtime runs on features a domain profile centred. ``int8=True`` adds ``model.int8.onnx`` (every
MatMul/Gemm in int8, the heads' too), and ``int8_heads=True`` the head graphs in int8 as well
(``head.int8.onnx``, ``profile_head.int8.onnx``), which the int8 variant then runs on pooled features.
The folder's ``config.json`` (format ``emovox-onnx``) describes it all; the graphs carry the same facts
as ONNX metadata.

Examples:
    >>> export_model("models/ravdess", "exported/", int8=True)     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emovox._version import __version__
from emovox.audio.speech_level import level_weights
from emovox.encoder.mel import HOP_LENGTH, MAX_MEL_FRAMES
from emovox.encoder.weights import encoder_weight_hash, load_encoder, sha256_file
from emovox.encoder.whisper import WhisperEncoder
from emovox.errors import ModelError
from emovox.features.pooling import POOLINGS
from emovox.runtime.model import EXPORT_FORMAT, EXPORT_FORMAT_VERSION
from emovox.training.checkpoint import ModelBundle, load_model_files
from emovox.training.head import Ensemble
from emovox.training.linear_head import LinearHead, mix_log_probabilities
from emovox.training.profile_spread import FILE as SPREAD_FILE
from emovox.training.prosody import FILE as PROSODY_FILE

log = logging.getLogger(__name__)

OPSET = 17
FP32, INT8, HEAD, TORCHSCRIPT = "model.onnx", "model.int8.onnx", "head.onnx", "model.ts"
PROFILE_HEAD = "profile_head.onnx"  # features → probs of the profile heads (models trained with --profile-heads)
# the head graphs in int8 (export_model(int8_heads=True)): what the int8 variant runs on pooled features
HEAD_INT8, PROFILE_HEAD_INT8 = "head.int8.onnx", "profile_head.int8.onnx"
REFERENCE = "reference_mean.npy"
QUANTIZATION = "dynamic int8 MatMul/Gemm, per-channel weights"  # the int8 graphs' metadata (quantize_int8)
INT8_SILENCE_STRIDE = 8  # the int8 graph's silence context: every 8th position, counted 8 times
# config key -> (fp32 head graph, its int8 graph)
INT8_HEAD_GRAPHS = {"head_int8": (HEAD, HEAD_INT8), "profile_head_int8": (PROFILE_HEAD, PROFILE_HEAD_INT8)}
STRIDED = "model.strided.tmp.onnx"  # the thinned fp32 graph that model.int8.onnx is quantized from (removed after)


def pool_valid(states: torch.Tensor, lengths: torch.Tensor, frame_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(b, n_states, t, d)`` → ``(b, n_states, 2 d)``: mean and std over each row's first
    ``lengths`` frames, as :func:`emovox.features.pooling.mean_std_pool` gives them; each frame counted
    by ``frame_weights`` ``(b, t)`` when given (level pooling, :mod:`emovox.audio.speech_level`).

    The variance is two-pass (mean of squared deviations): exact in float32 even for
    near-constant dimensions, where E[x²] − mean² would be rounding noise."""
    valid = (torch.arange(states.shape[2], device=states.device)[None, :] < lengths[:, None]).to(states.dtype)
    if frame_weights is not None:
        w = frame_weights[:, : states.shape[2]] * valid
        weights = (w / w.sum(1, keepdim=True).clamp_min(1e-12))[:, None, :, None]
    else:
        weights = (valid / lengths.to(states.dtype)[:, None])[:, None, :, None]  # (b, 1, t, 1)
    mean = (states * weights).sum(2)
    deviation = states - mean[:, :, None, :]
    std = torch.sqrt((deviation * deviation * weights).sum(2))
    return torch.cat([mean, std], dim=-1)


class HeadGraph(nn.Module):
    """Pooled features → the ensemble's calibrated probabilities, averaged as the model says
    (``logits``: softmax of the mean logits over T; ``probs``: mean of the softmaxes); for heads
    with the dimensional output, also their mean (arousal, valence)
    (:meth:`emovox.training.head.Ensemble.dimensions`); with a ``linear`` head
    (:mod:`emovox.training.linear_head`), its log-probabilities mixed into the probabilities."""

    def __init__(self, heads: Sequence[nn.Module], temperature: float, average: str = "logits",
                 linear: LinearHead | None = None):
        super().__init__()
        if linear is not None and average != "logits":
            raise ModelError("a linear head mixes into heads that average their logits")
        self.heads = nn.ModuleList(heads)
        self.average = average
        self.linear = linear
        self.dimensions = all(getattr(head, "has_dimensions", False) for head in heads)
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature))

    def forward(self, features: torch.Tensor):
        if self.dimensions:
            outputs = [head.outputs(features) for head in self.heads]
            logits = torch.stack([o[0] for o in outputs])
            return self._probs(logits, features), torch.stack([o[1] for o in outputs]).mean(0)
        return self._probs(torch.stack([head(features) for head in self.heads]), features)

    def _probs(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if self.average != "logits":
            return torch.softmax(logits * self.inv_temperature, dim=-1).mean(0)
        probs = torch.softmax(logits.mean(0) * self.inv_temperature, dim=-1)
        if self.linear is not None:
            probs = mix_log_probabilities(probs, self.linear(features), self.linear.weight)
        return probs


class _Attention(nn.Module):
    """The encoder's attention (same weights) as plain MatMul-Softmax-MatMul with an additive bias."""

    def __init__(self, attn: nn.Module):
        super().__init__()
        self.n_heads = attn.n_heads
        self.query, self.key, self.value, self.out = attn.query, attn.key, attn.value, attn.out

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None,
                context: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``context``: more keys ``(1, h, d / h, n)``, values ``(1, h, n, d / h)`` and their bias ``(b, 1, 1, n)``,
        attended beside the clip's own frames (the silence context). One softmax over both sets of scores, written
        out so that nothing of size t x (t + n) or of the constants is copied: joining the scores, or the keys and
        values, cost a fifth of the graph's time and a short clip twice its own."""
        b, t, d = x.shape
        h = self.n_heads
        q = (self.query(x) * (d // h) ** -0.5).view(b, t, h, d // h).transpose(1, 2)
        k = self.key(x).view(b, t, h, d // h).permute(0, 2, 3, 1)
        v = self.value(x).view(b, t, h, d // h).transpose(1, 2)
        scores = q @ k if bias is None else q @ k + bias
        if context is None:
            y = torch.softmax(scores, dim=-1) @ v
        else:
            keys, values, context_bias = context
            context_scores = q @ keys + context_bias
            top = torch.maximum(scores.amax(-1, keepdim=True), context_scores.amax(-1, keepdim=True))
            own, other = torch.exp(scores - top), torch.exp(context_scores - top)
            y = (own @ v + other @ values) / (own.sum(-1, keepdim=True) + other.sum(-1, keepdim=True))
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.attn_ln, self.attn, self.mlp_ln, self.mlp = block.attn_ln, _Attention(block.attn), block.mlp_ln, block.mlp

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None,
                context: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), bias, context)
        return x + self.mlp(self.mlp_ln(x))


class ExportEncoder(nn.Module):
    """:class:`WhisperEncoder` restated for export: the same modules, parameter names and
    numbers, with two changes. The padding mask is one additive bias built once
    (``scaled_dot_product_attention`` with a boolean mask exports as IsNaN/Where guards in
    every layer, ~5 % of the int8 graph). Only the first ``n_blocks`` blocks run: states no
    head reads are not computed (exact structured pruning; the final layer norm belongs to
    the last state and is applied only when every block runs). ``silence``: the blocks' silence
    context (:meth:`WhisperEncoder.silence_context`) becomes constants of the graph."""

    def __init__(self, encoder: WhisperEncoder, n_blocks: int | None = None, *, silence: bool = False,
                 silence_stride: int = 1):
        super().__init__()
        self.config = encoder.config
        n_blocks = encoder.config.n_layers if n_blocks is None else n_blocks
        self.conv1, self.conv2 = encoder.conv1, encoder.conv2
        self.positional_embedding = encoder.positional_embedding
        self.blocks = nn.ModuleList(_Block(block) for block in encoder.blocks[:n_blocks])
        self.ln_post = encoder.ln_post if n_blocks == encoder.config.n_layers else None
        self.silence = silence
        self.silence_stride = silence_stride  # every s-th position of the context, counted s times (int8's: >= 8)
        for i, (keys, values) in enumerate(encoder.silence_context()[:n_blocks] if silence else ()):
            self.register_buffer(f"silence_keys_{i}", keys.transpose(2, 3).contiguous(), persistent=False)
            self.register_buffer(f"silence_values_{i}", values.contiguous(), persistent=False)

    @property
    def n_hidden_states(self) -> int:
        return len(self.blocks) + 1

    def forward(self, mel: torch.Tensor, mel_lengths: torch.Tensor | None) -> list[torch.Tensor]:
        x = F.gelu(self.conv1(mel))
        bias = None
        if mel_lengths is not None:
            x = x * (torch.arange(mel.shape[-1], device=mel.device)[None, :] < mel_lengths[:, None])[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if mel_lengths is not None:
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < WhisperEncoder.output_lengths(mel_lengths)[:, None]
            bias = torch.zeros(valid.shape, dtype=x.dtype).masked_fill(~valid, -1e9)[:, None, None, :]  # (b, 1, 1, t)
        x = x + self.positional_embedding[: x.shape[1]]
        if self.silence:  # the silence context counts only at the positions after each clip
            frames = WhisperEncoder.output_lengths(mel_lengths) if mel_lengths is not None else torch.full(
                (x.shape[0],), x.shape[1], device=x.device)
            stride = self.silence_stride
            before_end = torch.arange(0, self.config.n_positions, stride, device=x.device)[None, :] < frames[:, None]
            context_bias = torch.full(before_end.shape, math.log(stride), dtype=x.dtype).masked_fill(
                before_end, -1e9)[:, None, None, :]
        states = [x]
        for i, block in enumerate(self.blocks):
            context = None
            if self.silence:  # (a constant sliced: the export folds it into a constant of the thinned size)
                keys, values = getattr(self, f"silence_keys_{i}"), getattr(self, f"silence_values_{i}")
                context = (keys[..., :: self.silence_stride], values[:, :, :: self.silence_stride], context_bias)
            x = block(x, bias, context)
            states.append(x)
        if self.ln_post is not None:
            states[-1] = self.ln_post(x)
        return states


def states_read(heads: Sequence[nn.Module], n_states: int) -> int:
    """How many hidden states (0 .. k) the heads need: one past the highest any head reads."""
    used = [int(i) for head in heads for i in getattr(head, "layer_index", torch.arange(n_states))]
    return max(used) + 1


class ExportGraph(nn.Module):
    """Log-mel frames → (probs, features, weight), and dims for heads with the dimensional
    output: encoder, pooling over valid frames, heads. ``weight`` is each row's total frame
    weight (its valid frames, or their level weights), which the runtime needs to merge the
    windows of a long clip."""

    def __init__(self, encoder: WhisperEncoder, heads: Sequence[nn.Module], temperature: float, *,
                 mask_padding: bool = True, average: str = "logits", pooling: str = "mean_std",
                 also_read: Sequence[nn.Module] = (), silence: bool = False, silence_stride: int = 1,
                 linear: LinearHead | None = None):
        super().__init__()
        # the features output must hold every state that any head reads, the profile heads' and the linear head's
        # too (also_read, linear)
        readers = [*heads, *also_read, *([linear] if linear is not None else [])]
        self.encoder = ExportEncoder(encoder, n_blocks=states_read(readers, encoder.n_hidden_states) - 1,
                                     silence=silence, silence_stride=silence_stride)
        self.head = HeadGraph(heads, temperature, average, linear)
        self.mask_padding = mask_padding
        self.level = pooling == "level_mean_std"

    @property
    def output_names(self) -> list[str]:
        return ["probs", "features", "weight", *(["dims"] if self.head.dimensions else [])]

    def forward(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        states = self.encoder(mel, mel_lengths if self.mask_padding else None)
        pooled_frames = torch.clamp((mel_lengths + 1) // 2, min=1)  # stride-2 convolution
        stacked = torch.stack(states, dim=1)
        if self.level:
            frame_weights = level_weights(mel, mel_lengths)[:, : stacked.shape[2]]
            weight = frame_weights.sum(1)
        else:
            frame_weights, weight = None, pooled_frames.to(mel.dtype)
        features = pool_valid(stacked, pooled_frames, frame_weights)
        if self.head.dimensions:
            probs, dims = self.head(features)
            return probs, features, weight, dims
        return self.head(features), features, weight


@dataclasses.dataclass
class Exported:
    """What :func:`build_graph` assembled from a model directory."""

    graph: ExportGraph
    bundle: ModelBundle
    n_mels: int
    n_states: int
    dim: int


def build_graph(model_dir: str | os.PathLike) -> Exported:
    """Load a model directory and its encoder (checking the weight hash) into an :class:`ExportGraph`."""
    bundle = load_model_files(model_dir)
    settings = bundle.features
    if settings.pooling not in POOLINGS:
        raise ModelError(f"cannot export pooling {settings.pooling!r} (only {', '.join(POOLINGS)})")
    if settings.window not in (0, 30):
        raise ModelError(f"cannot export window={settings.window} (0 or 30 s)")
    if settings.silence_context and settings.window:
        raise ModelError("cannot export silence_context with a padded window")
    actual = encoder_weight_hash(settings.encoder)
    if settings.encoder_sha256 and actual != settings.encoder_sha256:
        raise ModelError(f"encoder {settings.encoder} weights ({actual[:12]}) differ from the model's "
                         f"({settings.encoder_sha256[:12]})")
    encoder = bundle.tuned_encoder() if bundle.tuned else load_encoder(settings.encoder)
    graph = ExportGraph(encoder, bundle.heads, bundle.temperature, mask_padding=not settings.window,
                        average=bundle.average, pooling=settings.pooling,
                        also_read=[*(bundle.profile_heads or ()), *([bundle.profile_linear] if bundle.profile_linear else [])],
                        silence=settings.silence_context, silence_stride=settings.silence_stride,
                        linear=bundle.linear).eval()
    cfg = encoder.config
    return Exported(graph, bundle, cfg.n_mels, graph.encoder.n_hidden_states, 2 * cfg.d_model)


def _example_inputs(n_mels: int, frames: int = 240) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    mel = torch.randn(2, n_mels, frames, generator=generator) * 0.5
    return mel, torch.tensor([frames, frames * 2 // 3])


def metadata(exported: Exported) -> dict[str, str]:
    """The facts written into every graph's ONNX metadata (all values are strings)."""
    b = exported.bundle
    return {
        "emovox_format": EXPORT_FORMAT,
        "emovox_version": __version__,
        "labels": json.dumps(b.labels),
        "sampling_rate": str(b.features.sampling_rate),
        "n_mels": str(exported.n_mels),
        "hop_length": str(HOP_LENGTH),
        "max_frames": str(MAX_MEL_FRAMES),
        "feature_settings": json.dumps(b.features.to_dict(), sort_keys=True),
        "encoder": b.features.encoder,
        "encoder_sha256": b.features.encoder_sha256,
        "encoder_tuned_sha256": b.features.tuned_sha256,
        "temperature": repr(b.temperature),
        "n_heads": str(len(b.heads)),
        "dimensions": "head" if b.has_dimensions else "circumplex",
        "front_end": "Whisper log-mel of the clip's own length (faster-whisper numpy extractor); "
                     "window=30: each 30 s chunk zero-padded before its log-mel; silence_context: constants in the graph; "
                     "level_band: each clip's speech level brought into it first (emovox.audio.level_band)",
    }


def add_metadata(path: str | os.PathLike, props: dict[str, str], *, doc: str = "") -> None:
    """Write ``props`` into an ONNX file's metadata (replacing keys already there)."""
    import onnx

    model = onnx.load(os.fspath(path))
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in keep}, **props})
    if doc:
        model.doc_string = doc
    model.producer_name, model.producer_version = "emovox", __version__
    onnx.save(model, os.fspath(path))


def export_onnx(exported: Exported, path: str | os.PathLike) -> Path:
    """Write the full graph (mel, mel_lengths → probs, features, weight, and dims when the model
    has them) with dynamic batch and frames."""
    path = Path(path)
    names = exported.graph.output_names
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks
        torch.onnx.export(
            exported.graph, _example_inputs(exported.n_mels), os.fspath(path), dynamo=False, opset_version=OPSET,
            input_names=["mel", "mel_lengths"], output_names=names,
            dynamic_axes={"mel": {0: "batch", 2: "frames"}, "mel_lengths": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        )
    add_metadata(path, metadata(exported), doc=__doc__.split("\n\n")[1])
    return path


def export_head(exported: Exported, path: str | os.PathLike, head: HeadGraph | None = None) -> Path:
    """Write the head-only graph (features → probs, and dims when the model has them) used to
    finish clips over 30 s; ``head``: another head graph over the same features (the profile heads')."""
    path = Path(path)
    head = head or exported.graph.head
    example = torch.randn(2, exported.n_states, exported.dim)
    names = ["probs", "dims"] if head.dimensions else ["probs"]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head, (example,), os.fspath(path), dynamo=False, opset_version=OPSET,
            input_names=["features"], output_names=names,
            dynamic_axes={"features": {0: "batch"}, **{n: {0: "batch"} for n in names}},
        )
    add_metadata(path, metadata(exported))
    return path


def profile_head_graph(exported: Exported) -> HeadGraph:
    """The head graph of the model's profile heads (features → probs, at their own temperature), with the linear
    head beside them mixed in when the model has one."""
    b = exported.bundle
    return HeadGraph(b.profile_heads or [], b.profile_temperature, b.average, b.profile_linear).eval()


def check_profile_head(exported: Exported, path: str | os.PathLike) -> float:
    """Largest |probs_onnx − probs_torch| of the profile head graph over random features."""
    from emovox.runtime.session import make_session

    features = torch.randn(3, exported.n_states, exported.dim, generator=torch.Generator().manual_seed(2))
    expected = exported.bundle.ensemble().probabilities(features.numpy(), profiled=True)
    got = make_session(path, device="cpu").run(["probs"], {"features": features.numpy()})[0]
    return float(np.abs(got - expected).max())


def export_torchscript(exported: Exported, path: str | os.PathLike) -> Path:
    """Trace the same graph to TorchScript (dynamic batch and frames, like the ONNX graph)."""
    path = Path(path)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(exported.graph, _example_inputs(exported.n_mels), check_trace=False)
        torch.jit.save(traced, os.fspath(path), _extra_files={"config.json": json.dumps(metadata(exported))})
    return path


def check_graph(exported: Exported, path: str | os.PathLike,
                shapes: Sequence[tuple[int, int]] = ((1, 100), (3, 517), (2, 3000))) -> float:
    """Largest |probs_onnx − probs_torch| (and |dims_onnx − dims_torch|, for a model with them)
    over random inputs of several batch sizes and lengths: proves the dynamic axes work. Rows of
    a batch get different valid lengths."""
    from emovox.runtime.session import make_session

    session = make_session(path, device="cpu")
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for batch, frames in shapes:
        mel = torch.randn(batch, exported.n_mels, frames, generator=generator) * 0.5
        lengths = torch.tensor([max(1, frames - 37 * i) for i in range(batch)])
        names = ["probs", "dims"] if exported.graph.head.dimensions else ["probs"]
        with torch.no_grad():
            out = exported.graph(mel, lengths)
            expected = [out[0].numpy()] + ([out[3].numpy()] if len(names) > 1 else [])
        got = session.run(names, {"mel": mel.numpy(), "mel_lengths": lengths.numpy()})
        worst = max(worst, *(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True)))
    return worst


def export_model(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    int8: bool = False,
    torchscript: bool = False,
    evaluation: Sequence | None = None,
    max_ua_drop: float = 0.01,
    int8_evidence: Sequence[dict] | None = None,
    int8_heads: bool = False,
    device: str = "cpu",
    threads: int | None = None,
) -> dict:
    """Export ``model_dir`` into ``out_dir``; returns the folder's config (also its config.json).

    Args:
        model_dir: a model directory (config.json + heads.safetensors).
        out_dir: the folder to write (created; files of an earlier export are replaced).
        int8: also write ``model.int8.onnx`` (dynamic quantization of MatMul/Gemm).
        torchscript: also write ``model.ts``.
        evaluation: utterances (:class:`emovox.corpora.manifest.Utterance`) for the int8 accuracy
            gate: int8 is kept only if its UA drops by at most ``max_ua_drop`` against fp32.
            Without them int8 is written but stays off by default (``default_variant`` fp32).
        max_ua_drop: largest accepted UA loss of int8 (0.01 = 1 point).
        int8_evidence: without ``evaluation``, gate results measured earlier for this model's
            training recipe (models trained the same way with one corpus held out, each gated on
            the corpus it never saw; stored under ``int8_gate`` in a model's config.json). int8
            becomes the default when every one of them kept int8 within ``max_ua_drop``.
        int8_heads: also write ``head.int8.onnx`` (and ``profile_head.int8.onnx``), which the int8
            variant then runs on pooled features (clips over 30 s, profiled audio), as it runs the
            int8 heads inside ``model.int8.onnx`` on short clips; the gate measures them. Otherwise
            those paths run the fp32 head graphs.
        device: where the gate's evaluation runs.
        threads: CPU threads of the gate's evaluation.
    """
    started = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (FP32, INT8, HEAD, PROFILE_HEAD, HEAD_INT8, PROFILE_HEAD_INT8, TORCHSCRIPT, REFERENCE):
        (out / name).unlink(missing_ok=True)
    exported = build_graph(model_dir)
    export_onnx(exported, out / FP32)
    export_head(exported, out / HEAD)
    graphs = {"fp32": FP32, "head": HEAD}
    check = {"fp32_vs_torch_max_abs_prob_diff": check_graph(exported, out / FP32)}
    if exported.bundle.profile_heads:
        graphs["profile_head"] = export_head(exported, out / PROFILE_HEAD, profile_head_graph(exported)).name
        check["profile_head_vs_torch_max_abs_prob_diff"] = check_profile_head(exported, out / PROFILE_HEAD)
    log.info("exported %s; max |probs onnx - torch| %.2e", out / FP32, check["fp32_vs_torch_max_abs_prob_diff"])
    if torchscript:
        export_torchscript(exported, out / TORCHSCRIPT)
        graphs["torchscript"] = TORCHSCRIPT
    config = _sidecar(exported, model_dir, graphs, check)
    (out / PROSODY_FILE).unlink(missing_ok=True)
    if exported.bundle.prosody is not None:  # read by the runtime as the model reads it (emovox.training.prosody)
        shutil.copyfile(Path(model_dir) / exported.bundle.config["prosody"]["file"], out / PROSODY_FILE)
        config["prosody"] = {**exported.bundle.config["prosody"], "file": PROSODY_FILE}
    (out / SPREAD_FILE).unlink(missing_ok=True)
    if exported.bundle.profile_spread is not None:  # profiles built on the export scale as the model's do
        shutil.copyfile(Path(model_dir) / exported.bundle.config["profile_spread"]["file"], out / SPREAD_FILE)
        config["profile_spread"] = {**exported.bundle.config["profile_spread"], "file": SPREAD_FILE}
    reference = Ensemble(exported.bundle.heads, exported.bundle.labels).reference_mean()[: exported.n_states]
    np.save(out / REFERENCE, reference, allow_pickle=False)  # speaker adaptation (emovox.training.adaptation)
    config["reference_mean"] = REFERENCE
    _write_config(out, config)
    if int8:
        _int8(exported, out, config, evaluation, max_ua_drop=max_ua_drop, device=device, threads=threads,
              heads=int8_heads)
        if not evaluation and int8_evidence:
            _accept_evidence(config, int8_evidence, max_ua_drop, heads=int8_heads)
    config["files"] = {key: {"path": name, "bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
                       for key, name in config["graphs"].items()}
    config["export_seconds"] = round(time.time() - started, 1)
    _write_config(out, config)
    return config


def _int8(exported: Exported, out: Path, config: dict, evaluation: Sequence | None, *, max_ua_drop: float,
          device: str, threads: int | None, heads: bool = False) -> None:
    """Write model.int8.onnx (``heads``: and the head graphs in int8); with evaluation data, keep the
    first recipe that passes the gate (:func:`emovox.export.quantize.int8_recipes`)."""
    from emovox.export.quantize import calibration_windows, int8_recipes, quantize_int8

    if heads:
        for key, (fp32_name, int8_name) in INT8_HEAD_GRAPHS.items():
            if fp32_name in config["graphs"].values():
                quantize_int8(out / fp32_name, out / int8_name)
                add_metadata(out / int8_name, {**metadata(exported), "quantization": QUANTIZATION})
                config["graphs"][key] = int8_name

    if evaluation:
        paths = [u.path for u in evaluation][:: max(1, len(evaluation) // 8)][:8]
        recipes = int8_recipes(exported.graph, lambda: calibration_windows(
            paths, n_mels=exported.n_mels, window=exported.bundle.features.window, limit=8,
            level_band=exported.bundle.features.level_band))
    else:
        recipes = iter([("all", [])])
    source = out / FP32
    served = exported.graph.encoder.silence_stride  # the model's own (fp32 and PyTorch run it)
    stride = max(INT8_SILENCE_STRIDE, served) if exported.graph.encoder.silence else 1
    if stride > served:  # the int8 graph is quantized from a thinner context's fp32 graph; the gate sees both
        exported.graph.encoder.silence_stride = stride
        try:
            source = export_onnx(exported, out / STRIDED)
        finally:
            exported.graph.encoder.silence_stride = served
    if stride > 1:
        config["int8_silence_stride"] = stride
    try:
        _int8_recipes(exported, out, config, evaluation, recipes, source, max_ua_drop=max_ua_drop, device=device,
                      threads=threads, heads=heads, stride=stride)
    finally:
        (out / STRIDED).unlink(missing_ok=True)


def _int8_recipes(exported: Exported, out: Path, config: dict, evaluation: Sequence | None, recipes, source: Path, *,
                  max_ua_drop: float, device: str, threads: int | None, heads: bool, stride: int) -> None:
    """Quantize ``source`` into model.int8.onnx with each recipe in turn until one passes the gate."""
    from emovox.export.quantize import gate_int8, quantize_int8

    attempts, tried, fp32 = [], set(), None
    for recipe, keep in recipes:
        if tuple(keep) in tried:  # e.g. nothing sensitive: same graph as "all"
            continue
        tried.add(tuple(keep))
        quantize_int8(source, out / INT8, keep_fp32=keep)
        add_metadata(out / INT8, {**metadata(exported), "quantization": QUANTIZATION, "fp32_layers": json.dumps(keep),
                                  **({"silence_stride": str(stride)} if stride > 1 else {})})
        config["graphs"]["int8"] = INT8
        _write_config(out, config)  # the gate loads the folder
        if not evaluation:
            config["int8_gate"] = {"kept": True, "verified": False, "recipe": recipe, "fp32_layers": keep,
                                   "int8_heads": heads,
                                   "note": "no evaluation data given: int8 written but fp32 stays the default"}
            return
        gate = {"recipe": recipe, "fp32_layers": keep, "int8_heads": heads,
                **gate_int8(out, evaluation, max_ua_drop=max_ua_drop, device=device, threads=threads, fp32=fp32)}
        fp32 = gate.pop("fp32")
        attempts.append(gate)
        if gate["kept"]:
            config["int8_gate"] = {**gate, "attempts": attempts}
            config["default_variant"] = "int8"
            return
    (out / INT8).unlink()
    del config["graphs"]["int8"]
    for key, (_, int8_name) in INT8_HEAD_GRAPHS.items():
        if config["graphs"].pop(key, None):
            (out / int8_name).unlink()
    config["int8_gate"] = {**attempts[-1], "attempts": attempts}


def _accept_evidence(config: dict, evidence: Sequence[dict], max_ua_drop: float, *, heads: bool = False) -> None:
    """Make int8 the default on gate results measured earlier for the same recipe (see
    :func:`export_model`), when each kept int8 and lost at most ``max_ua_drop`` UA (with a profile
    too, where measured), with the heads quantized as they are now (``int8_heads`` of each result)."""
    limit = 100.0 * max_ua_drop

    def within(e: dict) -> bool:
        drops = [e.get("ua_drop_points", float("inf")), e.get("profile", {}).get("ua_drop_points", 0.0)]
        return bool(e.get("kept")) and max(drops) <= limit and bool(e.get("int8_heads", False)) == heads

    passed = all(within(e) for e in evidence)
    config["int8_gate"] = {
        "kept": True, "verified": "by recipe" if passed else False, "recipe": "all", "fp32_layers": [],
        "int8_heads": heads, "evidence": list(evidence),
        "note": (f"int8 is the default: {len(evidence)} model(s) of the same training recipe, each gated on a "
                 f"corpus it never saw, stayed within the {limit:g}-point UA limit" if passed else
                 "the recorded gate results do not all pass: int8 written but fp32 stays the default"),
    }
    if passed:
        config["default_variant"] = "int8"


def _sidecar(exported: Exported, model_dir, graphs: dict, check: dict) -> dict:
    b = exported.bundle
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "labels": b.labels,
        "sampling_rate": b.features.sampling_rate,
        "features": b.features.to_dict(),
        "n_mels": exported.n_mels,
        "hop_length": HOP_LENGTH,
        "max_frames": MAX_MEL_FRAMES,
        "n_states": exported.n_states,
        "encoder_blocks": f"{exported.n_states - 1} of {exported.graph.encoder.config.n_layers}",
        "dim": exported.dim,
        "n_heads": len(b.heads),
        "temperature": b.temperature,
        "ensemble_average": b.average,
        "adapted_temperature": b.adapted_temperature,
        **({"profile_heads": {"n_heads": len(b.profile_heads), "temperature": b.profile_temperature,
                              "inputs": b.profile_heads[0].config.inputs}} if b.profile_heads else {}),
        # inside the head graphs (every backend mixes it alike); a record, the runtime reads nothing of it
        **({"linear_head": {"weight": b.linear.weight, "strength": b.linear.strength,
                            "in": "head graphs (model, head), mixed into the heads' probabilities"}} if b.linear else {}),
        **({"profile_linear_head": {"weight": b.profile_linear.weight, "strength": b.profile_linear.strength,
                                    "inputs": b.profile_linear.inputs,
                                    "in": "profile head graphs, mixed into the profile heads' probabilities"}}
           if b.profile_linear else {}),
        "mask_padding": exported.graph.mask_padding,
        "graphs": graphs,
        "default_variant": "fp32",
        "inputs": {"mel": ["batch", exported.n_mels, "frames"], "mel_lengths": ["batch"]},
        "outputs": {"probs": ["batch", len(b.labels)], "features": ["batch", exported.n_states, exported.dim],
                    **({"dims": ["batch", 2]} if b.has_dimensions else {})},
        "dimensions": "head" if b.has_dimensions else "circumplex",
        "long_clips": "windows of 3000 frames; pooled stats merged by frame count, then head.onnx",
        "check": check,
        "source": {"model_dir": os.fspath(model_dir), "training": b.config.get("training", {}),
                   "versions": b.config.get("versions", {})},
        "versions": {"emovox": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version(), **_ort_versions()},
    }


def _ort_versions() -> dict:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "opset": OPSET}


def _write_config(out: Path, config: dict) -> None:
    tmp = out / "config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "config.json")

