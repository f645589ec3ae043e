"""The emotion head: learned layer weights over pooled Whisper features, then a small MLP.

Input is ``(batch, n_states, dim)`` — one pooled vector per encoder layer. Features are
standardised with statistics of the training set (stored as buffers, so they travel with the
weights), mixed by a softmax over learned per-layer weights, and classified by a two-layer MLP.

Examples:
    >>> import torch
    >>> head = EmotionHead(n_states=3, dim=8, n_classes=4, hidden=16)
    >>> head(torch.randn(2, 3, 8)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Shape and regularisation of an :class:`EmotionHead`."""

    n_states: int
    dim: int
    n_classes: int
    hidden: int = 256
    dropout: float = 0.3
    layers: tuple[int, ...] | None = None  # encoder states the head reads (None: all)


class EmotionHead(nn.Module):
    """Layer-weighted pooled features → logits over emotion classes."""

    def __init__(self, n_states: int, dim: int, n_classes: int, *, hidden: int = 256, dropout: float = 0.3,
                 layers: tuple[int, ...] | list[int] | None = None):
        super().__init__()
        layers = tuple(int(i) for i in layers) if layers is not None else None
        self.config = HeadConfig(n_states, dim, n_classes, hidden, dropout, layers)
        self.register_buffer("layer_index", torch.tensor(layers if layers is not None else range(n_states), dtype=torch.long))
        n_used = len(self.layer_index)
        self.register_buffer("feature_mean", torch.zeros(n_used, dim))
        self.register_buffer("feature_std", torch.ones(n_used, dim))
        self.layer_logits = nn.Parameter(torch.zeros(n_used))
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    @classmethod
    def from_config(cls, config: HeadConfig) -> EmotionHead:
        return cls(config.n_states, config.dim, config.n_classes, hidden=config.hidden, dropout=config.dropout,
                   layers=config.layers)

    def set_normalization(self, features: torch.Tensor) -> None:
        """Store per-layer, per-dimension mean and std of training ``features`` (all states)."""
        features = features[:, self.layer_index]
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-5))

    def layer_weights(self) -> torch.Tensor:
        """Softmax weights given to each encoder layer."""
        return torch.softmax(self.layer_logits, dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = (features[:, self.layer_index] - self.feature_mean) / self.feature_std
        x = torch.einsum("bld,l->bd", x, self.layer_weights())
        return self.mlp(x)
