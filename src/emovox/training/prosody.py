"""A model's prosody head: emotion from a clip's eGeMAPS features, heard against its domain.

Prosodic features (:mod:`emovox.features.prosody`: pitch, loudness, voice quality, rhythm) say
little about emotion in absolute terms (a raised voice on one channel is another's normal), and a
classifier on them alone is weak on corpora it never heard (41 % 4-class UA leaving one corpus
out). Standardised by the statistics of their own domain, they carry what the Whisper features
partly miss, so the head is trained on features standardised per training corpus and applied only
where a domain profile made with ``emovox profile --prosody`` (:mod:`emovox.training.profiles`)
supplies the deployment's statistics. Its
log-probabilities are mixed into the model's with a small weight (:meth:`ProsodyHead.fuse`).

The head is a multinomial logistic regression over the model's labels, each corpus weighing the
same and each label the same within the training set (scikit-learn). It is stored beside the
model as ``prosody.safetensors`` (sha256 in ``config.json``); nothing is unpickled.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> F = rng.standard_normal((60, 88)).astype(np.float32)
    >>> labels = ["angry", "sad"] * 30
    >>> F[::2, 0] += 3  # angry clips louder in their corpus
    >>> head = fit_prosody_head(F, labels, ["c1"] * 30 + ["c2"] * 30, ["angry", "sad"], weight=0.2)
    >>> head.probabilities(F[:2]).argmax(1).tolist()
    [0, 1]
    >>> fused = head.fuse(np.array([[0.5, 0.5]]), F[:1])  # the model undecided: the prosody tips it
    >>> bool(fused[0, 0] > 0.5), float(fused.sum().round(6))
    (True, 1.0)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.errors import ModelError
from emovox.features.prosody import FEATURE_SET, N_FEATURES, domain_statistics, standardise
from emovox.training.logistic import rows_for_labels
from emovox.training.model_config import read_tensors, update_config, write_tensors

FILE = "prosody.safetensors"
WEIGHT = 0.1  # share of the prosody head in the fused log-probabilities (experiments/exp_prosody_fusion.py)
C = 0.1  # inverse L2 strength of the logistic regression


@dataclasses.dataclass
class ProsodyHead:
    """Logistic regression over the model's ``labels`` from domain-standardised eGeMAPS features."""

    labels: list[str]
    coef: np.ndarray  # (n_labels, 88)
    intercept: np.ndarray  # (n_labels,)
    weight: float = WEIGHT

    def __post_init__(self):
        self.coef = np.asarray(self.coef, np.float32)
        self.intercept = np.asarray(self.intercept, np.float32)
        if self.coef.shape != (len(self.labels), N_FEATURES) or self.intercept.shape != (len(self.labels),):
            raise ModelError(f"prosody head of shape {self.coef.shape}/{self.intercept.shape} does not fit "
                             f"{len(self.labels)} labels of {N_FEATURES} features")
        if not 0.0 <= self.weight <= 1.0:
            raise ModelError(f"prosody weight must be in [0, 1], got {self.weight}")

    def probabilities(self, Z: np.ndarray) -> np.ndarray:
        """``(n, n_labels)`` from features standardised by their domain (:func:`standardise`)."""
        logits = np.asarray(Z, np.float64) @ self.coef.T.astype(np.float64) + self.intercept
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)

    def fuse(self, probs: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """``probs`` (the model's, over the same labels) mixed with this head's on ``Z``:
        ``softmax((1 - w) log probs + w log prosody)``, ``w`` = :attr:`weight`."""
        probs = np.asarray(probs, np.float64)
        mixed = (1 - self.weight) * np.log(np.clip(probs, 1e-12, None)) \
            + self.weight * np.log(np.clip(self.probabilities(Z), 1e-12, None))
        mixed -= mixed.max(1, keepdims=True)
        out = np.exp(mixed)
        return (out / out.sum(1, keepdims=True)).astype(np.float32)

    def save(self, directory: str | os.PathLike) -> dict:
        """Write :data:`FILE` into ``directory``; returns the ``config.json`` entry that describes it."""
        return {**write_tensors(directory, FILE, {"coef": self.coef, "intercept": self.intercept}),
                "feature_set": FEATURE_SET, "labels": list(self.labels), "weight": self.weight}

    @classmethod
    def load(cls, directory: str | os.PathLike, entry: dict, labels: Sequence[str] | None = None) -> ProsodyHead:
        """The head that ``entry`` (:meth:`save`'s ``config.json`` entry) describes, read from
        ``directory`` after its sha256 is checked; ``labels``: the model's, which the head's must equal."""
        entry = {"file": FILE, **entry}
        path = Path(directory) / str(entry["file"])
        if entry.get("feature_set") != FEATURE_SET:
            raise ModelError(f"{path}: prosody features {entry.get('feature_set')!r}, this emovox reads {FEATURE_SET}")
        tensors = read_tensors(directory, entry, "a prosody head")
        if labels is not None and list(entry.get("labels", [])) != list(labels):
            raise ModelError(f"{path}: the prosody head's labels {entry.get('labels')} are not the model's {list(labels)}")
        return cls(list(entry["labels"]), tensors["coef"], tensors["intercept"], float(entry["weight"]))


def fit_prosody_head(F: np.ndarray, labels: Sequence[str], corpora: Sequence[str], model_labels: Sequence[str], *,
                     weight: float = WEIGHT, C: float = C) -> ProsodyHead:
    """Fit a :class:`ProsodyHead` on raw eGeMAPS features ``F`` ``(n, 88)`` of clips with ``labels``
    from ``corpora``: each corpus is standardised by its own statistics (as a profile standardises
    a deployment), every corpus weighs the same and every label the same. Clips whose label is not
    in ``model_labels`` are left out."""
    from sklearn.linear_model import LogisticRegression

    F = np.asarray(F, np.float32)
    labels, corpora = np.asarray(labels, dtype=str), np.asarray(corpora, dtype=str)
    if F.shape != (len(labels), N_FEATURES) or len(corpora) != len(labels):
        raise ValueError(f"features {F.shape} for {len(labels)} labels and {len(corpora)} corpora")
    keep = np.isin(labels, list(model_labels))
    if len(set(labels[keep])) < 2:
        raise ValueError("the prosody head needs clips of at least two of the model's labels")
    Z = np.zeros_like(F)
    for corpus in np.unique(corpora):
        rows = corpora == corpus
        Z[rows] = standardise(F[rows], *domain_statistics(F[rows]))
    Z, y, c = Z[keep], labels[keep], corpora[keep]
    w = np.ones(len(y))
    for corpus in np.unique(c):
        w[c == corpus] /= (c == corpus).sum()
    for label in np.unique(y):
        w[y == label] /= w[y == label].sum()
    clf = LogisticRegression(C=C, max_iter=3000)
    clf.fit(Z, y, sample_weight=w * len(y))
    coef, intercept = rows_for_labels(clf, model_labels)
    return ProsodyHead(list(model_labels), coef, intercept, weight)


def add_prosody_head(model_dir: str | os.PathLike, utterances: Sequence, *, weight: float = WEIGHT,
                     training: dict | None = None) -> ProsodyHead:
    """Fit a prosody head for the model in ``model_dir`` on its training ``utterances``
    (:class:`~emovox.corpora.manifest.Utterance`; their eGeMAPS features from the cache,
    :func:`~emovox.features.prosody.cached_prosody_features`) and write it there (``prosody.safetensors``
    and the ``prosody`` entry of ``config.json``); ``training``: entries to set in the config's training
    record as well, in the same write."""
    from emovox.features.prosody import cached_prosody_features

    directory = Path(model_dir)
    labels = json.loads((directory / "config.json").read_text())["labels"]
    F = cached_prosody_features([u.path for u in utterances])
    head = fit_prosody_head(F, [u.label for u in utterances], [u.corpus for u in utterances], labels, weight=weight)
    update_config(directory, {"prosody": head.save(directory)}, training)
    return head
