"""A model's linear head: one logistic regression over every encoder state, mixed into the heads' answer.

The MLP heads (:class:`emovox.training.head.EmotionHead`) read a learned average of the encoder states
through a hidden layer; they fit the training corpora's voices and channels closely. A multinomial
logistic regression over every state's standardised pooled vector, side by side (7 x 1024 values for
whisper-base), strongly regularised, has less room to do so and errs elsewhere: mixing the two helped
on speech neither heard (``experiments/exp_linear_heads.py``; leave-one-corpus-out over six corpora). Its
log-probabilities are mixed with the heads' with weight ``w`` (:func:`mix_log_probabilities`):
``softmax((1 - w) log p_heads + w log p_linear)``, on single clips and speaker-adapted clips.

A model may have a second one beside its profile heads (``profile_linear_head.safetensors``, :data:`PROFILE_FILE`),
mixed into their answer where a domain profile centres the audio: it reads what they read, each state's mean over
frames (``inputs="mean"``), and is fitted on every training corpus moved to the mean of all (``rows="centred"``), as
a profile moves a deployment's audio (``experiments/exp_profile_linear.py``: +0.8 UA with a profile over five random
halves of six held-out corpora).

It is fitted with scikit-learn (every training clip twice, as recorded and with its corpus's mean subtracted,
so centred on zero, where the heads' ``--centre-corpora both`` rows move each corpus to the mean of all;
every label weighing the same) and stored beside the
heads as ``linear_head.safetensors`` (sha256 in ``config.json``). In the ONNX graphs it is one more
MatMul inside the head graph, so every backend answers alike.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 2, 3)).astype(np.float32)
    >>> labels = ["angry", "sad"] * 40
    >>> X[::2, 1, 0] += 6.0                                  # angry clips differ in state 1
    >>> head = fit_linear_head(X, labels, ["c1"] * 40 + ["c2"] * 40, ["angry", "sad", "fear"], weight=0.3,
    ...                        strength=1.0)
    >>> bool((head.probabilities(X).argmax(1) == np.arange(80) % 2).mean() > 0.9)
    True
    >>> bool(head.probabilities(X[:1])[0, 2] < 1e-6)       # a label no training clip had never wins
    True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emovox.errors import ModelError
from emovox.training.logistic import rows_for_labels
from emovox.training.model_config import read_tensors, write_tensors

FILE = "linear_head.safetensors"
PROFILE_FILE = "profile_linear_head.safetensors"  # the one beside the profile heads
INPUTS = ("mean_std", "mean")  # what it reads of each state's pooled vector: all of it, or its first half (the mean)
ROWS = ("zero", "centred")  # what fit_linear_head fits on (see there)
WEIGHT = 0.3  # share of the linear head in the mixed log-probabilities (experiments/exp_linear_heads.py)
STRENGTH = 3e-4  # C of the logistic regression (inverse L2 strength; rows standardised)


class LinearHead(nn.Module):
    """Every state's pooled vector standardised (training statistics, as buffers), side by side, one linear
    map to logits over the model's labels; :attr:`weight` is its share where mixed with the heads,
    :attr:`strength` the regression's ``C`` it was fitted with (a record). ``inputs="mean"``: it reads the
    first ``dim`` values of each state's vector (the mean over frames, where the vectors are mean and std,
    ``2 dim`` long), as profile heads do.

    Examples:
        >>> head = LinearHead(2, 3, 4, inputs="mean")
        >>> head(torch.zeros(5, 2, 6)).shape, head.shape
        (torch.Size([5, 4]), (2, 3, 4))
    """

    def __init__(self, n_states: int, dim: int, n_classes: int, weight: float = WEIGHT, strength: float = STRENGTH,
                 inputs: str = "mean_std"):
        super().__init__()
        if not 0.0 < weight < 1.0:
            raise ModelError(f"a linear head's weight must be in (0, 1), got {weight}")
        if inputs not in INPUTS:
            raise ModelError(f"a linear head reads one of {INPUTS}, not {inputs!r}")
        self.weight, self.strength, self.inputs = float(weight), float(strength), inputs
        self.register_buffer("feature_mean", torch.zeros(n_states, dim))
        self.register_buffer("feature_std", torch.ones(n_states, dim))
        self.linear = nn.Linear(n_states * dim, n_classes)

    @property
    def layer_index(self) -> torch.Tensor:
        """The encoder states it reads: all of them (what the export's features output must hold)."""
        return torch.arange(self.feature_mean.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_states, dim, n_classes)``."""
        n_states, dim = self.feature_mean.shape
        return n_states, dim, self.linear.out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` from pooled features ``(batch, n_states, dim)`` (``2 dim`` under
        ``inputs="mean"``)."""
        if self.inputs == "mean":
            features = features[..., : self.feature_mean.shape[1]]
        x = (features - self.feature_mean) / self.feature_std
        return self.linear(x.flatten(1))

    @torch.no_grad()
    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """This head's own probabilities ``(n, n_classes)`` for features ``X``."""
        logits = self(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))
        return torch.softmax(logits, -1).numpy()

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: t.detach().numpy().astype(np.float32) for name, t in self.state_dict().items()}

    def save(self, directory: str | os.PathLike, labels: Sequence[str], file: str = FILE) -> dict:
        """Write ``file`` (:data:`FILE`, or :data:`PROFILE_FILE` for the one beside the profile heads) into
        ``directory``; returns the ``config.json`` entry that describes it."""
        n_states, dim, n_classes = self.shape
        if n_classes != len(labels):
            raise ValueError(f"a linear head of {n_classes} classes for {len(labels)} labels")
        return {**write_tensors(directory, file, self.tensors()), "labels": list(labels), "weight": self.weight,
                "strength": self.strength, "n_states": n_states, "dim": dim, "inputs": self.inputs}

    @classmethod
    def load(cls, directory: str | os.PathLike, entry: dict, labels: Sequence[str]) -> LinearHead:
        """The head ``entry`` (:meth:`save`'s ``config.json`` entry) describes, read from ``directory`` after
        its sha256 is checked; its labels must be the model's ``labels``."""
        path = Path(directory) / str(entry.get("file", FILE))
        if list(entry.get("labels", [])) != list(labels):
            raise ModelError(f"{path}: the linear head's labels {entry.get('labels')} are not the model's {list(labels)}")
        tensors = read_tensors(directory, {"file": FILE, **entry}, "a linear head")
        head = cls(int(entry["n_states"]), int(entry["dim"]), len(labels), float(entry["weight"]),
                   float(entry.get("strength", STRENGTH)), str(entry.get("inputs", "mean_std")))
        try:
            head.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
        except RuntimeError as exc:
            raise ModelError(f"{path}: {exc}") from None
        return head.eval()


