"""Fuse the acoustic model's probabilities with the text branch's, gated by the words.

Most speech says nothing emotional in its words ("the meeting is at three"); the text branch
then answers *neutral*, which says nothing about how it was said. So the text branch only
speaks when it is confident the words themselves are emotional:

    e    = 1 - p_text(neutral)                          how emotional the words are
    gate = weight * clip((e - threshold) / (1 - threshold), 0, 1)

and only on the labels both branches know (``shared``; the audio model's other labels, such
as calm, keep their probability). On those, the audio mass ``m`` is redistributed:

    fused(l) = (1 - gate) * p_audio(l) + gate * m * p_text(l) / sum_shared p_text

When the words are neutral (``e <= threshold``) the gate is 0 and the result *is* the audio
result; the output always sums to 1 and keeps the audio model's label order.

Examples:
    >>> audio = {"neutral": 0.5, "calm": 0.1, "happy": 0.1, "angry": 0.3}
    >>> fuse(audio, {"neutral": 0.95, "happy": 0.02, "angry": 0.03}) == audio
    True
    >>> fused = fuse(audio, {"neutral": 0.02, "happy": 0.03, "angry": 0.95})
    >>> max(fused, key=fused.get), round(sum(fused.values()), 6), fused["calm"]
    ('angry', 1.0, 0.1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_WEIGHT = 0.5
DEFAULT_THRESHOLD = 0.3


def text_gate(p_text_neutral: np.ndarray | float, *, weight: float = DEFAULT_WEIGHT,
              threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """How much the text branch counts: 0 for neutral words, up to ``weight`` for clearly
    emotional ones (see the module docstring).

    Examples:
        >>> text_gate([1.0, 0.8, 0.0], weight=0.5, threshold=0.3).tolist()
        [0.0, 0.0, 0.5]
    """
    if not 0.0 <= weight <= 1.0 or not 0.0 <= threshold < 1.0:
        raise ValueError(f"need 0 <= weight <= 1 and 0 <= threshold < 1 (got {weight}, {threshold})")
    emotional = 1.0 - np.asarray(p_text_neutral, dtype=np.float64)
    return weight * np.clip((emotional - threshold) / (1.0 - threshold), 0.0, 1.0)


def fuse_arrays(audio: np.ndarray, audio_labels: Sequence[str], text: np.ndarray, text_labels: Sequence[str], *,
                weight: float = DEFAULT_WEIGHT, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Fuse batches: ``audio`` ``(n, len(audio_labels))``, ``text`` ``(n, len(text_labels))``.

    Returns:
        ``(n, len(audio_labels))`` fused probabilities, rows summing to 1.

    Raises:
        ValueError: the text labels lack ``"neutral"``, shapes differ, or no label is shared.
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    text = np.atleast_2d(np.asarray(text, dtype=np.float64))
    if "neutral" not in text_labels:
        raise ValueError("the text branch must have a neutral label: it gates the fusion")
    if audio.shape != (len(text), len(audio_labels)) or text.shape[1] != len(text_labels):
        raise ValueError(f"shapes do not match: audio {audio.shape}, text {text.shape}")
    shared = [l for l in audio_labels if l in text_labels]
    if len(shared) < 2:
        raise ValueError(f"the branches share fewer than two labels ({shared})")
    a_idx = [list(audio_labels).index(l) for l in shared]
    t_idx = [list(text_labels).index(l) for l in shared]
    gate = text_gate(text[:, list(text_labels).index("neutral")], weight=weight, threshold=threshold)[:, None]
    mass = audio[:, a_idx].sum(axis=1, keepdims=True)
    q = text[:, t_idx]
    q = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
    out = audio.copy()
    out[:, a_idx] = (1.0 - gate) * audio[:, a_idx] + gate * mass * q
    return out


def fuse(audio: Mapping[str, float], text: Mapping[str, float], *, weight: float = DEFAULT_WEIGHT,
         threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """Fuse one clip's ``{label: probability}`` from each branch (see :func:`fuse_arrays`).

    Args:
        audio: the acoustic model's scores (its label order is kept).
        text: the text model's scores; must include ``"neutral"``.
        weight: the largest share the text branch can take, in [0, 1].
        threshold: text-emotional confidence ``1 - p(neutral)`` below which words count for nothing.
    """
    if weight == 0.0 or text_gate(text.get("neutral", 1.0), weight=weight, threshold=threshold) == 0.0:
        return dict(audio)
    labels = list(audio)
    fused = fuse_arrays(np.array([list(audio.values())]), labels, np.array([list(text.values())]), list(text),
                        weight=weight, threshold=threshold)[0]
    return {l: float(p) for l, p in zip(labels, fused, strict=True)}


def fuse_transcript(audio: Mapping[str, float], transcript: str, language: str | None = None, *,
                    text_model=None, weight: float = DEFAULT_WEIGHT) -> dict[str, float]:
    """Fuse audio scores with what the text model reads in ``transcript``.

    The threshold is the one the text model measured for the encoder that reads ``language``
    (see ``scripts/train_text.py``); an empty transcript returns the audio scores.

    Args:
        audio: the acoustic model's ``{label: probability}``.
        transcript: the words (from :mod:`emovox.text.transcribe` or a reference).
        language: ISO 639-1 code; picks the sentence encoder.
        text_model: a :class:`emovox.text.TextEmotionModel` (default: the shipped one).
        weight: the largest share the text branch can take.
    """
    if not transcript.strip():
        return dict(audio)
    if text_model is None:
        from emovox.text import load_text_model

        text_model = load_text_model()
    encoder = text_model.encoder_for(language)
    text = dict(zip(text_model.labels, map(float, text_model.probabilities([transcript], language)[0]), strict=True))
    return fuse(audio, text, weight=weight, threshold=text_model.gate_threshold(encoder))
