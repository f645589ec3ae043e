"""Predict from an exported folder with numpy and onnxruntime only: torch is never imported.

An exported folder (written by ``emovox export``, see :mod:`emovox.export.onnx`) holds
``config.json`` (format ``emovox-onnx``), ``model.onnx`` (log-mel frames → probabilities and
pooled features, encoder and heads in one graph), maybe ``model.int8.onnx``, and
``head.onnx`` (pooled features → probabilities), and for a model with profile heads
``profile_head.onnx`` (the same for features a domain profile centred); a folder exported with
int8 head graphs (``emovox export --int8-heads``) also has ``head.int8.onnx`` and
``profile_head.int8.onnx``, which the int8 variant runs instead, one row per run.

A model trained with ``--dimensions`` has one more output in both graphs, ``dims`` (the heads'
mean arousal and valence in [-1, 1]); its predictions carry those instead of the circumplex
table's (``has_dimensions``). Folders exported before have no ``dims`` and work as they did.

Clips of up to 30 s are one encoder window: one run of the model graph gives their
probabilities. A longer clip is several windows; their pooled statistics (mean and std per
layer over valid frames) are merged with the windows' frame weights (their frame counts, or
with level pooling the sum of their frames' level weights, the graph's ``weight`` output) into
the clip's statistics over all its frames, exactly what pooling the concatenated frames gives,
and the small head graph turns those into probabilities.

Examples:
    >>> model = OnnxEmotionModel("exported/")                     # doctest: +SKIP
    >>> model.predict_file("call.wav").label                       # doctest: +SKIP
    'angry'
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from emovox.audio.load import DEFAULT_MAX_DURATION
from emovox.encoder.batches import length_batches
from emovox.encoder.mel import mel_windows
from emovox.errors import ModelError
from emovox.prediction.predictor import Predictor
from emovox.runtime.session import make_session
from emovox.training.profile_spread import ProfileSpread
from emovox.training.prosody import ProsodyHead

EXPORT_FORMAT = "emovox-onnx"  # the ``format`` of an exported folder's config.json
EXPORT_FORMAT_VERSION = 2  # 2: the graph also outputs each row's frame weight (level pooling)
VARIANTS = ("auto", "fp32", "int8")


def read_export_config(directory: str | os.PathLike) -> dict:
    """The sidecar ``config.json`` of an exported folder, checked for format and version."""
    path = Path(directory) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory} is not an exported emovox model: {exc}") from None
    if config.get("format") != EXPORT_FORMAT or config.get("format_version", 0) > EXPORT_FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported format {config.get('format')!r} version {config.get('format_version')}")
    return config


def merge_pooled(features: np.ndarray, counts: Sequence[float]) -> np.ndarray:
    """Merge per-window ``[mean, std]`` features ``(windows, n_states, 2 d)`` pooled over
    ``counts`` frames (or frame weights) into the ``(n_states, 2 d)`` of all the frames together.

    Examples:
        >>> from emovox.features.pooling import mean_std_pool
        >>> x = np.random.default_rng(0).standard_normal((2, 7, 3)).astype(np.float32)
        >>> parts = np.stack([mean_std_pool(x[:, :4]), mean_std_pool(x[:, 4:])])
        >>> bool(np.allclose(merge_pooled(parts, [4, 3]), mean_std_pool(x), atol=1e-5))
        True
    """
    f = np.asarray(features, dtype=np.float64)
    d = f.shape[-1] // 2
    mean, std = f[..., :d], f[..., d:]
    w = np.asarray(counts, dtype=np.float64)[:, None, None] / float(np.sum(counts))
    total_mean = (w * mean).sum(0)
    second = (w * (std**2 + mean**2)).sum(0)
    total_std = np.sqrt(np.maximum(second - total_mean**2, 0.0))
    return np.concatenate([total_mean, total_std], axis=-1).astype(np.float32)


class OnnxEmotionModel(Predictor):
    """An exported model on onnxruntime; same API and results as :class:`emovox.prediction.torch_model.EmotionModel`.

    Args:
        directory: the exported folder.
        variant: ``fp32``, ``int8``, or ``auto`` (the folder's default: int8 when it passed
            its accuracy gate at export, else fp32).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: intra-op threads (default ``$EMOVOX_THREADS`` or one per core).
        max_duration: longest clip accepted, in seconds.
        max_batch_frames: mel frames encoded together (clips are batched by length).
    """

    def __init__(self, directory: str | os.PathLike, *, variant: str = "auto", device: str = "auto",
                 threads: int | None = None, max_duration: float | None = DEFAULT_MAX_DURATION,
                 max_batch_frames: int = 6000):
        self.directory = Path(directory)
        self.config = read_export_config(self.directory)
        if variant not in VARIANTS:
            raise ModelError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = self.config["default_variant"] if variant == "auto" else variant
        graphs = self.config["graphs"]
        if self.variant not in graphs:
            raise ModelError(f"{self.directory} has no {self.variant} graph (it has {', '.join(graphs)})")
        self.labels = list(self.config["labels"])
        self.max_duration = max_duration
        self.max_batch_frames = max_batch_frames
        self.n_mels = int(self.config["n_mels"])
        self.window = float(self.config["features"]["window"])
        band = self.config["features"].get("level_band")  # absent in models made before it existed
        self.level_band = (float(band[0]), float(band[1])) if band else None
        self._session_args: dict[str, Any] = dict(device=device, threads=threads)
        self.session = make_session(self.directory / graphs[self.variant], **self._session_args)
        names = {o.name for o in self.session.get_outputs()}
        self._outputs = ["probs", "features"] + [n for n in ("weight", "dims") if n in names]
        self.has_dimensions = "dims" in names  # the heads give arousal and valence
        self._head_session = None
        self._profile_head_session = None
        self.prosody_head = (ProsodyHead.load(self.directory, self.config["prosody"], self.labels)
                             if self.config.get("prosody") else None)
        self.profile_spread = (ProfileSpread.load(self.directory, self.config["profile_spread"])
                               if self.config.get("profile_spread") else None)

    @property
    def model_id(self) -> str:
        return self.config.get("source", {}).get("training", {}).get("name", "emovox-model")

    def _head_graph(self, name: str) -> str:
        """The file of head graph ``name`` (``head``, ``profile_head``) this variant runs: its int8 copy
        for the int8 variant of a folder exported with int8 heads, else the fp32 graph."""
        graphs = self.config["graphs"]
        return graphs[f"{name}_int8"] if self.variant == "int8" and f"{name}_int8" in graphs else graphs[name]

    @property
    def int8_heads(self) -> bool:
        """True when this variant's head graphs are int8 (their activations are quantized per run, so
        :meth:`head_outputs` runs them one row at a time: a row's answer never depends on its batch)."""
        return self.variant == "int8" and "head_int8" in self.config["graphs"]

    @property
    def head_session(self):
        """The head-only graph, loaded on first use (clips over 30 s)."""
        if self._head_session is None:
            self._head_session = make_session(self.directory / self._head_graph("head"), **self._session_args)
        return self._head_session

    @property
    def profile_head_session(self):
        """The profile heads' graph (features a domain profile centred), loaded on first use; the
        head graph for a folder without profile heads."""
        if "profile_head" not in self.config["graphs"]:
            return self.head_session
        if self._profile_head_session is None:
            self._profile_head_session = make_session(self.directory / self._head_graph("profile_head"),
                                                      **self._session_args)
        return self._profile_head_session

    def run(self, mel: np.ndarray, mel_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One graph run: ``mel (b, n_mels, frames)`` and valid frame counts → probs, features,
        and each row's frame weight (its valid encoder frames for graphs exported before it)."""
        return self._run(mel, mel_lengths)[:3]

    def _run(self, mel: np.ndarray, mel_lengths: np.ndarray):
        """:meth:`run`'s three outputs, then ``dims`` (None for a graph without it)."""
        out = dict(zip(self._outputs, self.session.run(
            self._outputs, {"mel": mel.astype(np.float32, copy=False), "mel_lengths": mel_lengths.astype(np.int64)}),
            strict=True))
        weight = out["weight"] if "weight" in out else np.maximum(1, (mel_lengths + 1) // 2).astype(np.float32)
        return out["probs"], out["features"], weight, out.get("dims")

    def head_probabilities(self, features: np.ndarray) -> np.ndarray:
        """Probabilities from pooled features ``(n, n_states, 2 d)`` (the head graph)."""
        return self.head_outputs(features)[0]

    def head_outputs(self, features: np.ndarray, *, profiled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and (arousal, valence) (None without them) from pooled features (the head
        graph; ``profiled``: a domain profile centred them, the profile heads' graph when there is one)."""
        names = ["probs", "dims"] if self.has_dimensions else ["probs"]
        session = self.profile_head_session if profiled else self.head_session
        rows = np.asarray(features, dtype=np.float32)
        if self.int8_heads and len(rows) > 1:
            parts = [session.run(names, {"features": rows[i: i + 1]}) for i in range(len(rows))]
            out = [np.concatenate([part[k] for part in parts]) for k in range(len(names))]
        else:
            out = session.run(names, {"features": rows})
        return out[0], out[1] if self.has_dimensions else None

    def features_and_probabilities(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled features ``(n, n_states, 2 d)`` and probabilities ``(n, n_labels)``."""
        features, probs, _ = self.features_and_outputs(signals)
        return features, probs

    def features_and_outputs(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Pooled features ``(n, n_states, 2 d)``, probabilities ``(n, n_labels)`` and the heads'
        (arousal, valence) ``(n, 2)`` (None for a model without them); a clip of several windows
        gets all three from its merged features, as its probabilities always were."""
        windows = []  # (signal index, mel, valid frames)
        for index, signal in enumerate(signals):
            windows += [(index, mel, valid) for mel, valid in mel_windows(signal, n_mels=self.n_mels, window=self.window,
                                                                           level_band=self.level_band)]
        per_signal: list[list[tuple[np.ndarray, np.ndarray, float, np.ndarray | None]]] = [[] for _ in signals]
        lengths = [w[1].shape[1] for w in windows]
        # int8 quantizes activations per tensor, with a range taken over the whole batch: a clip's
        # answer would depend on the clips beside it. One window per run keeps it batch-invariant
        # (the CPU cost per clip is about the same; fp32 batches are exact to 1e-6 and do batch).
        batches = ([[i] for i in sorted(range(len(lengths)), key=lengths.__getitem__)] if self.variant == "int8"
                   else length_batches(lengths, self.max_batch_frames))
        for batch in batches:
            frames = max(windows[i][1].shape[1] for i in batch)
            mel = np.zeros((len(batch), self.n_mels, frames), np.float32)
            for row, i in enumerate(batch):
                mel[row, :, : windows[i][1].shape[1]] = windows[i][1]
            probs, feats, weight, dims = self._run(mel, np.array([windows[i][2] for i in batch], np.int64))
            for row, i in enumerate(batch):
                per_signal[windows[i][0]].append((probs[row], feats[row], float(weight[row]),
                                                  None if dims is None else dims[row]))
        features: list[np.ndarray] = []
        clip_probs: list[np.ndarray | None] = []
        clip_dims: list[np.ndarray | None] = []
        merged: list[int] = []
        for index, parts in enumerate(per_signal):
            if len(parts) == 1:
                features.append(parts[0][1])
                clip_probs.append(parts[0][0])
                clip_dims.append(parts[0][3])
            else:
                features.append(merge_pooled(np.stack([p[1] for p in parts]), [max(p[2], 1e-12) for p in parts]))
                clip_probs.append(None)
                clip_dims.append(None)
                merged.append(index)
        if merged:
            probs, dims = self.head_outputs(np.stack([features[i] for i in merged]))
            for row, index in enumerate(merged):
                clip_probs[index] = probs[row]
                clip_dims[index] = None if dims is None else dims[row]
        if not features:
            return (np.zeros((0, self.config["n_states"], 2 * self.config["dim"]), np.float32),
                    np.zeros((0, len(self.labels)), np.float32), np.zeros((0, 2), np.float32) if self.has_dimensions else None)
        # no None left: merged ones filled
        return (np.stack(features), np.stack(cast(list[np.ndarray], clip_probs)),
                np.stack(cast(list[np.ndarray], clip_dims)) if self.has_dimensions else None)

    def probabilities_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        return self.features_and_probabilities(signals)[1]

    def features_for_signals(self, signals: Sequence[np.ndarray]) -> np.ndarray:
        return self.features_and_probabilities(signals)[0]

    def outputs_for_signals(self, signals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        _, probs, dims = self.features_and_outputs(signals)
        return probs, dims

    def outputs_for_features(self, features: np.ndarray, *, adapted: bool = False,
                             profiled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        probs, dims = self.head_outputs(features, profiled=profiled)
        return probs if profiled else self._adapted(probs, adapted), dims

    def probabilities_for_features(self, features: np.ndarray, *, adapted: bool = False,
                                   profiled: bool = False) -> np.ndarray:
        return self.outputs_for_features(features, adapted=adapted, profiled=profiled)[0]

    def _adapted(self, probs: np.ndarray, adapted: bool) -> np.ndarray:
        """``probs`` at the adapted temperature when ``adapted`` (and the model has one)."""
        t, t_adapted = self.config["temperature"], self.config.get("adapted_temperature")
        if adapted and t_adapted and self.config.get("ensemble_average") == "logits":
            # softmax(z / T) → softmax(z / T'): exact, since log p = z / T - const per row
            logits = np.log(np.clip(probs, 1e-30, None)) * (t / t_adapted)
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
        return probs

    def encoder_sha256(self) -> str:
        return self.config.get("features", {}).get("encoder_sha256", "")

    def reference_mean(self) -> np.ndarray:
        """From ``reference_mean.npy`` (written by exports since emovox's speaker adaptation)."""
        name = self.config.get("reference_mean")
        if not name:
            raise ModelError(f"{self.directory} has no reference_mean.npy: export the model again to adapt to speakers")
        return np.load(self.directory / name, allow_pickle=False)
