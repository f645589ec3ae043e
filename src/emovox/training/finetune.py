"""Fine-tune the top encoder blocks together with an emotion head, on two CPU cores.

The frozen encoder gives every clip's pooled states 0..n (the feature cache) and, once, its
frame-level hidden state below the tuned blocks (:mod:`emovox.features.frames`). Training then
runs only the tuned blocks (:class:`emovox.encoder.tuned.TunedTop`: full weights or low-rank
adapters) on those frames, pools their states like the extractor does, puts them in place of
the frozen ones, and trains blocks and head together with a small learning rate. The head is
first fitted on the frozen features (a warm start), and the tuned epoch kept is the one with the
best unweighted accuracy on held-out speakers.

After tuning, :func:`tuned_features` recomputes the tuned states' pooled rows for any clips, so
the usual ensemble of heads (:func:`emovox.training.train.train_ensemble`) trains on features
of the tuned encoder, exactly as it would on a frozen one.

Examples:
    >>> FinetuneConfig(blocks=1).describe()
    'top 1 block(s), low-rank adapters (rank 8), 6 epochs at lr 0.0003'
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from tqdm.auto import tqdm

from emovox.encoder.batches import length_batches
from emovox.encoder.tuned import TunedTop
from emovox.encoder.whisper import WhisperEncoder
from emovox.features.frames import ClipFrames
from emovox.training.fit import FitConfig, class_weights, fit_head
from emovox.training.head import EmotionHead

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """How the top encoder blocks are tuned (``emovox train --finetune-*``)."""

    blocks: int = 0  # top encoder blocks tuned; 0 = frozen encoder
    rank: int = 8  # low-rank adapters of this rank on every linear map; 0 = tune every weight
    lr: float = 3e-4  # tuned blocks (adapters); full tuning wants ~2e-5
    head_lr: float = 2e-4
    epochs: int = 6
    patience: int = 2
    batch_clips: int = 16
    max_train_clips: int = 0  # tune on at most this many clips (stratified by corpus); 0 = all
    max_val_clips: int = 0  # validate each epoch on at most this many of the held-out speakers' clips; 0 = all
    seed: int = 0

    def describe(self) -> str:
        kind = f"low-rank adapters (rank {self.rank})" if self.rank else "every weight"
        return f"top {self.blocks} block(s), {kind}, {self.epochs} epochs at lr {self.lr:g}"


def pool_torch(states: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``(b, t, d)`` states → ``(b, 2 d)`` mean and std over the valid (and weighted) frames.

    Examples:
        >>> x = torch.tensor([[[0.0], [2.0], [10.0]]])
        >>> pool_torch(x, torch.tensor([[True, True, False]]), None).tolist()
        [[1.0, 1.0]]
    """
    w = mask.to(states.dtype) if weights is None else weights * mask.to(states.dtype)
    w = torch.where(w.sum(1, keepdim=True) > 0, w, mask.to(states.dtype))
    w = w / w.sum(1, keepdim=True).clamp_min(1e-8)
    mean = torch.einsum("btd,bt->bd", states, w)
    var = torch.einsum("btd,bt->bd", states**2, w) - mean**2
    return torch.cat([mean, var.clamp_min(1e-10).sqrt()], -1)


def _batch(clips: Sequence[ClipFrames]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[int]]:
    """Pad every window of ``clips`` into one batch; also each window's clip (position in ``clips``).
    A clip of several windows is pooled over all of them (windows are concatenated in time)."""
    windows = [(k, w, None if c.weights is None else c.weights[j]) for k, c in enumerate(clips)
               for j, w in enumerate(c.windows)]
    t = max(len(w) for _, w, _ in windows)
    d = windows[0][1].shape[1]
    x = torch.zeros(len(windows), t, d)
    mask = torch.zeros(len(windows), t, dtype=torch.bool)
    weights = None if windows[0][2] is None else torch.zeros(len(windows), t)
    for i, (_, w, lw) in enumerate(windows):
        x[i, : len(w)] = torch.from_numpy(w.astype(np.float32))
        mask[i, : len(w)] = True
        if weights is not None:
            weights[i, : len(w)] = torch.from_numpy(lw.astype(np.float32))
    return x, mask, weights, [k for k, _, _ in windows]


def pooled_tuned(top: TunedTop, clips: Sequence[ClipFrames]) -> torch.Tensor:
    """Pooled tuned states of ``clips``, ``(n_clips, blocks, 2 d)`` (with gradients when training)."""
    x, mask, weights, owner = _batch(clips)
    states = top(x, mask)
    if len(owner) == len(clips):  # one window per clip: pool directly
        return torch.stack([pool_torch(s, mask, weights) for s in states], 1)
    # several windows for some clip: pool each clip over the frames of all its windows
    out = []
    owner_t = torch.tensor(owner)
    for k in range(len(clips)):
        rows = torch.nonzero(owner_t == k)[:, 0]
        m = mask[rows].reshape(1, -1)
        w = None if weights is None else weights[rows].reshape(1, -1)
        out.append(torch.stack([pool_torch(s[rows].reshape(1, -1, s.shape[-1]), m, w)[0] for s in states]))
    return torch.stack(out)


