"""Experiment: training-recipe variants (each spelled out in full, so a change of defaults does
not change what a name means) under the cross-corpus 4-class protocol (train on two
shared corpora, test on all of the third), on cached pooled features.

    python experiments/exp_cross_recipes.py baseline balance smoothing0 smoothing0.2 --out runs/exp_cross_recipes.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from emovox.corpora import scan_corpus
from emovox.evaluation.metrics import classification_metrics
from emovox.evaluation.protocols import cross_corpus, default_trainer
from emovox.features.extractor import FeatureExtractor
from emovox.features.pooling import POOLINGS
from emovox.training.fit import FitConfig
from emovox.training.train import TrainConfig, load_features, parse_layers

BASE = TrainConfig(fit=FitConfig(layers=(4,), label_smoothing=0.1))  # the v2 default model's recipe
RECIPES = {
    "baseline": BASE,
    "balance": dataclasses.replace(BASE, balance_corpora=True),
    "smoothing0": dataclasses.replace(BASE, fit=dataclasses.replace(BASE.fit, label_smoothing=0.0)),
    "smoothing0.2": dataclasses.replace(BASE, fit=dataclasses.replace(BASE.fit, label_smoothing=0.2)),
    "all-3x128": TrainConfig(ensemble=3, fit=FitConfig(layers=parse_layers("all", 7), hidden=128, label_smoothing=0.1)),
    "baseline-seed100": dataclasses.replace(BASE, seed=100),
    "smoothing0-seed100": dataclasses.replace(BASE, seed=100, fit=dataclasses.replace(BASE.fit, label_smoothing=0.0)),
    "all-3x128-ls0": TrainConfig(ensemble=3, fit=FitConfig(layers=None, hidden=128, label_smoothing=0.0)),
    "ls0-ens10": TrainConfig(ensemble=10, fit=FitConfig(layers=(4,), label_smoothing=0.0)),
    "ls0-drop0.5": TrainConfig(fit=FitConfig(layers=(4,), label_smoothing=0.0, dropout=0.5)),
    "ls0-drop0.5-seed100": TrainConfig(seed=100, fit=FitConfig(layers=(4,), label_smoothing=0.0, dropout=0.5)),
    "ls0-drop0.6": TrainConfig(fit=FitConfig(layers=(4,), label_smoothing=0.0, dropout=0.6)),
    "ls0-h512": TrainConfig(fit=FitConfig(layers=(4,), label_smoothing=0.0, hidden=512)),
    "ls0-s34": TrainConfig(fit=FitConfig(layers=(3, 4), label_smoothing=0.0)),
    "ls0-wd0.1": TrainConfig(fit=FitConfig(layers=(4,), label_smoothing=0.0, weight_decay=0.1)),
    "all-1x128": TrainConfig(ensemble=1, fit=FitConfig(layers=None, hidden=128, label_smoothing=0.1)),
    "s4-1x128": TrainConfig(ensemble=1, fit=FitConfig(layers=(4,), hidden=128, label_smoothing=0.1)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--adapt", action="store_true")
    parser.add_argument("--pooling", choices=POOLINGS, default="mean_std", help="features' pooling over time")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_cross_recipes.json"))
    args = parser.parse_args()
    extractor = FeatureExtractor("whisper-base", pooling=args.pooling)
    utts = [u for name in ("ravdess", "nemo", "turev") for u in scan_corpus(name, args.corpora / name)]
    X = load_features(utts, extractor)
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.recipes:
        start = time.time()
        ua = {o.name: round(float(classification_metrics(o.truth, o.predicted, labels=o.labels)["ua"]), 4)
              for o in cross_corpus(X, utts, trainer=default_trainer(RECIPES[name]), scheme="4class", adapt=args.adapt)}
        ua["mean"] = round(float(np.mean(list(ua.values()))), 4)
        key = name + ("+level" if args.pooling == "level_mean_std" else "") + ("+adapt" if args.adapt else "")
        result[key] = ua
        print(f"| {key} | " + " | ".join(f"{k} {v:.3f}" for k, v in ua.items()) + f" | {time.time() - start:.0f} s |", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
