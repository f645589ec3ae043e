"""Evaluation protocols on cached features: every test speaker is unseen in training.

* :func:`speaker_kfold` — folds of whole speakers (``n_folds = n_speakers`` is leave-one-speaker-out);
* :func:`cross_corpus` — for each corpus, train on the others and test on it;
* :func:`fixed_split` — a given train set and test set.

Each returns :class:`Outcome` objects holding the test utterances' true labels and the
predicted probabilities over the labels the decision is made among. With ``scheme="4class"``
the test labels collapse to neutral/happy/sad/angry (calm counts as neutral) and the decision
is restricted to those four (:func:`emovox.prediction.decision.restrict`). Otherwise, in cross-corpus
tests, the labels are the intersection of the training and test label sets.

Examples:
    >>> Outcome("demo", ["a"], np.array([[0.9, 0.1]]), ["a", "b"], "x").predicted
    ['a']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from emovox.corpora.labels import collapse
from emovox.corpora.manifest import Utterance
from emovox.errors import EmovoxError
from emovox.evaluation.splits import speaker_folds
from emovox.prediction.decision import restrict
from emovox.training.adaptation import adapt_groups
from emovox.training.train import Ensemble, TrainConfig, train_ensemble

Trainer = Callable[[np.ndarray, Sequence[Utterance]], Ensemble]


@dataclasses.dataclass
class Outcome:
    """Predictions on one test set."""

    name: str
    truth: list[str]
    probs: np.ndarray  # (n, len(labels)), rows sum to 1
    labels: list[str]
    split: str
    uncalibrated: np.ndarray | None = None  # the same at temperature 1

    @property
    def predicted(self) -> list[str]:
        return [self.labels[i] for i in self.probs.argmax(1)]


def default_trainer(config: TrainConfig = TrainConfig()) -> Trainer:
    return lambda X, utts: train_ensemble(X, utts, config=config)


ADAPTED = ("; test speakers adapted: each held-out speaker's features are centred on the mean of "
           "that speaker's own unlabelled test clips (transductive, emovox.training.adaptation)")


def _adapted(ensemble: Ensemble, X: np.ndarray, utts: Sequence[Utterance], adapt: bool) -> np.ndarray:
    """``X`` of the test utterances ``utts`` as the ensemble reads them (a fine-tuned encoder's
    states recomputed, :meth:`Ensemble.features_for`), adapted per speaker when asked."""
    X = ensemble.features_for(X, utts)
    return adapt_groups(X, [u.speaker_key for u in utts], ensemble.reference_mean()) if adapt else X


def _decide(ensemble: Ensemble, X: np.ndarray, truth: list[str], labels: list[str], *, calibrated: bool = True,
            adapted: bool = False) -> np.ndarray:
    probs = ensemble.probabilities(X, calibrated=calibrated, adapted=adapted)
    rows = [restrict(dict(zip(ensemble.labels, map(float, p), strict=True)), labels) for p in probs]
    return np.array([[r[l] for l in labels] for r in rows]).reshape(len(rows), len(labels))


def _test_labels(utts: Sequence[Utterance], train_labels: Sequence[str], scheme: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Mask of usable test utterances, their (mapped) labels, and the decision label set."""
    if scheme == "4class":
        mapped = [collapse(u.label, "4class") for u in utts]
        allowed = [l for l in ("neutral", "happy", "sad", "angry")
                   if l in train_labels or (l == "neutral" and "calm" in train_labels)]
    else:
        mapped = [u.label for u in utts]
        allowed = [l for l in train_labels if l in set(mapped)]
    keep = np.array([m is not None and m in allowed for m in mapped])
    return keep, [m for m, k in zip(mapped, keep, strict=True) if k], allowed


