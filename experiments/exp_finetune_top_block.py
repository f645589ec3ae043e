"""Experiment: fine-tune the Whisper block(s) just below the head's state, with a small learning
rate, against the same head on the frozen encoder.

The shipped default head reads state 4 (the output of block 4), pooled by mean and std over
time. Here blocks ``state - tune + 1 .. state`` are trained together with that head, from the
cached full-rate input of the lowest tuned block (state ``state - tune``, float16, under
``~/.cache/emovox/frames``), so the frozen blocks below it run once per clip, not once per epoch.

Each fold runs two phases, and the comparison is within the fold:
1. the head alone on the frozen encoder's pooled state (the baseline, "frozen");
2. from that head, the tuned blocks and the head together (blocks at ``--block-lr``, head at
   ``--head-lr``, ``--frame-drop`` of each clip's frames hidden), keeping the tuned epoch with the
   best validation UA ("tuned"). Phase 1's own validation UA is not a contender: it is the best
   of up to 60 epochs on three or four speakers, so it is biased upwards and would win by noise.

Validation speakers are held out of each fold's training part; test speakers are never seen.
Protocols: RAVDESS speaker-independent 6-fold (8 classes, single clips), and with ``--cross``
the cross-corpus 4-class protocol (train on two shared corpora, test on all of the third).

    python experiments/exp_finetune_top_block.py --tune 1 --out runs/exp_finetune_top_block.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from torch import nn
from tqdm.auto import tqdm

from emovox.audio.load import load_audio
from emovox.corpora import scan_corpus
from emovox.corpora.labels import collapse
from emovox.encoder.mel import mel_windows
from emovox.encoder.weights import cache_dir
from emovox.evaluation.splits import speaker_folds, speaker_holdout
from emovox.features.extractor import FeatureExtractor, content_hash
from emovox.features.frames import encode_windows_below
from emovox.training.fit import class_weights


def state_frames(paths: list[str], extractor: FeatureExtractor, state: int) -> list[np.ndarray]:
    """Every clip's full-rate hidden state ``state``, ``(frames, d)`` float16, cached per file."""
    root = cache_dir() / "frames" / f"{extractor.settings.key()}-state{state}"
    root.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        file = root / f"{content_hash(path)}.npy"
        if file.exists():
            out[i] = np.load(file)
        else:
            todo.append((i, file))
    with tqdm(total=len(paths), initial=len(paths) - len(todo), desc=f"state {state}", unit="file") as bar:
        for start in range(0, len(todo), 32):
            part = todo[start : start + 32]
            mels = [mel_windows(load_audio(paths[i], max_duration=None), n_mels=extractor.n_mels)[0][0] for i, _ in part]
            order = sorted(range(len(part)), key=lambda j: mels[j].shape[1])
            for group in np.array_split(order, max(1, len(order) // 8)):
                encoded = encode_windows_below(extractor.encoder, [mels[j] for j in group], state)
                for j, frames in zip(group, encoded, strict=False):
                    np.save(part[j][1], frames)
                    out[part[j][0]] = frames
                bar.update(len(group))
    return out  # type: ignore[return-value]


def pad(frames: list[np.ndarray], idx) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(frames[i].shape[0] for i in idx)
    x = np.zeros((len(idx), t, frames[idx[0]].shape[1]), np.float32)
    mask = np.zeros((len(idx), t), bool)
    for k, i in enumerate(idx):
        x[k, : len(frames[i])] = frames[i]
        mask[k, : len(frames[i])] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


class TunedTop(nn.Module):
    """The tuned blocks, mean/std pooling over valid frames, standardisation, the default MLP."""

    def __init__(self, blocks: nn.ModuleList, n_classes: int, *, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.blocks = copy.deepcopy(blocks)
        dim = 2 * blocks[0].attn.out.out_features
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_classes))

    def pooled(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, mask)
        m = mask[..., None].float()
        n = m.sum(1)
        mu = (x * m).sum(1) / n
        sd = (((x - mu[:, None]) ** 2 * m).sum(1) / n).clamp_min(1e-8).sqrt()
        return torch.cat([mu, sd], -1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.mlp((pooled - self.mean) / self.std)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.pooled(x, mask))


@torch.no_grad()
def pooled_of(model: TunedTop, frames, rows, batch: int = 32) -> np.ndarray:
    model.eval()
    order = sorted(rows, key=lambda i: len(frames[i]))
    out = {}
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        for i, row in zip(idx, model.pooled(*pad(frames, idx)).numpy(), strict=False):
            out[i] = row
    return np.stack([out[i] for i in rows])


@torch.no_grad()
def logits_of(model: TunedTop, frames, rows) -> np.ndarray:
    model.eval()
    return model.classify(torch.from_numpy(pooled_of(model, frames, rows))).numpy()


def fit_head(model: TunedTop, pooled: np.ndarray, y, train, val, weights, *, seed: int, epochs: int = 60,
             patience: int = 12) -> float:
    """Phase 1: the MLP alone on frozen pooled features (rows of ``pooled`` indexed like ``y``)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.mean.copy_(torch.from_numpy(pooled[train].mean(0)))
    model.std.copy_(torch.from_numpy(pooled[train].std(0) + 1e-5))
    opt = torch.optim.AdamW(model.mlp.parameters(), lr=1e-3, weight_decay=1e-2)
    x = torch.from_numpy(pooled)
    best, best_ua, stale = None, -1.0, 0
    for _ in range(epochs):
        model.train()
        perm = rng.permutation(train)
        for s in range(0, len(perm), 64):
            idx = perm[s : s + 64]
            loss = F.cross_entropy(model.classify(x[idx]), torch.from_numpy(y[idx]), weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            ua = balanced_accuracy_score(y[val], model.classify(x[val]).argmax(1).numpy())
        if ua > best_ua:
            best, best_ua, stale = copy.deepcopy(model.state_dict()), ua, 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best)
    return best_ua


def fit_tuned(model: TunedTop, frames, y, train, val, weights, *, seed: int, block_lr: float,
              head_lr: float, epochs: int, patience: int, frame_drop: float, batch: int = 16,
              watch=None) -> tuple[float, int, list[dict]]:
    """Phase 2: tuned blocks and head together; returns (best validation UA, its epoch, and each
    epoch's history). ``frame_drop`` hides that fraction of each training clip's frames
    from attention and pooling. ``watch`` (rows) only adds their UA to the history: it never
    chooses anything."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW([{"params": model.blocks.parameters(), "lr": block_lr},
                             {"params": model.mlp.parameters(), "lr": head_lr}], weight_decay=1e-2)
    best, best_ua, best_epoch, stale = None, -1.0, 0, 0
    by_length = sorted(train, key=lambda i: len(frames[i]))
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        batches = [by_length[s : s + batch] for s in range(0, len(by_length), batch)]
        for b in rng.permutation(len(batches)):
            idx = batches[b]
            x, mask = pad(frames, idx)
            if frame_drop > 0:
                kept = mask & (torch.rand(mask.shape) >= frame_drop)
                kept[:, 0] |= ~kept.any(1)  # at least one frame per clip
                mask = kept
            loss = F.cross_entropy(model(x, mask), torch.from_numpy(y[idx]), weight=weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
        ua = balanced_accuracy_score(y[val], logits_of(model, frames, list(val)).argmax(1))
        history.append({"epoch": epoch, "val_ua": float(ua)})
        if watch is not None:
            history[-1]["watch_ua"] = float(balanced_accuracy_score(y[watch], logits_of(model, frames, list(watch)).argmax(1)))
        print(f"    epoch {epoch}: {history[-1]}", flush=True)
        if ua > best_ua:
            best, best_ua, best_epoch, stale = copy.deepcopy(model.state_dict()), ua, epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best)
    return best_ua, best_epoch, history


