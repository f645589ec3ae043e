"""Experiment: average the calibrated probabilities of two recipes that read differently pooled
features (the default's state 4 with uniform pooling, and the noise-robust model's all states with
level pooling), under the cross-corpus 4-class protocol and RAVDESS speaker-independent 6-fold.

Each recipe trains exactly as ``emovox train`` would on the same split; only the test-time
average is new. Every test speaker is unseen by both.

    python experiments/exp_pooling_ensemble.py --out runs/exp_pooling_ensemble.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emovox.corpora import scan_corpus
from emovox.evaluation.metrics import classification_metrics
from emovox.evaluation.protocols import cross_corpus, default_trainer, speaker_kfold
from emovox.features.extractor import FeatureExtractor
from emovox.training.fit import FitConfig
from emovox.training.train import TrainConfig, load_features

RECIPES = {  # name: (pooling, recipe)
    "default-v3": ("mean_std", TrainConfig(fit=FitConfig(layers=(4,)))),
    "all-3x128-level": ("level_mean_std", TrainConfig(ensemble=3, fit=FitConfig(layers=None, hidden=128))),
}


def ua(outcome, probs: np.ndarray) -> float:
    predicted = [outcome.labels[i] for i in probs.argmax(1)]
    return round(float(classification_metrics(outcome.truth, predicted, labels=outcome.labels)["ua"]), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--out", type=Path, default=Path("runs/exp_pooling_ensemble.json"))
    args = parser.parse_args()
    utts = [u for name in ("ravdess", "nemo", "turev") for u in scan_corpus(name, args.corpora / name)]
    rav = [i for i, u in enumerate(utts) if u.corpus == "ravdess"]
    runs: dict[str, dict] = {}
    for name, (pooling, recipe) in RECIPES.items():
        X = load_features(utts, FeatureExtractor("whisper-base", pooling=pooling))
        trainer = default_trainer(recipe)
        runs[name] = {o.name: o for o in cross_corpus(X, utts, trainer=trainer, scheme="4class")}
        runs[name]["ravdess 6-fold"] = speaker_kfold(X[rav], [utts[i] for i in rav], 6, trainer=trainer)
    result: dict[str, dict] = {}
    for split in runs["default-v3"]:
        outcomes = [runs[name][split] for name in RECIPES]
        assert all(o.truth == outcomes[0].truth and o.labels == outcomes[0].labels for o in outcomes)
        row = {name: ua(o, o.probs) for name, o in zip(RECIPES, outcomes, strict=False)}
        row["average"] = ua(outcomes[0], np.mean([o.probs for o in outcomes], axis=0))
        result[split] = row
        print(f"| {split} | " + " | ".join(f"{k} {v:.3f}" for k, v in row.items()) + " |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
