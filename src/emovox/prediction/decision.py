"""Turn per-class probabilities into a decision, optionally over a subset of labels.

Restricting to a subset drops the other labels and renormalises. One merge is applied first:
*calm* is a low-arousal neutral in emovox's taxonomy, so when the subset keeps ``neutral`` but
not ``calm``, calm's probability is added to neutral's (the usual 4-class protocol counts calm
as neutral).

Examples:
    >>> scores = restrict({"neutral": 0.2, "calm": 0.3, "happy": 0.1, "angry": 0.4}, ["neutral", "angry"])
    >>> {label: round(p, 3) for label, p in scores.items()}
    {'neutral': 0.556, 'angry': 0.444}
"""

from __future__ import annotations

from collections.abc import Sequence

from emovox.errors import EmovoxError

MERGES = {"calm": "neutral"}


def restrict(scores: dict[str, float], subset: Sequence[str] | None) -> dict[str, float]:
    """Scores over ``subset`` only (in the subset's order), summing to 1."""
    if not subset:
        return dict(scores)
    unknown = [label for label in subset if label not in scores]
    if unknown:
        raise EmovoxError(f"unknown label(s) {', '.join(unknown)}; the model knows {', '.join(scores)}")
    merged = dict(scores)
    for source, target in MERGES.items():
        if source in merged and source not in subset and target in subset:
            merged[target] += merged[source]
    kept = {label: merged[label] for label in subset}
    total = sum(kept.values())
    if total <= 0:
        return {label: 1.0 / len(kept) for label in kept}
    return {label: value / total for label, value in kept.items()}


def top_label(scores: dict[str, float]) -> str:
    """The label with the highest score."""
    return max(scores, key=scores.__getitem__)
