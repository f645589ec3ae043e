"""Pool encoder hidden states over time into fixed-size per-layer vectors.

Each hidden state ``(frames, d)`` becomes ``[mean, std]`` over its valid frames, so a clip
gives an array ``(n_states, 2 * d)``: one row per layer, which a head can weight.

Examples:
    >>> import numpy as np
    >>> states = np.stack([np.ones((10, 4)), np.arange(40.).reshape(10, 4)])  # 2 layers
    >>> pooled = mean_std_pool(states)
    >>> pooled.shape, float(pooled[0, 0]), float(pooled[0, 4])
    ((2, 8), 1.0, 0.0)
"""

from __future__ import annotations

import numpy as np

POOLINGS = ("mean_std", "level_mean_std")  # uniform over frames; weighted by speech level (emovox.audio.speech_level)


def mean_std_pool(states: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``(n_states, frames, d)`` → ``(n_states, 2 d)`` of per-layer mean and std over frames,
    each frame counted by its ``weights`` (``(frames,)``, default 1; all zero counts as all 1).

    Examples:
        >>> x = np.array([[[0.0], [2.0], [10.0]]])
        >>> mean_std_pool(x, np.array([1.0, 1.0, 0.0])).tolist()
        [[1.0, 1.0]]
    """
    # float64 sums: in float32, E[x²] − mean² loses the std of near-constant dimensions
    # (Whisper's slow positional channels) to rounding, noise the heads' standardisation
    # amplifies; the result is exact to float32 whatever the summation order.
    states = np.asarray(states, dtype=np.float64)
    if weights is None or not np.any(np.asarray(weights) > 0):
        mean = states.mean(axis=1)
        std = np.sqrt(np.maximum((states**2).mean(axis=1) - mean**2, 0.0))
    else:
        w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        mean = np.einsum("ltd,t->ld", states, w)
        std = np.sqrt(np.maximum(np.einsum("ltd,t->ld", states**2, w) - mean**2, 0.0))
    return np.concatenate([mean, std], axis=-1).astype(np.float32)
