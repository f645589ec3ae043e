"""Arousal and valence in [-1, 1]: the circumplex points of the emotion labels.

Each emotion label sits at a fixed point of the circumplex of affect (Russell, J. A. (1980). A
circumplex model of affect. *Journal of Personality and Social Psychology*, 39(6), 1161–1178),
in the coordinates that speech-emotion work commonly uses for mapping categories onto arousal
and valence (:data:`CIRCUMPLEX`). The table serves twice:

* **training targets** of the dimensional output of a model trained with ``emovox train
  --dimensions`` (:mod:`emovox.training.fit`): each clip's target is its label's point, a clip
  whose label has none adds nothing to that loss. Such a model gives every prediction the heads'
  own arousal and valence (``dimensions: "head"`` in its ``config.json``), which can move
  within a class, not only between classes;
* **the mapping** for any other model (:func:`arousal_valence`): a window's arousal and valence
  are the probability-weighted mean of its labels' points. They move only as far as the class
  probabilities move: a confident "angry" gives high arousal and negative valence; a window
  split between happy and sad lands near the middle. Labels without a point (``unknown``) are
  left out and the rest renormalised.

The 3-level accuracy of both on corpora never heard is in ``docs/conversations.md``.

=========  =======  =======
label      arousal  valence
=========  =======  =======
angry       +0.8     -0.6
happy       +0.6     +0.8
sad         -0.6     -0.7
neutral      0.0      0.0
calm        -0.5     +0.3
fear        +0.7     -0.6
disgust     +0.2     -0.7
surprise    +0.8     +0.3
boredom     -0.7     -0.3
=========  =======  =======

Examples:
    >>> arousal_valence({"angry": 1.0, "sad": 0.0})
    (0.8, -0.6)
    >>> arousal_valence({"happy": 0.5, "sad": 0.5})
    (0.0, 0.05)
    >>> arousal_valence({"unknown": 1.0})
    (0.0, 0.0)
"""

from __future__ import annotations

CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "angry": (0.8, -0.6),
    "happy": (0.6, 0.8),
    "sad": (-0.6, -0.7),
    "neutral": (0.0, 0.0),
    "calm": (-0.5, 0.3),
    "fear": (0.7, -0.6),
    "disgust": (0.2, -0.7),
    "surprise": (0.8, 0.3),
    "boredom": (-0.7, -0.3),
}
"""(arousal, valence) of each label of :data:`emovox.corpora.labels.EMOTIONS`."""


def arousal_valence(scores: dict[str, float]) -> tuple[float, float]:
    """The probability-weighted (arousal, valence) of ``scores``, each rounded to 4 decimals;
    (0, 0) when no label has a point."""
    weights = {label: p for label, p in scores.items() if label in CIRCUMPLEX and p > 0}
    total = sum(weights.values())
    if not total:
        return 0.0, 0.0
    arousal = sum(p * CIRCUMPLEX[label][0] for label, p in weights.items()) / total
    valence = sum(p * CIRCUMPLEX[label][1] for label, p in weights.items()) / total
    return round(arousal + 0.0, 4), round(valence + 0.0, 4)


LEVEL = 0.3  # |arousal| or |valence| from which a value counts as high/low (positive/negative)


def level(value: float, names: tuple[str, str, str] = ("low", "mid", "high"), threshold: float = LEVEL) -> str:
    """The 3-level name of an arousal or valence value: below ``-threshold``, between, above.

    Examples:
        >>> level(0.8), level(-0.1), level(-0.6, ("negative", "neutral", "positive"))
        ('high', 'mid', 'negative')
    """
    return names[0] if value <= -threshold else names[2] if value >= threshold else names[1]


def add_dimensions(segments) -> None:
    """Set ``arousal`` and ``valence`` from its scores on every :class:`emovox.prediction.timeline.Segment`
    that has none yet (a window of a model with the dimensional output has the heads')."""
    for s in segments:
        if s.arousal is None:
            s.arousal, s.valence = arousal_valence(s.scores)
