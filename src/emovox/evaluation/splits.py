"""Speaker-disjoint splits: validation sets and k-fold partitions made of whole speakers.

Speakers are identified by ``Utterance.speaker_key`` (corpus/speaker), so the same speaker
id in two corpora stays two speakers. Every split keeps each corpus represented.

Examples:
    >>> import numpy as np
    >>> speakers = np.array(["a/1", "a/1", "a/2", "a/3", "b/1", "b/2"])
    >>> corpora = np.array(["a", "a", "a", "a", "b", "b"])
    >>> val = speaker_holdout(speakers, corpora, fraction=0.3, seed=0)
    >>> len(set(speakers[val]) & set(speakers[~val]))
    0
"""

from __future__ import annotations

import numpy as np


def speaker_holdout(speakers: np.ndarray, corpora: np.ndarray, *, fraction: float = 0.15, seed: int = 0) -> np.ndarray:
    """Boolean mask of a validation set: ``fraction`` of each corpus's speakers (at least one,
    never all), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(speakers), dtype=bool)
    for corpus in np.unique(corpora):
        names = np.unique(speakers[corpora == corpus])
        if len(names) < 2:
            continue
        k = min(len(names) - 1, max(1, round(len(names) * fraction)))
        val |= np.isin(speakers, rng.choice(names, k, replace=False))
    return val


def speaker_folds(speakers: np.ndarray, n_folds: int, *, seed: int | None = None) -> list[np.ndarray]:
    """Partition into ``n_folds`` test masks of whole speakers (sorted order unless seeded)."""
    names = np.unique(speakers)
    if n_folds > len(names):
        raise ValueError(f"{n_folds} folds need at least as many speakers (have {len(names)})")
    if seed is not None:
        names = np.random.default_rng(seed).permutation(names)
    groups = np.array_split(names, n_folds)
    return [np.isin(speakers, g) for g in groups]
