"""Speaker adaptation: judge a voice against its own average, not against the training voices.

Pooled encoder features carry the speaker (pitch range, timbre, microphone, language) as much
as the emotion. A model's heads standardise features with the training set's mean; when the
clips of one speaker are available together, shifting them so that *their* mean sits on the
training mean removes most of what is constant about the voice and leaves what changes from
clip to clip:

    x' = x - mean(x over the speaker's clips) + reference

``reference`` is the training feature mean the heads standardise with (NaN marks encoder
states no head reads; those are left alone). No labels are used, and the model is not retrained.

It is transductive, with a condition: the speaker's clips should cover the speaker's range.
If every clip of a speaker is angry, their mean *is* angry, and adaptation pulls the clips
toward the population average. Use it on recordings with several emotions or mostly calm
speech (a call, a session, a corpus speaker), and with at least ``MIN_CLIPS`` clips.

Measured (``python benchmarks/bench_accuracy.py --adapt``, the shipped v3 recipe, 5 heads,
whole test speakers unseen in training): RAVDESS 6-fold UA 0.740 → 0.801; cross-corpus 4-class
nEMO 0.529 → 0.610, RAVDESS 0.536 → 0.545, TurEV 0.447 → 0.498.

Examples:
    >>> X = np.array([[[1.0, 4.0]], [[3.0, 8.0]]])           # two clips, one state, dim 2
    >>> adapt(X, np.array([[0.0, 0.0]])).tolist()            # centred on the reference
    [[[-1.0, -2.0]], [[1.0, 2.0]]]
    >>> adapt_groups(X, ["a", "b"], np.array([[0.0, np.nan]])).tolist()  # NaN state: untouched
    [[[0.0, 4.0]], [[0.0, 8.0]]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_CLIPS = 4  # fewer clips than this: the speaker's mean is mostly the clips' own emotion


def centre(X: np.ndarray, mean: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Shift ``X`` ``(n, n_states, dim)`` by ``reference - mean`` (NaN entries: no shift): the
    one move of speaker adaptation, domain profiles (:mod:`emovox.training.profiles`) and corpus-centred
    training (:func:`emovox.training.train.corpus_centred`), each with its own ``mean``."""
    shift = np.nan_to_num(np.asarray(reference, np.float32) - mean, nan=0.0)
    return (np.asarray(X, np.float32) + shift[None]).astype(np.float32)


def class_balanced_mean(X: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The mean of ``X``'s per-label means: a group's mean as if it had recorded every label it
    has equally often, so a corpus or speaker of mostly one emotion is not moved as if that
    emotion were its voice (:func:`emovox.training.train.corpus_centred`,
    :class:`emovox.training.voices.VoiceTable`).

    Examples:
        >>> class_balanced_mean(np.array([[0.0], [0.0], [0.0], [4.0]]), ["sad"] * 3 + ["happy"]).tolist()
        [2.0]
    """
    labels = np.asarray(labels)
    return np.mean([X[labels == label].mean(0) for label in np.unique(labels)], axis=0)


def adapt(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Shift the pooled features ``X`` ``(n, n_states, dim)`` of *one* speaker so that their
    mean equals ``reference`` ``(n_states, dim)`` (NaN entries: no shift)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3 or reference.shape != X.shape[1:]:
        raise ValueError(f"features {X.shape} do not match the reference {reference.shape}")
    if not len(X):
        return X.copy()
    return centre(X, X.mean(0), reference)


def adapt_groups(X: np.ndarray, groups: Sequence, reference: np.ndarray) -> np.ndarray:
    """:func:`adapt` every group of rows (e.g. speakers) on its own."""
    X = np.asarray(X, dtype=np.float32)
    keys = np.asarray([str(g) for g in groups])
    if len(keys) != len(X):
        raise ValueError(f"{len(keys)} groups for {len(X)} rows")
    out = np.empty_like(X)
    for key in dict.fromkeys(keys):
        rows = keys == key
        out[rows] = adapt(X[rows], reference)
    return out
