"""Experiment: which frames to pool. Weighting frames by their level (the loud talker over quiet
background talk) against pooling every frame alike, under the noise study of
``exp_attentive_pooling.py --noise`` (RAVDESS speaker-independent 6-fold, two augmented copies per
training clip with same-fold babble, 10 dB white and babble noise on the held-out clips only).

It reads the frame-level states that ``exp_attentive_pooling.py --noise`` caches (80 ms frames),
measures each clip's level per 80 ms block from its (re-made) audio, pools the frames with each
weighting in turn, and trains pooled heads (:func:`emovox.training.fit.fit_head`, three per fold). This is
where the shipped rule (:mod:`emovox.audio.speech_level`) was chosen; ``benchmarks/bench_accuracy.py
--pooling level_mean_std`` measures the shipped implementation itself.

Weightings: ``uniform``; ``hardX`` (frames within X dB of the clip's 95th-percentile level);
``soft:OFFSET:SLOPE:REF`` (a sigmoid, OFFSET dB below the reference REF, ``p95`` or ``max``).

    python experiments/exp_attentive_pooling.py --noise --variants stats --heads 1   # fills the frame cache
    python experiments/exp_level_pooling.py --modes uniform,hard10,hard15,soft:12:2:p95 --out runs/exp_level_pooling.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from tqdm.auto import tqdm

from emovox.audio.load import load_audio
from emovox.corpora import scan_corpus
from emovox.evaluation.splits import speaker_folds, speaker_holdout
from emovox.features.extractor import FeatureExtractor, content_hash
from emovox.features.pooling import mean_std_pool
from emovox.training.fit import FitConfig, fit_head
from emovox.training.head import predict_logits
from emovox.training.train import label_set

sys.path.insert(0, str(Path(__file__).parent))
from exp_attentive_pooling import STUDY_TAGS, frame_features, study_transforms  # noqa: E402

BLOCK = 1280  # samples per 80 ms frame of the cache (4 encoder frames of 20 ms)


def block_levels(signal: np.ndarray) -> np.ndarray:
    """Level in dB of each 80 ms block."""
    t = len(signal) // BLOCK
    power = (signal[: t * BLOCK].astype(np.float64).reshape(t, BLOCK) ** 2).mean(1)
    return 10 * np.log10(power + 1e-10)


def frame_weights(level: np.ndarray, frames: int, mode: str) -> np.ndarray:
    level = np.resize(level, frames) if len(level) else np.zeros(frames)
    if mode == "uniform":
        return np.ones(frames)
    if mode.startswith("hard"):
        return (level >= np.percentile(level, 95) - float(mode[4:])).astype(float)
    _, offset, slope, reference = mode.split(":")
    ref = np.percentile(level, 95) if reference == "p95" else level.max()
    return 1 / (1 + np.exp(-(level - ref + float(offset)) / float(slope)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--modes", default="uniform,hard10,hard15,soft:12:2:p95")
    parser.add_argument("--layers", default="all", help="all, or states such as 4")
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/exp_level_pooling.json"))
    args = parser.parse_args()
    utts = scan_corpus("ravdess", args.corpora / "ravdess")
    paths = [u.path for u in utts]
    speakers = np.array([u.speaker_key for u in utts])
    folds = speaker_folds(speakers, 6)
    transforms = study_transforms(paths, speakers, folds)
    extractor = FeatureExtractor("whisper-base")
    modes = args.modes.split(",")
    pooled: dict[str, dict[str, np.ndarray]] = {m: {} for m in modes}
    for name, tag in STUDY_TAGS.items():
        frames = frame_features(paths, extractor, 4, transform=transforms.get(name), tag=tag)
        rows = {m: [] for m in modes}
        for path, states in zip(tqdm(paths, desc=f"levels {name}", mininterval=10), frames, strict=False):
            signal = load_audio(path, max_duration=None)
            if name in transforms:
                signal = transforms[name](signal, content_hash(path))
            level = block_levels(signal)
            for m in modes:
                rows[m].append(mean_std_pool(states, frame_weights(level, states.shape[1], m)))
        for m in modes:
            pooled[m][name] = np.stack(rows[m])
    labels = label_set(utts)
    y = np.array([labels.index(u.label) for u in utts])
    corpora = np.array([u.corpus for u in utts])
    config = FitConfig(hidden=128, layers=None if args.layers == "all" else tuple(int(s) for s in args.layers.split(",")))
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    for m in modes:
        sets = pooled[m]
        pred = {k: np.zeros(len(utts), int) for k in ("clean", "white", "babble")}
        for test in folds:
            train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
            logits = {k: 0 for k in pred}
            for h in range(args.heads):
                val = speaker_holdout(speakers[train_rows], corpora[train_rows], fraction=0.15, seed=h)
                fit_rows, val_rows = train_rows[~val], train_rows[val]
                X = np.concatenate([sets["clean"][fit_rows], sets["aug0"][fit_rows], sets["aug1"][fit_rows]])
                head = fit_head(X, np.tile(y[fit_rows], 3), sets["clean"][val_rows], y[val_rows], n_classes=len(labels),
                                config=FitConfig(**{**config.__dict__, "seed": h})).head
                for k in pred:
                    logits[k] = logits[k] + predict_logits(head, sets[k][test_rows])
            for k in pred:
                pred[k][test_rows] = logits[k].argmax(1)
        ua = {k: round(float(balanced_accuracy_score(y, p)), 4) for k, p in pred.items()}
        drops = {f"{k}_drop": round(100 * (ua["clean"] - ua[k]), 2) for k in ("white", "babble")}
        result[f"{m}|states {args.layers}"] = ua | drops
        print(f"| {m} | states {args.layers} | {ua} | {drops} |", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
