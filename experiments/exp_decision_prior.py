"""Experiment: does the model lean towards some class on speech it never heard, and would a fixed
offset on the 4-class decision (chosen without the held-out corpus) fix it?

For each leave-one-corpus-out fold (models from :mod:`fold_models`), the held-out corpus's 4-class
clips are answered as ``--labels angry,happy,sad,neutral`` answers (the shipped decision): the
predicted share of each class against the true share, and the confusion. Then log offsets
``o`` added to the four restricted log-probabilities: for each held-out corpus, ``o`` is chosen
from a grid to maximise the mean UA over the *other* five corpora's held-out answers (their
models never heard those corpora; this corpus's labels never choose its offset), then applied to
it: a nested estimate of what a shipped offset would do on a new corpus.

    python experiments/exp_decision_prior.py --out runs/exp_decision_prior.json
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_generalisation as bench  # noqa: E402
from fold_models import fold_ensembles  # noqa: E402

from emovox.corpora.labels import FOUR_CLASS  # noqa: E402
from emovox.prediction.decision import restrict  # noqa: E402

GRID = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)


def four_class_probs(ensemble, probs: np.ndarray) -> np.ndarray:
    """Rows of ``probs`` restricted to the four classes as ``--labels`` does (FOUR_CLASS order)."""
    return np.array([[restrict(dict(zip(ensemble.labels, map(float, p), strict=True)), FOUR_CLASS)[c]
                      for c in FOUR_CLASS] for p in probs])


def ua_with(P: np.ndarray, truth: list[str], offset: np.ndarray) -> float:
    """UA of the 4-class decision with log ``offset`` added."""
    predicted = [FOUR_CLASS[i] for i in (np.log(np.clip(P, 1e-9, None)) + offset).argmax(1)]
    return bench.ua(truth, predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_corpus_options(parser)
    parser.add_argument("--design", default="all-mixed-level-d0.5-ph")
    parser.add_argument("--out", type=Path, default=Path("runs/exp_decision_prior.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="y_pred contains classes")  # an offset may predict a class a corpus lacks

    design = bench.DESIGNS[args.design]
    utts, X = bench.corpora_features(args, design.pooling)
    folds = {}
    for held, _, _, idx, truth, ensemble in fold_ensembles(args.design, X, utts):
        P = four_class_probs(ensemble, ensemble.probabilities(X[idx]))
        P_profile_heads = four_class_probs(ensemble, ensemble.probabilities(X[idx], profiled=True))
        folds[held] = {"P": P, "P_profile_heads": P_profile_heads, "truth": [str(t) for t in truth]}
    offsets = [np.array((0.0, *o)) for o in itertools.product(GRID, repeat=3)]  # angry's fixed at 0
    report: dict = {"design": args.design, "classes": list(FOUR_CLASS), "corpora": {}}
    for answer in ("P", "P_profile_heads"):
        scores = {held: np.array([ua_with(f[answer], f["truth"], o) for o in offsets]) for held, f in folds.items()}
        for held, f in folds.items():
            others = np.mean([scores[h] for h in folds if h != held], axis=0)
            best = int(others.argmax())
            truth = np.array(f["truth"])
            predicted = np.array([FOUR_CLASS[i] for i in f[answer].argmax(1)])
            row = report["corpora"].setdefault(held, {})
            row[answer] = {
                "ua": ua_with(f[answer], f["truth"], np.zeros(4)),
                "ua_nested_offset": float(scores[held][best]),
                "offset_from_others": offsets[best].tolist(),
                "true_share": {c: float(np.mean(truth == c)) for c in FOUR_CLASS},
                "predicted_share": {c: float(np.mean(predicted == c)) for c in FOUR_CLASS},
                "recall": {c: float(np.mean(predicted[truth == c] == c)) if (truth == c).any() else None for c in FOUR_CLASS},
            }
        mean_all = np.mean([scores[h] for h in folds], axis=0)
        report[f"{answer}_offset_all_corpora"] = offsets[int(mean_all.argmax())].tolist()
        for stat, fn in (("mean", np.mean), ("worst", np.min)):
            for k in ("ua", "ua_nested_offset"):
                report.setdefault(stat, {})[f"{answer}_{k}"] = float(fn([report["corpora"][h][answer][k] for h in folds]))
    fmt = functools.partial(json.dumps, indent=None)
    for held, row in report["corpora"].items():
        for answer, r in row.items():
            recall = {k: None if v is None else round(v, 2) for k, v in r["recall"].items()}
            print(f"{held:10s} {answer:16s} UA {r['ua']:.3f} nested {r['ua_nested_offset']:.3f} offset "
                  f"{r['offset_from_others']} recall {fmt(recall)} "
                  f"pred {fmt({k: round(v, 2) for k, v in r['predicted_share'].items()})}")
    print("mean", report["mean"], "worst", report["worst"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
