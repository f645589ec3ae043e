"""Experiment: how close do a clip's pooled features come to those of Whisper's padded 30 s window when
its frames attend to a window of silence after it (the silence context) instead of to real padding?

A zero-padded window costs the encoder time of 30 s for every clip (~25x a 1 s clip); the padded windows'
features generalised better to unheard corpora (exp_padded_windows.py). The real frames' log-mel is the same
either way, so what differs is what they attend to: the padding's states. Those depend on the speech before
them only through attention, so each block's keys and values of a window of pure silence should stand in for
them (:meth:`emovox.encoder.whisper.WhisperEncoder.silence_context`). Whisper pads with the log-mel its
clip's maximum sets (max - 2 after normalising: -0.5 .. -1.5); the shipped context uses one level (-1.0), so
the per-clip level is tried too. Per state, relative L2 distance and cosine of the pooled [mean, std] to the
padded window's, over a seeded random handful of clips of each corpus:

    python experiments/exp_silence_context.py --per-corpus 6      # ~1 min on 2 cores
    python experiments/exp_silence_context.py --per-corpus 4 --strides 2,4,8,16

``--strides``: a cheaper context, every s-th position of it counted s times (a log(s) bias on its scores):
each frame attends to 1500 / s more keys instead of 1500 (the speed lever the shipped context leaves).

Found (2026-12-07, 36 clips, six corpora; relative L2 distance to the padded window, states 1..6):

    own length                   0.08  0.12  0.13  0.20  0.18  0.21
    silence context, clip level  0.00  0.01  0.03  0.05  0.05  0.05
    silence context, -1.0        0.02  0.02  0.03  0.05  0.05  0.06

Strided contexts (24 clips; distance to the padded window at states 4 / 6, and to the full context at 6):
stride 2 0.047 / 0.056 (0.023), 4 0.046 / 0.057 (0.027), 8 0.048 / 0.061 (0.029), 16 0.053 / 0.063 (0.035);
averaging each group of positions instead of taking one was worse (stride 8: 0.127 at state 6).

The heads' accuracy on unheard corpora with these features is in exp_padded_windows.py (--silence-context).
(Here a strided context also keeps the positions between the clip's end and the first kept one; the encoder's
``silence_stride``, which v7.1 serves, keeps every s-th position from 0 on, as the int8 graph did.)

``--time``: the PyTorch feature extractor's time per clip (1, 3, 10 s of noise, one at a time, median of 7)
without the context, with the whole one and with each of ``--strides`` (2026-12-07, 2 cores, nothing else
running, ``--time --strides 8,16``): no context 16.0 / 32.8 / 105 ms, whole 27.0 / 51.0 / 149, every 8th 18.3 /
35.0 / 107, every 16th 19.4 / 32.9 / 109.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from exp_padded_windows import subsample  # noqa: E402

from emovox.audio.load import load_audio  # noqa: E402
from emovox.audio.speech_level import level_weights  # noqa: E402
from emovox.encoder.mel import log_mel, mel_windows  # noqa: E402
from emovox.encoder.weights import load_encoder  # noqa: E402
from emovox.features.pooling import mean_std_pool  # noqa: E402


def pooled(states: list[torch.Tensor], frames: int, mel: np.ndarray, mel_frames: int) -> np.ndarray:
    """Level-weighted [mean, std] of every state over the clip's first ``frames`` encoder frames."""
    weights = level_weights(torch.from_numpy(mel)[None], torch.tensor([mel_frames]))[0].numpy()[:frames]
    return mean_std_pool(torch.stack([s[0, :frames] for s in states]).numpy(), weights)


