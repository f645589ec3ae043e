"""The emotion head: learned layer weights over pooled Whisper features, then a small MLP.

Input is ``(batch, n_states, dim)`` — one pooled vector per encoder layer. Features are
standardised with statistics of the training set (stored as buffers, so they travel with the
weights), mixed by a softmax over learned per-layer weights, and classified by a two-layer MLP.

A head made with ``dimensions=True`` also has a dimensional output: a linear layer from the
same hidden layer to two values squashed by tanh, (arousal, valence) in [-1, 1], trained with
the emotion logits (multi-task, :mod:`emovox.training.fit`). ``forward`` still returns the
logits only, so every caller of a head made before works unchanged; :meth:`EmotionHead.outputs`
gives both.

A head made with ``inputs="mean"`` reads only the first ``dim`` values of each state's pooled
vector, the mean over frames, and ignores the std that follows: it takes the same
``(batch, n_states, 2 dim)`` features as a whole-vector head beside it. A model's profile heads are
such heads (:func:`means_only`; used when a domain profile centres the audio, see
:mod:`emovox.training.profiles`).

Examples:
    >>> import torch
    >>> head = EmotionHead(n_states=3, dim=8, n_classes=4, hidden=16)
    >>> head(torch.randn(2, 3, 8)).shape
    torch.Size([2, 4])
    >>> logits, dims = EmotionHead(3, 8, 4, hidden=16, dimensions=True).outputs(torch.randn(2, 3, 8))
    >>> dims.shape, bool(dims.abs().max() <= 1)
    (torch.Size([2, 2]), True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from emovox.training.linear_head import LinearHead, mix_log_probabilities


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Shape and regularisation of an :class:`EmotionHead`."""

    n_states: int
    dim: int
    n_classes: int
    hidden: int = 256
    dropout: float = 0.3
    layers: tuple[int, ...] | None = None  # encoder states the head reads (None: all)
    dimensions: bool = False  # also (arousal, valence) from the hidden layer (models saved before: no)
    # "mean_std": the whole pooled vector of each state (dim values); "mean": its first dim values of 2 dim,
    # the mean over frames without the std (profile heads; models saved before: "mean_std")
    inputs: str = "mean_std"

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")


INPUTS = ("mean_std", "mean")


