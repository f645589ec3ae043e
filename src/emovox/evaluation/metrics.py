"""Classification metrics for SER, computed by scikit-learn.

WA is plain accuracy, UA the mean per-class recall (balanced accuracy), plus macro and weighted
F1, per-class precision/recall/F1, the confusion matrix (counts and row-normalised) and the
expected calibration error of the top-class probability.

Examples:
    >>> import numpy as np
    >>> m = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b"])
    >>> m["wa"], m["ua"]
    (0.75, 0.75)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def expected_calibration_error(probs: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-class confidence in ``n_bins`` equal-width bins."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def reliability_bins(probs: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Per-bin confidence, accuracy and count, for a reliability diagram."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        out.append({"lo": float(lo), "hi": float(hi), "count": int(in_bin.sum()),
                    "confidence": float(confidence[in_bin].mean()) if in_bin.any() else None,
                    "accuracy": float(correct[in_bin].mean()) if in_bin.any() else None})
    return out


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str], probs: np.ndarray | None = None
) -> dict:
    """All metrics as plain floats/lists (JSON-ready). ``probs`` columns follow ``labels``."""
    y_true, y_pred, labels = np.asarray(y_true), np.asarray(y_pred), list(labels)
    present = [l for l in labels if l in set(y_true)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    out = {
        "n": int(len(y_true)),
        "labels": labels,
        "wa": float(accuracy_score(y_true, y_pred)),
        "ua": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "per_class": {l: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, l in enumerate(labels)},
        "confusion": cm.tolist(),
        "confusion_normalized": np.round(cm_norm, 4).tolist(),
    }
    if probs is not None:
        correct = np.asarray(y_pred) == np.asarray(y_true)
        out["ece"] = expected_calibration_error(probs, correct)
        out["reliability"] = reliability_bins(probs, correct)
    return out