def run_split(blocks, frames, frozen_pooled, y, speakers, corpora, train_rows, test_rows, n_classes, args) -> dict:
    val_mask = speaker_holdout(speakers[train_rows], corpora[train_rows], fraction=0.15, seed=args.seed)
    train, val = train_rows[~val_mask], train_rows[val_mask]
    weights = class_weights(y[train], n_classes)
    torch.manual_seed(args.seed)
    model = TunedTop(blocks, n_classes)
    frozen_val = fit_head(model, frozen_pooled, y, train, val, weights, seed=args.seed)
    frozen_predicted = model.classify(torch.from_numpy(frozen_pooled[test_rows])).argmax(1).numpy()
    frozen_ua = balanced_accuracy_score(y[test_rows], frozen_predicted)
    tuned_val, epoch, history = fit_tuned(model, frames, y, list(train), list(val), weights, seed=args.seed,
                                          block_lr=args.block_lr, head_lr=args.head_lr, epochs=args.epochs,
                                          patience=args.patience, frame_drop=args.frame_drop,
                                          watch=test_rows if args.watch_test else None)
    tuned_ua = balanced_accuracy_score(y[test_rows], logits_of(model, frames, list(test_rows)).argmax(1))
    return {"frozen_ua": float(frozen_ua), "tuned_ua": float(tuned_ua), "frozen_val_ua": float(frozen_val),
            "tuned_val_ua": float(tuned_val), "tuned_epoch": epoch, "n_train": len(train), "n_val": len(val),
            "n_test": len(test_rows), "history": history}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--state", type=int, default=4, help="encoder state the head pools (4: the default's)")
    parser.add_argument("--tune", type=int, default=1, help="blocks tuned, ending at --state")
    parser.add_argument("--block-lr", type=float, default=2e-5)
    parser.add_argument("--head-lr", type=float, default=2e-4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frame-drop", type=float, default=0.0, help="fraction of training frames hidden")
    parser.add_argument("--watch-test", action="store_true",
                        help="log the test UA after every tuned epoch (a diagnostic; selection stays on validation)")
    parser.add_argument("--skip-ravdess", action="store_true")
    parser.add_argument("--cross", action="store_true", help="also the cross-corpus 4-class protocol")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_finetune_top_block.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    extractor = FeatureExtractor("whisper-base")
    names = ("ravdess", "nemo", "turev") if args.cross else ("ravdess",)
    utts = [u for name in names for u in scan_corpus(name, args.corpora / name)]
    paths = [str(u.path) for u in utts]
    speakers = np.array([u.speaker_key for u in utts])
    corpora = np.array([u.corpus for u in utts])
    base = args.state - args.tune
    frames = state_frames(paths, extractor, base)
    blocks = extractor.encoder.blocks[base : args.state]
    frozen_pooled = pooled_of(TunedTop(blocks, 2), frames, list(range(len(utts)))).astype(np.float32)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "ravdess_6fold": [], "cross": {}}
    started = time.time()

    rav = np.flatnonzero(corpora == "ravdess")
    labels = sorted({utts[i].label for i in rav})
    y = np.full(len(utts), -1)
    y[rav] = [labels.index(utts[i].label) for i in rav]
    for k, test in enumerate([] if args.skip_ravdess else speaker_folds(speakers[rav], 6)):
        test_rows = rav[test]
        train_rows = np.setdiff1d(rav, test_rows)
        r = run_split(blocks, frames, frozen_pooled, y, speakers, corpora, train_rows, test_rows, len(labels), args)
        result["ravdess_6fold"].append(r)
        print(f"fold {k}: frozen {r['frozen_ua']:.3f} tuned {r['tuned_ua']:.3f} (epoch {r['tuned_epoch']})", flush=True)
    folds = result["ravdess_6fold"]
    if folds:
        result["ravdess_mean"] = {key: float(np.mean([f[key] for f in folds])) for key in ("frozen_ua", "tuned_ua")}
        print("RAVDESS 6-fold UA:", result["ravdess_mean"], flush=True)

    if args.cross:
        four = [collapse(u.label) for u in utts]
        classes = sorted({c for c in four if c})
        y4 = np.array([classes.index(c) if c else -1 for c in four])
        for held in names:
            test_rows = np.flatnonzero((corpora == held) & (y4 >= 0))
            train_rows = np.flatnonzero((corpora != held) & (y4 >= 0))
            r = run_split(blocks, frames, frozen_pooled, y4, speakers, corpora, train_rows, test_rows, len(classes), args)
            result["cross"][held] = r
            print(f"held out {held}: frozen {r['frozen_ua']:.3f} tuned {r['tuned_ua']:.3f}", flush=True)
    result["seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
