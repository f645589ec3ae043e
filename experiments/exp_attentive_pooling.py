"""Experiment: attentive statistics pooling over frame-level Whisper states, against the
shipped head on mean/std-pooled states, under the held-out protocols.

The shipped head sees each encoder state already pooled over time (mean and std of every
dimension). This script keeps the frames instead (every state, averaged over ``--stride``
consecutive 20 ms frames, float16, cached under ``~/.cache/emovox/frames``) and trains a head
that mixes the states with learned weights, projects each frame, and pools with learned
attention over time (Okabe et al. 2018, attentive statistics pooling). An ablation trains the
same head with uniform attention (plain statistics pooling after the projection), so the
difference isolates what attention buys.

Protocols (every test speaker unseen; validation speakers are held out of the training part):
- RAVDESS speaker-independent 6-fold, 8 classes, single clips (no adaptation);
- cross-corpus, 4 classes: train on two shared corpora, test on all of the third.

    python experiments/exp_attentive_pooling.py --out runs/exp_attentive_pooling.json
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
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
from emovox.training.fit import class_weights
from emovox.training.train import label_set


def frame_features(paths: list[str], extractor: FeatureExtractor, stride: int, *, transform=None,
                   tag: str = "") -> list[np.ndarray]:
    """Every clip's states ``(n_states, frames // stride, d)`` float16, cached per file (and per
    ``tag`` when ``transform(signal, content_hash)`` changes the audio first)."""
    root = cache_dir() / "frames" / f"{extractor.settings.key()}-s{stride}"
    root.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        digest = content_hash(path)
        file = root / (f"{hashlib.sha256(f'{digest}:{tag}'.encode()).hexdigest()}.npy" if tag else f"{digest}.npy")
        if file.exists():
            out[i] = np.load(file)
        else:
            todo.append((i, file, digest))
    with tqdm(total=len(paths), initial=len(paths) - len(todo), desc=f"frames /{stride}", unit="file") as bar:
        for start in range(0, len(todo), 32):
            part = todo[start : start + 32]
            signals = [load_audio(paths[i], max_duration=None) for i, _, _ in part]
            if transform is not None:
                signals = [transform(x, digest) for x, (_, _, digest) in zip(signals, part, strict=False)]
            mels = [mel_windows(x, n_mels=extractor.n_mels)[0][0] for x in signals]
            order = sorted(range(len(part)), key=lambda j: mels[j].shape[1])
            for group in np.array_split(order, max(1, len(order) // 8)):
                with torch.inference_mode():
                    encoded = extractor._encode([mels[j] for j in group])
                for j, states in zip(group, encoded, strict=False):
                    t = max(1, states.shape[1] // stride)
                    if states.shape[1] >= stride:
                        pooled = states[:, : t * stride].reshape(states.shape[0], t, stride, -1).mean(2)
                    else:
                        pooled = states.mean(1, keepdims=True)
                    pooled = pooled.astype(np.float16)
                    np.save(part[j][1], pooled)
                    out[part[j][0]] = pooled
                bar.update(len(group))
    return out  # type: ignore[return-value]


class FrameHead(nn.Module):
    """Learned layer weights over standardised frame states → projection → (attentive) stats pooling → MLP."""

    def __init__(self, n_states: int, dim: int, n_classes: int, *, hidden: int = 128, attention: bool = True,
                 dropout: float = 0.3):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_states, dim))
        self.register_buffer("std", torch.ones(n_states, dim))
        self.layer_logits = nn.Parameter(torch.zeros(n_states))
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.GELU())
        self.attention = nn.Sequential(nn.Linear(hidden, 64), nn.Tanh(), nn.Linear(64, 1)) if attention else None
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # x (b, l, t, d), mask (b, t)
        x = (x - self.mean[:, None]) / self.std[:, None]
        x = torch.einsum("bltd,l->btd", x, torch.softmax(self.layer_logits, 0))
        h = self.proj(x)
        if self.attention is not None:
            e = self.attention(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        else:
            e = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
        a = torch.softmax(e, dim=1).unsqueeze(-1)
        mu = (a * h).sum(1)
        sd = ((a * h * h).sum(1) - mu * mu).clamp_min(1e-6).sqrt()
        return self.out(torch.cat([mu, sd], -1))


def batch(frames: list[np.ndarray], idx) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(frames[i].shape[1] for i in idx)
    n_states, _, d = frames[idx[0]].shape
    x = np.zeros((len(idx), n_states, t, d), np.float32)
    mask = np.zeros((len(idx), t), bool)
    for k, i in enumerate(idx):
        x[k, :, : frames[i].shape[1]] = frames[i]
        mask[k, : frames[i].shape[1]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


@torch.no_grad()
def logits_of(head: FrameHead, frames, rows) -> np.ndarray:
    head.eval()
    order = sorted(rows, key=lambda i: frames[i].shape[1])
    out = {}
    for s in range(0, len(order), 128):
        idx = order[s : s + 128]
        for i, row in zip(idx, head(*batch(frames, idx)).numpy(), strict=False):
            out[i] = row
    return np.stack([out[i] for i in rows])


def fit(frames, y, train, val, n_classes, *, attention: bool, seed: int, epochs: int = 40, patience: int = 8) -> FrameHead:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_states, _, d = frames[train[0]].shape
    head = FrameHead(n_states, d, n_classes, attention=attention)
    total = np.zeros((n_states, d))
    sq = np.zeros((n_states, d))
    count = 0
    for i in train:
        f = frames[i].astype(np.float64)
        total += f.sum(1)
        sq += (f * f).sum(1)
        count += f.shape[1]
    mean = total / count
    head.mean.copy_(torch.from_numpy(mean).float())
    head.std.copy_(torch.from_numpy(np.sqrt(np.maximum(sq / count - mean**2, 1e-10))).float())
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    weights = class_weights(y[train], n_classes)
    best, best_ua, stale = None, -1.0, 0
    for _epoch in range(epochs):
        head.train()
        perm = rng.permutation(train)
        for s in range(0, len(perm), 32):
            idx = list(perm[s : s + 32])
            x, mask = batch(frames, idx)
            loss = F.cross_entropy(head(x, mask), torch.from_numpy(y[idx]), weight=weights, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        ua = balanced_accuracy_score(y[val], logits_of(head, frames, list(val)).argmax(1))
        if ua > best_ua:
            best, best_ua, stale = copy.deepcopy(head.state_dict()), ua, 0
        else:
            stale += 1
            if stale >= patience:
                break
    head.load_state_dict(best)
    return head


def ensemble_predict(frames, y, train_rows, test_rows, speakers, corpora, n_classes, *, attention, heads) -> np.ndarray:
    logits = 0
    for k in range(heads):
        val_mask = speaker_holdout(speakers[train_rows], corpora[train_rows], fraction=0.15, seed=k)
        train, val = train_rows[~val_mask], train_rows[val_mask]
        head = fit(frames, y, list(train), list(val), n_classes, attention=attention, seed=k)
        logits = logits + logits_of(head, frames, list(test_rows))
    return logits


def study_transforms(paths: list[str], speakers: np.ndarray, folds: list[np.ndarray]):
    """The noise study's audio transforms ``(signal, content_hash) -> signal``, by name:
    ``aug0``/``aug1`` (augmented training copies, babble of four other speakers of the clip's
    own fold) and ``white``/``babble`` (10 dB test noise; babble of four other speakers)."""
    from emovox.audio.augment import augment, babble, copy_seed, mix_at_snr

    fold_of = np.zeros(len(paths), int)
    for k, test in enumerate(folds):
        fold_of[test] = k
    row_of = {content_hash(p): i for i, p in enumerate(paths)}

    def aug_transform(copy_index):
        def transform(signal, digest):
            i = row_of[digest]
            pool = np.flatnonzero((fold_of == fold_of[i]) & (speakers != speakers[i]))
            seed = copy_seed(digest, copy_index)
            picks = np.random.default_rng(seed + 1).choice(pool, size=4, replace=False)
            return augment(signal, seed=seed, others=[load_audio(paths[j], max_duration=None) for j in picks])
        return transform

    def noise_transform(kind):
        def transform(signal, digest):
            local = np.random.default_rng(int(hashlib.sha256(f"{digest}:{kind}:10".encode()).hexdigest()[:8], 16))
            if kind == "white":
                return mix_at_snr(signal, local.standard_normal(len(signal)).astype(np.float32), 10.0)
            others = np.flatnonzero(speakers != speakers[row_of[digest]])
            picks = local.choice(others, 4, replace=False)
            noise = babble([load_audio(paths[j], max_duration=None) for j in picks], len(signal), np.random.default_rng(0))
            return mix_at_snr(signal, noise, 10.0)
        return transform

    return {"aug0": aug_transform(0), "aug1": aug_transform(1), "white": noise_transform("white"),
            "babble": noise_transform("babble")}


STUDY_TAGS = {"clean": "", "aug0": "aug-samefold-0", "aug1": "aug-samefold-1", "white": "test-white-10",
              "babble": "test-babble-10"}  # each set's frame-cache tag


def noise_study(args, extractor, stride: int) -> dict:
    """RAVDESS 6-fold with two augmented copies per training clip (babble from the same fold's
    other speakers, as ``bench_accuracy.py --babble-source same-fold``), tested clean and with
    10 dB white and babble noise on the held-out clips (babble of four other speakers)."""
    utts = scan_corpus("ravdess", args.corpora / "ravdess")
    paths = [u.path for u in utts]
    speakers = np.array([u.speaker_key for u in utts])
    folds = speaker_folds(speakers, 6)
    transforms = study_transforms(paths, speakers, folds)
    sets = {name: frame_features(paths, extractor, stride, transform=transforms.get(name), tag=tag)
            for name, tag in STUDY_TAGS.items()}
    if args.states != "all":
        keep = [int(s) for s in args.states.split(",")]
        sets = {k: [f[keep] for f in v] for k, v in sets.items()}
    names = list(sets)
    frames = [f for name in names for f in sets[name]]
    n = len(utts)
    offset = {name: k * n for k, name in enumerate(names)}
    labels = label_set(utts)
    y = np.tile([labels.index(u.label) for u in utts], len(names))
    corpora = np.array(["ravdess"] * n)
    out = {}
    for variant in args.variants.split(","):
        pred = {name: np.zeros(n, int) for name in ("clean", "white", "babble")}
        for test in folds:
            train_rows = np.flatnonzero(~test)
            rows = np.flatnonzero(test)
            logits = {name: 0 for name in pred}
            for k in range(args.heads):
                val_mask = speaker_holdout(speakers[train_rows], corpora[train_rows], fraction=0.15, seed=k)
                fit_rows = train_rows[~val_mask]
                fit_rows = np.concatenate([fit_rows, fit_rows + offset["aug0"], fit_rows + offset["aug1"]])
                head = fit(frames, y, list(fit_rows), list(train_rows[val_mask]), len(labels),
                           attention=variant == "attentive", seed=k)
                for name in pred:
                    logits[name] = logits[name] + logits_of(head, frames, list(rows + offset[name]))
            for name in pred:
                pred[name][rows] = logits[name].argmax(1)
        ua = {name: round(float(balanced_accuracy_score(y[:n], p)), 4) for name, p in pred.items()}
        out[variant] = ua | {"white_drop": round(100 * (ua["clean"] - ua["white"]), 2),
                             "babble_drop": round(100 * (ua["clean"] - ua["babble"]), 2)}
        print(f"| {variant} + aug2, {args.heads} head(s) | {out[variant]} |", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--variants", default="attentive,stats")
    parser.add_argument("--skip-kfold", action="store_true")
    parser.add_argument("--noise", action="store_true", help="the noise study on RAVDESS 6-fold instead")
    parser.add_argument("--states", default="all", help="encoder states the head reads: all, or e.g. 4 or 3,4,5")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_attentive_pooling.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("EXP_THREADS", "2")))
    start = time.time()
    extractor = FeatureExtractor("whisper-base")
    if args.noise:
        result = {"stride_ms": 20 * args.stride, "states": args.states, "heads": args.heads,
                  "noise": noise_study(args, extractor, args.stride)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    utts = [u for name in ("ravdess", "nemo", "turev") for u in scan_corpus(name, args.corpora / name)]
    frames = frame_features([u.path for u in utts], extractor, args.stride)
    if args.states != "all":
        keep = [int(s) for s in args.states.split(",")]
        frames = [f[keep] for f in frames]
    speakers = np.array([u.speaker_key for u in utts])
    corpora = np.array([u.corpus for u in utts])
    result: dict = {"stride_ms": 20 * args.stride, "heads": args.heads, "states": args.states, "kfold": {}, "cross_4class": {}}
    for variant in args.variants.split(","):
        attention = variant == "attentive"
        if not args.skip_kfold:
            rows = np.flatnonzero(corpora == "ravdess")
            labels = label_set([utts[i] for i in rows])
            y = np.full(len(utts), -1)
            y[rows] = [labels.index(utts[i].label) for i in rows]
            pred = np.empty(len(utts), int)
            for test in speaker_folds(speakers[rows], 6):
                logits = ensemble_predict(frames, y, rows[~test], rows[test], speakers, corpora, len(labels),
                                          attention=attention, heads=args.heads)
                pred[rows[test]] = logits.argmax(1)
                print(f"  fold done, {time.time() - start:.0f} s", flush=True)
            ua = balanced_accuracy_score(y[rows], pred[rows])
            result["kfold"][variant] = round(float(ua), 4)
            print(f"| {variant} | RAVDESS 6-fold 8-class UA {ua:.3f} | {time.time() - start:.0f} s |", flush=True)
        # as emovox.evaluation.protocols.cross_corpus: train on every label of the two training corpora, decide
        # among the four shared classes (calm's probability merged into neutral, emovox.prediction.decision)
        mapped = np.array([collapse(u.label, "4class") or "" for u in utts])
        for held in ("nemo", "ravdess", "turev"):
            train_rows = np.flatnonzero(corpora != held)
            labels = label_set([utts[i] for i in train_rows])
            y = np.array([labels.index(u.label) if u.label in labels else -1 for u in utts])
            test_rows = np.flatnonzero((corpora == held) & (mapped != ""))
            logits = ensemble_predict(frames, y, train_rows, test_rows, speakers, corpora, len(labels),
                                      attention=attention, heads=args.heads)
            probs = torch.softmax(torch.from_numpy(logits / args.heads), -1).numpy()
            four = [l for l in ("neutral", "happy", "sad", "angry") if l in labels]
            calm = probs[:, labels.index("calm")] if "calm" in labels else 0
            scores = np.stack([probs[:, labels.index(l)] + (calm if l == "neutral" else 0) for l in four], 1)
            keep = np.isin(mapped[test_rows], four)
            ua = balanced_accuracy_score(mapped[test_rows][keep], np.array(four)[scores[keep].argmax(1)])
            result["cross_4class"].setdefault(variant, {})[held] = round(float(ua), 4)
            print(f"| {variant} | held out {held} 4-class UA {ua:.3f} | {time.time() - start:.0f} s |", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    result["seconds"] = round(time.time() - start, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