def speaker_kfold(X: np.ndarray, utts: Sequence[Utterance], n_folds: int, *, trainer: Trainer | None = None,
                  scheme: str = "full", name: str = "kfold", adapt: bool = False) -> Outcome:
    """Out-of-fold predictions for every utterance, folds made of whole speakers (``adapt``:
    each test speaker adapted on its own clips, :mod:`emovox.training.adaptation`)."""
    trainer = trainer or default_trainer()
    speakers = np.array([u.speaker_key for u in utts])
    folds = speaker_folds(speakers, n_folds)
    truth_all, probs_all, raw_all, labels = [], [], [], None
    order = []
    for test in folds:
        train_utts = [u for u, t in zip(utts, test, strict=True) if not t]
        ensemble = trainer(X[~test], train_utts)
        test_utts = [u for u, t in zip(utts, test, strict=True) if t]
        keep, truth, allowed = _test_labels(test_utts, ensemble.labels, scheme)
        labels = labels or allowed
        if allowed != labels:
            raise EmovoxError("folds see different label sets; use more speakers per fold")
        idx = np.flatnonzero(test)[keep]
        order += list(idx)
        truth_all += truth
        X_test = _adapted(ensemble, X[idx], [utts[i] for i in idx], adapt)
        probs_all.append(_decide(ensemble, X_test, truth, labels, adapted=adapt))
        raw_all.append(_decide(ensemble, X_test, truth, labels, calibrated=False))
    split = (f"speaker-independent {n_folds}-fold: each fold holds out "
             f"{'one speaker' if n_folds == len(set(speakers)) else 'whole speakers'} "
             f"({len(set(speakers))} speakers); heads validate on other held-out speakers of the training part"
             + (ADAPTED if adapt else ""))
    return Outcome(name, truth_all, np.concatenate(probs_all), labels, split, np.concatenate(raw_all))


def cross_corpus(X: np.ndarray, utts: Sequence[Utterance], *, trainer: Trainer | None = None,
                 scheme: str = "4class", adapt: bool = False) -> list[Outcome]:
    """Train on all corpora but one, test on that one; once per corpus."""
    trainer = trainer or default_trainer()
    corpora = np.array([u.corpus for u in utts])
    outcomes = []
    for held in sorted(set(corpora)):
        test = corpora == held
        ensemble = trainer(X[~test], [u for u, t in zip(utts, test, strict=True) if not t])
        test_utts = [u for u, t in zip(utts, test, strict=True) if t]
        keep, truth, allowed = _test_labels(test_utts, ensemble.labels, scheme)
        idx = np.flatnonzero(test)[keep]
        others = ", ".join(sorted(set(corpora[~test])))
        X_test = _adapted(ensemble, X[idx], [utts[i] for i in idx], adapt)
        outcomes.append(Outcome(held, truth, _decide(ensemble, X_test, truth, allowed, adapted=adapt), allowed,
                                f"cross-corpus: train on {others}; test on all of {held} ({scheme} labels {', '.join(allowed)})"
                                + (ADAPTED if adapt else ""),
                                _decide(ensemble, X_test, truth, allowed, calibrated=False)))
    return outcomes


def fixed_split(X_train: np.ndarray, train_utts: Sequence[Utterance], X_test: np.ndarray, test_utts: Sequence[Utterance],
                *, trainer: Trainer | None = None, scheme: str = "full", name: str = "test", adapt: bool = False) -> Outcome:
    """Train on one manifest, test on another (speakers shared between them are reported)."""
    trainer = trainer or default_trainer()
    ensemble = trainer(X_train, train_utts)
    keep, truth, allowed = _test_labels(test_utts, ensemble.labels, scheme)
    shared = {u.speaker_key for u in train_utts} & {u.speaker_key for u in test_utts}
    split = "fixed train/test manifests" + (f"; WARNING: {len(shared)} speakers are in both" if shared
                                            else "; no shared speakers")
    kept = _adapted(ensemble, X_test[keep], [u for u, k in zip(test_utts, keep, strict=True) if k], adapt)
    return Outcome(name, truth, _decide(ensemble, kept, truth, allowed, adapted=adapt), allowed,
                   split + (ADAPTED if adapt else ""),
                   _decide(ensemble, kept, truth, allowed, calibrated=False))