@torch.no_grad()
def tuned_features(top: TunedTop, frames: Sequence[ClipFrames], X: np.ndarray, *, batch_frames: int = 8000,
                   progress: bool = False) -> np.ndarray:
    """``X`` (pooled frozen features ``(n, n_states, 2 d)``) with the tuned states' rows
    recomputed from ``frames`` by ``top``: the features of the tuned encoder."""
    top.eval()
    out = np.array(X, dtype=np.float32, copy=True)
    first = top.first + 1  # hidden state index of the lowest tuned block's output
    with tqdm(total=len(frames), desc="tuned states", unit="clip", disable=not progress) as bar:
        for idx in length_batches([f.n_frames for f in frames], batch_frames):
            out[idx, first:] = pooled_tuned(top, [frames[i] for i in idx]).numpy()
            bar.update(len(idx))
    return out


@dataclasses.dataclass
class FinetuneResult:
    """The tuned blocks, the head tuned with them, and how each epoch went."""

    top: TunedTop
    head: EmotionHead
    best_val_ua: float
    best_epoch: int
    history: list[dict]
    seconds: float


def _subsample(rows: np.ndarray, corpora: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` of ``rows``, each corpus keeping its share (at random)."""
    if not cap or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    keep = []
    for corpus in np.unique(corpora[rows]):
        members = rows[corpora[rows] == corpus]
        n = max(1, round(cap * len(members) / len(rows)))
        keep.append(rng.choice(members, min(n, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def finetune(encoder: WhisperEncoder, frames: Sequence[ClipFrames], X: np.ndarray, y: np.ndarray, train: np.ndarray,
             val: np.ndarray, *, n_classes: int, config: FinetuneConfig, fit: FitConfig = FitConfig(),
             corpora: np.ndarray | None = None) -> FinetuneResult:
    """Tune the top ``config.blocks`` blocks of ``encoder`` with a head on rows ``train`` of
    (``frames``, ``X``, ``y``); validation UA on rows ``val`` (other speakers) picks the epoch.

    ``X``: the frozen encoder's pooled features of the same clips; ``y``: class indices.
    """
    started = time.time()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    corpora = np.zeros(len(y), dtype=object) if corpora is None else corpora
    train = _subsample(np.asarray(train), corpora, config.max_train_clips, config.seed)
    val = _subsample(np.asarray(val), corpora, config.max_val_clips, config.seed)
    warm = fit_head(X[train], y[train], X[val], y[val], n_classes=n_classes,
                    config=dataclasses.replace(fit, seed=config.seed))
    head = warm.head
    top = TunedTop(encoder, blocks=config.blocks, rank=config.rank)
    first = top.first + 1
    weights = class_weights(y[train], n_classes)
    opt = torch.optim.AdamW([{"params": [p for p in top.parameters() if p.requires_grad], "lr": config.lr},
                             {"params": head.parameters(), "lr": config.head_lr}], weight_decay=1e-2)

    def val_ua() -> float:
        feats = tuned_features(top, [frames[i] for i in val], X[val])
        head.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            predicted = head(torch.from_numpy(feats)).argmax(1).numpy()
            return float(balanced_accuracy_score(y[val], predicted))

    # epoch 0 (the frozen encoder with the warm head) is recorded but not a contender: the warm
    # head was early-stopped on these same validation speakers, so its UA is biased upwards
    history = [{"epoch": 0, "val_ua": val_ua(), "seconds": round(time.time() - started, 1)}]
    best, best_ua, best_epoch, stale = None, -1.0, 0, 0
    by_length = sorted(train, key=lambda i: frames[i].n_frames)
    batches = [by_length[s : s + config.batch_clips] for s in range(0, len(by_length), config.batch_clips)]
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    for epoch in range(1, config.epochs + 1):
        top.train()
        head.train()
        total = 0.0
        for b in tqdm(rng.permutation(len(batches)), desc=f"fine-tune epoch {epoch}", unit="batch", leave=False):
            idx = batches[b]
            feats = Xt[idx].clone()
            feats[:, first:] = pooled_tuned(top, [frames[i] for i in idx])
            loss = F.cross_entropy(head(feats), torch.from_numpy(y[idx]).long(), weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        ua = val_ua()
        history.append({"epoch": epoch, "train_loss": round(total / len(train), 4), "val_ua": ua,
                        "seconds": round(time.time() - started, 1)})
        log.info("fine-tune epoch %d: loss %.3f, val UA %.3f", epoch, total / len(train), ua)
        if ua > best_ua:
            best = (copy.deepcopy(top.state_dict()), copy.deepcopy(head.state_dict()))
            best_ua, best_epoch, stale = ua, epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    assert best is not None  # epochs >= 1
    top.load_state_dict(best[0])
    head.load_state_dict(best[1])
    top.eval()
    head.eval()
    return FinetuneResult(top, head, best_ua, best_epoch, history, round(time.time() - started, 1))
