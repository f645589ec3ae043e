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


def mean_std_pool(states: np.ndarray) -> np.ndarray:
    """``(n_states, frames, d)`` → ``(n_states, 2 d)`` of per-layer mean and std over frames."""
    # float64 sums: in float32, E[x²] − mean² loses the std of near-constant dimensions
    # (Whisper's slow positional channels) to rounding, noise the heads' standardisation
    # amplifies; the result is exact to float32 whatever the summation order.
    states = np.asarray(states, dtype=np.float64)
    mean = states.mean(axis=1)
    std = np.sqrt(np.maximum((states**2).mean(axis=1) - mean**2, 0.0))
    return np.concatenate([mean, std], axis=-1).astype(np.float32)