def mix_log_probabilities(probs: torch.Tensor, linear_logits: torch.Tensor, weight: float) -> torch.Tensor:
    """``softmax((1 - weight) log probs + weight log_softmax(linear_logits))``: the heads' probabilities
    with the linear head's mixed in (torch, so that the ONNX head graph computes it too).

    Examples:
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> mix_log_probabilities(p, torch.tensor([[2.0, 0.0]]), 0.5)[0, 0] > 0.5
        tensor(True)
    """
    mixed = (1 - weight) * torch.log(probs.clamp_min(1e-12)) + weight * torch.log_softmax(linear_logits, dim=-1)
    return torch.softmax(mixed, dim=-1)


def centred_rows(X: np.ndarray, corpora: Sequence[str], rows: str = "zero") -> np.ndarray:
    """The rows a linear head is fitted on. ``rows="zero"``: ``X`` and, after it, every row less its corpus's mean
    (centred on zero; the heads' ``--centre-corpora both`` rows, :func:`emovox.training.train.training_rows`,
    move each corpus to the mean of all rows instead); ``rows="centred"``: every corpus moved to the mean of all
    rows, alone (what a domain profile does to a deployment's audio).

    Examples:
        >>> X = np.array([[1.0], [3.0], [5.0]])
        >>> centred_rows(X, ["a", "a", "b"])[:, 0].tolist()
        [1.0, 3.0, 5.0, -1.0, 1.0, 0.0]
        >>> centred_rows(X, ["a", "a", "b"], "centred")[:, 0].tolist()
        [2.0, 4.0, 3.0]
    """
    if rows not in ROWS:
        raise ValueError(f"rows {rows!r}: one of {ROWS}")
    corpora = np.asarray(corpora, dtype=str)
    target = X.mean(axis=0) if rows == "centred" else 0.0
    centred = np.array(X, copy=True)
    for corpus in np.unique(corpora):
        centred[corpora == corpus] += target - X[corpora == corpus].mean(axis=0)
    return centred if rows == "centred" else np.concatenate([X, centred])


