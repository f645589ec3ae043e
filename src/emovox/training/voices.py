"""Voice swapping: train a head on clips moved into other speakers' voices, in feature space.

A clip's pooled features carry its speaker's voice (and language and channel) as an offset from
what the emotion alone would give. Speaker adaptation removes that offset at test time, but
single clips of a new speaker cannot. Voice swapping teaches the head to ignore it instead: while
a head trains, each row of a batch is, with probability ``p``, moved from its own speaker's mean
to another training speaker's (``x - mean[own] + mean[other]``). The means are class-balanced (the
mean of the speaker's per-label means), so a speaker who recorded mostly one emotion is not moved
as if that emotion were the voice; speakers with too few clips or labels for a trustworthy mean
are neither moved nor a target.

With ``spread`` > 0 a row is moved into a new voice instead: one drawn from a Gaussian with the
usable voices' mean and ``spread``² times their covariance (a random combination of the voices'
deviations from their mean, so no covariance matrix is formed). The training speakers are few
(a user's are not among them); drawn voices fill the space between and, with ``spread`` > 1,
beyond them.

Examples:
    >>> import numpy as np
    >>> X = np.array([[[0.0]], [[2.0]], [[10.0]], [[12.0]]], dtype="float32")
    >>> voices = VoiceTable.build(X, ["a", "a", "b", "b"], ["sad", "happy"] * 2, min_clips=2, min_labels=2)
    >>> voices.means[:, 0, 0].tolist(), voices.rows.tolist()
    ([1.0, 11.0], [0, 0, 1, 1])
    >>> moved = voices.swap(X, np.arange(4), p=1.0, rng=np.random.default_rng(0))
    >>> moved[:, 0, 0].tolist()  # a's clips in b's voice and b's in a's
    [10.0, 12.0, 0.0, 2.0]
    >>> drawn = voices.draw(100_000, spread=2.0, rng=np.random.default_rng(0))[:, 0, 0]
    >>> bool(abs(drawn.mean() - 6) < 0.2 and abs(drawn.std() - 2 * 7.07) < 0.2)  # mean 6, twice the std of 1 and 11
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from emovox.training.adaptation import class_balanced_mean


@dataclasses.dataclass(frozen=True)
class VoiceTable:
    """Each usable voice's class-balanced mean ``means`` ``(voices, ...)`` and each training row's
    voice ``rows`` (an index into ``means``; -1: a row that is never moved)."""

    means: np.ndarray
    rows: np.ndarray

    @classmethod
    def build(cls, X: np.ndarray, voices: Sequence[str], labels: Sequence[str], *, min_clips: int = 10,
              min_labels: int = 3) -> VoiceTable:
        """The table of ``X``'s rows, grouped by ``voices`` (e.g. speaker keys); a voice is used
        when it has at least ``min_clips`` rows and ``min_labels`` distinct labels."""
        voices, labels = np.asarray(voices), np.asarray(labels)
        if len(voices) != len(X) or len(labels) != len(X):
            raise ValueError(f"one voice and one label per row: {len(X)} rows, {len(voices)} voices, {len(labels)} labels")
        means, rows = [], np.full(len(X), -1, dtype=np.int64)
        for voice in np.unique(voices):
            own = voices == voice
            present = np.unique(labels[own])
            if own.sum() < min_clips or len(present) < min_labels:
                continue
            rows[own] = len(means)
            means.append(class_balanced_mean(X[own], labels[own]))
        shape = (0, *np.shape(X)[1:])
        table = np.stack(means).astype(np.float32) if means else np.zeros(shape, dtype=np.float32)
        return cls(table, rows)

    def swap(self, batch: np.ndarray, index: np.ndarray, *, p: float, rng: np.random.Generator,
             spread: float = 0.0) -> np.ndarray:
        """``batch`` (the training rows ``index``) with each movable row, with probability ``p``,
        moved into a voice drawn at random from the other usable voices (``spread`` 0) or into a
        new voice drawn from their Gaussian, its deviations scaled by ``spread``."""
        if spread < 0:
            raise ValueError(f"spread scales the voices' deviations and is non-negative, got {spread}")
        own = self.rows[index]
        movable = np.flatnonzero((own >= 0) & (rng.random(len(index)) < p))
        if len(self.means) < 2 or not len(movable):
            return batch
        if spread:
            target = self.draw(len(movable), spread=spread, rng=rng)
        else:  # a different voice: shift by 1..voices-1 around the table
            target = self.means[(own[movable] + rng.integers(1, len(self.means), len(movable))) % len(self.means)]
        out = np.array(batch, dtype=np.float32, copy=True)
        out[movable] += target - self.means[own[movable]]
        return out

    def draw(self, n: int, *, spread: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` new voices ``(n, ...)`` from a Gaussian with the voices' mean and ``spread``² times
        their (unbiased) covariance: the mean plus Gaussian combinations of the deviations."""
        if len(self.means) < 2:
            raise ValueError(f"drawing voices needs at least two usable voices, the table has {len(self.means)}")
        centre = self.means.mean(axis=0)
        deviations = (self.means - centre).reshape(len(self.means), -1)
        z = rng.standard_normal((n, len(self.means))) * (spread / np.sqrt(len(self.means) - 1))
        return (centre + (z @ deviations).reshape(n, *centre.shape)).astype(np.float32)
