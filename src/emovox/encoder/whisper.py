"""A PyTorch port of the Whisper audio encoder that returns every hidden state.

The module mirrors OpenAI's encoder (two GELU convolutions, sinusoidal-initialised positional
embeddings, pre-norm transformer blocks, a final layer norm) and adds a frame mask so that a
padded batch gives the same per-clip outputs as running the clips one by one. Weights come
from :mod:`emovox.encoder.weights`, which reads CTranslate2, OpenAI and Hugging Face formats
into one state-dict layout (the names used here).

Hidden states follow the Hugging Face convention: index 0 is the input to the first block
(convolutions + positions), index i the output of block i, and the last one has the final
layer norm applied — ``n_layers + 1`` states in all.

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

import torch
import torch.nn.functional as F
from torch import nn

MAX_MEL_FRAMES = 3000  # 30 s at 100 frames per second: the length of the positional table x 2


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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        attn_mask = None if mask is None else mask[:, None, None, :]  # True = attend
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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), mask)
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

    @property
    def n_hidden_states(self) -> int:
        """Number of hidden states ``forward`` returns (layers + 1)."""
        return self.config.n_layers + 1

    @staticmethod
    def output_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
        """Encoder frames produced from ``mel_lengths`` log-mel frames (stride-2 convolution)."""
        return (mel_lengths + 1) // 2

    def forward(
        self, mel: torch.Tensor, mel_lengths: torch.Tensor | None = None, *, n_blocks: int | None = None
    ) -> list[torch.Tensor]:
        """Encode log-mel frames ``(batch, n_mels, frames)``; frames ≤ 3000.

        ``mel_lengths`` gives each clip's true frame count in a zero-padded batch; the padding
        then has no effect on the valid frames of any clip. ``n_blocks``: run only the first
        ``n_blocks`` blocks and return states ``0..n_blocks`` (the final layer norm applies only
        when every block runs): the frozen part below fine-tuned blocks.
        """
        if mel.shape[-1] > 2 * self.config.n_positions:
            raise ValueError(f"at most {2 * self.config.n_positions} mel frames per window")
        x = F.gelu(self.conv1(mel))
        mask = None
        if mel_lengths is not None:
            frame_ok = torch.arange(mel.shape[-1], device=mel.device)[None, :] < mel_lengths[:, None]
            x = x * frame_ok[:, None, :]
            out_len = self.output_lengths(mel_lengths)
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if mel_lengths is not None:
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < out_len[:, None]
        x = x + self.positional_embedding[: x.shape[1]]
        states = [x]
        blocks = self.blocks if n_blocks is None else self.blocks[:n_blocks]
        for block in blocks:
            x = block(x, mask)
            states.append(x)
        if len(blocks) == self.config.n_layers:
            states[-1] = self.ln_post(x)
        return states