def fit_linear_head(X: np.ndarray, labels: Sequence[str], corpora: Sequence[str], model_labels: Sequence[str], *,
                    weight: float = WEIGHT, strength: float = STRENGTH, max_iter: int = 300, rows: str = "zero",
                    inputs: str = "mean_std", copies: np.ndarray | None = None) -> LinearHead:
    """Fit a :class:`LinearHead` on pooled features ``X`` ``(n, n_states, dim)`` of clips with ``labels`` from
    ``corpora``: every clip as recorded and less its corpus's mean (``rows="zero"``), or every corpus moved to the
    mean of all (``rows="centred"``, the head beside the profile heads; :func:`centred_rows`), features
    standardised on those rows, every label weighing the same (multinomial, L2, ``C = strength``). Clips
    whose label is not in ``model_labels`` are left out. ``inputs="mean"``: the head reads the first half of
    each state's vector (its mean over frames), as profile heads do. ``copies``: ``(k, n, n_states, dim)`` augmented
    copies of the clips (e.g. :func:`emovox.training.train.room_copies`), fitted beside them with each clip's label and
    corpus (v7.5's single-clip head hears every clip also in a simulated room).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((60, 2, 4)).astype(np.float32)
        >>> X[::2, 0, 1] += 5.0                                 # angry clips differ in a mean
        >>> head = fit_linear_head(X, ["angry", "sad"] * 30, ["c1"] * 60, ["angry", "sad"], rows="centred",
        ...                        inputs="mean", strength=1.0)
        >>> head.shape, bool((head.probabilities(X).argmax(1) == np.arange(60) % 2).mean() > 0.9)
        ((2, 2, 2), True)
    """
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float32)
    labels, corpora = np.asarray(labels, dtype=str), np.asarray(corpora, dtype=str)
    if X.ndim != 3 or len(X) != len(labels) or len(corpora) != len(labels):
        raise ValueError(f"features {X.shape} for {len(labels)} labels and {len(corpora)} corpora")
    if copies is not None:
        if copies.shape[1:] != X.shape:
            raise ValueError(f"copies {copies.shape} for features {X.shape}")
        X = np.concatenate([X, *np.asarray(copies, np.float32)])
        labels, corpora = np.tile(labels, 1 + len(copies)), np.tile(corpora, 1 + len(copies))
    if inputs not in INPUTS:
        raise ValueError(f"inputs {inputs!r}: one of {INPUTS}")
    if inputs == "mean":
        X = X[..., : X.shape[-1] // 2]
    keep = np.isin(labels, list(model_labels))
    if len(set(labels[keep])) < 2:
        raise ValueError("the linear head needs clips of at least two of the model's labels")
    fit_rows = centred_rows(X[keep], corpora[keep], rows)
    y = np.concatenate([labels[keep]] * (len(fit_rows) // int(keep.sum())))
    mean, std = fit_rows.mean(axis=0), fit_rows.std(axis=0) + 1e-6
    clf = LogisticRegression(C=strength, max_iter=max_iter, class_weight="balanced")
    clf.fit(((fit_rows - mean) / std).reshape(len(fit_rows), -1), y)
    coef, intercept = rows_for_labels(clf, model_labels)
    head = LinearHead(X.shape[1], X.shape[2], len(model_labels), weight, strength, inputs)
    with torch.no_grad():
        head.feature_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        head.feature_std.copy_(torch.from_numpy(std.astype(np.float32)))
        head.linear.weight.copy_(torch.from_numpy(coef))
        head.linear.bias.copy_(torch.from_numpy(intercept))
    return head.eval()
