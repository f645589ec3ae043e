"""A model's profile spread: how far apart its training corpora's clips lie, which profiles scale a domain to.

A domain profile (:mod:`emovox.training.profiles`) moves a deployment's clips so that their mean sits
on the training mean. Domains also differ in how far their clips spread around that mean (a language,
a microphone or a speaking style can compress or stretch every feature), and heads read distances. A
model with a profile spread stores, per encoder state and feature, the spread of its training clips
*within* each corpus (:func:`within_corpus_spread`); a profile then also stores, per feature,

    scale = (reference spread / domain spread) ** power

and every clip becomes ``(x - domain mean) * scale + reference``. ``power`` 0 is plain centring,
1 a full standardisation to the training corpora's spread. Measured by leave-one-corpus-out over six
corpora (``experiments/exp_profile_scale.py``), half way (0.5) gained most on archives of every
emotion and cost nothing on mostly-neutral ones; the heads are not retrained (heads trained on scaled
rows did worse).

Stored beside the model as ``profile_spread.safetensors`` (one float32 tensor ``spread``; sha256 and
power in ``config.json``'s ``profile_spread`` entry); nothing is unpickled.

Examples:
    >>> import numpy as np
    >>> X = np.array([[[0.0, 1.0]], [[2.0, 1.0]], [[10.0, 3.0]], [[14.0, 5.0]]])  # 4 clips, 1 state, dim 2
    >>> spread = ProfileSpread(within_corpus_spread(X, ["a", "a", "b", "b"]), power=1.0)
    >>> spread.spread.tolist()
    [[1.5811388492584229, 0.7071067690849304]]
    >>> domain = np.array([[[0.0, 0.0]], [[4.0, 0.2]]])   # the first feature spread twice as wide
    >>> [round(float(s), 3) for s in spread.scale(domain_spread(domain, domain.mean(0), spread.spread,
    ...                                                          shrink_clips=0))[0]]
    [0.791, 7.071]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from emovox.errors import ModelError
from emovox.training.model_config import read_tensors, write_tensors

FILE = "profile_spread.safetensors"
POWER = 0.5
"""Share of the way a profile moves a domain's spread to the training corpora's (0: centring only).
Chosen by leave-one-corpus-out over six corpora, v6.4's heads (``experiments/exp_profile_scale.py``)."""
FLOOR = 1e-6  # a feature that does not vary in a domain is not scaled by more than spread / FLOOR


def within_corpus_spread(X: np.ndarray, corpora: Sequence[str] | np.ndarray) -> np.ndarray:
    """Each feature's spread within a corpus, pooled over ``corpora``: the root of the mean over
    corpora of its variance within each (every corpus counts the same, whatever its size).

    Examples:
        >>> within_corpus_spread(np.array([[0.0], [2.0], [10.0], [10.0]]), ["a", "a", "b", "b"]).tolist()
        [0.7071067690849304]
    """
    names = np.asarray(corpora)
    if len(names) != len(X) or not len(X):
        raise ValueError(f"{len(X)} feature rows for {len(names)} corpus names")
    X = np.asarray(X, np.float64)
    return np.sqrt(np.mean([X[names == c].var(0) for c in np.unique(names)], axis=0)).astype(np.float32)


def domain_spread(X: np.ndarray, mean: np.ndarray, reference: np.ndarray, *, shrink_clips: float) -> np.ndarray:
    """The spread of a domain's clips ``X`` ``(n, n_states, dim)`` around its profile ``mean``, every
    clip weighing the same, shrunk toward the ``reference`` spread by ``shrink_clips`` pseudo-clips
    (as a profile's mean is shrunk toward the training mean).

    Examples:
        >>> X = np.array([[[1.0]], [[3.0]]])
        >>> domain_spread(X, np.array([[2.0]]), np.array([[5.0]]), shrink_clips=0).tolist()
        [[1.0]]
        >>> round(float(domain_spread(X, np.array([[2.0]]), np.array([[5.0]]), shrink_clips=2)[0, 0]), 3)
        3.606
    """
    X = np.asarray(X, np.float64)
    squares = ((X - mean) ** 2).sum(0) + shrink_clips * np.asarray(reference, np.float64) ** 2
    return np.sqrt(squares / (len(X) + shrink_clips)).astype(np.float32)


@dataclasses.dataclass
class ProfileSpread:
    """The training corpora's within-corpus spread ``(n_states, dim)`` and the power profiles scale by."""

    spread: np.ndarray
    power: float = POWER

    def __post_init__(self):
        self.spread = np.asarray(self.spread, np.float32)
        if self.spread.ndim != 2 or not np.isfinite(self.spread).all() or (self.spread < 0).any():
            raise ModelError(f"a profile spread must be a finite, non-negative (n_states, dim) array, got "
                             f"{self.spread.shape}")
        if not 0.0 <= self.power <= 1.0:
            raise ModelError(f"the profile spread's power lies in [0, 1], got {self.power}")

    @classmethod
    def of_training(cls, X: np.ndarray, corpora: Sequence[str] | np.ndarray, power: float = POWER) -> ProfileSpread:
        """The spread a model trained on features ``X`` of clips from ``corpora`` stores (:func:`within_corpus_spread`)."""
        return cls(within_corpus_spread(X, corpora), power)

    def record(self) -> dict:
        """What a model's training record says of it."""
        return {"power": self.power, "spread": "within each training corpus, pooled over corpora (every corpus "
                "counts the same)"}

    def scale(self, domain: np.ndarray) -> np.ndarray:
        """What a profile multiplies a domain's centred clips by, given the domain's spread ``(n, dim)``
        over the first ``n`` encoder states (an export may compute fewer states than the model stores)."""
        domain = np.asarray(domain, np.float32)
        ratio = self.spread[: len(domain)] / np.maximum(domain, FLOOR)
        return (ratio ** self.power).astype(np.float32)

    def save(self, directory: str | os.PathLike) -> dict:
        """Write ``directory/profile_spread.safetensors``; returns its ``config.json`` entry."""
        return {**write_tensors(directory, FILE, {"spread": self.spread}), "power": self.power,
                "shape": list(self.spread.shape)}

    @classmethod
    def load(cls, directory: str | os.PathLike, entry: dict) -> ProfileSpread:
        """The spread that ``entry`` (:meth:`save`'s ``config.json`` entry) describes, read from
        ``directory`` after its sha256 is checked."""
        tensors = read_tensors(directory, {"file": FILE, **entry}, "a profile spread")
        return cls(tensors["spread"], float(entry.get("power", POWER)))

