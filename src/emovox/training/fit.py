"""Fit an :class:`~emovox.training.head.EmotionHead` on cached features, with early stopping.

The loop follows SpeechBrain's split: :func:`compute_forward` gives logits for a batch and
:func:`compute_objective` the loss; :func:`fit_head` runs epochs, measures unweighted accuracy
(mean per-class recall) on the validation set after each, and keeps the best weights.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 40)
    >>> X = rng.normal(size=(80, 2, 6)).astype("float32") + 2 * y[:, None, None]
    >>> result = fit_head(X, y, X, y, n_classes=2, config=FitConfig(epochs=40, hidden=8, lr=1e-2))
    >>> result.best_val_ua > 0.9
    True
"""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score

from emovox.training.head import EmotionHead, predict_logits


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Optimisation settings for one head."""

    epochs: int = 60
    patience: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    # 0.1 and 0.2 lost on every held-out corpus (cross-corpus 4-class mean UA 0.488 and 0.464
    # against 0.504 for none; two seed sets agree), for -1 point in-corpus (RAVDESS 6-fold)
    label_smoothing: float = 0.0
    hidden: int = 256
    dropout: float = 0.3
    layers: tuple[int, ...] | None = None  # encoder states the head reads (None: all, weighted)
    seed: int = 0
    # weight of KL(clean prediction || prediction on an augmented copy of the same clip), when
    # fit_head gets the copies paired with their clips (0: copies are just more training rows)
    consistency: float = 0.0


@dataclasses.dataclass
class FitResult:
    head: EmotionHead
    best_val_ua: float
    best_epoch: int
    history: list[dict]


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes); absent classes get 0."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def compute_forward(head: EmotionHead, features: torch.Tensor) -> torch.Tensor:
    return head(features)


def compute_objective(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, smoothing: float,
                      sample_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy; ``sample_weights`` scale each row (as
    PyTorch's weighted mean: the sum over rows divided by the rows' total weight)."""
    if sample_weights is None:
        return F.cross_entropy(logits, targets, weight=weights, label_smoothing=smoothing)
    losses = F.cross_entropy(logits, targets, weight=weights, label_smoothing=smoothing, reduction="none")
    return (losses * sample_weights).sum() / (weights[targets] * sample_weights).sum()


def group_balance_weights(groups: np.ndarray) -> np.ndarray:
    """Per-row weights that give every group (e.g. corpus) the same total weight, mean 1.

    Examples:
        >>> group_balance_weights(np.array(["a", "a", "a", "b"])).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return len(groups) / (len(counts) * counts[inverse])


def fit_head(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    n_classes: int,
    config: FitConfig = FitConfig(),
    sample_weights: np.ndarray | None = None,
    copies: np.ndarray | None = None,
    progress=None,
) -> FitResult:
    """Train a head; validation UA picks the epoch (or the last epoch without validation).
    ``sample_weights`` (one per training row, e.g. :func:`group_balance_weights` of the rows'
    corpora) scale each row's loss on top of the class weights.

    ``copies`` ``(k, len(X_train), ...)``: augmented copies paired with their training rows.
    Each step then sees a batch of clips and one random copy of each; the loss is both
    cross-entropies plus ``config.consistency`` times the KL divergence from the clip's
    (fixed) prediction to the copy's, which teaches the head to answer the same under noise.

    Runs on one thread: the head is small, and extra threads only contend with other work.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(X_train, y_train, X_val, y_val, n_classes=n_classes, config=config, progress=progress,
                    sample_weights=sample_weights, copies=copies)
    finally:
        torch.set_num_threads(threads)


def _fit(X_train, y_train, X_val, y_val, *, n_classes, config, progress, sample_weights=None, copies=None) -> FitResult:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    X_train = np.ascontiguousarray(X_train, dtype=np.float32)
    head = EmotionHead(X_train.shape[1], X_train.shape[2], n_classes, hidden=config.hidden, dropout=config.dropout,
                       layers=config.layers)
    if copies is not None:
        copies = torch.from_numpy(np.ascontiguousarray(copies, dtype=np.float32))
        if copies.shape[1:] != X_train.shape:
            raise ValueError(f"copies {tuple(copies.shape)} do not pair with training rows {X_train.shape}")
        head.set_normalization(torch.cat([torch.from_numpy(X_train), copies.flatten(0, 1)]))
    else:
        head.set_normalization(torch.from_numpy(X_train))
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    weights = class_weights(y_train, n_classes)
    Xt, yt = torch.from_numpy(X_train), torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    st = None if sample_weights is None else torch.as_tensor(np.asarray(sample_weights), dtype=torch.float32)
    best, best_ua, best_epoch, history, stale = None, -1.0, -1, [], 0
    for epoch in range(config.epochs):
        head.train()
        perm = rng.permutation(len(Xt))
        total = 0.0
        for i in range(0, len(perm), config.batch_size):
            idx = torch.from_numpy(perm[i : i + config.batch_size])
            row_weights = None if st is None else st[idx]
            logits = compute_forward(head, Xt[idx])
            loss = compute_objective(logits, yt[idx], weights, config.label_smoothing, row_weights)
            if copies is not None:
                pick = torch.from_numpy(rng.integers(0, len(copies), len(idx)))
                noisy = compute_forward(head, copies[pick, idx])
                loss = loss + compute_objective(noisy, yt[idx], weights, config.label_smoothing, row_weights)
                if config.consistency:
                    loss = loss + config.consistency * F.kl_div(F.log_softmax(noisy, -1), F.softmax(logits, -1).detach(),
                                                                reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        record = {"epoch": epoch, "train_loss": total / len(perm)}
        if X_val is not None and len(X_val):
            with warnings.catch_warnings():  # a validation speaker may lack a class: expected
                warnings.simplefilter("ignore", UserWarning)
                ua = balanced_accuracy_score(y_val, predict_logits(head, X_val).argmax(1))
            record["val_ua"] = float(ua)
        else:
            ua = float(epoch)  # no validation: keep the last epoch
        history.append(record)
        if progress:
            progress(record)
        if ua > best_ua:
            best, best_ua, best_epoch, stale = copy.deepcopy(head.state_dict()), ua, epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    head.load_state_dict(best)
    head.eval()
    return FitResult(head, best_ua if X_val is not None else float("nan"), best_epoch, history)
