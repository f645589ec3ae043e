"""A PyTorch port of the Whisper audio encoder that returns every hidden state.

The module mirrors OpenAI's encoder (two GELU convolutions, sinusoidal-initialised positional
embeddings, pre-norm transformer blocks, a final layer norm) and adds a frame mask so that a
padded batch gives the same per-clip outputs as running the clips one by one. Weights come
from :mod:`emovox.encoder.weights`, which reads CTranslate2, OpenAI and Hugging Face formats
into one state-dict layout (the names used here).

Hidden states follow the Hugging Face convention: index 0 is the input to the first block
(convolutions + positions), index i the output of block i, and the last one has the final
layer norm applied — ``n_layers + 1`` states in all.

``silence=True`` lets a clip's frames attend, at the positions after the clip, to the keys and values
each block computes for a 30 s window of silence (:meth:`WhisperEncoder.silence_context`, computed
once per encoder): what the clip's frames would see if the clip were zero-padded to Whisper's 30 s
window, at the cost of its own length. The padding's states in a real padded window depend a little
on the speech before them; the pooled features of speech frames come within ~5 % (relative L2, last
state) of a padded window's, against ~21 % at the clip's own length (experiments/exp_silence_context.py).

Examples:
    >>> import torch
    >>> enc = WhisperEncoder(WhisperEncoderConfig(n_mels=80, d_model=64, n_heads=4, n_layers=2))
    >>> mel = torch.randn(1, 80, 200)            # 2 s of log-mel frames
    >>> states = enc(mel)
    >>> len(states), tuple(states[-1].shape)
    (3, (1, 100, 64))
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_MEL_FRAMES = 3000  # 30 s at 100 frames per second: the length of the positional table x 2
SILENCE_LEVEL = -1.0  # the normalised log-mel of the silence context (Whisper pads with its clip's max - 2: ~ -0.6 .. -1.4)

Context = list[tuple[torch.Tensor, torch.Tensor]]  # per block: keys and values (1, heads, positions, d / heads)


@dataclasses.dataclass(frozen=True)
class WhisperEncoderConfig:
    """Shape of a Whisper encoder (base: d_model=512, n_heads=8, n_layers=6)."""

    n_mels: int = 80
    d_model: int = 512
    n_heads: int = 8
    n_layers: int = 6
    n_positions: int = 1500


class _Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def split(self, z: torch.Tensor) -> torch.Tensor:
        """``(b, t, d)`` -> ``(b, heads, t, d / heads)``."""
        b, t, d = z.shape
        return z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.key(x)), self.split(self.value(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                context: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``mask`` ``(b, keys)``: True = attend (or a float bias added to the scores, -inf = never);
        ``context``: more keys and values ``(1, h, n, d / h)`` appended after the clip's own (``mask`` then
        covers both)."""
        b, t, d = x.shape
        q, (k, v) = self.split(self.query(x)), self.keys_values(x)
        if context is not None:
            k = torch.cat([k, context[0].expand(b, -1, -1, -1)], dim=2)
            v = torch.cat([v, context[1].expand(b, -1, -1, -1)], dim=2)
        attn_mask = None if mask is None else mask[:, None, None, :]  # True = attend, or an additive bias
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.attn_ln = nn.LayerNorm(d_model)
        self.attn = _Attention(d_model, n_heads)
        self.mlp_ln = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                context: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), mask, context)
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder; ``forward`` returns the list of all hidden states."""

    def __init__(self, config: WhisperEncoderConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.positional_embedding = nn.Parameter(torch.zeros(config.n_positions, d))
        self.blocks = nn.ModuleList(_Block(d, config.n_heads) for _ in range(config.n_layers))
        self.ln_post = nn.LayerNorm(d)
        self._silence: dict[tuple, Context] = {}  # not a buffer: never saved with the weights

    @property
    def n_hidden_states(self) -> int:
        """Number of hidden states ``forward`` returns (layers + 1)."""
        return self.config.n_layers + 1

    @staticmethod
    def output_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
        """Encoder frames produced from ``mel_lengths`` log-mel frames (stride-2 convolution)."""
        return (mel_lengths + 1) // 2

    def silence_context(self, level: float = SILENCE_LEVEL) -> Context:
        """Each block's keys and values for a 30 s window whose log-mel is ``level`` everywhere.

        Computed on first use and kept (12 tensors of 1500 x 512 for whisper-base: 37 MB).
        """
        pos = self.positional_embedding
        # weights loaded later change the key (an inference tensor, made under inference_mode, has no version)
        key = (level, pos.device, pos.data_ptr(), 0 if pos.is_inference() else pos._version)
        if key not in self._silence:
            with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in training too
                self._silence = {key: self._silence_states(level)}
        return self._silence[key]

    def _silence_states(self, level: float) -> Context:
        shape = (1, self.config.n_mels, 2 * self.config.n_positions)
        x = self._embed(torch.full(shape, float(level), device=self.positional_embedding.device))
        context = []
        for block in self.blocks:
            context.append(block.attn.keys_values(block.attn_ln(x)))
            x = block(x, None)
        return context

    def _embed(self, mel: torch.Tensor, mel_lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = F.gelu(self.conv1(mel))
        if mel_lengths is not None:
            x = x * (torch.arange(mel.shape[-1], device=mel.device)[None, :] < mel_lengths[:, None])[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        return x + self.positional_embedding[: x.shape[1]]

    def forward(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor | None = None, *, n_blocks: int | None = None,
        silence: bool = False, silence_level: float = SILENCE_LEVEL, silence_stride: int = 1,
    ) -> list[torch.Tensor]:
        """Encode log-mel frames ``(batch, n_mels, frames)``; frames ≤ 3000.

        ``mel_lengths`` gives each clip's true frame count in a zero-padded batch; the padding
        then has no effect on the valid frames of any clip. ``n_blocks``: run only the first
        ``n_blocks`` blocks and return states ``0..n_blocks`` (the final layer norm applies only
        when every block runs): the frozen part below fine-tuned blocks. ``silence``: each clip's
        frames also attend to :meth:`silence_context` (of ``silence_level``) at the positions after the clip's end.
        ``silence_stride``: only every s-th position of the context, each counted s times (a log(s) bias on its
        scores): the context's attention costs 1/s (stride 8 comes as close to a padded window's features as the
        whole context; experiments/exp_silence_context.py).
        """
        if silence_stride < 1 or (silence_stride > 1 and not silence):
            raise ValueError("silence_stride: a positive integer, above 1 only with silence=True")
        if mel.shape[-1] > 2 * self.config.n_positions:
            raise ValueError(f"at most {2 * self.config.n_positions} mel frames per window")
        x = self._embed(mel, mel_lengths)
        b, t = x.shape[:2]
        out_len = self.output_lengths(mel_lengths) if mel_lengths is not None else torch.full((b,), t)
        mask = None if mel_lengths is None else torch.arange(t, device=x.device)[None, :] < out_len[:, None]
        context: Context | None = None
        if silence:
            context = [(k[:, :, ::silence_stride], v[:, :, ::silence_stride])
                       for k, v in self.silence_context(silence_level)]
            positions = torch.arange(0, self.config.n_positions, silence_stride, device=x.device)
            after_clip = positions[None, :] >= out_len[:, None].to(x.device)
            own = torch.ones(b, t, dtype=torch.bool, device=x.device) if mask is None else mask
            mask = torch.cat([own, after_clip], dim=1)
            if silence_stride > 1:  # each position kept stands for s: log(s) added to its scores
                bias = torch.cat([torch.zeros(b, t, device=x.device),
                                  torch.full(after_clip.shape, math.log(silence_stride), device=x.device)], dim=1)
                mask = bias.masked_fill(~mask, float("-inf")).to(x.dtype)
        states = [x]
        blocks = self.blocks if n_blocks is None else self.blocks[:n_blocks]
        for i, block in enumerate(blocks):
            x = block(x, mask, None if context is None else context[i])
            states.append(x)
        if len(blocks) == self.config.n_layers:
            states[-1] = self.ln_post(x)
        return states