class EmotionHead(nn.Module):
    """Layer-weighted pooled features → logits over emotion classes."""

    def __init__(self, n_states: int, dim: int, n_classes: int, *, hidden: int = 256, dropout: float = 0.3,
                 layers: tuple[int, ...] | list[int] | None = None, dimensions: bool = False, inputs: str = "mean_std"):
        super().__init__()
        layers = tuple(int(i) for i in layers) if layers is not None else None
        self.config = HeadConfig(n_states, dim, n_classes, hidden, dropout, layers, bool(dimensions), inputs)
        self.register_buffer("layer_index", torch.tensor(layers if layers is not None else range(n_states), dtype=torch.long))
        n_used = len(self.layer_index)
        self.register_buffer("feature_mean", torch.zeros(n_used, dim))
        self.register_buffer("feature_std", torch.ones(n_used, dim))
        self.layer_logits = nn.Parameter(torch.zeros(n_used))
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
        # only when asked: a head without it keeps the state dict of the models saved before;
        # initialised on a forked generator, so that the dropout masks of training (and so the
        # emotion path, when the dims do not share its gradients) are those of a head without it
        self.dims: nn.Linear | None = None
        # while training only (emovox.training.fit, FitConfig.nuisance_dims): orthonormal columns (dim, k)
        # projected out of the mixed input; fold_nuisance() moves the projection into the first linear layer
        self.nuisance: torch.Tensor | None = None
        if dimensions:
            with torch.random.fork_rng(devices=[]):
                self.dims = nn.Linear(hidden, 2)

    @classmethod
    def from_config(cls, config: HeadConfig) -> EmotionHead:
        return cls(config.n_states, config.dim, config.n_classes, hidden=config.hidden, dropout=config.dropout,
                   layers=config.layers, dimensions=config.dimensions, inputs=config.inputs)

    def set_normalization(self, features: torch.Tensor) -> None:
        """Store per-layer, per-dimension mean and std of training ``features`` (all states)."""
        if self.config.inputs == "mean":
            features = features[..., : self.config.dim]
        features = features[:, self.layer_index]
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-5))

    def layer_weights(self) -> torch.Tensor:
        """Softmax weights given to each encoder layer."""
        return torch.softmax(self.layer_logits, dim=0)

    @property
    def has_dimensions(self) -> bool:
        return self.dims is not None

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        """The MLP's hidden layer (after its activation and dropout), ``(batch, hidden)``."""
        if self.config.inputs == "mean":
            features = features[..., : self.config.dim]  # each state's mean over frames; its std is not read
        x = (features[:, self.layer_index] - self.feature_mean) / self.feature_std
        x = torch.einsum("bld,l->bd", x, self.layer_weights())
        if self.nuisance is not None:
            x = x - (x @ self.nuisance) @ self.nuisance.T
        return self.mlp[:-1](x)

    @torch.no_grad()
    def fold_nuisance(self) -> None:
        """Move the training-time projection into the first linear layer (``W (I - U U^T)``), so that
        the head answers the same without it (dropout is off at inference) and saves as any head."""
        if self.nuisance is None:
            return
        first = self.mlp[1]
        first.weight -= (first.weight @ self.nuisance) @ self.nuisance.T
        self.nuisance = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp[-1](self.hidden(features))

    def outputs(self, features: torch.Tensor, *, detach: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``(batch, n_classes)`` and (arousal, valence) ``(batch, 2)`` in [-1, 1] (None
        for a head without the dimensional output), from one pass. ``detach``: the dimensional
        output reads the hidden layer without passing gradients back into it (training only)."""
        h = self.hidden(features)
        return self.mlp[-1](h), None if self.dims is None else torch.tanh(self.dims(h.detach() if detach else h))


@torch.no_grad()
def predict_logits(head: EmotionHead, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits ``(n, n_classes)`` of ``head`` (in eval mode) for features ``X``, in batches."""
    head.eval()
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = [head(torch.from_numpy(X[i : i + batch_size])) for i in range(0, len(X), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.config.n_classes), np.float32)


def means_only(head: EmotionHead) -> EmotionHead:
    """``head``, trained on each state's mean over frames alone (features ``(n, n_states, dim)``: the
    first half of every pooled vector), made to read whole ``(n, n_states, 2 dim)`` vectors and
    take their first half itself (``inputs="mean"``); its outputs do not change.

    Examples:
        >>> head = EmotionHead(2, 4, 3, hidden=8).eval()
        >>> X = torch.randn(5, 2, 8)
        >>> before = head(X[..., :4])
        >>> bool(torch.equal(means_only(head)(X), before)), head.config.inputs
        (True, 'mean')
    """
    if head.config.inputs != "mean_std":
        raise ValueError("this head already reads part of each vector")
    head.config = dataclasses.replace(head.config, inputs="mean")
    return head


def heads_have_dimensions(heads: Sequence[EmotionHead]) -> bool:
    """True when there are heads and every one has the dimensional output."""
    return bool(heads) and all(h.has_dimensions for h in heads)


@torch.no_grad()
def predict_dimensions(head: EmotionHead, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(arousal, valence) ``(n, 2)`` of a head with the dimensional output, in batches."""
    if not head.has_dimensions:
        raise ValueError("this head has no dimensional output (trained without dimensions)")
    head.eval()
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = [head.outputs(torch.from_numpy(X[i : i + batch_size]))[1] for i in range(0, len(X), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 2), np.float32)


@dataclasses.dataclass
class Ensemble:
    """Heads over one feature set, their calibration temperature, and how each was validated.

    Examples:
        >>> heads = [EmotionHead(2, 4, 3, hidden=8), EmotionHead(2, 4, 3, hidden=8)]
        >>> Ensemble(heads, ["a", "b", "c"], 1.5).probabilities(np.zeros((5, 2, 4))).sum(1).round(5).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """

    heads: list[EmotionHead]
    labels: list[str]
    temperature: float = 1.0
    members: list[dict] = dataclasses.field(default_factory=list)
    average: str = "logits"  # "logits": softmax(mean logits / T); "probs": mean of softmax(logits / T) (older models)
    adapted_temperature: float | None = None  # T for speaker-adapted features (emovox.training.adaptation)
    # how a test clip's frozen-encoder features become this ensemble's (``(X, utterances) -> X``): set
    # when the encoder was fine-tuned with the heads (emovox.training.train.finetuning_trainer)
    transform: Callable[[np.ndarray, Sequence], np.ndarray] | None = None
    # heads for audio a domain profile centred (emovox.training.profiles), e.g. means-only heads
    # (TrainConfig.profile_heads); None: these heads serve profiled audio too
    profile_heads: Ensemble | None = None
    # a linear head (emovox.training.linear_head) whose log-probabilities mix into these heads' wherever they
    # answer; None: the heads alone
    linear: LinearHead | None = None

    def features_for(self, X: np.ndarray, utterances: Sequence) -> np.ndarray:
        """``X`` (frozen-encoder features of ``utterances``) as these heads' input."""
        return X if self.transform is None else self.transform(X, utterances)

    def probabilities(self, X: np.ndarray, *, calibrated: bool = True, adapted: bool = False,
                      profiled: bool = False) -> np.ndarray:
        """The heads' calibrated probabilities, ``(n, len(labels))``: softmax of the mean logits
        over the temperature (``average="logits"``; the average of probabilities made the
        ensemble under-confident: ECE 0.060 against 0.042 on RAVDESS 6-fold), or the mean of
        the temperature-scaled softmaxes (``average="probs"``, models saved before).
        ``calibrated=False``: temperature 1, to show what calibration changed; ``adapted=True``:
        ``X`` was adapted to its speaker, so the temperature fitted on adapted validation
        speakers applies (adapted features make the heads more often right, not more confident);
        ``profiled=True``: a domain profile centred ``X``, so the profile heads answer when there are any.

        Examples:
            >>> main = Ensemble([EmotionHead(2, 4, 3, hidden=8)], ["a", "b", "c"])
            >>> means = Ensemble([means_only(EmotionHead(2, 2, 3, hidden=8))], ["a", "b", "c"])
            >>> both = dataclasses.replace(main, profile_heads=means)
            >>> X = np.random.default_rng(0).standard_normal((3, 2, 4))
            >>> bool(np.allclose(both.probabilities(X, profiled=True), means.probabilities(X)))
            True
        """
        if profiled and self.profile_heads is not None:
            return self.profile_heads.probabilities(X, calibrated=calibrated)
        if self.linear is not None:
            return self._with_linear(X, calibrated=calibrated, adapted=adapted)
        t = self.temperature_for(adapted) if calibrated else 1.0
        logits = np.stack([predict_logits(h, X) for h in self.heads])
        if self.average == "logits":
            return torch.softmax(torch.from_numpy(logits.mean(0)) / t, -1).numpy()
        return torch.softmax(torch.from_numpy(logits) / t, -1).numpy().mean(0)

    @torch.no_grad()
    def _with_linear(self, X: np.ndarray, *, calibrated: bool, adapted: bool) -> np.ndarray:
        """The heads' probabilities at their temperature with the linear head's mixed in
        (:func:`~emovox.training.linear_head.mix_log_probabilities`); ``adapted``: the mixed log-probabilities
        scaled from the temperature to the adapted one (what the ONNX runtime does to its graph's answer)."""
        if self.linear is None or self.average != "logits":
            raise ValueError("a linear head mixes into heads that average their logits")
        t = self.temperature if calibrated else 1.0
        mean_logits = torch.from_numpy(np.stack([predict_logits(h, X) for h in self.heads]).mean(0))
        self.linear.eval()
        probs = mix_log_probabilities(torch.softmax(mean_logits / t, -1),
                                      self.linear(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))),
                                      self.linear.weight)
        if calibrated and adapted and self.adapted_temperature:
            probs = torch.softmax(torch.log(probs.clamp_min(1e-30)) * (t / self.adapted_temperature), -1)
        return probs.numpy()

    @property
    def has_dimensions(self) -> bool:
        """True when every head has the dimensional output (:meth:`dimensions` works)."""
        return heads_have_dimensions(self.heads)

    def dimensions(self, X: np.ndarray) -> np.ndarray:
        """(arousal, valence) ``(n, 2)`` in [-1, 1]: the mean of the heads' dimensional outputs
        (no temperature: they are values, not probabilities).

        Examples:
            >>> heads = [EmotionHead(2, 4, 3, hidden=8, dimensions=True) for _ in range(2)]
            >>> Ensemble(heads, ["a", "b", "c"]).dimensions(np.zeros((5, 2, 4))).shape
            (5, 2)
        """
        if not self.has_dimensions:
            raise ValueError("the heads have no dimensional output (trained without dimensions)")
        return np.stack([predict_dimensions(h, X) for h in self.heads]).mean(0)

    def temperature_for(self, adapted: bool) -> float:
        return self.adapted_temperature if adapted and self.adapted_temperature else self.temperature

    def reference_mean(self) -> np.ndarray:
        """The training feature mean the heads standardise with, ``(n_states, dim)``; NaN for
        states no head reads (the reference of :mod:`emovox.training.adaptation`)."""
        config = self.heads[0].config
        total = np.zeros((config.n_states, config.dim))
        count = np.zeros(config.n_states)
        for head in self.heads:
            index = head.layer_index.numpy()
            total[index] += head.feature_mean.numpy()
            count[index] += 1
        with np.errstate(invalid="ignore"):
            return (total / count[:, None]).astype(np.float32)  # 0/0 = NaN: unread states
