"""One clip's answer: :class:`Prediction` (label, scores, duration) or :class:`PredictionError`.

Every prediction also carries ``arousal`` and ``valence`` in [-1, 1]. A model trained with
``emovox train --dimensions`` gives them from its heads (a dimensional output trained with the
emotion classes, :mod:`emovox.training.fit`): the prediction's ``dimensions``, the same whatever
``--labels`` subset decides the label. Any other model's are read off its ``scores`` through
the circumplex table of :mod:`emovox.conversation.dimensions`: the probability-weighted mean of
the labels' points. The rule for the table, whatever the labels:

* they follow the ``scores`` the result shows, so with a ``--labels`` subset they come from the
  subset's renormalised scores (calm merged into neutral, see :mod:`emovox.prediction.decision`),
  and scores fused with the words (``--text-model``) use the table even for a model with the
  dimensional output, so that they agree with the fused label;
* a label without a point in the table (a custom label of a fine-tuned model) counts for
  nothing and the other labels' weights are renormalised; when no label has a point, both are 0
  (the centre of the circumplex);
* an abstention (label ``unknown``) changes only the label: the scores, and so arousal and
  valence, are still the model's;
* a long recording judged on its speech (``basis`` set) takes its timeline's time-weighted
  means of the windows' arousal and valence, the same numbers as its timeline's summary.

Examples:
    >>> result = Prediction("sad", {"sad": 0.75, "angry": 0.25}, 1.5)
    >>> result.to_dict()["label"]
    'sad'
    >>> result.arousal, result.valence
    (-0.25, -0.675)
    >>> Prediction("unknown", {"joy": 0.5, "other": 0.5}, 1.0).to_dict()["arousal"]
    0.0
"""

from __future__ import annotations

import dataclasses

UNKNOWN = "unknown"  # the label of an abstention (see Predictor.abstain)


@dataclasses.dataclass
class Prediction:
    """One clip's result: top label, every label's probability, duration in seconds.

    ``basis`` is set when the answer is not the model's judgement of the whole clip: for a
    long recording, ``"speech segments (n=..., ... s of speech)"`` with ``scores`` the share of
    speech time per label (see :func:`emovox.prediction.timeline.predict_recording`).

    ``dimensions`` is ``(arousal, valence)`` when they are not read off ``scores``: the heads'
    own (a model trained with ``--dimensions``), or a long recording's, from its timeline; None
    reads them off the current ``scores`` (the circumplex table).
    """

    label: str
    scores: dict[str, float]
    duration: float
    path: str | None = None
    basis: str | None = None
    dimensions: tuple[float, float] | None = None

    @property
    def arousal(self) -> float:
        """Arousal in [-1, 1] (see the module's rule)."""
        return self._dimensions()[0]

    @property
    def valence(self) -> float:
        """Valence in [-1, 1] (see the module's rule)."""
        return self._dimensions()[1]

    def _dimensions(self) -> tuple[float, float]:
        if self.dimensions is not None:
            return self.dimensions
        from emovox.conversation.dimensions import arousal_valence  # at call time: conversation imports prediction

        return arousal_valence(self.scores)

    def to_dict(self) -> dict:
        out: dict = {"path": self.path} if self.path is not None else {}
        arousal, valence = self._dimensions()
        out = {**out, "label": self.label, "scores": self.scores, "duration": round(self.duration, 3),
               "arousal": arousal, "valence": valence}
        return {**out, "basis": self.basis} if self.basis is not None else out


@dataclasses.dataclass
class PredictionError:
    """A clip that could not be processed, with the reason."""

    path: str
    error: str
    kind: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error, "error_type": self.kind}
