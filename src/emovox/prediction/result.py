"""One clip's answer: :class:`Prediction` (label, scores, duration) or :class:`PredictionError`.

Examples:
    >>> Prediction("sad", {"sad": 0.75, "angry": 0.25}, 1.5).to_dict()["label"]
    'sad'
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
    """

    label: str
    scores: dict[str, float]
    duration: float
    path: str | None = None
    basis: str | None = None

    def to_dict(self) -> dict:
        out: dict = {"path": self.path} if self.path is not None else {}
        out = {**out, "label": self.label, "scores": self.scores, "duration": round(self.duration, 3)}
        return {**out, "basis": self.basis} if self.basis is not None else out


@dataclasses.dataclass
class PredictionError:
    """A clip that could not be processed, with the reason."""

    path: str
    error: str
    kind: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error, "error_type": self.kind}