def distances(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Relative L2 distance of each state's pooled vector to the reference's."""
    return np.linalg.norm(features - reference, axis=-1) / np.linalg.norm(reference, axis=-1)


def strided_context_states(encoder, mel: torch.Tensor, stride: int) -> list[torch.Tensor]:
    """Every state of one clip whose frames attend to every ``stride``-th position of the silence context
    after the clip, each counted ``stride`` times (a log(stride) bias on its scores)."""
    x = encoder._embed(mel)
    n = x.shape[1]
    start = math.ceil(n / stride) * stride  # the first strided position after the clip
    states = [x]
    for block, (keys, values) in zip(encoder.blocks, encoder.silence_context(), strict=True):
        h = block.attn_ln(x)
        q, (k, v) = block.attn.split(block.attn.query(h)), block.attn.keys_values(h)
        # the positions between the clip's end and the first strided one, then the strided ones
        k = torch.cat([k, keys[:, :, n:start], keys[:, :, start::stride]], dim=2)
        v = torch.cat([v, values[:, :, n:start], values[:, :, start::stride]], dim=2)
        bias = torch.zeros(k.shape[2])
        bias[start:] = math.log(stride)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None, None, None, :])
        x = x + block.attn.out(y.transpose(1, 2).reshape(x.shape))
        x = x + block.mlp(block.mlp_ln(x))
        states.append(x)
    states[-1] = encoder.ln_post(x)
    return states


def time_strides(strides: list[int], durations=(1, 3, 10), repeats: int = 7) -> None:
    """Median ms per clip of the PyTorch feature extractor: no context, the whole one, each stride."""
    from emovox.features.extractor import FeatureExtractor

    ways = {"no context": {}, "whole context": {"silence_context": True},
            **{f"every {s}th": {"silence_context": True, "silence_stride": s} for s in strides}}
    extractors = {name: FeatureExtractor("whisper-base", pooling="level_mean_std", **kw) for name, kw in ways.items()}
    rng = np.random.default_rng(0)
    for duration in durations:
        signal = (0.1 * rng.standard_normal(16000 * duration)).astype(np.float32)
        times = {}
        for name, extractor in extractors.items():
            extractor([signal])  # warm-up
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                extractor([signal])
                runs.append(time.perf_counter() - start)
            times[name] = 1000 * float(np.median(runs))
        print(f"{duration:3d} s  " + "  ".join(f"{name} {ms:.1f} ms" for name, ms in times.items()), flush=True)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--per-corpus", type=int, default=6)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--strides", default="", help="comma-separated strides of a cheaper context to compare")
    parser.add_argument("--time", action="store_true", help="time the feature extractor per stride and stop")
    args = parser.parse_args()
    strides = [int(s) for s in args.strides.split(",") if s]
    if args.time:
        time_strides(strides)
        return
    encoder = load_encoder("whisper-base").eval()
    rows: dict[str, list[np.ndarray]] = {"own length": [], "silence context, clip level": [], "silence context, -1.0": []}
    for u in subsample(bench.load_corpora(args.corpora, args.extra, None), args.per_corpus, args.seed):
        signal = load_audio(u.path, max_duration=None)
        mel = log_mel(signal)
        frames = (mel.shape[1] + 1) // 2
        ((padded_mel, valid),) = mel_windows(signal, window=30.0)
        padded = pooled(encoder(torch.from_numpy(padded_mel)[None]), frames, padded_mel, valid)
        level = float(padded_mel[:, -1].mean())  # the padding's log-mel: the clip's maximum - 2
        x = torch.from_numpy(mel)[None]
        for name, states in (("own length", encoder(x)),
                             ("silence context, clip level", encoder(x, silence=True, silence_level=level)),
                             ("silence context, -1.0", encoder(x, silence=True))):
            rows[name].append(distances(pooled(states, frames, mel, mel.shape[1]), padded))
        for stride in strides:
            features = pooled(strided_context_states(encoder, x, stride), frames, mel, mel.shape[1])
            rows.setdefault(f"silence context, stride {stride}", []).append(distances(features, padded))
    for name, values in rows.items():
        print(f"{name:30s}", "  ".join(f"{d:.2f}" for d in np.mean(values, axis=0)[1:]))


if __name__ == "__main__":
    main()
